import { describe, expect, it } from 'vitest';
import { DicomGrid, type GridLevel } from './grid.js';

/** A pyramid whose levels do not halve, with its own tile size per level (like the test slide). */
const levels: GridLevel[] = [
  { widthPx: 3000, heightPx: 2200, tileWidthPx: 256, tileHeightPx: 256, gridCols: 12, gridRows: 9, tileMap: null },
  { widthPx: 1000, heightPx: 734, tileWidthPx: 200, tileHeightPx: 200, gridCols: 5, gridRows: 4, tileMap: null },
  { widthPx: 286, heightPx: 210, tileWidthPx: 128, tileHeightPx: 128, gridCols: 3, gridRows: 2, tileMap: null },
];

describe('DicomGrid', () => {
  const grid = new DicomGrid(levels);

  it('numbers OpenSeadragon levels from the smallest and scales each by its exact width ratio', () => {
    expect(grid.dicomLevel(0)).toBe(2);
    expect(grid.dicomLevel(2)).toBe(0);
    expect(grid.levelScale(2)).toBe(1);
    expect(grid.levelScale(1)).toBe(1000 / 3000);
    expect(grid.levelScale(0)).toBe(286 / 3000);
    expect(grid.numTiles(0)).toEqual({ x: 3, y: 2 });
    expect(grid.tileWidth(1)).toBe(200);
    expect(grid.tileHeight(0)).toBe(128);
  });

  it('lays tiles edge to edge without gaps, each level within one of its pixels of level 0', () => {
    for (let osd = 0; osd < 3; osd++) {
      const { x: cols, y: rows } = grid.numTiles(osd);
      let right = 0;
      for (let col = 0; col < cols; col++) {
        const b = grid.tileBounds(osd, col, 0);
        expect(b.x).toBeCloseTo(right, 12);
        right = b.x + b.width;
      }
      let bottom = 0;
      for (let row = 0; row < rows; row++) {
        const b = grid.tileBounds(osd, 0, row);
        expect(b.y).toBeCloseTo(bottom, 12);
        bottom = b.y + b.height;
      }
      expect(right).toBeCloseTo(1, 12);
      const level = levels[grid.dicomLevel(osd)]!;
      expect(bottom).toBeCloseTo(level.heightPx / level.widthPx, 12);
      expect(Math.abs(bottom - 2200 / 3000) * level.widthPx).toBeLessThan(1);
    }
  });

  it('draws only the stored part of a padded edge frame', () => {
    expect(grid.tileBounds(0, 2, 1, true)).toEqual({ x: 0, y: 0, width: 286 - 256, height: 210 - 128 });
    expect(grid.tileBounds(2, 0, 0, true)).toEqual({ x: 0, y: 0, width: 256, height: 256 });
  });

  it('finds the tile under a point, the inverse of the bounds', () => {
    for (let osd = 0; osd < 3; osd++) {
      const { x: cols, y: rows } = grid.numTiles(osd);
      for (let col = 0; col < cols; col++) {
        for (let row = 0; row < rows; row++) {
          const b = grid.tileBounds(osd, col, row);
          expect(grid.tileAtPoint(osd, { x: b.x + b.width / 2, y: b.y + b.height / 2 })).toEqual({ x: col, y: row });
        }
      }
    }
    expect(grid.tileAtPoint(2, { x: 1, y: 2200 / 3000 })).toEqual({ x: 11, y: 8 });
    expect(grid.tileAtPoint(0, { x: 0.999, y: 2200 / 3000 })).toEqual({ x: 2, y: 1 });
    expect(grid.tileAtPoint(2, { x: -0.1, y: 5 })).toEqual({ x: 0, y: 8 });
  });

  it('says which tiles of a sparse level exist, from the bitset', () => {
    // 3 x 2 grid, tiles 0, 2 and 5 present: bits 0b100101.
    const sparse = new DicomGrid([{ ...levels[2]!, tileMap: btoa(String.fromCharCode(0b100101)) }]);
    expect([0, 1, 2, 3, 4, 5].map((t) => sparse.tileExists(0, t % 3, Math.floor(t / 3)))).toEqual([true, false, true, false, false, true]);
    expect(sparse.tileExists(0, 3, 0)).toBe(false);
    expect(grid.tileExists(2, 11, 8)).toBe(true);
    expect(grid.tileExists(2, 12, 0)).toBe(false);
  });
});
