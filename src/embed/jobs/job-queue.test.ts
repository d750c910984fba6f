import { describe, expect, it } from 'vitest';
import { UpstreamError } from '../../errors.js';
import { createInProcessQueue, type EmbedJobSpec, type Job, type JobWorker } from './job-queue.js';

const spec = (seriesUid: string): EmbedJobSpec => ({ studyUid: '1.2', seriesUid, model: 'stain-texture', mpp: 0.5, stridePx: 224, minTissue: 0.25, mppOverride: undefined });

/** A worker whose jobs finish when the test says, and that honours cancellation. */
function controllableWorker() {
  const release = new Map<string, (fail?: unknown) => void>();
  const worker: JobWorker = (s, report, signal) =>
    new Promise((resolve, reject) => {
      report.progress({ done: 0, total: 10, embedded: 0, skipped: 0 });
      signal.addEventListener('abort', () => reject(signal.reason));
      release.set(s.seriesUid, (fail) => {
        if (fail) return reject(fail);
        report.progress({ done: 10, total: 10, embedded: 9, skipped: 1 });
        resolve({ runId: `run-${s.seriesUid}` });
      });
    });
  return { worker, release };
}

const settle = () => new Promise((r) => setTimeout(r, 5));

describe('in-process job queue', () => {
  it('runs at most `concurrency` jobs, in order, and the rest wait queued', async () => {
    const { worker, release } = controllableWorker();
    const queue = createInProcessQueue(worker, { concurrency: 2 });
    const jobs = ['1', '2', '3'].map((s) => queue.submit(spec(s)));
    expect(jobs.map((j) => j.state)).toEqual(['running', 'running', 'queued']);
    release.get('1')!();
    await settle();
    expect(jobs.map((j) => j.state)).toEqual(['done', 'running', 'running']);
    expect(jobs[0]!.result).toEqual({ runId: 'run-1' });
    expect(jobs[0]!.progress).toMatchObject({ done: 10, total: 10, embedded: 9, skipped: 1 });
    await queue.close();
  });

  it('gives the running job back for the same spec instead of starting a second', async () => {
    const queue = createInProcessQueue(controllableWorker().worker, { concurrency: 1 });
    const a = queue.submit(spec('1'));
    expect(queue.submit(spec('1'))).toBe(a);
    expect(queue.submit({ ...spec('1'), mpp: 1 })).not.toBe(a);
    await queue.close();
  });

  it('cancels queued and running jobs, and reports failures with their code', async () => {
    const { worker, release } = controllableWorker();
    const queue = createInProcessQueue(worker, { concurrency: 1 });
    const running = queue.submit(spec('1'));
    const queued = queue.submit(spec('2'));
    queue.cancel(queued.id);
    expect(queued.state).toBe('cancelled');
    queue.cancel(running.id);
    await settle();
    expect(running.state).toBe('cancelled');
    const failing = queue.submit(spec('3'));
    await settle();
    release.get('3')!(new UpstreamError('The PACS failed'));
    await settle();
    expect(failing.state).toBe('failed');
    expect(failing.error).toEqual({ code: 'UPSTREAM_FAILED', message: 'The PACS failed' });
    expect(() => queue.get('nope')).toThrow(/No job/);
    await queue.close();
  });

  it('tells subscribers every change until the job ends, and close cancels what is left', async () => {
    const { worker, release } = controllableWorker();
    const queue = createInProcessQueue(worker, { concurrency: 1 });
    const job = queue.submit(spec('1'));
    const waiting = queue.submit(spec('2'));
    const seen: Array<Pick<Job, 'state'> & { done: number }> = [];
    queue.subscribe(job.id, (j) => seen.push({ state: j.state, done: j.progress.done }));
    release.get('1')!();
    await settle();
    expect(seen.at(-1)).toEqual({ state: 'done', done: 10 });
    expect(seen.some((s) => s.state === 'running' && s.done === 10)).toBe(true);
    await settle();
    expect(waiting.state).toBe('running');
    await queue.close();
    expect(waiting.state).toBe('cancelled');
    await queue.close();
  });
});
