import { CodecError } from '../../errors.js';
import { hasMultipleComponentTransform } from './j2k-header.js';
import type { DecodedSamples, FramePixelFormat } from './types.js';
import type { WasmFrameInfo } from './wasm-codecs.js';
import type { WasmDecodeRunner } from './wasm-run.js';

/** OPJ_CLRSPC_SRGB: OpenJPEG reports it once it has converted sYCC/e-YCC itself, or per a JP2 header. */
const OPJ_COLOR_SPACE_SRGB = 1;

/** JPEG 2000 / HTJ2K samples, and whether OpenJPEG's output is already RGB. */
export interface J2kDecoded {
  samples: DecodedSamples;
  isDecoderOutputRgb: boolean;
}

/**
 * Decodes a JPEG 2000 or HTJ2K frame with OpenJPEG, run by `runWasm` (on this thread or in a decode
 * pool): only the codec runs there; the header is read and the colour decided here.
 */
export async function decodeJ2kSamples(
  data: Uint8Array,
  format: FramePixelFormat,
  runWasm: WasmDecodeRunner,
): Promise<J2kDecoded> {
  const isMctUsed = hasMultipleComponentTransform(data);
  const { info, pixels, colourSpace } = await runWasm({ codec: 'jpeg2000', data });
  if (info.componentCount === 3 && info.bitsPerSample > 8) {
    // The WASM build copies out only 8-bit colour (J2KDecoder.hpp leaves deeper colour unfilled).
    throw new CodecError(`${info.bitsPerSample}-bit colour JPEG 2000 is not supported`);
  }
  // OpenJPEG's output is already RGB when:
  // - the codestream used the multiple component transform (MCT), which OpenJPEG inverts; the
  //   photometric is then YBR_RCT/YBR_ICT (PS3.5 8.2.4) or mislabelled;
  // - OpenJPEG converted YCbCr itself and says sRGB: it does for half-width chroma components (a
  //   genuine YBR_FULL_422 codestream) and when a JP2 header says sYCC;
  // - the photometric says YBR_FULL_422 yet the components are full size (else OpenJPEG would
  //   have converted them): not YBR_FULL_422 data at all. OrthancWSIDicomizer 1.1 writes exactly
  //   this for RGB input without MCT (../shared/wsi/cmu1-t256-j2k); read as YCbCr, white turns
  //   magenta.
  // That leaves MCT-free YBR_FULL for the caller to convert: PS3.5 8.2.4 says the components are
  // then the ones the photometric names.
  const isDecoderOutputRgb =
    isMctUsed ||
    colourSpace === OPJ_COLOR_SPACE_SRGB ||
    format.photometricInterpretation === 'YBR_FULL_422';
  // 8-bit output is clamped to 0-255 by the binding, so only deeper samples keep their sign.
  const isSigned = (info.isSigned ?? false) && info.bitsPerSample > 8;
  const samples = describeSamples(info, pixels, format, isSigned, false);
  return { samples, isDecoderOutputRgb };
}

/**
 * Decodes a JPEG-LS frame with CharLS (which also undoes any HP colour transform it signals), run by
 * `runWasm`. The stream carries no sign, so PixelRepresentation says whether samples are two's
 * complement.
 */
export async function decodeJpegLsSamples(
  data: Uint8Array,
  format: FramePixelFormat,
  runWasm: WasmDecodeRunner,
): Promise<DecodedSamples> {
  const { info, pixels, interleaveMode } = await runWasm({ codec: 'jpeg-ls', data });
  const isPlanar = info.componentCount > 1 && interleaveMode === 0;
  return describeSamples(info, pixels, format, format.pixelRepresentation === 1, isPlanar);
}

/**
 * Decodes a JPEG baseline/extended (8-bit) frame with libjpeg-turbo, run by `runWasm`. libjpeg converts
 * YCbCr to RGB itself, choosing by the JFIF/Adobe markers and component ids, exactly as sharp's libjpeg
 * does (the pixels are identical); the caller treats colour output as RGB whatever the photometric says.
 */
export async function decodeJpegSamples(data: Uint8Array, format: FramePixelFormat, runWasm: WasmDecodeRunner): Promise<DecodedSamples> {
  const { info, pixels } = await runWasm({ codec: 'jpeg', data });
  return describeSamples(info, pixels, format, false, false);
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
    throw new CodecError(
      `Decoded frame is ${info.width}x${info.height}, metadata says ${format.columns}x${format.rows}`,
    );
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
