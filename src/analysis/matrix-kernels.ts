/**
 * The passes over a slide's embeddings that k-means and PCA repeat, run by onnxruntime on CPU
 * (graphs.ts): its MLAS sgemm is multithreaded and vectorised, and one pass over 100,000 x 384 float32
 * (154 MB) takes ~15 ms on the 2 cores here where a plain TypeScript loop takes ~80-140 ms
 * (docs/decisions.md, "k-means and PCA"). Inputs are handed over as views, never copied.
 *
 * Results are the same call after call for a given thread count (the tests check labels bit for bit).
 */
import * as ort from 'onnxruntime-node';
import { encodeAnalysisGraph, type GraphName } from './graphs.js';

/** Rows of float32 values, row after row. */
export interface RowMatrix {
  readonly data: Float32Array;
  readonly rows: number;
  readonly cols: number;
}

/** Each row's nearest centroid and squared distances to all. */
export interface Nearest {
  /** The nearest centroid, 0..k-1 as floats (the lowest index among equals). */
  labels: Float32Array;
  /** rows × k, row after row: the squared distance to each centroid. */
  distances: Float32Array;
}

export interface MatrixKernels {
  /** ‖x‖² of every row. */
  computeRowNorms(x: RowMatrix): Promise<Float32Array>;
  /**
   * Squared distances from every row to every candidate, each capped by the row's `closest` so far:
   * rows × candidates, row after row. `xNorms` from computeRowNorms.
   */
  computeSeedDistances(x: RowMatrix, xNorms: Float32Array, candidates: RowMatrix, closest: Float32Array): Promise<Float32Array>;
  /** For every row, or for the rows numbered in `which` (ascending, < 2^24), in that order. */
  computeNearest(x: RowMatrix, xNorms: Float32Array, centroids: RowMatrix, which?: Float32Array): Promise<Nearest>;
  /** k × cols: the sum of the rows of each label (0..k-1 as floats). */
  computeClusterSums(x: RowMatrix, labels: Float32Array, k: number): Promise<Float32Array>;
  /** The column means and the scatter matrix (X − mean)ᵀ(X − mean), cols × cols, in float64. */
  computeScatter(x: RowMatrix): Promise<{ mean: Float64Array; scatter: Float64Array }>;
  /** (X − mean) · axesᵀ: rows × axes.rows. */
  computeProjection(x: RowMatrix, mean: Float32Array, axes: RowMatrix): Promise<Float32Array>;
  /** Idempotent. The caller stops calling first: a call in flight is not waited for. */
  close(): Promise<void>;
}

export interface MatrixKernelOptions {
  /** onnxruntime intra-op threads; 0 lets it choose (one per core). @default 0 */
  threads?: number;
  /** Rows of PCA's graphs per run, in bytes of input (tests make it small). @default 16 MiB */
  blockBytes?: number;
}

/** The most rows computeNearest can pick by number: they travel as float32. */
export const MAX_PICKED_ROW = 2 ** 24;

/**
 * PCA's graphs run on blocks of rows: their centred copy of X would otherwise be one more allocation of
 * the whole input (154 MB for 100,000 x 384), page-faulted on every call. Measured as fast as one block.
 */
const BLOCK_BYTES = 16 * 2 ** 20;

/** Views (no copies) of consecutive rows, at most `blockBytes` each. */
function* splitRows(x: RowMatrix, blockBytes: number): Generator<RowMatrix & { firstRow: number }> {
  const step = Math.max(1, Math.floor(blockBytes / (4 * x.cols)));
  for (let firstRow = 0; firstRow < x.rows; firstRow += step) {
    const rows = Math.min(step, x.rows - firstRow);
    yield { data: x.data.subarray(firstRow * x.cols, (firstRow + rows) * x.cols), rows, cols: x.cols, firstRow };
  }
}

const tensor = (data: Float32Array, dims: readonly number[]): ort.Tensor => new ort.Tensor('float32', data, dims);
const input = (x: RowMatrix): ort.Tensor => tensor(x.data, [x.rows, x.cols]);

/** Squared norms of the rows of a small matrix (centroids, candidates), from its float32 values. */
function smallRowNorms(m: RowMatrix): Float32Array {
  const out = new Float32Array(m.rows);
  for (let r = 0; r < m.rows; r++) {
    let s = 0;
    for (let j = r * m.cols; j < (r + 1) * m.cols; j++) s += m.data[j]! * m.data[j]!;
    out[r] = s;
  }
  return out;
}

/** Sessions are opened on first use (a few ms each) and kept until close. */
export function createMatrixKernels({ threads = 0, blockBytes = BLOCK_BYTES }: MatrixKernelOptions = {}): MatrixKernels {
  const sessions = new Map<GraphName, Promise<ort.InferenceSession>>();
  let closed = false;

  async function run(name: GraphName, feeds: Record<string, ort.Tensor>): Promise<Record<string, Float32Array>> {
    if (closed) throw new Error('matrix kernels are closed');
    let session = sessions.get(name);
    if (!session) {
      session = ort.InferenceSession.create(encodeAnalysisGraph(name), {
        intraOpNumThreads: threads,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        // No arena: it would keep each graph's largest intermediates for the gateway's life; measured no faster.
        enableCpuMemArena: false,
        // Each session has its own pool of threads; spinning ones would take the cores from the session
        // that runs next (k-means alternates graphs): 30-50 % slower with spinning, measured.
        extra: { session: { intra_op: { allow_spinning: '0' } } },
      });
      sessions.set(name, session);
    }
    const results = await (await session).run(feeds);
    return Object.fromEntries(Object.entries(results).map(([key, value]) => [key, value.data as Float32Array]));
  }

  const centroidFeeds = (centroids: RowMatrix): Record<string, ort.Tensor> => ({
    centroids: input(centroids),
    centroidNorms: tensor(smallRowNorms(centroids), [centroids.rows]),
  });

  return {
    async computeRowNorms(x) {
      return (await run('rowNorms', { x: input(x) }))['norms']!;
    },
    async computeSeedDistances(x, xNorms, candidates, closest) {
      const feeds = {
        x: input(x),
        xNorms: tensor(xNorms, [x.rows, 1]),
        candidates: input(candidates),
        candidateNorms: tensor(smallRowNorms(candidates), [candidates.rows]),
        closest: tensor(closest, [x.rows, 1]),
      };
      return (await run('seedDistances', feeds))['distances']!;
    },
    async computeNearest(x, xNorms, centroids, which) {
      const feeds = { x: input(x), xNorms: tensor(xNorms, [x.rows]), ...centroidFeeds(centroids) };
      const out = which ? await run('nearestOfRows', { ...feeds, rows: tensor(which, [which.length]) }) : await run('nearest', feeds);
      return { labels: out['labels']!, distances: out['distances']! };
    },
    async computeClusterSums(x, labels, k) {
      const clusterIds = Float32Array.from({ length: k }, (_, i) => i);
      return (await run('clusterSums', { x: input(x), labels: tensor(labels, [1, x.rows]), clusterIds: tensor(clusterIds, [k, 1]) }))['sums']!;
    },
    async computeScatter(x) {
      const { cols } = x;
      const mean = new Float64Array(cols);
      const scatter = new Float64Array(cols * cols);
      const delta = new Float64Array(cols);
      let seen = 0;
      for (const block of splitRows(x, blockBytes)) {
        const out = await run('scatter', { x: input(block) });
        // Chan, Golub & LeVeque's pairwise update: the block's own scatter plus the shift of its mean.
        const blockMean = out['mean']!;
        const blockScatter = out['scatter']!;
        const n = block.rows;
        const weight = (seen * n) / (seen + n);
        for (let j = 0; j < cols; j++) delta[j] = blockMean[j]! - mean[j]!;
        for (let i = 0; i < cols; i++) {
          for (let j = 0; j < cols; j++) scatter[i * cols + j]! += blockScatter[i * cols + j]! + delta[i]! * delta[j]! * weight;
        }
        for (let j = 0; j < cols; j++) mean[j]! += (delta[j]! * n) / (seen + n);
        seen += n;
      }
      return { mean, scatter };
    },
    async computeProjection(x, mean, axesMatrix) {
      const projected = new Float32Array(x.rows * axesMatrix.rows);
      for (const block of splitRows(x, blockBytes)) {
        const out = await run('projection', { x: input(block), mean: tensor(mean, [x.cols]), axes: input(axesMatrix) });
        projected.set(out['projected']!, block.firstRow * axesMatrix.rows);
      }
      return projected;
    },
    async close() {
      if (closed) return;
      closed = true;
      const opened = [...sessions.values()];
      sessions.clear();
      await Promise.all(opened.map(async (s) => (await s.catch(() => undefined))?.release()));
    },
  };
}
