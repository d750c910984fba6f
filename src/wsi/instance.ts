/**
 * What the slide model needs to know about one VL Whole Slide Microscopy instance: the typed record the
 * sources parse DICOM JSON (PS3.18 F.2) and Part 10 files into.
 */

/** VL Whole Slide Microscopy Image Storage (PS3.4 B.5). */
export const VL_WSI_SOP_CLASS = '1.2.840.10008.5.1.4.1.1.77.1.6';

/** Position of one frame in the total pixel matrix (PS3.3 C.8.12.6.1), 1-based pixel coordinates. */
export interface FramePositions {
  /** ColumnPositionInTotalImagePixelMatrix (0048,021E) per frame, 1-based. */
  columnPx: Int32Array;
  /** RowPositionInTotalImagePixelMatrix (0048,021F) per frame, 1-based. */
  rowPx: Int32Array;
  /** ZOffsetInSlideCoordinateSystem (0040,074A) in µm per frame, NaN when absent. */
  zOffsetUm: Float64Array;
  /** OpticalPathIdentifier (0048,0106) per frame, '' when absent. */
  opticalPath: string[];
}

/** One VL Whole Slide Microscopy instance. */
export interface WsiInstance {
  studyUid: string;
  seriesUid: string;
  sopInstanceUid: string;
  sopClassUid: string | undefined;
  /** ImageType (0008,0008); empty when absent. Value 3 is the flavor (VOLUME, LABEL, OVERVIEW, THUMBNAIL). */
  imageType: readonly string[];
  /** Transfer syntax the instance is stored in, when the metadata says (0002,0010 or 0008,3002). */
  transferSyntaxUid: string | undefined;
  /** Rows (0028,0010): frame height in pixels. */
  frameHeightPx: number;
  /** Columns (0028,0011): frame width in pixels. */
  frameWidthPx: number;
  numberOfFrames: number;
  /** TotalPixelMatrixColumns (0048,0006); for untiled images, Columns. */
  totalWidthPx: number;
  /** TotalPixelMatrixRows (0048,0007); for untiled images, Rows. */
  totalHeightPx: number;
  samplesPerPixel: number;
  photometricInterpretation: string;
  bitsAllocated: number;
  bitsStored: number;
  pixelRepresentation: number;
  planarConfiguration: number;
  /** DimensionOrganizationType (0020,9311): TILED_FULL, TILED_SPARSE, 3D, ... */
  dimensionOrganizationType: string | undefined;
  /** PixelSpacing (0028,0030) from the shared functional groups, in mm: [between rows, between columns]. */
  pixelSpacingMm: readonly [number, number] | undefined;
  /** ImagedVolumeWidth (0048,0001) and Height (0048,0002), in mm. */
  imagedVolumeWidthMm: number | undefined;
  imagedVolumeHeightMm: number | undefined;
  totalPixelMatrixFocalPlanes: number;
  numberOfOpticalPaths: number;
  /** Concatenation (PS3.3 C.7.6.16.2.2.4): parts of one level split over several instances. */
  concatenationUid: string | undefined;
  /** ConcatenationFrameOffsetNumber (0020,9228): frames in earlier parts of the concatenation. */
  concatenationFrameOffset: number;
  frameOfReferenceUid: string | undefined;
  /** Per-frame positions from PerFrameFunctionalGroupsSequence, when present. */
  framePositions: FramePositions | undefined;
  seriesDescription: string | undefined;
  studyDescription: string | undefined;
  containerIdentifier: string | undefined;
  /** Attributes a slide needs that this record lacks (e.g. a PACS returning only main tags). */
  missing: readonly string[];
}


/** Bytes of one native (uncompressed) frame: rows x columns x samples x bytes per sample (PS3.5 §8.1.1). */
export function computeNativeFrameBytes(
  instance: Pick<WsiInstance, 'frameWidthPx' | 'frameHeightPx' | 'samplesPerPixel' | 'bitsAllocated'>,
): number {
  return (instance.frameWidthPx * instance.frameHeightPx * instance.samplesPerPixel * instance.bitsAllocated) / 8;
}
