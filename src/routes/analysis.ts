/**
 * Clusters and similarity of a slide's stored embeddings: k-means summary (JSON), overlay images (PNG),
 * exports (GeoJSON for QuPath, CSV), and the similarity of one patch with the rest. Thin: validate, call
 * the analysis service, shape the answer.
 */
import type { Context } from 'hono';
import { Hono } from 'hono';
import { BadRequestError } from '../errors.js';
import { computeClusterCsv, computeClusterGeoJson, computeSimilarityLut, parseHexColour, renderOverlayPng, type AnalysisService, type ClusterAnalysis, type LoadedRun, type PatchCells, type RunRef } from '../analysis/index.js';
import type { SlideCatalog } from '../tiles/index.js';
import { parseIndex, parseOptionalIndex, parseOptionalModelId, parseOptionalRunId, parseUid } from './params.js';

export interface AnalysisRoutesDeps {
  catalog: SlideCatalog;
  analysis: AnalysisService;
}

/** @default k when none is asked for: enough to separate tumour, stroma, fat, necrosis and the rest. */
const DEFAULT_K = 8;
const PRIVATE = 'private, no-cache';

function readRunRef(c: Context): RunRef {
  const ref: RunRef = { studyUid: parseUid(c.req.param('study'), 'study'), seriesUid: parseUid(c.req.param('series'), 'series') };
  const modelId = parseOptionalModelId(c.req.query('model'));
  const runId = parseOptionalRunId(c.req.query('run'));
  if (runId !== undefined && modelId === undefined) throw new BadRequestError('run needs model: a run id is only unique within its model', 'INVALID_PARAMETER');
  return { ...ref, ...(modelId && { modelId }), ...(runId && { runId }) };
}

function readClusterOptions(c: Context) {
  return {
    k: parseOptionalIndex(c.req.query('k'), 'k', DEFAULT_K, { min: 2, max: 32 }),
    seed: parseOptionalIndex(c.req.query('seed'), 'seed', 0, { max: 2 ** 31 - 1 }),
    pca: parseOptionalIndex(c.req.query('pca'), 'pca', 0, { max: 1024 }),
  };
}

function runBase(run: LoadedRun): string {
  return `/api/slides/${run.key.studyUid}/${run.key.seriesUid}`;
}

/** The query string that names exactly this result, for links that must not drift to a newer run. */
function exactQuery(analysis: ClusterAnalysis): string {
  const { run, options } = analysis;
  return `model=${run.key.modelId}&run=${encodeURIComponent(run.key.runId)}&k=${options.k}&seed=${options.seed}&pca=${options.pca}`;
}

function regionUrl(base: string, xPx: number, yPx: number, widthPx: number, heightPx: number): string {
  return `${base}/region.jpg?x=${xPx}&y=${yPx}&width=${widthPx}&height=${heightPx}&size=128`;
}

function cellsOf(analysis: ClusterAnalysis): PatchCells {
  const { run, result } = analysis;
  return { coordsPx: run.coordsPx, widthPx: run.size.widthPx, heightPx: run.size.heightPx, labels: result.labels };
}

/** Validators that change whenever the stored run or the request does. */
function resultEtag(run: LoadedRun, suffix: string): string {
  return `"${run.manifest.files['embeddings.npy'].sha256.slice(0, 24)}-${suffix}"`;
}

export function createAnalysisRoutes({ catalog, analysis }: AnalysisRoutesDeps): Hono {
  const app = new Hono();

  app.get('/:study/:series/clusters', async (c) => {
    const a = await analysis.getClusters(readRunRef(c), readClusterOptions(c));
    const { run, result, options } = a;
    const base = runBase(run);
    const query = exactQuery(a);
    return c.json(
      {
        studyUid: run.key.studyUid,
        seriesUid: run.key.seriesUid,
        model: run.key.modelId,
        runId: run.key.runId,
        ...options,
        rows: run.rows,
        dim: run.dim,
        patch: { widthPx: run.size.widthPx, heightPx: run.size.heightPx },
        pcaExplainedVariance: result.pca?.explainedVarianceRatio ?? null,
        iterations: result.iterations,
        converged: result.converged,
        inertia: result.inertia,
        computeMs: a.computeMs,
        cached: a.cached,
        clusters: a.clusters.map((cluster) => {
          const row = cluster.representativeRow;
          const xPx = run.coordsPx[2 * row]!;
          const yPx = run.coordsPx[2 * row + 1]!;
          return { ...cluster, representative: { row, xPx, yPx, image: regionUrl(base, xPx, yPx, run.size.widthPx, run.size.heightPx) } };
        }),
        /** One byte per patch, in coords.npy's row order. */
        labels: Buffer.from(result.labels.buffer, result.labels.byteOffset, result.labels.byteLength).toString('base64'),
        links: {
          coords: `${base}/embeddings/${run.key.modelId}/${run.key.runId}/coords.npy`,
          overlay: `${base}/clusters.png?${query}`,
          geojson: `${base}/clusters.geojson?${query}&mode=patches`,
          geojsonMerged: `${base}/clusters.geojson?${query}&mode=merged`,
          csv: `${base}/clusters.csv?${query}`,
        },
      },
      200,
      { 'cache-control': 'no-store' },
    );
  });

  /** The overlay PNG of a run: the whole slide at most `size` px across, a cell per coloured patch. */
  async function sendOverlay(c: Context, ref: RunRef, maxSizePx: number, run: LoadedRun, colourOf: (row: number) => readonly [number, number, number] | undefined, etag?: string) {
    const slide = await catalog.getSlide(ref.studyUid, ref.seriesUid, c.req.raw.signal);
    const png = await renderOverlayPng({ coordsPx: run.coordsPx, size: run.size, slideWidthPx: slide.levels[0]!.widthPx, slideHeightPx: slide.levels[0]!.heightPx, maxSizePx, colourOf });
    return c.body(new Uint8Array(png), 200, { 'content-type': 'image/png', 'cache-control': PRIVATE, ...(etag && { etag }) });
  }
  const readOverlaySize = (c: Context) => parseOptionalIndex(c.req.query('size'), 'size', 2048, { min: 16, max: 8192 });

  app.get('/:study/:series/clusters.png', async (c) => {
    const ref = readRunRef(c);
    const options = readClusterOptions(c);
    const maxSizePx = readOverlaySize(c);
    const only = c.req.query('only') === undefined ? undefined : parseIndex(c.req.query('only'), 'only', { max: options.k - 1 });
    const a = await analysis.getClusters(ref, options);
    const colours = a.clusters.map((cluster) => parseHexColour(cluster.colour));
    const colourOf = (row: number) => {
      const label = a.result.labels[row]!;
      return only === undefined || only === label ? colours[label] : undefined;
    };
    return sendOverlay(c, ref, maxSizePx, a.run, colourOf, resultEtag(a.run, `${exactQuery(a)}-${maxSizePx}-${only ?? 'all'}`));
  });

  app.get('/:study/:series/clusters.geojson', async (c) => {
    const mode = c.req.query('mode') ?? 'patches';
    if (mode !== 'patches' && mode !== 'merged') throw new BadRequestError('mode must be patches (one feature per patch) or merged (one per cluster)', 'INVALID_PARAMETER');
    const a = await analysis.getClusters(readRunRef(c), readClusterOptions(c));
    const geojson = computeClusterGeoJson(cellsOf(a), a.clusters, { mode });
    return c.body(JSON.stringify(geojson), 200, {
      'content-type': 'application/geo+json',
      'content-disposition': `attachment; filename="${a.run.key.seriesUid}_${a.run.key.modelId}_k${a.options.k}_${mode}.geojson"`,
      'cache-control': PRIVATE,
    });
  });

  app.get('/:study/:series/clusters.csv', async (c) => {
    const a = await analysis.getClusters(readRunRef(c), readClusterOptions(c));
    return c.body(computeClusterCsv(cellsOf(a), a.clusters), 200, {
      'content-type': 'text/csv; charset=utf-8',
      'content-disposition': `attachment; filename="${a.run.key.seriesUid}_${a.run.key.modelId}_k${a.options.k}.csv"`,
      'cache-control': PRIVATE,
    });
  });

  const readPoint = (c: Context) => ({ xPx: parseIndex(c.req.query('x'), 'x'), yPx: parseIndex(c.req.query('y'), 'y') });

  app.get('/:study/:series/similarity', async (c) => {
    const ref = readRunRef(c);
    const point = readPoint(c);
    const across = parseOptionalIndex(c.req.query('across'), 'across', 0, { max: 100 });
    const s = await analysis.getSimilarity(ref, point, across);
    const { run, queryRow, scores } = s;
    const base = runBase(run);
    const query = `model=${run.key.modelId}&run=${encodeURIComponent(run.key.runId)}&x=${point.xPx}&y=${point.yPx}`;
    return c.json(
      {
        studyUid: run.key.studyUid,
        seriesUid: run.key.seriesUid,
        model: run.key.modelId,
        runId: run.key.runId,
        rows: run.rows,
        patch: { widthPx: run.size.widthPx, heightPx: run.size.heightPx },
        query: { row: queryRow, xPx: run.coordsPx[2 * queryRow]!, yPx: run.coordsPx[2 * queryRow + 1]!, image: regionUrl(base, run.coordsPx[2 * queryRow]!, run.coordsPx[2 * queryRow + 1]!, run.size.widthPx, run.size.heightPx) },
        /** Cosine similarity per patch, float32 little-endian, in coords.npy's row order. */
        scores: Buffer.from(scores.buffer, scores.byteOffset, scores.byteLength).toString('base64'),
        min: s.minScore,
        max: 1,
        matches: s.matches.map((m) => ({
          ...m,
          image: regionUrl(`/api/slides/${m.studyUid}/${m.seriesUid}`, m.xPx, m.yPx, m.widthPx, m.heightPx),
        })),
        links: { coords: `${base}/embeddings/${run.key.modelId}/${run.key.runId}/coords.npy`, overlay: `${base}/similarity.png?${query}` },
      },
      200,
      { 'cache-control': 'no-store' },
    );
  });

  app.get('/:study/:series/similarity.png', async (c) => {
    const ref = readRunRef(c);
    const point = readPoint(c);
    const maxSizePx = readOverlaySize(c);
    const s = await analysis.getSimilarity(ref, point, 0);
    const lut = computeSimilarityLut();
    // Stretched from the slide's least similar patch (dark) to the query itself (bright), as the viewer does.
    const span = Math.max(1e-6, 1 - s.minScore);
    return sendOverlay(c, ref, maxSizePx, s.run, (row) => {
      const i = Math.round(((s.scores[row]! - s.minScore) / span) * 255) * 3;
      return [lut[i]!, lut[i + 1]!, lut[i + 2]!];
    });
  });

  return app;
}
