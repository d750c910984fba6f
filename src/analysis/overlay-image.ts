/**
 * Overlay images for clients other than the viewer (which draws the same cells itself, crisp at every
 * zoom): a PNG of the whole slide at a reduced scale where each patch is a solid cell of its colour and
 * everything else is transparent. No smoothing anywhere: a cell's edges are the patch's edges, rounded
 * to the image's pixels.
 */
import sharp from 'sharp';
import type { PatchSizeLevel0 } from './patch-geometry.js';

export interface OverlayImageInput {
  /** rows * 2 ints: level-0 x, y of each patch's top-left corner. */
  coordsPx: Int32Array;
  size: PatchSizeLevel0;
  /** Level-0 size of the slide: the image covers it all, so it lines up with the slide's own pixels. */
  slideWidthPx: number;
  slideHeightPx: number;
  /** Longest side of the image. */
  maxSizePx: number;
  /** RGB of patch `row`, or undefined to leave it transparent. */
  colourOf(row: number): readonly [number, number, number] | undefined;
}

export interface OverlayGeometry {
  widthPx: number;
  heightPx: number;
  /** Image pixels per level-0 pixel, along x and y (the image is rounded to whole pixels). */
  scaleX: number;
  scaleY: number;
}

/** The image's size: the slide scaled to fit maxSizePx, never enlarged. */
export function computeOverlayGeometry(slideWidthPx: number, slideHeightPx: number, maxSizePx: number): OverlayGeometry {
  const scale = Math.min(1, maxSizePx / Math.max(slideWidthPx, slideHeightPx));
  const widthPx = Math.max(1, Math.round(slideWidthPx * scale));
  const heightPx = Math.max(1, Math.round(slideHeightPx * scale));
  return { widthPx, heightPx, scaleX: widthPx / slideWidthPx, scaleY: heightPx / slideHeightPx };
}

/** RGBA pixels of the overlay; every patch is at least one pixel, so none vanishes at a small size. */
export function computeOverlayPixels(input: OverlayImageInput): { data: Uint8Array; geometry: OverlayGeometry } {
  const geometry = computeOverlayGeometry(input.slideWidthPx, input.slideHeightPx, input.maxSizePx);
  const { widthPx, heightPx, scaleX, scaleY } = geometry;
  const data = new Uint8Array(widthPx * heightPx * 4);
  const rows = input.coordsPx.length / 2;
  for (let row = 0; row < rows; row++) {
    const colour = input.colourOf(row);
    if (!colour) continue;
    const x = input.coordsPx[2 * row]!;
    const y = input.coordsPx[2 * row + 1]!;
    const x0 = Math.min(widthPx - 1, Math.round(x * scaleX));
    const y0 = Math.min(heightPx - 1, Math.round(y * scaleY));
    const x1 = Math.min(widthPx, Math.max(x0 + 1, Math.round((x + input.size.widthPx) * scaleX)));
    const y1 = Math.min(heightPx, Math.max(y0 + 1, Math.round((y + input.size.heightPx) * scaleY)));
    for (let py = y0; py < y1; py++) {
      for (let px = x0, i = (py * widthPx + x0) * 4; px < x1; px++, i += 4) {
        data[i] = colour[0];
        data[i + 1] = colour[1];
        data[i + 2] = colour[2];
        data[i + 3] = 255;
      }
    }
  }
  return { data, geometry };
}

export async function renderOverlayPng(input: OverlayImageInput): Promise<Buffer> {
  const { data, geometry } = computeOverlayPixels(input);
  return sharp(data, { raw: { width: geometry.widthPx, height: geometry.heightPx, channels: 4 } }).png({ compressionLevel: 6 }).toBuffer();
}
