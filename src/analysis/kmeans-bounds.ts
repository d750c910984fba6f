/**
 * Elkan's bounds for Lloyd's iterations (C. Elkan, "Using the triangle inequality to accelerate
 * k-means", ICML 2003): per row an upper bound on the distance to its centroid and a lower bound on the
 * distance to each centroid. When centroids move, the bounds loosen by as much; a row whose upper bound
 * stays below every other centroid's lower bound (or below half the gap from its centroid to the
 * nearest other, Hamerly's test) cannot change cluster and need not be measured again.
 *
 * Bounds come from float32 distances, so they are widened by a bound on float32 rounding: a row the
 * bounds skip keeps the cluster an exact computation would give it.
 */
import type { MatrixKernels, RowMatrix } from './matrix-kernels.js';

/** float32 unit roundoff. */
const ROUNDOFF = 2 ** -24;

/** Euclidean distance between row i of `a` and row j of `b`, in float64. */
export function rowDistance(a: Float32Array, i: number, b: Float32Array, j: number, dim: number): number {
  let s = 0;
  for (let d = 0; d < dim; d++) s += (a[i * dim + d]! - b[j * dim + d]!) ** 2;
  return Math.sqrt(s);
}

/**
 * The per-row state of an assignment: labels and Elkan's bounds (distances, not squared), kept lazily.
 * A row's bounds are stored as they were when it was last measured, together with that epoch (the
 * number of centroid updates so far); the distance each centroid travelled since is subtracted on
 * reading, so a row that stays certain costs a few reads per iteration, not k writes.
 */
export class Assignment {
  readonly labels: Uint8Array;
  /** Rows whose label the last measure changed, and their label before. */
  readonly changedRows: number[] = [];
  readonly changedFrom: number[] = [];
  /** Per row, the epoch of its bounds. */
  private readonly epochOf: Int32Array;
  /** Per row, at least its distance to its centroid (at its epoch). */
  private readonly upper: Float64Array;
  /** rows × k: at most the distance from the row to each centroid (at its epoch). */
  private readonly lower: Float64Array;
  /** Per row, the least of its lower bounds to the other centroids less its upper bound (at its epoch): Hamerly's test in one read. */
  private readonly margin: Float64Array;
  /** Per epoch, how far each centroid had travelled in all since the start. */
  private readonly travelled: Float64Array[];

  constructor(
    private readonly kernels: MatrixKernels,
    private readonly x: RowMatrix,
    private readonly xNorms: Float32Array,
    private readonly k: number,
  ) {
    this.labels = new Uint8Array(x.rows);
    this.epochOf = new Int32Array(x.rows);
    this.upper = new Float64Array(x.rows);
    this.lower = new Float64Array(x.rows * k);
    this.margin = new Float64Array(x.rows);
    this.travelled = [new Float64Array(k)];
  }

  private get epoch(): number {
    return this.travelled.length - 1;
  }

  /** Starts a new epoch: each centroid moved by `moved` (a distance). */
  moveCentres(moved: Float64Array): void {
    this.travelled.push(this.travelled.at(-1)!.map((t, c) => t + moved[c]!));
  }

  /** The row will be measured again, whatever its bounds (a row moved to an empty cluster). */
  forget(row: number): void {
    this.upper[row] = Infinity;
    this.margin[row] = -Infinity;
  }

  /**
   * Measures the rows numbered in `which`, or all rows, against `centres`. After a measure of all rows,
   * returns every row's squared distance to its centroid.
   */
  async measure(centres: Float32Array, which?: Float32Array): Promise<Float32Array | undefined> {
    const { rows, cols: dim } = this.x;
    const k = this.k;
    const out = await this.kernels.computeNearest(this.x, this.xNorms, { data: centres, rows: k, cols: dim }, which);
    let centreNormMax = 0;
    for (let c = 0; c < k; c++) centreNormMax = Math.max(centreNormMax, rowDistance(centres, c, new Float32Array(dim), 0, dim) ** 2);
    const all = which ? undefined : new Float32Array(rows);
    const count = which ? which.length : rows;
    const { labels, upper, lower, margin, epochOf, xNorms, changedRows, changedFrom, epoch } = this;
    changedRows.length = 0;
    changedFrom.length = 0;
    // |computed − exact| of a squared distance: the dot product's dim roundings plus a few more,
    // relative to ‖x‖² + ‖c‖² (the classic bound for a sum of products).
    const slackPerNorm = (dim + 4) * ROUNDOFF;
    for (let r = 0; r < count; r++) {
      const i = which ? which[r]! : r;
      const label = out.labels[r]!;
      const before = labels[i]!;
      if (label !== before) {
        changedRows.push(i);
        changedFrom.push(before);
        labels[i] = label;
      }
      const slack = slackPerNorm * (xNorms[i]! + centreNormMax);
      let least = Infinity;
      for (let c = 0; c < k; c++) {
        const squared = out.distances[r * k + c]! - slack;
        const bound = squared > 0 ? Math.sqrt(squared) : 0;
        lower[i * k + c] = bound;
        if (c !== label && bound < least) least = bound;
      }
      const own = out.distances[r * k + label]!;
      upper[i] = Math.sqrt(own + slack);
      margin[i] = least - upper[i]!;
      epochOf[i] = epoch;
      if (all) all[i] = own;
    }
    return all;
  }

  /**
   * The rows whose cluster may have changed since they were measured (call after moveCentres). A row
   * is cleared by the first test it passes, cheapest first: its upper bound is within half the gap from
   * its centroid to the nearest other; or below its least lower bound less the farthest any centroid
   * travelled (Hamerly's); or below each other centroid's own lower bound (Elkan's). Exact distances
   * for the rows left were tried too, to tighten their upper bounds: at ~2 µs a row here, picking the
   * row for the next graph pass costs less.
   */
  findUncertainRows(centres: Float32Array): Float32Array {
    const { rows, cols: dim } = this.x;
    const k = this.k;
    const now = this.travelled[this.epoch]!;
    const halfGap = new Float64Array(k).fill(Infinity);
    for (let a = 0; a < k; a++) {
      for (let b = a + 1; b < k; b++) {
        const half = rowDistance(centres, a, centres, b, dim) / 2;
        halfGap[a] = Math.min(halfGap[a]!, half);
        halfGap[b] = Math.min(halfGap[b]!, half);
      }
    }
    // Per past epoch e, how far each centroid travelled since (since[e * k + c]), and the farthest of them.
    const epochs = this.travelled.length;
    const since = new Float64Array(epochs * k);
    const farthest = new Float64Array(epochs);
    this.travelled.forEach((then, e) => {
      for (let c = 0; c < k; c++) farthest[e] = Math.max(farthest[e]!, (since[e * k + c] = now[c]! - then[c]!));
    });
    const { labels, epochOf, upper, lower, margin } = this;
    const uncertain: number[] = [];
    for (let i = 0; i < rows; i++) {
      const a = labels[i]!;
      const e = epochOf[i]!;
      const drift = since[e * k + a]!;
      // Hamerly's test, as margin = least other lower bound − upper bound at the row's epoch.
      if (margin[i]! >= drift + farthest[e]!) continue;
      const bound = upper[i]! + drift;
      if (bound <= halfGap[a]!) continue;
      // Elkan's: may another centroid be within the bound?
      for (let c = 0; c < k; c++) {
        if (c !== a && lower[i * k + c]! - since[e * k + c]! < bound) {
          uncertain.push(i);
          break;
        }
      }
    }
    return Float32Array.from(uncertain);
  }
}

