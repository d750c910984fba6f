/**
 * The built-in 'stain-texture' model: 32 hand-made features per patch, no weights, so the gateway
 * embeds out of the box and a pipeline can be tested without a foundation model. Deterministic: the
 * same pixels always give the same bits (fixed summation order, float64 accumulators, tables built once).
 *
 *  #      feature                                      scale (typical tissue)
 *  0-2    mean R, G, B / 255                           0..1
 *  3-5    std R, G, B / 255                            0..0.5
 *  6-8    mean optical density R, G, B                 0..2.41 (0.05..1)
 *  9-11   haematoxylin: mean, std, 90th percentile     OD units (0..1.5)
 *  12-14  eosin: mean, std, 90th percentile            OD units (0..1.5)
 *  15     DAB channel mean (the H&E residual)          OD units, near 0 for H&E
 *  16     tissue fraction (no glass, black ink)        0..1
 *  17     mean saturation (max - min) / max            0..1
 *  18-19  Sobel gradient magnitude mean, std           luminance 0..1 per px, /4: 0..1.41
 *  20     Laplacian std (square root of its variance)  luminance 0..1, /4: 0..1
 *  21     grey-level co-occurrence contrast            0..1 (divided by 7²)
 *  22     co-occurrence homogeneity Σp/(1+(i-j)²)      0..1
 *  23     co-occurrence energy √Σp²                    0..1
 *  24-31  luminance histogram, 8 bins of 32 levels     fractions, sum 1
 *
 * Every feature lies within about ±2.5, so plain Euclidean or cosine distances weigh them alike
 * without a scaler.
 * Optical density: OD = -log10((I + 1) / 256) from a 256-entry table. Stain concentrations by colour
 * deconvolution (Ruifrok & Johnston, Anal Quant Cytol Histol 2001): OD = c · M with M's rows the unit
 * H, E and DAB OD vectors, so c = OD · M⁻¹; each channel's share of each stain is a table too, so a
 * pixel costs six lookups. Percentiles come from 0.01-wide histograms (concentrations clamped at 0).
 * Texture runs on luminance (77R + 150G + 29B) / 256: Sobel and Laplacian over the interior pixels,
 * co-occurrence at distance 1, right and down neighbours, symmetric, on 8 grey levels.
 */
import { TISSUE_DEFAULTS } from '../grid/tissue-mask.js';
import { ManifestError, type ModelManifest } from '../models/manifest.js';
import type { EmbeddingModel, PatchBatch } from './types.js';

export const STAIN_TEXTURE_FEATURES = [
  'mean_r', 'mean_g', 'mean_b', 'std_r', 'std_g', 'std_b',
  'od_r', 'od_g', 'od_b',
  'h_mean', 'h_std', 'h_p90', 'e_mean', 'e_std', 'e_p90', 'dab_mean',
  'tissue_fraction', 'saturation_mean',
  'sobel_mean', 'sobel_std', 'laplacian_std',
  'glcm_contrast', 'glcm_homogeneity', 'glcm_energy',
  'hist_0', 'hist_1', 'hist_2', 'hist_3', 'hist_4', 'hist_5', 'hist_6', 'hist_7',
] as const;

export const STAIN_TEXTURE_DIM = STAIN_TEXTURE_FEATURES.length;
export const BUILTIN_BACKEND = 'builtin stain-texture v1';

/** Ruifrok-Johnston stain OD vectors (R, G, B): haematoxylin, eosin, DAB. Normalised below. */
const STAINS = [
  [0.65, 0.7, 0.29],
  [0.07, 0.99, 0.11],
  [0.27, 0.57, 0.78],
] as const;

/** The tissue mask's pixel rules (its fixed floor threshold: a patch has no histogram worth Otsu's). */
const BLACK_LEVEL = TISSUE_DEFAULTS.blackLevel;
const WHITE_LEVEL = TISSUE_DEFAULTS.whiteLevel;
const MIN_SATURATION_PERCENT = Math.round(TISSUE_DEFAULTS.minThreshold * 100);

function cross(u: readonly number[], v: readonly number[]): number[] {
  return [u[1]! * v[2]! - u[2]! * v[1]!, u[2]! * v[0]! - u[0]! * v[2]!, u[0]! * v[1]! - u[1]! * v[0]!];
}

const OD = new Float64Array(256);
for (let v = 0; v < 256; v++) OD[v] = -Math.log10((v + 1) / 256);

/**
 * STAIN_FROM_CHANNEL[stain][channel][v]: that stain's concentration contributed by channel value v.
 * Column k of M⁻¹ is (row k+1 × row k+2) / det M, det M = row 0 · (row 1 × row 2).
 */
const STAIN_FROM_CHANNEL: Float64Array[][] = (() => {
  const rows = STAINS.map((s) => s.map((x) => x / Math.hypot(...s)));
  const columns = [0, 1, 2].map((k) => cross(rows[(k + 1) % 3]!, rows[(k + 2) % 3]!));
  const det = rows[0]!.reduce((sum, x, c) => sum + x * columns[0]![c]!, 0);
  return columns.map((column) =>
    column.map((coefficient) => {
      const table = new Float64Array(256);
      for (let v = 0; v < 256; v++) table[v] = (OD[v]! * coefficient) / det;
      return table;
    }),
  );
})();
const [H_R, H_G, H_B] = STAIN_FROM_CHANNEL[0]! as [Float64Array, Float64Array, Float64Array];
const [E_R, E_G, E_B] = STAIN_FROM_CHANNEL[1]! as [Float64Array, Float64Array, Float64Array];
const [D_R, D_G, D_B] = STAIN_FROM_CHANNEL[2]! as [Float64Array, Float64Array, Float64Array];

const RECIPROCAL = new Float64Array(256);
for (let v = 1; v < 256; v++) RECIPROCAL[v] = 1 / v;

/** Reused between patches: allocated once per patch size. */
export interface StainTextureScratch {
  sizePx: number;
  luminance: Uint8Array;
  histR: Float64Array;
  histG: Float64Array;
  histB: Float64Array;
  histH: Float64Array;
  histE: Float64Array;
  histLum: Float64Array;
  glcm: Float64Array;
}

export function createStainTextureScratch(sizePx: number): StainTextureScratch {
  return {
    sizePx,
    luminance: new Uint8Array(sizePx * sizePx),
    histR: new Float64Array(256),
    histG: new Float64Array(256),
    histB: new Float64Array(256),
    histH: new Float64Array(256),
    histE: new Float64Array(256),
    histLum: new Float64Array(8),
    glcm: new Float64Array(64),
  };
}

/** Concentration → 0.01-wide histogram bin, clamped to 0..2.55. */
function concentrationBin(c: number): number {
  return c <= 0 ? 0 : c >= 2.55 ? 255 : (c * 100) | 0;
}

function percentile(hist: Float64Array, total: number, q: number): number {
  const target = q * total;
  let seen = 0;
  for (let bin = 0; bin < hist.length; bin++) {
    seen += hist[bin]!;
    if (seen >= target) return (bin + 0.5) / 100;
  }
  return (hist.length - 0.5) / 100;
}

/** Mean and std of a value table weighted by a histogram of 8-bit values. */
function tableStats(hist: Float64Array, table: Float64Array | undefined, total: number): [number, number] {
  let sum = 0;
  let sumSq = 0;
  for (let v = 0; v < 256; v++) {
    const n = hist[v]!;
    if (n === 0) continue;
    const x = table ? table[v]! : v;
    sum += n * x;
    sumSq += n * x * x;
  }
  const mean = sum / total;
  return [mean, Math.sqrt(Math.max(0, sumSq / total - mean * mean))];
}

/**
 * Writes the 32 features of the `sizePx` x `sizePx` RGB patch at `pixels[offset]` to `out[outOffset]`.
 * Patches smaller than 3 px have no interior: their texture features are 0.
 */
export function stainTextureFeatures(pixels: Uint8Array, offset: number, sizePx: number, out: Float32Array, outOffset: number, scratch: StainTextureScratch = createStainTextureScratch(sizePx)): void {
  const n = sizePx * sizePx;
  const { luminance: lum, histR, histG, histB, histH, histE, histLum, glcm } = scratch;
  for (const h of [histR, histG, histB, histH, histE, histLum, glcm]) h.fill(0);

  // Pass 1: colour. Channel histograms give the RGB and OD statistics and the stain means (linear in
  // OD) without per-pixel floating point; only the stain spreads need each pixel's concentration.
  let sumH2 = 0;
  let sumE2 = 0;
  let tissue = 0;
  let saturation = 0;
  for (let p = 0, i = offset; p < n; p++, i += 3) {
    const r = pixels[i]!;
    const g = pixels[i + 1]!;
    const b = pixels[i + 2]!;
    histR[r]!++;
    histG[g]!++;
    histB[b]!++;
    const h = H_R[r]! + H_G[g]! + H_B[b]!;
    const e = E_R[r]! + E_G[g]! + E_B[b]!;
    sumH2 += h * h;
    sumE2 += e * e;
    histH[concentrationBin(h)]!++;
    histE[concentrationBin(e)]!++;
    const max = r > g ? (r > b ? r : b) : g > b ? g : b;
    const min = r < g ? (r < b ? r : b) : g < b ? g : b;
    saturation += (max - min) * RECIPROCAL[max]!;
    if (max > BLACK_LEVEL && min < WHITE_LEVEL && (max - min) * 100 >= MIN_SATURATION_PERCENT * max) tissue++;
    const y = (77 * r + 150 * g + 29 * b + 128) >> 8;
    lum[p] = y;
    histLum[y >> 5]!++;
  }

  const [meanR, stdR] = tableStats(histR, undefined, n);
  const [meanG, stdG] = tableStats(histG, undefined, n);
  const [meanB, stdB] = tableStats(histB, undefined, n);
  const [odR] = tableStats(histR, OD, n);
  const [odG] = tableStats(histG, OD, n);
  const [odB] = tableStats(histB, OD, n);
  const meanOf = (tr: Float64Array, tg: Float64Array, tb: Float64Array): number => tableStats(histR, tr, n)[0] + tableStats(histG, tg, n)[0] + tableStats(histB, tb, n)[0];
  const hMean = meanOf(H_R, H_G, H_B);
  const eMean = meanOf(E_R, E_G, E_B);
  const dMean = meanOf(D_R, D_G, D_B);

  // Pass 2: texture on luminance. Sobel and Laplacian over interior pixels (no padding to invent);
  // co-occurrence of each pixel with its right and lower neighbours on 8 grey levels.
  let sobelSum = 0;
  let sobelSq = 0;
  let lapSum = 0;
  let lapSq = 0;
  for (let y = 0; y < sizePx; y++) {
    const row = y * sizePx;
    for (let p = row; p < row + sizePx - 1; p++) glcm[(lum[p]! >> 5) * 8 + (lum[p + 1]! >> 5)]!++;
    if (y === sizePx - 1) break;
    for (let p = row; p < row + sizePx; p++) glcm[(lum[p]! >> 5) * 8 + (lum[p + sizePx]! >> 5)]!++;
  }
  for (let y = 1; y < sizePx - 1; y++) {
    const row = y * sizePx;
    for (let p = row + 1; p < row + sizePx - 1; p++) {
      const up = p - sizePx;
      const down = p + sizePx;
      const tl = lum[up - 1]!;
      const tm = lum[up]!;
      const tr = lum[up + 1]!;
      const ml = lum[p - 1]!;
      const mr = lum[p + 1]!;
      const bl = lum[down - 1]!;
      const bm = lum[down]!;
      const br = lum[down + 1]!;
      const gx = tr + 2 * mr + br - tl - 2 * ml - bl;
      const gy = bl + 2 * bm + br - tl - 2 * tm - tr;
      const magnitude = Math.sqrt(gx * gx + gy * gy);
      sobelSum += magnitude;
      sobelSq += magnitude * magnitude;
      const lap = tm + bm + ml + mr - 4 * lum[p]!;
      lapSum += lap;
      lapSq += lap * lap;
    }
  }
  const interior = Math.max(0, sizePx - 2) ** 2;
  const gain = 4 * 255;
  const sobelMean = interior ? sobelSum / interior : 0;
  const sobelStd = interior ? Math.sqrt(Math.max(0, sobelSq / interior - sobelMean * sobelMean)) : 0;
  const lapMean = interior ? lapSum / interior : 0;
  const lapStd = interior ? Math.sqrt(Math.max(0, lapSq / interior - lapMean * lapMean)) : 0;

  let pairs = 0;
  for (let k = 0; k < 64; k++) pairs += glcm[k]!;
  let contrast = 0;
  let homogeneity = 0;
  let energy = 0;
  if (pairs > 0) {
    for (let i = 0; i < 8; i++) {
      for (let j = 0; j < 8; j++) {
        // Symmetric: a pair counts in both directions.
        const prob = (glcm[i * 8 + j]! + glcm[j * 8 + i]!) / (2 * pairs);
        const d = i - j;
        contrast += prob * d * d;
        homogeneity += prob / (1 + d * d);
        energy += prob * prob;
      }
    }
  }

  const f = [
    meanR / 255, meanG / 255, meanB / 255, stdR / 255, stdG / 255, stdB / 255,
    odR, odG, odB,
    hMean, Math.sqrt(Math.max(0, sumH2 / n - hMean * hMean)), percentile(histH, n, 0.9),
    eMean, Math.sqrt(Math.max(0, sumE2 / n - eMean * eMean)), percentile(histE, n, 0.9),
    dMean,
    tissue / n, saturation / n,
    sobelMean / gain, sobelStd / gain, lapStd / gain,
    contrast / 49, pairs > 0 ? homogeneity : 1, Math.sqrt(energy),
  ];
  for (let k = 0; k < f.length; k++) out[outOffset + k] = f[k]!;
  for (let k = 0; k < 8; k++) out[outOffset + 24 + k] = histLum[k]! / n;
}

/** The built-in model for a manifest with format 'builtin' and output.dim 32. */
export function createBuiltinModel(manifest: ModelManifest): EmbeddingModel {
  if (manifest.format !== 'builtin') throw new ManifestError(`model '${manifest.id}' is ${manifest.format}, not builtin`);
  if (manifest.output.dim !== STAIN_TEXTURE_DIM) {
    throw new ManifestError(`model '${manifest.id}': the builtin stain-texture model has ${STAIN_TEXTURE_DIM} features, the manifest says dim ${manifest.output.dim}`);
  }
  let scratch: StainTextureScratch | undefined;
  let closed = false;
  return {
    manifest,
    dim: STAIN_TEXTURE_DIM,
    backend: BUILTIN_BACKEND,
    embed(batch: PatchBatch): Promise<Float32Array> {
      if (closed) return Promise.reject(new Error(`model '${manifest.id}' is closed`));
      const { pixels, count, sizePx } = batch;
      const patchBytes = sizePx * sizePx * 3;
      if (pixels.length < count * patchBytes) {
        return Promise.reject(new RangeError(`batch of ${count} patches of ${sizePx} px needs ${count * patchBytes} bytes, has ${pixels.length}`));
      }
      if (scratch?.sizePx !== sizePx) scratch = createStainTextureScratch(sizePx);
      const out = new Float32Array(count * STAIN_TEXTURE_DIM);
      for (let k = 0; k < count; k++) stainTextureFeatures(pixels, k * patchBytes, sizePx, out, k * STAIN_TEXTURE_DIM, scratch);
      return Promise.resolve(out);
    },
    close(): Promise<void> {
      closed = true;
      scratch = undefined;
      return Promise.resolve();
    },
  };
}
