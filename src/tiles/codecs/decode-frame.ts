import { CodecError } from '../../errors.js';
import { computeRgbImage } from './colour.js';
import { decodeJpegToRgb, encodeRgbToJpeg } from './jpeg.js';
import { readNativeSamples } from './native.js';
import { checkPixelFormat, computeColourModel } from './pixel-format.js';
import { TransferSyntax, getCodecKind, isJpegBaselineSyntax } from './transfer-syntax.js';
import type { FramePixelFormat, RgbImage } from './types.js';
import { createDecodePool } from './decode-pool.js';
import { decodeJ2kSamples, decodeJpegLsSamples, decodeJpegSamples } from './wasm-decode.js';
import { runWasmDecode, type WasmDecodeRunner } from './wasm-run.js';

/** Options for producing a browser JPEG. */
export interface JpegOptions {
  /**
   * libjpeg quality, 1-100.
   * @default 90
   */
  quality?: number;
}

/**
 * Decodes one frame, as the PACS stores it in the given transfer syntax, to 8-bit RGB. Deeper
 * samples are scaled from their stored range, monochrome is replicated (MONOCHROME1 inverted), and
 * YBR is converted where the codec has not already done so.
 *
 * @param data the bytes of one frame: a native frame (already inflated for deflated syntaxes) or one
 *   encapsulated frame's codestream.
 * @param runWasm where JPEG 2000 and JPEG-LS codestreams are decoded: by default on this thread; the
 *   gateway passes its decode pool's (see {@link createFrameDecoder}).
 * @param isJpegInRunner JPEG frames too go to `runWasm` (libjpeg-turbo in WASM) instead of sharp: what
 *   a decode pool does, where one JPEG tile costs about half the CPU sharp's pipeline does.
 * @throws CodecError when the syntax or pixel format is unsupported or the frame is corrupt.
 */
export async function decodeFrame(
  data: Uint8Array,
  transferSyntaxUid: string,
  format: FramePixelFormat,
  runWasm: WasmDecodeRunner = runWasmDecode,
  isJpegInRunner = false,
): Promise<RgbImage> {
  const kind = getCodecKind(transferSyntaxUid);
  if (kind === undefined) {
    throw new CodecError(`Unsupported transfer syntax ${transferSyntaxUid}`);
  }
  checkPixelFormat(format);
  const photometric = format.photometricInterpretation;
  if ((photometric === 'YBR_ICT' || photometric === 'YBR_RCT') && kind !== 'jpeg2000') {
    // PS3.3 C.7.6.3.1.2: these name JPEG 2000's component transforms and mean nothing elsewhere.
    throw new CodecError(`${photometric} is only valid for JPEG 2000 frames`);
  }
  switch (kind) {
    case 'native': {
      const isBigEndian = transferSyntaxUid === TransferSyntax.explicitVrBigEndian;
      const samples = readNativeSamples(data, format, isBigEndian);
      return computeRgbImage(samples, computeColourModel(format, false));
    }
    case 'jpeg': {
      if (!isJpegInRunner) return decodeJpegToRgb(data, format);
      const samples = await decodeJpegSamples(data, format, runWasm);
      return computeRgbImage(samples, computeColourModel(format, true));
    }
    case 'jpeg-ls': {
      const samples = await decodeJpegLsSamples(data, format, runWasm);
      return computeRgbImage(samples, computeColourModel(format, false));
    }
    case 'jpeg2000': {
      const { samples, isDecoderOutputRgb } = await decodeJ2kSamples(data, format, runWasm);
      return computeRgbImage(samples, computeColourModel(format, isDecoderOutputRgb));
    }
  }
}

/**
 * Encodes RGB pixels as a baseline JPEG for the browser.
 * @throws RangeError for a quality outside 1-100; CodecError when encoding fails.
 */
export async function encodeJpeg(image: RgbImage, options: JpegOptions = {}): Promise<Buffer> {
  const { quality = 90 } = options;
  return encodeRgbToJpeg(image, quality);
}

/** Whether a frame's stored bytes are a JPEG a browser shows right as they are (MONOCHROME1 would come out inverted). */
export function isBrowserReady(transferSyntaxUid: string, photometricInterpretation: string): boolean {
  return isJpegBaselineSyntax(transferSyntaxUid) && photometricInterpretation !== 'MONOCHROME1';
}

/**
 * A frame as a JPEG a browser can show. A JPEG baseline frame is returned unchanged (the same
 * bytes, not a copy, and not re-encoded, so no generation loss), except MONOCHROME1, which a
 * browser would show inverted. Anything else is decoded and encoded.
 */
export async function transcodeFrameToJpeg(
  data: Uint8Array,
  transferSyntaxUid: string,
  format: FramePixelFormat,
  options: JpegOptions = {},
  runWasm: WasmDecodeRunner = runWasmDecode,
  isJpegInRunner = false,
): Promise<Buffer> {
  if (isBrowserReady(transferSyntaxUid, format.photometricInterpretation)) {
    return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  }
  return encodeJpeg(await decodeFrame(data, transferSyntaxUid, format, runWasm, isJpegInRunner), options);
}

/** {@link decodeFrame} and {@link transcodeFrameToJpeg} with their WASM decodes in one place. */
export interface FrameDecoder {
  decodeFrame(data: Uint8Array, transferSyntaxUid: string, format: FramePixelFormat): Promise<RgbImage>;
  transcodeFrameToJpeg(data: Uint8Array, transferSyntaxUid: string, format: FramePixelFormat, options?: JpegOptions): Promise<Buffer>;
  /** Stops the decode pool's workers; later WASM decodes fail with ClosingError. Idempotent. */
  close(): Promise<void>;
}

export interface FrameDecoderOptions {
  /**
   * Worker threads for JPEG 2000, JPEG-LS and JPEG decodes (GATEWAY_DECODE_THREADS); 0 = JPEG 2000 and
   * JPEG-LS on the calling thread, blocking it for each decode, and JPEG with sharp (which runs it off
   * the event loop, at about twice the CPU per tile). Native frames are decoded where they are asked for.
   */
  threads: number;
}

/**
 * The gateway's one way in for frame decodes: every WASM decode goes through the same pool, whose
 * workers start when the first frame needs them (a gateway serving JPEG slides to viewers never
 * decodes one: their tiles go out as stored; embedding jobs decode every tile they cut).
 * Colour conversion and JPEG encoding stay on the calling thread.
 */
export function createFrameDecoder({ threads }: FrameDecoderOptions): FrameDecoder {
  const pool = threads > 0 ? createDecodePool({ threads }) : undefined;
  const runWasm = pool ? pool.run : runWasmDecode;
  const isJpegInRunner = pool !== undefined;
  return {
    decodeFrame: (data, transferSyntaxUid, format) => decodeFrame(data, transferSyntaxUid, format, runWasm, isJpegInRunner),
    transcodeFrameToJpeg: (data, transferSyntaxUid, format, options) => transcodeFrameToJpeg(data, transferSyntaxUid, format, options, runWasm, isJpegInRunner),
    close: async () => pool?.close(),
  };
}
