import { describe, expect, it } from 'vitest';
import { BadRequestError } from '../../errors.js';
import { MPP_TOLERANCE, patchOriginLevel0Px, patchReadRect, planPatchGrid, type GridLevel } from './patch-grid.js';

/** A pyramid as converters write it: each level's size rounded down, downsample = level-0 width / width. */
function pyramid(widthPx: number, heightPx: number, mpp: number | undefined, factors: readonly number[]): GridLevel[] {
  return factors.map((f, index) => {
    const w = index === 0 ? widthPx : Math.floor(widthPx / f);
    const h = index === 0 ? heightPx : Math.floor(heightPx / f);
    const downsample = widthPx / w;
    return { index, widthPx: w, heightPx: h, downsample, downsampleY: heightPx / h, mppX: mpp === undefined ? undefined : mpp * downsample, mppY: mpp === undefined ? undefined : mpp * downsample };
  });
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof BadRequestError ? err.code : `not a BadRequestError: ${String(err)}`;
  }
  return undefined;
}

describe('planPatchGrid on a 2220 x 2967 slide at 0.499 µm/px with levels /4 and /8', () => {
  const levels = pyramid(2220, 2967, 0.499, [1, 4, 8]);

  it('has the non-power-of-2 sizes converters write', () => {
    expect(levels.map((l) => [l.widthPx, l.heightPx])).toEqual([
      [2220, 2967],
      [555, 741],
      [277, 370],
    ]);
    expect(levels[2]!.downsample).toBeCloseTo(8.0144, 4);
  });

  it('reads 0.5 µm/px from level 0 as is: 0.499 is within tolerance', () => {
    const plan = planPatchGrid(levels, { mpp: 0.5, patchSizePx: 224 });
    expect(plan).toMatchObject({ levelIndex: 0, levelMpp: 0.499, scale: 1, resampled: false, readSizeLevelPx: 224, patchSizeLevel0Px: 224, mppSource: 'metadata' });
    expect(plan.note).toBeUndefined();
    expect(plan.effectiveMpp).toBe(0.499);
    // floor((2220 - 224) / 224) + 1 = 9, floor((2967 - 224) / 224) + 1 = 13
    expect([plan.cols, plan.rows, plan.count]).toEqual([9, 13, 117]);
  });

  it('reads 2 µm/px from level 1 and 4 µm/px from level 2 as is', () => {
    const two = planPatchGrid(levels, { mpp: 2, patchSizePx: 224 });
    expect(two).toMatchObject({ levelIndex: 1, scale: 1, resampled: false, cols: 2, rows: 3 });
    expect(two.levelMpp).toBeCloseTo(1.996, 6);
    expect(two.patchSizeLevel0Px).toBe(896);
    const four = planPatchGrid(levels, { mpp: 4, patchSizePx: 224 });
    expect(four).toMatchObject({ levelIndex: 2, scale: 1, resampled: false, cols: 1, rows: 1 });
    expect(four.patchSizeLevel0Px).toBe(Math.round(224 * (2220 / 277)));
  });

  it('resamples level 0 for 1 µm/px (level 1 is too coarse) and says so', () => {
    const plan = planPatchGrid(levels, { mpp: 1, patchSizePx: 224 });
    expect(plan.levelIndex).toBe(0);
    expect(plan.resampled).toBe(true);
    expect(plan.scale).toBeCloseTo(1 / 0.499, 12);
    expect(plan.readSizeLevelPx).toBe(449); // round(448.9)
    expect(plan.effectiveMpp).toBeCloseTo(1, 12);
    expect(plan.note).toBe('level 0 is 0.499 µm/px; patches are read at 2.004x (449 px) and resized to 224 px for 1 µm/px');
    // floor((2220 / 2.004 - 224) / 224) + 1 = floor(3.945) + 1
    expect(plan.cols).toBe(4);
    expect(plan.rows).toBe(Math.floor((2967 * 0.499 - 224) / 224) + 1);
  });

  it('writes the note of a level read at 2.004x', () => {
    const plan = planPatchGrid(pyramid(40000, 30000, 0.499, [1, 2, 8]), { mpp: 2, patchSizePx: 224 });
    expect(plan.levelIndex).toBe(1);
    expect(plan.note).toBe('level 1 is 0.998 µm/px; patches are read at 2.004x (449 px) and resized to 224 px for 2 µm/px');
  });
});

describe('planPatchGrid on a 3-level pyramid (downsamples 1, 3, 10.5) at 0.25 µm/px', () => {
  const levels: GridLevel[] = [
    { index: 0, widthPx: 31500, heightPx: 21000, downsample: 1, mppX: 0.25, mppY: 0.25 },
    { index: 1, widthPx: 10500, heightPx: 7000, downsample: 3, mppX: 0.75, mppY: 0.75 },
    { index: 2, widthPx: 3000, heightPx: 2000, downsample: 10.5, mppX: 2.625, mppY: 2.625 },
  ];

  it('0.5 µm/px: level 0 read at 2x (level 1 is coarser than asked)', () => {
    const plan = planPatchGrid(levels, { mpp: 0.5, patchSizePx: 224 });
    expect(plan).toMatchObject({ levelIndex: 0, scale: 2, resampled: true, readSizeLevelPx: 448, patchSizeLevel0Px: 448, strideLevelPx: 448 });
    expect([plan.cols, plan.rows]).toEqual([Math.floor((15750 - 224) / 224) + 1, Math.floor((10500 - 224) / 224) + 1]);
    expect(patchReadRect(plan, 3, 2)).toEqual({ xPx: 1344, yPx: 896, widthPx: 448, heightPx: 448 });
  });

  it('0.75 µm/px: level 1 exactly, origins in level 0 px times 3', () => {
    const plan = planPatchGrid(levels, { mpp: 0.75, patchSizePx: 224 });
    expect(plan).toMatchObject({ levelIndex: 1, scale: 1, resampled: false, readSizeLevelPx: 224, patchSizeLevel0Px: 672, cols: 46, rows: 31 });
    expect(patchOriginLevel0Px(plan, 2, 5)).toEqual({ xPx: 448 * 3, yPx: 1120 * 3 });
  });

  it('2 µm/px: level 1 read at 2.667x; level 2 (2.625) is coarser than asked', () => {
    const plan = planPatchGrid(levels, { mpp: 2, patchSizePx: 224 });
    expect(plan.levelIndex).toBe(1);
    expect(plan.scale).toBeCloseTo(8 / 3, 12);
    expect(plan.readSizeLevelPx).toBe(597); // round(597.33)
    expect(plan.patchSizeLevel0Px).toBe(597 * 3);
    // Origins are rounded one by one from the exact stride, so they do not drift.
    expect([0, 1, 2, 3].map((c) => patchReadRect(plan, c, 0).xPx)).toEqual([0, 597, 1195, 1792]);
  });

  it('2.7 µm/px: level 2 (2.625, 2.8 % finer) is within tolerance and read as is', () => {
    expect(MPP_TOLERANCE).toBeGreaterThan(0.028);
    const plan = planPatchGrid(levels, { mpp: 2.7, patchSizePx: 224 });
    expect(plan).toMatchObject({ levelIndex: 2, scale: 1, resampled: false, effectiveMpp: 2.625 });
  });

  it('5 µm/px: the coarsest level, resampled 1.905x', () => {
    const plan = planPatchGrid(levels, { mpp: 5, patchSizePx: 224 });
    expect(plan).toMatchObject({ levelIndex: 2, resampled: true, readSizeLevelPx: Math.round((224 * 5) / 2.625) });
  });

  it('0.245 µm/px is level 0 within tolerance; 0.2 is finer than the slide', () => {
    expect(planPatchGrid(levels, { mpp: 0.245, patchSizePx: 224 })).toMatchObject({ levelIndex: 0, resampled: false });
    expect(codeOf(() => planPatchGrid(levels, { mpp: 0.2, patchSizePx: 224 }))).toBe('MPP_TOO_FINE');
    expect(() => planPatchGrid(levels, { mpp: 0.2, patchSizePx: 224 })).toThrow(/finer than level 0 \(0\.25 µm\/px\)/);
  });

  it('stride: overlapping patches', () => {
    const plan = planPatchGrid(levels, { mpp: 0.75, patchSizePx: 224, stridePx: 112 });
    expect(plan).toMatchObject({ strideTargetPx: 112, strideLevelPx: 112, cols: Math.floor((10500 - 224) / 112) + 1, rows: Math.floor((7000 - 224) / 112) + 1 });
    expect(patchReadRect(plan, 1, 1)).toEqual({ xPx: 112, yPx: 112, widthPx: 224, heightPx: 224 });
  });
});

describe('planPatchGrid spacing', () => {
  it('MPP_UNKNOWN without spacing, naming mppOverride', () => {
    const levels = pyramid(10000, 8000, undefined, [1, 4]);
    expect(codeOf(() => planPatchGrid(levels, { mpp: 0.5, patchSizePx: 224 }))).toBe('MPP_UNKNOWN');
    expect(() => planPatchGrid(levels, { mpp: 0.5, patchSizePx: 224 })).toThrow(/mppOverride/);
  });

  it('mppOverride gives level k override * downsample, and wins over metadata', () => {
    const plan = planPatchGrid(pyramid(10000, 8000, undefined, [1, 4]), { mpp: 1, patchSizePx: 224, mppOverride: 0.25 });
    expect(plan).toMatchObject({ levelIndex: 1, levelMpp: 1, resampled: false, mppSource: 'override' });
    const wrong = pyramid(10000, 8000, 5, [1, 4]);
    expect(planPatchGrid(wrong, { mpp: 0.5, patchSizePx: 224, mppOverride: 0.5 })).toMatchObject({ levelIndex: 0, levelMpp: 0.5, mppSource: 'override' });
  });

  it('levels without spacing take it from a level that has it', () => {
    const levels = pyramid(10000, 8000, 0.25, [1, 4, 16]).map((l, i) => (i === 0 ? l : { ...l, mppX: undefined, mppY: undefined }));
    expect(planPatchGrid(levels, { mpp: 1, patchSizePx: 224 })).toMatchObject({ levelIndex: 1, levelMpp: 1, resampled: false });
  });

  it('anisotropic pixels: the x spacing, and a note', () => {
    const levels: GridLevel[] = [{ index: 0, widthPx: 5000, heightPx: 5000, downsample: 1, mppX: 0.5, mppY: 0.6 }];
    const plan = planPatchGrid(levels, { mpp: 0.5, patchSizePx: 224 });
    expect(plan).toMatchObject({ levelMpp: 0.5, resampled: false });
    expect(plan.note).toMatch(/not square \(0\.5 µm across, 0\.6 µm down\)/);
    const square = planPatchGrid([{ ...levels[0]!, mppY: 0.501 }], { mpp: 0.5, patchSizePx: 224 });
    expect(square.note).toBeUndefined();
  });

  it('rejects bad options', () => {
    const levels = pyramid(10000, 8000, 0.25, [1]);
    for (const options of [
      { mpp: 0, patchSizePx: 224 },
      { mpp: Number.NaN, patchSizePx: 224 },
      { mpp: 0.5, patchSizePx: 0 },
      { mpp: 0.5, patchSizePx: 22.5 },
      { mpp: 0.5, patchSizePx: 224, stridePx: 0 },
      { mpp: 0.5, patchSizePx: 224, mppOverride: -1 },
    ]) {
      expect(codeOf(() => planPatchGrid(levels, options)), JSON.stringify(options)).toBe('BAD_REQUEST');
    }
  });
});

describe('grid geometry', () => {
  it('a level smaller than a patch has no patches', () => {
    const plan = planPatchGrid([{ index: 0, widthPx: 200, heightPx: 1000, downsample: 1, mppX: 0.5, mppY: 0.5 }], { mpp: 0.5, patchSizePx: 224 });
    expect([plan.cols, plan.rows, plan.count]).toEqual([0, 4, 0]);
    expect(() => patchReadRect(plan, 0, 0)).toThrow(RangeError);
  });

  it('an exact fit counts the last patch', () => {
    const plan = planPatchGrid([{ index: 0, widthPx: 448, heightPx: 672, downsample: 1, mppX: 0.5, mppY: 0.5 }], { mpp: 0.5, patchSizePx: 224 });
    expect([plan.cols, plan.rows]).toEqual([2, 3]);
  });

  it('rejects cells outside the grid', () => {
    const plan = planPatchGrid(pyramid(2220, 2967, 0.499, [1]), { mpp: 0.5, patchSizePx: 224 });
    expect(() => patchReadRect(plan, 9, 0)).toThrow(RangeError);
    expect(() => patchOriginLevel0Px(plan, 0, -1)).toThrow(RangeError);
    expect(() => patchReadRect(plan, 0.5, 0)).toThrow(RangeError);
  });

  it('counts and rectangles agree with brute force over many pyramids', () => {
    let seed = 7;
    const random = (): number => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    for (let trial = 0; trial < 300; trial++) {
      const width = 300 + Math.floor(random() * 20000);
      const height = 300 + Math.floor(random() * 20000);
      const mpp = 0.2 + random() * 0.4;
      const levels = pyramid(width, height, mpp, [1, 2 + random() * 2, 8 + random() * 8]);
      const patchSizePx = [64, 224, 256, 384][Math.floor(random() * 4)]!;
      const stridePx = random() < 0.5 ? patchSizePx : Math.max(1, Math.floor(patchSizePx * (0.3 + random())));
      const target = mpp * (1 + random() * 12);
      const plan = planPatchGrid(levels, { mpp: target, patchSizePx, stridePx });
      const level = levels[plan.levelIndex]!;
      const label = JSON.stringify({ trial, width, height, mpp, target, patchSizePx, stridePx });

      // The rule: no finer level is coarser than the chosen one while still at or below the target.
      expect(plan.levelMpp, label).toBeLessThanOrEqual(target * (1 + MPP_TOLERANCE));
      for (const l of levels) if (l.mppX! <= target * (1 + MPP_TOLERANCE)) expect(l.mppX!, label).toBeLessThanOrEqual(plan.levelMpp);
      expect(plan.scale, label).toBeGreaterThanOrEqual(1);

      // Count: the number of k ≥ 0 with k * stride + patch ≤ level extent in target px.
      const fits = (extentLevelPx: number): number => {
        let n = 0;
        while (n * stridePx + patchSizePx <= extentLevelPx / plan.scale + 1e-6) n++;
        return n;
      };
      expect(plan.cols, label).toBe(fits(level.widthPx));
      expect(plan.rows, label).toBe(fits(level.heightPx));
      if (plan.count === 0) continue;

      // Every rectangle is whole, inside the level, of one size, within a pixel of the exact origin.
      for (const [col, row] of [
        [0, 0],
        [plan.cols - 1, plan.rows - 1],
        [Math.floor(random() * plan.cols), Math.floor(random() * plan.rows)],
      ] as const) {
        const r = patchReadRect(plan, col, row);
        expect(r.widthPx, label).toBe(Math.round(patchSizePx * plan.scale));
        expect(Number.isInteger(r.xPx) && Number.isInteger(r.yPx), label).toBe(true);
        expect(r.xPx, label).toBeGreaterThanOrEqual(0);
        expect(r.yPx, label).toBeGreaterThanOrEqual(0);
        expect(r.xPx + r.widthPx, label).toBeLessThanOrEqual(level.widthPx);
        expect(r.yPx + r.heightPx, label).toBeLessThanOrEqual(level.heightPx);
        expect(Math.abs(r.xPx - col * stridePx * plan.scale), label).toBeLessThanOrEqual(1);
        expect(Math.abs(r.yPx - row * stridePx * plan.scale), label).toBeLessThanOrEqual(1);
        const o = patchOriginLevel0Px(plan, col, row);
        expect(o, label).toEqual({ xPx: Math.round(r.xPx * level.downsample), yPx: Math.round(r.yPx * level.downsampleY!) });
        expect(o.xPx + plan.patchSizeLevel0Px, label).toBeLessThanOrEqual(width + 1);
      }
    }
  });
});
