/**
 * Embedding jobs: queued, run a few at a time, watched and cancelled. This is the in-process queue; the
 * interface is the seam where a shared queue (BullMQ on Redis, say) goes when one host is not enough,
 * which is why a job's spec is plain data that names the slide and the grid and nothing in this
 * process's memory.
 */
import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { GatewayError, NotFoundError } from '../../errors.js';
import type { ModelManifest } from '../models/manifest.js';

/** Everything a worker needs to embed one slide. */
export interface EmbedJobSpec {
  studyUid: string;
  seriesUid: string;
  model: string;
  /** Target µm per pixel. */
  mpp: number;
  /** Patch step at the target mpp, in px. */
  stridePx: number;
  /** Least tissue fraction (0..1) a patch needs to be embedded. */
  minTissue: number;
  /** Level-0 µm per pixel to use instead of the slide's own. */
  mppOverride: number | undefined;
}

/** The model a job uses when the request names none: the built-in one, which needs no weights. */
export const DEFAULT_MODEL = 'stain-texture';
/** The least tissue fraction of a patch, when the request says nothing. */
export const DEFAULT_MIN_TISSUE = 0.25;

/** What a caller may leave out of a job; the model's manifest fills in mpp and stride. */
export interface JobRequest {
  mpp?: number | undefined;
  stride?: number | undefined;
  minTissue?: number | undefined;
  mppOverride?: number | undefined;
}

/** A job's spec from a request: the model's first recommended mpp, stride = patch size, default tissue. */
export function createJobSpec(manifest: ModelManifest, slide: { studyUid: string; seriesUid: string }, request: JobRequest): EmbedJobSpec {
  return {
    studyUid: slide.studyUid,
    seriesUid: slide.seriesUid,
    model: manifest.id,
    mpp: request.mpp ?? manifest.recommendedMpp[0]!,
    stridePx: request.stride ?? manifest.input.sizePx,
    minTissue: request.minTissue ?? DEFAULT_MIN_TISSUE,
    mppOverride: request.mppOverride,
  };
}

export type JobState = 'queued' | 'running' | 'done' | 'failed' | 'cancelled';

export interface JobProgress {
  /** Patches done (embedded or skipped) of `total`, including those done before a resume. */
  done: number;
  total: number;
  embedded: number;
  skipped: number;
  /** Patches per second over the last seconds of work. */
  ratePerSecond: number;
  etaSeconds: number | undefined;
}

export interface JobError {
  code: string;
  message: string;
}

export interface Job {
  id: string;
  spec: EmbedJobSpec;
  state: JobState;
  progress: JobProgress;
  /** What the worker found worth saying: resampling, a resumed run, retries. */
  notes: string[];
  error: JobError | undefined;
  /** Set when done: where the results are. */
  result: { runId: string } | undefined;
  createdAt: string;
  startedAt: string | undefined;
  finishedAt: string | undefined;
}

/** What a worker reports while it runs. */
export interface JobReporter {
  progress(update: Omit<JobProgress, 'ratePerSecond' | 'etaSeconds'>): void;
  note(text: string): void;
}

export type JobWorker = (spec: EmbedJobSpec, report: JobReporter, signal: AbortSignal) => Promise<{ runId: string }>;

export interface JobQueue {
  /** Queues a job, or returns the job already queued or running for the same spec. */
  submit(spec: EmbedJobSpec): Job;
  get(id: string): Job;
  list(): Job[];
  /** Cancels a queued or running job; the stored part stays, so submitting it again resumes. */
  cancel(id: string): Job;
  /** Called with the job after every change, until it ends; returns the unsubscribe function. */
  subscribe(id: string, listener: (job: Job) => void): () => void;
  /** Cancels everything and waits for running workers to stop. Idempotent. */
  close(): Promise<void>;
  /**
   * Resolves once every submission and end so far is on disk, where the queue keeps a durable list
   * (see checkpoint.ts); absent where it keeps none.
   */
  persisted?(): Promise<void>;
}

/** Jobs kept after they end, for GET /api/jobs/{id}. */
const MAX_FINISHED_JOBS = 1000;
/** The rate is measured over this window. */
const RATE_WINDOW_MS = 10_000;

const specKey = (s: EmbedJobSpec) => JSON.stringify([s.studyUid, s.seriesUid, s.model, s.mpp, s.stridePx, s.minTissue, s.mppOverride ?? null]);
const isActive = (job: Job) => job.state === 'queued' || job.state === 'running';

export function createInProcessQueue(worker: JobWorker, options: { concurrency: number; onError?: (job: Job, error: unknown) => void }): JobQueue {
  const jobs = new Map<string, Job>();
  const controllers = new Map<string, AbortController>();
  const listeners = new Map<string, Set<(job: Job) => void>>();
  const running = new Set<Promise<void>>();
  const waiting: Job[] = [];
  let closed = false;

  function emit(job: Job): void {
    for (const listener of listeners.get(job.id) ?? []) listener(job);
    if (!isActive(job)) listeners.delete(job.id);
  }

  function forgetOldJobs(): void {
    const finished = [...jobs.values()].filter((j) => !isActive(j));
    for (const job of finished.slice(0, Math.max(0, finished.length - MAX_FINISHED_JOBS))) jobs.delete(job.id);
  }

  function finish(job: Job, state: JobState, error?: JobError): void {
    job.state = state;
    job.error = error;
    job.finishedAt = new Date().toISOString();
    job.progress.etaSeconds = undefined;
    controllers.delete(job.id);
    emit(job);
    forgetOldJobs();
  }

  function run(job: Job): void {
    const controller = new AbortController();
    // Every PACS request in flight listens to the job's signal (several per request, a few requests
    // ahead): more than Node's default of 10 is expected, and each is removed when its request ends.
    setMaxListeners(64, controller.signal);
    controllers.set(job.id, controller);
    job.state = 'running';
    job.startedAt = new Date().toISOString();
    emit(job);
    const samples: Array<{ atMs: number; done: number }> = [];
    const report: JobReporter = {
      progress(update) {
        const now = performance.now();
        samples.push({ atMs: now, done: update.done });
        while (samples.length > 2 && now - samples[0]!.atMs > RATE_WINDOW_MS) samples.shift();
        const first = samples[0]!;
        const rate = now > first.atMs ? ((update.done - first.done) * 1000) / (now - first.atMs) : 0;
        job.progress = { ...update, ratePerSecond: Math.round(rate * 10) / 10, etaSeconds: rate > 0 ? Math.ceil((update.total - update.done) / rate) : undefined };
        emit(job);
      },
      note(text) {
        job.notes.push(text);
        emit(job);
      },
    };
    const task = worker(job.spec, report, controller.signal).then(
      (result) => {
        job.result = result;
        finish(job, 'done');
      },
      (error: unknown) => {
        if (controller.signal.aborted) return finish(job, 'cancelled');
        options.onError?.(job, error);
        const code = error instanceof GatewayError ? error.code : 'EMBEDDING_FAILED';
        finish(job, 'failed', { code, message: error instanceof Error ? error.message : String(error) });
      },
    );
    const tracked = task.finally(() => {
      running.delete(tracked);
      pump();
    });
    running.add(tracked);
  }

  function pump(): void {
    while (!closed && running.size < options.concurrency && waiting.length > 0) run(waiting.shift()!);
  }

  function get(id: string): Job {
    const job = jobs.get(id);
    if (!job) throw new NotFoundError(`No job ${id}`, 'JOB_NOT_FOUND');
    return job;
  }

  return {
    submit(spec) {
      const key = specKey(spec);
      const existing = [...jobs.values()].find((j) => isActive(j) && specKey(j.spec) === key);
      if (existing) return existing;
      const job: Job = {
        id: randomUUID(),
        spec: { ...spec },
        state: 'queued',
        progress: { done: 0, total: 0, embedded: 0, skipped: 0, ratePerSecond: 0, etaSeconds: undefined },
        notes: [],
        error: undefined,
        result: undefined,
        createdAt: new Date().toISOString(),
        startedAt: undefined,
        finishedAt: undefined,
      };
      jobs.set(job.id, job);
      waiting.push(job);
      pump();
      return job;
    },
    get,
    list: () => [...jobs.values()],
    cancel(id) {
      const job = get(id);
      const queuedAt = waiting.indexOf(job);
      if (queuedAt >= 0) {
        waiting.splice(queuedAt, 1);
        finish(job, 'cancelled');
      } else {
        controllers.get(id)?.abort();
      }
      return job;
    },
    subscribe(id, listener) {
      get(id);
      let set = listeners.get(id);
      if (!set) listeners.set(id, (set = new Set()));
      set.add(listener);
      return () => set.delete(listener);
    },
    async close() {
      closed = true;
      for (const job of waiting.splice(0)) finish(job, 'cancelled');
      for (const controller of controllers.values()) controller.abort();
      await Promise.allSettled([...running]);
    },
  };
}
