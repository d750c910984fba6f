import { CodecError } from '../../errors.js';
import {
  charLs,
  libJpegTurbo,
  openJpeg,
  type CharLsModule,
  type LibJpegTurboModule,
  type OpenJpegModule,
  type WasmCodec,
  type WasmDecoder,
  type WasmFrameInfo,
} from './wasm-codecs.js';

/**
 * The WASM step of a JPEG 2000 / JPEG-LS / JPEG decode and nothing else: codestream in, samples and what
 * the codec says about them out. It is the part that blocks its thread (tens of milliseconds for JPEG
 * 2000, one for a JPEG tile), so it is what the decode pool's workers run (decode-worker.ts); reading the
 * metadata and deciding colour stay with the caller (wasm-decode.ts). Everything here crosses a thread
 * boundary as structured clone.
 */

export type WasmCodecKind = 'jpeg2000' | 'jpeg-ls' | 'jpeg';

export interface WasmDecodeRequest {
  codec: WasmCodecKind;
  /** One frame's codestream. */
  data: Uint8Array;
}

export interface WasmDecodeResult {
  info: WasmFrameInfo;
  /** The decoded samples, in a buffer of their own (not a view of WASM memory). */
  pixels: Uint8Array;
  /** OpenJPEG's OPJ_COLOR_SPACE after decoding; undefined for the others. */
  colourSpace: number | undefined;
  /** CharLS's interleave mode (0 = planar); undefined for the others. */
  interleaveMode: number | undefined;
}

/** Runs the WASM step somewhere: on the calling thread ({@link runWasmDecode}) or in a decode pool. */
export type WasmDecodeRunner = (request: WasmDecodeRequest) => Promise<WasmDecodeResult>;

/**
 * Runs the WASM step on the calling thread, blocking it for the whole decode.
 * @throws CodecError when the codec fails or reports an error.
 */
export async function runWasmDecode(request: WasmDecodeRequest): Promise<WasmDecodeResult> {
  switch (request.codec) {
    case 'jpeg2000':
      return runOpenJpeg(request.data);
    case 'jpeg-ls':
      return runCharLs(request.data);
    case 'jpeg':
      return runLibJpegTurbo(request.data);
  }
}

/**
 * A fresh decoder per frame, deleted afterwards: a reused decoder keeps the previous frame's pixels
 * and size when a decode fails (it only prints an error), which would silently serve the wrong tile;
 * construction costs nothing next to a decode.
 */
async function runOpenJpeg(data: Uint8Array): Promise<WasmDecodeResult> {
  const module = await openJpeg.load();
  const decoder = new module.J2KDecoder();
  try {
    const { info, pixels } = runDecoder(openJpeg, data, decoder);
    return { info, pixels, colourSpace: decoder.getColorSpace(), interleaveMode: undefined };
  } finally {
    decoder.delete();
  }
}

async function runCharLs(data: Uint8Array): Promise<WasmDecodeResult> {
  const module = await charLs.load();
  const decoder = new module.JpegLSDecoder();
  try {
    const readExceptionMessage = (pointer: number): string => module.getExceptionMessage(pointer);
    const { info, pixels } = runDecoder(charLs, data, decoder, readExceptionMessage);
    return { info, pixels, colourSpace: undefined, interleaveMode: decoder.getInterleaveMode() };
  } finally {
    decoder.delete();
  }
}

/** libjpeg reports a corrupt stream by throwing a C++ exception this build gives no message for. */
async function runLibJpegTurbo(data: Uint8Array): Promise<WasmDecodeResult> {
  const module = await libJpegTurbo.load();
  const decoder = new module.JPEGDecoder();
  try {
    const { info, pixels } = runDecoder(libJpegTurbo, data, decoder, () => 'corrupt or unsupported JPEG stream');
    return { info, pixels, colourSpace: undefined, interleaveMode: undefined };
  } finally {
    decoder.delete();
  }
}

/**
 * Copies the frame into WASM memory, decodes it, and turns every way of failing into a CodecError.
 * `readExceptionMessage` reads a thrown C++ exception (CharLS reports errors that way).
 */
function runDecoder(
  codec: Pick<WasmCodec<OpenJpegModule | CharLsModule | LibJpegTurboModule>, 'captureMessages' | 'discard'>,
  data: Uint8Array,
  decoder: WasmDecoder,
  readExceptionMessage?: (exceptionPointer: number) => string,
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
    // A C++ exception arrives as a number: a pointer to the exception object.
    const reason =
      typeof error === 'number' && readExceptionMessage ? readExceptionMessage(error) : String(error);
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
