/**
 * Tissue detection on a low-resolution image of a brightfield (H&E) slide, and the patches of a grid
 * that are worth embedding. Pure: the caller reads a small level or the thumbnail and passes its pixels.
 *
 * Method. Glass is bright and grey; stained tissue is coloured. Per pixel:
 *   saturation s = (max - min) / max of R, G, B (0 for black), quantised to 256 bins;
 *   near-black  = max ≤ blackLevel (50): pen ink, scanner borders, dust; never tissue and left out of
 *                 the threshold search so a black frame cannot drag the threshold;
 *   near-white  = min ≥ whiteLevel (220): glass with a colour cast still reads as glass.
 * The saturation threshold is Otsu's (the split of the histogram with the largest between-class
 * variance), clamped to [0.07, 0.15]: the floor keeps an all-glass image (saturation noise ≈ 0.01-0.05)
 * from being split in two, which would call half the glass tissue; the ceiling keeps a slide that is
 * nearly all tissue, or has a strongly saturated ink mark, from losing its pale stroma (s ≈ 0.15-0.2)
 * when Otsu splits pale from dense tissue instead of tissue from glass. A pixel is tissue when s ≥ threshold and it is neither near-black nor near-white.
 * No morphology is applied: patches are judged by the fraction of tissue under them, which already
 * averages isolated pixels away. Coloured pen marks (blue, green) are saturated and read as tissue;
 * only near-black ink is left out.
 */
import { BadRequestError } from '../../errors.js';
import type { RgbImage } from '../../tiles/codecs/types.js';
import { patchReadRect, type PatchGridPlan } from './patch-grid.js';

export interface TissueMaskOptions {
  /** Lowest saturation threshold Otsu may choose. @default 0.07 */
  minThreshold?: number;
  /** Highest saturation threshold Otsu may choose. @default 0.15 */
  maxThreshold?: number;
  /** A pixel whose darkest channel is at least this is glass. @default 220 */
  whiteLevel?: number;
  /** A pixel whose brightest channel is at most this is ink or border. @default 50 */
  blackLevel?: number;
}

export const TISSUE_DEFAULTS = { minThreshold: 0.07, maxThreshold: 0.15, whiteLevel: 220, blackLevel: 50 } as const;

export interface TissueMask {
  widthPx: number;
  heightPx: number;
  /** Level-0 px per mask px. */
  downsample: number;
  /** 1 = tissue, row-major. */
  data: Uint8Array;
  /** The saturation threshold used, 0..1. */
  threshold: number;
  /** Mask pixels that are tissue. */
  tissuePx: number;
  /** Summed-area table, (widthPx + 1) x (heightPx + 1): entry (x, y) = tissue pixels above and left of (x, y). */
  integral: Uint32Array;
}

/** The patches to embed, in row-major grid order. */
export interface TissueSelection {
  cols: Int32Array;
  rows: Int32Array;
  tissueFraction: Float32Array;
  count: number;
}

/** Otsu's threshold over a histogram: the last bin of the lower class. */
function otsu(histogram: Float64Array): number {
  let total = 0;
  let sum = 0;
  for (let i = 0; i < histogram.length; i++) {
    total += histogram[i]!;
    sum += i * histogram[i]!;
  }
  let best = 0;
  let bestVariance = -1;
  let weightLow = 0;
  let sumLow = 0;
  for (let t = 0; t < histogram.length - 1; t++) {
    weightLow += histogram[t]!;
    sumLow += t * histogram[t]!;
    const weightHigh = total - weightLow;
    if (weightLow === 0 || weightHigh === 0) continue;
    const meanDiff = sumLow / weightLow - (sum - sumLow) / weightHigh;
    const variance = weightLow * weightHigh * meanDiff * meanDiff;
    if (variance > bestVariance) {
      bestVariance = variance;
      best = t;
    }
  }
  return best;
}

/**
 * The tissue mask of `image`, a picture of the whole slide `downsample` times smaller than level 0
 * (level width / image width when the caller resized a level).
 */
export function detectTissue(image: Pick<RgbImage, 'widthPx' | 'heightPx'> & { data: Uint8Array }, downsample: number, options: TissueMaskOptions = {}): TissueMask {
  const { widthPx, heightPx, data } = image;
  const minThreshold = options.minThreshold ?? TISSUE_DEFAULTS.minThreshold;
  const maxThreshold = options.maxThreshold ?? TISSUE_DEFAULTS.maxThreshold;
  const whiteLevel = options.whiteLevel ?? TISSUE_DEFAULTS.whiteLevel;
  const blackLevel = options.blackLevel ?? TISSUE_DEFAULTS.blackLevel;
  if (!(Number.isFinite(downsample) && downsample > 0)) throw new RangeError(`downsample must be positive, not ${downsample}`);
  const pixels = widthPx * heightPx;
  if (data.length < pixels * 3) throw new RangeError(`image of ${widthPx} x ${heightPx} needs ${pixels * 3} bytes, has ${data.length}`);

  // Pass 1: saturation bins, and which pixels may be tissue at all.
  const bins = new Uint8Array(pixels);
  const candidate = new Uint8Array(pixels);
  const histogram = new Float64Array(256);
  for (let p = 0, i = 0; p < pixels; p++, i += 3) {
    const r = data[i]!;
    const g = data[i + 1]!;
    const b = data[i + 2]!;
    const max = r > g ? (r > b ? r : b) : g > b ? g : b;
    const min = r < g ? (r < b ? r : b) : g < b ? g : b;
    if (max <= blackLevel) continue;
    const bin = Math.floor(((max - min) * 255) / max);
    bins[p] = bin;
    histogram[bin]!++;
    if (min < whiteLevel) candidate[p] = 1;
  }

  const otsuThreshold = (otsu(histogram) + 1) / 255;
  const threshold = Math.min(maxThreshold, Math.max(minThreshold, otsuThreshold));
  const thresholdBin = Math.ceil(threshold * 255 - 1e-9);

  // Pass 2: the mask and its summed-area table.
  const mask = new Uint8Array(pixels);
  const stride = widthPx + 1;
  const integral = new Uint32Array(stride * (heightPx + 1));
  let tissuePx = 0;
  for (let y = 0; y < heightPx; y++) {
    let rowSum = 0;
    const rowStart = y * widthPx;
    for (let x = 0; x < widthPx; x++) {
      const p = rowStart + x;
      const t = candidate[p] === 1 && bins[p]! >= thresholdBin ? 1 : 0;
      mask[p] = t;
      rowSum += t;
      integral[(y + 1) * stride + x + 1] = integral[y * stride + x + 1]! + rowSum;
    }
    tissuePx += rowSum;
  }
  return { widthPx, heightPx, downsample, data: mask, threshold, tissuePx, integral };
}

/**
 * Tissue area above and left of the real point (x, y) in mask px. Bilinear interpolation of the
 * summed-area table is exact here: inside one mask pixel the area integral grows linearly along each
 * axis, with the pixel's own value as the cross term.
 */
function areaAt(mask: TissueMask, x: number, y: number): number {
  const stride = mask.widthPx + 1;
  let i = Math.floor(x);
  let fx = x - i;
  if (i >= mask.widthPx) {
    i = mask.widthPx - 1;
    fx = 1;
  }
  let j = Math.floor(y);
  let fy = y - j;
  if (j >= mask.heightPx) {
    j = mask.heightPx - 1;
    fy = 1;
  }
  const s = mask.integral;
  const a = s[j * stride + i]!;
  const b = s[j * stride + i + 1]!;
  const c = s[(j + 1) * stride + i]!;
  const d = s[(j + 1) * stride + i + 1]!;
  return a + fx * (b - a) + fy * (c - a) + fx * fy * (d - b - c + a);
}

/**
 * Fraction of the level-0 square (x0, y0, size) (or rectangle, with `heightLevel0Px`) covered by
 * tissue, in O(1). Mask pixels the square only partly covers count by the area covered, so the answer
 * is the exact area-weighted mean of the mask; parts of the square outside the mask count as glass.
 */
export function tissueFraction(mask: TissueMask, x0Level0Px: number, y0Level0Px: number, sizeLevel0Px: number, heightLevel0Px = sizeLevel0Px): number {
  if (!(sizeLevel0Px > 0 && heightLevel0Px > 0) || mask.widthPx === 0 || mask.heightPx === 0) return 0;
  const ds = mask.downsample;
  const clampX = (v: number): number => Math.min(mask.widthPx, Math.max(0, v));
  const clampY = (v: number): number => Math.min(mask.heightPx, Math.max(0, v));
  const x0 = clampX(x0Level0Px / ds);
  const x1 = clampX((x0Level0Px + sizeLevel0Px) / ds);
  const y0 = clampY(y0Level0Px / ds);
  const y1 = clampY((y0Level0Px + heightLevel0Px) / ds);
  if (x1 <= x0 || y1 <= y0) return 0;
  const tissue = areaAt(mask, x1, y1) - areaAt(mask, x0, y1) - areaAt(mask, x1, y0) + areaAt(mask, x0, y0);
  const area = (sizeLevel0Px / ds) * (heightLevel0Px / ds);
  return Math.min(1, Math.max(0, tissue / area));
}

/**
 * The grid's patches with at least `minTissue` of their area on tissue (0 → every patch), in row-major
 * order, with their tissue fractions. Fractions are measured over the exact level-0 square each patch
 * is read from.
 */
export function selectTissuePatches(plan: PatchGridPlan, mask: TissueMask, minTissue: number): TissueSelection {
  if (!(Number.isFinite(minTissue) && minTissue >= 0 && minTissue <= 1)) {
    throw new BadRequestError(`minTissue must be a fraction between 0 and 1, not ${minTissue}`);
  }
  const cols = new Int32Array(plan.count);
  const rows = new Int32Array(plan.count);
  const fractions = new Float32Array(plan.count);
  const widthLevel0Px = plan.readSizeLevelPx * plan.levelDownsample;
  const heightLevel0Px = plan.readSizeLevelPx * plan.levelDownsampleY;
  // A fraction computed as 0.4999999 for an exact half must still pass minTissue 0.5.
  const cutoff = minTissue - 1e-9;
  let count = 0;
  for (let row = 0; row < plan.rows; row++) {
    for (let col = 0; col < plan.cols; col++) {
      const rect = patchReadRect(plan, col, row);
      const f = tissueFraction(mask, rect.xPx * plan.levelDownsample, rect.yPx * plan.levelDownsampleY, widthLevel0Px, heightLevel0Px);
      if (f < cutoff) continue;
      cols[count] = col;
      rows[count] = row;
      fractions[count] = f;
      count++;
    }
  }
  return { cols: cols.slice(0, count), rows: rows.slice(0, count), tissueFraction: fractions.slice(0, count), count };
}
