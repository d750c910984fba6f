/**
 * Embedding benchmark, in one run on the large slide (../shared/wsi/make-large-slide.sh) served by a
 * real Orthanc: (a) the feeder alone (fetch, decode, cut, batch, store) with a null model, (b) each
 * full-size generated model (ViT-S/16, BiT-R50x1) on ready tensors, (c) end to end with each model.
 * Prints a markdown table with ratios and writes it to bench/results/embed.md.
 * Run: `npm run bench:embed` (a few minutes on 2 cores, most of it the models).
 *
 * Seconds are the pipeline's (first to last progress report); the setup before it (series metadata,
 * tissue mask, store) is shown in the notes, once per slide whatever its size.
 * The end-to-end runs use the 2 µm/px grid (E2E_MPP) so that a CPU-bound model needs minutes, not
 * hours; the feeder runs on both grids. Nothing is asserted: it measures and reports.
 */
import { tmpdir } from 'node:os';
import { mkdtemp, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { createServices } from '../src/app.js';
import { loadConfig } from '../src/config/index.js';
import { writeGeneratedModels } from '../src/embed/generate/index.js';
import type { EmbedJobSpec, JobReporter } from '../src/embed/jobs/job-queue.js';
import { runEmbedSlideJob } from '../src/embed/jobs/embed-slide-job.js';
import { loadManifests, type ModelManifest } from '../src/embed/models/manifest.js';
import { loadOnnxModel } from '../src/embed/runtime/onnx.js';
import type { EmbeddingModel, ModelRegistry } from '../src/embed/runtime/index.js';
import { createLocalStore } from '../src/embed/store/index.js';
import { startOrthanc } from '../test/support/orthanc.js';
import { makeLargeSlide, readDicomFileFacts } from '../test/support/wsi-data.js';
import { describeMachine, writeReport } from './support/report.js';

/**
 * Model-only timing: at least this long, after a warm-up batch, once before and once after the
 * end-to-end run; their mean is the baseline (on a shared 2-core machine a single 20 s measurement
 * drifted by 10% against the end-to-end run that followed it).
 */
const MODEL_SECONDS = 12;
/**
 * The end-to-end grid: every patch at 2 µm/px (Path Foundation's coarsest training scale), 352 patches
 * read from the large slide's 1/4 level: minutes with a CPU-bound model, not hours.
 */
const E2E_MPP = 2;
/** `BENCH_EMBED_MODELS=none npm run bench:embed` measures the feeder only (a quick check while tuning it). */
const modelIds = (process.env.BENCH_EMBED_MODELS ?? 'bench-vit-s16,bench-bit-r50x1').split(',').filter((id) => id !== 'none' && id !== '');
const benchDir = join(tmpdir(), 'wsi-gateway-bench');
const resultsPath = join(dirname(fileURLToPath(import.meta.url)), 'results', 'embed.md');
const started = performance.now();

function step(message: string): void {
  console.log(`[${((performance.now() - started) / 1000).toFixed(0).padStart(3)} s] ${message}`);
}

/** A model that costs nothing: what the feeder alone can deliver. */
function createNullModel(manifest: ModelManifest): EmbeddingModel {
  return {
    manifest,
    dim: manifest.output.dim,
    backend: 'null',
    embed: (batch) => Promise.resolve(new Float32Array(batch.count * manifest.output.dim)),
    close: () => Promise.resolve(),
  };
}

/** A registry of exactly one already-loaded model. */
function singleModel(model: EmbeddingModel): ModelRegistry {
  return {
    list: () => Promise.resolve([{ manifest: model.manifest, available: true, backend: model.backend }]),
    check: () => Promise.resolve(model.manifest),
    acquire: () => Promise.resolve(model),
    close: () => model.close(),
  };
}

/** The model alone, on a ready batch of random pixels, through the same adapter the pipeline uses. */
async function measureModelOnly(model: EmbeddingModel): Promise<{ patchesPerSecond: number; batches: number }> {
  const { sizePx } = model.manifest.input;
  const count = model.manifest.maxBatch;
  const pixels = Uint8Array.from({ length: count * sizePx * sizePx * 3 }, (_, i) => (i * 2654435761) >>> 24);
  await model.embed({ pixels, count, sizePx });
  let batches = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < MODEL_SECONDS * 1000) {
    await model.embed({ pixels, count, sizePx });
    batches++;
  }
  return { patchesPerSecond: (batches * count) / ((performance.now() - t0) / 1000), batches };
}

interface Row {
  what: string;
  patches: number;
  seconds: number;
  patchesPerSecond: number;
  note: string;
}

async function main(): Promise<void> {
  step('building the large slide (make-large-slide.sh) and the full-size models');
  const slide = await makeLargeSlide(join(benchDir, 'large-slide'));
  const facts = await readDicomFileFacts(slide.files[0]!);
  const runDir = await mkdtemp(join(tmpdir(), 'bench-embed-'));
  const modelsDir = join(runDir, 'models');
  const written = await writeGeneratedModels(modelsDir, ['vit-s16', 'bit-r50x1']);
  const manifests = await loadManifests(modelsDir);
  const orthanc = await startOrthanc({ metadataMode: 'Full', storageDir: join(runDir, 'orthanc') });
  const rows: Row[] = [];
  try {
    step(`uploading ${slide.files.length} files to Orthanc`);
    await orthanc.upload(slide.files);
    // GATEWAY_DECODE_THREADS passes through, so decoding in the pool (default) and with sharp (0) can be compared.
    const decodeThreads = process.env.GATEWAY_DECODE_THREADS;
    const config = loadConfig({ DICOMWEB_URL: orthanc.dicomwebUrl, EMBED_DIR: join(runDir, 'store'), LOG_LEVEL: 'warn', ...(decodeThreads ? { GATEWAY_DECODE_THREADS: decodeThreads } : {}) });
    const logger = pino({ level: 'warn' });
    const services = createServices(config, { logger });
    const store = createLocalStore(join(runDir, 'store'));
    // The pipeline's own time runs from its first progress report (grid, mask and store ready) to its last.
    let firstProgressAt = 0;
    let lastProgressAt = 0;
    const report: JobReporter = {
      progress: () => {
        lastProgressAt = performance.now();
        firstProgressAt ||= lastProgressAt;
      },
      note: (text) => step(`  note: ${text}`),
    };

    /** One job through the real pipeline and store; a fresh store run each time (runId differs by model). */
    async function runJob(model: EmbeddingModel, mpp: number): Promise<{ patches: number; seconds: number; setupSeconds: number; requests: string }> {
      firstProgressAt = 0;
      const spec: EmbedJobSpec = { studyUid: facts.studyInstanceUid, seriesUid: facts.seriesInstanceUid, model: model.manifest.id, mpp, stridePx: model.manifest.input.sizePx, minTissue: 0, mppOverride: undefined };
      // A fresh catalog and cache: every job reads its frames from Orthanc.
      services.catalog.clear();
      services.tiles.clear();
      // The time the model spends in embed(): how busy the pipeline keeps it.
      let modelMs = 0;
      const timed: EmbeddingModel = {
        ...model,
        embed: async (batch) => {
          const started = performance.now();
          try {
            return await model.embed(batch);
          } finally {
            modelMs += performance.now() - started;
          }
        },
      };
      const t0 = performance.now();
      const { runId } = await runEmbedSlideJob(spec, { ...services, models: singleModel(timed), store, logger, framesPerRequest: config.embedFramesPerRequest }, report, new AbortController().signal);
      const setupSeconds = (firstProgressAt - t0) / 1000;
      const seconds = (lastProgressAt - firstProgressAt) / 1000;
      const manifest = (await store.getRun({ studyUid: spec.studyUid, seriesUid: spec.seriesUid, modelId: model.manifest.id, runId }))!;
      const run = manifest['run'] as { pacsRequests: number; framesFetched: number };
      const busy = model.backend === 'null' ? '' : `; model busy ${((modelMs / 1000 / seconds) * 100).toFixed(0)}% of the run`;
      return { patches: manifest.rows + manifest.skippedCount, seconds, setupSeconds, requests: `${run.pacsRequests} PACS requests, ${run.framesFetched} frames; setup (metadata, mask, store) ${setupSeconds.toFixed(1)} s${busy}` };
    }

    const vit = manifests.get('bench-vit-s16')!;
    step('(a) feeder with a null model, full grids at 0.5 and 2 µm/px');
    const feeder = await runJob(createNullModel({ ...vit, id: 'null-feeder', maxBatch: 32 }), 0.5);
    rows.push({ what: '(a) feeder, null model, 0.5 µm/px grid, batch 32', patches: feeder.patches, seconds: feeder.seconds, patchesPerSecond: feeder.patches / feeder.seconds, note: feeder.requests });
    const sparse = await runJob(createNullModel({ ...vit, id: 'null-sparse', maxBatch: 8 }), E2E_MPP);
    rows.push({ what: `(a) feeder, null model, ${E2E_MPP} µm/px grid, batch 8`, patches: sparse.patches, seconds: sparse.seconds, patchesPerSecond: sparse.patches / sparse.seconds, note: sparse.requests });

    for (const id of modelIds) {
      const manifest = manifests.get(id)!;
      const model = await loadOnnxModel(manifest, modelsDir, { intraOpThreads: config.onnxThreads });
      try {
        step(`(b) ${id} alone on ready tensors (${MODEL_SECONDS} s)`);
        const before = await measureModelOnly(model);
        step(`(c) ${id} end to end, ${E2E_MPP} µm/px grid`);
        const e2e = await runJob(model, E2E_MPP);
        step(`(b) ${id} alone again (${MODEL_SECONDS} s)`);
        const after = await measureModelOnly(model);
        const batches = before.batches + after.batches;
        const alone = { batches, patchesPerSecond: (before.patchesPerSecond + after.patchesPerSecond) / 2 };
        rows.push({ what: `(b) ${id}, model only`, patches: batches * manifest.maxBatch, seconds: (batches * manifest.maxBatch) / alone.patchesPerSecond, patchesPerSecond: alone.patchesPerSecond, note: `batch ${manifest.maxBatch}, ${model.backend}; mean of ${before.patchesPerSecond.toFixed(1)} before and ${after.patchesPerSecond.toFixed(1)} after (c)` });
        rows.push({ what: `(c) ${id}, end to end at ${E2E_MPP} µm/px`, patches: e2e.patches, seconds: e2e.seconds, patchesPerSecond: e2e.patches / e2e.seconds, note: `${((e2e.patches / e2e.seconds / alone.patchesPerSecond) * 100).toFixed(0)}% of model only; ${e2e.requests}` });
      } finally {
        await model.close();
      }
    }
    await services.close();

    const table = [
      '| run | patches | seconds | patches/s | ratio | notes |',
      '|---|---:|---:|---:|---:|---|',
      ...rows.map((r) => {
        const base = r.what.startsWith('(c) ') ? rows.find((b) => b.what === r.what.replace('(c) ', '(b) ').replace(/end to end.*$/, 'model only')) : undefined;
        const ratio = base ? `${(r.patchesPerSecond / base.patchesPerSecond).toFixed(2)}x model only` : r.what.startsWith('(a)') ? `${(r.patchesPerSecond / 1000).toFixed(2)}x target 1,000/s` : '';
        return `| ${r.what} | ${r.patches} | ${r.seconds.toFixed(1)} | ${r.patchesPerSecond.toFixed(1)} | ${ratio} | ${r.note} |`;
      }),
    ].join('\n');
    const text = [
      '# Embedding benchmark',
      '',
      `${describeMachine()}; ` +
        `large slide ${slide.files.length} files from make-large-slide.sh in Orthanc; models generated with random weights (${written.map((w) => `${w.id} ${(w.paramCount / 1e6).toFixed(1)}M`).join(', ')}).`,
      '',
      table,
      '',
    ].join('\n');
    console.log(`\n${text}`);
    // A partial run prints its table but leaves the committed report alone.
    if (modelIds.length === 2) await writeReport(resultsPath, text);
  } finally {
    await orthanc.stop();
    await rm(runDir, { recursive: true, force: true });
  }
}

await main();
