/**
 * Seeded synthetic embeddings for the k-means and PCA tests and bench/kmeans.ts: a mixture of gaussian
 * blobs, optionally living in a low-dimensional subspace as model embeddings do. Not used by the gateway.
 */
import { fillStandardNormal, mulberry32 } from '../embed/generate/graph.js';

export interface BlobsOptions {
  rows: number;
  dim: number;
  blobs: number;
  /** @default 1 */
  seed?: number;
  /** Standard deviation of the blob centres, per coordinate. @default 10 */
  separation?: number;
  /** Each blob's standard deviation is drawn uniformly from this range. @default [1, 1] */
  spread?: readonly [number, number];
  /** Blob sizes vary: weights are drawn uniformly from [1, unevenness]. @default 1 (equal sizes) */
  unevenness?: number;
  /**
   * When set, blobs are drawn in a space of this many dimensions, mapped into `dim` by a fixed random
   * matrix, and isotropic `noise` is added: most of the variance lies in a few directions. @default undefined
   */
  latentDim?: number;
  /** Per-coordinate standard deviation of the noise added after the mapping. @default 0 */
  noise?: number;
}

export interface Blobs {
  /** rows × dim, row after row. */
  data: Float32Array;
  /** The blob of each row. */
  truth: Uint8Array;
}

export function makeGaussianBlobs(options: BlobsOptions): Blobs {
  const { rows, dim, blobs, seed = 1, separation = 10, spread = [1, 1], unevenness = 1, latentDim, noise = 0 } = options;
  const uniform = mulberry32(seed);
  const space = latentDim ?? dim;
  const centres = new Float32Array(blobs * space);
  fillStandardNormal(uniform, centres);
  const spreads = Array.from({ length: blobs }, () => spread[0] + uniform() * (spread[1] - spread[0]));
  const weights = Array.from({ length: blobs }, () => 1 + uniform() * (unevenness - 1));
  const total = weights.reduce((a, b) => a + b, 0);
  const mapping = new Float32Array(latentDim === undefined ? 0 : latentDim * dim);
  fillStandardNormal(uniform, mapping);

  const truth = new Uint8Array(rows);
  const data = new Float32Array(rows * dim);
  const point = new Float32Array(space);
  const extra = new Float32Array(dim);
  for (let i = 0; i < rows; i++) {
    let pick = uniform() * total;
    let b = 0;
    while (b < blobs - 1 && pick >= weights[b]!) pick -= weights[b++]!;
    truth[i] = b;
    fillStandardNormal(uniform, point);
    for (let j = 0; j < space; j++) point[j] = separation * centres[b * space + j]! + spreads[b]! * point[j]!;
    const row = data.subarray(i * dim, (i + 1) * dim);
    if (latentDim === undefined) {
      row.set(point);
      continue;
    }
    fillStandardNormal(uniform, extra);
    for (let j = 0; j < dim; j++) row[j] = noise * extra[j]!;
    // The mapping's columns have unit variance per latent coordinate: scale by 1/√latentDim.
    for (let l = 0; l < latentDim; l++) {
      const v = point[l]! / Math.sqrt(latentDim);
      for (let j = 0; j < dim; j++) row[j]! += v * mapping[l * dim + j]!;
    }
  }
  return { data, truth };
}
