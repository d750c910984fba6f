/**
 * One process of the crash scenario: the gateway started, watched (its jobs over /api/jobs, its run
 * directories with inotify) and killed where the cycle's plan says, or left to end its jobs.
 */
import { statSync, watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import { computeRunId } from '../../src/embed/jobs/embed-slide-job.js';
import type { EmbedJobSpec, Job } from '../../src/embed/jobs/job-queue.js';
import type { GatewayProcess } from './gateway-process.js';

/** A process whose jobs make no progress for this long is stuck (or never resumed them). */
const STUCK_MS = 60_000;
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const isActive = (job: Job) => job.state === 'queued' || job.state === 'running';

export async function listJobs(gateway: GatewayProcess): Promise<Job[] | undefined> {
  try {
    const response = await fetch(`${gateway.url}/api/jobs`, { signal: AbortSignal.timeout(5000) });
    return ((await response.json()) as { jobs: Job[] }).jobs;
  } catch {
    return undefined; // killed, or not answering yet
  }
}

export const sameRun = (a: EmbedJobSpec, b: EmbedJobSpec) => a.seriesUid === b.seriesUid && a.model === b.model && computeRunId(a) === computeRunId(b);

export async function submit(gateway: GatewayProcess, spec: EmbedJobSpec): Promise<void> {
  const response = await fetch(`${gateway.url}/api/slides/${spec.studyUid}/${spec.seriesUid}/embeddings`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: spec.model, mpp: spec.mpp, stride: spec.stridePx, minTissue: spec.minTissue }),
  });
  if (response.status !== 202) throw new Error(`POST embeddings answered ${response.status}: ${await response.text()}`);
}

/** Where one cycle kills its process (whichever comes first); none given: it runs until its jobs end. */
export interface CyclePlan {
  /** This long after /healthz answered: start-up and resume. */
  killAfterReadyMs?: number;
  /** This long after every run with batches left has committed one in this process. */
  killAfterFirstCommitMs?: number;
  /** At the nth write of progress.json.tmp after those first commits: inside a commit. */
  killAtCommitWrite?: number;
  /** When this file of finish() appears in a run directory (embeddings.npy.tmp ...). */
  killOnFinishFile?: string;
}

export interface CycleOutcome {
  killed: boolean;
  /** From ready to this process's first commit (start-up and resume), when there was one. */
  setupMs: number | undefined;
  /** Jobs of our specs seen in this process, with their notes. */
  seen: Job[];
  /** Patches a second, all jobs together, from the first commit to the last look (over 0.5 s at least). */
  ratePerSecond: number | undefined;
}

/**
 * Runs one process until the plan kills it or every job has ended. `open` are the runs with batches
 * left: kills after the first commit wait for one in each, so that no job goes without progress for
 * long (the durable list drops a job resumed too often without committing, as for a crash loop).
 */
export async function runCycle(gateway: GatewayProcess, plan: CyclePlan, dirs: string[], open: readonly boolean[], specs: EmbedJobSpec[]): Promise<CycleOutcome> {
  const readyAt = performance.now();
  const readyAtWallMs = Date.now();
  const uncommitted = new Set(dirs.filter((_, i) => open[i]));
  let firstCommitAt: number | undefined = uncommitted.size === 0 ? readyAt : undefined;
  let anyCommitAt: number | undefined;
  let commitWrites = 0;
  let killed = false;
  const kill = () => {
    if (!killed) gateway.child.kill('SIGKILL');
    killed = true;
  };
  const watchers = new Map<string, FSWatcher>();
  const committed = (dir: string) => {
    anyCommitAt ??= performance.now();
    if (uncommitted.delete(dir) && uncommitted.size === 0) firstCommitAt = performance.now();
  };
  const onEvent = (dir: string) => (type: string, name: string | null) => {
    if (name === 'progress.json' && type === 'rename') committed(dir);
    if (name === plan.killOnFinishFile) kill();
    // A 'change' of the temp file is its content being written: the commit's fsync and rename follow.
    if (name === 'progress.json.tmp' && type === 'change' && firstCommitAt !== undefined && ++commitWrites === plan.killAtCommitWrite) kill();
  };
  const seen = new Map<string, Job>();
  let lastPollAt = -Infinity;
  let lastChangeAt = readyAt;
  let lastDone = -1;
  let fromCommit: { atMs: number; done: number } | undefined;
  let ratePerSecond: number | undefined;
  try {
    while (!killed) {
      for (const dir of dirs) {
        if (!watchers.has(dir)) {
          try {
            watchers.set(dir, watch(dir, onEvent(dir)).on('error', () => undefined));
          } catch {
            // Not created yet: the job opens its run after reading the slide.
          }
        }
      }
      const now = performance.now();
      if (plan.killAfterReadyMs !== undefined && now - readyAt >= plan.killAfterReadyMs) kill();
      if (plan.killAfterFirstCommitMs !== undefined && firstCommitAt !== undefined && now - firstCommitAt >= plan.killAfterFirstCommitMs) kill();
      if (killed) break;
      if (now - lastPollAt >= 50) {
        lastPollAt = now;
        // In case a watcher came too late for the first commit.
        for (const dir of uncommitted) if ((statSync(path.join(dir, 'progress.json'), { throwIfNoEntry: false })?.mtimeMs ?? 0) >= readyAtWallMs) committed(dir);
        const jobs = (await listJobs(gateway))?.filter((j) => specs.some((s) => sameRun(s, j.spec))) ?? [];
        for (const job of jobs) seen.set(job.id, job);
        if (jobs.length > 0 && !jobs.some(isActive)) break;
        const done = jobs.reduce((n, j) => n + j.progress.done, 0);
        if (done !== lastDone) [lastDone, lastChangeAt] = [done, now];
        if (firstCommitAt !== undefined) {
          fromCommit ??= { atMs: now, done };
          if (now - fromCommit.atMs >= 500 && done > fromCommit.done) ratePerSecond = ((done - fromCommit.done) * 1000) / (now - fromCommit.atMs);
        }
        if (now - lastChangeAt > STUCK_MS) throw new Error(`the jobs made no progress (or were not resumed) for ${STUCK_MS / 1000} s`);
      }
      await sleep(5);
    }
  } finally {
    for (const watcher of watchers.values()) watcher.close();
  }
  if (killed) await gateway.exited;
  return { killed, setupMs: anyCommitAt === undefined ? undefined : anyCommitAt - readyAt, seen: [...seen.values()], ratePerSecond };
}
