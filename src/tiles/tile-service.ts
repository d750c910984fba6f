/**
 * Tiles for the browser: one DICOM frame = one JPEG tile. JPEG baseline frames go out byte for byte as
 * the PACS stores them; other syntaxes are decoded and re-encoded once, and the JPEG replaces the raw
 * frame in the cache. Also renders whole small images (label, overview, thumbnail).
 */
import sharp from 'sharp';
import { NotFoundError } from '../errors.js';
import type { SlideSource } from '../source/types.js';
import { computeNativeFrameBytes, getTileFrame, isInGrid, type Slide, type SlideInstance, type TiledImage } from '../wsi/index.js';
import { computeFramePixelFormat, decodeFrame, encodeJpeg, isBrowserReady, transcodeFrameToJpeg, type RgbImage } from './codecs/index.js';
import { createFrameCache, type FrameAddress } from './frame-cache.js';

export interface TileServiceOptions {
  source: SlideSource;
  cacheBytes: number;
  prefetchFrames: number;
  /** Quality of re-encoded JPEGs, 1-100. */
  jpegQuality: number;
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


function frameAddress(slide: Slide, instance: SlideInstance): FrameAddress {
  return {
    studyUid: slide.studyUid,
    seriesUid: slide.seriesUid,
    sopInstanceUid: instance.sopInstanceUid,
    transferSyntaxUid: instance.transferSyntaxUid,
    numberOfFrames: instance.numberOfFrames,
    frameBytes: computeNativeFrameBytes(instance),
  };
}

export function createTileService({ source, cacheBytes, prefetchFrames, jpegQuality }: TileServiceOptions) {
  const frames = createFrameCache({ source, maxBytes: cacheBytes, prefetchFrames });
  const backgrounds = new Map<string, Promise<Buffer>>();
  const transcoding = new Map<string, Promise<Buffer>>();

  function backgroundTile(widthPx: number, heightPx: number): Promise<Buffer> {
    const key = `${widthPx}x${heightPx}`;
    let tile = backgrounds.get(key);
    if (!tile) {
      tile = sharp({ create: { width: widthPx, height: heightPx, channels: 3, background: BACKGROUND } }).jpeg({ quality: jpegQuality }).toBuffer();
      backgrounds.set(key, tile);
    }
    return tile;
  }

  /**
   * The ETag of a tile, computable without fetching it (so a revalidation costs the PACS nothing). It
   * names the frame it comes from: a re-converted slide (new SOP Instance UIDs) changes every ETag.
   */
  function computeEtag(image: TiledImage, slide: Slide, col: number, row: number): string {
    const frame = getTileFrame(image, col, row);
    return frame
      ? `"${slide.instances[frame.instanceIndex]!.sopInstanceUid}:${frame.frameNumber}:q${jpegQuality}"`
      : `"background:${image.tileWidthPx}x${image.tileHeightPx}:q${jpegQuality}"`;
  }

  async function readBrowserJpeg(slide: Slide, instance: SlideInstance, frameNumber: number): Promise<Buffer> {
    const frame = await frames.get(frameAddress(slide, instance), frameNumber);
    if (frame.isBrowserJpeg || isBrowserReady(frame.transferSyntaxUid, instance.photometricInterpretation)) {
      return frame.data;
    }
    const key = `${instance.sopInstanceUid}/${frameNumber}`;
    let job = transcoding.get(key);
    if (!job) {
      job = transcodeFrameToJpeg(frame.data, frame.transferSyntaxUid, computeFramePixelFormat(instance), { quality: jpegQuality })
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
    return { data: await readBrowserJpeg(slide, slide.instances[frame.instanceIndex]!, frame.frameNumber), etag };
  }

  async function decodeTile(slide: Slide, image: TiledImage, col: number, row: number): Promise<RgbImage | undefined> {
    const frame = getTileFrame(image, col, row);
    if (!frame) return undefined;
    const instance = slide.instances[frame.instanceIndex]!;
    const cached = await frames.get(frameAddress(slide, instance), frame.frameNumber);
    return decodeFrame(cached.data, cached.isBrowserJpeg ? '1.2.840.10008.1.2.4.50' : cached.transferSyntaxUid, {
      ...computeFramePixelFormat(instance),
      // A cached browser JPEG is plain YCbCr JPEG whatever the instance's own photometric says.
      ...(cached.isBrowserJpeg ? { photometricInterpretation: 'YBR_FULL_422', samplesPerPixel: 3, bitsAllocated: 8, bitsStored: 8 } : {}),
    });
  }

  /**
   * The whole image as RGB pixels, assembled from its tiles and scaled to fit `maxSizePx` (the tissue
   * mask of an embedding job reads a low-resolution level this way).
   */
  async function renderRgb(slide: Slide, image: TiledImage, maxSizePx: number, maxFrames = MAX_RENDER_FRAMES): Promise<RgbImage> {
    if (image.gridCols * image.gridRows > maxFrames) {
      throw new NotFoundError('The image has too many tiles to render whole', 'IMAGE_TOO_LARGE');
    }
    // Padded edge tiles reach past the image: paste whole tiles on a canvas of whole tiles, then crop.
    const canvasWidthPx = image.gridCols * image.tileWidthPx;
    const canvasHeightPx = image.gridRows * image.tileHeightPx;
    const canvas = Buffer.alloc(canvasWidthPx * canvasHeightPx * 3, BACKGROUND.r);
    const jobs: Promise<void>[] = [];
    for (let row = 0; row < image.gridRows; row++) {
      for (let col = 0; col < image.gridCols; col++) {
        jobs.push(
          decodeTile(slide, image, col, row).then((rgb) => {
            if (!rgb) return;
            const rowBytes = Math.min(rgb.widthPx, image.tileWidthPx) * 3;
            for (let y = 0; y < Math.min(rgb.heightPx, image.tileHeightPx); y++) {
              const target = ((row * image.tileHeightPx + y) * canvasWidthPx + col * image.tileWidthPx) * 3;
              rgb.data.copy(canvas, target, y * rgb.widthPx * 3, y * rgb.widthPx * 3 + rowBytes);
            }
          }),
        );
      }
    }
    await Promise.all(jobs);
    const scale = Math.min(1, maxSizePx / Math.max(image.widthPx, image.heightPx));
    const pipeline = sharp(canvas, { raw: { width: canvasWidthPx, height: canvasHeightPx, channels: 3 } })
      .extract({ left: 0, top: 0, width: image.widthPx, height: image.heightPx });
    const out = scale < 1
      ? await pipeline.resize({ width: Math.max(1, Math.round(image.widthPx * scale)), height: Math.max(1, Math.round(image.heightPx * scale)), fit: 'fill' }).raw().toBuffer({ resolveWithObject: true })
      : await pipeline.raw().toBuffer({ resolveWithObject: true });
    return { data: out.data, widthPx: out.info.width, heightPx: out.info.height, channels: 3 };
  }

  /** The whole image, assembled from its tiles and scaled to fit `maxSizePx`, as a JPEG. */
  async function renderImage(slide: Slide, image: TiledImage, maxSizePx: number): Promise<Buffer> {
    return encodeJpeg(await renderRgb(slide, image, maxSizePx), { quality: jpegQuality });
  }

  return {
    getTile,
    computeEtag,
    renderImage,
    renderRgb,
    stats: () => frames.stats(),
    clear: () => frames.clear(),
  };
}

export type TileService = ReturnType<typeof createTileService>;
