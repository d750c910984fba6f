/** The DICOMweb source against Orthanc: whole-instance reads give exactly the frames multi-frame reads give. */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createDicomwebSource, type SlideSource } from '../src/source/index.js';
import { describeWithOrthanc } from './support/skip.js';
import { readDicomFileFacts, wsiSamples } from './support/wsi-data.js';

describeWithOrthanc('DICOMweb source', ({ dicomwebUrl }) => {
  let source: SlideSource;
  beforeAll(() => {
    source = createDicomwebSource({ baseUrl: dicomwebUrl, auth: { kind: 'none' }, headers: {}, timeoutMs: 30_000, connections: 4 });
  });
  afterAll(() => source.close());

  it.each([wsiSamples.cmu1T256Q90, wsiSamples.cmu1T256J2k, wsiSamples.wsi2dcmRaw, wsiSamples.highdicomSmJpegLs])(
    'reads every frame of $id in one instance request, equal to multi-frame reads',
    async (sample) => {
      const facts = await readDicomFileFacts(sample.paths[0]!);
      const ref = { studyUid: facts.studyInstanceUid, seriesUid: facts.seriesInstanceUid, sopInstanceUid: facts.sopInstanceUid };
      const [instance] = (await source.readSeries(ref.studyUid, ref.seriesUid)).filter((i) => i.sopInstanceUid === ref.sopInstanceUid);
      const layout = { numberOfFrames: instance!.numberOfFrames, frameBytes: instance!.frameWidthPx * instance!.frameHeightPx * instance!.samplesPerPixel * (instance!.bitsAllocated / 8) };
      const whole = await source.readAllFrames(ref, layout);
      const numbers = whole.map((f) => f.frameNumber);
      expect(numbers).toEqual(Array.from({ length: layout.numberOfFrames }, (_, i) => i + 1));
      const byFrame = await source.readFrames(ref, numbers, { transferSyntaxUid: instance!.transferSyntaxUid });
      expect(whole.map((f) => f.data)).toEqual(byFrame.map((f) => f.data));
      expect(new Set(whole.map((f) => f.transferSyntaxUid))).toEqual(new Set(byFrame.map((f) => f.transferSyntaxUid)));
    },
  );
});
