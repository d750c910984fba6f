/**
 * Pixels for the writer: an input decoded once to 8-bit RGB, resampled per level, cut into padded
 * tiles and JPEG-encoded with sharp, a few tiles in flight.
 */
import { availableParallelism } from 'node:os';
import sharp, { type KernelEnum, type Sharp } from 'sharp';

/** What the writer accepts as an image: a sharp pipeline (not consumed), a file path or an encoded image. */
export type ImageInput = Sharp | string | Buffer;

/** 8-bit RGB pixels, row-major, 3 bytes per pixel. */
export interface RgbImage {
  data: Buffer;
  widthPx: number;
  heightPx: number;
}

/** Edge tiles are padded with white, the colour of empty glass, as scanners do. */
const PAD_VALUE = 255;

/**
 * Decodes an input to RGB: alpha flattened onto white, grey expanded to RGB, colours converted to sRGB
 * (sharp's default), 16-bit samples reduced to 8. No pixel limit: a slide is allowed to be large.
 * A sharp pipeline passed in is cloned, so its own settings (e.g. `limitInputPixels`) apply.
 */
export async function readRgb(input: ImageInput): Promise<RgbImage> {
  const pipeline = typeof input === 'string' || Buffer.isBuffer(input) ? sharp(input, { limitInputPixels: false }) : input.clone();
  const toRgb = (image: Sharp) => image.flatten({ background: '#ffffff' }).toColourspace('srgb').raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  let { data, info } = await toRgb(pipeline.autoOrient());
  if (info.channels !== 3) {
    // A pipeline's own settings win over ours (a `.greyscale()` in it, say): convert its output again.
    ({ data, info } = await toRgb(sharp(data, { raw: { width: info.width, height: info.height, channels: info.channels }, limitInputPixels: false })));
  }
  if (info.channels !== 3) throw new Error(`Expected 3 channels after conversion to sRGB, got ${info.channels}`);
  return { data, widthPx: info.width, heightPx: info.height };
}

/** The image resampled to exactly `widthPx` x `heightPx` (each axis scaled on its own). */
export async function resampleRgb(image: RgbImage, widthPx: number, heightPx: number, kernel: keyof KernelEnum): Promise<RgbImage> {
  if (widthPx === image.widthPx && heightPx === image.heightPx) return image;
  const data = await sharp(image.data, {
    raw: { width: image.widthPx, height: image.heightPx, channels: 3 },
    limitInputPixels: false,
  })
    .resize(widthPx, heightPx, { fit: 'fill', kernel })
    .raw()
    .toBuffer();
  return { data, widthPx, heightPx };
}

/** The pixels of tile (col, row), `tileWidthPx` x `tileHeightPx`; what lies outside the image is white. */
export function copyTile(image: RgbImage, col: number, row: number, tileWidthPx: number, tileHeightPx: number): Buffer {
  const tile = Buffer.alloc(tileWidthPx * tileHeightPx * 3, PAD_VALUE);
  const left = col * tileWidthPx;
  const top = row * tileHeightPx;
  const widthPx = Math.min(tileWidthPx, image.widthPx - left);
  const heightPx = Math.min(tileHeightPx, image.heightPx - top);
  for (let y = 0; y < heightPx; y++) {
    const start = ((top + y) * image.widthPx + left) * 3;
    image.data.copy(tile, y * tileWidthPx * 3, start, start + widthPx * 3);
  }
  return tile;
}

/**
 * A baseline JPEG (ISO 10918-1 process 1: 8-bit, Huffman, sequential) in YCbCr with 4:2:0 chroma,
 * sharp's default; see wsi-writer.ts for why that is labelled YBR_FULL_422.
 */
export function encodeJpeg(rgb: Buffer, widthPx: number, heightPx: number, quality: number): Promise<Buffer> {
  return sharp(rgb, { raw: { width: widthPx, height: heightPx, channels: 3 } })
    .jpeg({ quality, chromaSubsampling: '4:2:0', progressive: false, mozjpeg: false })
    .toBuffer();
}

/**
 * The JPEG frames of an image cut into tiles, in TILED_FULL order (column fastest, then row), with
 * up to `inFlight` tiles being encoded at once. Only the tiles in flight are held in memory.
 */
export async function* encodeTiles(
  image: RgbImage,
  tileWidthPx: number,
  tileHeightPx: number,
  quality: number,
  inFlight = Math.max(4, availableParallelism() * 2),
): AsyncGenerator<Buffer> {
  const cols = Math.ceil(image.widthPx / tileWidthPx);
  const rows = Math.ceil(image.heightPx / tileHeightPx);
  const queue: Promise<Buffer>[] = [];
  for (let t = 0; t < cols * rows; t++) {
    const encoding = encodeJpeg(copyTile(image, t % cols, Math.floor(t / cols), tileWidthPx, tileHeightPx), tileWidthPx, tileHeightPx, quality);
    // Seen as handled: when one tile fails, the others still in the queue must not crash the process.
    encoding.catch(() => undefined);
    queue.push(encoding);
    if (queue.length >= inFlight) yield await queue.shift()!;
  }
  while (queue.length > 0) yield await queue.shift()!;
}
