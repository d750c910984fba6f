/**
 * Cutting one patch out of decoded tiles: rows are copied straight into the batch buffer when the level
 * is at the requested mpp, and only a resampled grid pays for a resize (sharp halves decode speed when
 * it resizes, DESIGN.md). Sparse levels' missing tiles are glass, as the viewer shows them.
 */
import sharp from 'sharp';
import type { TiledImage } from '../../wsi/index.js';
import { BadFrame, type FeedTile } from './frame-feed.js';

/** A rectangle in the pixels of one level. */
export interface RectLevelPx {
  xPx: number;
  yPx: number;
  widthPx: number;
  heightPx: number;
}

const GLASS = 255;

/** Tile indexes (row * gridCols + col) a rectangle overlaps, row by row. */
export function computeTilesOfRect(image: Pick<TiledImage, 'tileWidthPx' | 'tileHeightPx' | 'gridCols' | 'gridRows'>, rect: RectLevelPx): number[] {
  const col0 = Math.max(0, Math.floor(rect.xPx / image.tileWidthPx));
  const row0 = Math.max(0, Math.floor(rect.yPx / image.tileHeightPx));
  const col1 = Math.min(image.gridCols - 1, Math.floor((rect.xPx + rect.widthPx - 1) / image.tileWidthPx));
  const row1 = Math.min(image.gridRows - 1, Math.floor((rect.yPx + rect.heightPx - 1) / image.tileHeightPx));
  const tiles: number[] = [];
  for (let row = row0; row <= row1; row++) for (let col = col0; col <= col1; col++) tiles.push(row * image.gridCols + col);
  return tiles;
}

/**
 * Copies the rectangle's pixels from its tiles into `out` at `outOffset` (RGB, rect.widthPx per row).
 * Returns the first bad frame it met, if any (the patch is then to be skipped).
 */
export function copyRect(
  image: Pick<TiledImage, 'tileWidthPx' | 'tileHeightPx' | 'gridCols'>,
  rect: RectLevelPx,
  tiles: ReadonlyMap<number, FeedTile>,
  out: Uint8Array,
  outOffset: number,
): BadFrame | undefined {
  const { tileWidthPx, tileHeightPx, gridCols } = image;
  const outRowBytes = rect.widthPx * 3;
  for (const [index, tile] of tiles) {
    if (tile instanceof BadFrame) return tile;
    const tileX0 = (index % gridCols) * tileWidthPx;
    const tileY0 = Math.floor(index / gridCols) * tileHeightPx;
    // The part of the rectangle this tile covers, in level px.
    const x0 = Math.max(rect.xPx, tileX0);
    const x1 = Math.min(rect.xPx + rect.widthPx, tileX0 + tileWidthPx);
    const y0 = Math.max(rect.yPx, tileY0);
    const y1 = Math.min(rect.yPx + rect.heightPx, tileY0 + tileHeightPx);
    if (x1 <= x0 || y1 <= y0) continue;
    const spanBytes = (x1 - x0) * 3;
    for (let y = y0; y < y1; y++) {
      const dst = outOffset + (y - rect.yPx) * outRowBytes + (x0 - rect.xPx) * 3;
      if (!tile) {
        out.fill(GLASS, dst, dst + spanBytes);
        continue;
      }
      const src = ((y - tileY0) * tile.widthPx + (x0 - tileX0)) * 3;
      // Buffer#copy, not set(subarray()): no view object per row (a slide has millions of rows).
      tile.data.copy(out, dst, src, src + spanBytes);
    }
  }
  return undefined;
}

/**
 * The patch into `out` (patchSizePx² RGB at `outOffset`): copied when the rectangle is already the
 * patch's size, else assembled and resized (Lanczos-3, sharp's default, which does not alias when shrinking).
 */
export async function cutPatch(
  image: Pick<TiledImage, 'tileWidthPx' | 'tileHeightPx' | 'gridCols'>,
  rect: RectLevelPx,
  tiles: ReadonlyMap<number, FeedTile>,
  patchSizePx: number,
  out: Uint8Array,
  outOffset: number,
): Promise<BadFrame | undefined> {
  if (rect.widthPx === patchSizePx && rect.heightPx === patchSizePx) return copyRect(image, rect, tiles, out, outOffset);
  const region = new Uint8Array(rect.widthPx * rect.heightPx * 3);
  const bad = copyRect(image, rect, tiles, region, 0);
  if (bad) return bad;
  const resized = await sharp(region, { raw: { width: rect.widthPx, height: rect.heightPx, channels: 3 } })
    .resize(patchSizePx, patchSizePx, { fit: 'fill', kernel: rect.widthPx > patchSizePx ? 'lanczos3' : 'cubic' })
    .raw()
    .toBuffer();
  out.set(resized, outOffset);
  return undefined;
}
