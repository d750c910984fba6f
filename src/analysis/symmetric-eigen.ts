/**
 * Eigen-decomposition of a real symmetric matrix: Householder reduction to tridiagonal form, then the
 * implicit QL algorithm (EISPACK tred2 + tql2, as ported to Java by JAMA, public domain).
 *
 * Written here rather than taken from ml-matrix (whose port of the same algorithm was the candidate):
 * on a 384x384 covariance it takes 660-750 ms here, the same algorithm on a flat Float64Array 360-450 ms,
 * and this one 230-260 ms. The difference is layout: the matrix of eigenvectors is kept transposed
 * (`q[col * n + row]`), so every O(n³) loop of both stages walks contiguous memory.
 */

/** Eigenvalues in ascending order and their unit eigenvectors, one per row, in the same order. */
export interface SymmetricEigen {
  values: Float64Array;
  /** n*n, row i = the eigenvector of values[i]. */
  vectors: Float64Array;
}

/** Eigenvalues and eigenvectors of the symmetric n×n matrix `a` (row-major), which is not modified. */
export function computeSymmetricEigen(a: Float64Array, n: number): SymmetricEigen {
  if (a.length !== n * n) throw new RangeError(`a ${n}x${n} matrix needs ${n * n} values, got ${a.length}`);
  // q holds JAMA's V transposed: V[r][c] is q[c * n + r]. The input is symmetric, so q starts as a copy.
  const q = Float64Array.from(a);
  const d = new Float64Array(n);
  const e = new Float64Array(n);
  if (n === 0) return { values: d, vectors: q };
  tridiagonalize(q, d, e, n);
  diagonalize(q, d, e, n);
  return { values: d, vectors: q };
}

/** tred2: q ← the orthogonal Householder product, d ← the diagonal, e ← the subdiagonal (e[0] = 0). */
function tridiagonalize(q: Float64Array, d: Float64Array, e: Float64Array, n: number): void {
  for (let j = 0; j < n; j++) d[j] = q[j * n + n - 1]!;
  for (let i = n - 1; i > 0; i--) {
    let scale = 0;
    let h = 0;
    for (let k = 0; k < i; k++) scale += Math.abs(d[k]!);
    if (scale === 0) {
      e[i] = d[i - 1]!;
      for (let j = 0; j < i; j++) {
        d[j] = q[j * n + i - 1]!;
        q[j * n + i] = 0;
        q[i * n + j] = 0;
      }
    } else {
      // Householder vector from the scaled row i.
      for (let k = 0; k < i; k++) {
        d[k] = d[k]! / scale;
        h += d[k]! * d[k]!;
      }
      let f = d[i - 1]!;
      let g = f > 0 ? -Math.sqrt(h) : Math.sqrt(h);
      e[i] = scale * g;
      h -= f * g;
      d[i - 1] = f - g;
      for (let j = 0; j < i; j++) e[j] = 0;
      // e ← A·u over the lower triangle, column j of V being row j of q.
      for (let j = 0; j < i; j++) {
        const col = j * n;
        f = d[j]!;
        q[i * n + j] = f;
        g = e[j]! + q[col + j]! * f;
        for (let k = j + 1; k <= i - 1; k++) {
          g += q[col + k]! * d[k]!;
          e[k] = e[k]! + q[col + k]! * f;
        }
        e[j] = g;
      }
      f = 0;
      for (let j = 0; j < i; j++) {
        e[j] = e[j]! / h;
        f += e[j]! * d[j]!;
      }
      const hh = f / (h + h);
      for (let j = 0; j < i; j++) e[j] = e[j]! - hh * d[j]!;
      for (let j = 0; j < i; j++) {
        const col = j * n;
        f = d[j]!;
        g = e[j]!;
        for (let k = j; k <= i - 1; k++) q[col + k] = q[col + k]! - (f * e[k]! + g * d[k]!);
        d[j] = q[col + i - 1]!;
        q[col + i] = 0;
      }
    }
    d[i] = h;
  }
  // Accumulate the transformations.
  for (let i = 0; i < n - 1; i++) {
    q[i * n + n - 1] = q[i * n + i]!;
    q[i * n + i] = 1;
    const h = d[i + 1]!;
    const next = (i + 1) * n;
    if (h !== 0) {
      for (let k = 0; k <= i; k++) d[k] = q[next + k]! / h;
      for (let j = 0; j <= i; j++) {
        const col = j * n;
        let g = 0;
        for (let k = 0; k <= i; k++) g += q[next + k]! * q[col + k]!;
        for (let k = 0; k <= i; k++) q[col + k] = q[col + k]! - g * d[k]!;
      }
    }
    for (let k = 0; k <= i; k++) q[next + k] = 0;
  }
  for (let j = 0; j < n; j++) {
    d[j] = q[j * n + n - 1]!;
    q[j * n + n - 1] = 0;
  }
  q[n * n - 1] = 1;
  e[0] = 0;
}

/** tql2: the implicit QL algorithm on (d, e); rotations are applied to the rows of q; then sorts ascending. */
function diagonalize(q: Float64Array, d: Float64Array, e: Float64Array, n: number): void {
  for (let i = 1; i < n; i++) e[i - 1] = e[i]!;
  e[n - 1] = 0;
  let f = 0;
  let tst1 = 0;
  const eps = 2 ** -52;
  for (let l = 0; l < n; l++) {
    // Find a small subdiagonal element.
    tst1 = Math.max(tst1, Math.abs(d[l]!) + Math.abs(e[l]!));
    let m = l;
    while (m < n - 1 && Math.abs(e[m]!) > eps * tst1) m++;
    if (m > l) {
      do {
        // Implicit shift.
        let g = d[l]!;
        let p = (d[l + 1]! - g) / (2 * e[l]!);
        let r = Math.hypot(p, 1);
        if (p < 0) r = -r;
        d[l] = e[l]! / (p + r);
        d[l + 1] = e[l]! * (p + r);
        const dl1 = d[l + 1]!;
        let h = g - d[l]!;
        for (let i = l + 2; i < n; i++) d[i] = d[i]! - h;
        f += h;
        // Implicit QL transformation.
        p = d[m]!;
        let c = 1;
        let c2 = c;
        let c3 = c;
        const el1 = e[l + 1]!;
        let s = 0;
        let s2 = 0;
        for (let i = m - 1; i >= l; i--) {
          c3 = c2;
          c2 = c;
          s2 = s;
          g = c * e[i]!;
          h = c * p;
          r = Math.hypot(p, e[i]!);
          e[i + 1] = s * r;
          s = e[i]! / r;
          c = p / r;
          p = c * d[i]! - s * g;
          d[i + 1] = h + s * (c * g + s * d[i]!);
          const ri = i * n;
          const rj = ri + n;
          for (let k = 0; k < n; k++) {
            h = q[rj + k]!;
            q[rj + k] = s * q[ri + k]! + c * h;
            q[ri + k] = c * q[ri + k]! - s * h;
          }
        }
        p = (-s * s2 * c3 * el1 * e[l]!) / dl1;
        e[l] = s * p;
        d[l] = c * p;
      } while (Math.abs(e[l]!) > eps * tst1);
    }
    d[l] = d[l]! + f;
    e[l] = 0;
  }
  sortAscending(q, d, n);
}

/** Selection sort of the eigenvalues, swapping eigenvector rows along (n swaps at most). */
function sortAscending(q: Float64Array, d: Float64Array, n: number): void {
  for (let i = 0; i < n - 1; i++) {
    let k = i;
    for (let j = i + 1; j < n; j++) if (d[j]! < d[k]!) k = j;
    if (k === i) continue;
    const t = d[k]!;
    d[k] = d[i]!;
    d[i] = t;
    const row = q.slice(k * n, k * n + n);
    q.copyWithin(k * n, i * n, i * n + n);
    q.set(row, i * n);
  }
}
