import { describe, expect, it } from 'vitest';
import type { Level } from '../../wsi/index.js';
import { BadFrame, planRequests, type FeedTile } from './frame-feed.js';
import { computeTilesOfRect, copyRect, cutPatch } from './patch-cutter.js';

/** A 3 x 2 grid of 4 px tiles whose pixel (x, y) in level px has the value R = x, G = y, B = 7. */
const grid = { tileWidthPx: 4, tileHeightPx: 4, gridCols: 3, gridRows: 2 };
function tile(index: number): FeedTile {
  const data = Buffer.alloc(4 * 4 * 3);
  const x0 = (index % 3) * 4;
  const y0 = Math.floor(index / 3) * 4;
  for (let y = 0; y < 4; y++) {
    for (let x = 0; x < 4; x++) data.set([x0 + x, y0 + y, 7], (y * 4 + x) * 3);
  }
  return { data, widthPx: 4, heightPx: 4, channels: 3 };
}
const tilesOf = (indexes: number[], override: Record<number, FeedTile> = {}) => new Map(indexes.map((i) => [i, i in override ? override[i] : tile(i)]));

describe('patch cutting', () => {
  it('lists the tiles a rectangle overlaps, clipped to the grid', () => {
    expect(computeTilesOfRect(grid, { xPx: 0, yPx: 0, widthPx: 4, heightPx: 4 })).toEqual([0]);
    expect(computeTilesOfRect(grid, { xPx: 3, yPx: 3, widthPx: 2, heightPx: 2 })).toEqual([0, 1, 3, 4]);
    expect(computeTilesOfRect(grid, { xPx: 6, yPx: 2, widthPx: 6, heightPx: 6 })).toEqual([1, 2, 4, 5]);
  });

  it('copies a rectangle across four tiles pixel for pixel', () => {
    const rect = { xPx: 2, yPx: 3, widthPx: 5, heightPx: 3 };
    const out = new Uint8Array(5 * 3 * 3 + 6).fill(99);
    expect(copyRect(grid, rect, tilesOf(computeTilesOfRect(grid, rect)), out, 6)).toBeUndefined();
    expect(Array.from(out.subarray(0, 6))).toEqual([99, 99, 99, 99, 99, 99]);
    for (let y = 0; y < 3; y++) {
      for (let x = 0; x < 5; x++) expect(Array.from(out.subarray(6 + (y * 5 + x) * 3, 6 + (y * 5 + x) * 3 + 3))).toEqual([2 + x, 3 + y, 7]);
    }
  });

  it('paints a missing sparse tile as glass and reports a bad frame', () => {
    const rect = { xPx: 2, yPx: 0, widthPx: 4, heightPx: 1 };
    const out = new Uint8Array(4 * 3);
    copyRect(grid, rect, tilesOf([0, 1], { 1: undefined }), out, 0);
    expect(Array.from(out)).toEqual([2, 0, 7, 3, 0, 7, 255, 255, 255, 255, 255, 255]);
    const bad = new BadFrame('frame 2 of level 0 cannot be decoded');
    expect(copyRect(grid, rect, tilesOf([0, 1], { 1: bad }), out, 0)).toBe(bad);
  });

  it('resizes only when the rectangle is not the patch size', async () => {
    const rect = { xPx: 0, yPx: 0, widthPx: 8, heightPx: 8 };
    const out = new Uint8Array(4 * 4 * 3);
    await cutPatch(grid, rect, tilesOf([0, 1, 3, 4]), 4, out, 0);
    // Halved: the red ramp 0..7 becomes about 0.5, 2.5, 4.5, 6.5 across.
    const reds = [0, 1, 2, 3].map((x) => out[x * 3]!);
    expect(reds[0]).toBeLessThan(reds[1]!);
    expect(reds[3]).toBeGreaterThan(5);
    expect(out[2]).toBe(7);
  });
});

describe('frame requests', () => {
  it('groups tiles in need order by instance, at most N frames each, skipping missing tiles', () => {
    const level = { tileInstance: Int32Array.from([0, 0, 1, 1, -1, 0]), tileFrameNumber: Int32Array.from([1, 2, 1, 2, 0, 3]) } as unknown as Level;
    const requests = planRequests(level, [0, 1, 5, 2, 4, 3], 2);
    expect(requests.map((r) => [r.instanceIndex, r.frameNumbers])).toEqual([
      [0, [1, 2]],
      [0, [3]],
      [1, [1, 2]],
    ]);
    expect(requests[2]!.tiles).toEqual([2, 3]);
  });

  it('keeps one open request per instance where tiles of two instances alternate', () => {
    const level = { tileInstance: Int32Array.from([0, 1, 0, 1, 0, 1]), tileFrameNumber: Int32Array.from([1, 1, 2, 2, 3, 3]) } as unknown as Level;
    const requests = planRequests(level, [0, 1, 2, 3, 4, 5], 3);
    expect(requests.map((r) => [r.instanceIndex, r.frameNumbers])).toEqual([
      [0, [1, 2, 3]],
      [1, [1, 2, 3]],
    ]);
  });
});
