/**
 * What the fast k-means (kmeans.ts) and the plain reference (kmeans-plain.ts) share: the options and
 * result, their validation, and the steps whose outcome must not depend on how distances were computed
 * — the k-means++ draws, empty-cluster repair, the tolerance and the representatives. Sharing them is
 * what lets the two agree label for label on the same seed.
 */
import { BadRequestError, GatewayError } from '../errors.js';
import { mulberry32 } from '../embed/generate/graph.js';

export interface KMeansOptions {
  /** Number of clusters, an integer from 2 to 32 and at most the number of rows. */
  k: number;
  /** Seed of the k-means++ draws: the same data and seed give the same labels. @default 0 */
  seed?: number;
  /** Lloyd iterations at most. @default 100 */
  maxIterations?: number;
  /**
   * Converged when the centroids moved less than this in all, relative to the data's spread: the sum
   * of squared centroid shifts ≤ tolerance × the mean per-column variance (as scikit-learn). @default 1e-4
   */
  tolerance?: number;
}

export interface KMeansResult {
  k: number;
  /** The cluster of each row, 0..k-1. */
  labels: Uint8Array;
  /** k × dim, row after row: the centroids the labels were assigned to. */
  centroids: Float32Array;
  /** Rows per cluster (length k, sum = rows); never 0, see relocateEmptyClusters. */
  counts: number[];
  /** Per cluster, the row closest to its centroid (a real row of that cluster: its representative patch). */
  representatives: number[];
  /** Lloyd iterations run (assignment + update). */
  iterations: number;
  /** False when maxIterations ran out first. */
  converged: boolean;
  /** Sum of squared distances from each row to its centroid. */
  inertia: number;
}

/** The options with their defaults filled in. */
export interface KMeansSettings {
  k: number;
  seed: number;
  maxIterations: number;
  tolerance: number;
}

export const MIN_K = 2;
export const MAX_K = 32;
const DEFAULTS = { seed: 0, maxIterations: 100, tolerance: 1e-4 } as const;

/** The embeddings cannot be clustered (NaN or infinite values). */
export class InvalidEmbeddingsError extends GatewayError {
  constructor(message: string) {
    super('INVALID_EMBEDDINGS', 422, message);
  }
}

/** Checks the shape and the options (not the values: see findNonFiniteRow); throws BadRequestError for a bad k. */
export function validateKMeansInput(data: Float32Array, rows: number, dim: number, options: KMeansOptions): KMeansSettings {
  if (!Number.isInteger(rows) || rows < 1 || !Number.isInteger(dim) || dim < 1) throw new RangeError(`k-means needs at least one row and one column, got ${rows} x ${dim}`);
  if (data.length !== rows * dim) throw new RangeError(`${rows} rows of ${dim} need ${rows * dim} values, got ${data.length}`);
  const { k } = options;
  if (!Number.isInteger(k) || k < MIN_K || k > MAX_K) throw new BadRequestError(`k must be an integer from ${MIN_K} to ${MAX_K}, got ${k}`, 'BAD_K');
  if (k > rows) throw new BadRequestError(`k = ${k} clusters need at least ${k} embeddings; the slide has ${rows}`, 'BAD_K');
  const seed = options.seed ?? DEFAULTS.seed;
  const maxIterations = options.maxIterations ?? DEFAULTS.maxIterations;
  const tolerance = options.tolerance ?? DEFAULTS.tolerance;
  if (!Number.isInteger(seed)) throw new RangeError(`seed must be an integer, got ${seed}`);
  if (!Number.isInteger(maxIterations) || maxIterations < 1) throw new RangeError(`maxIterations must be a positive integer, got ${maxIterations}`);
  if (!(tolerance >= 0)) throw new RangeError(`tolerance must be ≥ 0, got ${tolerance}`);
  return { k, seed, maxIterations, tolerance };
}

/** Throws InvalidEmbeddingsError naming the first row whose value (or squared norm, when given norms) is not finite. */
export function assertFiniteRows(values: ArrayLike<number>, perRow: number): void {
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i]!)) {
      const row = Math.floor(i / perRow);
      throw new InvalidEmbeddingsError(`embedding row ${row} has a NaN or infinite value${perRow === 1 ? ' (or one too large to square in float32)' : ''}`);
    }
  }
}

/** The absolute tolerance: tolerance × the mean over columns of their variance. */
export function computeAbsoluteTolerance(tolerance: number, rows: number, dim: number, sumOfSquares: number, columnSums: ArrayLike<number>): number {
  let meanNormSquared = 0;
  for (let j = 0; j < dim; j++) meanNormSquared += (columnSums[j]! / rows) ** 2;
  return (tolerance * Math.max(0, sumOfSquares / rows - meanNormSquared)) / dim;
}

/** scikit-learn's greedy k-means++: 2 + ⌊ln k⌋ candidates per centre, keeping the one that lowers the potential most. */
export const seedTrials = (k: number): number => 2 + Math.floor(Math.log(k));

/** The seeded uniform stream of the k-means++ draws. */
export const createSeedStream = (seed: number): (() => number) => mulberry32(seed);

/**
 * `trials` rows drawn with probability proportional to `closest` (D² sampling). When every row already
 * sits on a centre (potential 0, e.g. fewer distinct rows than k) a uniform row is taken: its cluster
 * will be repaired as an empty one.
 */
export function drawCandidates(closest: ArrayLike<number>, uniform: () => number, trials: number): number[] {
  const rows = closest.length;
  const cumulative = new Float64Array(rows);
  let total = 0;
  let lastPositive = -1;
  for (let i = 0; i < rows; i++) {
    total += closest[i]!;
    cumulative[i] = total;
    if (closest[i]! > 0) lastPositive = i;
  }
  const picks: number[] = [];
  for (let t = 0; t < trials; t++) {
    const u = uniform();
    if (lastPositive < 0) {
      picks.push(Math.min(rows - 1, Math.floor(u * rows)));
      continue;
    }
    // The first row whose cumulative weight exceeds the draw; a draw lost to rounding takes the last weighted row.
    const r = u * total;
    let lo = 0;
    let hi = rows;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cumulative[mid]! > r) hi = mid;
      else lo = mid + 1;
    }
    picks.push(lo < rows ? lo : lastPositive);
  }
  return picks;
}

/** The candidate (column of `distances`, rows × trials) whose capped distances sum the least; the first of equals. */
export function pickBestCandidate(distances: ArrayLike<number>, rows: number, trials: number): number {
  const potentials = new Float64Array(trials);
  for (let i = 0; i < rows; i++) for (let t = 0; t < trials; t++) potentials[t]! += distances[i * trials + t]!;
  let best = 0;
  for (let t = 1; t < trials; t++) if (potentials[t]! < potentials[best]!) best = t;
  return best;
}

/** A row-major k × dim copy of the chosen rows. */
export function gatherRows(data: Float32Array, dim: number, indexes: readonly number[]): Float32Array {
  const out = new Float32Array(indexes.length * dim);
  indexes.forEach((row, i) => out.set(data.subarray(row * dim, (row + 1) * dim), i * dim));
  return out;
}

/**
 * Gives every empty cluster a row: the row farthest from its centroid among clusters that keep a member
 * (scikit-learn's rule, plus that guard; the lowest index among equals). With k ≤ rows some cluster has
 * two members whenever one is empty, so none stays empty. Updates labels, distances (0 for a moved row:
 * it becomes its cluster's centroid), counts and, when given, the float64 cluster sums.
 * Returns the moved rows, one per formerly empty cluster, in cluster order.
 */
export function relocateEmptyClusters(
  data: Float32Array,
  dim: number,
  labels: Uint8Array,
  distances: Float32Array | Float64Array,
  counts: Int32Array,
  sums?: Float64Array,
): Array<{ cluster: number; row: number }> {
  const moved: Array<{ cluster: number; row: number }> = [];
  for (let cluster = 0; cluster < counts.length; cluster++) {
    if (counts[cluster] !== 0) continue;
    let row = -1;
    let farthest = -1;
    for (let i = 0; i < labels.length; i++) {
      if (distances[i]! > farthest && counts[labels[i]!]! > 1) {
        row = i;
        farthest = distances[i]!;
      }
    }
    if (row < 0) throw new Error('unreachable: k ≤ rows leaves a cluster with two members');
    const from = labels[row]!;
    counts[from]!--;
    counts[cluster] = 1;
    labels[row] = cluster;
    distances[row] = 0;
    if (sums) {
      for (let j = 0; j < dim; j++) {
        sums[from * dim + j]! -= data[row * dim + j]!;
        sums[cluster * dim + j] = data[row * dim + j]!;
      }
    }
    moved.push({ cluster, row });
  }
  return moved;
}

/** Centroids as the means of the float64 sums; returns the sum of squared shifts from `previous` (updated in place). */
export function updateCentroids(previous: Float64Array, sums: Float64Array, counts: Int32Array, dim: number): number {
  let shift = 0;
  for (let c = 0; c < counts.length; c++) {
    for (let j = c * dim; j < (c + 1) * dim; j++) {
      const next = sums[j]! / counts[c]!;
      shift += (next - previous[j]!) ** 2;
      previous[j] = next;
    }
  }
  return shift;
}

export function countLabels(labels: Uint8Array, k: number): Int32Array {
  const counts = new Int32Array(k);
  for (let i = 0; i < labels.length; i++) counts[labels[i]!]!++;
  return counts;
}

/** Per cluster, its row with the least distance to the centroid (the lowest index among equals). */
export function findRepresentatives(labels: Uint8Array, distances: ArrayLike<number>, k: number): number[] {
  const best = new Array<number>(k).fill(-1);
  for (let i = 0; i < labels.length; i++) {
    const c = labels[i]!;
    if (best[c] === -1 || distances[i]! < distances[best[c]!]!) best[c] = i;
  }
  return best;
}

export function sumOf(values: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < values.length; i++) s += values[i]!;
  return s;
}

export function labelsEqual(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
