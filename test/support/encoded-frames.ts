/**
 * The frames of a folder of Part 10 files as the gateway reads them (the folder source, which uses
 * src/source/part10.ts), still encoded, with each instance's pixel description: the input of codec
 * tests and of bench/decode.ts.
 */
import { createFolderSource } from '../../src/source/index.js';
import { computeFramePixelFormat, type FramePixelFormat } from '../../src/tiles/codecs/index.js';
import { computeNativeFrameBytes } from '../../src/wsi/index.js';

export interface EncodedInstance {
  sopInstanceUid: string;
  /** TotalPixelMatrixColumns: the largest is level 0. */
  totalWidthPx: number;
  transferSyntaxUid: string;
  format: FramePixelFormat;
  /** Frame 1 first. */
  frames: Buffer[];
}

/** Every instance of every series in `dir` (scanned recursively), largest image first. */
export async function readEncodedInstances(dir: string): Promise<EncodedInstance[]> {
  const source = createFolderSource({ dir });
  try {
    const instances: EncodedInstance[] = [];
    for (const series of await source.listSeries()) {
      for (const instance of await source.readSeries(series.studyUid, series.seriesUid)) {
        const ref = { studyUid: series.studyUid, seriesUid: series.seriesUid, sopInstanceUid: instance.sopInstanceUid };
        const layout = { numberOfFrames: instance.numberOfFrames, frameBytes: computeNativeFrameBytes(instance) };
        const frames = await source.readAllFrames(ref, layout);
        instances.push({
          sopInstanceUid: instance.sopInstanceUid,
          totalWidthPx: instance.totalWidthPx,
          transferSyntaxUid: frames[0]?.transferSyntaxUid ?? instance.transferSyntaxUid ?? '',
          format: computeFramePixelFormat(instance),
          frames: frames.map((f) => f.data),
        });
      }
    }
    return instances.sort((a, b) => b.totalWidthPx - a.totalWidthPx);
  } finally {
    await source.close();
  }
}
