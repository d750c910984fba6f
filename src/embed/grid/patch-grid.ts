/**
 * Where the patches of an embedding job are: which pyramid level they are read from, how many level
 * pixels make one model pixel, and the grid of patches over that level. Pure geometry from the slide
 * model; nothing here reads pixels.
 *
 * Units: `Px` alone is a pixel of the model's input (the target spacing), `LevelPx` a pixel of the
 * level read, `Level0Px` a full-resolution pixel; `mpp` is µm per pixel.
 */
import { BadRequestError } from '../../errors.js';
import type { Level } from '../../wsi/types.js';

/**
 * What the grid needs of a level. `downsampleY` is optional so that callers holding only the API's
 * level descriptor can pass it; without it the y axis uses `downsample`.
 */
export type GridLevel = Pick<Level, 'index' | 'widthPx' | 'heightPx' | 'downsample' | 'mppX' | 'mppY'> & Partial<Pick<Level, 'downsampleY'>>;

export interface PatchGridOptions {
  /** Target µm per pixel of the patches the model sees. */
  mpp: number;
  /** The model's input side in pixels, at the target mpp. */
  patchSizePx: number;
  /** Step between patch origins in pixels at the target mpp. @default patchSizePx (no overlap) */
  stridePx?: number;
  /** Level-0 µm per pixel, for slides whose spacing is missing or wrong; level k gets override * downsample. */
  mppOverride?: number;
}

/**
 * Relative tolerance when comparing spacings. Scanners write spacings such as 0.499, 0.2527 or 0.2462
 * for nominal 0.5 and 0.25 µm/px; resampling a patch by 1-3 % costs a resize and blurs it for no gain
 * (foundation models are trained on mixed scanners whose spacings differ by more than that), so a
 * level within 3 % of the target is read as is.
 */
export const MPP_TOLERANCE = 0.03;

export interface PatchGridPlan {
  levelIndex: number;
  levelWidthPx: number;
  levelHeightPx: number;
  /** Level-0 px per level px along x and y (exact, not rounded). */
  levelDownsample: number;
  levelDownsampleY: number;
  /** The chosen level's µm per pixel along x (the spacing the grid uses). */
  levelMpp: number;
  /** Whether the spacings came from the slide's metadata or from `mppOverride`. */
  mppSource: 'metadata' | 'override';
  targetMpp: number;
  /** µm per pixel of the patches as read: targetMpp when resampled, levelMpp when within tolerance. */
  effectiveMpp: number;
  /** Level px per target px: exactly 1 when the level is within tolerance of the target, else target / levelMpp (> 1). */
  scale: number;
  /** Whether patches must be resized from readSizeLevelPx to patchSizePx. */
  resampled: boolean;
  /** For people: why patches are resized, or that pixels are not square. */
  note?: string;
  patchSizePx: number;
  strideTargetPx: number;
  /** strideTargetPx * scale, not rounded: origins are rounded one by one so errors do not accumulate. */
  strideLevelPx: number;
  /** round(patchSizePx * scale): the side of every read rectangle. */
  readSizeLevelPx: number;
  /** readSizeLevelPx * level downsample, rounded: a patch's side in full-resolution pixels. */
  patchSizeLevel0Px: number;
  /** Like patchSizeLevel0Px along y (differs only for levels whose axes shrink differently). */
  patchHeightLevel0Px: number;
  cols: number;
  rows: number;
  /** cols * rows. */
  count: number;
}

export interface RectPx {
  xPx: number;
  yPx: number;
  widthPx: number;
  heightPx: number;
}

export interface PointPx {
  xPx: number;
  yPx: number;
}

/** Short number for messages: at most 3 decimals, no trailing zeros. */
function fmt(value: number): string {
  return String(Number(value.toFixed(3)));
}

function isPositive(value: number): boolean {
  return Number.isFinite(value) && value > 0;
}

interface LevelSpacing {
  level: GridLevel;
  mppX: number;
  mppY: number;
}

/**
 * Every level's spacing. A level without spacing of its own takes it from the largest level that has
 * one, scaled by the downsample ratio (converters sometimes write PixelSpacing on level 0 only).
 */
function levelSpacings(levels: readonly GridLevel[], mppOverride: number | undefined): LevelSpacing[] | undefined {
  if (mppOverride !== undefined) {
    return levels.map((level) => ({
      level,
      mppX: mppOverride * level.downsample,
      mppY: mppOverride * (level.downsampleY ?? level.downsample),
    }));
  }
  const known = levels.find((l) => l.mppX !== undefined && isPositive(l.mppX));
  if (!known) return undefined;
  const baseMppX = known.mppX! / known.downsample;
  const baseMppY = known.mppY !== undefined && isPositive(known.mppY) ? known.mppY / (known.downsampleY ?? known.downsample) : baseMppX;
  return levels.map((level) => {
    const ownX = level.mppX !== undefined && isPositive(level.mppX) ? level.mppX : undefined;
    const ownY = level.mppY !== undefined && isPositive(level.mppY) ? level.mppY : undefined;
    return {
      level,
      mppX: ownX ?? baseMppX * level.downsample,
      mppY: ownY ?? (ownX !== undefined ? ownX : baseMppY * (level.downsampleY ?? level.downsample)),
    };
  });
}

/**
 * Patches that fit at `stride` steps in `extentTargetPx`: floor((extent - patch) / stride) + 1, or 0.
 * Partial patches at the right and bottom edges are dropped rather than padded: a padded patch shows
 * the model an edge it never saw in training, and the slide's last few hundred µm are almost always glass.
 * The 1e-9 absorbs float error in extent = levelPx / scale, which can land a hair below a whole fit.
 */
function fitCount(extentTargetPx: number, patchSizePx: number, strideTargetPx: number): number {
  const n = Math.floor((extentTargetPx - patchSizePx) / strideTargetPx + 1e-9) + 1;
  return Math.max(0, n);
}

/**
 * Chooses the level and lays out the patch grid.
 *
 * Level rule: the coarsest level whose spacing is at or below the target (within MPP_TOLERANCE), so
 * patches are only ever shrunk, never enlarged, and read from as few pixels as possible.
 */
export function planPatchGrid(levels: readonly GridLevel[], options: PatchGridOptions): PatchGridPlan {
  const { mpp: targetMpp, patchSizePx, mppOverride } = options;
  const strideTargetPx = options.stridePx ?? patchSizePx;
  if (!isPositive(targetMpp)) throw new BadRequestError(`mpp must be a positive number of µm per pixel, not ${targetMpp}`);
  if (!Number.isInteger(patchSizePx) || patchSizePx < 1) throw new BadRequestError(`patch size must be a positive whole number of pixels, not ${patchSizePx}`);
  if (!Number.isInteger(strideTargetPx) || strideTargetPx < 1) throw new BadRequestError(`stride must be a positive whole number of pixels, not ${strideTargetPx}`);
  if (mppOverride !== undefined && !isPositive(mppOverride)) throw new BadRequestError(`mppOverride must be a positive number of µm per pixel, not ${mppOverride}`);
  if (levels.length === 0) throw new RangeError('a slide without levels has no patch grid');

  const spacings = levelSpacings(levels, mppOverride);
  if (!spacings) {
    throw new BadRequestError(
      'This slide has no pixel spacing in its metadata, so patches cannot be cut at a given µm per pixel; pass mppOverride (level-0 µm per pixel)',
      'MPP_UNKNOWN',
    );
  }

  const highest = targetMpp * (1 + MPP_TOLERANCE);
  let chosen: LevelSpacing | undefined;
  for (const s of spacings) {
    if (s.mppX <= highest && (!chosen || s.mppX > chosen.mppX)) chosen = s;
  }
  if (!chosen) {
    const finest = spacings.reduce((a, b) => (b.mppX < a.mppX ? b : a));
    throw new BadRequestError(
      `${fmt(targetMpp)} µm/px is finer than level ${finest.level.index} (${fmt(finest.mppX)} µm/px), the slide's full resolution; ask for ${fmt(finest.mppX)} µm/px or coarser`,
      'MPP_TOO_FINE',
    );
  }

  const { level, mppX: levelMpp, mppY: levelMppY } = chosen;
  const resampled = Math.abs(levelMpp - targetMpp) > MPP_TOLERANCE * targetMpp;
  const scale = resampled ? targetMpp / levelMpp : 1;
  const readSizeLevelPx = Math.round(patchSizePx * scale);
  const strideLevelPx = strideTargetPx * scale;
  const cols = fitCount(level.widthPx / scale, patchSizePx, strideTargetPx);
  const rows = fitCount(level.heightPx / scale, patchSizePx, strideTargetPx);
  const downsampleY = level.downsampleY ?? level.downsample;

  const notes: string[] = [];
  if (resampled) {
    notes.push(
      `level ${level.index} is ${fmt(levelMpp)} µm/px; patches are read at ${fmt(scale)}x (${readSizeLevelPx} px) and resized to ${patchSizePx} px for ${fmt(targetMpp)} µm/px`,
    );
  }
  if (Math.abs(levelMppY - levelMpp) > MPP_TOLERANCE * levelMpp) {
    notes.push(`pixels are not square (${fmt(levelMpp)} µm across, ${fmt(levelMppY)} µm down); the grid uses the horizontal spacing`);
  }

  return {
    levelIndex: level.index,
    levelWidthPx: level.widthPx,
    levelHeightPx: level.heightPx,
    levelDownsample: level.downsample,
    levelDownsampleY: downsampleY,
    levelMpp,
    mppSource: mppOverride !== undefined ? 'override' : 'metadata',
    targetMpp,
    effectiveMpp: levelMpp * scale,
    scale,
    resampled,
    ...(notes.length > 0 ? { note: notes.join('; ') } : {}),
    patchSizePx,
    strideTargetPx,
    strideLevelPx,
    readSizeLevelPx,
    patchSizeLevel0Px: Math.round(readSizeLevelPx * level.downsample),
    patchHeightLevel0Px: Math.round(readSizeLevelPx * downsampleY),
    cols,
    rows,
    count: cols * rows,
  };
}

function checkCell(plan: PatchGridPlan, col: number, row: number): void {
  if (!Number.isInteger(col) || !Number.isInteger(row) || col < 0 || row < 0 || col >= plan.cols || row >= plan.rows) {
    throw new RangeError(`patch (${col}, ${row}) is outside the ${plan.cols} x ${plan.rows} grid`);
  }
}

/**
 * The level pixels patch (col, row) is read from. Origins are round(index * strideLevelPx), each
 * rounded on its own so a fractional stride does not drift; the side is readSizeLevelPx for every
 * patch so all patches resize alike. Rounding can push the last patch's far edge up to 1 px past the
 * level; that origin is then pulled back by that pixel (the count formula stays exact, and
 * readSizeLevelPx never exceeds the level when the patch fits at all, since the level size is whole).
 */
export function patchReadRect(plan: PatchGridPlan, col: number, row: number): RectPx {
  checkCell(plan, col, row);
  const size = plan.readSizeLevelPx;
  return {
    xPx: Math.max(0, Math.min(Math.round(col * plan.strideLevelPx), plan.levelWidthPx - size)),
    yPx: Math.max(0, Math.min(Math.round(row * plan.strideLevelPx), plan.levelHeightPx - size)),
    widthPx: size,
    heightPx: size,
  };
}

/** Full-resolution pixel of patch (col, row)'s top-left corner: its read origin times the downsample, rounded. */
export function patchOriginLevel0Px(plan: PatchGridPlan, col: number, row: number): PointPx {
  const rect = patchReadRect(plan, col, row);
  return {
    xPx: Math.round(rect.xPx * plan.levelDownsample),
    yPx: Math.round(rect.yPx * plan.levelDownsampleY),
  };
}
