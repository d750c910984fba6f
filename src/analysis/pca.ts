/**
 * Principal component analysis of a slide's embeddings: the scatter matrix of the centred rows through
 * onnxruntime (sgemm by blocks of rows, combined in float64), its eigen-decomposition in float64
 * (symmetric-eigen.ts), then the projection through onnxruntime. Figures in docs/decisions.md.
 *
 * Components follow numpy's SVD of the centred data (the right singular vectors, by decreasing singular
 * value) with one sign fixed per component: its entry of largest magnitude is positive (scikit-learn's
 * `svd_flip(u_based_decision=False)`), so the same data always gives the same axes.
 */
import { BadRequestError } from '../errors.js';
import { assertFiniteRows, InvalidEmbeddingsError } from './kmeans-common.js';
import { createMatrixKernels, type MatrixKernels } from './matrix-kernels.js';
import { computeSymmetricEigen } from './symmetric-eigen.js';

export interface PcaResult {
  /** rows × components, row after row: the centred rows on the components. */
  projected: Float32Array;
  /** components × dim, row after row: unit axes by decreasing variance. */
  components: Float32Array;
  /** The column means (dim) subtracted before projecting. */
  mean: Float32Array;
  /** The variance along each component (denominator rows − 1, as numpy's and scikit-learn's). */
  explainedVariance: number[];
  /** Each component's share of the total variance, 0..1. */
  explainedVarianceRatio: number[];
}

/** The leading axes of a symmetric scatter matrix, as PcaResult has them; pure. */
export interface PrincipalAxes {
  /** components × dim, unit rows, the largest-magnitude entry of each positive. */
  axes: Float32Array;
  explainedVariance: number[];
  explainedVarianceRatio: number[];
}

/** Throws BadRequestError ('BAD_PCA') unless 1 ≤ components ≤ dim and there are two rows to take a variance from. */
export function validatePcaInput(data: Float32Array, rows: number, dim: number, components: number): void {
  if (!Number.isInteger(rows) || !Number.isInteger(dim) || dim < 1 || data.length !== rows * dim) {
    throw new RangeError(`${rows} rows of ${dim} need ${rows * dim} values, got ${data.length}`);
  }
  if (!Number.isInteger(components) || components < 1 || components > dim) {
    throw new BadRequestError(`PCA components must be an integer from 1 to the embedding width ${dim}, got ${components}`, 'BAD_PCA');
  }
  if (rows < 2) throw new BadRequestError(`PCA needs at least 2 embeddings, the slide has ${rows}`, 'BAD_PCA');
}

/**
 * The `components` leading eigenvectors of `scatter` (dim × dim, the centred rows' XᵀX over `rows`
 * rows). The scatter is symmetrised in float64 first: sgemm need not return an exactly symmetric one.
 */
export function computePrincipalAxes(scatter: ArrayLike<number>, dim: number, rows: number, components: number): PrincipalAxes {
  const symmetric = new Float64Array(dim * dim);
  let trace = 0;
  for (let i = 0; i < dim; i++) {
    trace += scatter[i * dim + i]!;
    for (let j = 0; j < dim; j++) symmetric[i * dim + j] = (scatter[i * dim + j]! + scatter[j * dim + i]!) / 2;
  }
  const { values, vectors } = computeSymmetricEigen(symmetric, dim);
  const axes = new Float32Array(components * dim);
  const explainedVariance: number[] = [];
  const explainedVarianceRatio: number[] = [];
  for (let c = 0; c < components; c++) {
    const source = dim - 1 - c; // ascending order: the largest come last
    // Rounding leaves the eigenvalues of a rank-deficient scatter slightly below 0.
    const value = Math.max(0, values[source]!);
    explainedVariance.push(value / (rows - 1));
    explainedVarianceRatio.push(trace > 0 ? value / trace : 0);
    let largest = 0;
    for (let j = 1; j < dim; j++) if (Math.abs(vectors[source * dim + j]!) > Math.abs(vectors[source * dim + largest]!)) largest = j;
    const sign = vectors[source * dim + largest]! < 0 ? -1 : 1;
    for (let j = 0; j < dim; j++) axes[c * dim + j] = sign * vectors[source * dim + j]!;
  }
  return { axes, explainedVariance, explainedVarianceRatio };
}

/**
 * PCA of `rows` × `dim` float32 values onto `components` axes. Runs on `kernels` when given (the
 * k-means engine's), else opens its own for the call.
 */
export async function computePca(data: Float32Array, rows: number, dim: number, components: number, kernels?: MatrixKernels): Promise<PcaResult> {
  validatePcaInput(data, rows, dim, components);
  const own = kernels ?? createMatrixKernels();
  try {
    const x = { data, rows, cols: dim };
    const { mean, scatter } = await own.computeScatter(x);
    if (!mean.every(Number.isFinite) || !scatter.every(Number.isFinite)) {
      // Only now look for the row (a pass in JavaScript): finite data costs nothing more.
      assertFiniteRows(data, dim);
      throw new InvalidEmbeddingsError('the embeddings are too large to square in float32');
    }
    const { axes, explainedVariance, explainedVarianceRatio } = computePrincipalAxes(scatter, dim, rows, components);
    const mean32 = Float32Array.from(mean);
    const projected = await own.computeProjection(x, mean32, { data: axes, rows: components, cols: dim });
    return { projected, components: axes, mean: mean32, explainedVariance, explainedVarianceRatio };
  } finally {
    if (!kernels) await own.close();
  }
}
