/**
 * The frames a run of patches needs, fetched ahead in large multi-frame requests and decoded once.
 *
 * A PACS's speed is set by its request count, not its bytes (DESIGN.md: 35 frames/s one at a time,
 * ~6,800/s at 200 per request), so the feed walks the patches in order, lists the frames in the order
 * they are first needed and asks for them `framesPerRequest` at a time, a few requests ahead of the
 * patches being cut. Each frame is decoded once, when a patch first asks for it, and dropped after
 * the last patch that uses it: memory stays at a band of frames, whatever the slide's size.
 */
import { ClosingError } from '../../errors.js';
import type { SlideSource } from '../../source/types.js';
import { computeFramePixelFormat, decodeFrame, type FrameDecoder, type RgbImage } from '../../tiles/codecs/index.js';
import type { Level, Slide } from '../../wsi/index.js';
import { withRetry, type RetryPolicy } from './retry.js';

/** A frame that could not be decoded: the patches that need it are skipped, not the slide. */
export class BadFrame {
  constructor(readonly reason: string) {}
}

/** A decoded tile, `undefined` for a sparse level's missing tile (glass), or why it is unusable. */
export type FeedTile = RgbImage | undefined | BadFrame;

export interface FrameFeedOptions {
  slide: Slide;
  level: Level;
  source: SlideSource;
  /** For each patch, in the order they will be cut, the tile indexes (row * gridCols + col) it covers. */
  tilesPerPatch: readonly (readonly number[])[];
  framesPerRequest: number;
  /** Requests fetched ahead of the patch being cut. @default 3 */
  requestsAhead?: number;
  retry: RetryPolicy;
  signal?: AbortSignal;
  /**
   * Decodes the frames: the gateway's (tiles.decoder), whose worker pool decodes several frames at once
   * off the event loop (JPEG with libjpeg-turbo at about half sharp's CPU per tile).
   * @default decoding on the calling thread
   */
  decoder?: Pick<FrameDecoder, 'decodeFrame'>;
}

interface FetchRequest {
  instanceIndex: number;
  frameNumbers: number[];
  tiles: number[];
  done?: Promise<void>;
}

export interface FrameFeed {
  /** The decoded tile, fetching its request (and those before it) if needed. */
  tile(tileIndex: number): Promise<FeedTile>;
  /** Patch `patchOrdinal` is cut: frames no later patch uses are dropped. */
  release(patchOrdinal: number): void;
  /** Requests made and frames fetched, for logs and benchmarks. */
  readonly stats: { requests: number; frames: number };
}


/**
 * Groups tiles, in first-need order, into requests of one instance and at most `perRequest` frames.
 * Each instance has its own open request: where a band of patches straddles two instances (the rows
 * where one part of a concatenation ends), their tiles alternate, and closing the request at every
 * switch made 1-2 frame requests (161 requests for 4,524 frames in bench/embed).
 */
export function planRequests(level: Level, tilesInNeedOrder: readonly number[], perRequest: number): FetchRequest[] {
  const requests: FetchRequest[] = [];
  const open = new Map<number, FetchRequest>();
  for (const tile of tilesInNeedOrder) {
    const instanceIndex = level.tileInstance[tile]!;
    if (instanceIndex < 0) continue;
    let current = open.get(instanceIndex);
    if (!current || current.tiles.length >= perRequest) {
      current = { instanceIndex, frameNumbers: [], tiles: [] };
      open.set(instanceIndex, current);
      requests.push(current);
    }
    current.frameNumbers.push(level.tileFrameNumber[tile]!);
    current.tiles.push(tile);
  }
  return requests;
}

export function createFrameFeed(options: FrameFeedOptions): FrameFeed {
  const { slide, level, source, tilesPerPatch, signal } = options;
  const ahead = options.requestsAhead ?? 3;
  const decoder = options.decoder ?? { decodeFrame };

  // First and last patch that needs each tile.
  const lastUse = new Map<number, number>();
  const needOrder: number[] = [];
  tilesPerPatch.forEach((tiles, ordinal) => {
    for (const t of tiles) {
      if (!lastUse.has(t)) needOrder.push(t);
      lastUse.set(t, ordinal);
    }
  });
  const requests = planRequests(level, needOrder, options.framesPerRequest);
  const requestOfTile = new Map<number, number>();
  requests.forEach((r, i) => r.tiles.forEach((t) => requestOfTile.set(t, i)));

  const encoded = new Map<number, { data: Buffer; transferSyntaxUid: string }>();
  const decoded = new Map<number, Promise<FeedTile>>();
  const stats = { requests: 0, frames: 0 };
  let started = 0;

  function start(index: number): Promise<void> {
    const request = requests[index]!;
    request.done ??= (async () => {
      const instance = slide.instances[request.instanceIndex]!;
      const ref = { studyUid: slide.studyUid, seriesUid: slide.seriesUid, sopInstanceUid: instance.sopInstanceUid };
      const frames = await withRetry(
        () => source.readFrames(ref, request.frameNumbers, { transferSyntaxUid: instance.transferSyntaxUid, signal }),
        options.retry,
        signal,
      );
      stats.requests++;
      stats.frames += frames.length;
      const byNumber = new Map(frames.map((f) => [f.frameNumber, f]));
      request.tiles.forEach((tile, i) => {
        const frame = byNumber.get(request.frameNumbers[i]!);
        if (frame) encoded.set(tile, frame);
      });
    })();
    return request.done;
  }

  /** Starts request `index` and keeps `ahead` more in flight behind it. */
  function fetchThrough(index: number): Promise<void> {
    const until = Math.min(requests.length, index + 1 + ahead);
    while (started < until) start(started++).catch(() => undefined);
    return start(index);
  }

  async function decodeTile(tile: number): Promise<FeedTile> {
    const instanceIndex = level.tileInstance[tile]!;
    if (instanceIndex < 0) return undefined;
    await fetchThrough(requestOfTile.get(tile)!);
    const frame = encoded.get(tile);
    encoded.delete(tile);
    if (!frame) return new BadFrame(`the PACS did not return frame ${level.tileFrameNumber[tile]} of level ${level.index}`);
    try {
      return await decoder.decodeFrame(frame.data, frame.transferSyntaxUid, computeFramePixelFormat(slide.instances[instanceIndex]!));
    } catch (err) {
      // A closed decode pool says nothing about the frame: skipping it would store a hole in the run.
      if (err instanceof ClosingError) throw err;
      return new BadFrame(`frame ${level.tileFrameNumber[tile]} of level ${level.index} cannot be decoded: ${(err as Error).message}`);
    }
  }

  return {
    stats,
    tile(tileIndex) {
      let result = decoded.get(tileIndex);
      if (!result) {
        result = decodeTile(tileIndex);
        decoded.set(tileIndex, result);
      }
      return result;
    },
    release(patchOrdinal) {
      for (const t of tilesPerPatch[patchOrdinal] ?? []) {
        if (lastUse.get(t) === patchOrdinal) decoded.delete(t);
      }
    },
  };
}
