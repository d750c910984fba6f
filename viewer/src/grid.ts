/**
 * The DICOM tile grid in OpenSeadragon's terms, as pure functions (unit-tested without a browser).
 *
 * OpenSeadragon numbers levels from the smallest (0) up; DICOM pyramids here number them from full
 * resolution (0) down, so OSD level i is DICOM level n-1-i. Each OSD tile is exactly one DICOM frame:
 * the level's own tile size and grid, no resampling. Levels are NOT assumed to halve: a level's scale is
 * its exact width ratio to level 0 (converters write 2220 → 1110 → 555 → 277, or factors of 3 or 4).
 *
 * A level's scale is its width ratio on both axes, so at that level's own zoom each frame is drawn
 * 1:1 with no resampling in either direction. A level whose height ratio differs slightly (2200 px
 * → 734, not 733.3) then ends a fraction of one of its pixels away from level 0's bottom edge.
 *
 * Coordinates: OpenSeadragon's "source" space is x ∈ [0, 1] across level 0's width, y in the same unit.
 */
import type { LevelDescriptor } from './api.js';

/** What the grid needs of a level descriptor (`tileMap`: the tiles a sparse level has, or null). */
export type GridLevel = Pick<LevelDescriptor, 'widthPx' | 'heightPx' | 'tileWidthPx' | 'tileHeightPx' | 'gridCols' | 'gridRows' | 'tileMap'>;

export interface NormalizedRect {
  x: number;
  y: number;
  width: number;
  height: number;
}

export class DicomGrid {
  /** Finest first, as the DICOM levels are. */
  readonly levels: readonly GridLevel[];
  private readonly present: ReadonlyArray<Uint8Array | null>;

  constructor(levels: readonly GridLevel[]) {
    if (levels.length === 0) throw new Error('A slide needs at least one level');
    this.levels = levels;
    this.present = levels.map((l) => (l.tileMap ? decodeBase64(l.tileMap) : null));
  }

  get levelCount(): number {
    return this.levels.length;
  }

  get widthPx(): number {
    return this.levels[0]!.widthPx;
  }

  get heightPx(): number {
    return this.levels[0]!.heightPx;
  }

  /** The DICOM level shown as OpenSeadragon level `osdLevel`. */
  dicomLevel(osdLevel: number): number {
    return this.levelCount - 1 - osdLevel;
  }

  private level(osdLevel: number): GridLevel {
    const level = this.levels[this.dicomLevel(osdLevel)];
    if (!level) throw new RangeError(`No OpenSeadragon level ${osdLevel}`);
    return level;
  }

  /** Exact width ratio to level 0 (getLevelScale). */
  levelScale(osdLevel: number): number {
    return this.level(osdLevel).widthPx / this.widthPx;
  }

  numTiles(osdLevel: number): { x: number; y: number } {
    const l = this.level(osdLevel);
    return { x: l.gridCols, y: l.gridRows };
  }

  tileWidth(osdLevel: number): number {
    return this.level(osdLevel).tileWidthPx;
  }

  tileHeight(osdLevel: number): number {
    return this.level(osdLevel).tileHeightPx;
  }

  /** False for tiles outside the grid and for tiles a sparse level does not have. */
  tileExists(osdLevel: number, col: number, row: number): boolean {
    const l = this.level(osdLevel);
    if (col < 0 || row < 0 || col >= l.gridCols || row >= l.gridRows) return false;
    const bits = this.present[this.dicomLevel(osdLevel)];
    if (!bits) return true;
    const t = row * l.gridCols + col;
    return ((bits[t >> 3] ?? 0) & (1 << (t & 7))) !== 0;
  }


  /**
   * Where a tile lies in source space, and (source = true) which part of its image holds pixels:
   * edge frames are padded to the full tile size and only their top-left part is drawn.
   */
  tileBounds(osdLevel: number, col: number, row: number, source = false): NormalizedRect {
    const l = this.level(osdLevel);
    const xPx = col * l.tileWidthPx;
    const yPx = row * l.tileHeightPx;
    const widthPx = Math.max(0, Math.min(l.tileWidthPx, l.widthPx - xPx));
    const heightPx = Math.max(0, Math.min(l.tileHeightPx, l.heightPx - yPx));
    if (source) return { x: 0, y: 0, width: widthPx, height: heightPx };
    const unit = 1 / l.widthPx;
    return { x: xPx * unit, y: yPx * unit, width: widthPx * unit, height: heightPx * unit };
  }

  /** The tile under a point of source space (clamped to the grid), the inverse of tileBounds. */
  tileAtPoint(osdLevel: number, point: { x: number; y: number }): { x: number; y: number } {
    const l = this.level(osdLevel);
    const col = Math.floor((point.x * l.widthPx) / l.tileWidthPx);
    const row = Math.floor((point.y * l.widthPx) / l.tileHeightPx);
    return { x: clamp(col, 0, l.gridCols - 1), y: clamp(row, 0, l.gridRows - 1) };
  }
}

const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));

function decodeBase64(b64: string): Uint8Array {
  const text = atob(b64);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}
