/**
 * The gateway against a real Orthanc holding ../shared/wsi: JPEG tiles byte for byte as stored (checked
 * against Orthanc's own WSI plugin, which passes stored JPEG tiles through), JPEG 2000 and uncompressed
 * tiles against independent decodes, and the folder source giving the same bytes as the PACS.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithOrthanc } from './support/skip.js';
import { createTestGateway, readJson, type TestGateway } from './support/gateway.js';
import { computeJpegTolerance, decodeJ2kWithVips, decodeWithSharp, meanAbsDiff, readSlideRegion, type Pixels } from './support/reference.js';
import type { LevelDescriptor as LevelJson, SlideDescriptor as SlideJson } from '../viewer/src/api.js';
import { readDicomFileFacts, sampleSlideId, sharedWsiDir, wsiSamples, type WsiSample } from './support/wsi-data.js';

const slideId = sampleSlideId;

async function bytes(response: Response): Promise<Buffer> {
  expect(response.status, await response.clone().text().catch(() => '')).toBe(200);
  return Buffer.from(await response.arrayBuffer());
}

describeWithOrthanc('tiles from Orthanc over DICOMweb', ({ orthancUrl, dicomwebUrl }) => {
  let gateway: TestGateway;
  let folder: TestGateway;
  beforeAll(() => {
    gateway = createTestGateway({ DICOMWEB_URL: dicomwebUrl });
    folder = createTestGateway({ DICOM_DIR: sharedWsiDir });
  });
  afterAll(async () => {
    await gateway.close();
    await folder.close();
  });

  async function describeSlide(sample: WsiSample): Promise<SlideJson> {
    return readJson<SlideJson>(await gateway.get(`/api/slides/${await slideId(sample)}`));
  }

  async function pluginSeriesId(sample: WsiSample): Promise<string> {
    const facts = await readDicomFileFacts(sample.paths[0]!);
    const found = await readJson<Array<{ ID: string; Type: string }>>(
      await fetch(`${orthancUrl}/tools/lookup`, { method: 'POST', body: facts.seriesInstanceUid }),
    );
    return found.find((f) => f.Type === 'Series')!.ID;
  }

  async function* everyTile(slide: SlideJson): AsyncGenerator<{ level: LevelJson; col: number; row: number; path: string }> {
    for (const level of slide.levels) {
      for (let row = 0; row < level.gridRows; row++) {
        for (let col = 0; col < level.gridCols; col++) {
          yield { level, col, row, path: `/api/slides/${slide.id}/tiles/${level.index}/${col}/${row}.jpg` };
        }
      }
    }
  }

  it('lists every slide in the PACS and nothing that is not a slide', async () => {
    const list = await readJson<{ slides: Array<{ id: string; error?: unknown }> }>(await gateway.get('/api/slides'));
    const expected = await Promise.all(
      [wsiSamples.cmu1T256Q90, wsiSamples.cmu1T256J2k, wsiSamples.cmu1Default, wsiSamples.camelyonJpeg, wsiSamples.camelyonJpeg2000, wsiSamples.wsi2dcmJpeg, wsiSamples.wsi2dcmJpeg2000, wsiSamples.wsi2dcmRaw, wsiSamples.highdicomSm, wsiSamples.highdicomSmJpegLs].map(slideId),
    );
    expect(list.slides.map((s) => s.id).sort()).toEqual(expected.sort());
    expect(list.slides.every((s) => s.error === undefined)).toBe(true);
  });

  it.each([wsiSamples.cmu1T256Q90, wsiSamples.cmu1Default, wsiSamples.camelyonJpeg, wsiSamples.wsi2dcmJpeg])(
    'serves every tile of JPEG slide $id byte for byte as stored',
    async (sample) => {
      const slide = await describeSlide(sample);
      const pyramid = await readJson<{ Sizes: Array<[number, number]> }>(await fetch(`${orthancUrl}/wsi/pyramids/${await pluginSeriesId(sample)}`));
      const seriesId = await pluginSeriesId(sample);
      let tiles = 0;
      for await (const { level, col, row, path } of everyTile(slide)) {
        const pluginLevel = pyramid.Sizes.findIndex(([w, h]) => w === level.widthPx && h === level.heightPx);
        const stored = await bytes(await fetch(`${orthancUrl}/wsi/tiles/${seriesId}/${pluginLevel}/${col}/${row}`));
        expect((await bytes(await gateway.get(path))).equals(stored), path).toBe(true);
        tiles++;
      }
      expect(tiles).toBe(slide.levels.reduce((n, l) => n + l.gridCols * l.gridRows, 0));
    },
  );

  it('decodes JPEG 2000 tiles to the pixels of the original image (cmu1 level 0 against the SVS)', async () => {
    const slide = await describeSlide(wsiSamples.cmu1T256J2k);
    const level = slide.levels[0]!;
    for (let row = 0; row < level.gridRows; row += 3) {
      for (let col = 0; col < level.gridCols; col += 2) {
        const tile = await decodeWithSharp(await bytes(await gateway.get(`/api/slides/${slide.id}/tiles/0/${col}/${row}.jpg`)));
        expect([tile.widthPx, tile.heightPx]).toEqual([256, 256]);
        const w = Math.min(256, level.widthPx - col * 256);
        const h = Math.min(256, level.heightPx - row * 256);
        const reference = await readSlideRegion(wsiSamples.cmu1Svs.paths[0]!, col * 256, row * 256, w, h);
        expect(meanAbsDiff(tile, reference), `tile ${col},${row}`).toBeLessThan(await computeJpegTolerance(reference));
      }
    }
  });

  it.each([wsiSamples.camelyonJpeg2000, wsiSamples.wsi2dcmJpeg2000])('decodes every JPEG 2000 tile of $id like OpenJPEG in libvips', async (sample) => {
    const slide = await describeSlide(sample);
    const facts = await readDicomFileFacts(sample.paths[0]!);
    for await (const { level, col, row, path } of everyTile(slide)) {
      // Single-instance TILED_FULL: frame number = row * columns + col + 1 (PS3.3 C.8.12.4.1.3).
      const frameNumber = row * level.gridCols + col + 1;
      const response = await fetch(`${dicomwebUrl}/studies/${facts.studyInstanceUid}/series/${facts.seriesInstanceUid}/instances/${facts.sopInstanceUid}/frames/${frameNumber}`, {
        headers: { accept: 'multipart/related; type="application/octet-stream"; transfer-syntax=*' },
      });
      const body = Buffer.from(await response.arrayBuffer());
      const start = body.indexOf(Buffer.from([0xff, 0x4f, 0xff, 0x51]));
      const reference = await decodeJ2kWithVips(body.subarray(start));
      const tile = await decodeWithSharp(await bytes(await gateway.get(path)));
      expect(meanAbsDiff(tile, reference), path).toBeLessThan(await computeJpegTolerance(reference));
    }
  });

  it.each([wsiSamples.wsi2dcmRaw, wsiSamples.highdicomSm])('encodes every uncompressed tile of $id within JPEG tolerance of its pixels', async (sample) => {
    const slide = await describeSlide(sample);
    const facts = await readDicomFileFacts(sample.paths[0]!);
    for await (const { level, col, row, path } of everyTile(slide)) {
      const frameNumber = row * level.gridCols + col + 1;
      const response = await fetch(`${dicomwebUrl}/studies/${facts.studyInstanceUid}/series/${facts.seriesInstanceUid}/instances/${facts.sopInstanceUid}/frames/${frameNumber}`, {
        headers: { accept: 'multipart/related; type="application/octet-stream"; transfer-syntax=1.2.840.10008.1.2.1' },
      });
      const body = Buffer.from(await response.arrayBuffer());
      const frameBytes = level.tileWidthPx * level.tileHeightPx * 3;
      const headerEnd = body.indexOf('\r\n\r\n') + 4;
      const reference: Pixels = { data: body.subarray(headerEnd, headerEnd + frameBytes), widthPx: level.tileWidthPx, heightPx: level.tileHeightPx };
      const tile = await decodeWithSharp(await bytes(await gateway.get(path)));
      expect(meanAbsDiff(tile, reference), path).toBeLessThan(await computeJpegTolerance(reference));
    }
  });

  it('serves the same bytes from the folder source as from the PACS, for every tile of every slide', async () => {
    const list = await readJson<{ slides: Array<{ id: string }> }>(await gateway.get('/api/slides'));
    for (const { id } of list.slides) {
      const slide = await readJson<SlideJson>(await gateway.get(`/api/slides/${id}`));
      expect(await readJson<SlideJson>(await folder.get(`/api/slides/${id}`))).toEqual(slide);
      for await (const { path } of everyTile(slide)) {
        expect((await bytes(await folder.get(path))).equals(await bytes(await gateway.get(path))), path).toBe(true);
      }
    }
  });

  it('renders label, overview and thumbnail', async () => {
    const id = await slideId(wsiSamples.cmu1T256Q90);
    const label = await decodeWithSharp(await bytes(await gateway.get(`/api/slides/${id}/label.jpg`)));
    expect([label.widthPx, label.heightPx]).toEqual([387, 463]);
    const overview = await decodeWithSharp(await bytes(await gateway.get(`/api/slides/${id}/overview.jpg?size=640`)));
    expect([overview.widthPx, overview.heightPx]).toEqual([640, 216]);
    const thumbnail = await decodeWithSharp(await bytes(await gateway.get(`/api/slides/${id}/thumbnail.jpg`)));
    expect(Math.max(thumbnail.widthPx, thumbnail.heightPx)).toBe(256);
    // H&E: the thumbnail is pinkish, so YBR→RGB went right.
    const mean = [0, 1, 2].map((c) => thumbnail.data.filter((_, i) => i % 3 === c).reduce((a, b) => a + b, 0) / (thumbnail.data.length / 3));
    expect(mean[0]).toBeGreaterThan(mean[1]!);
    expect((await gateway.get(`/api/slides/${await slideId(wsiSamples.cmu1T256J2k)}/label.jpg`)).status).toBe(404);
  });

  it('answers a revalidation with 304 and sends cache headers', async () => {
    const path = `/api/slides/${await slideId(wsiSamples.cmu1T256Q90)}/tiles/1/2/3.jpg`;
    const first = await gateway.get(path);
    expect(first.headers.get('cache-control')).toContain('immutable');
    const etag = first.headers.get('etag')!;
    expect(etag).toMatch(/^"[\w.:-]+"$/);
    const again = await gateway.get(path, { 'if-none-match': etag });
    expect(again.status).toBe(304);
  });

  it('fetches a cold viewport in far fewer PACS requests than tiles', async () => {
    const cold = createTestGateway({ DICOMWEB_URL: dicomwebUrl });
    try {
      const id = await slideId(wsiSamples.cmu1T256Q90);
      await cold.get(`/api/slides/${id}`);
      const viewport = [];
      for (let row = 0; row < 4; row++) for (let col = 0; col < 6; col++) viewport.push(cold.get(`/api/slides/${id}/tiles/0/${col}/${row}.jpg`));
      const responses = await Promise.all(viewport);
      expect(responses.every((r) => r.status === 200)).toBe(true);
      const stats = cold.services.tiles.stats();
      expect(stats.requests).toBeLessThanOrEqual(4);
      expect(stats.requests).toBeLessThan(viewport.length);
    } finally {
      await cold.close();
    }
  });
});
