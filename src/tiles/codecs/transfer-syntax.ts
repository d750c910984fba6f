/** Transfer Syntax UIDs this module understands (PS3.6 Annex A, PS3.5 section 10 and Annex A). */
export const TransferSyntax = {
  implicitVrLittleEndian: '1.2.840.10008.1.2',
  explicitVrLittleEndian: '1.2.840.10008.1.2.1',
  /** Encapsulated Uncompressed (PS3.5 A.4.11): each fragment is a native frame. */
  encapsulatedUncompressed: '1.2.840.10008.1.2.1.98',
  /** Deflate applies to the whole data set; frames reach us already inflated. */
  deflatedExplicitVrLittleEndian: '1.2.840.10008.1.2.1.99',
  explicitVrBigEndian: '1.2.840.10008.1.2.2',
  jpegBaseline: '1.2.840.10008.1.2.4.50',
  jpegExtended: '1.2.840.10008.1.2.4.51',
  jpegLsLossless: '1.2.840.10008.1.2.4.80',
  jpegLsNearLossless: '1.2.840.10008.1.2.4.81',
  jpeg2000Lossless: '1.2.840.10008.1.2.4.90',
  jpeg2000: '1.2.840.10008.1.2.4.91',
  htj2kLossless: '1.2.840.10008.1.2.4.201',
  htj2kLosslessRpcl: '1.2.840.10008.1.2.4.202',
  htj2k: '1.2.840.10008.1.2.4.203',
} as const;

/** Which decoder a transfer syntax needs. */
export type CodecKind = 'native' | 'jpeg' | 'jpeg-ls' | 'jpeg2000';

const codecKindBySyntax: ReadonlyMap<string, CodecKind> = new Map<string, CodecKind>([
  [TransferSyntax.implicitVrLittleEndian, 'native'],
  [TransferSyntax.explicitVrLittleEndian, 'native'],
  [TransferSyntax.encapsulatedUncompressed, 'native'],
  [TransferSyntax.deflatedExplicitVrLittleEndian, 'native'],
  [TransferSyntax.explicitVrBigEndian, 'native'],
  [TransferSyntax.jpegBaseline, 'jpeg'],
  [TransferSyntax.jpegExtended, 'jpeg'],
  [TransferSyntax.jpegLsLossless, 'jpeg-ls'],
  [TransferSyntax.jpegLsNearLossless, 'jpeg-ls'],
  [TransferSyntax.jpeg2000Lossless, 'jpeg2000'],
  [TransferSyntax.jpeg2000, 'jpeg2000'],
  // OpenJPEG (2.5+, which the WASM build bundles) decodes HTJ2K block coding too.
  [TransferSyntax.htj2kLossless, 'jpeg2000'],
  [TransferSyntax.htj2kLosslessRpcl, 'jpeg2000'],
  [TransferSyntax.htj2k, 'jpeg2000'],
]);

/**
 * Whether frames in this syntax are what a browser shows as-is: JPEG baseline (8-bit, Huffman,
 * sequential) only. Extended (.51) may be 12-bit, which browsers cannot show.
 */
export function isJpegBaselineSyntax(transferSyntaxUid: string): boolean {
  return transferSyntaxUid === TransferSyntax.jpegBaseline;
}

/** Whether {@link decodeFrame} can decode frames in this transfer syntax. */
export function isSupportedSyntax(transferSyntaxUid: string): boolean {
  return codecKindBySyntax.has(transferSyntaxUid);
}

/** The decoder for a transfer syntax, or undefined when unsupported. */
export function getCodecKind(transferSyntaxUid: string): CodecKind | undefined {
  return codecKindBySyntax.get(transferSyntaxUid);
}
