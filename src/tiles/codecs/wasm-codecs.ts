import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';

/**
 * The emscripten codecs (@cornerstonejs/codec-openjpeg, codec-charls and codec-libjpeg-turbo-8bit, decode-only builds),
 * loaded lazily once per thread (module state is per thread: each decode pool worker has its own).
 * They are pure codecs with no configuration, so a module-level instance is safe to share. The packages ship no typings; the interfaces below are the part of
 * their embind API we use (see packages/openjpeg/src/jslib-decode.cpp and
 * packages/charls/src/jslib-decode.cpp in cornerstonejs/codecs).
 */

/** What the decoders report about the decoded image (embind value object `FrameInfo`). */
export interface WasmFrameInfo {
  width: number;
  height: number;
  bitsPerSample: number;
  componentCount: number;
  /** OpenJPEG only; JPEG-LS has no notion of signed samples. */
  isSigned?: boolean;
}

/** The embind API both decoders share. */
export interface WasmDecoder {
  /** Resizes the decoder's input buffer in WASM memory and returns a view of it to copy into. */
  getEncodedBuffer(byteLength: number): Uint8Array;
  decode(): void;
  /** A JS-owned copy of the decoded samples (both builds copy out of WASM memory). */
  getDecodedBuffer(): Uint8Array;
  getFrameInfo(): WasmFrameInfo;
  /** Frees the decoder and its input and output buffers in WASM memory. */
  delete(): void;
}

export interface J2kDecoder extends WasmDecoder {
  /** OPJ_COLOR_SPACE after decoding: 0 unspecified, 1 sRGB, 2 grey, 3 sYCC, 4 e-YCC, 5 CMYK. */
  getColorSpace(): number;
}

export interface JpegLsDecoder extends WasmDecoder {
  /** 0 = planar (RRR…GGG…BBB); 1 (line) and 2 (sample) both come out pixel-interleaved. */
  getInterleaveMode(): number;
  /** The NEAR parameter: 0 = lossless. */
  getNearLossless(): number;
}

/** libjpeg-turbo's decoder: RGB out for colour frames (libjpeg converts YCbCr), one channel for grey. */
export type JpegDecoder = WasmDecoder;

interface EmscriptenModule {
  /** The whole WASM memory; it only grows. */
  HEAPU8: Uint8Array;
}

export interface OpenJpegModule extends EmscriptenModule {
  J2KDecoder: new () => J2kDecoder;
}

export interface CharLsModule extends EmscriptenModule {
  JpegLSDecoder: new () => JpegLsDecoder;
  /** CharLS throws C++ exceptions, which reach JS as a pointer; this reads their what(). */
  getExceptionMessage(exceptionPointer: number): string;
}

export interface LibJpegTurboModule extends EmscriptenModule {
  JPEGDecoder: new () => JpegDecoder;
}

interface EmscriptenOptions {
  wasmBinary: Uint8Array;
  print: (text: string) => void;
  printErr: (text: string) => void;
}

type EmscriptenFactory<Module> = (options: EmscriptenOptions) => Promise<Module>;

const require = createRequire(import.meta.url);

/**
 * One lazily instantiated WASM codec. Decoder calls are synchronous, so the messages the C code
 * prints during one call (OpenJPEG reports errors only by printing) can be collected by pointing a
 * sink at an array for the duration of the call; outside a call, its chatter (an [INFO] line per
 * frame) is dropped rather than written to stdout.
 */
export class WasmCodec<Module extends EmscriptenModule> {
  readonly #jsSpecifier: string;
  readonly #wasmSpecifier: string;
  #module: Promise<Module> | undefined;
  #messageSink: string[] | undefined;

  constructor(jsSpecifier: string, wasmSpecifier: string) {
    this.#jsSpecifier = jsSpecifier;
    this.#wasmSpecifier = wasmSpecifier;
  }

  /** The instantiated module; the first call loads it, later calls share it. */
  load(): Promise<Module> {
    this.#module ??= this.#instantiate().catch((error: unknown) => {
      // Let a later call retry rather than caching a failure for the life of the process.
      this.#module = undefined;
      throw error;
    });
    return this.#module;
  }

  /**
   * Forgets the instance. Needed after an emscripten abort (a WebAssembly.RuntimeError): the
   * module refuses all further calls, so the next decode must instantiate a fresh one.
   */
  discard(): void {
    this.#module = undefined;
  }

  /** Size of its WASM memory in bytes (it only grows): lets tests detect leaks. Loads the codec. */
  async readMemoryBytes(): Promise<number> {
    return (await this.load()).HEAPU8.byteLength;
  }

  /** Runs a synchronous decoder call, returning what the codec printed while it ran. */
  captureMessages(call: () => void): string[] {
    const messages: string[] = [];
    this.#messageSink = messages;
    try {
      call();
    } finally {
      this.#messageSink = undefined;
    }
    return messages;
  }

  async #instantiate(): Promise<Module> {
    // The factory would find the .wasm beside its script by itself, but only where __dirname is
    // the real package folder; reading it ourselves also works under bundlers and test runners.
    const factory: EmscriptenFactory<Module> = require(this.#jsSpecifier);
    const wasmBinary = await readFile(require.resolve(this.#wasmSpecifier));
    const collect = (text: string): void => {
      this.#messageSink?.push(text.trim());
    };
    return factory({ wasmBinary, print: collect, printErr: collect });
  }
}

export const openJpeg = new WasmCodec<OpenJpegModule>(
  '@cornerstonejs/codec-openjpeg/decodewasmjs',
  '@cornerstonejs/codec-openjpeg/decodewasm',
);

export const charLs = new WasmCodec<CharLsModule>(
  '@cornerstonejs/codec-charls/decodewasmjs',
  '@cornerstonejs/codec-charls/decodewasm',
);

export const libJpegTurbo = new WasmCodec<LibJpegTurboModule>(
  '@cornerstonejs/codec-libjpeg-turbo-8bit/decodewasmjs',
  '@cornerstonejs/codec-libjpeg-turbo-8bit/decodewasm',
);
