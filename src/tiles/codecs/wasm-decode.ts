import { CodecError } from './codec-error.js';
import { hasMultipleComponentTransform } from './j2k-header.js';
import type { DecodedSamples, FramePixelFormat } from './types.js';
import {
  charLs,
  openJpeg,
  type CharLsModule,
  type OpenJpegModule,
  type WasmCodec,
  type WasmFrameInfo,
} from './wasm-codecs.js';

/** OPJ_CLRSPC_SRGB: OpenJPEG reports it once it has converted sYCC/e-YCC itself, or per a JP2 header. */
const OPJ_COLOR_SPACE_SRGB = 1;

/**
 * JPEG 2000 / HTJ2K samples, and whether OpenJPEG's output is already RGB, which it is when:
 * - the codestream used the multiple component transform (MCT): OpenJPEG inverts it, and the
 *   photometric is YBR_RCT/YBR_ICT (PS3.5 8.2.4) or mislabelled;
 * - OpenJPEG converted YCbCr itself: it does for half-width chroma components (a genuine
 *   YBR_FULL_422 codestream) and when a JP2 header says sYCC, and then reports sRGB;
 * - the photometric says YBR_FULL_422 yet the components are full size (else OpenJPEG would have
 *   converted them): not YBR_FULL_422 data at all. OrthancWSIDicomizer 1.1 writes exactly this for
 *   RGB input without MCT (../shared/wsi/cmu1-t256-j2k); read as YCbCr it turns white to magenta.
 * Only MCT-free YBR_FULL is left for the caller to convert, as PS3.5 8.2.4 says (the components are
 * then those the photometric names).
 */
export interface J2kDecoded {
  samples: DecodedSamples;
  isDecoderOutputRgb: boolean;
}

/**
 * Decodes a JPEG 2000 or HTJ2K frame with OpenJPEG. A fresh decoder per frame, deleted afterwards:
 * a reused decoder keeps the previous frame's pixels and size when a decode fails (it only prints
 * an error), which would silently serve the wrong tile; construction costs nothing next to a decode.
 */
export async function decodeJ2kSamples(data: Uint8Array, format: FramePixelFormat): Promise<J2kDecoded> {
  const isMctUsed = hasMultipleComponentTransform(data);
  const module = await openJpeg.load();
  const decoder = new module.J2KDecoder();
  try {
    const { info, pixels } = runDecoder(openJpeg, data, decoder);
    if (info.componentCount === 3 && info.bitsPerSample > 8) {
      // The WASM build copies out only 8-bit colour (J2KDecoder.hpp leaves deeper colour unfilled).
      throw new CodecError(`${info.bitsPerSample}-bit colour JPEG 2000 is not supported`);
    }
    const isDecoderOutputRgb =
      isMctUsed ||
      decoder.getColorSpace() === OPJ_COLOR_SPACE_SRGB ||
      format.photometricInterpretation === 'YBR_FULL_422';
    // 8-bit output is clamped to 0-255 by the binding, so only deeper samples keep their sign.
    const isSigned = (info.isSigned ?? false) && info.bitsPerSample > 8;
    const samples = describeSamples(info, pixels, format, isSigned, false);
    return { samples, isDecoderOutputRgb };
  } finally {
    decoder.delete();
  }
}

/**
 * Decodes a JPEG-LS frame with CharLS (which also undoes any HP colour transform it signals). The
 * stream carries no sign, so PixelRepresentation says whether samples are two's complement.
 */
export async function decodeJpegLsSamples(data: Uint8Array, format: FramePixelFormat): Promise<DecodedSamples> {
  const module = await charLs.load();
  const decoder = new module.JpegLSDecoder();
  try {
    const { info, pixels } = runDecoder(charLs, data, decoder, module);
    const isPlanar = info.componentCount > 1 && decoder.getInterleaveMode() === 0;
    return describeSamples(info, pixels, format, format.pixelRepresentation === 1, isPlanar);
  } finally {
    decoder.delete();
  }
}

interface Decoder {
  getEncodedBuffer(byteLength: number): Uint8Array;
  decode(): void;
  getDecodedBuffer(): Uint8Array;
  getFrameInfo(): WasmFrameInfo;
}

/** Copies the frame into WASM memory, decodes it, and turns every way of failing into a CodecError. */
function runDecoder(
  codec: WasmCodec<OpenJpegModule> | WasmCodec<CharLsModule>,
  data: Uint8Array,
  decoder: Decoder,
  charLsModule?: CharLsModule,
): { info: WasmFrameInfo; pixels: Uint8Array } {
  let messages: string[];
  try {
    decoder.getEncodedBuffer(data.byteLength).set(data);
    messages = codec.captureMessages(() => decoder.decode());
  } catch (error) {
    if (error instanceof Error && error.name === 'RuntimeError') {
      // A WebAssembly.RuntimeError (trap, emscripten abort) leaves the instance unusable.
      codec.discard();
      throw new CodecError('Decoder aborted', { cause: error });
    }
    // CharLS throws C++ exceptions; they arrive as a pointer to the exception object.
    const reason =
      typeof error === 'number' && charLsModule ? charLsModule.getExceptionMessage(error) : String(error);
    throw new CodecError(`Frame could not be decoded: ${reason}`, { cause: error });
  }
  const errors = messages
    .filter((line) => line.startsWith('[ERROR]'))
    .map((line) => line.replace('[ERROR]', '').trim());
  const info = decoder.getFrameInfo();
  const pixels = decoder.getDecodedBuffer();
  if (errors.length > 0 || info.componentCount === 0 || pixels.byteLength === 0) {
    throw new CodecError(`Frame could not be decoded: ${errors.join('; ') || 'no pixels'}`);
  }
  return { info, pixels };
}

/** Checks the decoded image against the metadata: a mismatch would misplace or garble the tile. */
function describeSamples(
  info: WasmFrameInfo,
  pixels: Uint8Array,
  format: FramePixelFormat,
  isSigned: boolean,
  isPlanar: boolean,
): DecodedSamples {
  if (info.width !== format.columns || info.height !== format.rows) {
    throw new CodecError(`Decoded frame is ${info.width}x${info.height}, metadata says ${format.columns}x${format.rows}`);
  }
  if (info.componentCount !== format.samplesPerPixel) {
    throw new CodecError(
      `Decoded frame has ${info.componentCount} components, metadata says ${format.samplesPerPixel}`,
    );
  }
  if (info.bitsPerSample < 1 || info.bitsPerSample > 16) {
    throw new CodecError(`Decoded frame has ${info.bitsPerSample}-bit samples`);
  }
  return {
    data: pixels,
    widthPx: info.width,
    heightPx: info.height,
    samplesPerPixel: info.componentCount === 1 ? 1 : 3,
    bytesPerSample: info.bitsPerSample > 8 ? 2 : 1,
    // WASM memory is little endian.
    isBigEndian: false,
    bitsStored: info.bitsPerSample,
    isSigned,
    isPlanar,
  };
}
