/**
 * k-means as a plain TypeScript loop: k-means++ seeding and Lloyd iterations, every distance computed
 * in float64 row by row. It is the baseline of bench/kmeans.ts and the cross-check of the fast engine in
 * tests (the same seed gives the same draws, so both reach the same partition); the gateway uses
 * kmeans.ts. About 12 s for 100,000 x 384 with k = 8 on 2 cores.
 */
import {
  assertFiniteRows,
  computeAbsoluteTolerance,
  countLabels,
  createSeedStream,
  drawCandidates,
  findRepresentatives,
  labelsEqual,
  pickBestCandidate,
  relocateEmptyClusters,
  seedTrials,
  sumOf,
  updateCentroids,
  validateKMeansInput,
  type KMeansOptions,
  type KMeansResult,
} from './kmeans-common.js';

function squaredDistance(data: Float32Array, row: number, centres: Float32Array | Float64Array, centre: number, dim: number): number {
  const a = row * dim;
  const b = centre * dim;
  let s = 0;
  for (let j = 0; j < dim; j++) {
    const d = data[a + j]! - centres[b + j]!;
    s += d * d;
  }
  return s;
}

/** k-means++ (greedy, as scikit-learn): returns k × dim centres. */
function seedPlusPlus(data: Float32Array, rows: number, dim: number, k: number, seed: number): Float64Array {
  const uniform = createSeedStream(seed);
  const trials = seedTrials(k);
  const centres = new Float64Array(k * dim);
  const first = Math.min(rows - 1, Math.floor(uniform() * rows));
  centres.set(data.subarray(first * dim, (first + 1) * dim));
  let closest = new Float64Array(rows);
  for (let i = 0; i < rows; i++) closest[i] = squaredDistance(data, i, centres, 0, dim);
  for (let c = 1; c < k; c++) {
    const candidates = drawCandidates(closest, uniform, trials);
    const capped = new Float64Array(rows * trials);
    for (let i = 0; i < rows; i++) {
      for (let t = 0; t < trials; t++) {
        const row = candidates[t]!;
        capped[i * trials + t] = Math.min(closest[i]!, squaredDistance(data, i, data, row, dim));
      }
    }
    const best = pickBestCandidate(capped, rows, trials);
    centres.set(data.subarray(candidates[best]! * dim, (candidates[best]! + 1) * dim), c * dim);
    closest = Float64Array.from({ length: rows }, (_, i) => capped[i * trials + best]!);
  }
  return centres;
}

/** Assigns every row to its nearest centre (the first of equals). */
function assign(data: Float32Array, rows: number, dim: number, centres: Float64Array, k: number, labels: Uint8Array, distances: Float64Array): void {
  for (let i = 0; i < rows; i++) {
    let best = 0;
    let bestDistance = Infinity;
    for (let c = 0; c < k; c++) {
      const d = squaredDistance(data, i, centres, c, dim);
      if (d < bestDistance) {
        best = c;
        bestDistance = d;
      }
    }
    labels[i] = best;
    distances[i] = bestDistance;
  }
}

/** The reference k-means: same options, same result shape and same seeding draws as the engine. */
export function runPlainKMeans(data: Float32Array, rows: number, dim: number, options: KMeansOptions): KMeansResult {
  const { k, seed, maxIterations, tolerance } = validateKMeansInput(data, rows, dim, options);
  assertFiniteRows(data, dim);
  const columnSums = new Float64Array(dim);
  let sumOfSquares = 0;
  for (let i = 0; i < rows * dim; i++) {
    columnSums[i % dim]! += data[i]!;
    sumOfSquares += data[i]! * data[i]!;
  }
  const absoluteTolerance = computeAbsoluteTolerance(tolerance, rows, dim, sumOfSquares, columnSums);

  const centres = seedPlusPlus(data, rows, dim, k, seed);
  let labels = new Uint8Array(rows);
  let previous: Uint8Array | undefined;
  const distances = new Float64Array(rows);
  let counts: Int32Array = new Int32Array(k);
  let iterations = 0;
  let converged = false;
  let final = true;
  while (iterations < maxIterations) {
    iterations++;
    assign(data, rows, dim, centres, k, labels, distances);
    counts = countLabels(labels, k);
    const sums = new Float64Array(k * dim);
    for (let i = 0; i < rows; i++) for (let j = 0; j < dim; j++) sums[labels[i]! * dim + j]! += data[i * dim + j]!;
    relocateEmptyClusters(data, dim, labels, distances, counts, sums);
    if (previous && labelsEqual(labels, previous)) {
      converged = true;
      final = false; // the centres are already the means of these very labels
      break;
    }
    const shift = updateCentroids(centres, sums, counts, dim);
    previous = labels;
    labels = new Uint8Array(rows);
    if (shift <= absoluteTolerance) {
      converged = true;
      break;
    }
  }
  if (final) {
    // Labels for the centres returned, as scikit-learn's last E-step.
    assign(data, rows, dim, centres, k, labels, distances);
    counts = countLabels(labels, k);
    for (const { cluster, row } of relocateEmptyClusters(data, dim, labels, distances, counts)) {
      centres.set(data.subarray(row * dim, (row + 1) * dim), cluster * dim);
    }
  }
  return {
    k,
    labels,
    centroids: Float32Array.from(centres),
    counts: [...counts],
    representatives: findRepresentatives(labels, distances, k),
    iterations,
    converged,
    inertia: sumOf(distances),
  };
}
