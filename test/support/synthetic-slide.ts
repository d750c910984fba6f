/**
 * Synthetic slides built at test time with the project's own writer (src/import), for tests that must
 * see a misplaced tile, a gap or a rounding error: every pixel says where it belongs.
 *
 * ```ts
 * const slide = await writeNonPowerOfTwoSlide(dir); // then serve `dir` with the folder source
 * // slide.studyUid, slide.seriesUid, slide.levels[i].widthPx ..., slide.sourcePngPath (level 0 as PNG)
 * ```
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { writeWsiPyramid, type LevelSpec, type WrittenImage, type WrittenLevel } from '../../src/import/index.js';
import type { RgbImage } from '../../src/import/raster.js';

/**
 * A test pattern: red grows left to right, green top to bottom, blue changes from cell to cell, with
 * dark lines around each `cellPx` cell and light ones every `cellPx / 5`. Two tiles never look alike.
 */
export function createTestPattern(widthPx: number, heightPx: number, cellPx = 250): RgbImage {
  const data = Buffer.alloc(widthPx * heightPx * 3);
  const minorPx = Math.max(2, Math.round(cellPx / 5));
  for (let y = 0; y < heightPx; y++) {
    for (let x = 0; x < widthPx; x++) {
      const i = (y * widthPx + x) * 3;
      const cell = Math.floor(x / cellPx) * 7 + Math.floor(y / cellPx) * 3;
      const major = x % cellPx < 3 || y % cellPx < 3;
      const minor = x % minorPx === 0 || y % minorPx === 0;
      const shade = major ? 0.15 : minor ? 0.8 : 1;
      data[i] = Math.round((40 + (215 * x) / Math.max(1, widthPx - 1)) * shade);
      data[i + 1] = Math.round((40 + (215 * y) / Math.max(1, heightPx - 1)) * shade);
      data[i + 2] = Math.round((40 + (cell % 8) * 30) * shade);
    }
  }
  return { data, widthPx, heightPx };
}

/** Text over each cell of the pattern ("c3 r5"), as an SVG for sharp's composite. */
function renderCellLabels(widthPx: number, heightPx: number, cellPx: number): Buffer {
  const texts: string[] = [];
  for (let row = 0; row * cellPx < heightPx; row++) {
    for (let col = 0; col * cellPx < widthPx; col++) {
      texts.push(`<text x="${col * cellPx + 12}" y="${row * cellPx + 48}">c${col} r${row}</text>`);
    }
  }
  return Buffer.from(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${widthPx}" height="${heightPx}">` +
      `<g font-family="sans-serif" font-size="36" font-weight="bold" fill="#ffffff" stroke="#000000" stroke-width="1.5">${texts.join('')}</g></svg>`,
  );
}

function renderLabel(): Buffer {
  const bars = Array.from({ length: 40 }, (_, i) => `<rect x="${20 + i * 9}" y="200" width="${1 + (i * 7) % 5}" height="70"/>`).join('');
  return Buffer.from(
    '<svg xmlns="http://www.w3.org/2000/svg" width="600" height="300"><rect width="600" height="300" fill="#f4f1e8"/>' +
      '<g font-family="sans-serif" fill="#1a1a1a"><text x="20" y="70" font-size="44" font-weight="bold">SYNTHETIC NPOT</text>' +
      '<text x="20" y="125" font-size="26">3000 x 2200 px, downsamples 1 / 3 / 10.5</text>' +
      `<text x="20" y="170" font-size="26">tiles 256 / 200 / 128 px</text>${bars}</g></svg>`,
  );
}

/** Level 0 size of the non-power-of-2 slide, and its cells. */
export const NON_POWER_OF_TWO_SIZE = { widthPx: 3000, heightPx: 2200, cellPx: 250 } as const;

/** Its pyramid: no level is a power-of-2 reduction of another, and every level has its own tile size. */
export const NON_POWER_OF_TWO_LEVELS: readonly LevelSpec[] = [
  { downsample: 1, tileSizePx: 256 },
  { downsample: 3, tileSizePx: 200 },
  { downsample: 10.5, tileSizePx: 128 },
];

export interface SyntheticSlide {
  studyUid: string;
  seriesUid: string;
  /**
   * The written levels: 3000x2200 (tiles 256, 12x9), 1000x734 (tiles 200, 5x4), 286x210 (tiles 128,
   * 3x2). `downsample` is the exact level-0/level width ratio, as the gateway reports it.
   */
  levels: readonly WrittenLevel[];
  /** The LABEL instance, 600x300, one frame. */
  label: WrittenImage;
  /** Level 0 exactly as it was written (before JPEG), a PNG beside the DICOM files in `outDir`. */
  sourcePngPath: string;
  widthPx: number;
  heightPx: number;
  /** The DICOM files written. */
  files: readonly string[];
}

/**
 * Writes a 3000 x 2200 px synthetic slide (coloured grid, each 250 px cell labelled "c<col> r<row>")
 * as a DICOM WSI pyramid with downsamples 1, 3 and 10.5 and tiles of 256, 200 and 128 px, plus a
 * label, into `outDir` (created if missing). New study and series UIDs each call. About a second.
 */
export async function writeNonPowerOfTwoSlide(outDir: string): Promise<SyntheticSlide> {
  const { widthPx, heightPx, cellPx } = NON_POWER_OF_TWO_SIZE;
  const pattern = createTestPattern(widthPx, heightPx, cellPx);
  const sourcePngPath = join(outDir, 'source-level0.png');
  await mkdir(outDir, { recursive: true });
  await sharp(pattern.data, { raw: { width: widthPx, height: heightPx, channels: 3 } })
    .composite([{ input: renderCellLabels(widthPx, heightPx, cellPx) }])
    .png({ compressionLevel: 1 })
    .toFile(sourcePngPath);
  const written = await writeWsiPyramid(sourcePngPath, outDir, {
    levels: NON_POWER_OF_TWO_LEVELS,
    studyDescription: 'Synthetic non-power-of-2 slide',
    seriesDescription: 'Downsamples 1, 3, 10.5; tiles 256, 200, 128',
    containerIdentifier: 'SYNTH-NPOT-0001',
    label: renderLabel(),
  });
  return {
    studyUid: written.studyUid,
    seriesUid: written.seriesUid,
    levels: written.levels,
    label: written.label!,
    sourcePngPath,
    widthPx,
    heightPx,
    files: written.files,
  };
}
