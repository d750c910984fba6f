/**
 * A small pool of worker threads that run the WASM step of JPEG 2000 / JPEG-LS / JPEG decodes
 * (wasm-run.ts), so that several frames decode at once on several cores and the event loop stays
 * free: a 256 px lossless J2K frame holds its thread for 15-25 ms, and on the main thread no other
 * request, not even a warm tile, is answered meanwhile. JPEG tiles (about 1 ms each) come here from
 * embedding jobs, which decode thousands a second.
 */
import { Worker } from 'node:worker_threads';
import { ClosingError, CodecError } from '../../errors.js';
import { APP_ROOT_URL } from '../../paths.js';
import type { DecodeReply } from './decode-worker.js';
import type { WasmDecodeRequest, WasmDecodeResult } from './wasm-run.js';

export interface DecodePoolOptions {
  /** Most worker threads, at least 1. Workers start when the first decodes need them, not before. */
  threads: number;
  /**
   * The worker's entry point. Tests swap in workers that crash or block.
   * @default decode-worker.mjs beside this file
   */
  workerUrl?: URL;
  /**
   * A decode still running after this long fails with CodecError and its worker is stopped and
   * replaced: a WASM decode cannot be interrupted, and a codestream crafted to loop would otherwise
   * hold its thread for good. A 256 px tile takes 1-25 ms, a 2,000 px overview in JPEG 2000 about a second.
   * @default 20 s
   */
  decodeTimeoutMs?: number;
  /**
   * A worker with nothing to decode for this long is stopped, and with it the WASM heaps it grew
   * (35-80 MB each once it has decoded a few slides); the next decode starts a fresh worker, which
   * costs that decode ~200 ms here: long enough a pause that a pathologist reading a slide rarely
   * meets it.
   * @default 5 minutes
   */
  idleMs?: number;
}

export interface DecodePoolStats {
  /** Worker threads running now (started, not yet exited). */
  workers: number;
  /** Decodes running in a worker now. */
  busy: number;
  /** Decodes waiting for a free worker. */
  queued: number;
}

export interface DecodePool {
  /**
   * Runs one WASM decode in a worker. The frame's bytes are copied, never taken: the caller's buffer
   * (often a cached frame, or a slice of a larger response) stays usable.
   * @throws CodecError when the decode fails or its worker dies; ClosingError once the pool is closed.
   */
  run(request: WasmDecodeRequest): Promise<WasmDecodeResult>;
  stats(): DecodePoolStats;
  /** Fails queued and running decodes with ClosingError and stops every worker. Idempotent. */
  close(): Promise<void>;
}

interface Job {
  request: WasmDecodeRequest;
  resolve: (result: WasmDecodeResult) => void;
  reject: (error: unknown) => void;
}

interface Slot {
  worker: Worker;
  /** The decode running in this worker; one at a time, since a WASM decode is synchronous. */
  job: Job | undefined;
  /** Why the worker died, when it reported it before exiting. */
  failure: unknown;
  /** Fails the running decode when it takes too long. */
  timer: NodeJS.Timeout | undefined;
  /** Stops the worker once it has been idle for idleMs. */
  idleTimer: NodeJS.Timeout | undefined;
  /** Stopped (after a timeout, or idle) and on its way out: given no more decodes. */
  retired: boolean;
}

// The worker's file stays a file of the sources in the production build too (it loads its TypeScript body with tsx).
const DEFAULT_WORKER_URL = new URL('src/tiles/codecs/decode-worker.mjs', APP_ROOT_URL);

export function createDecodePool({ threads, workerUrl = DEFAULT_WORKER_URL, decodeTimeoutMs = 20_000, idleMs = 300_000 }: DecodePoolOptions): DecodePool {
  if (!Number.isInteger(threads) || threads < 1) throw new RangeError(`A decode pool needs at least 1 thread, not ${threads}`);
  const slots = new Set<Slot>();
  const queue: Job[] = [];
  let closing: Promise<void> | undefined;

  /** A started worker free for a decode (no array per call: embedding jobs dispatch thousands a second). */
  function findIdleSlot(): Slot | undefined {
    for (const slot of slots) if (slot.job === undefined && !slot.retired) return slot;
    return undefined;
  }

  function dispatch(): void {
    while (queue.length > 0 && !closing) {
      let slot = findIdleSlot();
      if (!slot) {
        if (slots.size >= threads) return;
        slot = startWorker();
      }
      runIn(slot, queue.shift()!);
    }
  }

  function runIn(slot: Slot, job: Job): void {
    clearTimeout(slot.idleTimer);
    slot.job = job;
    // A busy worker keeps the process alive (a CLI awaiting a decode must not exit under it); an
    // idle one does not, so a forgotten pool never holds a process open.
    slot.worker.ref();
    // A copy of exactly the frame's bytes, transferred: posting the caller's view would clone its
    // whole underlying buffer (a multipart body, Node's shared Buffer pool), and transferring it
    // would detach the cached frame.
    const data = new Uint8Array(job.request.data);
    slot.worker.postMessage({ codec: job.request.codec, data } satisfies WasmDecodeRequest, [data.buffer]);
    slot.timer = setTimeout(() => timeOut(slot), decodeTimeoutMs).unref();
  }

  /** Stops a worker that has had nothing to do for idleMs (unless a decode came meanwhile). */
  function retireIdle(slot: Slot): void {
    if (slot.job !== undefined || slot.retired) return;
    slot.retired = true;
    void slot.worker.terminate();
  }

  /** Fails the decode now and stops its worker; the exit handler starts a fresh one for the queue. */
  function timeOut(slot: Slot): void {
    const job = slot.job;
    slot.job = undefined;
    slot.retired = true;
    job?.reject(new CodecError(`The decode took longer than ${decodeTimeoutMs / 1000} s; its worker was stopped`));
    void slot.worker.terminate();
  }

  function startWorker(): Slot {
    const slot: Slot = { worker: new Worker(workerUrl, { name: 'wasm-decode' }), job: undefined, failure: undefined, timer: undefined, idleTimer: undefined, retired: false };
    slots.add(slot);
    slot.worker.unref();
    slot.worker.on('message', (reply: DecodeReply) => settle(slot, reply));
    // 'error' (an uncaught exception, a failed start) is always followed by 'exit', which cleans up.
    slot.worker.on('error', (error) => (slot.failure = error));
    slot.worker.on('messageerror', (error) => (slot.failure = error));
    slot.worker.on('exit', (exitCode) => {
      clearTimeout(slot.timer);
      clearTimeout(slot.idleTimer);
      slots.delete(slot);
      const job = slot.job;
      slot.job = undefined;
      if (job) job.reject(closing ? new ClosingError() : describeDeath(slot.failure, exitCode));
      // The next queued decode gets a fresh worker in its place.
      dispatch();
    });
    return slot;
  }

  function settle(slot: Slot, reply: DecodeReply): void {
    clearTimeout(slot.timer);
    const job = slot.job;
    slot.job = undefined;
    slot.worker.unref();
    if (job) {
      if (reply.ok) job.resolve(reply.result);
      else job.reject(new CodecError(reply.message));
    }
    dispatch();
    if (slot.job === undefined && !slot.retired) slot.idleTimer = setTimeout(() => retireIdle(slot), idleMs).unref();
  }

  return {
    run(request) {
      if (closing) return Promise.reject(new ClosingError());
      return new Promise<WasmDecodeResult>((resolve, reject) => {
        queue.push({ request, resolve, reject });
        dispatch();
      });
    },
    stats() {
      const busy = [...slots].filter((s) => s.job !== undefined).length;
      return { workers: slots.size, busy, queued: queue.length };
    },
    close() {
      closing ??= (async () => {
        for (const job of queue.splice(0)) job.reject(new ClosingError());
        // Running decodes are failed by their worker's exit handler.
        await Promise.all([...slots].map((s) => s.worker.terminate()));
      })();
      return closing;
    },
  };
}

/** The error of a decode whose worker died under it: a codec failure, so the tile route answers 502. */
function describeDeath(failure: unknown, exitCode: number): CodecError {
  const reason = failure instanceof Error ? failure.message : `it exited with code ${exitCode}`;
  return new CodecError(`The decode worker stopped during the decode: ${reason}`, { cause: failure });
}
