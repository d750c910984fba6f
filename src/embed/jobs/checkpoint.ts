/**
 * The server's durable job list: pending-jobs.json in the embedding store's root always names the jobs
 * queued or running, so a server that stops, gracefully or by kill -9, submits them again at its next
 * start. A job keeps every batch it committed (the store run), so the spec is all a resume needs; the
 * file only remembers that someone asked.
 *
 * - The file is rewritten (atomically: a temp file, fsync, rename) when a job is submitted and when one
 *   ends: done, failed, or cancelled by a user (and when a resumed job's count below changes). Writes
 *   are serialized and each writes the list as it is when the write starts, so the last state wins; a
 *   failed write is logged, never thrown. No write happens before the file has been read at start.
 * - POST answers 202 only once the job is on disk (persisted()): from then on a crash cannot lose it.
 * - A job stopped by close() stays listed (it is resumed); one a user cancelled, or that failed, does not.
 *   A failure is the worker giving up after its retries: resubmitting it is the user's call.
 * - Each entry counts the starts that resumed and ran it without it committing a batch since; at
 *   MAX_STARTS_WITHOUT_PROGRESS it is dropped, so a job that kills the process cannot crash-loop it.
 *   A job still queued behind others when the process died is not charged with that start.
 * - A job whose run is already complete when resumed ends at once (the worker returns the stored run).
 * - An unreadable file is moved aside (`.unreadable`) and logged; the gateway starts with an empty list.
 *
 * Only the server does this: an interrupted CLI run is the operator's to restart, and must neither leave
 * work for the server nor take the server's.
 */
import { rename } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { z } from 'zod';
import { mkdirDurable, readJsonIfExists, writeFileAtomic } from '../store/files.js';
import { StoreCorruptError } from '../store/types.js';
import type { EmbedJobSpec, Job, JobQueue } from './job-queue.js';

/** The list's name in the store root (not a UID, so the store's own listings never see it). */
export const PENDING_JOBS_FILE = 'pending-jobs.json';

/** Starts in a row that may run a resumed job without it committing a batch; the next one drops it. */
export const MAX_STARTS_WITHOUT_PROGRESS = 10;

const FORMAT_VERSION = 1;

const entrySchema = z.object({
  studyUid: z.string().min(1),
  seriesUid: z.string().min(1),
  model: z.string().min(1),
  mpp: z.number().positive(),
  stridePx: z.number().int().positive(),
  minTissue: z.number().min(0).max(1),
  mppOverride: z.number().positive().nullable(),
  // Absent in files written before the count existed.
  startsWithoutProgress: z.number().int().min(0).default(0),
});

const fileSchema = z.object({ version: z.literal(FORMAT_VERSION), savedAt: z.string(), jobs: z.array(entrySchema) });

/** One job of the list: its spec, and the starts that resumed it without it committing a batch since. */
export interface PendingJob {
  spec: EmbedJobSpec;
  startsWithoutProgress: number;
}

export function pendingJobsFile(storeRoot: string): string {
  return path.join(path.resolve(storeRoot), PENDING_JOBS_FILE);
}

/** Writes the list atomically (a crash mid-write leaves the old file or the new one). */
export async function writePendingJobs(file: string, pending: readonly PendingJob[]): Promise<void> {
  await mkdirDurable(path.dirname(file));
  // JSON has no undefined: a missing override is written as null and read back as undefined.
  const jobs = pending.map(({ spec, startsWithoutProgress }) => ({ ...spec, mppOverride: spec.mppOverride ?? null, startsWithoutProgress }));
  await writeFileAtomic(file, `${JSON.stringify({ version: FORMAT_VERSION, savedAt: new Date().toISOString(), jobs }, null, 2)}\n`);
}

/** The list in parsed JSON; throws StoreCorruptError for anything we cannot have written. */
export function parsePendingJobs(json: unknown, file: string): PendingJob[] {
  const parsed = fileSchema.safeParse(json);
  if (!parsed.success) throw new StoreCorruptError(`${file}: not a pending-jobs list (${parsed.error.issues[0]?.message ?? 'invalid'})`);
  return parsed.data.jobs.map(({ startsWithoutProgress, ...spec }) => ({ spec: { ...spec, mppOverride: spec.mppOverride ?? undefined }, startsWithoutProgress }));
}

/** The list in the file; [] when there is none. */
export async function readPendingJobs(file: string): Promise<PendingJob[]> {
  const json = await readJsonIfExists(file);
  return json === undefined ? [] : parsePendingJobs(json, file);
}

const isEnded = (job: Job) => job.state === 'done' || job.state === 'failed' || job.state === 'cancelled';

/**
 * The queue with its list kept in `file`, and the jobs the file held at start submitted again.
 * `resumed` never rejects. The returned queue's persisted() resolves once the list on disk includes
 * every change made so far (the route answers a submission only then); its close() stops the jobs,
 * keeps them listed, and waits for the last write.
 */
export function makeJobListDurable(queue: JobQueue, file: string, logger: Logger): { jobs: JobQueue; resumed: Promise<Job[]> } {
  const listed = new Map<string, PendingJob>(); // by job id, in submission order
  let closing = false;
  let writeQueued = false;

  function track(job: Job, startsWithoutProgress: number, resumed: boolean): void {
    if (listed.has(job.id) || isEnded(job)) return; // submit gave back a job already listed
    const entry: PendingJob = { spec: job.spec, startsWithoutProgress };
    listed.set(job.id, entry);
    // A resumed job is charged with this start once it runs here: one waiting behind others is not.
    let charged = !resumed;
    const charge = (j: Job) => {
      if (charged || j.state !== 'running') return;
      charged = true;
      entry.startsWithoutProgress++;
      void save();
    };
    charge(job);
    // The worker's first report is where it resumed (it may come before we listen); any later
    // advance is a committed batch.
    let resumedAt = job.progress.total > 0 ? job.progress.done : undefined;
    queue.subscribe(job.id, (j) => {
      if (isEnded(j)) {
        // A job stopped by close() stays listed for the next start.
        if (!(closing && j.state === 'cancelled') && listed.delete(j.id)) void save();
        return;
      }
      charge(j);
      if (resumedAt === undefined) {
        if (j.progress.total > 0) resumedAt = j.progress.done;
      } else if (j.progress.done > resumedAt && entry.startsWithoutProgress > 0) {
        entry.startsWithoutProgress = 0;
        void save();
      }
    });
    void save();
  }

  async function load(): Promise<Job[]> {
    let pending: PendingJob[];
    try {
      pending = await readPendingJobs(file);
    } catch (error) {
      logger.error({ file, reason: (error as Error).message }, 'cannot read the pending-jobs list: moved aside, no job resumed');
      await rename(file, `${file}.unreadable`).catch(() => undefined);
      return [];
    }
    const jobs: Job[] = [];
    for (const { spec, startsWithoutProgress } of pending) {
      if (startsWithoutProgress >= MAX_STARTS_WITHOUT_PROGRESS) {
        logger.error({ series: spec.seriesUid, model: spec.model, starts: startsWithoutProgress }, 'embedding job dropped: it was resumed again and again without committing a batch; submit it again to retry');
        continue;
      }
      const job = queue.submit(spec);
      track(job, startsWithoutProgress, true);
      jobs.push(job);
    }
    // Dropped entries must leave the file even when nothing else changes.
    if (jobs.length < pending.length) void save();
    if (jobs.length > 0) logger.info({ jobs: jobs.length, file }, `resumed ${jobs.length} embedding job(s) left by the last run`);
    return jobs;
  }

  const resumed = load();
  // Every write waits for the load: an early submission must not overwrite the list before it is read.
  let writing: Promise<void> = resumed.then(() => undefined, () => undefined);

  function save(): Promise<void> {
    if (writeQueued) return writing; // the queued write has not started: it will see this change
    writeQueued = true;
    writing = writing.then(async () => {
      writeQueued = false;
      try {
        await writePendingJobs(file, [...listed.values()]);
      } catch (error) {
        // The committed batches are safe anyway; only the reminder to resume them may be stale.
        logger.error({ file, reason: (error as Error).message }, 'cannot write the pending-jobs list');
      }
    });
    return writing;
  }

  let closed: Promise<void> | undefined;
  const jobs: JobQueue = {
    ...queue,
    submit(spec) {
      const job = queue.submit(spec);
      track(job, 0, false);
      return job;
    },
    cancel(id) {
      const job = queue.cancel(id);
      // Unlisted now: a close() before its worker stops must not keep it for the next start.
      if (listed.delete(id)) void save();
      return job;
    },
    persisted: () => writing,
    close() {
      closed ??= (async () => {
        closing = true;
        await resumed;
        await queue.close();
        await writing;
      })();
      return closed;
    },
  };
  return { jobs, resumed };
}
