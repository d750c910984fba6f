import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StoreCorruptError } from '../store/types.js';
import { closeQueueWithCheckpoint, pendingJobsFile, readPendingJobs, resumePendingJobs, writePendingJobs } from './checkpoint.js';
import { createInProcessQueue, type EmbedJobSpec, type JobWorker } from './job-queue.js';

const spec = (seriesUid: string, mppOverride?: number): EmbedJobSpec => ({ studyUid: '1.2', seriesUid, model: 'stain-texture', mpp: 0.5, stridePx: 224, minTissue: 0.25, mppOverride });
const silent = pino({ level: 'silent' });

/** Runs until cancelled, like a long embedding job. */
const untilCancelled: JobWorker = (_spec, report, signal) =>
  new Promise((_resolve, reject) => {
    report.progress({ done: 0, total: 10, embedded: 0, skipped: 0 });
    signal.addEventListener('abort', () => reject(signal.reason));
  });

const exists = (file: string) => stat(file).then(() => true, () => false);

describe('pending-jobs checkpoint', () => {
  let dir: string;
  let file: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'checkpoint-'));
    // A store root that does not exist yet: the first shutdown creates it.
    file = pendingJobsFile(path.join(dir, 'embeddings'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('reads back the specs it wrote, an absent mpp override included', async () => {
    const specs = [spec('1.3'), spec('1.4', 0.25)];
    await writePendingJobs(file, specs);
    expect(await readPendingJobs(file)).toEqual(specs);
    expect(JSON.parse(await readFile(file, 'utf8'))).toMatchObject({ version: 1, jobs: [{ seriesUid: '1.3', mppOverride: null }, { seriesUid: '1.4', mppOverride: 0.25 }] });
    expect(await exists(`${file}.tmp`)).toBe(false);
  });

  it('has nothing to resume when there is no file', async () => {
    expect(await readPendingJobs(file)).toEqual([]);
    const queue = createInProcessQueue(untilCancelled, { concurrency: 1 });
    expect(await resumePendingJobs(file, queue, silent)).toEqual([]);
    expect(queue.list()).toEqual([]);
    await queue.close();
  });

  it('checkpoints the jobs a close stopped, running and queued, but not those a user cancelled', async () => {
    const queue = createInProcessQueue(untilCancelled, { concurrency: 1 });
    const running = queue.submit(spec('1.5'));
    const queued = queue.submit(spec('1.6', 2));
    const cancelled = queue.cancel(queue.submit(spec('1.7')).id);
    expect([running.state, queued.state, cancelled.state]).toEqual(['running', 'queued', 'cancelled']);
    await closeQueueWithCheckpoint(queue, file, silent);
    expect(await readPendingJobs(file)).toEqual([spec('1.5'), spec('1.6', 2)]);

    // The next start submits them again, in order, and removes the file.
    const next = createInProcessQueue(untilCancelled, { concurrency: 1 });
    const resumed = await resumePendingJobs(file, next, silent);
    expect(resumed.map((j) => [j.spec.seriesUid, j.spec.mppOverride, j.state])).toEqual([['1.5', undefined, 'running'], ['1.6', 2, 'queued']]);
    expect(await exists(file)).toBe(false);
    await next.close();
  });

  it('writes nothing when no job was stopped', async () => {
    const queue = createInProcessQueue(untilCancelled, { concurrency: 1 });
    const job = queue.submit(spec('1.8'));
    // A running job's cancel lands when its worker stops.
    const stopped = new Promise<void>((resolve) => queue.subscribe(job.id, (j) => j.state === 'cancelled' && resolve()));
    queue.cancel(job.id);
    await stopped;
    await closeQueueWithCheckpoint(queue, file, silent);
    expect(await exists(file)).toBe(false);
  });

  it('leaves a file it cannot read in place and resumes nothing', async () => {
    await writePendingJobs(file, [spec('1.9')]);
    await writeFile(file, JSON.stringify({ version: 1, savedAt: 'x', jobs: [{ seriesUid: '1.9' }] }));
    await expect(readPendingJobs(file)).rejects.toThrow(StoreCorruptError);
    const queue = createInProcessQueue(untilCancelled, { concurrency: 1 });
    expect(await resumePendingJobs(file, queue, silent)).toEqual([]);
    expect(queue.list()).toEqual([]);
    expect(await exists(file)).toBe(true);
    await queue.close();
  });
});
