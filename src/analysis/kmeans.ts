/**
 * k-means on a slide's embeddings, fast enough to answer a request: 100,000 x 384 with k = 8 in well
 * under a second on 2 cores, where a plain TypeScript loop (kmeans-plain.ts) takes ~12 s
 * (bench/results/kmeans.md).
 *
 * Every pass over the rows is an onnxruntime graph (matrix-kernels.ts, graphs.ts): the row norms once,
 * one pass per k-means++ centre, and one per Lloyd iteration over the rows whose cluster may have
 * changed (kmeans-lloyd.ts, kmeans-bounds.ts). The choice and its measurements: docs/decisions.md,
 * "k-means and PCA".
 *
 * Deterministic: the k-means++ draws come from a seeded stream, sums in JavaScript run in row order,
 * and onnxruntime's kernels give the same floats call after call for a given thread count: the same
 * data, seed and thread count give the same labels and centroids, bit for bit (tested).
 */
import { ClosingError } from '../errors.js';
import { sumOf, validateKMeansInput, type KMeansOptions, type KMeansResult } from './kmeans-common.js';
import { runLloyd } from './kmeans-lloyd.js';
import { createMatrixKernels, type MatrixKernels, type RowMatrix } from './matrix-kernels.js';
import { computePca, validatePcaInput, type PcaResult } from './pca.js';

export { InvalidEmbeddingsError, MAX_K, MIN_K, type KMeansOptions, type KMeansResult } from './kmeans-common.js';

export interface KMeansRunOptions extends KMeansOptions {
  /**
   * Cluster the rows projected on this many principal components (computePca) instead of all their
   * columns. Labels, representatives and inertia are then those of the projected rows; `centroids` are
   * still k × dim: each cluster's mean in the original columns. @default undefined (no PCA)
   */
  pcaComponents?: number;
  /** Checked between passes: an aborted run rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** A KMeansResult, plus what PCA kept when it was asked for. */
export interface KMeansRunResult extends KMeansResult {
  /** The components clustered on, and the share of the variance they keep (0..1). */
  pca?: { components: number; explainedVarianceRatio: number };
}

export interface KMeansEngine {
  run(data: Float32Array, rows: number, dim: number, options: KMeansRunOptions): Promise<KMeansRunResult>;
  /** computePca on the engine's sessions. */
  pca(data: Float32Array, rows: number, dim: number, components: number): Promise<PcaResult>;
  /** Idempotent: refuses new runs (ClosingError), waits for those in flight, releases the ONNX sessions. */
  close(): Promise<void>;
}

export interface KMeansEngineOptions {
  /** onnxruntime intra-op threads; 0 lets it choose (one per core). Results are reproducible for a given count. @default 0 */
  threads?: number;
}

/** Each cluster's mean in the original columns (for a run on PCA-projected rows). */
async function computeClusterMeans(kernels: MatrixKernels, x: RowMatrix, labels: Uint8Array, counts: readonly number[]): Promise<Float32Array> {
  const sums = await kernels.computeClusterSums(x, Float32Array.from(labels), counts.length);
  return sums.map((s, i) => s / counts[Math.floor(i / x.cols)]!);
}

async function runKMeans(kernels: MatrixKernels, data: Float32Array, rows: number, dim: number, options: KMeansRunOptions): Promise<KMeansRunResult> {
  const settings = validateKMeansInput(data, rows, dim, options);
  const { pcaComponents, signal } = options;
  const x = { data, rows, cols: dim };
  if (pcaComponents === undefined) return runLloyd(kernels, x, settings, { signal });
  validatePcaInput(data, rows, dim, pcaComponents);
  const pca = await computePca(data, rows, dim, pcaComponents, kernels);
  signal?.throwIfAborted();
  const result = await runLloyd(kernels, { data: pca.projected, rows, cols: pcaComponents }, settings, { signal });
  return {
    ...result,
    centroids: await computeClusterMeans(kernels, x, result.labels, result.counts),
    pca: { components: pcaComponents, explainedVarianceRatio: sumOf(pca.explainedVarianceRatio) },
  };
}

export function createKMeansEngine({ threads = 0 }: KMeansEngineOptions = {}): KMeansEngine {
  const kernels = createMatrixKernels({ threads });
  const inFlight = new Set<Promise<unknown>>();
  let closing: Promise<void> | undefined;

  function track<T>(work: () => Promise<T>): Promise<T> {
    if (closing) return Promise.reject(new ClosingError());
    const running = work();
    inFlight.add(running);
    const forget = (): void => void inFlight.delete(running);
    running.then(forget, forget);
    return running;
  }

  return {
    run: (data, rows, dim, options) => track(() => runKMeans(kernels, data, rows, dim, options)),
    pca: (data, rows, dim, components) => track(() => computePca(data, rows, dim, components, kernels)),
    close() {
      closing ??= Promise.allSettled([...inFlight]).then(() => kernels.close());
      return closing;
    },
  };
}
