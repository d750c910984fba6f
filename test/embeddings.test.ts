/**
 * Embedding jobs against the real Orthanc holding ../shared/wsi: the tiny generated ViT and BiT and the
 * built-in model on CMU-1 (JPEG and JPEG 2000), every stored embedding checked against the model run
 * on the same pixels cut out independently, coordinates against the slide's geometry, and the caller's
 * mistakes answered with 400s before any job starts.
 */
import { request as httpRequest, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Job } from '../src/embed/jobs/job-queue.js';
import { createTestGateway, readJson, type TestGateway } from './support/gateway.js';
import { cutFromTiles, downloadRun, followJob, postJob, runJob, runOnnxDirectly, writeTinyModels } from './support/embeddings.js';
import { describeWithOrthanc } from './support/skip.js';
import { sampleSlideId, wsiSamples } from './support/wsi-data.js';
import type { SlideDescriptor } from '../viewer/src/api.js';

describeWithOrthanc('embedding jobs against Orthanc', ({ dicomwebUrl }) => {
  let gateway: TestGateway;
  let modelsDir: string;
  let embedDir: string;
  let cmu1: string;
  let slide: SlideDescriptor;

  beforeAll(async () => {
    modelsDir = await writeTinyModels();
    embedDir = await mkdtemp(join(tmpdir(), 'embeddings-'));
    // Small requests so that even CMU-1 takes several, and the retry waits are short.
    gateway = createTestGateway({ DICOMWEB_URL: dicomwebUrl, MODELS_DIR: modelsDir, EMBED_DIR: embedDir, EMBED_FRAMES_PER_REQUEST: '16' });
    cmu1 = await sampleSlideId(wsiSamples.cmu1T256Q90);
    slide = await readJson<SlideDescriptor>(await gateway.get(`/api/slides/${cmu1}`));
  });
  afterAll(async () => {
    await gateway.close();
    await rm(modelsDir, { recursive: true, force: true });
    await rm(embedDir, { recursive: true, force: true });
  });

  it('embeds the tissue of CMU-1 with the tiny ViT: each row is the model run on that patch cut out independently', async () => {
    const { job, events } = await runJob(gateway, cmu1, { model: 'test-vit-tiny' });
    expect(job.state, JSON.stringify(job.error)).toBe('done');
    expect(events[0]!.event).toBe('state');
    expect(events.filter((e) => e.event === 'progress').length).toBeGreaterThan(0);
    const run = await downloadRun(gateway, cmu1, 'test-vit-tiny', job.result!.runId);
    const { grid } = run.manifest;
    // CMU-1 level 0 is 0.499 µm/px: read as is at 0.5 (within 3 %), a 9 x 13 grid of 224 px patches.
    expect(grid).toMatchObject({ levelIndex: 0, scale: 1, readSizeLevelPx: 224, patchSizeLevel0Px: 224, cols: 9, rows: 13 });
    expect(run.manifest.rows).toBe(job.progress.embedded);
    // The tissue mask keeps some patches and drops the glass.
    expect(run.manifest.rows).toBeGreaterThan(20);
    expect(run.manifest.rows).toBeLessThan(grid.count);

    // Coordinates: on the grid, inside level 0, row-major and distinct.
    const level0 = slide.levels[0]!;
    let previous = -1;
    for (let i = 0; i < run.manifest.rows; i++) {
      const x = run.coords[2 * i]!;
      const y = run.coords[2 * i + 1]!;
      expect(x % 224).toBe(0);
      expect(y % 224).toBe(0);
      expect(x + 224).toBeLessThanOrEqual(level0.widthPx);
      expect(y + 224).toBeLessThanOrEqual(level0.heightPx);
      const order = (y / 224) * grid.cols + x / 224;
      expect(order).toBeGreaterThan(previous);
      previous = order;
    }

    for (const i of [0, Math.floor(run.manifest.rows / 2), run.manifest.rows - 1]) {
      const patch = await cutFromTiles(gateway, cmu1, level0, run.coords[2 * i]!, run.coords[2 * i + 1]!, 224);
      const expected = await runOnnxDirectly(join(modelsDir, 'test-vit-tiny.onnx'), patch);
      const stored = run.embeddings.subarray(i * run.manifest.dim, (i + 1) * run.manifest.dim);
      for (let d = 0; d < run.manifest.dim; d++) expect(stored[d]).toBeCloseTo(expected[d]!, 4);
    }
    // A neighbour's pixels give another embedding: the comparison can fail.
    const shifted = await runOnnxDirectly(join(modelsDir, 'test-vit-tiny.onnx'), await cutFromTiles(gateway, cmu1, level0, run.coords[0]! + 8, run.coords[1]!, 224));
    expect(Math.abs(shifted[0]! - run.embeddings[0]!) + Math.abs(shifted[1]! - run.embeddings[1]!)).toBeGreaterThan(1e-3);
  });

  it('pools the tiny BiT spatial map and runs the built-in model on JPEG and JPEG 2000 slides at once', async () => {
    const j2k = await sampleSlideId(wsiSamples.cmu1T256J2k);
    const [bit, builtinJpeg, builtinJ2k] = await Promise.all([
      runJob(gateway, cmu1, { model: 'test-bit-tiny', minTissue: 0.5 }),
      runJob(gateway, cmu1, { model: 'stain-texture' }),
      runJob(gateway, j2k, { model: 'stain-texture' }),
    ]);
    for (const { job } of [bit, builtinJpeg, builtinJ2k]) expect(job.state, JSON.stringify(job.error)).toBe('done');
    const bitRun = await downloadRun(gateway, cmu1, 'test-bit-tiny', bit.job.result!.runId);
    expect(bitRun.manifest.dim).toBe(256);
    expect(bitRun.embeddings.every(Number.isFinite)).toBe(true);
    const jpegRun = await downloadRun(gateway, cmu1, 'stain-texture', builtinJpeg.job.result!.runId);
    const j2kRun = await downloadRun(gateway, j2k, 'stain-texture', builtinJ2k.job.result!.runId);
    // The same scan stored lossless and at JPEG q90: the same patches, statistics within JPEG's error.
    expect(j2kRun.coords).toEqual(jpegRun.coords);
    let sum = 0;
    for (let i = 0; i < jpegRun.embeddings.length; i++) sum += Math.abs(jpegRun.embeddings[i]! - j2kRun.embeddings[i]!);
    const meanDiff = sum / jpegRun.embeddings.length;
    expect(meanDiff).toBeLessThan(0.02);
    expect(meanDiff).toBeGreaterThan(0);
    // Asking again returns the stored run at once, and the listing links its files.
    const again = await runJob(gateway, cmu1, { model: 'stain-texture' });
    expect(again.job.notes.join(' ')).toMatch(/already embedded/);
    const list = await readJson<{ runs: Array<{ status: string; key: { modelId: string }; links: Record<string, string> }> }>(await gateway.get(`/api/slides/${cmu1}/embeddings?model=stain-texture`));
    expect(list.runs).toHaveLength(1);
    expect(list.runs[0]!.links['embeddings.npy']).toMatch(/\/embeddings\/stain-texture\/mpp0\.5-s224-t0\.25\/embeddings\.npy$/);
  });

  it('answers the caller\'s mistakes with 400s that name the problem, before any job starts', async () => {
    const expectError = async (response: Response, status: number, code: string, message?: RegExp) => {
      const body = await readJson<{ error: { code: string; message: string } }>(response);
      expect(response.status, JSON.stringify(body)).toBe(status);
      expect(body.error.code).toBe(code);
      if (message) expect(body.error.message).toMatch(message);
    };
    await expectError(await postJob(gateway, cmu1, { model: 'no-such-model' }), 400, 'UNKNOWN_MODEL', /stain-texture/);
    await expectError(await postJob(gateway, cmu1, { model: 'path-foundation' }), 400, 'MODEL_FILE_MISSING', /path-foundation\.onnx.*models\/README\.md/);
    await expectError(await postJob(gateway, cmu1, { mpp: 0.1 }), 400, 'MPP_TOO_FINE', /0\.499/);
    await expectError(await postJob(gateway, cmu1, { minTissue: 2 }), 400, 'INVALID_BODY', /minTissue/);
    await expectError(await postJob(gateway, cmu1, { modle: 'x' }), 400, 'INVALID_BODY');
    await expectError(await gateway.app.request(`/api/slides/${cmu1}/embeddings`, { method: 'POST', body: '{' }), 400, 'INVALID_BODY');
    await expectError(await postJob(gateway, await sampleSlideId(wsiSamples.annotation), {}), 400, 'NOT_A_SLIDE');
    await expectError(await postJob(gateway, '1.2.3/4.5.6', {}), 404, 'UPSTREAM_NOT_FOUND');
    await expectError(await gateway.get('/api/jobs/00000000-0000-0000-0000-000000000000'), 404, 'JOB_NOT_FOUND');
    await expectError(await gateway.get(`/api/slides/${cmu1}/embeddings/stain-texture/mpp9-s1-t0/embeddings.npy`), 404, 'RUN_NOT_FOUND');
    await expectError(await gateway.get(`/api/slides/${cmu1}/embeddings/stain-texture/mpp0.5-s224-t0.25/secrets.txt`), 404, 'FILE_NOT_FOUND');
    const models = await readJson<{ models: Array<{ id: string; available: boolean }> }>(await gateway.get('/api/models'));
    expect(models.models.find((m) => m.id === 'stain-texture')?.available).toBe(true);
    expect(models.models.find((m) => m.id === 'path-foundation')?.available).toBe(false);
  });

  it('cancels a running job with DELETE, and a new request resumes from what was stored', async () => {
    const body = { model: 'test-vit-tiny', stride: 56, minTissue: 0 };
    const response = await postJob(gateway, cmu1, body);
    const { id } = await readJson<Job>(response);
    for (let job = await readJson<Job>(await gateway.get(`/api/jobs/${id}`)); job.progress.done === 0; job = await readJson<Job>(await gateway.get(`/api/jobs/${id}`))) {
      await new Promise((r) => setTimeout(r, 20));
    }
    const cancelled = await readJson<Job>(await gateway.app.request(`/api/jobs/${id}`, { method: 'DELETE' }));
    expect(['running', 'cancelled']).toContain(cancelled.state);
    await new Promise((r) => setTimeout(r, 200));
    const stopped = await readJson<Job>(await gateway.get(`/api/jobs/${id}`));
    expect(stopped.state).toBe('cancelled');
    expect(stopped.progress.done).toBeLessThan(stopped.progress.total);
    const resumed = await runJob(gateway, cmu1, body);
    expect(resumed.job.state).toBe('done');
    expect(resumed.job.notes.join(' ')).toMatch(/Resumed: \d+ of 1764 patches/);
    const run = await downloadRun(gateway, cmu1, 'test-vit-tiny', resumed.job.result!.runId);
    // (2220 - 224) / 56 + 1 = 36 columns, (2967 - 224) / 56 + 1 = 49 rows, every patch (minTissue 0).
    expect(run.manifest.rows).toBe(36 * 49);
  });

  it('retries a PACS that fails mid-job, then fails the job with the PACS\'s error; a new request resumes and completes', async () => {
    // A proxy in front of Orthanc that answers 503 to frame requests while `failing` is set.
    let failing = false;
    let refused = 0;
    const proxy = createServer((req, res) => {
      if (failing && req.url?.includes('/frames/')) {
        refused++;
        res.writeHead(503, { 'content-type': 'text/plain' }).end('maintenance');
        return;
      }
      const upstream = httpRequest(new URL(req.url!, dicomwebUrl.replace(/\/dicom-web$/, '')), { method: req.method, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode!, answer.headers);
        answer.pipe(res);
      });
      upstream.on('error', () => res.destroy());
      req.pipe(upstream);
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}/dicom-web`;
    const flaky = createTestGateway(
      // The job's own retries are under test: the circuit breaker (tested in src/source and by the
      // reliability suite) would otherwise answer for the PACS once 10 requests in a row failed.
      { DICOMWEB_URL: proxyUrl, MODELS_DIR: modelsDir, EMBED_DIR: embedDir, EMBED_FRAMES_PER_REQUEST: '4', DICOMWEB_BREAKER_FAILURES: '0' },
      { embedRetry: { attempts: 3, baseDelayMs: 20, maxDelayMs: 50 } },
    );
    try {
      const body = { model: 'stain-texture', stride: 112, minTissue: 0 };
      const { id } = await readJson<Job>(await postJob(flaky, cmu1, body));
      for (let job = await readJson<Job>(await flaky.get(`/api/jobs/${id}`)); job.progress.done === 0; job = await readJson<Job>(await flaky.get(`/api/jobs/${id}`))) {
        await new Promise((r) => setTimeout(r, 10));
      }
      failing = true;
      const events = await followJob(flaky, id);
      const failed = events.at(-1)!.job;
      expect(failed.state).toBe('failed');
      expect(failed.error?.code).toBe('UPSTREAM_FAILED');
      expect(failed.error?.message).toMatch(/503/);
      // Three tries of the request that failed (others may have been in flight too).
      expect(refused).toBeGreaterThanOrEqual(3);
      expect(failed.progress.done).toBeGreaterThan(0);
      expect(failed.progress.done).toBeLessThan(failed.progress.total);

      failing = false;
      const resumed = await runJob(flaky, cmu1, body);
      expect(resumed.job.state).toBe('done');
      expect(resumed.job.notes.join(' ')).toMatch(new RegExp(`Resumed: ${failed.progress.done} of ${failed.progress.total}`));
      // The same as one uninterrupted run through the healthy PACS.
      const healthyDir = await mkdtemp(join(tmpdir(), 'embeddings-'));
      const healthy = createTestGateway({ DICOMWEB_URL: dicomwebUrl, EMBED_DIR: healthyDir });
      try {
        const clean = await runJob(healthy, cmu1, body);
        const a = await downloadRun(flaky, cmu1, 'stain-texture', resumed.job.result!.runId);
        const b = await downloadRun(healthy, cmu1, 'stain-texture', clean.job.result!.runId);
        expect(a.embeddingsBytes.equals(b.embeddingsBytes)).toBe(true);
        expect(a.coordsBytes.equals(b.coordsBytes)).toBe(true);
      } finally {
        await healthy.close();
        await rm(healthyDir, { recursive: true, force: true });
      }
    } finally {
      await flaky.close();
      await new Promise((resolve) => proxy.close(resolve));
    }
  });
});
