import sharp from 'sharp';
import { CodecError } from '../../errors.js';
import type { FramePixelFormat, RgbImage } from './types.js';

/**
 * Decodes a JPEG baseline/extended frame with sharp (libjpeg). libjpeg converts YCbCr to RGB itself,
 * choosing by the JFIF/Adobe markers and component ids, so YBR_FULL_422 frames come out as RGB;
 * grey frames come out replicated to three channels. 12-bit extended JPEG is not supported by
 * sharp's libvips and fails here.
 */
export async function decodeJpegToRgb(data: Uint8Array, format: FramePixelFormat): Promise<RgbImage> {
  let decoded;
  try {
    // failOn 'error' rejects truncated frames but accepts trailing bytes (DICOM pads odd lengths).
    decoded = await sharp(data, { failOn: 'error' })
      .toColourspace('srgb')
      .removeAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
  } catch (error) {
    throw new CodecError(`JPEG frame could not be decoded: ${readErrorMessage(error)}`, { cause: error });
  }
  const { width, height, channels } = decoded.info;
  if (width !== format.columns || height !== format.rows) {
    throw new CodecError(
      `Decoded frame is ${width}x${height}, metadata says ${format.columns}x${format.rows}`,
    );
  }
  if (channels !== 3) {
    throw new CodecError(`JPEG frame decoded to ${channels} channels`);
  }
  if (format.photometricInterpretation === 'MONOCHROME1') {
    for (let i = 0; i < decoded.data.length; i++) decoded.data[i] = 255 - (decoded.data[i] ?? 0);
  }
  return { data: decoded.data, widthPx: width, heightPx: height, channels: 3 };
}

/**
 * Encodes RGB pixels as a baseline (sequential, not progressive) JPEG, which every browser shows.
 * Chroma subsampling is sharp's default (4:2:0).
 */
export async function encodeRgbToJpeg(image: RgbImage, qualityPercent: number): Promise<Buffer> {
  if (!Number.isInteger(qualityPercent) || qualityPercent < 1 || qualityPercent > 100) {
    throw new RangeError(`JPEG quality must be a whole number from 1 to 100, not ${qualityPercent}`);
  }
  const { data, widthPx, heightPx } = image;
  if (data.byteLength !== widthPx * heightPx * 3) {
    throw new CodecError(`RGB image of ${widthPx}x${heightPx} pixels has ${data.byteLength} bytes`);
  }
  try {
    return await sharp(data, { raw: { width: widthPx, height: heightPx, channels: 3 } })
      .jpeg({ quality: qualityPercent, progressive: false, mozjpeg: false })
      .toBuffer();
  } catch (error) {
    throw new CodecError(`JPEG encoding failed: ${readErrorMessage(error)}`, { cause: error });
  }
}

function readErrorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
