import { afterAll, describe, expect, it } from 'vitest';
import { createFolderSource, type SlideSource } from '../source/index.js';
import { computeSlide } from '../wsi/index.js';
import { readDicomFileFacts, sharedWsiDir, wsiSamples } from '../../test/support/wsi-data.js';
import { createFrameCache, type FrameAddress } from './frame-cache.js';
import { guessStoredFrameBytes } from './read-plan.js';

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

/** The first `count` instances of the pyramid (levels 0, 1, 2 of the JPEG sample). */
async function instanceAddresses(count: number): Promise<FrameAddress[]> {
  const facts = await readDicomFileFacts(wsiSamples.cmu1T256Q90.paths[0]!);
  const slide = computeSlide(facts.studyInstanceUid, facts.seriesInstanceUid, await folder.readSeries(facts.studyInstanceUid, facts.seriesInstanceUid));
  return slide.levels.slice(0, count).map((level) => {
    const instance = slide.instances[level.tileInstance[0]!]!;
    return { studyUid: slide.studyUid, seriesUid: slide.seriesUid, sopInstanceUid: instance.sopInstanceUid, transferSyntaxUid: instance.transferSyntaxUid, numberOfFrames: instance.numberOfFrames, frameBytes: 256 * 256 * 3 };
  });
}

/** Levels 0, 1, 2 of the JPEG sample, each coarser one pointing to the next finer (as a viewer's tiles carry them). */
async function finerChain(): Promise<[FrameAddress, FrameAddress, FrameAddress]> {
  const [level0, level1, level2] = (await instanceAddresses(3)) as [FrameAddress, FrameAddress, FrameAddress];
  level2.finer = level1;
  level1.finer = level0;
  return [level0, level1, level2];
}

/** Lets background reads (whole-instance, read-ahead) of the folder source finish. */
async function settled(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setTimeout(resolve, 20));
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
    const { source, calls, wholeCalls } = recording(folder);
    // Too small a cache for whole-instance reads: batches only.
    const cache = createFrameCache({ source, maxBytes: 1024 ** 2, prefetchFrames: 8 });
    const address = await level0Address();
    await Promise.all([cache.get(address, 10), cache.get(address, 12), cache.get(address, 40)]);
    expect(calls).toHaveLength(1);
    expect(calls[0]).toEqual(expect.arrayContaining([10, 11, 12, 13, 40, 41]));
    expect(calls[0]!.length).toBe(8);
    await cache.get(address, 11);
    expect(calls).toHaveLength(1);
    expect(wholeCalls).toEqual([]);
    expect(cache.stats()).toMatchObject({ requests: 1, framesFetched: 8 });
  });

  it('reads a small enough instance whole alongside its first batch, and serves the rest from memory', async () => {
    const { source, calls, wholeCalls } = recording(folder);
    const cache = createFrameCache({ source, maxBytes: 64 * 1024 ** 2, prefetchFrames: 4 });
    const address = await level0Address();
    await cache.get(address, 1);
    expect(calls).toEqual([[1, 2, 3, 4]]);
    expect(wholeCalls).toEqual([address.sopInstanceUid]);
    const all = await Promise.all(Array.from({ length: address.numberOfFrames }, (_, i) => cache.get(address, i + 1)));
    expect(calls).toHaveLength(1);
    expect(wholeCalls).toHaveLength(1);
    const direct = await folder.readFrames(address, [1, 5, address.numberOfFrames]);
    expect([all[0]!.data, all[4]!.data, all[address.numberOfFrames - 1]!.data]).toEqual(direct.map((f) => f.data));
  });

  it('serves a first batch from the whole read started alongside it when that lands first', async () => {
    // The batch is held until the test lets it go: as Orthanc once took 120 ms for 64 frames and 30 ms
    // for the 10 MB instance they came from.
    let releaseBatch!: () => void;
    const batchHeld = new Promise<void>((resolve) => (releaseBatch = resolve));
    const { source, calls, wholeCalls } = recording({ ...folder, readFrames: async (ref, frameNumbers, options) => {
      await batchHeld;
      return folder.readFrames(ref, frameNumbers, options);
    } });
    const cache = createFrameCache({ source, maxBytes: 64 * 1024 ** 2, prefetchFrames: 4 });
    const address = await level0Address();
    // Frame 1 is the miss, frame 3 a neighbour asked for while the batch is out.
    const first = cache.get(address, 1);
    await new Promise((resolve) => setImmediate(resolve));
    const neighbour = cache.get(address, 3);
    const [frame1, frame3] = await Promise.all([first, neighbour]);
    expect(calls).toEqual([[1, 2, 3, 4]]);
    expect(wholeCalls).toEqual([address.sopInstanceUid]);
    const direct = await folder.readFrames(address, [1, 3]);
    expect([frame1.data, frame3.data]).toEqual(direct.map((f) => f.data));
    // The batch landing later changes nothing: the same frames, no second copy in memory.
    const bytes = cache.stats().bytes;
    releaseBatch();
    await settled();
    expect(cache.stats().bytes).toBe(bytes);
    expect(await cache.get(address, 1)).toBe(frame1);
  });

  it('reads the whole instance in one request once a second batch of misses shows it is being browsed', async () => {
    const { source, calls, wholeCalls } = recording(folder);
    // A JPEG instance's size is guessed at 1/8 of native (2.6 MB here), over this cache's quarter;
    // the first batch shows its frames are smaller (1.3 MB in all), so the second reads it whole.
    const cache = createFrameCache({ source, maxBytes: 8 * 1024 ** 2, prefetchFrames: 4 });
    const address = await level0Address();
    await cache.get(address, 1);
    expect(calls).toHaveLength(1);
    expect(wholeCalls).toEqual([]);
    await cache.get(address, 50);
    expect(wholeCalls).toEqual([address.sopInstanceUid]);
    const before = cache.stats().requests;
    const all = await Promise.all(Array.from({ length: address.numberOfFrames }, (_, i) => cache.get(address, i + 1)));
    expect(cache.stats().requests).toBe(before);
    // The same bytes as frame-by-frame reads.
    const direct = await folder.readFrames(address, [1, 50, address.numberOfFrames]);
    expect([all[0]!.data, all[49]!.data, all[address.numberOfFrames - 1]!.data]).toEqual(direct.map((f) => f.data));
  });

  it("reads a level's next instance ahead at the first access after an instance was read whole, and no further", async () => {
    const { source, wholeCalls } = recording(folder);
    const cache = createFrameCache({ source, maxBytes: 64 * 1024 ** 2, prefetchFrames: 4 });
    const [first, second, third] = (await instanceAddresses(3)) as [FrameAddress, FrameAddress, FrameAddress];
    first.next = second;
    second.next = third;
    await cache.get(first, 1);
    await settled();
    expect(wholeCalls).toEqual([first.sopInstanceUid]);
    // The next access to the first instance (a hit, or a peek as the warm-tile path does) reads the second.
    expect(cache.peek(first, 2)).toBeDefined();
    await settled();
    expect(wholeCalls).toEqual([first.sopInstanceUid, second.sopInstanceUid]);
    expect(cache.stats().readAheadRequests).toBe(1);
    const requests = cache.stats().requests;
    await Promise.all(Array.from({ length: second.numberOfFrames }, (_, i) => cache.get(second, i + 1)));
    expect(cache.stats().requests).toBe(requests + 1); // the third, read ahead at that first access
    expect(wholeCalls).toEqual([first.sopInstanceUid, second.sopInstanceUid, third.sopInstanceUid]);
    cache.peek(first, 3);
    await settled();
    expect(wholeCalls).toHaveLength(3);
  });

  it('reads the small finer levels ahead at the first access to a level, once, and no large one', async () => {
    const { source, wholeCalls } = recording(folder);
    const cache = createFrameCache({ source, maxBytes: 64 * 1024 ** 2, prefetchFrames: 4 });
    const [level0, level1, level2] = await finerChain();
    // A render (a thumbnail, a tissue mask) reads no level ahead; a viewer's tile does.
    await cache.get(level2, 3);
    await settled();
    expect(wholeCalls).toEqual([level2.sopInstanceUid]);
    wholeCalls.length = 0;
    await cache.get(level2, 1, { forViewer: true });
    await settled();
    // Both levels under it at once.
    expect(wholeCalls).toEqual([level1.sopInstanceUid, level0.sopInstanceUid]);
    expect(cache.stats().readAheadRequests).toBe(2);
    const requests = cache.stats().requests;
    expect(cache.peek(level1, 1)).toBeDefined();
    expect(cache.peek(level0, 1)).toBeDefined();
    cache.peek(level2, 2);
    await settled();
    expect(cache.stats().requests).toBe(requests);

    // A cache whose sixteenth cannot hold the finer level reads nothing ahead.
    const small = recording(folder);
    const smallCache = createFrameCache({ source: small.source, maxBytes: 1024 ** 2, prefetchFrames: 4 });
    const [fine, coarse] = (await instanceAddresses(2)) as [FrameAddress, FrameAddress];
    coarse.finer = fine;
    await smallCache.get(coarse, 1, { forViewer: true });
    await settled();
    expect(small.wholeCalls).not.toContain(fine.sopInstanceUid);
  });

  it('goes on to a finer level the first estimate left out once the level read ahead above it has landed', async () => {
    const { source, wholeCalls } = recording(folder);
    const cache = createFrameCache({ source, maxBytes: 64 * 1024 ** 2, prefetchFrames: 4 });
    const [level0, level1, level2] = await finerChain();
    // Guessed from this, level 0 would not fit the read-ahead limit; measured by level 1's frames, it does.
    level0.frameBytes *= 64;
    await cache.get(level2, 1, { forViewer: true });
    await settled();
    // Level 1 read ahead at the viewer's first access (level 2 itself read whole alongside its first batch), level 0 after it.
    expect(wholeCalls).toEqual([level1.sopInstanceUid, level2.sopInstanceUid, level0.sopInstanceUid]);
    expect(cache.stats().readAheadRequests).toBe(2);
  });

  it('guesses a stored frame at native size, half for lossless and an eighth for lossy compression', () => {
    expect(guessStoredFrameBytes({ transferSyntaxUid: '1.2.840.10008.1.2.1', frameBytes: 800 })).toBe(800);
    expect(guessStoredFrameBytes({ transferSyntaxUid: undefined, frameBytes: 800 })).toBe(800);
    expect(guessStoredFrameBytes({ transferSyntaxUid: '1.2.840.10008.1.2.4.90', frameBytes: 800 })).toBe(400);
    expect(guessStoredFrameBytes({ transferSyntaxUid: '1.2.840.10008.1.2.5', frameBytes: 800 })).toBe(400);
    expect(guessStoredFrameBytes({ transferSyntaxUid: '1.2.840.10008.1.2.4.50', frameBytes: 800 })).toBe(100);
    expect(guessStoredFrameBytes({ transferSyntaxUid: '1.2.840.10008.1.2.4.203', frameBytes: 800 })).toBe(100);
  });

  it('fails the frames waiting on a whole-instance read that fails, and reads again at the next miss', async () => {
    let fail = true;
    const { source, wholeCalls } = recording({ ...folder, readAllFrames: async (ref, layout, signal) => {
      if (!fail) return folder.readAllFrames(ref, layout, signal);
      await new Promise((resolve) => setTimeout(resolve, 50));
      throw new Error('PACS down');
    } });
    const cache = createFrameCache({ source, maxBytes: 64 * 1024 ** 2, prefetchFrames: 4, wholeInstanceAfterBatches: 1 });
    const address = await level0Address();
    const first = cache.get(address, 1);
    first.catch(() => undefined); // it fails before the test awaits it
    await new Promise((resolve) => setImmediate(resolve));
    // Frame 50 waits on the read in flight rather than asking for itself.
    await expect(Promise.all([first, cache.get(address, 50)])).rejects.toThrow('PACS down');
    expect(wholeCalls).toHaveLength(1);
    fail = false;
    expect((await cache.get(address, 50)).data.length).toBeGreaterThan(0);
    expect(wholeCalls).toHaveLength(2);
  });

  it('keeps an instance read whole as one entry of views, counted by the buffer they share and evicted whole', async () => {
    // The instance in one buffer with its frames views into it, as the DICOMweb source hands it over.
    const viaOneBuffer: SlideSource = {
      ...folder,
      readAllFrames: async (ref, layout, signal) => {
        const frames = await folder.readAllFrames(ref, layout, signal);
        const file = Buffer.concat([Buffer.alloc(1000), ...frames.map((f) => f.data)]);
        let offset = 1000;
        return frames.map((f) => ({ ...f, data: file.subarray(offset, (offset += f.data.length)) }));
      },
    };
    const first = await level0Address();
    const whole = await folder.readAllFrames(first, first);
    const fileBytes = 1000 + whole.reduce((sum, f) => sum + f.data.length, 0);
    // An instance is read whole when it fits a quarter of the cache: room for it and little more.
    const maxBytes = 4 * fileBytes + 8 * 1024;
    const cache = createFrameCache({ source: viaOneBuffer, maxBytes, prefetchFrames: 1, wholeInstanceAfterBatches: 1 });
    first.frameBytes = 8 * Math.ceil(fileBytes / first.numberOfFrames); // its size guess: an eighth of native
    await cache.get(first, 1);
    expect(cache.stats()).toMatchObject({ entries: whole.length, wholeInstanceRequests: 1 });
    expect(cache.stats().bytes).toBeGreaterThanOrEqual(fileBytes);
    const frames = await Promise.all(whole.map((f) => cache.get(first, f.frameNumber)));
    expect(frames.map((f) => f.data)).toEqual(whole.map((f) => f.data));
    expect(cache.stats().requests).toBe(1);
    // A frame stored as a browser JPEG shadows the instance's copy.
    const jpeg = { data: Buffer.from('jpeg'), transferSyntaxUid: '1.2.840.10008.1.2.4.50', isBrowserJpeg: true };
    cache.store(first.sopInstanceUid, 2, jpeg);
    expect(cache.peek(first, 2)).toBe(jpeg);
    expect(cache.peek(first, 3)?.data).toEqual(whole[2]!.data);
    // Newer entries that need the room evict the instance whole: none of its views stays behind.
    for (let n = 1; n <= 4; n++) cache.store('9.9.9', n, { ...jpeg, data: Buffer.alloc(fileBytes - 1000) });
    expect(cache.peek(first, 3)).toBeUndefined();
    expect(cache.peek(first, whole.length)).toBeUndefined();
    expect(cache.stats().bytes).toBeLessThanOrEqual(maxBytes);
    // Comparing every frame of the instance byte by byte takes ~3 s alone, past vitest's 5 s default under load.
  }, 20_000);

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
