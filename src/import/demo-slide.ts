/**
 * The demo slide `npm start` serves when nothing is configured: a synthetic H&E-like section drawn
 * procedurally (no data to download, nothing licensed), written as a real DICOM WSI pyramid by the
 * project's own writer. Deterministic from a seed.
 *
 * What it has to show a newcomer: white glass around a few tissue islands, and inside them regions that
 * look different enough at patch scale (112 µm at 0.5 µm/px) that k-means on the built-in model's
 * features separates them: pink fibrous stroma with sparse spindle nuclei, densely packed purple
 * nuclei (tumour-like), fat (empty vacuoles behind thin pink membranes) and bright eosinophilic
 * necrosis with nuclear debris.
 *
 * Speed: regions are decided on a grid 8x coarser than the image (noise is the costly part), and the
 * full-resolution pass only looks that up with a jittered offset (which also dithers the blocky
 * boundaries into ragged ones), adds per-pixel texture and stamps nuclei. ~8k x 6k px takes a couple of
 * seconds to draw.
 */
import sharp from 'sharp';
import { renderDemoLabel } from './demo-label.js';
import { computeDefaultLevels } from './levels.js';
import type { RgbImage } from './raster.js';
import { writeWsiPyramid, type WrittenPyramid } from './wsi-writer.js';

/** The kinds of region the demo tissue has; values are stored in the region map. */
export const DemoRegion = { glass: 0, stroma: 1, tumour: 2, fat: 3, necrosis: 4 } as const;
export type DemoRegion = (typeof DemoRegion)[keyof typeof DemoRegion];

export interface DemoTissue {
  image: RgbImage;
  /** The region of every `regionScalePx` x `regionScalePx` cell, row-major. */
  regions: Uint8Array;
  regionCols: number;
  regionRows: number;
  regionScalePx: number;
}

export interface DemoSlideOptions {
  /** @default 8192 */
  widthPx?: number;
  /** @default 6144 */
  heightPx?: number;
  /** @default 1 */
  seed?: number;
}

const SCALE = 8;

/** A 32-bit hash of integer coordinates and the seed, in [0, 1). */
function hash(x: number, y: number, seed: number): number {
  let h = Math.imul(x, 374761393) + Math.imul(y, 668265263) + Math.imul(seed, 2246822519);
  h = Math.imul(h ^ (h >>> 13), 1274126177);
  return ((h ^ (h >>> 16)) >>> 0) / 4294967296;
}

/** Smooth value noise in [0, 1) with lattice spacing `cellPx`. */
function valueNoise(x: number, y: number, cellPx: number, seed: number): number {
  const gx = x / cellPx;
  const gy = y / cellPx;
  const x0 = Math.floor(gx);
  const y0 = Math.floor(gy);
  const fx = gx - x0;
  const fy = gy - y0;
  const sx = fx * fx * (3 - 2 * fx);
  const sy = fy * fy * (3 - 2 * fy);
  const top = hash(x0, y0, seed) + (hash(x0 + 1, y0, seed) - hash(x0, y0, seed)) * sx;
  const bottom = hash(x0, y0 + 1, seed) + (hash(x0 + 1, y0 + 1, seed) - hash(x0, y0 + 1, seed)) * sx;
  return top + (bottom - top) * sy;
}

/** Three octaves of value noise, in about [-0.5, 0.5]. */
function fbm(x: number, y: number, cellPx: number, seed: number): number {
  return valueNoise(x, y, cellPx, seed) * 0.57 + valueNoise(x, y, cellPx / 2, seed + 1) * 0.29 + valueNoise(x, y, cellPx / 4, seed + 2) * 0.14 - 0.5;
}

/** The region map: islands with ragged edges, split among region seeds by warped nearest-seed distance. */
function computeRegions(widthPx: number, heightPx: number, seed: number): { regions: Uint8Array; cols: number; rows: number } {
  const cols = Math.ceil(widthPx / SCALE);
  const rows = Math.ceil(heightPx / SCALE);
  const unit = Math.min(widthPx, heightPx);
  const r = (i: number) => hash(i, 7, seed);
  // Three islands in fixed places (jittered by the seed), so every seed gives a similar layout.
  const islands = [
    { x: 0.3 * widthPx, y: 0.5 * heightPx, rx: 0.36 * unit, ry: 0.42 * unit, angle: 0.3 },
    { x: 0.73 * widthPx, y: 0.28 * heightPx, rx: 0.27 * unit, ry: 0.2 * unit, angle: -0.4 },
    { x: 0.74 * widthPx, y: 0.74 * heightPx, rx: 0.24 * unit, ry: 0.19 * unit, angle: 0.8 },
  ].map((island, i) => ({ ...island, x: island.x + (r(i) - 0.5) * 0.05 * unit, y: island.y + (r(i + 10) - 0.5) * 0.05 * unit }));
  // Region seeds: each type at least once, tumour and stroma most, necrosis in the middle of tumour.
  const seeds: Array<{ x: number; y: number; region: DemoRegion }> = [
    { x: 0.22, y: 0.32, region: DemoRegion.tumour },
    { x: 0.3, y: 0.52, region: DemoRegion.necrosis },
    { x: 0.2, y: 0.72, region: DemoRegion.stroma },
    { x: 0.42, y: 0.45, region: DemoRegion.stroma },
    { x: 0.66, y: 0.25, region: DemoRegion.fat },
    { x: 0.82, y: 0.3, region: DemoRegion.stroma },
    { x: 0.7, y: 0.76, region: DemoRegion.tumour },
    { x: 0.8, y: 0.7, region: DemoRegion.stroma },
  ].map((s, i) => ({ x: (s.x + (r(i + 20) - 0.5) * 0.04) * widthPx, y: (s.y + (r(i + 30) - 0.5) * 0.04) * heightPx, region: s.region }));

  const regions = new Uint8Array(cols * rows);
  for (let row = 0; row < rows; row++) {
    for (let col = 0; col < cols; col++) {
      const x = (col + 0.5) * SCALE;
      const y = (row + 0.5) * SCALE;
      const edge = 1 + 0.45 * fbm(x, y, 0.12 * unit, seed + 100);
      const inside = islands.some((island) => {
        const dx = x - island.x;
        const dy = y - island.y;
        const u = (dx * Math.cos(island.angle) + dy * Math.sin(island.angle)) / island.rx;
        const v = (-dx * Math.sin(island.angle) + dy * Math.cos(island.angle)) / island.ry;
        return u * u + v * v < edge * edge;
      });
      if (!inside) continue;
      const wx = x + 0.12 * unit * fbm(x, y, 0.15 * unit, seed + 200);
      const wy = y + 0.12 * unit * fbm(x, y, 0.15 * unit, seed + 300);
      let best = Infinity;
      let region: DemoRegion = DemoRegion.stroma;
      for (const s of seeds) {
        const d = (wx - s.x) ** 2 + (wy - s.y) ** 2;
        if (d < best) [best, region] = [d, s.region];
      }
      regions[row * cols + col] = region;
    }
  }
  return { regions, cols, rows };
}

/** Per-region base colours (sRGB) and the amplitude of their per-pixel grain. */
const BASE: Record<DemoRegion, readonly [number, number, number, number]> = {
  [DemoRegion.glass]: [241, 241, 243, 3],
  [DemoRegion.stroma]: [238, 168, 200, 10],
  [DemoRegion.tumour]: [206, 150, 204, 12],
  [DemoRegion.fat]: [247, 244, 247, 3],
  [DemoRegion.necrosis]: [236, 132, 158, 22],
};

/** Draws the tissue at full resolution. */
export function renderDemoTissue(options: DemoSlideOptions = {}): DemoTissue {
  const { widthPx = 8192, heightPx = 6144, seed = 1 } = options;
  const { regions, cols, rows } = computeRegions(widthPx, heightPx, seed);
  const data = Buffer.alloc(widthPx * heightPx * 3);
  // Writes through a clamped view: grain and fibres may push a channel past 0 or 255.
  const px = new Uint8ClampedArray(data.buffer, data.byteOffset, data.length);
  let state = (seed * 2654435761 + 1) >>> 0;
  const next = () => (state = (Math.imul(state, 1664525) + 1013904223) >>> 0);
  const regionAt = (x: number, y: number) => regions[Math.min(rows - 1, Math.max(0, y >> 3)) * cols + Math.min(cols - 1, Math.max(0, x >> 3))]!;
  const FAT_CELL = 44;

  for (let y = 0; y < heightPx; y++) {
    for (let x = 0; x < widthPx; x++) {
      const random = next();
      // Sample the region map up to ±6 px away: ragged, organic boundaries instead of 8 px steps.
      const region = regionAt(x + ((random >>> 8) % 13) - 6, y + ((random >>> 16) % 13) - 6) as DemoRegion;
      const [r, g, b, grain] = BASE[region];
      let shade = (((random >>> 24) / 255) - 0.5) * grain;
      let pink = 0;
      if (region === DemoRegion.stroma) {
        // Wavy collagen fibres: darker eosin bands along a slowly turning direction.
        const wave = Math.sin((x * 0.8 + y * 0.6) * 0.35 + 6 * Math.sin(x * 0.004 + seed) + 5 * Math.sin(y * 0.005));
        pink = wave > 0.55 ? 32 : wave > 0.1 ? 12 : 0;
      } else if (region === DemoRegion.fat) {
        // Vacuoles: distance to the nearest and second nearest jittered cell centre; membranes where equal.
        const cx = Math.floor(x / FAT_CELL);
        const cy = Math.floor(y / FAT_CELL);
        let d1 = Infinity;
        let d2 = Infinity;
        for (let j = -1; j <= 1; j++) {
          for (let i = -1; i <= 1; i++) {
            const px = (cx + i + 0.15 + 0.7 * hash(cx + i, cy + j, seed + 5)) * FAT_CELL;
            const py = (cy + j + 0.15 + 0.7 * hash(cx + i, cy + j, seed + 6)) * FAT_CELL;
            const d = Math.sqrt((x - px) ** 2 + (y - py) ** 2);
            if (d < d1) [d1, d2] = [d, d1];
            else if (d < d2) d2 = d;
          }
        }
        if (d2 - d1 < 3.5) pink = 70;
      } else if (region === DemoRegion.necrosis) {
        shade += (hash(x >> 2, y >> 2, seed + 9) - 0.5) * 26;
      }
      const i = (y * widthPx + x) * 3;
      px[i] = r - pink * 0.3 + shade;
      px[i + 1] = g - pink + shade;
      px[i + 2] = b - pink * 0.5 + shade;
    }
  }
  stampNuclei(px, widthPx, heightPx, regionAt, seed);
  return { image: { data, widthPx, heightPx }, regions, regionCols: cols, regionRows: rows, regionScalePx: SCALE };
}

/** How each region's nuclei look: grid spacing, chance per grid point, radii and colour. */
const NUCLEI: Partial<Record<DemoRegion, { spacing: number; chance: number; rx: number; ry: number; rgb: readonly [number, number, number] }>> = {
  [DemoRegion.tumour]: { spacing: 13, chance: 0.95, rx: 5.5, ry: 4.5, rgb: [72, 42, 122] },
  [DemoRegion.stroma]: { spacing: 42, chance: 0.45, rx: 9, ry: 2.2, rgb: [86, 52, 130] },
  [DemoRegion.necrosis]: { spacing: 17, chance: 0.4, rx: 1.8, ry: 1.6, rgb: [96, 56, 126] },
  [DemoRegion.fat]: { spacing: 60, chance: 0.15, rx: 4, ry: 2, rgb: [86, 52, 130] },
};

/** Nuclei as filled ellipses on a jittered grid, each checked against the region under its centre. */
function stampNuclei(data: Uint8ClampedArray, widthPx: number, heightPx: number, regionAt: (x: number, y: number) => number, seed: number): void {
  for (const [key, look] of Object.entries(NUCLEI)) {
    const region = Number(key);
    const salt = seed * 31 + region;
    for (let gy = 0; gy * look.spacing < heightPx; gy++) {
      for (let gx = 0; gx * look.spacing < widthPx; gx++) {
        if (hash(gx, gy, salt) > look.chance) continue;
        const cx = (gx + 0.2 + 0.6 * hash(gx, gy, salt + 1)) * look.spacing;
        const cy = (gy + 0.2 + 0.6 * hash(gx, gy, salt + 2)) * look.spacing;
        if (regionAt(Math.round(cx), Math.round(cy)) !== region) continue;
        const size = 0.8 + 0.4 * hash(gx, gy, salt + 3);
        const rx = look.rx * size;
        const ry = look.ry * size;
        // Stromal nuclei follow the fibres; the others point anywhere.
        const angle = region === DemoRegion.stroma ? -0.93 + 0.3 * hash(gx, gy, salt + 4) : Math.PI * hash(gx, gy, salt + 4);
        const cos = Math.cos(angle);
        const sin = Math.sin(angle);
        const reach = Math.ceil(Math.max(rx, ry)) + 1;
        const darkness = 0.8 + 0.4 * hash(gx, gy, salt + 5);
        for (let y = Math.max(0, Math.floor(cy) - reach); y <= Math.min(heightPx - 1, Math.ceil(cy) + reach); y++) {
          for (let x = Math.max(0, Math.floor(cx) - reach); x <= Math.min(widthPx - 1, Math.ceil(cx) + reach); x++) {
            const u = ((x - cx) * cos + (y - cy) * sin) / rx;
            const v = (-(x - cx) * sin + (y - cy) * cos) / ry;
            const d = u * u + v * v;
            if (d >= 1.3) continue;
            // A soft rim (d from 1 to 1.3) and coarse chromatin inside.
            const alpha = d <= 1 ? 0.92 : (1.3 - d) / 0.3;
            const chromatin = (hash(x, y, salt + 6) - 0.5) * 30;
            const i = (y * widthPx + x) * 3;
            for (let c = 0; c < 3; c++) data[i + c] = data[i + c]! + (Math.min(255, look.rgb[c]! * darkness + chromatin) - data[i + c]!) * alpha;
          }
        }
      }
    }
  }
}

/** Study and series UIDs from the seed: the same demo slide keeps its address (and its links) across regenerations. */
function demoUids(seed: number): { studyUid: string; seriesUid: string } {
  const root = `2.25.${(281_474_976_710_656 + seed * 7919).toString()}`;
  return { studyUid: `${root}1`, seriesUid: `${root}2` };
}

/**
 * Draws the demo tissue and writes it into `outDir` as a DICOM WSI pyramid (0.5 µm/px, tiles of
 * 256 px, power-of-2 levels down to one or two tiles) with a label.
 */
export async function writeDemoSlide(outDir: string, options: DemoSlideOptions = {}): Promise<WrittenPyramid> {
  const seed = options.seed ?? 1;
  const { image } = renderDemoTissue({ ...options, seed });
  const raw = sharp(image.data, { raw: { width: image.widthPx, height: image.heightPx, channels: 3 }, limitInputPixels: false });
  const label = renderDemoLabel(['WSI-GATEWAY', 'DEMO H&E', `SYNTHETIC SEED ${seed}`], seed);
  return writeWsiPyramid(raw, outDir, {
    ...demoUids(seed),
    levels: computeDefaultLevels(image.widthPx, image.heightPx, 256),
    mppAtLevel0: 0.5,
    jpegQuality: 85,
    studyDescription: 'Demo slide',
    seriesDescription: 'Synthetic H&E-like section (stroma, tumour, fat, necrosis), generated by wsi-gateway',
    patientName: 'Demo^Slide',
    patientId: 'DEMO-0001',
    containerIdentifier: `DEMO-${seed}`,
    label: sharp(label.data, { raw: { width: label.widthPx, height: label.heightPx, channels: 3 } }),
  });
}
