import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StoreCorruptError } from '../store/types.js';
import { makeJobListDurable, MAX_STARTS_WITHOUT_PROGRESS, pendingJobsFile, readPendingJobs, writePendingJobs } from './checkpoint.js';
import { createInProcessQueue, type EmbedJobSpec, type Job, type JobQueue, type JobWorker } from './job-queue.js';

const spec = (seriesUid: string, mppOverride?: number): EmbedJobSpec => ({ studyUid: '1.2', seriesUid, model: 'stain-texture', mpp: 0.5, stridePx: 224, minTissue: 0.25, mppOverride });
const silent = pino({ level: 'silent' });

/**
 * A worker like a long embedding job: it reports where it resumed (`startAt`), then runs until cancelled,
 * or until the test calls commit (one more batch), finish or fail.
 */
function controllableWorker(startAt = 0) {
  const control = new Map<string, { commit(): void; finish(): void; fail(): void }>();
  const worker: JobWorker = (s, report, signal) =>
    new Promise((resolve, reject) => {
      let done = startAt;
      report.progress({ done, total: 10, embedded: done, skipped: 0 });
      signal.addEventListener('abort', () => reject(signal.reason));
      control.set(s.seriesUid, {
        commit: () => report.progress({ done: ++done, total: 10, embedded: done, skipped: 0 }),
        finish: () => resolve({ runId: 'run' }),
        fail: () => reject(new Error('the slide is gone')),
      });
    });
  return { worker, control };
}

/** A queue with a durable list in `file`, as the server builds it. */
function durableQueue(file: string, worker: JobWorker, logger = silent, concurrency = 1) {
  return makeJobListDurable(createInProcessQueue(worker, { concurrency }), file, logger);
}

const exists = (file: string) => stat(file).then(() => true, () => false);
const listedSeries = async (file: string) => (await readPendingJobs(file)).map((p) => p.spec.seriesUid);
const isActive = (job: Job) => job.state === 'running' || job.state === 'queued';
const ended = (queue: JobQueue, job: Job) => new Promise<void>((resolve) => (isActive(job) ? queue.subscribe(job.id, (j) => !isActive(j) && resolve()) : resolve()));

describe('durable job list', () => {
  let dir: string;
  let file: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'checkpoint-'));
    // A store root that does not exist yet: the first submission creates it.
    file = pendingJobsFile(path.join(dir, 'embeddings'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('reads back the list it wrote, an absent mpp override included, and reads a count-less file as 0', async () => {
    const pending = [{ spec: spec('1.3'), startsWithoutProgress: 0 }, { spec: spec('1.4', 0.25), startsWithoutProgress: 2 }];
    await writePendingJobs(file, pending);
    expect(await readPendingJobs(file)).toEqual(pending);
    expect(JSON.parse(await readFile(file, 'utf8'))).toMatchObject({ version: 1, jobs: [{ seriesUid: '1.3', mppOverride: null }, { seriesUid: '1.4', mppOverride: 0.25 }] });
    expect(await exists(`${file}.tmp`)).toBe(false);
    await writeFile(file, JSON.stringify({ version: 1, savedAt: 'x', jobs: [{ ...spec('1.5'), mppOverride: null }] }));
    expect(await readPendingJobs(file)).toEqual([{ spec: spec('1.5'), startsWithoutProgress: 0 }]);
  });

  it('has nothing to resume and writes nothing when there is no file', async () => {
    const { jobs, resumed } = durableQueue(file, controllableWorker().worker);
    expect(await resumed).toEqual([]);
    await jobs.close();
    expect(await exists(file)).toBe(false);
  });

  it('lists a job from its submission to its end: done, failed or cancelled by a user', async () => {
    const { worker, control } = controllableWorker();
    const { jobs } = durableQueue(file, worker, silent, 4);
    const [a, b, c, d] = ['1.5', '1.6', '1.7', '1.8'].map((s) => jobs.submit(spec(s)));
    expect(jobs.submit(spec('1.5'))).toBe(a); // the same spec gives back the job, listed once
    await jobs.persisted!();
    expect(await listedSeries(file)).toEqual(['1.5', '1.6', '1.7', '1.8']);

    control.get('1.5')!.finish();
    await ended(jobs, a!);
    control.get('1.6')!.fail();
    await ended(jobs, b!);
    jobs.cancel(c!.id);
    await ended(jobs, c!);
    await jobs.persisted!();
    expect([a, b, c].map((j) => j!.state)).toEqual(['done', 'failed', 'cancelled']);
    expect(await listedSeries(file)).toEqual(['1.8']);
    expect(d!.state).toBe('running');
    await jobs.close();
  });

  it('resumes the listed jobs after a crash (no close), counts the start of those that run, and resets the count once a batch commits', async () => {
    const first = durableQueue(file, controllableWorker(3).worker);
    first.jobs.submit(spec('1.5'));
    first.jobs.submit(spec('1.6', 2));
    await first.jobs.persisted!();
    // Crash: the process is gone, the file stays as it was.

    const { worker, control } = controllableWorker(3);
    const next = durableQueue(file, worker);
    const resumed = await next.resumed;
    expect(resumed.map((j) => [j.spec.seriesUid, j.spec.mppOverride, j.state])).toEqual([['1.5', undefined, 'running'], ['1.6', 2, 'queued']]);
    await next.jobs.persisted!();
    // The queued one did not run in this process: this start is not held against it.
    expect((await readPendingJobs(file)).map((p) => p.startsWithoutProgress)).toEqual([1, 0]);

    control.get('1.5')!.commit();
    await next.jobs.persisted!();
    expect((await readPendingJobs(file)).map((p) => p.startsWithoutProgress)).toEqual([0, 0]);
    await next.jobs.close();
    await first.jobs.close();
  });

  it('keeps the jobs a close stopped, running and queued, but not those a user cancelled, even while stopping', async () => {
    const { worker } = controllableWorker();
    const { jobs } = durableQueue(file, worker);
    const running = jobs.submit(spec('1.5'));
    const queued = jobs.submit(spec('1.6', 2));
    jobs.cancel(jobs.submit(spec('1.7')).id);
    await jobs.persisted!();
    // A user's cancel of a running job lands when its worker stops: here, during the close.
    jobs.cancel(running.id);
    await jobs.close();
    expect([running.state, queued.state]).toEqual(['cancelled', 'cancelled']);
    expect(await listedSeries(file)).toEqual(['1.6']);

    const next = durableQueue(file, controllableWorker().worker);
    expect((await next.resumed).map((j) => [j.spec.seriesUid, j.spec.mppOverride, j.state])).toEqual([['1.6', 2, 'running']]);
    await next.jobs.close();
    expect(await listedSeries(file)).toEqual(['1.6']);
  });

  it('ends at once a resumed job whose run is complete, and unlists it', async () => {
    await writePendingJobs(file, [{ spec: spec('1.5'), startsWithoutProgress: 0 }]);
    const { jobs, resumed } = durableQueue(file, (_spec, report) => {
      report.progress({ done: 10, total: 10, embedded: 10, skipped: 0 });
      return Promise.resolve({ runId: 'run' });
    });
    const [job] = await resumed;
    await ended(jobs, job!);
    await jobs.persisted!();
    expect(job!.state).toBe('done');
    expect(await listedSeries(file)).toEqual([]);
    await jobs.close();
  });

  it(`drops a job resumed ${MAX_STARTS_WITHOUT_PROGRESS} times without committing a batch, so it cannot crash-loop the server`, async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'error' }, { write: (line: string) => lines.push(line) });
    await writePendingJobs(file, [
      { spec: spec('1.5'), startsWithoutProgress: MAX_STARTS_WITHOUT_PROGRESS },
      { spec: spec('1.6'), startsWithoutProgress: MAX_STARTS_WITHOUT_PROGRESS - 1 },
    ]);
    const { jobs, resumed } = durableQueue(file, controllableWorker().worker, logger);
    expect((await resumed).map((j) => j.spec.seriesUid)).toEqual(['1.6']);
    await jobs.persisted!();
    expect(await readPendingJobs(file)).toEqual([{ spec: spec('1.6'), startsWithoutProgress: MAX_STARTS_WITHOUT_PROGRESS }]);
    expect(lines.join('')).toMatch(/embedding job dropped/);
    await jobs.close();
  });

  it('moves an unreadable file aside, resumes nothing, and lists new submissions', async () => {
    await writePendingJobs(file, [{ spec: spec('1.9'), startsWithoutProgress: 0 }]);
    const damaged = JSON.stringify({ version: 1, savedAt: 'x', jobs: [{ seriesUid: '1.9' }] });
    await writeFile(file, damaged);
    await expect(readPendingJobs(file)).rejects.toThrow(StoreCorruptError);
    const { jobs, resumed } = durableQueue(file, controllableWorker().worker);
    expect(await resumed).toEqual([]);
    expect(await readFile(`${file}.unreadable`, 'utf8')).toBe(damaged);
    jobs.submit(spec('1.10'));
    await jobs.persisted!();
    expect(await listedSeries(file)).toEqual(['1.10']);
    await jobs.close();
  });

  it('does not let a submission made while the list is read overwrite it', async () => {
    await writePendingJobs(file, [{ spec: spec('1.5'), startsWithoutProgress: 0 }]);
    const { jobs, resumed } = durableQueue(file, controllableWorker().worker);
    jobs.submit(spec('1.6')); // before the file has been read
    await resumed;
    await jobs.persisted!();
    expect((await listedSeries(file)).sort()).toEqual(['1.5', '1.6']);
    await jobs.close();
  });

  it('writes the last state after a burst of changes, and logs a failed write without throwing', async () => {
    const { worker } = controllableWorker();
    const { jobs } = durableQueue(file, worker);
    const burst = Array.from({ length: 20 }, (_, i) => jobs.submit(spec(`2.${i}`)));
    for (const job of burst.slice(0, 15)) jobs.cancel(job.id);
    await jobs.persisted!();
    expect(await listedSeries(file)).toEqual(['2.15', '2.16', '2.17', '2.18', '2.19']);
    await jobs.close();

    const lines: string[] = [];
    const logger = pino({ level: 'error' }, { write: (line: string) => lines.push(line) });
    // The store root is a file: no write can succeed.
    await writeFile(path.join(dir, 'not-a-dir'), '');
    const broken = durableQueue(pendingJobsFile(path.join(dir, 'not-a-dir')), controllableWorker().worker, logger);
    broken.jobs.submit(spec('1.5'));
    await expect(broken.jobs.persisted!()).resolves.toBeUndefined();
    expect(lines.join('')).toMatch(/cannot write the pending-jobs list/);
    await broken.jobs.close();
  });
});
