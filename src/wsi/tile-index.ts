/**
 * Building the (col, row) → frame map of a tiled image from its instances: TILED_FULL by frame order,
 * TILED_SPARSE (or any instance with per-frame positions) by PlanePositionSlideSequence.
 */
import type { WsiInstance } from './instance.js';
import type { TiledImage } from './types.js';

/** One instance of a tiled image, with its index in the slide's instance table. */
export interface IndexedInstance {
  instanceIndex: number;
  instance: WsiInstance;
}

export interface TileIndexResult {
  image: TiledImage;
  /** Distinct focal planes (z offsets) seen; only the first is indexed. */
  focalPlaneCount: number;
  /** Distinct optical paths seen; only the first is indexed. */
  opticalPathCount: number;
}

/**
 * Builds the tile index of one image (every instance has the same total pixel matrix and tile size).
 * Only the first focal plane and first optical path are indexed; the counts say how many there were.
 * Frames outside the grid are ignored rather than trusted.
 */
export function computeTileIndex(members: readonly IndexedInstance[]): TileIndexResult {
  const first = members[0]?.instance;
  if (!first) throw new Error('computeTileIndex needs at least one instance');
  const widthPx = first.totalWidthPx;
  const heightPx = first.totalHeightPx;
  const tileWidthPx = first.frameWidthPx;
  const tileHeightPx = first.frameHeightPx;
  const gridCols = Math.ceil(widthPx / tileWidthPx);
  const gridRows = Math.ceil(heightPx / tileHeightPx);
  const tileInstance = new Int32Array(gridCols * gridRows).fill(-1);
  const tileFrameNumber = new Int32Array(gridCols * gridRows);
  let tileCount = 0;
  const place = (col: number, row: number, instanceIndex: number, frameNumber: number): void => {
    if (col < 0 || row < 0 || col >= gridCols || row >= gridRows) return;
    const t = row * gridCols + col;
    if (tileInstance[t] !== -1) return; // first wins: duplicates come from other planes/paths or repeats
    tileInstance[t] = instanceIndex;
    tileFrameNumber[t] = frameNumber;
    tileCount++;
  };

  const zOffsets = new Set<number>();
  const paths = new Set<string>();
  let chosenZ: number | undefined;
  let chosenPath: string | undefined;
  // Concatenation parts in order, so the first plane/path is the one in the first part.
  const ordered = [...members].sort((a, b) => a.instance.concatenationFrameOffset - b.instance.concatenationFrameOffset);
  let implicitPlanes = 1;
  let implicitPaths = 1;

  for (const { instanceIndex, instance } of ordered) {
    const positions = instance.framePositions;
    if (positions && instance.dimensionOrganizationType !== 'TILED_FULL') {
      for (let i = 0; i < positions.columnPx.length; i++) {
        // NaN z (absent) is one plane: normalise so the Set and the comparison agree.
        const z = Number.isNaN(positions.zOffsetUm[i]) ? 0 : (positions.zOffsetUm[i] ?? 0);
        const path = positions.opticalPath[i] ?? '';
        zOffsets.add(z);
        paths.add(path);
        chosenZ ??= z;
        chosenPath ??= path;
        if (z !== chosenZ || path !== chosenPath) continue;
        // Positions are 1-based pixel coordinates of the frame's top-left corner (PS3.3 C.8.12.6.1.1).
        const col = Math.floor(((positions.columnPx[i] ?? 1) - 1) / tileWidthPx);
        const row = Math.floor(((positions.rowPx[i] ?? 1) - 1) / tileHeightPx);
        place(col, row, instanceIndex, i + 1);
      }
    } else {
      // TILED_FULL (PS3.3 C.8.12.4.1.3): column fastest, then row, then focal plane, then optical path;
      // a concatenation part starts at its ConcatenationFrameOffsetNumber.
      implicitPlanes = Math.max(implicitPlanes, instance.totalPixelMatrixFocalPlanes);
      implicitPaths = Math.max(implicitPaths, instance.numberOfOpticalPaths);
      const perPlane = gridCols * gridRows;
      for (let i = 0; i < instance.numberOfFrames; i++) {
        const g = instance.concatenationFrameOffset + i;
        if (g >= perPlane) break; // later frames belong to other planes or paths
        place(g % gridCols, Math.floor(g / gridCols), instanceIndex, i + 1);
      }
    }
  }
  return {
    image: { widthPx, heightPx, tileWidthPx, tileHeightPx, gridCols, gridRows, tileInstance, tileFrameNumber, tileCount },
    focalPlaneCount: Math.max(zOffsets.size, implicitPlanes),
    opticalPathCount: Math.max(paths.size, implicitPaths),
  };
}

/** Whether (col, row) lies inside the image's grid. */
export function isInGrid(image: TiledImage, col: number, row: number): boolean {
  return Number.isInteger(col) && Number.isInteger(row) && col >= 0 && row >= 0 && col < image.gridCols && row < image.gridRows;
}

/**
 * The frame holding tile (col, row), or undefined when a sparse image has none there.
 * The caller checks `isInGrid` first.
 */
export function getTileFrame(image: TiledImage, col: number, row: number): { instanceIndex: number; frameNumber: number } | undefined {
  const t = row * image.gridCols + col;
  const instanceIndex = image.tileInstance[t] ?? -1;
  if (instanceIndex < 0) return undefined;
  return { instanceIndex, frameNumber: image.tileFrameNumber[t] ?? 0 };
}
