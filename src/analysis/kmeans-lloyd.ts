/**
 * k-means++ and Lloyd's iterations on the matrix kernels (onnxruntime), for kmeans.ts.
 *
 * Seeding is one pass per centre: all of a centre's candidate draws are measured in one Gemm.
 * Each Lloyd iteration measures rows against the centroids in one Gemm + ArgMin pass, but only the rows
 * whose cluster may have changed: the others are cleared by Elkan's bounds (kmeans-bounds.ts). The
 * first iterations measure every row; late ones a few percent, picked inside the graph.
 *
 * The cluster sums follow the rows that changed, in float64; when many changed (the first iterations)
 * one graph pass recomputes them. Centroid division, empty-cluster repair and convergence are JavaScript
 * on k rows.
 */
import {
  assertFiniteRows,
  computeAbsoluteTolerance,
  countLabels,
  createSeedStream,
  drawCandidates,
  findRepresentatives,
  gatherRows,
  pickBestCandidate,
  relocateEmptyClusters,
  seedTrials,
  sumOf,
  updateCentroids,
  type KMeansResult,
  type KMeansSettings,
} from './kmeans-common.js';
import { Assignment, rowDistance } from './kmeans-bounds.js';
import { MAX_PICKED_ROW, type MatrixKernels, type RowMatrix } from './matrix-kernels.js';

/**
 * Above this share of rows to measure, one pass over all rows beats picking them: onnxruntime's Gather
 * copies a row in ~0.7 µs, where a full pass costs ~0.17 µs a row.
 */
const PICK_MAX_SHARE = 0.15;
/** Above this share of changed labels, one graph pass (~25 ms for 100,000 x 384) recomputes the sums, cheaper than ~2.6 µs per changed row in JavaScript. */
const FULL_SUMS_SHARE = 1 / 10;

/** k-means++ (greedy, as scikit-learn): k × dim centres. */
export async function seedPlusPlus(kernels: MatrixKernels, x: RowMatrix, xNorms: Float32Array, k: number, seed: number, signal?: AbortSignal): Promise<Float32Array> {
  const { data, rows, cols: dim } = x;
  const uniform = createSeedStream(seed);
  const trials = seedTrials(k);
  const chosen = [Math.min(rows - 1, Math.floor(uniform() * rows))];
  let closest = await kernels.computeSeedDistances(x, xNorms, { data: gatherRows(data, dim, chosen), rows: 1, cols: dim }, new Float32Array(rows).fill(Infinity));
  for (let c = 1; c < k; c++) {
    signal?.throwIfAborted();
    const candidates = drawCandidates(closest, uniform, trials);
    const capped = await kernels.computeSeedDistances(x, xNorms, { data: gatherRows(data, dim, candidates), rows: trials, cols: dim }, closest);
    const best = pickBestCandidate(capped, rows, trials);
    chosen.push(candidates[best]!);
    closest = new Float32Array(rows);
    for (let i = 0; i < rows; i++) closest[i] = capped[i * trials + best]!;
  }
  return gatherRows(data, dim, chosen);
}

export interface LloydOptions {
  /** Checked between passes. */
  signal?: AbortSignal;
  /** Skip rows by their bounds; false measures every row every iteration (tests compare both). @default true */
  bounds?: boolean;
}

/** Lloyd's iterations from k-means++ centres; see the file comment. */
export async function runLloyd(kernels: MatrixKernels, x: RowMatrix, settings: KMeansSettings, { signal, bounds = true }: LloydOptions = {}): Promise<KMeansResult> {
  const { data, rows, cols: dim } = x;
  const { k, seed, maxIterations, tolerance } = settings;
  const xNorms = await kernels.computeRowNorms(x);
  // A NaN or infinite value makes its row's norm one: the check costs no pass of its own.
  assertFiniteRows(xNorms, 1);
  let centres = await seedPlusPlus(kernels, x, xNorms, k, seed, signal);
  const means = Float64Array.from(centres);
  const moved = new Float64Array(k);
  const sums = new Float64Array(k * dim);
  let counts: Int32Array = new Int32Array(k);
  const state = new Assignment(kernels, x, xNorms, k);
  const { labels } = state;
  let absoluteTolerance = 0;
  let iterations = 0;
  let converged = false;

  while (iterations < maxIterations) {
    signal?.throwIfAborted();
    iterations++;
    let distances: Float32Array | undefined;
    if (iterations === 1 || !bounds) {
      distances = await state.measure(centres);
    } else {
      const uncertain = state.findUncertainRows(centres);
      if (uncertain.length > rows * PICK_MAX_SHARE || rows > MAX_PICKED_ROW) distances = await state.measure(centres);
      else if (uncertain.length > 0) await state.measure(centres, uncertain);
      else state.changedRows.length = 0;
    }
    const changed = state.changedRows.length;
    if (iterations === 1 || changed > rows * FULL_SUMS_SHARE) {
      sums.set(await kernels.computeClusterSums(x, Float32Array.from(labels), k));
      counts = countLabels(labels, k);
    } else {
      for (let r = 0; r < changed; r++) {
        const i = state.changedRows[r]!;
        const from = state.changedFrom[r]!;
        const to = labels[i]!;
        counts[from]!--;
        counts[to]!++;
        for (let j = 0; j < dim; j++) {
          sums[from * dim + j]! -= data[i * dim + j]!;
          sums[to * dim + j]! += data[i * dim + j]!;
        }
      }
    }
    let relocated = 0;
    if (counts.includes(0)) {
      // The farthest rows need every row's distance: measure all (rare: only with an empty cluster).
      distances ??= await state.measure(centres);
      sums.set(await kernels.computeClusterSums(x, Float32Array.from(labels), k));
      counts = countLabels(labels, k);
      const moved = relocateEmptyClusters(data, dim, labels, distances!, counts, sums);
      for (const { row } of moved) state.forget(row);
      relocated = moved.length;
    }
    if (iterations > 1 && changed === 0 && relocated === 0) {
      converged = true; // the centres are already the means of these labels
      break;
    }
    if (iterations === 1) {
      // The first sums are the column sums: the tolerance needs no pass of its own.
      const columnSums = new Float64Array(dim);
      for (let c = 0; c < k; c++) for (let j = 0; j < dim; j++) columnSums[j]! += sums[c * dim + j]!;
      absoluteTolerance = computeAbsoluteTolerance(tolerance, rows, dim, sumOf(xNorms), columnSums);
    }
    const shift = updateCentroids(means, sums, counts, dim);
    const previous = centres;
    centres = Float32Array.from(means);
    for (let c = 0; c < k; c++) moved[c] = rowDistance(previous, c, centres, c, dim);
    state.moveCentres(moved);
    if (shift <= absoluteTolerance) {
      converged = true;
      break;
    }
  }

  // Every row measured against the centres returned: labels, inertia and representatives from one pass.
  const distances = (await state.measure(centres))!;
  counts = countLabels(labels, k);
  for (const { cluster, row } of relocateEmptyClusters(data, dim, labels, distances, counts)) {
    centres.set(data.subarray(row * dim, (row + 1) * dim), cluster * dim);
  }
  return {
    k,
    labels,
    centroids: centres,
    counts: [...counts],
    representatives: findRepresentatives(labels, distances, k),
    iterations,
    converged,
    inertia: sumOf(distances),
  };
}
