/**
 * A frame could not be decoded or encoded: unsupported transfer syntax or pixel description, a corrupt
 * codestream, or pixel metadata that contradicts the codestream. Kept a plain small class for now; it
 * is meant to be rebased onto the gateway's error base (src/errors.ts) without changing call sites.
 */
export class CodecError extends Error {
  readonly code = 'CODEC_FAILED';

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CodecError';
  }
}
