import { describe, expect, it } from 'vitest';
import { createStainTextureScratch, STAIN_TEXTURE_DIM, stainTextureFeatures } from '../embed/runtime/builtin.js';
import { renderDemoLabel } from './demo-label.js';
import { DemoRegion, renderDemoTissue, type DemoTissue } from './demo-slide.js';

const SIZE = { widthPx: 4096, heightPx: 3072 };
const tissue = renderDemoTissue({ ...SIZE, seed: 1 });
const PATCH_PX = 224;

/** The fraction of the region map each region covers. */
function computeCoverage(t: DemoTissue): Map<number, number> {
  const counts = new Map<number, number>();
  for (const r of t.regions) counts.set(r, (counts.get(r) ?? 0) + 1);
  return new Map([...counts].map(([r, n]) => [r, n / t.regions.length]));
}

/** Patches (top-left corners, on a half-patch grid) lying wholly inside one region, with a margin. */
function findPatches(t: DemoTissue, region: number, max: number): Array<[number, number]> {
  const found: Array<[number, number]> = [];
  const s = t.regionScalePx;
  for (let y = 0; y + PATCH_PX <= t.image.heightPx && found.length < max; y += PATCH_PX / 2) {
    for (let x = 0; x + PATCH_PX <= t.image.widthPx && found.length < max; x += PATCH_PX / 2) {
      let inside = true;
      for (let cy = Math.floor((y - 8) / s); inside && cy <= Math.floor((y + PATCH_PX + 8) / s); cy++) {
        for (let cx = Math.floor((x - 8) / s); inside && cx <= Math.floor((x + PATCH_PX + 8) / s); cx++) {
          inside = cx >= 0 && cy >= 0 && cx < t.regionCols && cy < t.regionRows && t.regions[cy * t.regionCols + cx] === region;
        }
      }
      if (inside) found.push([x, y]);
    }
  }
  return found;
}

/** The built-in model's features of one patch. */
function computeFeatures(t: DemoTissue, x: number, y: number): Float32Array {
  const pixels = new Uint8Array(PATCH_PX * PATCH_PX * 3);
  for (let row = 0; row < PATCH_PX; row++) {
    const start = ((y + row) * t.image.widthPx + x) * 3;
    pixels.set(t.image.data.subarray(start, start + PATCH_PX * 3), row * PATCH_PX * 3);
  }
  const out = new Float32Array(STAIN_TEXTURE_DIM);
  stainTextureFeatures(pixels, 0, PATCH_PX, out, 0, createStainTextureScratch(PATCH_PX));
  return out;
}

const distance = (a: Float32Array, b: Float32Array) => Math.hypot(...a.map((v, i) => v - b[i]!));

describe('renderDemoTissue', () => {
  it('draws the same pixels for the same seed, and other pixels for another seed', () => {
    expect(renderDemoTissue({ ...SIZE, seed: 1 }).image.data.equals(tissue.image.data)).toBe(true);
    const other = renderDemoTissue({ ...SIZE, seed: 2 }).image.data;
    let differing = 0;
    for (let i = 0; i < other.length; i += 3) if (other[i] !== tissue.image.data[i]) differing++;
    expect(differing / (other.length / 3)).toBeGreaterThan(0.1);
  }, 60_000); // two more 12-megapixel renders on a busy 2-core runner

  it('has white glass around the tissue, and every kind of region in a useful amount', () => {
    const coverage = computeCoverage(tissue);
    expect(coverage.get(DemoRegion.glass)).toBeGreaterThan(0.25);
    expect(coverage.get(DemoRegion.glass)).toBeLessThan(0.7);
    for (const region of [DemoRegion.stroma, DemoRegion.tumour, DemoRegion.fat, DemoRegion.necrosis]) {
      expect(coverage.get(region) ?? 0, `region ${region}`).toBeGreaterThan(0.03);
    }
    // The corners are glass, as the tissue mask sees it: no channel below 220.
    const { data, widthPx, heightPx } = tissue.image;
    for (const [x, y] of [[5, 5], [widthPx - 6, 5], [5, heightPx - 6], [widthPx - 6, heightPx - 6]] as const) {
      const i = (y * widthPx + x) * 3;
      expect(Math.min(data[i]!, data[i + 1]!, data[i + 2]!)).toBeGreaterThanOrEqual(220);
    }
  });

  it('makes regions the built-in model tells apart: every patch is nearest its own region’s centroid', () => {
    const regions = [DemoRegion.glass, DemoRegion.stroma, DemoRegion.tumour, DemoRegion.fat, DemoRegion.necrosis];
    const features = new Map(regions.map((r) => [r, findPatches(tissue, r, 12).map(([x, y]) => computeFeatures(tissue, x, y))]));
    const centroids = new Map(
      [...features].map(([r, list]) => {
        expect(list.length, `patches inside region ${r}`).toBeGreaterThanOrEqual(4);
        const sum = new Float32Array(STAIN_TEXTURE_DIM);
        for (const f of list) f.forEach((v, i) => (sum[i]! += v / list.length));
        return [r, sum] as const;
      }),
    );
    for (const [region, list] of features) {
      for (const f of list) {
        const nearest = [...centroids].reduce((best, [r, c]) => (distance(f, c) < distance(f, centroids.get(best)!) ? r : best), region);
        expect(nearest, `a patch of region ${region}`).toBe(region);
      }
    }
  });
});

describe('renderDemoLabel', () => {
  it('prints dark text and bars on light paper, and the barcode follows the seed', () => {
    const label = renderDemoLabel(['WSI-GATEWAY', 'DEMO'], 1);
    expect([label.widthPx, label.heightPx]).toEqual([480, 240]);
    const dark = label.data.filter((v, i) => i % 3 === 0 && v < 60).length;
    expect(dark / (label.widthPx * label.heightPx)).toBeGreaterThan(0.05);
    expect(dark / (label.widthPx * label.heightPx)).toBeLessThan(0.5);
    expect(renderDemoLabel(['WSI-GATEWAY', 'DEMO'], 1).data.equals(label.data)).toBe(true);
    expect(renderDemoLabel(['WSI-GATEWAY', 'DEMO'], 2).data.equals(label.data)).toBe(false);
  });
});
