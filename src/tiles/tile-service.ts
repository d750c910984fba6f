/**
 * Tiles for the browser: one DICOM frame = one JPEG tile. JPEG baseline frames go out byte for byte as
 * the PACS stores them; other syntaxes are decoded and re-encoded once, and the JPEG replaces the raw
 * frame in the cache. Also renders whole small images (label, overview, thumbnail).
 */
import sharp from 'sharp';
import { BadRequestError, NotFoundError } from '../errors.js';
import type { SlideSource } from '../source/types.js';
import { computeNativeFrameBytes, getTileFrame, isInGrid, type Level, type Slide, type TiledImage } from '../wsi/index.js';
import { computeFramePixelFormat, encodeJpeg, isBrowserReady, type FrameDecoder, type RgbImage } from './codecs/index.js';
import { createFrameCache, type FrameAddress } from './frame-cache.js';

export interface TileServiceOptions {
  source: SlideSource;
  cacheBytes: number;
  prefetchFrames: number;
  /** Quality of re-encoded JPEGs, 1-100. */
  jpegQuality: number;
  /** Decodes frames that are not browser JPEGs (its pool is shared with the embedding pipeline). */
  decoder: FrameDecoder;
}

export interface Tile {
  data: Buffer;
  /** A strong validator: the same frame (and, when re-encoded, the same quality) gives the same bytes. */
  etag: string;
}

/** The colour of a sparse level's empty tiles: glass under brightfield light. */
const BACKGROUND = { r: 255, g: 255, b: 255 } as const;
/** Associated and thumbnail images are assembled from at most this many frames. */
const MAX_RENDER_FRAMES = 256;


/**
 * The frame cache's address of each instance of a slide (by instance index), with `next` linking the
 * instances of a level split over several in the order its tiles reach them (row-major), and `finer`
 * naming the next finer level's first instance, so the cache can read ahead. Built once per slide.
 */
function computeFrameAddresses(slide: Slide): FrameAddress[] {
  const addresses: FrameAddress[] = slide.instances.map((instance) => ({
    studyUid: slide.studyUid,
    seriesUid: slide.seriesUid,
    sopInstanceUid: instance.sopInstanceUid,
    transferSyntaxUid: instance.transferSyntaxUid,
    numberOfFrames: instance.numberOfFrames,
    frameBytes: computeNativeFrameBytes(instance),
  }));
  const orders = slide.levels.map((level) => {
    const seen = new Set<number>();
    for (const instanceIndex of level.tileInstance) if (instanceIndex >= 0) seen.add(instanceIndex);
    return [...seen]; // a Set keeps the order of first appearance
  });
  orders.forEach((order, levelIndex) => {
    for (let i = 0; i + 1 < order.length; i++) addresses[order[i]!]!.next = addresses[order[i + 1]!];
    // Levels run from full resolution (0) to the coarsest: the finer level is the one before.
    const finer = levelIndex > 0 ? orders[levelIndex - 1]![0] : undefined;
    if (finer !== undefined) for (const i of order) addresses[i]!.finer = addresses[finer];
  });
  return addresses;
}

export function createTileService({ source, cacheBytes, prefetchFrames, jpegQuality, decoder }: TileServiceOptions) {
  const frames = createFrameCache({ source, maxBytes: cacheBytes, prefetchFrames });
  const backgrounds = new Map<string, Promise<Buffer>>();
  /** The glass tiles made so far, for peekTile. */
  const readyBackgrounds = new Map<string, Buffer>();
  const transcoding = new Map<string, Promise<Buffer>>();
  const addressesBySlide = new WeakMap<Slide, FrameAddress[]>();

  function frameAddress(slide: Slide, instanceIndex: number): FrameAddress {
    let addresses = addressesBySlide.get(slide);
    if (!addresses) {
      addresses = computeFrameAddresses(slide);
      addressesBySlide.set(slide, addresses);
    }
    return addresses[instanceIndex]!;
  }

  function backgroundTile(widthPx: number, heightPx: number): Promise<Buffer> {
    const key = `${widthPx}x${heightPx}`;
    let tile = backgrounds.get(key);
    if (!tile) {
      tile = sharp({ create: { width: widthPx, height: heightPx, channels: 3, background: BACKGROUND } }).jpeg({ quality: jpegQuality }).toBuffer();
      backgrounds.set(key, tile);
      void tile.then((data) => readyBackgrounds.set(key, data));
    }
    return tile;
  }

  /**
   * The ETag of a tile, computable without fetching it (so a revalidation costs the PACS nothing). It
   * names the frame it comes from: a re-converted slide (new SOP Instance UIDs) changes every ETag.
   */
  function computeEtag(image: TiledImage, slide: Slide, col: number, row: number): string {
    const frame = getTileFrame(image, col, row);
    return frame ? frameEtag(slide.instances[frame.instanceIndex]!.sopInstanceUid, frame.frameNumber) : `"background:${image.tileWidthPx}x${image.tileHeightPx}:q${jpegQuality}"`;
  }

  function frameEtag(sopInstanceUid: string, frameNumber: number): string {
    return `"${sopInstanceUid}:${frameNumber}:q${jpegQuality}"`;
  }

  async function readBrowserJpeg(slide: Slide, instanceIndex: number, frameNumber: number): Promise<Buffer> {
    const instance = slide.instances[instanceIndex]!;
    const frame = await frames.get(frameAddress(slide, instanceIndex), frameNumber, { forViewer: true });
    if (frame.isBrowserJpeg || isBrowserReady(frame.transferSyntaxUid, instance.photometricInterpretation)) {
      return frame.data;
    }
    const key = `${instance.sopInstanceUid}/${frameNumber}`;
    let job = transcoding.get(key);
    if (!job) {
      job = decoder.transcodeFrameToJpeg(frame.data, frame.transferSyntaxUid, computeFramePixelFormat(instance), { quality: jpegQuality })
        .then((jpeg) => {
          frames.store(instance.sopInstanceUid, frameNumber, { data: jpeg, transferSyntaxUid: '1.2.840.10008.1.2.4.50', isBrowserJpeg: true });
          return jpeg;
        })
        .finally(() => transcoding.delete(key));
      transcoding.set(key, job);
    }
    return job;
  }

  /** Tile (col, row) of an image of the slide. Throws NotFoundError outside the grid. */
  async function getTile(slide: Slide, image: TiledImage, col: number, row: number): Promise<Tile> {
    if (!isInGrid(image, col, row)) {
      throw new NotFoundError(`Tile (${col}, ${row}) is outside the ${image.gridCols}x${image.gridRows} grid`, 'TILE_NOT_FOUND');
    }
    const etag = computeEtag(image, slide, col, row);
    const frame = getTileFrame(image, col, row);
    if (!frame) return { data: await backgroundTile(image.tileWidthPx, image.tileHeightPx), etag };
    return { data: await readBrowserJpeg(slide, frame.instanceIndex, frame.frameNumber), etag };
  }

  /**
   * The tile when memory can answer now, without waiting: a browser JPEG already cached (passthrough
   * or transcoded) or a glass tile already made. Undefined (a miss, a frame still to transcode, a tile
   * outside the grid) means ask getTile. This is the warm path of tile-fast-path.ts.
   */
  function peekTile(slide: Slide, image: TiledImage, col: number, row: number): Tile | undefined {
    if (!isInGrid(image, col, row)) return undefined;
    const frame = getTileFrame(image, col, row);
    if (!frame) {
      const data = readyBackgrounds.get(`${image.tileWidthPx}x${image.tileHeightPx}`);
      return data && { data, etag: computeEtag(image, slide, col, row) };
    }
    const instance = slide.instances[frame.instanceIndex]!;
    const cached = frames.peek(frameAddress(slide, frame.instanceIndex), frame.frameNumber);
    if (!cached || !(cached.isBrowserJpeg || isBrowserReady(cached.transferSyntaxUid, instance.photometricInterpretation))) return undefined;
    return { data: cached.data, etag: frameEtag(instance.sopInstanceUid, frame.frameNumber) };
  }

  async function decodeTile(slide: Slide, image: TiledImage, col: number, row: number): Promise<RgbImage | undefined> {
    const frame = getTileFrame(image, col, row);
    if (!frame) return undefined;
    const instance = slide.instances[frame.instanceIndex]!;
    const cached = await frames.get(frameAddress(slide, frame.instanceIndex), frame.frameNumber);
    return decoder.decodeFrame(cached.data, cached.isBrowserJpeg ? '1.2.840.10008.1.2.4.50' : cached.transferSyntaxUid, {
      ...computeFramePixelFormat(instance),
      // A cached browser JPEG is plain YCbCr JPEG whatever the instance's own photometric says.
      ...(cached.isBrowserJpeg ? { photometricInterpretation: 'YBR_FULL_422', samplesPerPixel: 3, bitsAllocated: 8, bitsStored: 8 } : {}),
    });
  }

  /**
   * The pixels of a rectangle of one image, pasted from the tiles it overlaps (missing sparse tiles are
   * glass). The rectangle must lie inside the image; padded edge tiles are cut at the image's edge.
   */
  async function assembleRect(slide: Slide, image: TiledImage, rect: RectLevelPx): Promise<RgbImage> {
    const canvas = Buffer.alloc(rect.widthPx * rect.heightPx * 3, BACKGROUND.r);
    const col0 = Math.floor(rect.xPx / image.tileWidthPx);
    const row0 = Math.floor(rect.yPx / image.tileHeightPx);
    const col1 = Math.floor((rect.xPx + rect.widthPx - 1) / image.tileWidthPx);
    const row1 = Math.floor((rect.yPx + rect.heightPx - 1) / image.tileHeightPx);
    const jobs: Promise<void>[] = [];
    for (let row = row0; row <= row1; row++) {
      for (let col = col0; col <= col1; col++) {
        jobs.push(
          decodeTile(slide, image, col, row).then((rgb) => {
            if (!rgb) return;
            const tileX0 = col * image.tileWidthPx;
            const tileY0 = row * image.tileHeightPx;
            const x0 = Math.max(rect.xPx, tileX0);
            const x1 = Math.min(rect.xPx + rect.widthPx, tileX0 + Math.min(rgb.widthPx, image.tileWidthPx));
            const y1 = Math.min(rect.yPx + rect.heightPx, tileY0 + Math.min(rgb.heightPx, image.tileHeightPx));
            for (let y = Math.max(rect.yPx, tileY0); y < y1 && x1 > x0; y++) {
              const src = ((y - tileY0) * rgb.widthPx + (x0 - tileX0)) * 3;
              rgb.data.copy(canvas, ((y - rect.yPx) * rect.widthPx + (x0 - rect.xPx)) * 3, src, src + (x1 - x0) * 3);
            }
          }),
        );
      }
    }
    await Promise.all(jobs);
    return { data: canvas, widthPx: rect.widthPx, heightPx: rect.heightPx, channels: 3 };
  }

  /** Resized to exactly widthPx x heightPx (unchanged when it already is). */
  async function resizeRgb(rgb: RgbImage, widthPx: number, heightPx: number): Promise<RgbImage> {
    if (rgb.widthPx === widthPx && rgb.heightPx === heightPx) return rgb;
    const out = await sharp(rgb.data, { raw: { width: rgb.widthPx, height: rgb.heightPx, channels: 3 } })
      .resize({ width: widthPx, height: heightPx, fit: 'fill' })
      .raw()
      .toBuffer({ resolveWithObject: true });
    return { data: out.data, widthPx: out.info.width, heightPx: out.info.height, channels: 3 };
  }

  /**
   * The whole image as RGB pixels, assembled from its tiles and scaled to fit `maxSizePx` (the tissue
   * mask of an embedding job reads a low-resolution level this way).
   */
  async function renderRgb(slide: Slide, image: TiledImage, maxSizePx: number, maxFrames = MAX_RENDER_FRAMES): Promise<RgbImage> {
    if (image.gridCols * image.gridRows > maxFrames) {
      throw new NotFoundError('The image has too many tiles to render whole', 'IMAGE_TOO_LARGE');
    }
    const size = computeFitSize(image.widthPx, image.heightPx, maxSizePx);
    return resizeRgb(await assembleRect(slide, image, { xPx: 0, yPx: 0, widthPx: image.widthPx, heightPx: image.heightPx }), size.widthPx, size.heightPx);
  }

  /**
   * A region of the slide given in level-0 pixels, read from the coarsest level that still has
   * `maxSizePx` pixels across it (and needs at most MAX_RENDER_FRAMES frames), scaled to fit.
   */
  async function renderRegion(slide: Slide, regionLevel0: RectLevelPx, maxSizePx: number): Promise<Buffer> {
    const level = chooseRegionLevel(slide.levels, regionLevel0, maxSizePx);
    const rect = computeLevelRect(level, regionLevel0);
    // The size follows the level-0 region, so a level whose downsample is not whole does not skew it.
    const size = computeFitSize(regionLevel0.widthPx, regionLevel0.heightPx, maxSizePx);
    return encodeJpeg(await resizeRgb(await assembleRect(slide, level, rect), size.widthPx, size.heightPx), { quality: jpegQuality });
  }

  /** The whole image, assembled from its tiles and scaled to fit `maxSizePx`, as a JPEG. */
  async function renderImage(slide: Slide, image: TiledImage, maxSizePx: number): Promise<Buffer> {
    return encodeJpeg(await renderRgb(slide, image, maxSizePx), { quality: jpegQuality });
  }

  return {
    /** The service's frame decoder, for other decodes of the same frames (the embedding pipeline). */
    decoder,
    getTile,
    peekTile,
    computeEtag,
    renderImage,
    renderRgb,
    renderRegion,
    stats: () => frames.stats(),
    clear: () => frames.clear(),
  };
}

export type TileService = ReturnType<typeof createTileService>;

/** A rectangle in the pixels of one level (level 0 = full resolution). */
export interface RectLevelPx {
  xPx: number;
  yPx: number;
  widthPx: number;
  heightPx: number;
}

/** A size scaled to fit `maxSizePx` on its longer side, never enlarged, at least 1 px. */
export function computeFitSize(widthPx: number, heightPx: number, maxSizePx: number): { widthPx: number; heightPx: number } {
  const scale = Math.min(1, maxSizePx / Math.max(widthPx, heightPx));
  return { widthPx: Math.max(1, Math.round(widthPx * scale)), heightPx: Math.max(1, Math.round(heightPx * scale)) };
}

/** The level-0 rectangle in a level's pixels, edges rounded to the nearest pixel, cut at the level's edge. */
export function computeLevelRect(level: Level, regionLevel0: RectLevelPx): RectLevelPx {
  const x0 = Math.max(0, Math.round(regionLevel0.xPx / level.downsample));
  const y0 = Math.max(0, Math.round(regionLevel0.yPx / level.downsampleY));
  const x1 = Math.min(level.widthPx, Math.max(x0 + 1, Math.round((regionLevel0.xPx + regionLevel0.widthPx) / level.downsample)));
  const y1 = Math.min(level.heightPx, Math.max(y0 + 1, Math.round((regionLevel0.yPx + regionLevel0.heightPx) / level.downsampleY)));
  if (x1 <= x0 || y1 <= y0) throw new NotFoundError('The region lies outside the slide', 'REGION_OUTSIDE_SLIDE');
  return { xPx: x0, yPx: y0, widthPx: x1 - x0, heightPx: y1 - y0 };
}

/**
 * The coarsest level whose pixels still give `maxSizePx` across the region and whose read needs at
 * most MAX_RENDER_FRAMES frames; level 0 when none is coarse enough.
 */
export function chooseRegionLevel(levels: readonly Level[], regionLevel0: RectLevelPx, maxSizePx: number): Level {
  const wantedDownsample = Math.max(regionLevel0.widthPx, regionLevel0.heightPx) / maxSizePx;
  const frameCount = (level: Level): number => {
    const rect = computeLevelRect(level, regionLevel0);
    const cols = Math.floor((rect.xPx + rect.widthPx - 1) / level.tileWidthPx) - Math.floor(rect.xPx / level.tileWidthPx) + 1;
    const rows = Math.floor((rect.yPx + rect.heightPx - 1) / level.tileHeightPx) - Math.floor(rect.yPx / level.tileHeightPx) + 1;
    return cols * rows;
  };
  let best = levels[0]!;
  for (const level of levels) {
    if (level.downsample <= wantedDownsample * 1.01 || frameCount(best) > MAX_RENDER_FRAMES) best = level;
  }
  if (frameCount(best) > MAX_RENDER_FRAMES) throw new BadRequestError('The region is too large for its image size: ask for a smaller region or a smaller size', 'REGION_TOO_LARGE');
  return best;
}
