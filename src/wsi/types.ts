import type { WsiInstance } from './instance.js';

/**
 * The slide model: plain data computed from metadata alone. Pixel units are named in every field
 * (`Px`), physical ones too (`mpp` = µm per pixel, `Mm`).
 */

/** Where one tile's pixels are: an instance of the slide (index into `Slide.instances`) and a frame. */
export interface FrameRef {
  instanceIndex: number;
  /** 1-based, as DICOM counts frames. */
  frameNumber: number;
}

/** A tiled image: a pyramid level, a label or an overview. */
export interface TiledImage {
  widthPx: number;
  heightPx: number;
  tileWidthPx: number;
  tileHeightPx: number;
  /** Tiles across and down: ceil(size / tile size). Edge tiles are padded frames (PS3.3 C.8.12.4.1.4). */
  gridCols: number;
  gridRows: number;
  /**
   * For each tile (row-major: row * gridCols + col), the instance index holding it, or -1 when a
   * TILED_SPARSE image has no frame there.
   */
  tileInstance: Int32Array;
  /** For each tile, its 1-based frame number in that instance (0 when missing). */
  tileFrameNumber: Int32Array;
  /** Tiles that have a frame. */
  tileCount: number;
}

export interface Level extends TiledImage {
  /** 0 = full resolution. */
  index: number;
  /**
   * Level-0 width / this level's width, NOT rounded: converters write pyramids with non-power-of-2 and
   * non-integer ratios (e.g. 2220 → 1110 → 555 → 277), and a rounded ratio misplaces tiles at high
   * zoom-out (the bug dicom-microscopy-viewer fixed in slim#318).
   */
  downsample: number;
  /** Level-0 height / this level's height, for the rare pyramid whose axes shrink differently. */
  downsampleY: number;
  /** µm per pixel along a row (x) and along a column (y); undefined when the metadata has no spacing. */
  mppX: number | undefined;
  mppY: number | undefined;
  /** SOP Instance UIDs this level's frames come from (several for a concatenation). */
  sopInstanceUids: readonly string[];
}

export type AssociatedKind = 'label' | 'overview';

export interface AssociatedImage extends TiledImage {
  kind: AssociatedKind;
  sopInstanceUids: readonly string[];
}

/** What a frame of an instance needs to be located and decoded. */
export type SlideInstance = Pick<
  WsiInstance,
  | 'sopInstanceUid'
  | 'transferSyntaxUid'
  | 'numberOfFrames'
  | 'frameWidthPx'
  | 'frameHeightPx'
  | 'samplesPerPixel'
  | 'photometricInterpretation'
  | 'bitsAllocated'
  | 'bitsStored'
  | 'pixelRepresentation'
  | 'planarConfiguration'
>;

export interface Slide {
  studyUid: string;
  seriesUid: string;
  studyDescription: string | undefined;
  seriesDescription: string | undefined;
  /** Pyramid levels, largest first. */
  levels: readonly Level[];
  label: AssociatedImage | undefined;
  overview: AssociatedImage | undefined;
  instances: readonly SlideInstance[];
  /** Things a viewer should tell the user (several focal planes, only the first shown, ...). */
  notes: readonly string[];
}
