/**
 * The embedding pipeline of one slide: frames fetched ahead (frame-feed), decoded with several in
 * flight, patches cut into reused batch buffers, batches sent to the model one after another and each
 * result committed to the store before the next is counted done.
 *
 * Cutting runs ahead of the model by up to BUFFERS - 1 batches: while the model works on batch k, the
 * batches after it are being fetched, decoded and cut, so an accelerator never waits for the PACS; when
 * the model is the slower part, cutting stops (backpressure) instead of piling up memory.
 */
import { setMaxListeners } from 'node:events';
import type { SlideSource } from '../../source/types.js';
import type { FrameDecoder } from '../../tiles/codecs/index.js';
import type { Level, Slide } from '../../wsi/index.js';
import type { EmbeddingModel } from '../runtime/types.js';
import { createFrameFeed, type FeedTile } from './frame-feed.js';
import { computeTilesOfRect, cutPatch, type RectLevelPx } from './patch-cutter.js';
import type { RetryPolicy } from './retry.js';

/** Batch buffers in the pool: one with the model, the others being filled. */
const BUFFERS = 3;

/** One batch's results, as the store commits them. Grid indexes are ordinals of the selected patches. */
export interface PatchBatchResult {
  /** Patches [previous gridEnd, gridEnd) are done. */
  gridEnd: number;
  /** Embeddings of the patches that were embedded, in order: rows x dim. */
  embeddings: Float32Array;
  /** Level-0 pixel origin (x, y) of each embedded patch. */
  coordsPx: Int32Array;
  skipped: Array<{ gridIndex: number; reason: string }>;
}

export interface EmbedPatchesOptions {
  slide: Slide;
  level: Level;
  source: SlideSource;
  model: EmbeddingModel;
  /** Every selected patch: its rectangle in level px and its level-0 origin (x, y pairs). */
  rects: readonly RectLevelPx[];
  originsLevel0Px: Int32Array;
  /** Patches before this one are already stored (a resumed job). */
  startAt: number;
  framesPerRequest: number;
  retry: RetryPolicy;
  signal?: AbortSignal;
  /** Decodes the frames (passed to the frame feed). @default decoding on the calling thread */
  decoder?: Pick<FrameDecoder, 'decodeFrame'>;
  /** Stores a batch; the next batch is committed only after this settles (while the model embeds it). */
  commit(batch: PatchBatchResult): Promise<void>;
}

export interface EmbedPatchesStats {
  embedded: number;
  skipped: number;
  requests: number;
  frames: number;
}

interface FilledBatch {
  buffer: Uint8Array;
  start: number;
  end: number;
  /** Ordinals embedded, in buffer order. */
  embedded: number[];
  skipped: Array<{ gridIndex: number; reason: string }>;
}

/** A pool of buffers that doubles as the pipeline's backpressure: no free buffer, no cutting. */
function createBufferPool(count: number, bytes: number, signal: AbortSignal) {
  const free: Uint8Array[] = Array.from({ length: count }, () => new Uint8Array(bytes));
  const waiting: Array<{ resolve: (b: Uint8Array) => void; reject: (e: unknown) => void }> = [];
  // A stopped pipeline must not leave its producer waiting for a buffer nobody will give back.
  signal.addEventListener('abort', () => waiting.splice(0).forEach((w) => w.reject(signal.reason)), { once: true });
  return {
    acquire: (): Promise<Uint8Array> => {
      if (signal.aborted) return Promise.reject(signal.reason);
      return free.length > 0 ? Promise.resolve(free.pop()!) : new Promise((resolve, reject) => waiting.push({ resolve, reject }));
    },
    release(buffer: Uint8Array) {
      const next = waiting.shift();
      if (next) next.resolve(buffer);
      else free.push(buffer);
    },
  };
}

export async function embedPatches(options: EmbedPatchesOptions): Promise<EmbedPatchesStats> {
  const { level, model, rects, startAt, signal } = options;
  const sizePx = model.manifest.input.sizePx;
  const patchBytes = sizePx * sizePx * 3;
  const batchSize = model.manifest.maxBatch;
  const tilesPerPatch = rects.slice(startAt).map((rect) => computeTilesOfRect(level, rect));
  const feed = createFrameFeed({ ...options, tilesPerPatch });
  const stats: EmbedPatchesStats = { embedded: 0, skipped: 0, requests: 0, frames: 0 };
  // Fails the producer when the consumer fails and the other way round, and follows the caller's signal.
  const stop = new AbortController();
  const stopped = signal ? AbortSignal.any([signal, stop.signal]) : stop.signal;
  setMaxListeners(64, stopped);
  const pool = createBufferPool(BUFFERS, batchSize * patchBytes, stopped);

  async function fill(start: number, end: number): Promise<FilledBatch> {
    const buffer = await pool.acquire();
    const reasons = await Promise.all(
      rects.slice(start, end).map(async (rect, i) => {
        const tileIndexes = tilesPerPatch[start + i - startAt]!;
        const decoded = await Promise.all(tileIndexes.map((t) => feed.tile(t)));
        const tiles = new Map<number, FeedTile>(tileIndexes.map((t, k) => [t, decoded[k]]));
        return (await cutPatch(level, rect, tiles, sizePx, buffer, i * patchBytes))?.reason;
      }),
    );
    for (let ordinal = start; ordinal < end; ordinal++) feed.release(ordinal - startAt);
    const batch: FilledBatch = { buffer, start, end, embedded: [], skipped: [] };
    reasons.forEach((reason, i) => {
      if (reason !== undefined) {
        batch.skipped.push({ gridIndex: start + i, reason });
        return;
      }
      // Close the gaps skipped patches leave, so the model sees `embedded.length` patches in a row.
      if (batch.embedded.length !== i) buffer.copyWithin(batch.embedded.length * patchBytes, i * patchBytes, (i + 1) * patchBytes);
      batch.embedded.push(start + i);
    });
    return batch;
  }

  const queue: Array<Promise<FilledBatch>> = [];
  let wake: (() => void) | undefined;
  const producer = (async () => {
    for (let start = startAt; start < rects.length && !stopped.aborted; start += batchSize) {
      const filled = fill(start, Math.min(rects.length, start + batchSize));
      queue.push(filled);
      wake?.();
      await filled;
    }
  })();
  // The producer's own failure (a PACS that stayed down) says more than the abort it then causes.
  let producerFailure: unknown;
  producer.catch((error: unknown) => {
    if (!stopped.aborted) producerFailure = error;
    stop.abort();
  });

  // One commit in flight, overlapping the next batch's inference: a commit syncs files to disk, and
  // awaiting it before the next embed left the model idle for every fsync (about 10% of the
  // end-to-end time in bench/embed). Commits still run one after another, in grid order.
  let committing: Promise<void> = Promise.resolve();
  try {
    for (let start = startAt; start < rects.length; start += batchSize) {
      while (queue.length === 0) {
        stopped.throwIfAborted();
        await Promise.race([producer, new Promise<void>((resolve) => (wake = resolve))]);
      }
      const batch = await queue.shift()!;
      stopped.throwIfAborted();
      let embeddings: Float32Array = new Float32Array(0);
      try {
        if (batch.embedded.length > 0) embeddings = await model.embed({ pixels: batch.buffer, count: batch.embedded.length, sizePx });
      } finally {
        pool.release(batch.buffer);
      }
      const coordsPx = new Int32Array(batch.embedded.length * 2);
      batch.embedded.forEach((ordinal, i) => {
        coordsPx[2 * i] = options.originsLevel0Px[2 * ordinal]!;
        coordsPx[2 * i + 1] = options.originsLevel0Px[2 * ordinal + 1]!;
      });
      await committing;
      committing = options.commit({ gridEnd: batch.end, embeddings, coordsPx, skipped: batch.skipped }).then(() => {
        stats.embedded += batch.embedded.length;
        stats.skipped += batch.skipped.length;
      });
      committing.catch(() => undefined); // awaited before the next commit, or below
    }
    await committing;
  } catch (err) {
    stop.abort();
    // A commit still running finishes (or fails) before the caller closes the run under it.
    await committing.catch(() => undefined);
    await producer.catch(() => undefined);
    throw producerFailure ?? err;
  }
  await producer;
  stats.requests = feed.stats.requests;
  stats.frames = feed.stats.frames;
  return stats;
}
