/**
 * Probes and shutdown against the real Orthanc: /healthz is liveness only; /readyz is 200 when the PACS,
 * the default model and the store are usable and 503 naming what is not; and a gateway stopped mid-job
 * checkpoints it, so the next gateway on the same store resumes it by itself to the same rows as an
 * uninterrupted run.
 */
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { PENDING_JOBS_FILE } from '../src/embed/jobs/checkpoint.js';
import type { Job } from '../src/embed/jobs/job-queue.js';
import type { Readiness } from '../src/ops/readiness.js';
import { postJob, runJob } from './support/embeddings.js';
import { createTestGateway, readJson, type TestGateway } from './support/gateway.js';
import { describeWithOrthanc } from './support/skip.js';
import { sampleSlideId, sharedWsiDir, wsiSamples } from './support/wsi-data.js';

/** A port nothing listens on: bound, then released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Resolves with the job once it ends. */
function untilEnded(gateway: TestGateway, job: Job): Promise<Job> {
  return new Promise((resolve) => {
    const check = (j: Job) => {
      if (j.state !== 'queued' && j.state !== 'running') resolve(j);
    };
    gateway.services.jobs.subscribe(job.id, check);
    check(gateway.services.jobs.get(job.id));
  });
}

/** Many small batches (1,764 patches, 64 per batch), so a close lands mid-job. */
const LONG_JOB = { model: 'stain-texture', stride: 56, minTissue: 0 };

describeWithOrthanc('health, readiness and restarts against Orthanc', ({ dicomwebUrl }) => {
  let work: string;
  let cmu1: string;
  const gateways: TestGateway[] = [];
  const open = (env: Record<string, string>, checkpointJobs = false) => {
    const gateway = createTestGateway(env, { checkpointJobs });
    gateways.push(gateway);
    return gateway;
  };

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'ops-'));
    cmu1 = await sampleSlideId(wsiSamples.cmu1T256Q90);
  });
  afterAll(async () => {
    await Promise.all(gateways.map((g) => g.close()));
    await rm(work, { recursive: true, force: true });
  });

  it('is live and ready with Orthanc, the built-in model and a writable store', async () => {
    const gateway = open({ DICOMWEB_URL: dicomwebUrl, EMBED_DIR: join(work, 'ready') });
    expect(await readJson(await gateway.get('/healthz'))).toEqual({ status: 'ok' });
    const response = await gateway.get('/readyz');
    const body = await readJson<{ status: string } & Readiness>(response);
    expect(response.status, JSON.stringify(body)).toBe(200);
    expect(body.status).toBe('ready');
    expect(body.checks.source).toMatchObject({ ok: true, kind: 'dicomweb' });
    expect(body.checks.models).toMatchObject({ ok: true, model: 'stain-texture', backend: expect.stringMatching(/^builtin/) });
    expect(body.checks.store).toMatchObject({ ok: true });
  });

  it('is ready with a folder source', async () => {
    const gateway = open({ DICOM_DIR: join(sharedWsiDir, 'cmu1-t256-q90'), EMBED_DIR: join(work, 'folder') });
    const response = await gateway.get('/readyz');
    expect(response.status, await response.clone().text()).toBe(200);
    expect((await readJson<Readiness>(response)).checks.source).toMatchObject({ ok: true, kind: 'folder' });
  });

  it('is live but not ready when the PACS does not answer, naming the source', async () => {
    const gateway = open({ DICOMWEB_URL: `http://127.0.0.1:${await closedPort()}/dicom-web`, EMBED_DIR: join(work, 'no-pacs') });
    expect((await gateway.get('/healthz')).status).toBe(200);
    const response = await gateway.get('/readyz');
    expect(response.status).toBe(503);
    const body = await readJson<{ status: string; failing: string[] } & Readiness>(response);
    expect(body).toMatchObject({ status: 'not ready', failing: ['source'] });
    expect(body.checks.source.ok).toBe(false);
    expect(body.checks.source.error).toMatch(/ECONNREFUSED/);
    expect(body.checks.models.ok).toBe(true);
    // The failed probe shows in the PACS error counter.
    expect(await (await gateway.get('/metrics')).text()).toMatch(/^wsi_gateway_pacs_errors_total\{operation="series_search",kind="network"\} 1$/m);
  });

  it('is not ready when the embedding store cannot be written, naming the store', async () => {
    const blocker = join(work, 'a-file');
    await writeFile(blocker, 'not a directory');
    const gateway = open({ DICOMWEB_URL: dicomwebUrl, EMBED_DIR: join(blocker, 'embeddings') });
    const response = await gateway.get('/readyz');
    expect(response.status).toBe(503);
    expect(await readJson(response)).toMatchObject({ failing: ['store'], checks: { store: { ok: false, error: expect.stringMatching(/ENOTDIR/) } } });
  });

  it('checkpoints a job stopped by shutdown, and the next gateway on the store resumes it to the same rows', async () => {
    const embedDir = join(work, 'restart');
    const env = { DICOMWEB_URL: dicomwebUrl, EMBED_DIR: embedDir, EMBED_FRAMES_PER_REQUEST: '16' };
    const first = open(env, true);
    const posted = await postJob(first, cmu1, LONG_JOB);
    expect(posted.status).toBe(202);
    const submitted = await readJson<Job>(posted);
    // Shut down as soon as one batch is stored: the job stops at its next batch.
    const stopped = await new Promise<Job>((resolve) => {
      const unsubscribe = first.services.jobs.subscribe(submitted.id, (job) => {
        if (job.progress.done > 0) {
          unsubscribe();
          void first.close().then(() => resolve(first.services.jobs.get(submitted.id)));
        }
      });
    });
    expect(stopped.state).toBe('cancelled');
    expect(stopped.progress.done).toBeLessThan(stopped.progress.total);
    const checkpoint = JSON.parse(await readFile(join(embedDir, PENDING_JOBS_FILE), 'utf8')) as { jobs: unknown[] };
    expect(checkpoint.jobs).toEqual([{ ...submitted.spec, mppOverride: null, startsWithoutProgress: 0 }]);

    const second = open(env, true);
    const [resumed] = await second.services.resumed;
    expect(resumed).toBeDefined();
    expect(resumed!.spec).toEqual(submitted.spec);
    const ended = await untilEnded(second, resumed!);
    expect(ended.state, JSON.stringify(ended.error)).toBe('done');
    // The list is kept up to date, not removed: the job left it when it ended.
    await second.services.jobs.persisted?.();
    expect((JSON.parse(await readFile(join(embedDir, PENDING_JOBS_FILE), 'utf8')) as { jobs: unknown[] }).jobs).toEqual([]);
    expect(ended.notes.some((n) => n.startsWith('Resumed:'))).toBe(true);

    const clean = open({ ...env, EMBED_DIR: join(work, 'uninterrupted') });
    const { job: uninterrupted } = await runJob(clean, cmu1, LONG_JOB);
    expect(uninterrupted.state).toBe('done');
    expect(ended.progress).toMatchObject({ done: uninterrupted.progress.done, embedded: uninterrupted.progress.embedded, skipped: uninterrupted.progress.skipped });
    const stored = await readJson<{ rows: number }>(await second.get(`/api/slides/${cmu1}/embeddings/stain-texture/${ended.result!.runId}/manifest.json`));
    expect(stored.rows).toBe(uninterrupted.progress.embedded);
  });

  it('leaves no checkpoint, and takes none, when checkpointing is off, as for the CLI', async () => {
    const embedDir = join(work, 'cli');
    const env = { DICOMWEB_URL: dicomwebUrl, EMBED_DIR: embedDir, EMBED_FRAMES_PER_REQUEST: '16' };
    const gateway = open(env);
    const submitted = await readJson<Job>(await postJob(gateway, cmu1, LONG_JOB));
    await new Promise<void>((resolve) => {
      const unsubscribe = gateway.services.jobs.subscribe(submitted.id, (job) => {
        if (job.progress.done > 0) {
          unsubscribe();
          void gateway.close().then(() => resolve());
        }
      });
    });
    await expect(stat(join(embedDir, PENDING_JOBS_FILE))).rejects.toThrow(/ENOENT/);

    await writeFile(join(embedDir, PENDING_JOBS_FILE), JSON.stringify({ version: 1, savedAt: '', jobs: [{ ...submitted.spec, mppOverride: null }] }));
    const next = open(env);
    expect(await next.services.resumed).toEqual([]);
    expect(next.services.jobs.list()).toEqual([]);
    expect((await stat(join(embedDir, PENDING_JOBS_FILE))).isFile()).toBe(true);
  });
});
