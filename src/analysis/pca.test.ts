import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fillStandardNormal, mulberry32 } from '../embed/generate/graph.js';
import { InvalidEmbeddingsError } from './kmeans-common.js';
import { createKMeansEngine } from './kmeans.js';
import { createMatrixKernels } from './matrix-kernels.js';
import { computePca, type PcaResult } from './pca.js';
import { computeSymmetricEigen } from './symmetric-eigen.js';

const dot = (a: ArrayLike<number>, b: ArrayLike<number>, n: number, ai = 0, bi = 0): number => {
  let s = 0;
  for (let j = 0; j < n; j++) s += a[ai * n + j]! * b[bi * n + j]!;
  return s;
};

/** Correlated data with distinct variances and a mean far from 0: rows × dim. */
function makeCorrelated(rows: number, dim: number, seed: number): Float32Array {
  const uniform = mulberry32(seed);
  const z = new Float32Array(rows * dim);
  const mix = new Float32Array(dim * dim);
  fillStandardNormal(uniform, z);
  fillStandardNormal(uniform, mix);
  const data = new Float32Array(rows * dim);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < dim; j++) {
      let v = 20 + j; // the mean
      for (let l = 0; l < dim; l++) v += z[i * dim + l]! * (dim - l) * 0.2 * mix[l * dim + j]!;
      data[i * dim + j] = v;
    }
  }
  return data;
}

describe('PCA on data with known principal axes', () => {
  // ±3·u1, ±2·u2, ±1·u3 around a mean, u orthonormal: the covariance is 2(9 u1u1ᵀ + 4 u2u2ᵀ + u3u3ᵀ)/5.
  const u = [
    [0.6, 0.8, 0, 0, 0, 0],
    [0.8, -0.6, 0, 0, 0, 0],
    [0, 0, 0.5, 0.5, 0.5, 0.5],
  ];
  const mean = [1, 2, 3, 4, 5, 6];
  const scales = [3, -3, 2, -2, 1, -1];
  const data = Float32Array.from({ length: 36 }, (_, i) => mean[i % 6]! + scales[Math.floor(i / 6)]! * u[Math.floor(i / 12)]![i % 6]!);

  it('finds the axes, their variances and the projections', async () => {
    const pca = await computePca(data, 6, 6, 3);
    for (let c = 0; c < 3; c++) for (let j = 0; j < 6; j++) expect(pca.components[c * 6 + j]).toBeCloseTo(u[c]![j]!, 5);
    expect(pca.explainedVariance.map((v) => Number(v.toFixed(5)))).toEqual([3.6, 1.6, 0.4]);
    pca.explainedVarianceRatio.forEach((r, c) => expect(r).toBeCloseTo([9 / 14, 4 / 14, 1 / 14][c]!, 6));
    for (let j = 0; j < 6; j++) expect(pca.mean[j]).toBeCloseTo(mean[j]!, 5);
    // Row 0 is +3·u1, row 3 is −2·u2.
    [3, 0, 0].forEach((v, c) => expect(pca.projected[c]).toBeCloseTo(v, 5));
    [0, -2, 0].forEach((v, c) => expect(pca.projected[3 * 3 + c]).toBeCloseTo(v, 5));
  });

  it('keeps the sign of each component fixed: its largest entry is positive', async () => {
    const negated = Float32Array.from(data, (v, i) => 2 * mean[i % 6]! - v);
    const pca = await computePca(negated, 6, 6, 3);
    for (let c = 0; c < 3; c++) for (let j = 0; j < 6; j++) expect(pca.components[c * 6 + j]).toBeCloseTo(u[c]![j]!, 5);
  });
});

function findPythonWithNumpy(): string | undefined {
  for (const bin of ['python3', '/usr/bin/python3']) if (spawnSync(bin, ['-c', 'import numpy'], { stdio: 'ignore' }).status === 0) return bin;
  return undefined;
}
const python = findPythonWithNumpy();
if (!python) console.warn('pca.test.ts: python3 with numpy not found (apt-get install python3-numpy); the numpy reference tests are skipped');

describe.skipIf(!python)('PCA against numpy (needs python3 with numpy)', () => {
  const rows = 800;
  const dim = 24;
  const components = 6;
  const data = makeCorrelated(rows, dim, 9);
  const dir = mkdtempSync(join(tmpdir(), 'pca-test-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** numpy's SVD of the centred data, in float64. */
  function numpyPca(): { components: number[][]; ratio: number[]; variance: number[]; projected: number[][] } {
    const file = join(dir, 'x.f32');
    writeFileSync(file, data);
    const script = [
      'import json, sys, numpy as np',
      `x = np.fromfile(sys.argv[1], dtype="<f4").reshape(${rows}, ${dim}).astype(np.float64)`,
      'c = x - x.mean(axis=0)',
      'u, s, vt = np.linalg.svd(c, full_matrices=False)',
      `m = ${components}`,
      'print(json.dumps({"components": vt[:m].tolist(), "ratio": (s[:m] ** 2 / (s ** 2).sum()).tolist(),',
      `  "variance": (s[:m] ** 2 / (${rows} - 1)).tolist(), "projected": (c[:5] @ vt[:m].T).tolist()}))`,
    ].join('\n');
    const out = spawnSync(python!, ['-c', script, file], { encoding: 'utf8' });
    if (out.status !== 0) throw new Error(`python3 failed: ${out.stderr}`);
    return JSON.parse(out.stdout) as ReturnType<typeof numpyPca>;
  }

  function expectLikeNumpy(pca: PcaResult, reference: ReturnType<typeof numpyPca>): void {
    for (let c = 0; c < components; c++) {
      const axis = reference.components[c]!;
      const agreement = dot(pca.components, axis, dim, c, 0);
      expect(Math.abs(agreement)).toBeGreaterThan(1 - 1e-6); // the same axis, up to sign
      expect(pca.explainedVarianceRatio[c]).toBeCloseTo(reference.ratio[c]!, 6);
      expect(Math.abs(pca.explainedVariance[c]! / reference.variance[c]! - 1)).toBeLessThan(1e-5);
      for (let i = 0; i < 5; i++) {
        expect(Math.abs(pca.projected[i * components + c]! - Math.sign(agreement) * reference.projected[i]![c]!)).toBeLessThan(1e-3);
      }
    }
  }

  it('gives numpy’s components, variances and projections', async () => {
    expectLikeNumpy(await computePca(data, rows, dim, components), numpyPca());
  });

  it('gives the same when the scatter is summed over many blocks of rows', async () => {
    const kernels = createMatrixKernels({ blockBytes: 4 * dim * 37 });
    try {
      expectLikeNumpy(await computePca(data, rows, dim, components, kernels), numpyPca());
    } finally {
      await kernels.close();
    }
  });
});

describe('PCA input', () => {
  it.each([
    [0, 10],
    [5, 10],
    [2, 1],
  ])('rejects %i components of 4 columns over %i rows with BAD_PCA', async (components, rows) => {
    await expect(computePca(new Float32Array(rows * 4), rows, 4, components)).rejects.toMatchObject({ code: 'BAD_PCA', status: 400 });
  });

  it('names the row with a NaN', async () => {
    const data = makeCorrelated(10, 4, 1);
    data[4 * 7 + 2] = Number.NaN;
    await expect(computePca(data, 10, 4, 2)).rejects.toThrow(new InvalidEmbeddingsError('embedding row 7 has a NaN or infinite value'));
  });

  it('runs on the k-means engine’s sessions as on its own', async () => {
    const engine = createKMeansEngine({ threads: 1 });
    const data = makeCorrelated(200, 8, 4);
    const [own, shared] = [await computePca(data, 200, 8, 3), await engine.pca(data, 200, 8, 3)];
    await engine.close();
    expect(shared.components).toEqual(own.components);
    expect(shared.projected).toEqual(own.projected);
  });
});

describe('symmetric eigen-decomposition', () => {
  it('solves a 2x2 and a 1x1 matrix', () => {
    const { values, vectors } = computeSymmetricEigen(Float64Array.from([2, 1, 1, 2]), 2);
    expect([...values].map((v) => Number(v.toFixed(12)))).toEqual([1, 3]);
    expect(Math.abs(vectors[0]! * vectors[1]!)).toBeCloseTo(0.5, 12); // (1, −1)/√2 up to sign
    expect(vectors[0]! * vectors[1]!).toBeLessThan(0);
    expect(vectors[2]! * vectors[3]!).toBeCloseTo(0.5, 12);
    expect(computeSymmetricEigen(Float64Array.from([-4]), 1)).toEqual({ values: Float64Array.from([-4]), vectors: Float64Array.from([1]) });
  });

  it('sorts repeated eigenvalues of a diagonal matrix', () => {
    const { values } = computeSymmetricEigen(Float64Array.from([3, 0, 0, 0, 0, 1, 0, 0, 0, 0, 3, 0, 0, 0, 0, 2]), 4);
    expect([...values]).toEqual([1, 2, 3, 3]);
  });

  it('decomposes a random symmetric matrix: A v = λ v, orthonormal, ascending', () => {
    const n = 40;
    const r = new Float64Array(n * n).map(mulberry32(2));
    const a = Float64Array.from({ length: n * n }, (_, i) => r[i]! + r[(i % n) * n + Math.floor(i / n)]!);
    const { values, vectors } = computeSymmetricEigen(a, n);
    for (let i = 0; i < n; i++) {
      if (i > 0) expect(values[i]).toBeGreaterThanOrEqual(values[i - 1]!);
      for (let j = 0; j < n; j++) expect(dot(vectors, vectors, n, i, j)).toBeCloseTo(i === j ? 1 : 0, 12);
      for (let row = 0; row < n; row++) expect(dot(a, vectors, n, row, i)).toBeCloseTo(values[i]! * vectors[i * n + row]!, 10);
    }
  });
});
