/**
 * How the frame cache decides what to read from the PACS: a miss batch of neighbouring frames, the
 * whole instance (alongside the first batch, or instead of later ones), and what to read ahead of the
 * viewer (a concatenation's next instance, a level's finer levels). The cache does the reading; this
 * remembers what each instance has cost so far and says when. Why these rules: docs/decisions.md,
 * "A cold slide is read by whole instances" and the "Cold tiles" sections after it.
 */
import { LRUCache } from 'lru-cache';
import type { Frame } from '../source/types.js';
import type { FrameAddress } from './frame-cache.js';

/**
 * The largest finer level read ahead (its estimated bytes): a viewer opened at the overview zooms in
 * through every level, and each level's first miss cost a PACS round trip in turn (bench/tiles, zooming
 * in); a large level is left to the reads its own misses start. Each level is a quarter of the one
 * under it, so all the levels read ahead for one slide come to at most 4/3 of this.
 */
const FINER_READ_AHEAD_BYTES = 8 * 1024 ** 2;
/** Instances read whole whose successor has not been touched yet; oldest dropped past this. */
const MAX_ARMED_READ_AHEADS = 1000;

/** Transfer syntaxes that lose information: their frames are a small fraction of native size. */
const LOSSY_SYNTAXES = new Set([
  '1.2.840.10008.1.2.4.50', // JPEG baseline
  '1.2.840.10008.1.2.4.51', // JPEG extended
  '1.2.840.10008.1.2.4.81', // JPEG-LS near-lossless
  '1.2.840.10008.1.2.4.91', // JPEG 2000
  '1.2.840.10008.1.2.4.203', // HTJ2K
]);

/**
 * A stored frame's size before any has been seen: native; half of it for lossless compression; an
 * eighth for lossy (scanners' JPEG at quality 80-95 stores a tissue tile in 1/10-1/20 of native).
 */
export function guessStoredFrameBytes({ transferSyntaxUid, frameBytes }: Pick<FrameAddress, 'transferSyntaxUid' | 'frameBytes'>): number {
  if (transferSyntaxUid === undefined || !/^1\.2\.840\.10008\.1\.2\.(4|5)(\.|$)/.test(transferSyntaxUid)) return frameBytes;
  return LOSSY_SYNTAXES.has(transferSyntaxUid) ? frameBytes / 8 : frameBytes / 2;
}

/** What a miss batch becomes. */
export interface BatchPlan {
  /** Read the whole instance instead of the batch: it is being browsed. */
  whole: boolean;
  /** Read the whole instance in parallel with the batch (its first): whichever lands first serves the batch. */
  wholeAlongside: boolean;
}

export interface ReadPlanOptions {
  /** The cache's bound: an instance is read whole only when it fits in a quarter of it. */
  maxBytes: number;
  /** Frames per miss batch: an instance with no more frames than this is never read whole. */
  prefetchFrames: number;
  /** The miss batch of an instance from which the whole instance is read instead (1 = at once). */
  wholeInstanceAfterBatches: number;
  /** Whether a whole-instance read of this instance is on its way. */
  isReadingWhole(sopInstanceUid: string): boolean;
  /** Starts reading an instance whole in the background (a read-ahead). */
  startWholeRead(address: FrameAddress): void;
}

export function createReadPlan({ maxBytes, prefetchFrames, wholeInstanceAfterBatches, isReadingWhole, startWholeRead }: ReadPlanOptions) {
  /** Per instance: miss batches so far and the mean size of its frames seen, to decide on whole reads. */
  const instanceHistory = new LRUCache<string, { batches: number; meanFrameBytes: number; readWhole?: boolean }>({ max: 10_000 });
  /** Instances read whole whose `next` is to be read ahead at their next access → their mean frame bytes. */
  const armedReadAheads = new Map<string, number>();
  /** Finer levels read ahead for a viewer, until their read lands: the chain may go on from there. */
  const finerReadAheads = new Set<string>();
  let readAheads = 0;

  /**
   * Reads `next` whole in the background, unless it has been read whole already or would take more
   * than a quarter of the cache (its size estimated from the instance before it, the same level).
   */
  function readAhead(next: FrameAddress, meanFrameBytes: number): boolean {
    if (isReadingWhole(next.sopInstanceUid) || instanceHistory.get(next.sopInstanceUid)?.readWhole || meanFrameBytes * next.numberOfFrames > maxBytes / 4) return false;
    readAheads++;
    startWholeRead(next);
    return true;
  }

  /**
   * A viewer's first access to an instance of a level (or a level read ahead for it landing): the moment
   * to read the finer levels ahead, all at once (a viewer passes through the small ones faster than a
   * PACS answers one), down to the first that is not small. Sizes are estimated from the frames seen
   * of the level above. Not for renders (thumbnails, tissue masks): a slide list would read every
   * slide's small levels.
   */
  function readFinerAhead(address: FrameAddress): void {
    const limit = Math.min(FINER_READ_AHEAD_BYTES, maxBytes / 16);
    let seen = instanceHistory.get(address.sopInstanceUid)?.meanFrameBytes ?? 0;
    for (let finer = address.finer; finer; finer = finer.finer) {
      const meanFrameBytes = seen || guessStoredFrameBytes(finer);
      if (meanFrameBytes * finer.numberOfFrames > limit) break;
      if (readAhead(finer, meanFrameBytes)) finerReadAheads.add(finer.sopInstanceUid);
      seen = instanceHistory.get(finer.sopInstanceUid)?.meanFrameBytes ?? seen;
    }
    address.finer = undefined;
  }

  return {
    /** How to answer an instance's miss batch; counts the batch. */
    planBatch(address: FrameAddress): BatchPlan {
      const history = instanceHistory.get(address.sopInstanceUid) ?? { batches: 0, meanFrameBytes: 0 };
      instanceHistory.set(address.sopInstanceUid, { ...history, batches: history.batches + 1 });
      const frameBytes = history.meanFrameBytes || guessStoredFrameBytes(address);
      if (address.numberOfFrames <= prefetchFrames || frameBytes * address.numberOfFrames > maxBytes / 4) return { whole: false, wholeAlongside: false };
      const whole = history.batches + 1 >= wholeInstanceAfterBatches;
      return { whole, wholeAlongside: !whole && history.batches === 0 };
    },

    /**
     * An access to a frame of an instance: the moment to read its successor ahead when it has been read
     * whole (once), and, for a viewer, the finer levels. On every tile's path, warm ones included: two
     * cheap checks and no allocation when there is nothing to start.
     */
    noteAccess(address: FrameAddress, forViewer: boolean): void {
      if (address.next && armedReadAheads.size > 0) {
        const meanFrameBytes = armedReadAheads.get(address.sopInstanceUid);
        if (meanFrameBytes !== undefined) {
          armedReadAheads.delete(address.sopInstanceUid);
          readAhead(address.next, meanFrameBytes);
        }
      }
      if (forViewer && address.finer) readFinerAhead(address);
    },

    /** Notes the mean size of an instance's frames, and whether it has now been read whole. */
    learn(address: FrameAddress, frames: readonly Frame[], readWhole: boolean): void {
      if (frames.length === 0) return;
      const history = instanceHistory.get(address.sopInstanceUid) ?? { batches: 0, meanFrameBytes: 0 };
      const meanFrameBytes = frames.reduce((sum, f) => sum + f.data.length, 0) / frames.length;
      instanceHistory.set(address.sopInstanceUid, { ...history, meanFrameBytes, readWhole: history.readWhole || readWhole });
      if (readWhole && address.next) {
        if (armedReadAheads.size >= MAX_ARMED_READ_AHEADS) armedReadAheads.delete(armedReadAheads.keys().next().value!);
        armedReadAheads.set(address.sopInstanceUid, meanFrameBytes);
      }
    },

    /**
     * A whole read ended. A level read ahead for a viewer that landed may go on to finer levels the
     * estimate left out, now sized by its frames (`learn` first).
     */
    wholeReadEnded(address: FrameAddress, landed: boolean): void {
      if (finerReadAheads.delete(address.sopInstanceUid) && landed && address.finer) readFinerAhead(address);
    },

    /** Whole-instance reads started ahead of any miss. */
    readAheads(): number {
      return readAheads;
    },
  };
}

export type ReadPlan = ReturnType<typeof createReadPlan>;
