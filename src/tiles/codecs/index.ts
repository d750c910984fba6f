/**
 * Frame codecs: one DICOM frame (as the PACS stores it) plus its pixel description → 8-bit RGB
 * pixels, and → a baseline JPEG for the browser.
 */
export { CodecError } from '../../errors.js';
export {
  createFrameDecoder,
  decodeFrame,
  encodeJpeg,
  isBrowserReady,
  transcodeFrameToJpeg,
  type FrameDecoder,
  type FrameDecoderOptions,
  type JpegOptions,
} from './decode-frame.js';
export { computeFramePixelFormat } from './pixel-format.js';
export { TransferSyntax, isJpegBaselineSyntax, isSupportedSyntax } from './transfer-syntax.js';
export type { FramePixelFormat, RgbImage } from './types.js';
