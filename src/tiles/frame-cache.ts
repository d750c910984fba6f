/**
 * Frames in memory, bounded in bytes (lru-cache), fetched from the source in batches: misses that
 * arrive together for one instance, plus their neighbours, go out as one multi-frame request, and a
 * frame already on its way is awaited rather than asked for again. When misses keep coming for one
 * instance (someone is browsing it), the rest of it is read in one whole-instance request: a PACS like
 * Orthanc parses the whole file for every request, so one request instead of dozens is what makes a
 * cold slide fast (bench/tiles). A level split over several instances (a concatenation) is read ahead
 * like a file read sequentially: once an instance has been read whole, the first access to it starts
 * reading the level's next instance, so a viewer panning on finds it in memory. When to do which is
 * decided in read-plan.ts; this module does the reading, the waiting and the keeping.
 *
 * An instance read whole is one cache entry, its frames views into the chunks the answer came in:
 * copying a thousand frames out of it, each its own allocation, made taking in a 10 MB instance cost
 * 35-60 ms of CPU, mostly garbage collection, against 15-25 ms for views (docs/decisions.md, "Cold
 * tiles"). As one entry it is counted (by those chunks) and evicted whole, so no frame pins memory
 * the cache has stopped counting. Frames read in batches, and re-encoded browser JPEGs, are entries of
 * their own, looked up first.
 */
import { LRUCache } from 'lru-cache';
import type { Frame, SlideSource } from '../source/types.js';
import { createReadPlan } from './read-plan.js';

/** A cached frame: as stored (`encoded` false) or already made into a browser JPEG. */
export interface CachedFrame {
  data: Buffer;
  transferSyntaxUid: string;
  /** True when `data` is the JPEG a browser gets (passthrough or re-encoded). */
  isBrowserJpeg: boolean;
}

export interface FrameAddress {
  studyUid: string;
  seriesUid: string;
  sopInstanceUid: string;
  transferSyntaxUid: string | undefined;
  /** Frames in the instance, to keep neighbours in range. */
  numberOfFrames: number;
  /** Bytes of one native frame (for whole-instance reads of uncompressed pixel data). */
  frameBytes: number;
  /** The same level's next instance in tile order, read ahead once this one has been read whole. */
  next?: FrameAddress | undefined;
  /**
   * The next finer level's first instance. At the first access to this one, and when this one has been
   * read whole, the finer levels are read ahead whole, down to the first that is not small
   * (read-plan.ts, FINER_READ_AHEAD_BYTES): a viewer zooming in finds them in memory. Cleared once done.
   */
  finer?: FrameAddress | undefined;
}

export interface FrameCacheOptions {
  source: SlideSource;
  /** Upper bound of cached bytes. */
  maxBytes: number;
  /** Frames per request on a miss: the missed ones and their neighbours. */
  prefetchFrames: number;
  /**
   * The miss batch of an instance from which the whole instance is read instead (1 = at once).
   * @default 2
   */
  wholeInstanceAfterBatches?: number;
}

export interface FrameCacheStats {
  hits: number;
  misses: number;
  /** Source requests: multi-frame and whole-instance. */
  requests: number;
  wholeInstanceRequests: number;
  /** Whole-instance reads started ahead of any miss (a level's next instance). */
  readAheadRequests: number;
  framesFetched: number;
  bytes: number;
  /** Frames in memory: an instance read whole (one cache entry) counts its frames. */
  entries: number;
}

/** Every frame of an instance read whole, by frame number - 1: one entry, counted and evicted as one. */
interface CachedInstance {
  readonly frames: readonly CachedFrame[];
  readonly bytes: number;
}

/** Frames are keyed `sop/frame`, instances read whole by their SOP Instance UID alone. */
type CacheEntry = CachedFrame | CachedInstance;

const isInstance = (entry: CacheEntry): entry is CachedInstance => 'frames' in entry;

interface Waiter {
  resolve: (f: CachedFrame) => void;
  reject: (e: unknown) => void;
}

/** Who waits for which frame of one read, by frame number. */
type Waiters = Map<number, Waiter[]>;

interface Pending {
  address: FrameAddress;
  wanted: Waiters;
}

const ENTRY_OVERHEAD_BYTES = 96;

/**
 * Bytes of the buffers the frames are views into (the chunks a whole-instance answer arrived in),
 * each counted once: what keeping the frames keeps in memory.
 */
function computeHeldBytes(frames: readonly Frame[]): number {
  const buffers = new Set<ArrayBufferLike>();
  for (const f of frames) buffers.add(f.data.buffer);
  let bytes = 0;
  for (const buffer of buffers) bytes += buffer.byteLength;
  return bytes;
}

export function frameKey(sopInstanceUid: string, frameNumber: number): string {
  return `${sopInstanceUid}/${frameNumber}`;
}

export function createFrameCache({ source, maxBytes, prefetchFrames, wholeInstanceAfterBatches = 2 }: FrameCacheOptions) {
  const cache = new LRUCache<string, CacheEntry>({
    maxSize: maxBytes,
    sizeCalculation: (v) => (isInstance(v) ? v.bytes + v.frames.length * ENTRY_OVERHEAD_BYTES : v.data.length + ENTRY_OVERHEAD_BYTES),
  });

  /**
   * A frame in memory: its own entry (a batch read, a browser JPEG) first, else its instance's. `key`
   * is its frameKey, passed by a caller that has built it already (the tile path builds it once).
   */
  function lookup(sopInstanceUid: string, frameNumber: number, key = frameKey(sopInstanceUid, frameNumber)): CachedFrame | undefined {
    const own = cache.get(key);
    if (own) return own as CachedFrame;
    const instance = cache.get(sopInstanceUid) as CachedInstance | undefined;
    return instance?.frames[frameNumber - 1];
  }

  function isCached(sopInstanceUid: string, frameNumber: number): boolean {
    return cache.has(frameKey(sopInstanceUid, frameNumber)) || cache.has(sopInstanceUid);
  }
  const inFlight = new Map<string, Promise<CachedFrame>>();
  const pending = new Map<string, Pending>();
  const stats = { hits: 0, misses: 0, requests: 0, framesFetched: 0, wholeInstanceRequests: 0 };
  /** Whole-instance reads in flight, by SOP Instance UID. */
  const wholeReads = new Map<string, Promise<void>>();
  const plan = createReadPlan({
    maxBytes,
    prefetchFrames,
    wholeInstanceAfterBatches,
    isReadingWhole: (sop) => wholeReads.has(sop),
    startWholeRead: (address) => void readWhole(address, new Map()),
  });
  /**
   * The waiters of multi-frame batches in flight, by SOP Instance UID: a whole read of the same instance
   * started alongside may land first (Orthanc answered a 10 MB instance in 30 ms while its 64-frame batch
   * took 120), and then serves them at once.
   */
  const batchWaiters = new Map<string, Set<Waiters>>();
  let flushScheduled = false;

  /** Neighbours of the wanted frames in frame order (row neighbours in TILED_FULL and most sparse files). */
  function withNeighbours(address: FrameAddress, wanted: number[]): number[] {
    const chosen = new Set(wanted);
    const budget = Math.max(prefetchFrames, wanted.length);
    for (let distance = 1; chosen.size < budget && distance <= prefetchFrames; distance++) {
      for (const n of wanted) {
        // Ahead first: viewers and patch grids walk rows left to right.
        for (const candidate of [n + distance, n - distance]) {
          if (chosen.size >= budget) break;
          if (candidate < 1 || candidate > address.numberOfFrames || chosen.has(candidate)) continue;
          if (isCached(address.sopInstanceUid, candidate) || inFlight.has(frameKey(address.sopInstanceUid, candidate))) continue;
          chosen.add(candidate);
        }
      }
    }
    return [...chosen].sort((a, b) => a - b);
  }

  /** Caches a fetched frame unless memory has it already (it may be a re-encoded JPEG by now). */
  function keep(sopInstanceUid: string, frame: Frame): CachedFrame {
    const cached = lookup(sopInstanceUid, frame.frameNumber);
    if (cached) return cached;
    const value: CachedFrame = { data: frame.data, transferSyntaxUid: frame.transferSyntaxUid, isBrowserJpeg: false };
    cache.set(frameKey(sopInstanceUid, frame.frameNumber), value);
    return value;
  }

  /** Caches an instance read whole as one entry; frames numbered 1..n in order, as readAllFrames gives them. */
  function keepInstance(sopInstanceUid: string, frames: readonly Frame[]): CachedInstance {
    const entry: CachedInstance = {
      frames: frames.map((f) => ({ data: f.data, transferSyntaxUid: f.transferSyntaxUid, isBrowserJpeg: false })),
      bytes: computeHeldBytes(frames),
    };
    cache.set(sopInstanceUid, entry);
    return entry;
  }

  /**
   * The whole instance in one request. Frames nobody waits for get no promise of their own (an
   * instance has a thousand): a miss meanwhile waits on the read itself (`wholeReads`), which keeps
   * the work done when the answer lands, on the event loop, small. Resolves once done, even on failure.
   */
  function readWhole(address: FrameAddress, wanted: Waiters): Promise<void> {
    const sop = address.sopInstanceUid;
    stats.requests++;
    stats.wholeInstanceRequests++;
    const read = (async () => {
      let frames: Frame[];
      try {
        frames = await source.readAllFrames(address, { numberOfFrames: address.numberOfFrames, frameBytes: address.frameBytes });
      } catch (error) {
        plan.wholeReadEnded(address, false);
        settleWanted(sop, wanted, new Map(), error);
        throw error;
      } finally {
        wholeReads.delete(sop);
      }
      stats.framesFetched += frames.length;
      plan.learn(address, frames, true);
      const instance = keepInstance(sop, frames);
      plan.wholeReadEnded(address, true);
      for (const waiters of [wanted, ...(batchWaiters.get(sop) ?? [])]) {
        const byNumber = new Map<number, CachedFrame>();
        for (const n of waiters.keys()) {
          const frame = lookup(sop, n) ?? instance.frames[n - 1];
          if (frame) byNumber.set(n, frame);
        }
        settleWanted(sop, waiters, byNumber, undefined);
      }
    })();
    wholeReads.set(sop, read);
    // Its failure reaches those who wait (wanted, and misses meanwhile through wholeReads), not the caller.
    return read.catch(() => undefined);
  }

  /**
   * Resolves the waiters of a read with the frames fetched; the rest get the failure (or "missing").
   * Emptied once settled, so that whichever of a batch and a whole read lands second finds no one left.
   */
  function settleWanted(sop: string, wanted: Waiters, fetched: ReadonlyMap<number, CachedFrame>, failure: unknown): void {
    for (const [n, waiters] of wanted) {
      inFlight.delete(frameKey(sop, n));
      const value = fetched.get(n);
      if (value) waiters.forEach((w) => w.resolve(value));
      else waiters.forEach((w) => w.reject(failure ?? new Error(`Frame ${n} missing from the answer`)));
    }
    wanted.clear();
  }

  /** A miss batch: its frames and their neighbours in one multi-frame request, or the whole instance. */
  async function fetchBatch({ address, wanted }: Pending): Promise<void> {
    const sop = address.sopInstanceUid;
    const { whole, wholeAlongside } = plan.planBatch(address);
    if (whole) return readWhole(address, wanted);
    const frameNumbers = withNeighbours(address, [...wanted.keys()]);
    // Neighbours nobody asked for yet get a promise, so that a request for one meanwhile waits for it;
    // they join the batch's waiters, settled with them.
    for (const n of frameNumbers) {
      if (wanted.has(n)) continue; // registered in inFlight by get()
      let waiter!: Waiter;
      const promise = new Promise<CachedFrame>((resolve, reject) => (waiter = { resolve, reject }));
      promise.catch(() => undefined); // a failed prefetch nobody waited for is not an unhandled rejection
      inFlight.set(frameKey(sop, n), promise);
      wanted.set(n, [waiter]);
    }
    stats.requests++;
    const open = batchWaiters.get(sop) ?? new Set<Waiters>();
    batchWaiters.set(sop, open.add(wanted));
    if (wholeAlongside) void readWhole(address, new Map());
    let frames: Frame[] = [];
    let failure: unknown;
    try {
      frames = await source.readFrames(address, frameNumbers, { transferSyntaxUid: address.transferSyntaxUid });
    } catch (error) {
      failure = error;
    }
    open.delete(wanted);
    if (open.size === 0 && batchWaiters.get(sop) === open) batchWaiters.delete(sop);
    stats.framesFetched += frames.length;
    plan.learn(address, frames, false);
    const fetched = new Map<number, CachedFrame>();
    for (const frame of frames) fetched.set(frame.frameNumber, keep(sop, frame));
    settleWanted(sop, wanted, fetched, failure);
  }

  function flush(): void {
    flushScheduled = false;
    const batches = [...pending.values()];
    pending.clear();
    for (const batch of batches) void fetchBatch(batch);
  }

  /**
   * The frame, from memory or fetched (batched with other misses of this tick and neighbours).
   * `forViewer`: a tile a viewer asked for, which may read the finer levels ahead.
   */
  function get(address: FrameAddress, frameNumber: number, { forViewer = false }: { forViewer?: boolean } = {}): Promise<CachedFrame> {
    plan.noteAccess(address, forViewer);
    const key = frameKey(address.sopInstanceUid, frameNumber);
    const cached = lookup(address.sopInstanceUid, frameNumber, key);
    if (cached) {
      stats.hits++;
      return Promise.resolve(cached);
    }
    const flying = inFlight.get(key);
    if (flying) {
      stats.hits++;
      return flying;
    }
    const whole = wholeReads.get(address.sopInstanceUid);
    if (whole) {
      stats.hits++;
      // The frame is in the answer on its way; should it not be (or be evicted at once), ask again.
      return whole.then(() => lookup(address.sopInstanceUid, frameNumber, key) ?? get(address, frameNumber));
    }
    stats.misses++;
    let batch = pending.get(address.sopInstanceUid);
    if (!batch) {
      batch = { address, wanted: new Map() };
      pending.set(address.sopInstanceUid, batch);
    }
    const promise = new Promise<CachedFrame>((resolve, reject) => {
      const waiters = batch.wanted.get(frameNumber) ?? [];
      waiters.push({ resolve, reject });
      batch.wanted.set(frameNumber, waiters);
    });
    inFlight.set(key, promise);
    if (!flushScheduled) {
      flushScheduled = true;
      // setImmediate runs after this round of I/O callbacks: requests that arrived together batch together.
      setImmediate(flush);
    }
    return promise;
  }

  return {
    get,

    /**
     * The frame if it is in memory now (counted as a hit), or undefined; fetches nothing but a read-ahead.
     * Only tiles for a viewer are peeked at (the warm-tile path), so this may read the finer levels ahead.
     */
    peek(address: FrameAddress, frameNumber: number): CachedFrame | undefined {
      plan.noteAccess(address, true);
      const cached = lookup(address.sopInstanceUid, frameNumber);
      if (cached) stats.hits++;
      return cached;
    },

    /** Replaces a cached frame with its browser JPEG, so the next request skips the transcode. */
    store(sopInstanceUid: string, frameNumber: number, value: CachedFrame): void {
      cache.set(frameKey(sopInstanceUid, frameNumber), value);
    },

    stats(): FrameCacheStats {
      let entries = 0;
      for (const entry of cache.values()) entries += isInstance(entry) ? entry.frames.length : 1;
      return { ...stats, readAheadRequests: plan.readAheads(), bytes: cache.calculatedSize, entries };
    },

    clear(): void {
      cache.clear();
    },
  };
}

export type FrameCache = ReturnType<typeof createFrameCache>;
