import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readEncodedInstances, type EncodedInstance } from '../../../test/support/encoded-frames.js';
import { sharedWsiDir } from '../../../test/support/wsi-data.js';
import { ClosingError, CodecError } from '../../errors.js';
import { createDecodePool, type DecodePool } from './decode-pool.js';
import { createFrameDecoder, decodeFrame, transcodeFrameToJpeg } from './decode-frame.js';
import { TransferSyntax } from './transfer-syntax.js';
import type { WasmDecodeRequest } from './wasm-run.js';

/** A worker that follows a one-letter command in its request (see the file). */
const fakeWorkerUrl = new URL('../../../test/support/fake-decode-worker.mjs', import.meta.url);
const pools: DecodePool[] = [];

function createFakePool(threads: number, decodeTimeoutMs?: number, idleMs?: number): DecodePool {
  const pool = createDecodePool({ threads, workerUrl: fakeWorkerUrl, decodeTimeoutMs, idleMs });
  pools.push(pool);
  return pool;
}

/** A request for the fake worker: `command` and its argument as the first bytes. */
function fakeRequest(command: string, argument = 0): WasmDecodeRequest {
  return { codec: 'jpeg2000', data: Uint8Array.from([command.charCodeAt(0), argument]) };
}

/** When the fake worker ran a request (epoch ms, comparable across threads). */
function readTiming(result: unknown): { startedMs: number; endedMs: number } {
  return (result as { timing: { startedMs: number; endedMs: number } }).timing;
}

afterEach(async () => {
  await Promise.all(pools.splice(0).map((pool) => pool.close()));
});

describe('decode pool (fake workers)', () => {
  it('starts no worker until the first decode, then at most `threads`', async () => {
    const pool = createFakePool(2);
    expect(pool.stats()).toEqual({ workers: 0, busy: 0, queued: 0 });
    const done = Promise.all(Array.from({ length: 5 }, () => pool.run(fakeRequest('b', 5))));
    expect(pool.stats()).toEqual({ workers: 2, busy: 2, queued: 3 });
    await done;
    expect(pool.stats()).toEqual({ workers: 2, busy: 0, queued: 0 });
  });

  it('runs decodes on two threads at once with threads = 2, never three', async () => {
    const pool = createFakePool(2);
    // Each blocks its worker for 300 ms, as a synchronous WASM decode does.
    const results = await Promise.all(Array.from({ length: 4 }, () => pool.run(fakeRequest('b', 30))));
    const runs = results.map(readTiming);
    const runningAt = (ms: number): number => runs.filter((r) => r.startedMs <= ms && ms < r.endedMs).length;
    const mostAtOnce = Math.max(...runs.map((r) => runningAt(r.startedMs)));
    expect(mostAtOnce).toBe(2);
  });

  it('stops a worker idle for idleMs, keeps a busy one, and starts a fresh one for the next decode', async () => {
    const pool = createFakePool(1, undefined, 150);
    const threadOf = async (): Promise<number> => ((await pool.run(fakeRequest('o'))) as unknown as { threadId: number }).threadId;
    const first = await threadOf();
    // Kept while decodes keep coming within idleMs of each other, even over longer than idleMs in all.
    for (let i = 0; i < 4; i++) {
      await new Promise((resolve) => setTimeout(resolve, 60));
      expect(await threadOf()).toBe(first);
    }
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(pool.stats()).toEqual({ workers: 0, busy: 0, queued: 0 });
    expect(await threadOf()).not.toBe(first);
    expect(pool.stats().workers).toBe(1);
  });

  it('fails the decode of a worker that exits and replaces the worker', async () => {
    const pool = createFakePool(1);
    const [crashed, next] = await Promise.allSettled([pool.run(fakeRequest('x')), pool.run(fakeRequest('o'))]);
    expect(crashed.status === 'rejected' && crashed.reason).toBeInstanceOf(CodecError);
    expect(crashed.status === 'rejected' && (crashed.reason as Error).message).toMatch(/exited with code 3/);
    expect(next.status).toBe('fulfilled');
    expect(pool.stats()).toEqual({ workers: 1, busy: 0, queued: 0 });
  });

  it('fails a decode that runs past the timeout, stops its worker and runs the queue on a fresh one', async () => {
    const pool = createFakePool(1, 150);
    // Blocks its worker for 2 s, as a codestream crafted to loop would (for ever).
    const [stuck, queued] = await Promise.allSettled([pool.run(fakeRequest('b', 200)), pool.run(fakeRequest('o'))]);
    expect(stuck.status === 'rejected' && stuck.reason).toBeInstanceOf(CodecError);
    expect(stuck.status === 'rejected' && (stuck.reason as Error).message).toMatch(/longer than 0.15 s/);
    expect(queued.status).toBe('fulfilled');
    expect(pool.stats()).toEqual({ workers: 1, busy: 0, queued: 0 });
    // A quick decode is not touched by the timer of the one before.
    await expect(pool.run(fakeRequest('b', 5))).resolves.toBeDefined();
  });

  it('fails the decode of a worker that throws, without crashing the process', async () => {
    const pool = createFakePool(1);
    await expect(pool.run(fakeRequest('t'))).rejects.toThrow(CodecError);
    await expect(pool.run(fakeRequest('t'))).rejects.toThrow(/fake decoder blew up/);
    await expect(pool.run(fakeRequest('o'))).resolves.toBeDefined();
  });

  it('fails decodes with CodecError when a worker cannot start, without spawning in a loop', async () => {
    const pool = createDecodePool({ threads: 2, workerUrl: new URL('./no-such-worker.mjs', fakeWorkerUrl) });
    pools.push(pool);
    const outcomes = await Promise.allSettled([1, 2, 3].map(() => pool.run(fakeRequest('o'))));
    expect(outcomes.map((o) => o.status === 'rejected' && o.reason instanceof CodecError)).toEqual([true, true, true]);
    expect(pool.stats()).toEqual({ workers: 0, busy: 0, queued: 0 });
  });

  it('closes idempotently, failing running, queued and later decodes with ClosingError', async () => {
    const pool = createFakePool(1);
    const running = expect(pool.run(fakeRequest('b', 100))).rejects.toThrow(ClosingError);
    const queued = expect(pool.run(fakeRequest('o'))).rejects.toThrow(ClosingError);
    expect(pool.stats()).toEqual({ workers: 1, busy: 1, queued: 1 });
    const first = pool.close();
    expect(pool.close()).toBe(first);
    await first;
    await pool.close();
    await Promise.all([running, queued]);
    await expect(pool.run(fakeRequest('o'))).rejects.toThrow(ClosingError);
    expect(pool.stats()).toEqual({ workers: 0, busy: 0, queued: 0 });
  });

  it('refuses fewer than one thread', () => {
    expect(() => createDecodePool({ threads: 0 })).toThrow(RangeError);
  });
});

describe('decoding through a pool of real WASM workers', () => {
  let j2k: EncodedInstance[] = [];
  let jpegLs: EncodedInstance[] = [];
  const pool = createDecodePool({ threads: 2 });
  const decoder = createFrameDecoder({ threads: 2 });
  beforeAll(async () => {
    j2k = await readEncodedInstances(join(sharedWsiDir, 'cmu1-t256-j2k'));
    jpegLs = (await readEncodedInstances(join(sharedWsiDir, 'public/highdicom'))).filter(
      (instance) => instance.transferSyntaxUid === TransferSyntax.jpegLsLossless,
    );
  });
  afterAll(() => Promise.all([pool.close(), decoder.close()]));

  it('leaves a JPEG frame to sharp, starting no worker, unless JPEG is asked to go to the runner', async () => {
    const [jpeg] = await readEncodedInstances(join(sharedWsiDir, 'public/google-ezwsi'));
    const image = await decodeFrame(jpeg!.frames[0]!, jpeg!.transferSyntaxUid, jpeg!.format, pool.run);
    expect(image.widthPx).toBe(jpeg!.format.columns);
    expect(pool.stats().workers).toBe(0);
  });

  it('decodes JPEG frames (YBR_FULL_422 and RGB, several slides) in the pool to exactly the pixels sharp gives', async () => {
    const slides = ['cmu1-t256-q90', 'cmu1-default', 'public/google-ezwsi', 'public/google-wsi2dcm'];
    const checked = new Set<string>();
    for (const slide of slides) {
      for (const { frames, transferSyntaxUid, format } of await readEncodedInstances(join(sharedWsiDir, slide))) {
        if (transferSyntaxUid !== TransferSyntax.jpegBaseline) continue;
        // A spread of frames per instance: first, middle, last.
        for (const frame of [frames[0]!, frames[frames.length >> 1]!, frames.at(-1)!]) {
          const [pooled, bySharp] = await Promise.all([decoder.decodeFrame(frame, transferSyntaxUid, format), decodeFrame(frame, transferSyntaxUid, format)]);
          expect([pooled.widthPx, pooled.heightPx]).toEqual([bySharp.widthPx, bySharp.heightPx]);
          expect(pooled.data.equals(bySharp.data)).toBe(true);
        }
        checked.add(`${slide} ${format.photometricInterpretation}`);
      }
    }
    expect([...checked].some((s) => s.endsWith('YBR_FULL_422'))).toBe(true);
    expect(checked.size).toBeGreaterThanOrEqual(4);
  }, 60_000);

  it('rejects a corrupt JPEG frame in the pool with a CodecError, then decodes good frames', async () => {
    const [jpeg] = await readEncodedInstances(join(sharedWsiDir, 'cmu1-t256-q90'));
    const { frames, transferSyntaxUid, format } = jpeg!;
    const truncated = frames[5]!.subarray(0, 300);
    await expect(decoder.decodeFrame(truncated, transferSyntaxUid, format)).rejects.toThrow(CodecError);
    await expect(decoder.decodeFrame(Buffer.from('no JPEG here'), transferSyntaxUid, format)).rejects.toThrow(/could not be decoded/);
    const good = await decoder.decodeFrame(frames[5]!, transferSyntaxUid, format);
    expect(good.data.equals((await decodeFrame(frames[5]!, transferSyntaxUid, format)).data)).toBe(true);
  });

  it('decodes every JPEG 2000 frame of cmu1-t256-j2k to exactly the pixels of a main-thread decode', async () => {
    expect(j2k.map((instance) => instance.frames.length)).toEqual([108, 30, 9, 4, 1]);
    for (const { frames, transferSyntaxUid, format } of j2k) {
      const pooled = await Promise.all(frames.map((frame) => decodeFrame(frame, transferSyntaxUid, format, pool.run)));
      for (const [index, frame] of frames.entries()) {
        const inThread = await decodeFrame(frame, transferSyntaxUid, format);
        expect(pooled[index]!.data.equals(inThread.data)).toBe(true);
        expect([pooled[index]!.widthPx, pooled[index]!.heightPx]).toEqual([inThread.widthPx, inThread.heightPx]);
      }
    }
    expect(pool.stats()).toEqual({ workers: 2, busy: 0, queued: 0 });
  }, 60_000);

  it('decodes every JPEG-LS frame of highdicom sm_image_jpegls.dcm exactly as on the main thread', async () => {
    expect(jpegLs).toHaveLength(1);
    const { frames, transferSyntaxUid, format } = jpegLs[0]!;
    expect(frames).toHaveLength(25);
    for (const frame of frames) {
      const [pooled, inThread] = await Promise.all([decodeFrame(frame, transferSyntaxUid, format, pool.run), decodeFrame(frame, transferSyntaxUid, format)]);
      expect(pooled.data.equals(inThread.data)).toBe(true);
    }
  });

  it('transcodes to the same JPEG bytes and leaves the caller\'s frame intact', async () => {
    const { frames, transferSyntaxUid, format } = j2k[0]!;
    const frame = frames[40]!;
    const before = Buffer.from(frame);
    const pooled = await decoder.transcodeFrameToJpeg(frame, transferSyntaxUid, format, { quality: 80 });
    expect(pooled.equals(await transcodeFrameToJpeg(frame, transferSyntaxUid, format, { quality: 80 }))).toBe(true);
    expect(frame.equals(before)).toBe(true);
  });

  it('rejects a corrupt frame with the main thread\'s CodecError, then decodes good frames', async () => {
    const { frames, transferSyntaxUid, format } = j2k[0]!;
    const truncated = frames[2]!.subarray(0, 200);
    const inThread = await decodeFrame(truncated, transferSyntaxUid, format).catch((error: unknown) => error);
    const pooled = await decoder.decodeFrame(truncated, transferSyntaxUid, format).catch((error: unknown) => error);
    expect(inThread).toBeInstanceOf(CodecError);
    expect(pooled).toBeInstanceOf(CodecError);
    expect((pooled as Error).message).toBe((inThread as Error).message);
    const good = await decoder.decodeFrame(frames[2]!, transferSyntaxUid, format);
    expect(good.data.equals((await decodeFrame(frames[2]!, transferSyntaxUid, format)).data)).toBe(true);
  });
});
