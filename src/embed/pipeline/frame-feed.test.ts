import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sharedWsiDir } from '../../../test/support/wsi-data.js';
import { createFolderSource } from '../../source/index.js';
import { computeFramePixelFormat, createFrameDecoder, decodeFrame, type FrameDecoder, type RgbImage } from '../../tiles/codecs/index.js';
import { createSlideCatalog } from '../../tiles/index.js';
import type { Slide } from '../../wsi/index.js';
import { BadFrame, createFrameFeed } from './frame-feed.js';
import { DEFAULT_RETRY } from './retry.js';

describe('frame feed decoding through the gateway\'s decoder', () => {
  const source = createFolderSource({ dir: join(sharedWsiDir, 'cmu1-t256-j2k') });
  const decoder = createFrameDecoder({ threads: 1 });
  let slide: Slide;
  beforeAll(async () => {
    const [series] = await source.listSeries();
    slide = await createSlideCatalog({ source }).getSlide(series!.studyUid, series!.seriesUid);
  });
  afterAll(async () => {
    await decoder.close();
    await source.close();
  });

  function createFeed(feedDecoder: Pick<FrameDecoder, 'decodeFrame'>) {
    const level = slide.levels[0]!;
    return createFrameFeed({ slide, level, source, tilesPerPatch: [[0, 1]], framesPerRequest: 8, retry: DEFAULT_RETRY, decoder: feedDecoder });
  }

  it('decodes JPEG 2000 frames with the decoder it is given, to the main thread\'s pixels', async () => {
    const calls: string[] = [];
    const feed = createFeed({
      decodeFrame: (data, transferSyntaxUid, format) => {
        calls.push(transferSyntaxUid);
        return decoder.decodeFrame(data, transferSyntaxUid, format);
      },
    });
    const tile = await feed.tile(1);
    expect(calls).toEqual(['1.2.840.10008.1.2.4.90']);
    const level = slide.levels[0]!;
    const instance = slide.instances[level.tileInstance[1]!]!;
    const ref = { studyUid: slide.studyUid, seriesUid: slide.seriesUid, sopInstanceUid: instance.sopInstanceUid };
    const [frame] = await source.readFrames(ref, [level.tileFrameNumber[1]!]);
    const expected = await decodeFrame(frame!.data, frame!.transferSyntaxUid, computeFramePixelFormat(instance));
    expect(tile).not.toBeInstanceOf(BadFrame);
    expect((tile as RgbImage).data.equals(expected.data)).toBe(true);
  });

  it('fails, rather than skipping the frame as bad, when the decoder has been closed', async () => {
    const closed = createFrameDecoder({ threads: 1 });
    await closed.close();
    await expect(createFeed(closed).tile(0)).rejects.toMatchObject({ code: 'CLOSING' });
  });
});
