/** The default pyramid of an imported image: power-of-2 levels down to one that fits in a tile or two. */
import type { LevelSpec } from './wsi-writer.js';

/**
 * Downsamples 1, 2, 4, ... until a level's grid holds at most two tiles (`maxLevels` at most), all
 * with square tiles of `tileSizePx`. Viewers need a coarse level to show the whole slide from a few
 * requests; stopping at one or two tiles avoids levels smaller than a tile that add nothing.
 */
export function computeDefaultLevels(widthPx: number, heightPx: number, tileSizePx: number, maxLevels = 16): LevelSpec[] {
  const levels: LevelSpec[] = [];
  for (let downsample = 1; levels.length < maxLevels; downsample *= 2) {
    levels.push({ downsample, tileSizePx });
    const cols = Math.ceil(Math.ceil(widthPx / downsample) / tileSizePx);
    const rows = Math.ceil(Math.ceil(heightPx / downsample) / tileSizePx);
    if (cols * rows <= 2) break;
  }
  return levels;
}
