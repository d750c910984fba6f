import { describe, expect, it } from 'vitest';
import { computeCosineSimilarity, computeInverseNorms, computePatchSizeLevel0, computeTopRows, findPatchAt } from './patch-geometry.js';
import { CLUSTER_PALETTE, clusterColour, computeSimilarityLut, parseHexColour } from './palette.js';
import { computeOverlayGeometry, computeOverlayPixels } from './overlay-image.js';

describe('patch geometry', () => {
  const coords = Int32Array.from([0, 0, 224, 0, 0, 224, 112, 112]);
  const size = { widthPx: 224, heightPx: 224 };

  it('finds the patch under a point; the nearest centre wins where patches overlap; -1 off the patches', () => {
    expect(findPatchAt(coords, size, 10, 10)).toBe(0);
    expect(findPatchAt(coords, size, 300, 5)).toBe(1);
    // Edges: the origin is inside, the far edge outside.
    expect(findPatchAt(coords, size, 223, 5)).toBe(0);
    expect(findPatchAt(coords, size, 224, 5)).toBe(1);
    expect(findPatchAt(coords, size, 230, 230)).toBe(3); // inside 3 (centre 224,224) and outside 1 and 2
    expect(findPatchAt(coords, size, 448, 448)).toBe(-1);
  });

  it('reads the patch side from the run grid, and refuses a run without one', () => {
    expect(computePatchSizeLevel0({ params: { grid: { patchSizeLevel0Px: 448 } } })).toEqual({ widthPx: 448, heightPx: 448 });
    expect(computePatchSizeLevel0({ params: { grid: { patchSizeLevel0Px: 448, patchHeightLevel0Px: 450 } } })).toEqual({ widthPx: 448, heightPx: 450 });
    expect(() => computePatchSizeLevel0({ params: {} })).toThrow('no grid');
  });

  it('cosine similarity: 1 with itself and with a scaled copy, -1 opposite, 0 for a zero row', () => {
    const dim = 3;
    const e = Float32Array.from([1, 2, 3, 2, 4, 6, -1, -2, -3, 0, 0, 0, 3, -1, 0]);
    const inverse = computeInverseNorms(e, 5, dim);
    const scores = computeCosineSimilarity(e.subarray(0, 3), e, inverse, dim);
    expect(scores[0]).toBeCloseTo(1, 6);
    expect(scores[1]).toBeCloseTo(1, 6);
    expect(scores[2]).toBeCloseTo(-1, 6);
    expect(scores[3]).toBe(0);
    expect(scores[4]).toBeCloseTo((3 - 2) / (Math.sqrt(14) * Math.sqrt(10)), 6);
  });

  it('top rows: best first, ties by row, the excluded row skipped', () => {
    const scores = Float32Array.from([0.1, 0.9, 0.5, 0.9, 0.7]);
    expect(computeTopRows(scores, 3)).toEqual([1, 3, 4]);
    expect(computeTopRows(scores, 2, 1)).toEqual([3, 4]);
    expect(computeTopRows(scores, 10)).toEqual([1, 3, 4, 2, 0]);
  });
});

describe('palette', () => {
  it('has 32 distinct cluster colours, the first 8 Okabe-Ito', () => {
    expect(CLUSTER_PALETTE.length).toBe(32);
    expect(new Set(CLUSTER_PALETTE).size).toBe(32);
    expect(clusterColour(0)).toBe('#e69f00');
    expect(() => clusterColour(32)).toThrow(RangeError);
    expect(parseHexColour('#0072b2')).toEqual([0, 114, 178]);
  });

  it('the similarity scale runs from viridis purple to yellow, getting lighter', () => {
    const lut = computeSimilarityLut();
    expect([...lut.subarray(0, 3)]).toEqual([68, 1, 84]);
    expect([...lut.subarray(765, 768)]).toEqual([253, 231, 37]);
    const luma = (i: number) => 0.2126 * lut[i * 3]! + 0.7152 * lut[i * 3 + 1]! + 0.0722 * lut[i * 3 + 2]!;
    for (let i = 16; i < 256; i += 16) expect(luma(i)).toBeGreaterThan(luma(i - 16));
  });
});

describe('overlay image', () => {
  it('paints each patch as a solid cell on the slide scaled to fit, transparent elsewhere', () => {
    expect(computeOverlayGeometry(1000, 500, 100)).toEqual({ widthPx: 100, heightPx: 50, scaleX: 0.1, scaleY: 0.1 });
    const { data, geometry } = computeOverlayPixels({
      coordsPx: Int32Array.from([0, 0, 200, 100]),
      size: { widthPx: 100, heightPx: 100 },
      slideWidthPx: 1000,
      slideHeightPx: 500,
      maxSizePx: 100,
      colourOf: (row) => (row === 0 ? [255, 0, 0] : [0, 0, 255]),
    });
    const at = (x: number, y: number) => [...data.subarray((y * geometry.widthPx + x) * 4, (y * geometry.widthPx + x) * 4 + 4)];
    expect(at(0, 0)).toEqual([255, 0, 0, 255]);
    expect(at(9, 9)).toEqual([255, 0, 0, 255]);
    expect(at(10, 10)).toEqual([0, 0, 0, 0]);
    expect(at(20, 10)).toEqual([0, 0, 255, 255]);
    expect(at(29, 19)).toEqual([0, 0, 255, 255]);
    expect(at(30, 19)).toEqual([0, 0, 0, 0]);
    // 200 painted pixels: 10 x 10 per patch, nothing else.
    let painted = 0;
    for (let i = 3; i < data.length; i += 4) painted += data[i] === 255 ? 1 : 0;
    expect(painted).toBe(200);
  });

  it('keeps a patch smaller than an image pixel visible as one pixel', () => {
    const { data } = computeOverlayPixels({ coordsPx: Int32Array.from([505, 505]), size: { widthPx: 3, heightPx: 3 }, slideWidthPx: 1000, slideHeightPx: 1000, maxSizePx: 100, colourOf: () => [1, 2, 3] });
    let painted = 0;
    for (let i = 3; i < data.length; i += 4) painted += data[i] === 255 ? 1 : 0;
    expect(painted).toBe(1);
  });
});
