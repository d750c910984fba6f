/**
 * Embeddings of a slide: start a job (POST), list the stored runs (GET), download a run's files, and
 * the models there are (/api/models). Thin: validate, call the services, shape the answer.
 */
import { Readable } from 'node:stream';
import { Hono } from 'hono';
import { z } from 'zod';
import { BadRequestError, NotFoundError } from '../errors.js';
import { planPatchGrid } from '../embed/grid/patch-grid.js';
import { createJobSpec, DEFAULT_MIN_TISSUE, DEFAULT_MODEL, type JobQueue } from '../embed/jobs/job-queue.js';
import type { ModelRegistry } from '../embed/runtime/index.js';
import { RUN_FILES, type EmbeddingStore, type RunFileName, type RunInfo } from '../embed/store/index.js';
import type { SlideCatalog } from '../tiles/index.js';
import { parseOptionalModelId, parseOptionalRunId, parseUid } from './params.js';

export interface EmbeddingRoutesDeps {
  catalog: SlideCatalog;
  models: ModelRegistry;
  store: EmbeddingStore;
  jobs: JobQueue;
}

const JobRequestSchema = z
  .object({
    model: z.string().min(1).max(64).default(DEFAULT_MODEL),
    mpp: z.number().positive().max(1000).optional(),
    stride: z.number().int().min(1).max(100_000).optional(),
    minTissue: z.number().min(0).max(1).default(DEFAULT_MIN_TISSUE),
    mppOverride: z.number().positive().max(1000).optional(),
  })
  .strict();

async function readJobRequest(body: string) {
  let json: unknown = {};
  if (body.trim() !== '') {
    try {
      json = JSON.parse(body);
    } catch {
      throw new BadRequestError('The body must be JSON: {"model", "mpp", "stride", "minTissue", "mppOverride"}, all optional', 'INVALID_BODY');
    }
  }
  const parsed = JobRequestSchema.safeParse(json);
  if (!parsed.success) {
    throw new BadRequestError(parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; '), 'INVALID_BODY');
  }
  return parsed.data;
}

function runLinks(base: string, info: RunInfo) {
  const prefix = `${base}/${info.key.modelId}/${info.key.runId}`;
  return info.status === 'complete' ? Object.fromEntries(RUN_FILES.map((f) => [f, `${prefix}/${f}`])) : {};
}

export function createEmbeddingRoutes(deps: EmbeddingRoutesDeps): Hono {
  const app = new Hono();

  app.post('/:study/:series/embeddings', async (c) => {
    const studyUid = parseUid(c.req.param('study'), 'study');
    const seriesUid = parseUid(c.req.param('series'), 'series');
    const request = await readJobRequest(await c.req.text());
    // Checked now so that a caller's mistake is a 400 here, not a failed job later.
    const manifest = await deps.models.check(request.model);
    const slide = await deps.catalog.getSlide(studyUid, seriesUid, c.req.raw.signal);
    const spec = createJobSpec(manifest, { studyUid, seriesUid }, request);
    // An mpp finer than the scan, or a slide without spacing, is the caller's to fix: say so now.
    planPatchGrid(slide.levels, { mpp: spec.mpp, patchSizePx: manifest.input.sizePx, stridePx: spec.stridePx, mppOverride: spec.mppOverride });
    const job = deps.jobs.submit(spec);
    // 202 promises the job survives a crash from here on: answer once it is in the durable list.
    await deps.jobs.persisted?.();
    c.header('Location', `/api/jobs/${job.id}`);
    return c.json({ ...job, links: { self: `/api/jobs/${job.id}`, events: `/api/jobs/${job.id}/events` } }, 202);
  });

  app.get('/:study/:series/embeddings', async (c) => {
    const studyUid = parseUid(c.req.param('study'), 'study');
    const seriesUid = parseUid(c.req.param('series'), 'series');
    const model = parseOptionalModelId(c.req.query('model'));
    const runs = await deps.store.listRuns(studyUid, seriesUid, model);
    const base = `/api/slides/${studyUid}/${seriesUid}/embeddings`;
    return c.json({ runs: runs.map((info) => ({ ...info, links: runLinks(base, info) })) });
  });

  app.get('/:study/:series/embeddings/:model/:run/:file', async (c) => {
    const studyUid = parseUid(c.req.param('study'), 'study');
    const seriesUid = parseUid(c.req.param('series'), 'series');
    const modelId = parseOptionalModelId(c.req.param('model'))!;
    const runId = parseOptionalRunId(c.req.param('run'))!;
    const name = c.req.param('file');
    if (!(RUN_FILES as readonly string[]).includes(name)) throw new NotFoundError(`A run has ${RUN_FILES.join(', ')}`, 'FILE_NOT_FOUND');
    const file = await deps.store.openFile({ studyUid, seriesUid, modelId, runId }, name as RunFileName);
    if (!file) throw new NotFoundError(`No complete run ${modelId}/${runId} for this slide`, 'RUN_NOT_FOUND');
    const etag = `"${file.sha256}"`;
    if (c.req.header('if-none-match') === etag) return c.body(null, 304);
    return c.body(Readable.toWeb(file.stream()) as ReadableStream, 200, {
      'Content-Type': name.endsWith('.json') ? 'application/json' : 'application/octet-stream',
      'Content-Length': String(file.bytes),
      'Content-Disposition': `attachment; filename="${seriesUid}_${modelId}_${runId}_${name}"`,
      ETag: etag,
      'Cache-Control': 'private, no-cache',
    });
  });

  return app;
}

export function createModelRoutes({ models }: { models: ModelRegistry }): Hono {
  const app = new Hono();
  app.get('/', async (c) => {
    const list = await models.list();
    return c.json({
      models: list.map(({ manifest, available, backend }) => ({
        id: manifest.id,
        name: manifest.name,
        description: manifest.description,
        format: manifest.format,
        dim: manifest.output.dim,
        patchSizePx: manifest.input.sizePx,
        recommendedMpp: manifest.recommendedMpp,
        available,
        backend: backend ?? null,
      })),
    });
  });
  return app;
}
