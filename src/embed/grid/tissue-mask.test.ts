import { describe, expect, it } from 'vitest';
import { BadRequestError } from '../../errors.js';
import { patchReadRect, planPatchGrid } from './patch-grid.js';
import { detectTissue, selectTissuePatches, TISSUE_DEFAULTS, tissueFraction, type TissueMask } from './tissue-mask.js';

type Rgb = readonly [number, number, number];

const GLASS: Rgb = [243, 241, 246];
const PINK: Rgb = [228, 150, 200];
const PURPLE: Rgb = [110, 65, 160];

function makeRandom(seed: number): () => number {
  let s = seed;
  return () => (s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32;
}

/** An image painted pixel by pixel, with ±3 of noise per channel as a scanner's glass has. */
function paint(widthPx: number, heightPx: number, colour: (x: number, y: number) => Rgb, seed = 1) {
  const random = makeRandom(seed);
  const data = new Uint8Array(widthPx * heightPx * 3);
  for (let y = 0; y < heightPx; y++) {
    for (let x = 0; x < widthPx; x++) {
      const c = colour(x, y);
      for (let k = 0; k < 3; k++) data[(y * widthPx + x) * 3 + k] = Math.max(0, Math.min(255, c[k]! + Math.floor(random() * 7) - 3));
    }
  }
  return { data, widthPx, heightPx, channels: 3 as const };
}

/** Glass with an H&E disc: pink stroma dotted with purple nuclei. */
function blobSlide(widthPx: number, heightPx: number, cx: number, cy: number, r: number) {
  const inside = (x: number, y: number): boolean => (x + 0.5 - cx) ** 2 + (y + 0.5 - cy) ** 2 < r * r;
  const image = paint(widthPx, heightPx, (x, y) => (!inside(x, y) ? GLASS : (x * 7 + y * 13) % 5 === 0 ? PURPLE : PINK));
  return { image, inside };
}

/** Exact area-weighted tissue fraction of a level-0 rectangle, pixel by pixel. */
function bruteFraction(mask: TissueMask, x0: number, y0: number, w: number, h: number): number {
  const ds = mask.downsample;
  const [mx0, mx1, my0, my1] = [x0 / ds, (x0 + w) / ds, y0 / ds, (y0 + h) / ds];
  let tissue = 0;
  for (let y = 0; y < mask.heightPx; y++) {
    const oy = Math.max(0, Math.min(my1, y + 1) - Math.max(my0, y));
    if (oy === 0) continue;
    for (let x = 0; x < mask.widthPx; x++) {
      const ox = Math.max(0, Math.min(mx1, x + 1) - Math.max(mx0, x));
      tissue += ox * oy * mask.data[y * mask.widthPx + x]!;
    }
  }
  return tissue / ((mx1 - mx0) * (my1 - my0));
}

describe('detectTissue', () => {
  it('covers an H&E blob on glass to the pixel', () => {
    const { image, inside } = blobSlide(200, 150, 90, 70, 35);
    const mask = detectTissue(image, 16);
    expect(mask).toMatchObject({ widthPx: 200, heightPx: 150, downsample: 16 });
    let wrong = 0;
    let blob = 0;
    for (let y = 0; y < 150; y++) {
      for (let x = 0; x < 200; x++) {
        const expected = inside(x, y) ? 1 : 0;
        blob += expected;
        const d = Math.hypot(x + 0.5 - 90, y + 0.5 - 70);
        // Only pixels within 1.5 px of the edge may disagree.
        if (Math.abs(d - 35) > 1.5 && mask.data[y * 200 + x] !== expected) wrong++;
      }
    }
    expect(wrong).toBe(0);
    expect(Math.abs(mask.tissuePx - blob)).toBeLessThan(2 * Math.PI * 35 * 1.5);
    expect(mask.threshold).toBeGreaterThanOrEqual(TISSUE_DEFAULTS.minThreshold);
    expect(mask.threshold).toBeLessThanOrEqual(TISSUE_DEFAULTS.maxThreshold);
  });

  it('finds no tissue on plain glass, even tinted glass', () => {
    expect(detectTissue(paint(120, 90, () => GLASS), 32)).toMatchObject({ tissuePx: 0, threshold: TISSUE_DEFAULTS.minThreshold });
    // Saturation 0.09 but bright: glass with a blue cast, not tissue.
    expect(detectTissue(paint(120, 90, () => [225, 232, 248]), 32).tissuePx).toBe(0);
  });

  it('leaves out a black scanner border and dark ink, and they do not move the threshold', () => {
    const { image: plain } = blobSlide(200, 150, 90, 70, 35);
    const framed = paint(200, 150, (x, y) => {
      if (x < 8 || y < 8 || x >= 192 || y >= 142) return [4, 4, 4];
      if (y >= 120 && y < 126 && x > 20 && x < 180) return [20, 22, 38]; // a dark blue pen line, saturation 0.47
      return (x + 0.5 - 90) ** 2 + (y + 0.5 - 70) ** 2 < 35 * 35 ? ((x * 7 + y * 13) % 5 === 0 ? PURPLE : PINK) : GLASS;
    });
    const mask = detectTissue(framed, 16);
    for (let y = 0; y < 150; y++) {
      for (let x = 0; x < 200; x++) {
        if (x < 8 || y < 8 || x >= 192 || y >= 142 || (y >= 120 && y < 126)) expect(mask.data[y * 200 + x]).toBe(0);
      }
    }
    expect(mask.tissuePx).toBe(detectTissue(plain, 16).tissuePx);
  });

  it('keeps pale stroma on a slide that is mostly dense tissue', () => {
    // 60 % dense purple, 30 % pale pink (saturation ≈ 0.2), 10 % glass: Otsu alone splits pale from dense.
    const pale: Rgb = [230, 185, 215];
    const image = paint(100, 100, (_x, y) => (y < 60 ? PURPLE : y < 90 ? pale : GLASS));
    const mask = detectTissue(image, 8);
    expect(mask.threshold).toBe(TISSUE_DEFAULTS.maxThreshold);
    let paleTissue = 0;
    for (let p = 6000; p < 9000; p++) paleTissue += mask.data[p]!;
    expect(paleTissue).toBe(3000);
    expect(mask.tissuePx).toBe(9000);
  });

  it('checks its input', () => {
    expect(() => detectTissue({ data: new Uint8Array(10), widthPx: 4, heightPx: 4 }, 1)).toThrow(RangeError);
    expect(() => detectTissue(paint(4, 4, () => GLASS), 0)).toThrow(RangeError);
  });
});

describe('tissueFraction', () => {
  const random = makeRandom(42);
  const cells = Array.from({ length: 60 * 45 }, () => random() < 0.4);
  const image = paint(60, 45, (x, y) => (cells[y * 60 + x] ? PURPLE : GLASS));
  const mask = detectTissue(image, 12.5);

  it('reads the mask as painted', () => {
    expect(Array.from(mask.data)).toEqual(cells.map((c) => (c ? 1 : 0)));
  });

  it('equals the exact area-weighted brute force, at fractional edges and past the mask', () => {
    for (let trial = 0; trial < 400; trial++) {
      const size = 1 + random() * 400;
      const x0 = -100 + random() * 800;
      const y0 = -100 + random() * 600;
      const height = trial % 3 === 0 ? 1 + random() * 300 : size;
      expect(tissueFraction(mask, x0, y0, size, height), JSON.stringify({ x0, y0, size, height })).toBeCloseTo(bruteFraction(mask, x0, y0, size, height), 9);
    }
  });

  it('is 1 inside all-tissue, 0 outside the mask or for empty squares', () => {
    const full = detectTissue(paint(10, 10, () => PURPLE), 4);
    expect(tissueFraction(full, 3.3, 7.9, 20)).toBe(1);
    expect(tissueFraction(full, 40, 0, 10)).toBe(0);
    expect(tissueFraction(full, -20, -20, 10)).toBe(0);
    expect(tissueFraction(full, 0, 0, 0)).toBe(0);
    // Half outside the mask: the outside half counts as glass.
    expect(tissueFraction(full, 20, 0, 40)).toBeCloseTo(0.5, 12);
  });
});

describe('selectTissuePatches', () => {
  // A 4000 x 3000 level 0 at 0.5 µm/px; its thumbnail is 20x smaller with a blob in the middle.
  const level0 = { index: 0, widthPx: 4000, heightPx: 3000, downsample: 1, mppX: 0.5, mppY: 0.5 };
  const plan = planPatchGrid([level0], { mpp: 0.5, patchSizePx: 224 });
  const mask = detectTissue(blobSlide(200, 150, 100, 75, 40).image, 20);

  it('minTissue 0: every patch, row-major', () => {
    const all = selectTissuePatches(plan, mask, 0);
    expect(all.count).toBe(plan.count);
    expect(plan.count).toBe(17 * 13);
    expect(Array.from(all.cols.subarray(0, 19))).toEqual([...Array.from({ length: 17 }, (_, i) => i), 0, 1]);
    expect(Array.from(all.rows.subarray(15, 19))).toEqual([0, 0, 1, 1]);
  });

  it('keeps exactly the patches with enough tissue, with their fractions', () => {
    const selected = selectTissuePatches(plan, mask, 0.5);
    expect(selected.count).toBeGreaterThan(10);
    expect(selected.count).toBeLessThan(plan.count);
    expect(selected.cols.length).toBe(selected.count);
    const kept = new Set<string>();
    for (let k = 0; k < selected.count; k++) {
      kept.add(`${selected.cols[k]},${selected.rows[k]}`);
      if (k > 0) expect(selected.rows[k]! * plan.cols + selected.cols[k]!).toBeGreaterThan(selected.rows[k - 1]! * plan.cols + selected.cols[k - 1]!);
    }
    for (let row = 0; row < plan.rows; row++) {
      for (let col = 0; col < plan.cols; col++) {
        const r = patchReadRect(plan, col, row);
        const f = bruteFraction(mask, r.xPx, r.yPx, r.widthPx, r.heightPx);
        expect(kept.has(`${col},${row}`), `${col},${row}: ${f}`).toBe(f >= 0.5);
      }
    }
    // The centre patch (level-0 2000, 1500) is all tissue; the corner is glass.
    const centre = [...kept].indexOf(`${Math.floor(2000 / 224)},${Math.floor(1500 / 224)}`);
    expect(selected.tissueFraction[centre]).toBe(1);
    expect(kept.has('0,0')).toBe(false);
  });

  it('rejects minTissue outside 0..1', () => {
    for (const bad of [-0.1, 1.5, Number.NaN]) expect(() => selectTissuePatches(plan, mask, bad)).toThrow(BadRequestError);
    expect(selectTissuePatches(plan, mask, 1).count).toBeGreaterThan(0);
  });
});
