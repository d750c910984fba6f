/** Independent reference decodes for comparing gateway tiles: Debian's libvips (with OpenJPEG and OpenSlide). */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';

const run = promisify(execFile);

export interface Pixels {
  data: Buffer;
  widthPx: number;
  heightPx: number;
}

/** Decodes any image sharp reads (JPEG tiles) to RGB. */
export async function decodeWithSharp(bytes: Buffer): Promise<Pixels> {
  const { data, info } = await sharp(bytes).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  return { data, widthPx: info.width, heightPx: info.height };
}

/** Runs `vips` on an input file and reads the result back as RGB. */
async function viaVips(args: (dir: string, out: string) => Promise<string[]>): Promise<Pixels> {
  const dir = await mkdtemp(join(tmpdir(), 'ref-'));
  try {
    const out = join(dir, 'out.png');
    await run('vips', await args(dir, out));
    return await decodeWithSharp(await readFile(out));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A JPEG 2000 codestream decoded by libvips/OpenJPEG. */
export function decodeJ2kWithVips(codestream: Buffer): Promise<Pixels> {
  return viaVips(async (dir, out) => {
    const input = join(dir, 'frame.j2k');
    await writeFile(input, codestream);
    return ['copy', input, out];
  });
}

/** A region of an OpenSlide-readable file (the SVS) at full resolution. */
export function readSlideRegion(path: string, leftPx: number, topPx: number, widthPx: number, heightPx: number): Promise<Pixels> {
  return viaVips(async (_dir, out) => ['crop', path, out, String(leftPx), String(topPx), String(widthPx), String(heightPx)]);
}

/** A rectangle of an image (copied). */
export function cropPixels(p: Pixels, leftPx: number, topPx: number, widthPx: number, heightPx: number): Pixels {
  const data = Buffer.alloc(widthPx * heightPx * 3);
  for (let y = 0; y < heightPx; y++) p.data.copy(data, y * widthPx * 3, ((topPx + y) * p.widthPx + leftPx) * 3, ((topPx + y) * p.widthPx + leftPx + widthPx) * 3);
  return { data, widthPx, heightPx };
}

/**
 * The worst single row or column: the mean absolute difference of each row and of each column, and the
 * largest. A gap or a seam between tiles is one bad line that a whole-image mean would dilute.
 */
export function worstLineDiff(a: Pixels, b: Pixels): { diff: number; where: string } {
  const w = Math.min(a.widthPx, b.widthPx);
  const h = Math.min(a.heightPx, b.heightPx);
  const rows = new Float64Array(h);
  const cols = new Float64Array(w);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let d = 0;
      for (let c = 0; c < 3; c++) d += Math.abs(a.data[(y * a.widthPx + x) * 3 + c]! - b.data[(y * b.widthPx + x) * 3 + c]!);
      rows[y]! += d;
      cols[x]! += d;
    }
  }
  let worst = { diff: 0, where: 'nowhere' };
  rows.forEach((r, y) => {
    if (r / (w * 3) > worst.diff) worst = { diff: r / (w * 3), where: `row ${y} of ${h}` };
  });
  cols.forEach((c, x) => {
    if (c / (h * 3) > worst.diff) worst = { diff: c / (h * 3), where: `column ${x} of ${w}` };
  });
  return worst;
}

/** Mean absolute difference per sample over the overlapping area (top-left aligned). */
export function meanAbsDiff(a: Pixels, b: Pixels): number {
  const w = Math.min(a.widthPx, b.widthPx);
  const h = Math.min(a.heightPx, b.heightPx);
  let sum = 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w * 3; x++) sum += Math.abs(a.data[y * a.widthPx * 3 + x]! - b.data[y * b.widthPx * 3 + x]!);
  }
  return sum / (w * h * 3);
}

/**
 * "Within JPEG tolerance", made precise: the error of JPEG-encoding the reference itself at `quality`
 * (what any correct re-encode must cost), plus a small margin for decoder rounding. For an edge tile,
 * `frame` is the full tile size: the reference is encoded at the top left of a white frame that size,
 * as a padded tile is, since blocks that straddle the image's edge cost more.
 */
export async function computeJpegTolerance(reference: Pixels, quality = 90, frame?: { widthPx: number; heightPx: number }): Promise<number> {
  let image = sharp(reference.data, { raw: { width: reference.widthPx, height: reference.heightPx, channels: 3 } });
  if (frame) {
    const padding = { right: frame.widthPx - reference.widthPx, bottom: frame.heightPx - reference.heightPx };
    image = image.extend({ ...padding, top: 0, left: 0, background: '#ffffff' });
  }
  const encoded = await image.jpeg({ quality }).toBuffer();
  return meanAbsDiff(await decodeWithSharp(encoded), reference) + 1;
}
