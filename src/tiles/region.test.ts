import { describe, expect, it } from 'vitest';
import type { Level } from '../wsi/index.js';
import { chooseRegionLevel, computeFitSize, computeLevelRect } from './tile-service.js';

/** A pyramid like CMU-1's: 46000 x 32914, halving with odd sizes, 256 px tiles. */
function level(index: number, widthPx: number, heightPx: number): Level {
  const downsample = 46000 / widthPx;
  return { index, widthPx, heightPx, tileWidthPx: 256, tileHeightPx: 256, gridCols: Math.ceil(widthPx / 256), gridRows: Math.ceil(heightPx / 256), downsample, downsampleY: 32914 / heightPx } as unknown as Level;
}
const levels = [level(0, 46000, 32914), level(1, 23000, 16457), level(2, 11500, 8228), level(3, 5750, 4114)];

describe('regions of the slide', () => {
  it('fits a size without enlarging it', () => {
    expect(computeFitSize(224, 224, 112)).toEqual({ widthPx: 112, heightPx: 112 });
    expect(computeFitSize(224, 100, 1024)).toEqual({ widthPx: 224, heightPx: 100 });
    expect(computeFitSize(10_000, 1, 100)).toEqual({ widthPx: 100, heightPx: 1 });
  });

  it('maps a level-0 rectangle to a level, rounded, inside the level', () => {
    expect(computeLevelRect(levels[1]!, { xPx: 448, yPx: 224, widthPx: 224, heightPx: 224 })).toEqual({ xPx: 224, yPx: 112, widthPx: 112, heightPx: 112 });
    expect(computeLevelRect(levels[0]!, { xPx: 45_990, yPx: 0, widthPx: 100, heightPx: 5 })).toEqual({ xPx: 45_990, yPx: 0, widthPx: 10, heightPx: 5 });
    expect(() => computeLevelRect(levels[0]!, { xPx: 46_000, yPx: 0, widthPx: 10, heightPx: 10 })).toThrow('outside the slide');
  });

  it('reads from the coarsest level that still fills the size, going coarser when a read needs too many frames', () => {
    expect(chooseRegionLevel(levels, { xPx: 0, yPx: 0, widthPx: 224, heightPx: 224 }, 256).index).toBe(0);
    expect(chooseRegionLevel(levels, { xPx: 0, yPx: 0, widthPx: 224, heightPx: 224 }, 112).index).toBe(1);
    expect(chooseRegionLevel(levels, { xPx: 0, yPx: 0, widthPx: 4096, heightPx: 4096 }, 600).index).toBe(2);
    // 40,000 px across at 1024 px wants level 3 by resolution anyway; at 16,000 px it would need level 1
    // (63 x 63 frames) by resolution, so it goes coarser until the read has at most 256 frames.
    expect(chooseRegionLevel(levels, { xPx: 0, yPx: 0, widthPx: 16_000, heightPx: 16_000 }, 1024).index).toBe(3);
  });
});
