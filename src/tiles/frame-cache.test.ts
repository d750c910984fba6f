import { afterAll, describe, expect, it } from 'vitest';
import { createFolderSource, type SlideSource } from '../source/index.js';
import { computeSlide } from '../wsi/index.js';
import { readDicomFileFacts, sharedWsiDir, wsiSamples } from '../../test/support/wsi-data.js';
import { createFrameCache, type FrameAddress } from './frame-cache.js';

/** The real folder source, with every readFrames call recorded. */
function recording(source: SlideSource) {
  const calls: number[][] = [];
  const wholeCalls: string[] = [];
  const wrapped: SlideSource = {
    ...source,
    readFrames: (ref, frameNumbers, options) => {
      calls.push([...frameNumbers]);
      return source.readFrames(ref, frameNumbers, options);
    },
    readAllFrames: (ref, layout, signal) => {
      wholeCalls.push(ref.sopInstanceUid);
      return source.readAllFrames(ref, layout, signal);
    },
  };
  return { source: wrapped, calls, wholeCalls };
}

const folder = createFolderSource({ dir: sharedWsiDir });
afterAll(() => folder.close());

async function level0Address(): Promise<FrameAddress> {
  const facts = await readDicomFileFacts(wsiSamples.cmu1T256Q90.paths[0]!);
  const slide = computeSlide(facts.studyInstanceUid, facts.seriesInstanceUid, await folder.readSeries(facts.studyInstanceUid, facts.seriesInstanceUid));
  const instance = slide.instances[slide.levels[0]!.tileInstance[0]!]!;
  return { studyUid: slide.studyUid, seriesUid: slide.seriesUid, sopInstanceUid: instance.sopInstanceUid, transferSyntaxUid: instance.transferSyntaxUid, numberOfFrames: instance.numberOfFrames, frameBytes: 256 * 256 * 3 };
}

describe('frame cache', () => {
  it('makes one source request for concurrent requests of one frame', async () => {
    const { source, calls } = recording(folder);
    const cache = createFrameCache({ source, maxBytes: 64 * 1024 ** 2, prefetchFrames: 1 });
    const address = await level0Address();
    const frames = await Promise.all(Array.from({ length: 10 }, () => cache.get(address, 5)));
    expect(calls).toEqual([[5]]);
    expect(new Set(frames).size).toBe(1);
  });

  it('batches misses of one tick with their neighbours into one request, then serves neighbours from memory', async () => {
    const { source, calls } = recording(folder);
    const cache = createFrameCache({ source, maxBytes: 64 * 1024 ** 2, prefetchFrames: 8 });
    const address = await level0Address();
    await Promise.all([cache.get(address, 10), cache.get(address, 12), cache.get(address, 40)]);
    expect(calls).toHaveLength(1);
    expect(calls[0]).toEqual(expect.arrayContaining([10, 11, 12, 13, 40, 41]));
    expect(calls[0]!.length).toBe(8);
    await cache.get(address, 11);
    expect(calls).toHaveLength(1);
    expect(cache.stats()).toMatchObject({ requests: 1, framesFetched: 8 });
  });

  it('reads the whole instance in one request once a second batch of misses shows it is being browsed', async () => {
    const { source, calls, wholeCalls } = recording(folder);
    const cache = createFrameCache({ source, maxBytes: 64 * 1024 ** 2, prefetchFrames: 4 });
    const address = await level0Address();
    await cache.get(address, 1);
    expect(calls).toHaveLength(1);
    await cache.get(address, 50);
    expect(wholeCalls).toEqual([address.sopInstanceUid]);
    const before = cache.stats().requests;
    const all = await Promise.all(Array.from({ length: address.numberOfFrames }, (_, i) => cache.get(address, i + 1)));
    expect(cache.stats().requests).toBe(before);
    // The same bytes as frame-by-frame reads.
    const direct = await folder.readFrames(address, [1, 50, address.numberOfFrames]);
    expect([all[0]!.data, all[49]!.data, all[address.numberOfFrames - 1]!.data]).toEqual(direct.map((f) => f.data));
  });

  it('never holds more bytes than its bound', async () => {
    const { source } = recording(folder);
    const maxBytes = 100 * 1024;
    const cache = createFrameCache({ source, maxBytes, prefetchFrames: 16 });
    const address = await level0Address();
    for (let n = 1; n <= address.numberOfFrames; n += 16) await cache.get(address, n);
    expect(cache.stats().bytes).toBeLessThanOrEqual(maxBytes);
    expect(cache.stats().entries).toBeGreaterThan(0);
  });

  it('rejects every waiter when the source fails, and retries on the next request', async () => {
    let fail = true;
    const flaky: SlideSource = { ...folder, readFrames: (ref, n, o) => (fail ? Promise.reject(new Error('PACS down')) : folder.readFrames(ref, n, o)) };
    const cache = createFrameCache({ source: flaky, maxBytes: 64 * 1024 ** 2, prefetchFrames: 4 });
    const address = await level0Address();
    await expect(Promise.all([cache.get(address, 1), cache.get(address, 2)])).rejects.toThrow('PACS down');
    fail = false;
    expect((await cache.get(address, 2)).data.length).toBeGreaterThan(0);
  });
});
