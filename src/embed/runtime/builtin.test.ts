import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ManifestError, parseManifest, type ModelManifest } from '../models/manifest.js';
import { BUILTIN_BACKEND, createBuiltinModel, STAIN_TEXTURE_DIM, STAIN_TEXTURE_FEATURES } from './builtin.js';
import type { PatchBatch } from './types.js';

const manifestFile = new URL('../../../models/stain-texture.json', import.meta.url);
const manifest: ModelManifest = parseManifest(JSON.parse(readFileSync(manifestFile, 'utf8')), 'stain-texture.json');
const SIZE = 64;

type Feature = (typeof STAIN_TEXTURE_FEATURES)[number];
const at = (features: Float32Array, name: Feature, patch = 0): number => features[patch * STAIN_TEXTURE_DIM + STAIN_TEXTURE_FEATURES.indexOf(name)]!;

function makeRandom(seed: number): () => number {
  let s = seed;
  return () => (s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32;
}

/** One patch painted pixel by pixel. */
function patch(colour: (x: number, y: number) => readonly number[], sizePx = SIZE): Uint8Array {
  const px = new Uint8Array(sizePx * sizePx * 3);
  for (let y = 0; y < sizePx; y++) for (let x = 0; x < sizePx; x++) px.set(colour(x, y), (y * sizePx + x) * 3);
  return px;
}

function batchOf(patches: readonly Uint8Array[], sizePx = SIZE, garbage = 0): PatchBatch {
  const pixels = new Uint8Array(patches.length * sizePx * sizePx * 3 + garbage).fill(77);
  patches.forEach((p, k) => pixels.set(p, k * p.length));
  return { pixels, count: patches.length, sizePx };
}

const GLASS = patch(() => [242, 240, 245]);
const PURPLE = patch(() => [110, 65, 160]);
const PINK = patch(() => [228, 150, 200]);
const noise = makeRandom(3);
const TISSUE = patch((x, y) => ((x - 20) ** 2 + (y - 30) ** 2 < 144 || (x - 45) ** 2 + (y - 12) ** 2 < 100 ? [110, 65, 160] : [228 + Math.floor(noise() * 9) - 4, 150, 200]));

async function embed(patches: readonly Uint8Array[], sizePx = SIZE): Promise<Float32Array> {
  return createBuiltinModel(manifest).embed(batchOf(patches, sizePx));
}

describe('the stain-texture manifest and model', () => {
  it('parses, and the model matches it', () => {
    expect(manifest).toMatchObject({ id: 'stain-texture', format: 'builtin', output: { dim: 32, pooling: 'none' }, input: { sizePx: 224, layout: 'NHWC' }, maxBatch: 64 });
    const model = createBuiltinModel(manifest);
    expect(model.dim).toBe(32);
    expect(STAIN_TEXTURE_DIM).toBe(32);
    expect(new Set(STAIN_TEXTURE_FEATURES).size).toBe(32);
    expect(model.backend).toBe(BUILTIN_BACKEND);
    expect(model.manifest).toBe(manifest);
  });

  it('refuses a manifest of another format or dimension', () => {
    expect(() => createBuiltinModel({ ...manifest, output: { ...manifest.output, dim: 31 } })).toThrow(ManifestError);
    expect(() => createBuiltinModel({ ...manifest, format: 'onnx', file: 'x.onnx' })).toThrow(ManifestError);
  });

  it('refuses a short buffer and calls after close', async () => {
    const model = createBuiltinModel(manifest);
    await expect(model.embed({ pixels: new Uint8Array(100), count: 1, sizePx: SIZE })).rejects.toThrow(RangeError);
    await model.close();
    await model.close();
    await expect(model.embed(batchOf([GLASS]))).rejects.toThrow(/closed/);
  });
});

describe('stain-texture features', () => {
  it('are deterministic, finite and on comparable scales', async () => {
    const patches = [GLASS, PURPLE, PINK, TISSUE, patch(() => [Math.floor(noise() * 256), Math.floor(noise() * 256), Math.floor(noise() * 256)])];
    const a = await embed(patches);
    const b = await createBuiltinModel(manifest).embed(batchOf(patches));
    expect(a.length).toBe(patches.length * 32);
    expect(Array.from(b)).toEqual(Array.from(a));
    for (const v of a) {
      expect(Number.isFinite(v)).toBe(true);
      expect(Math.abs(v)).toBeLessThan(2.5);
    }
  });

  it('a batch of n equals n batches of 1, whatever lies past the batch', async () => {
    const patches = [TISSUE, GLASS, PINK, PURPLE];
    const model = createBuiltinModel(manifest);
    const together = await model.embed(batchOf(patches, SIZE, 5000));
    for (let k = 0; k < patches.length; k++) {
      const alone = await model.embed(batchOf([patches[k]!]));
      expect(Array.from(together.subarray(k * 32, (k + 1) * 32))).toEqual(Array.from(alone));
    }
  });

  it('plain RGB statistics and the histogram', async () => {
    const f = await embed([GLASS, TISSUE]);
    expect(at(f, 'mean_r')).toBeCloseTo(242 / 255, 6);
    expect(at(f, 'std_g')).toBeCloseTo(0, 6);
    expect(at(f, 'od_r')).toBeCloseTo(-Math.log10(243 / 256), 6);
    let sum = 0;
    for (let k = 0; k < 8; k++) sum += at(f, `hist_${k}` as Feature, 1);
    expect(sum).toBeCloseTo(1, 6);
    expect(at(f, 'hist_7')).toBe(1); // luminance 241 ≥ 224
  });

  it('glass: no tissue, no stain', async () => {
    const f = await embed([GLASS]);
    expect(at(f, 'tissue_fraction')).toBe(0);
    expect(at(f, 'saturation_mean')).toBeLessThan(0.03);
    for (const name of ['h_mean', 'e_mean', 'h_p90', 'e_p90'] as const) expect(Math.abs(at(f, name))).toBeLessThan(0.05);
  });

  it('haematoxylin (purple) and eosin (pink) land on their stains', async () => {
    const f = await embed([PURPLE, PINK, GLASS]);
    const [purple, pink, glass] = [0, 1, 2];
    expect(at(f, 'h_mean', purple)).toBeGreaterThan(at(f, 'h_mean', pink) + 0.3);
    expect(at(f, 'h_p90', purple)).toBeGreaterThan(at(f, 'h_p90', pink) + 0.3);
    expect(at(f, 'h_mean', purple)).toBeGreaterThan(at(f, 'e_mean', purple));
    expect(at(f, 'e_mean', pink)).toBeGreaterThan(at(f, 'h_mean', pink));
    expect(at(f, 'e_mean', pink)).toBeGreaterThan(at(f, 'e_mean', glass) + 0.1);
    expect(at(f, 'tissue_fraction', purple)).toBe(1);
    expect(at(f, 'tissue_fraction', pink)).toBe(1);
  });

  it('colour deconvolution recovers the concentrations a pixel was made of', async () => {
    // Ruifrok & Johnston's H and E OD vectors; a pixel of cH haematoxylin and cE eosin has
    // OD = cH·H + cE·E, I = 256·10^-OD - 1.
    const unit = (v: number[]): number[] => v.map((x) => x / Math.hypot(...v));
    const [h, e] = [unit([0.65, 0.7, 0.29]), unit([0.07, 0.99, 0.11])];
    for (const [cH, cE] of [
      [0.5, 0.1],
      [0.1, 0.6],
      [0.8, 0.3],
    ] as const) {
      const rgb = [0, 1, 2].map((c) => Math.round(256 * 10 ** -(cH * h[c]! + cE * e[c]!) - 1));
      const f = await embed([patch(() => rgb)]);
      expect(at(f, 'h_mean')).toBeCloseTo(cH, 1);
      expect(at(f, 'e_mean')).toBeCloseTo(cE, 1);
      expect(Math.abs(at(f, 'dab_mean'))).toBeLessThan(0.05);
      expect(at(f, 'h_p90')).toBeCloseTo(cH, 1);
    }
  });

  it('stain spread: nuclei on 19 % of a patch give H std and an H 90th percentile above the mean', async () => {
    const f = await embed([TISSUE, PINK]);
    expect(at(f, 'h_std', 0)).toBeGreaterThan(0.05);
    expect(at(f, 'h_std', 1)).toBeLessThan(0.01);
    expect(at(f, 'h_p90', 0)).toBeGreaterThan(at(f, 'h_mean', 0));
  });

  it('texture: a checkerboard and noise have gradients a flat patch lacks', async () => {
    const flat = patch(() => [200, 150, 190]);
    const checker = patch((x, y) => (((x >> 2) + (y >> 2)) % 2 ? [230, 170, 210] : [120, 70, 160]));
    const random = makeRandom(9);
    const grainy = patch(() => {
      const v = 100 + Math.floor(random() * 120);
      return [v, v - 40, v];
    });
    const f = await embed([flat, checker, grainy]);
    expect(at(f, 'sobel_mean', 0)).toBe(0);
    expect(at(f, 'sobel_std', 0)).toBe(0);
    expect(at(f, 'laplacian_std', 0)).toBe(0);
    expect(at(f, 'glcm_contrast', 0)).toBe(0);
    expect(at(f, 'glcm_homogeneity', 0)).toBe(1);
    expect(at(f, 'glcm_energy', 0)).toBe(1);
    for (const k of [1, 2]) {
      expect(at(f, 'sobel_mean', k)).toBeGreaterThan(0.05);
      expect(at(f, 'laplacian_std', k)).toBeGreaterThan(0.02);
      expect(at(f, 'glcm_contrast', k)).toBeGreaterThan(0.01);
      expect(at(f, 'glcm_homogeneity', k)).toBeLessThan(0.95);
      expect(at(f, 'glcm_energy', k)).toBeLessThan(0.9);
    }
    // Noise changes from pixel to pixel; 4-px checks only at their edges.
    expect(at(f, 'laplacian_std', 2)).toBeGreaterThan(at(f, 'laplacian_std', 1));
    expect(at(f, 'sobel_std', 1)).toBeGreaterThan(0);
  });

  it('works at any patch size, down to 1 px', async () => {
    for (const size of [1, 2, 3, 224]) {
      const f = await embed([patch(() => [110, 65, 160], size)], size);
      expect(f.length).toBe(32);
      expect(at(f, 'h_mean')).toBeGreaterThan(0.3);
      expect(at(f, 'sobel_mean')).toBe(0);
    }
  });
});
