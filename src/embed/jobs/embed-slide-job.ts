/**
 * The work of one embedding job, from a spec to stored files: the grid at the requested mpp, the tissue
 * mask from a low-resolution level, the patches to embed, the store run (resumed where a previous
 * attempt stopped), the pipeline, and the manifest that marks the run complete.
 */
import type { Logger } from 'pino';
import type { SlideSource } from '../../source/types.js';
import { GATEWAY_VERSION } from '../../version.js';
import type { SlideCatalog, TileService } from '../../tiles/index.js';
import type { Level, Slide } from '../../wsi/index.js';
import { patchOriginLevel0Px, patchReadRect, planPatchGrid, type PatchGridPlan } from '../grid/patch-grid.js';
import { detectTissue, selectTissuePatches, TISSUE_DEFAULTS, type TissueSelection } from '../grid/tissue-mask.js';
import { embedPatches } from '../pipeline/embed-patches.js';
import type { RectLevelPx } from '../pipeline/patch-cutter.js';
import { DEFAULT_RETRY, type RetryPolicy } from '../pipeline/retry.js';
import type { ModelRegistry } from '../runtime/index.js';
import type { EmbeddingStore, RunKey } from '../store/index.js';
import type { EmbedJobSpec, JobReporter } from './job-queue.js';

export interface EmbedSlideDeps {
  source: SlideSource;
  catalog: SlideCatalog;
  tiles: TileService;
  models: ModelRegistry;
  store: EmbeddingStore;
  logger: Logger;
  framesPerRequest: number;
  retry?: Partial<RetryPolicy>;
}

/** The tissue mask is read from a level of at most this many frames, scaled to at most MASK_SIZE_PX. */
const MASK_MAX_FRAMES = 1024;
const MASK_SIZE_PX = 2048;

/** The store run of a spec: one directory per grid, so a different mpp or stride never mixes rows. */
export function computeRunId(spec: Pick<EmbedJobSpec, 'mpp' | 'stridePx' | 'minTissue' | 'mppOverride'>): string {
  const override = spec.mppOverride === undefined ? '' : `-o${spec.mppOverride}`;
  return `mpp${spec.mpp}-s${spec.stridePx}-t${spec.minTissue}${override}`;
}

/** The finest level small enough to read whole for the mask; undefined for a one-level giant. */
function pickMaskLevel(slide: Slide): Level | undefined {
  return slide.levels.find((l) => l.gridCols * l.gridRows <= MASK_MAX_FRAMES);
}

/** Every patch of the grid, for minTissue 0 or a slide with no level small enough for a mask. */
function selectAll(plan: PatchGridPlan): TissueSelection {
  const cols = new Int32Array(plan.count);
  const rows = new Int32Array(plan.count);
  for (let i = 0; i < plan.count; i++) {
    cols[i] = i % plan.cols;
    rows[i] = Math.floor(i / plan.cols);
  }
  return { cols, rows, tissueFraction: new Float32Array(plan.count).fill(1), count: plan.count };
}

async function selectPatches(slide: Slide, plan: PatchGridPlan, spec: EmbedJobSpec, deps: EmbedSlideDeps, report: JobReporter) {
  if (spec.minTissue === 0) return { selection: selectAll(plan), tissue: { method: 'none: every patch' } };
  const maskLevel = pickMaskLevel(slide);
  if (!maskLevel) {
    report.note('No level is small enough to read whole for a tissue mask: every patch is embedded.');
    return { selection: selectAll(plan), tissue: { method: 'none: no low-resolution level' } };
  }
  const image = await deps.tiles.renderRgb(slide, maskLevel, MASK_SIZE_PX, MASK_MAX_FRAMES);
  const mask = detectTissue(image, slide.levels[0]!.widthPx / image.widthPx);
  const selection = selectTissuePatches(plan, mask, spec.minTissue);
  return {
    selection,
    tissue: {
      method: 'Otsu threshold on saturation of a low-resolution level, glass and ink excluded',
      maskLevel: maskLevel.index,
      maskSizePx: [mask.widthPx, mask.heightPx],
      maskDownsample: mask.downsample,
      saturationThreshold: mask.threshold,
      whiteLevel: TISSUE_DEFAULTS.whiteLevel,
      blackLevel: TISSUE_DEFAULTS.blackLevel,
      tissueFractionOfMask: mask.tissuePx / (mask.widthPx * mask.heightPx),
    },
  };
}

export async function runEmbedSlideJob(spec: EmbedJobSpec, deps: EmbedSlideDeps, report: JobReporter, signal: AbortSignal): Promise<{ runId: string }> {
  const manifest = await deps.models.check(spec.model);
  const slide = await deps.catalog.getSlide(spec.studyUid, spec.seriesUid, signal);
  const plan = planPatchGrid(slide.levels, { mpp: spec.mpp, patchSizePx: manifest.input.sizePx, stridePx: spec.stridePx, mppOverride: spec.mppOverride });
  if (plan.note) report.note(plan.note);
  const { selection, tissue } = await selectPatches(slide, plan, spec, deps, report);
  const level = slide.levels[plan.levelIndex]!;

  const rects: RectLevelPx[] = [];
  const originsLevel0Px = new Int32Array(selection.count * 2);
  for (let i = 0; i < selection.count; i++) {
    const col = selection.cols[i]!;
    const row = selection.rows[i]!;
    const rect = patchReadRect(plan, col, row);
    rects.push({ xPx: rect.xPx, yPx: rect.yPx, widthPx: rect.widthPx, heightPx: rect.heightPx });
    const origin = patchOriginLevel0Px(plan, col, row);
    originsLevel0Px[2 * i] = origin.xPx;
    originsLevel0Px[2 * i + 1] = origin.yPx;
  }

  const runId = computeRunId(spec);
  const key: RunKey = { studyUid: spec.studyUid, seriesUid: spec.seriesUid, modelId: manifest.id, runId };
  const params = { spec: { ...spec, mppOverride: spec.mppOverride ?? null }, grid: plan, modelFile: manifest.file ?? null, tissue };
  const writer = await deps.store.openRun(key, { dim: manifest.output.dim, totalPatches: selection.count, params });
  try {
    if (writer.complete) {
      report.note('This slide was already embedded with these settings: the stored run is returned.');
      report.progress({ done: selection.count, total: selection.count, embedded: writer.rows, skipped: writer.skippedCount });
      return { runId };
    }
    if (writer.committedPatches > 0) report.note(`Resumed: ${writer.committedPatches} of ${selection.count} patches were already stored.`);
    if (writer.discarded) report.note('An unfinished run with other settings was discarded.');
    const model = await deps.models.acquire(manifest.id);
    let embedded = writer.rows;
    let skipped = writer.skippedCount;
    report.progress({ done: writer.committedPatches, total: selection.count, embedded, skipped });
    const startedMs = performance.now();
    const stats = await embedPatches({
      slide,
      level,
      source: deps.source,
      model,
      rects,
      originsLevel0Px,
      startAt: writer.committedPatches,
      framesPerRequest: deps.framesPerRequest,
      retry: {
        ...DEFAULT_RETRY,
        ...deps.retry,
        onRetry: (error, attempt, delayMs) => {
          deps.logger.warn({ study: spec.studyUid, series: spec.seriesUid, attempt, delayMs, reason: (error as Error).message }, 'PACS request failed, retrying');
        },
      },
      signal,
      // The gateway's decoder: JPEG 2000 and JPEG-LS frames decode in its worker pool, off the event loop.
      decoder: deps.tiles.decoder,
      async commit(batch) {
        await writer.commitBatch(batch);
        embedded += batch.embeddings.length / manifest.output.dim;
        skipped += batch.skipped.length;
        report.progress({ done: batch.gridEnd, total: selection.count, embedded, skipped });
      },
    });
    const seconds = (performance.now() - startedMs) / 1000;
    await writer.finish({
      model: { id: manifest.id, name: manifest.name, format: manifest.format, dim: manifest.output.dim, backend: model.backend, input: manifest.input, output: manifest.output },
      slide: { studyUid: slide.studyUid, seriesUid: slide.seriesUid, level0SizePx: [slide.levels[0]!.widthPx, slide.levels[0]!.heightPx], levelIndex: plan.levelIndex },
      grid: plan,
      tissue,
      coords: 'coords.npy holds each embedded patch\'s level-0 pixel origin (x, y); its side is grid.patchSizeLevel0Px level-0 pixels',
      run: { patchesPerSecond: seconds > 0 ? Math.round(((stats.embedded + stats.skipped) / seconds) * 10) / 10 : null, pacsRequests: stats.requests, framesFetched: stats.frames },
      versions: { gateway: GATEWAY_VERSION, node: process.version },
    });
    return { runId };
  } finally {
    await writer.close();
  }
}
