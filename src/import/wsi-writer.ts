/**
 * An image → a DICOM VL Whole Slide Microscopy pyramid (PS3.3 A.32.8), one Part 10 file per level plus
 * optional LABEL and OVERVIEW instances, all in one new series.
 *
 * Choices a newcomer will ask about:
 * - TILED_FULL (DimensionOrganizationType, PS3.3 C.7.6.17): every tile of a level is present and frames
 *   are stored in order, column fastest, then row. The frame of tile (col, row) is row * cols + col + 1,
 *   so no per-frame positions are written: smaller headers, and every reader supports it.
 * - Edge tiles are full-size frames (Rows x Columns) padded with white, the colour of empty glass, as
 *   scanners pad; TotalPixelMatrixColumns/Rows say where the image really ends (C.8.12.4.1.4).
 * - JPEG baseline (1.2.840.10008.1.2.4.50) in YCbCr with 4:2:0 chroma, labelled YBR_FULL_422. sharp
 *   (libvips) can write 4:2:0 or 4:4:4, not 4:2:2. For lossy compression the WSI IOD allows only
 *   YBR_FULL_422 among the YCbCr values (PS3.3 C.8.12.4.1.5), and PS3.5 §8.2.1 uses it for subsampled
 *   YCbCr JPEG; CP 1653 (as dcmtk issue #995 cites it) clarified that this includes 4:2:0. The
 *   codestream's sampling factors say which; decoders follow them. Every JPEG slide in ../shared/wsi
 *   (Google's converters, OrthancWSIDicomizer) is 4:2:0 labelled YBR_FULL_422 too.
 * - Levels are resampled from level 0 (not from each other) with a Lanczos kernel; a level's size is
 *   ceil(level-0 size / downsample), and its PixelSpacing is level 0's scaled by the exact size ratio,
 *   so non-power-of-2 and non-integer downsamples are exact (see Level.downsample in wsi/types.ts).
 * - Memory: level 0 is decoded once to RGB (3 bytes per pixel) and one resampled level at a time is
 *   held beside it; tiles are cut and encoded a few at a time and streamed to disk.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import sharp, { type KernelEnum } from 'sharp';
import { BadRequestError } from '../errors.js';
import { TransferSyntax } from '../tiles/codecs/transfer-syntax.js';
import { VL_WSI_SOP_CLASS } from '../wsi/instance.js';
import type { TiledImage } from '../wsi/types.js';
import { encodePart10Header, writeEncapsulatedPart10 } from './part10-writer.js';
import { encodeJpeg, encodeTiles, readRgb, resampleRgb, type ImageInput, type RgbImage } from './raster.js';
import { computeWsiDataset, createUid, type InstanceAttributes, type SeriesAttributes } from './wsi-dataset.js';

export type { ImageInput } from './raster.js';

/** One pyramid level to write. */
export interface LevelSpec {
  /** Level-0 size / this level's size (1 for level 0); any value ≥ 1, e.g. 3 or 10.5. */
  downsample: number;
  /** Edge of the square tiles (frames), in pixels. */
  tileSizePx: number;
}

export interface WsiWriteOptions {
  /** The levels, largest first; the first has downsample 1. */
  levels: readonly LevelSpec[];
  /** JPEG quality, 1-100. @default 90 */
  jpegQuality?: number;
  /** Micrometres per pixel of level 0 (both axes). @default 0.5 */
  mppAtLevel0?: number;
  /** Generated (2.25 + a random UUID) when absent. */
  studyUid?: string;
  seriesUid?: string;
  studyDescription?: string;
  seriesDescription?: string;
  /** @default 'Synthetic^Slide' */
  patientName?: string;
  /** @default 'SYNTH-0001' */
  patientId?: string;
  /** The slide's barcode (ContainerIdentifier). @default 'SYNTH-SLIDE-0001' */
  containerIdentifier?: string;
  /** @default 1 */
  seriesNumber?: number;
  /** Written as a one-frame LABEL instance. */
  label?: ImageInput;
  /** Written as a one-frame OVERVIEW instance. */
  overview?: ImageInput;
  /** sharp's resampling kernel. @default 'lanczos3' */
  resampleKernel?: keyof KernelEnum;
  /** Content, study and acquisition date/time. @default now */
  createdAt?: Date;
}

/** One written instance: its file, and its geometry as the slide model names it. */
export interface WrittenImage extends Pick<TiledImage, 'widthPx' | 'heightPx' | 'tileWidthPx' | 'tileHeightPx' | 'gridCols' | 'gridRows'> {
  path: string;
  sopInstanceUid: string;
  /** gridCols x gridRows: TILED_FULL has every tile. */
  frameCount: number;
  fileBytes: number;
}

export interface WrittenLevel extends WrittenImage {
  index: number;
  /** Level-0 width / this level's width: the exact ratio readers compute. */
  downsample: number;
  /** The downsample asked for. */
  requestedDownsample: number;
  /** µm per pixel along x and y. */
  mppX: number;
  mppY: number;
}

export interface WrittenPyramid {
  studyUid: string;
  seriesUid: string;
  frameOfReferenceUid: string;
  levels: WrittenLevel[];
  label: WrittenImage | undefined;
  overview: WrittenImage | undefined;
  /** Every file written, levels first. */
  files: string[];
}

/** JPEG frames are at most 65,535 pixels on a side (ISO 10918-1 B.2.2). */
const MAX_JPEG_SIDE_PX = 65_535;

function invalid(message: string): BadRequestError {
  return new BadRequestError(message, 'INVALID_WSI_OPTIONS');
}

/** Level sizes from the options, checked: they must shrink strictly and fit JPEG. */
function computeLevelSizes(levels: readonly LevelSpec[], widthPx: number, heightPx: number): Array<{ widthPx: number; heightPx: number }> {
  if (levels.length === 0) throw invalid('At least one level is needed');
  if (levels[0]!.downsample !== 1) throw invalid('The first level must have downsample 1');
  return levels.map((level, i) => {
    if (!Number.isFinite(level.downsample) || level.downsample < 1) throw invalid(`Level ${i}: downsample must be a number ≥ 1`);
    if (!Number.isInteger(level.tileSizePx) || level.tileSizePx < 16 || level.tileSizePx > MAX_JPEG_SIDE_PX) {
      throw invalid(`Level ${i}: tileSizePx must be an integer from 16 to ${MAX_JPEG_SIDE_PX}`);
    }
    const size = { widthPx: Math.ceil(widthPx / level.downsample), heightPx: Math.ceil(heightPx / level.downsample) };
    const previous = levels[i - 1];
    if (previous && level.downsample <= previous.downsample) throw invalid(`Level ${i}: downsamples must increase`);
    if (previous && size.widthPx === Math.ceil(widthPx / previous.downsample) && size.heightPx === Math.ceil(heightPx / previous.downsample)) {
      throw invalid(`Levels ${i - 1} and ${i} would have the same size ${size.widthPx}x${size.heightPx}`);
    }
    return size;
  });
}

/** sharp's built-in sRGB ICC profile, read back from a 1-pixel image that embeds it. */
async function readSrgbIccProfile(): Promise<Buffer> {
  const png = await sharp({ create: { width: 1, height: 1, channels: 3, background: '#ffffff' } }).withIccProfile('srgb').png().toBuffer();
  const { icc } = await sharp(png).metadata();
  if (!icc) throw new Error('sharp did not embed an sRGB ICC profile');
  return icc;
}

async function* oneFrame(frame: Promise<Buffer>): AsyncGenerator<Buffer> {
  yield await frame;
}

/** Writes one instance of the series; `instance` lacks what only the written frames tell. */
async function writeInstance(
  path: string,
  frames: AsyncIterable<Buffer>,
  series: SeriesAttributes,
  instance: Omit<InstanceAttributes, 'compressionRatio' | 'frameCount'>,
): Promise<WrittenImage> {
  const gridCols = Math.ceil(instance.widthPx / instance.tileWidthPx);
  const gridRows = Math.ceil(instance.heightPx / instance.tileHeightPx);
  const { frameCount, fileBytes } = await writeEncapsulatedPart10(path, frames, (stats) => {
    const frameBytes = instance.tileWidthPx * instance.tileHeightPx * 3;
    const compressionRatio = (frameBytes * stats.frameCount) / stats.frameBytes;
    const dataset = computeWsiDataset(series, { ...instance, frameCount: stats.frameCount, compressionRatio });
    const meta = { sopClassUid: VL_WSI_SOP_CLASS, sopInstanceUid: instance.sopInstanceUid, transferSyntaxUid: TransferSyntax.jpegBaseline };
    return encodePart10Header(meta, dataset);
  });
  if (frameCount !== gridCols * gridRows) throw new Error(`Wrote ${frameCount} frames, the grid has ${gridCols * gridRows}`);
  const { widthPx, heightPx, tileWidthPx, tileHeightPx, sopInstanceUid } = instance;
  return { path, sopInstanceUid, widthPx, heightPx, tileWidthPx, tileHeightPx, gridCols, gridRows, frameCount, fileBytes };
}

/** A label or overview decoded, checked to fit one JPEG frame. */
async function readAssociated(input: ImageInput | undefined, name: string): Promise<RgbImage | undefined> {
  if (input === undefined) return undefined;
  const image = await readRgb(input);
  if (image.widthPx > MAX_JPEG_SIDE_PX || image.heightPx > MAX_JPEG_SIDE_PX) throw invalid(`The ${name} image is too large for one JPEG frame`);
  return image;
}

/** A label or overview: the whole image as one frame. */
async function writeAssociated(
  image: RgbImage,
  path: string,
  flavor: 'LABEL' | 'OVERVIEW',
  instanceNumber: number,
  series: SeriesAttributes,
  quality: number,
): Promise<WrittenImage> {
  const { widthPx, heightPx } = image;
  const frames = oneFrame(encodeJpeg(image.data, widthPx, heightPx, quality));
  return writeInstance(path, frames, series, {
    sopInstanceUid: createUid(),
    instanceNumber,
    flavor,
    isOriginal: true,
    widthPx,
    heightPx,
    tileWidthPx: widthPx,
    tileHeightPx: heightPx,
    pixelSpacingMm: undefined,
  });
}

/**
 * Writes `input` as a WSI pyramid into `outDir` (created if missing): `level-<i>.dcm` per level, then
 * `label.dcm` and `overview.dcm` when given. Files appear only when complete. Throws BadRequestError
 * (code INVALID_WSI_OPTIONS) for options that cannot make a pyramid, before writing anything; sharp's
 * errors for inputs it cannot read pass through.
 */
export async function writeWsiPyramid(input: ImageInput, outDir: string, options: WsiWriteOptions): Promise<WrittenPyramid> {
  const { levels, jpegQuality = 90, mppAtLevel0 = 0.5, resampleKernel = 'lanczos3', createdAt = new Date() } = options;
  if (!Number.isInteger(jpegQuality) || jpegQuality < 1 || jpegQuality > 100) throw invalid('jpegQuality must be an integer from 1 to 100');
  if (!(mppAtLevel0 > 0)) throw invalid('mppAtLevel0 must be positive');
  for (const [name, uid] of [['studyUid', options.studyUid], ['seriesUid', options.seriesUid]] as const) {
    // PS3.5 §9.1: digits and dots, no leading zero in a component, 64 characters at most.
    if (uid !== undefined && !(uid.length <= 64 && /^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$/.test(uid))) throw invalid(`${name} is not a valid UID`);
  }
  const base = await readRgb(input);
  const sizes = computeLevelSizes(levels, base.widthPx, base.heightPx);
  const labelImage = await readAssociated(options.label, 'label');
  const overviewImage = await readAssociated(options.overview, 'overview');
  await mkdir(outDir, { recursive: true });

  const series: SeriesAttributes = {
    studyUid: options.studyUid ?? createUid(),
    seriesUid: options.seriesUid ?? createUid(),
    frameOfReferenceUid: createUid(),
    dimensionOrganizationUid: createUid(),
    specimenUid: createUid(),
    seriesNumber: options.seriesNumber ?? 1,
    patientName: options.patientName ?? 'Synthetic^Slide',
    patientId: options.patientId ?? 'SYNTH-0001',
    studyDescription: options.studyDescription,
    seriesDescription: options.seriesDescription,
    containerIdentifier: options.containerIdentifier ?? 'SYNTH-SLIDE-0001',
    createdAt,
    iccProfile: await readSrgbIccProfile(),
    imagedWidthMm: (base.widthPx * mppAtLevel0) / 1000,
    imagedHeightMm: (base.heightPx * mppAtLevel0) / 1000,
  };

  const written: WrittenLevel[] = [];
  for (const [index, spec] of levels.entries()) {
    const { widthPx, heightPx } = sizes[index]!;
    // Spacing from the exact size ratio, so that width x spacing is level 0's width on every level.
    const mppX = (mppAtLevel0 * base.widthPx) / widthPx;
    const mppY = (mppAtLevel0 * base.heightPx) / heightPx;
    // One level's pixels at a time: this binding ends with the iteration, before the next resample.
    const level = await resampleRgb(base, widthPx, heightPx, resampleKernel);
    const image = await writeInstance(join(outDir, `level-${index}.dcm`), encodeTiles(level, spec.tileSizePx, spec.tileSizePx, jpegQuality), series, {
      sopInstanceUid: createUid(),
      instanceNumber: index + 1,
      flavor: 'VOLUME',
      isOriginal: index === 0,
      widthPx,
      heightPx,
      tileWidthPx: spec.tileSizePx,
      tileHeightPx: spec.tileSizePx,
      pixelSpacingMm: [mppY / 1000, mppX / 1000],
    });
    written.push({ ...image, index, downsample: base.widthPx / widthPx, requestedDownsample: spec.downsample, mppX, mppY });
  }

  const writeIf = (image: RgbImage | undefined, flavor: 'LABEL' | 'OVERVIEW', instanceNumber: number) =>
    image && writeAssociated(image, join(outDir, `${flavor.toLowerCase()}.dcm`), flavor, instanceNumber, series, jpegQuality);
  const label = await writeIf(labelImage, 'LABEL', levels.length + 1);
  const overview = await writeIf(overviewImage, 'OVERVIEW', levels.length + 2);
  return {
    studyUid: series.studyUid,
    seriesUid: series.seriesUid,
    frameOfReferenceUid: series.frameOfReferenceUid,
    levels: written,
    label,
    overview,
    files: [...written, label, overview].filter((w): w is WrittenImage => w !== undefined).map((w) => w.path),
  };
}
