/**
 * Analysis of stored embeddings: k-means clusters of a slide's patches, and cosine similarity of one
 * patch with every patch of the slide (and of other slides embedded with the same model). Runs are read
 * from the store once and kept in a cache bounded in bytes; cluster results are cached per
 * (run, k, seed, PCA), and concurrent identical requests share one computation.
 */
import { LRUCache } from 'lru-cache';
import { BadRequestError, NotFoundError } from '../errors.js';
import type { EmbeddingStore, RunKey, RunManifest } from '../embed/store/index.js';
import type { KMeansEngine, KMeansRunResult } from './kmeans.js';
import { clusterColour } from './palette.js';
import { computeCosineSimilarity, computeInverseNorms, computePatchSizeLevel0, computeTopRows, findPatchAt, type PatchSizeLevel0 } from './patch-geometry.js';

/** A slide and model; the run defaults to the slide's most recently finished one (of any model when none is named). */
export interface RunRef {
  studyUid: string;
  seriesUid: string;
  modelId?: string;
  runId?: string;
}

export interface LoadedRun {
  key: RunKey;
  manifest: RunManifest;
  embeddings: Float32Array;
  coordsPx: Int32Array;
  rows: number;
  dim: number;
  size: PatchSizeLevel0;
  inverseNorms: Float32Array;
}

export interface ClusterOptions {
  k: number;
  seed: number;
  /** Principal components to cluster in; 0 clusters the embeddings as they are. */
  pca: number;
}

export interface ClusterSummary {
  index: number;
  name: string;
  colour: string;
  count: number;
  /** The patch nearest the cluster's centre. */
  representativeRow: number;
}

export interface ClusterAnalysis {
  run: LoadedRun;
  options: ClusterOptions;
  result: KMeansRunResult;
  clusters: ClusterSummary[];
  /** Time the k-means (and PCA) took when it was computed, in ms. */
  computeMs: number;
}

export interface SimilarPatch {
  studyUid: string;
  seriesUid: string;
  runId: string;
  row: number;
  xPx: number;
  yPx: number;
  widthPx: number;
  heightPx: number;
  score: number;
}

export interface SimilarityAnalysis {
  run: LoadedRun;
  queryRow: number;
  /** Cosine similarity of the query patch with each patch of the slide, by row. */
  scores: Float32Array;
  /** The lowest score (the highest is the query's own, 1). */
  minScore: number;
  /** The best matches on other slides embedded with the same model, best first (empty unless asked for). */
  matches: SimilarPatch[];
}

export interface AnalysisServiceOptions {
  store: EmbeddingStore;
  kmeans: KMeansEngine;
  /** Bytes of embeddings kept in memory between requests. */
  cacheBytes: number;
}

/** At most this many matches come from one other slide, so one look-alike slide does not fill the list. */
const MATCHES_PER_SLIDE = 3;

export function createAnalysisService({ store, kmeans, cacheBytes }: AnalysisServiceOptions) {
  const runs = new LRUCache<string, LoadedRun>({
    maxSize: Math.max(1, cacheBytes),
    sizeCalculation: (run) => Math.max(1, run.embeddings.byteLength + run.coordsPx.byteLength + run.inverseNorms.byteLength),
  });
  const loading = new Map<string, Promise<LoadedRun>>();
  const clusterCache = new LRUCache<string, Promise<ClusterAnalysis>>({ max: 64 });
  // One k-means at a time: each uses every core, and two would only share them.
  let kmeansQueue: Promise<unknown> = Promise.resolve();

  async function resolveRun(ref: RunRef): Promise<RunManifest> {
    if (ref.runId !== undefined) {
      if (ref.modelId === undefined) throw new NotFoundError('A run is named by model and run id', 'RUN_NOT_FOUND');
      const manifest = await store.getRun({ studyUid: ref.studyUid, seriesUid: ref.seriesUid, modelId: ref.modelId, runId: ref.runId });
      if (!manifest) throw new NotFoundError(`No complete run ${ref.modelId}/${ref.runId} for this slide`, 'RUN_NOT_FOUND');
      return manifest;
    }
    const complete = (await store.listRuns(ref.studyUid, ref.seriesUid, ref.modelId)).flatMap((info) => (info.status === 'complete' ? [info.manifest] : []));
    if (complete.length === 0) {
      const what = ref.modelId === undefined ? 'any model' : `the model ${ref.modelId}`;
      throw new NotFoundError(`This slide has no finished embeddings with ${what}: embed it first (POST .../embeddings)`, 'NO_EMBEDDINGS');
    }
    return complete.reduce((latest, m) => (m.finishedAt > latest.finishedAt ? m : latest));
  }

  async function loadRun(manifest: RunManifest): Promise<LoadedRun> {
    const key: RunKey = { studyUid: manifest.studyUid, seriesUid: manifest.seriesUid, modelId: manifest.modelId, runId: manifest.runId };
    // The embeddings' hash is in the cache key, so a run deleted and written again is read again.
    const cacheKey = `${key.studyUid}/${key.seriesUid}/${key.modelId}/${key.runId}/${manifest.files['embeddings.npy'].sha256}`;
    const cached = runs.get(cacheKey);
    if (cached) return cached;
    let pending = loading.get(cacheKey);
    if (!pending) {
      pending = (async () => {
        const read = await store.readEmbeddings(key);
        if (!read) throw new NotFoundError(`The run ${key.modelId}/${key.runId} is gone`, 'RUN_NOT_FOUND');
        const run: LoadedRun = {
          key,
          manifest: read.manifest,
          embeddings: read.embeddings,
          coordsPx: read.coords,
          rows: read.rows,
          dim: read.dim,
          size: computePatchSizeLevel0(read.manifest),
          inverseNorms: computeInverseNorms(read.embeddings, read.rows, read.dim),
        };
        runs.set(cacheKey, run);
        return run;
      })().finally(() => loading.delete(cacheKey));
      loading.set(cacheKey, pending);
    }
    return pending;
  }

  async function computeClusters(run: LoadedRun, options: ClusterOptions): Promise<ClusterAnalysis> {
    const started = performance.now();
    // A finished run can hold no patch at all (a grid coarser than the slide, or no tissue at its
    // minTissue); k-means' own guard for that is a RangeError, which was a 500 (found by the fuzz, issue 7).
    if (run.rows < options.k) {
      throw new BadRequestError(`k = ${options.k} clusters need at least ${options.k} patches; the run ${run.key.modelId}/${run.key.runId} has ${run.rows}`, 'BAD_K');
    }
    if (options.pca > 0 && (options.pca < 2 || options.pca >= run.dim)) {
      throw new BadRequestError(`pca must be 0 (off) or from 2 to ${run.dim - 1} components for this ${run.dim}-d model`, 'BAD_PCA');
    }
    const result = await kmeans.run(run.embeddings, run.rows, run.dim, { k: options.k, seed: options.seed, ...(options.pca > 0 && { pcaComponents: options.pca }) });
    const clusters = result.counts.map((count, index) => ({
      index,
      name: `Cluster ${index + 1}`,
      colour: clusterColour(index),
      count,
      representativeRow: result.representatives[index]!,
    }));
    return { run, options, result, clusters, computeMs: Math.round(performance.now() - started) };
  }

  return {
    resolveRun,

    /** The run's embeddings and patch geometry. */
    async getRun(ref: RunRef): Promise<LoadedRun> {
      return loadRun(await resolveRun(ref));
    },

    /** k-means of the run's patches; validation of k and PCA is the k-means and PCA code's. */
    async getClusters(ref: RunRef, options: ClusterOptions): Promise<ClusterAnalysis & { cached: boolean }> {
      const run = await loadRun(await resolveRun(ref));
      const key = `${run.key.studyUid}/${run.key.seriesUid}/${run.key.modelId}/${run.key.runId}/${run.manifest.files['embeddings.npy'].sha256}/k${options.k}/s${options.seed}/p${options.pca}`;
      const cached = clusterCache.get(key);
      if (cached) return { ...(await cached), cached: true };
      const job = kmeansQueue.then(() => computeClusters(run, options));
      kmeansQueue = job.catch(() => undefined);
      clusterCache.set(key, job);
      job.catch(() => clusterCache.delete(key));
      return { ...(await job), cached: false };
    },

    /**
     * Cosine similarity of the patch under level-0 pixel (xPx, yPx) with every patch of the slide, and
     * with `acrossLimit` best patches of other slides embedded with the same model.
     */
    async getSimilarity(ref: RunRef, point: { xPx: number; yPx: number }, acrossLimit: number): Promise<SimilarityAnalysis> {
      const run = await loadRun(await resolveRun(ref));
      const queryRow = findPatchAt(run.coordsPx, run.size, point.xPx, point.yPx);
      if (queryRow < 0) throw new NotFoundError(`No embedded patch covers (${point.xPx}, ${point.yPx}): it is outside the tissue or the slide`, 'NO_PATCH_THERE');
      const query = run.embeddings.subarray(queryRow * run.dim, (queryRow + 1) * run.dim);
      const scores = computeCosineSimilarity(query, run.embeddings, run.inverseNorms, run.dim);
      const matches = acrossLimit > 0 ? await findAcross(run, query, acrossLimit) : [];
      let minScore = 1;
      for (const score of scores) minScore = Math.min(minScore, score);
      return { run, queryRow, scores, minScore, matches };
    },

    close(): Promise<void> {
      runs.clear();
      clusterCache.clear();
      return kmeans.close();
    },
  };

  /**
   * The best matches on every other slide that has a finished run of the same model. A linear scan: fine
   * for hundreds of slides; an archive of thousands wants a vector index (DESIGN.md's store seam).
   */
  async function findAcross(run: LoadedRun, query: Float32Array, limit: number): Promise<SimilarPatch[]> {
    const found: SimilarPatch[] = [];
    for (const series of await store.listSeries()) {
      if (series.studyUid === run.key.studyUid && series.seriesUid === run.key.seriesUid) continue;
      let other: LoadedRun;
      try {
        other = await loadRun(await resolveRun({ ...series, modelId: run.key.modelId }));
      } catch (error) {
        if (error instanceof NotFoundError) continue;
        throw error;
      }
      if (other.dim !== run.dim) continue;
      const scores = computeCosineSimilarity(query, other.embeddings, other.inverseNorms, other.dim);
      for (const row of computeTopRows(scores, Math.min(limit, MATCHES_PER_SLIDE))) {
        found.push({
          studyUid: other.key.studyUid,
          seriesUid: other.key.seriesUid,
          runId: other.key.runId,
          row,
          xPx: other.coordsPx[2 * row]!,
          yPx: other.coordsPx[2 * row + 1]!,
          widthPx: other.size.widthPx,
          heightPx: other.size.heightPx,
          score: scores[row]!,
        });
      }
    }
    return found.sort((a, b) => b.score - a.score).slice(0, limit);
  }
}

export type AnalysisService = ReturnType<typeof createAnalysisService>;
