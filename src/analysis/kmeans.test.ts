import { afterAll, describe, expect, it } from 'vitest';
import { BadRequestError, ClosingError } from '../errors.js';
import { makeGaussianBlobs } from './blobs.fixture.js';
import { createKMeansEngine, InvalidEmbeddingsError, type KMeansResult } from './kmeans.js';
import { countLabels, drawCandidates, relocateEmptyClusters, validateKMeansInput } from './kmeans-common.js';
import { runLloyd } from './kmeans-lloyd.js';
import { runPlainKMeans } from './kmeans-plain.js';
import { createMatrixKernels } from './matrix-kernels.js';

const engine = createKMeansEngine({ threads: 2 });
afterAll(() => engine.close());

/** True when the two labelings split the rows the same way, whatever the cluster numbers. */
function isSamePartition(a: Uint8Array, b: Uint8Array): boolean {
  const forward = new Map<number, number>();
  const backward = new Map<number, number>();
  for (let i = 0; i < a.length; i++) {
    if ((forward.get(a[i]!) ?? b[i]) !== b[i] || (backward.get(b[i]!) ?? a[i]) !== a[i]) return false;
    forward.set(a[i]!, b[i]!);
    backward.set(b[i]!, a[i]!);
  }
  return true;
}

function squaredDistance(data: Float32Array, row: number, centroids: Float32Array, c: number, dim: number): number {
  let s = 0;
  for (let j = 0; j < dim; j++) s += (data[row * dim + j]! - centroids[c * dim + j]!) ** 2;
  return s;
}

/** What every result must satisfy, whatever the data. */
function expectConsistent(result: KMeansResult, data: Float32Array, rows: number, dim: number): void {
  expect(result.labels).toHaveLength(rows);
  expect(result.centroids).toHaveLength(result.k * dim);
  expect(result.counts.reduce((a, b) => a + b, 0)).toBe(rows);
  expect([...countLabels(result.labels, result.k)]).toEqual(result.counts);
  expect(Math.min(...result.counts)).toBeGreaterThan(0);
  result.representatives.forEach((row, c) => {
    expect(Number.isInteger(row) && row >= 0 && row < rows).toBe(true);
    expect(result.labels[row]).toBe(c);
    // The closest of its cluster, up to float32 rounding of the distances.
    let least = Infinity;
    for (let i = 0; i < rows; i++) if (result.labels[i] === c) least = Math.min(least, squaredDistance(data, i, result.centroids, c, dim));
    expect(squaredDistance(data, row, result.centroids, c, dim)).toBeLessThanOrEqual(least * (1 + 1e-4) + 1e-4);
  });
}

describe('k-means on separable blobs', () => {
  const rows = 2000;
  const dim = 64;
  const { data, truth } = makeGaussianBlobs({ rows, dim, blobs: 5, seed: 3, separation: 3, spread: [0.5, 1.5], unevenness: 3 });

  it('recovers the blobs, as the plain reference does', async () => {
    const result = await engine.run(data, rows, dim, { k: 5, seed: 7 });
    expect(isSamePartition(result.labels, truth)).toBe(true);
    expect(result.converged).toBe(true);
    expectConsistent(result, data, rows, dim);

    const plain = runPlainKMeans(data, rows, dim, { k: 5, seed: 7 });
    expect(isSamePartition(plain.labels, truth)).toBe(true);
    expectConsistent(plain, data, rows, dim);
    // Same draws, same seeds: the same clusters under the same numbers, and the same inertia.
    expect(result.labels).toEqual(plain.labels);
    expect(Math.abs(result.inertia - plain.inertia) / plain.inertia).toBeLessThan(1e-5);
  });

  it('recovers them through PCA too, with centroids in the original columns', async () => {
    const result = await engine.run(data, rows, dim, { k: 5, seed: 7, pcaComponents: 8 });
    expect(isSamePartition(result.labels, truth)).toBe(true);
    expect(result.pca?.components).toBe(8);
    expect(result.pca?.explainedVarianceRatio).toBeGreaterThan(0.5);
    expect(result.centroids).toHaveLength(5 * dim);
    const first = result.labels[0]!;
    const mean = new Float64Array(dim);
    result.labels.forEach((label, i) => {
      if (label === first) for (let j = 0; j < dim; j++) mean[j]! += data[i * dim + j]! / result.counts[first]!;
    });
    for (let j = 0; j < dim; j++) expect(result.centroids[first * dim + j]).toBeCloseTo(mean[j]!, 3);
  });
});

describe('determinism', () => {
  const rows = 3000;
  const dim = 48;
  // Overlapping blobs and more clusters than blobs: many iterations, where rounding would show.
  const { data } = makeGaussianBlobs({ rows, dim, blobs: 6, seed: 11, separation: 0.6, spread: [0.8, 1.2], latentDim: 12, noise: 0.3 });

  it('gives identical labels and centroids for the same seed, engine after engine', async () => {
    const first = await engine.run(data, rows, dim, { k: 9, seed: 42 });
    const again = await engine.run(data, rows, dim, { k: 9, seed: 42 });
    const fresh = createKMeansEngine({ threads: 2 });
    const third = await fresh.run(data, rows, dim, { k: 9, seed: 42 });
    await fresh.close();
    expect(first.iterations).toBeGreaterThan(3);
    for (const other of [again, third]) {
      expect(other.labels).toEqual(first.labels);
      expect(other.centroids).toEqual(first.centroids);
      expect(other.iterations).toBe(first.iterations);
      expect(other.inertia).toBe(first.inertia);
    }
    expectConsistent(first, data, rows, dim);
  });

  it('gets the same result whether rows are skipped by their bounds or all measured', async () => {
    const kernels = createMatrixKernels({ threads: 2 });
    try {
      const x = { data, rows, cols: dim };
      const settings = validateKMeansInput(data, rows, dim, { k: 9, seed: 5 });
      const bounded = await runLloyd(kernels, x, settings);
      const full = await runLloyd(kernels, x, settings, { bounds: false });
      expect(bounded.labels).toEqual(full.labels);
      expect(bounded.iterations).toBe(full.iterations);
      for (let i = 0; i < full.centroids.length; i++) expect(bounded.centroids[i]).toBeCloseTo(full.centroids[i]!, 4);
    } finally {
      await kernels.close();
    }
  });

  it('reaches a partition as good as the plain loop', async () => {
    const result = await engine.run(data, rows, dim, { k: 9, seed: 1 });
    const plain = runPlainKMeans(data, rows, dim, { k: 9, seed: 1 });
    expect(result.inertia).toBeLessThanOrEqual(plain.inertia * 1.01);
  });
});

describe('validation', () => {
  const data = new Float32Array(40).map((_, i) => i % 7);

  it.each([1, 33, 2.5, Number.NaN, 11])('rejects k = %s with BAD_K', async (k) => {
    const expected = { name: 'BadRequestError', code: 'BAD_K', status: 400 };
    await expect(engine.run(data, 10, 4, { k })).rejects.toMatchObject(expected);
    expect(() => runPlainKMeans(data, 10, 4, { k })).toThrow(BadRequestError);
  });

  it('accepts k = 2 and k = 32 at the bounds', async () => {
    const rows = 40;
    const many = new Float32Array(rows * 2).map((_, i) => Math.sin(i * 12.9898) * 100);
    for (const k of [2, 32]) expectConsistent(await engine.run(many, rows, 2, { k }), many, rows, 2);
  });

  it('rejects data whose length is not rows x dim', async () => {
    await expect(engine.run(data, 10, 5, { k: 2 })).rejects.toThrow(RangeError);
  });

  it('names the first row with a NaN or infinite value', async () => {
    const bad = data.slice();
    bad[4 * 6 + 1] = Number.NaN;
    await expect(engine.run(bad, 10, 4, { k: 2 })).rejects.toThrow(new InvalidEmbeddingsError('embedding row 6 has a NaN or infinite value (or one too large to square in float32)'));
    bad[4 * 6 + 1] = Number.POSITIVE_INFINITY;
    expect(() => runPlainKMeans(bad, 10, 4, { k: 2 })).toThrow(/embedding row 6 has a NaN or infinite value/);
  });

  it('rejects a PCA wider than the embeddings with BAD_PCA', async () => {
    await expect(engine.run(data, 10, 4, { k: 2, pcaComponents: 5 })).rejects.toMatchObject({ code: 'BAD_PCA', status: 400 });
  });
});

describe('empty clusters', () => {
  it('re-seeds them with the farthest rows: duplicated points, k close to rows', async () => {
    // 12 rows with only 4 distinct values: k = 10 cannot find 10 distinct centres.
    const dim = 3;
    const values = [
      [0, 0, 0],
      [10, 0, 0],
      [0, 10, 0],
      [0, 0, 30],
    ];
    const data = Float32Array.from({ length: 12 * dim }, (_, i) => values[Math.floor(i / dim) % 4]![i % dim]!);
    for (const seed of [0, 1, 2]) {
      const result = await engine.run(data, 12, dim, { k: 10, seed });
      expectConsistent(result, data, 12, dim);
      const plain = runPlainKMeans(data, 12, dim, { k: 10, seed });
      expectConsistent(plain, data, 12, dim);
    }
  });

  it('moves the farthest row of a cluster that keeps a member, lowest index first', () => {
    const data = Float32Array.from([0, 1, 2, 10, 11]);
    const labels = Uint8Array.from([0, 0, 0, 1, 1]);
    const distances = Float32Array.from([1, 0, 1, 0.25, 0.25]);
    const counts = Int32Array.from([3, 2, 0, 0]);
    const sums = Float64Array.from([3, 21, 0, 0]);
    const moved = relocateEmptyClusters(data, 1, labels, distances, counts, sums);
    expect(moved).toEqual([
      { cluster: 2, row: 0 },
      { cluster: 3, row: 2 },
    ]);
    expect([...labels]).toEqual([2, 0, 3, 1, 1]);
    expect([...counts]).toEqual([1, 2, 1, 1]);
    expect([...sums]).toEqual([1, 21, 0, 2]);
  });
});

describe('k-means++ draws', () => {
  it('never draws a row that already sits on a centre', () => {
    let state = 0;
    const uniform = (): number => (state = (state + 0.137) % 1);
    const picks = drawCandidates(Float32Array.from([0, 4, 0, 1, 0]), uniform, 200);
    expect(new Set(picks)).toEqual(new Set([1, 3]));
    expect(picks.filter((p) => p === 1).length).toBeGreaterThan(picks.filter((p) => p === 3).length * 2);
  });

  it('draws uniformly when every row sits on a centre', () => {
    const picks = drawCandidates(new Float32Array(4), () => 0.6, 1);
    expect(picks).toEqual([2]);
  });
});

describe('engine lifecycle', () => {
  it('waits for runs in flight, then refuses new ones', async () => {
    const own = createKMeansEngine({ threads: 1 });
    const { data } = makeGaussianBlobs({ rows: 500, dim: 16, blobs: 3 });
    const running = own.run(data, 500, 16, { k: 3 });
    const closed = own.close();
    expect(own.close()).toBe(closed);
    await expect(running).resolves.toMatchObject({ k: 3 });
    await closed;
    await expect(own.run(data, 500, 16, { k: 3 })).rejects.toThrow(ClosingError);
  });

  it('stops at an aborted signal', async () => {
    const { data } = makeGaussianBlobs({ rows: 500, dim: 16, blobs: 3 });
    const controller = new AbortController();
    controller.abort(new Error('client went away'));
    await expect(engine.run(data, 500, 16, { k: 3, signal: controller.signal })).rejects.toThrow('client went away');
  });
});
