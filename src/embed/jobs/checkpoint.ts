/**
 * The server's shutdown checkpoint: the specs of jobs still queued or running when it stops, written
 * to one small file in the embedding store's root and submitted again at the next start. A job keeps
 * every batch it committed (the store run), so the spec is all a resume needs; the file only remembers
 * that someone asked. Only the server does this: a CLI run that is interrupted is the operator's to
 * restart, and must not leave work for the server to pick up, nor take the server's.
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { z } from 'zod';
import { mkdirDurable, readJsonIfExists, writeFileAtomic } from '../store/files.js';
import { StoreCorruptError } from '../store/types.js';
import type { EmbedJobSpec, Job, JobQueue } from './job-queue.js';

/** The checkpoint's name in the store root (not a UID, so the store's own listings never see it). */
export const PENDING_JOBS_FILE = 'pending-jobs.json';

const FORMAT_VERSION = 1;

const specSchema = z.object({
  studyUid: z.string().min(1),
  seriesUid: z.string().min(1),
  model: z.string().min(1),
  mpp: z.number().positive(),
  stridePx: z.number().int().positive(),
  minTissue: z.number().min(0).max(1),
  mppOverride: z.number().positive().nullable(),
});

const fileSchema = z.object({ version: z.literal(FORMAT_VERSION), savedAt: z.string(), jobs: z.array(specSchema) });

export function pendingJobsFile(storeRoot: string): string {
  return path.join(path.resolve(storeRoot), PENDING_JOBS_FILE);
}

/** Writes the specs atomically (a crash mid-write leaves the old file or the new one). */
export async function writePendingJobs(file: string, specs: readonly EmbedJobSpec[]): Promise<void> {
  await mkdirDurable(path.dirname(file));
  // JSON has no undefined: a missing override is written as null and read back as undefined.
  const jobs = specs.map((s) => ({ ...s, mppOverride: s.mppOverride ?? null }));
  await writeFileAtomic(file, `${JSON.stringify({ version: FORMAT_VERSION, savedAt: new Date().toISOString(), jobs }, null, 2)}\n`);
}

/** The specs in the file; [] when there is none. A file we cannot have written is a StoreCorruptError. */
export async function readPendingJobs(file: string): Promise<EmbedJobSpec[]> {
  const json = await readJsonIfExists(file);
  if (json === undefined) return [];
  const parsed = fileSchema.safeParse(json);
  if (!parsed.success) throw new StoreCorruptError(`${file}: not a pending-jobs checkpoint (${parsed.error.issues[0]?.message ?? 'invalid'})`);
  return parsed.data.jobs.map((s) => ({ ...s, mppOverride: s.mppOverride ?? undefined }));
}

/**
 * Submits the checkpointed jobs again, then removes the file (a crash between the two does no harm:
 * the next start submits them again and each resumes from its stored batches). An unreadable file is
 * left in place, logged, for the operator to look at; the gateway starts anyway. Never rejects.
 */
export async function resumePendingJobs(file: string, queue: Pick<JobQueue, 'submit'>, logger: Logger): Promise<Job[]> {
  let specs: EmbedJobSpec[];
  try {
    specs = await readPendingJobs(file);
  } catch (error) {
    logger.error({ file, reason: (error as Error).message }, 'cannot read the pending-jobs checkpoint: no job resumed');
    return [];
  }
  if (specs.length === 0) return [];
  const jobs = specs.map((spec) => queue.submit(spec));
  try {
    await rm(file, { force: true });
  } catch (error) {
    // Harmless: the next start submits them again, and each finds its stored batches (or its complete run).
    logger.warn({ file, reason: (error as Error).message }, 'cannot remove the pending-jobs checkpoint');
  }
  logger.info({ jobs: jobs.length, file }, `resumed ${jobs.length} embedding job(s) left by the last shutdown`);
  return jobs;
}

/**
 * Closes the queue and checkpoints the jobs the close itself stopped: those queued or running before
 * it and cancelled by it. Jobs a user cancelled earlier, and any that finished in the meantime, are not
 * resumed. A failed write is logged: the committed batches are safe anyway, only the reminder is lost.
 */
export async function closeQueueWithCheckpoint(queue: Pick<JobQueue, 'list' | 'close'>, file: string, logger: Logger): Promise<void> {
  const active = queue.list().filter((j) => j.state === 'queued' || j.state === 'running');
  await queue.close();
  const specs = active.filter((j) => j.state === 'cancelled').map((j) => j.spec);
  if (specs.length === 0) return;
  try {
    await writePendingJobs(file, specs);
    logger.info({ jobs: specs.length, file }, `checkpointed ${specs.length} unfinished embedding job(s) for the next start`);
  } catch (error) {
    logger.error({ file, reason: (error as Error).message }, 'cannot write the pending-jobs checkpoint: unfinished jobs must be submitted again by hand');
  }
}
