/**
 * The pixel description of one frame, as DICOM's Image Pixel module states it (PS3.3 C.7.6.3). The
 * field names follow the DICOM attributes, so the source can fill them without translation.
 */
export interface FramePixelFormat {
  /** Frame height in pixels (Rows, 0028,0010). */
  rows: number;
  /** Frame width in pixels (Columns, 0028,0011). */
  columns: number;
  /** 1 (monochrome) or 3 (colour) (Samples per Pixel, 0028,0002). */
  samplesPerPixel: number;
  /** Bits per sample in storage: 8 or 16 (Bits Allocated, 0028,0100). */
  bitsAllocated: number;
  /** Significant bits per sample, at most bitsAllocated (Bits Stored, 0028,0101). */
  bitsStored: number;
  /** 0 = unsigned, 1 = two's complement (Pixel Representation, 0028,0103). */
  pixelRepresentation: number;
  /** RGB, YBR_FULL, YBR_FULL_422, YBR_ICT, YBR_RCT, MONOCHROME1 or MONOCHROME2 (0028,0004). */
  photometricInterpretation: string;
  /** 0 = samples interleaved per pixel, 1 = one plane per sample (Planar Configuration, 0028,0006). */
  planarConfiguration: number;
}

/** 8-bit sRGB pixels, row-major, pixel-interleaved (R, G, B), no padding between rows. */
export interface RgbImage {
  /** widthPx * heightPx * 3 bytes. */
  data: Buffer;
  widthPx: number;
  heightPx: number;
  channels: 3;
}

/**
 * Decoded samples before any colour handling: what a codec hands back. Samples are 1 or 2 bytes
 * each; 2-byte samples are little endian unless `isBigEndian`.
 */
export interface DecodedSamples {
  data: Uint8Array;
  widthPx: number;
  heightPx: number;
  samplesPerPixel: 1 | 3;
  bytesPerSample: 1 | 2;
  isBigEndian: boolean;
  /** Significant low bits of each sample; higher bits are ignored (they may hold overlay data). */
  bitsStored: number;
  isSigned: boolean;
  /** true = RRR…GGG…BBB (Planar Configuration 1), false = RGBRGB… */
  isPlanar: boolean;
}
