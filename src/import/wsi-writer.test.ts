/**
 * The writer, checked by reading its files back the way the gateway does (folder source → computeSlide →
 * frames) and, where installed, with dcmtk.
 */
import { execFile, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { computeJpegTolerance, decodeWithSharp, meanAbsDiff, type Pixels } from '../../test/support/reference.js';
import { createTestPattern, writeNonPowerOfTwoSlide } from '../../test/support/synthetic-slide.js';
import { createFolderSource } from '../source/index.js';
import { computeEncapsulatedFrames, locatePixelData } from '../source/part10.js';
import { TransferSyntax } from '../tiles/codecs/transfer-syntax.js';
import { computeSlide } from '../wsi/pyramid.js';
import { getTileFrame } from '../wsi/tile-index.js';
import type { Level, Slide } from '../wsi/types.js';
import { writeWsiPyramid, type WrittenPyramid } from './wsi-writer.js';

const run = promisify(execFile);
const LEVELS = [
  { downsample: 1, tileSizePx: 256 },
  { downsample: 3, tileSizePx: 200 },
  { downsample: 10.5, tileSizePx: 128 },
];
/** Not a multiple of any tile size, so every level has padded edge tiles. */
const pattern = createTestPattern(1234, 987, 100);
const toSharp = (image: Pixels) => sharp(image.data, { raw: { width: image.widthPx, height: image.heightPx, channels: 3 } });

let dir: string;
let written: WrittenPyramid;
let slide: Slide;
let source: ReturnType<typeof createFolderSource>;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'wsi-writer-'));
  const label = sharp({ create: { width: 301, height: 157, channels: 4, background: { r: 200, g: 40, b: 40, alpha: 0.5 } } }).png();
  const overview = sharp({ create: { width: 400, height: 133, channels: 3, background: '#808080' } }).greyscale().png(); // one channel
  written = await writeWsiPyramid(toSharp(pattern), dir, { levels: LEVELS, label, overview, seriesDescription: 'Ünïcode test', mppAtLevel0: 0.25 });
  source = createFolderSource({ dir });
  slide = computeSlide(written.studyUid, written.seriesUid, await source.readSeries(written.studyUid, written.seriesUid));
});

afterAll(async () => {
  await source?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function readTile(level: Level, col: number, row: number): Promise<Buffer> {
  const frame = getTileFrame(level, col, row)!;
  const { sopInstanceUid } = slide.instances[frame.instanceIndex]!;
  const [read] = await source.readFrames({ studyUid: slide.studyUid, seriesUid: slide.seriesUid, sopInstanceUid }, [frame.frameNumber]);
  return read!.data;
}

/** The pixels a level should hold: the pattern resampled independently of the writer. */
async function computeExpectedLevel(level: Level): Promise<Pixels> {
  if (level.index === 0) return pattern;
  const { data, info } = await toSharp(pattern).resize(level.widthPx, level.heightPx, { fit: 'fill', kernel: 'lanczos3' }).raw().toBuffer({ resolveWithObject: true });
  return { data, widthPx: info.width, heightPx: info.height };
}

async function crop(image: Pixels, left: number, top: number, widthPx: number, heightPx: number): Promise<Pixels> {
  return decodeWithSharp(await toSharp(image).extract({ left, top, width: widthPx, height: heightPx }).png().toBuffer());
}

describe('writeWsiPyramid', () => {
  it('reads back as a slide with the exact non-power-of-2 levels, tile sizes and spacing', () => {
    expect(slide.seriesDescription).toBe('Ünïcode test');
    expect(slide.levels.map((l) => [l.widthPx, l.heightPx, l.tileWidthPx, l.tileHeightPx, l.gridCols, l.gridRows, l.tileCount])).toEqual([
      [1234, 987, 256, 256, 5, 4, 20],
      [412, 329, 200, 200, 3, 2, 6],
      [118, 94, 128, 128, 1, 1, 1],
    ]);
    for (const [i, level] of slide.levels.entries()) {
      expect(level.downsample).toBe(1234 / level.widthPx);
      expect(level.downsample).toBe(written.levels[i]!.downsample);
      expect(level.mppX).toBeCloseTo((0.25 * 1234) / level.widthPx, 9);
      expect(level.mppY).toBeCloseTo((0.25 * 987) / level.heightPx, 9);
    }
    expect(written.levels.map((l) => l.requestedDownsample)).toEqual([1, 3, 10.5]);
    expect(slide.label).toMatchObject({ widthPx: 301, heightPx: 157, tileWidthPx: 301, tileCount: 1 });
    expect(slide.overview).toMatchObject({ widthPx: 400, heightPx: 133, tileCount: 1 });
    expect(written.files.map((f) => f.slice(dir.length + 1))).toEqual(['level-0.dcm', 'level-1.dcm', 'level-2.dcm', 'label.dcm', 'overview.dcm']);
    for (const instance of slide.instances) {
      expect(instance).toMatchObject({ transferSyntaxUid: TransferSyntax.jpegBaseline, photometricInterpretation: 'YBR_FULL_422', samplesPerPixel: 3 });
    }
  });

  it('writes every frame as a baseline JPEG of the full tile size', async () => {
    for (const image of [...slide.levels, slide.label!, slide.overview!]) {
      const { sopInstanceUid } = slide.instances[image.tileInstance[0]!]!;
      const ref = { studyUid: slide.studyUid, seriesUid: slide.seriesUid, sopInstanceUid };
      const frames = await source.readFrames(ref, Array.from({ length: image.tileCount }, (_, i) => i + 1));
      for (const frame of frames) {
        const meta = await sharp(frame.data).metadata();
        expect([meta.width, meta.height, meta.format, meta.isProgressive]).toEqual([image.tileWidthPx, image.tileHeightPx, 'jpeg', false]);
        // SOF0 (baseline, process 1) is the only start-of-frame marker.
        expect(frame.data.includes(Buffer.from([0xff, 0xc0]))).toBe(true);
        expect([0xc1, 0xc2, 0xc3].some((m) => frame.data.includes(Buffer.from([0xff, m])))).toBe(false);
      }
    }
  });

  it('puts the resampled source in every tile, in TILED_FULL order, padded with white', async () => {
    for (const level of slide.levels) {
      const expected = await computeExpectedLevel(level);
      for (let row = 0; row < level.gridRows; row++) {
        for (let col = 0; col < level.gridCols; col++) {
          const tile = await decodeWithSharp(await readTile(level, col, row));
          const left = col * level.tileWidthPx;
          const top = row * level.tileHeightPx;
          const widthPx = Math.min(level.tileWidthPx, level.widthPx - left);
          const heightPx = Math.min(level.tileHeightPx, level.heightPx - top);
          const reference = await crop(expected, left, top, widthPx, heightPx);
          const tolerance = await computeJpegTolerance(reference, 90, { widthPx: level.tileWidthPx, heightPx: level.tileHeightPx });
          const where = `level ${level.index} tile ${col},${row}`;
          // meanAbsDiff compares the overlap, top-left aligned: the tile's image part.
          expect(meanAbsDiff(tile, reference), where).toBeLessThanOrEqual(tolerance);
          // The same comparison can tell a misplaced tile: against its right neighbour's pixels it fails.
          if (left + 2 * widthPx <= level.widthPx) {
            const neighbour = await crop(expected, left + widthPx, top, widthPx, heightPx);
            expect(meanAbsDiff(tile, neighbour), where).toBeGreaterThan(2 * tolerance);
          }
          // Padding from the next 16 px JPEG block (MCU) on: 4:2:0 chroma bleeds within one.
          const padLeft = Math.ceil(widthPx / 16) * 16;
          const padTop = Math.ceil(heightPx / 16) * 16;
          if (padLeft < level.tileWidthPx) {
            const padding = await crop(tile, padLeft, 0, level.tileWidthPx - padLeft, level.tileHeightPx);
            expect(padding.data.every((v) => v >= 250), `${where} right padding`).toBe(true);
          }
          if (padTop < level.tileHeightPx) {
            const padding = await crop(tile, 0, padTop, level.tileWidthPx, level.tileHeightPx - padTop);
            expect(padding.data.every((v) => v >= 250), `${where} bottom padding`).toBe(true);
          }
        }
      }
    }
  });

  it('writes one fragment per frame behind a Basic Offset Table that points at each', async () => {
    for (const level of written.levels) {
      const bytes = await readFile(level.path);
      expect(bytes.length).toBe(level.fileBytes);
      const location = locatePixelData(bytes, TransferSyntax.jpegBaseline)!;
      const pixelData = bytes.subarray(location.valueOffset);
      const tableLength = pixelData.readUInt32LE(4);
      expect(tableLength).toBe(4 * level.frameCount);
      const firstItem = 8 + tableLength;
      const frames = computeEncapsulatedFrames(pixelData, location.valueOffset, level.frameCount);
      for (let i = 0; i < level.frameCount; i++) {
        const itemStart = location.valueOffset + firstItem + pixelData.readUInt32LE(8 + 4 * i);
        expect(frames[i]).toEqual([[itemStart + 8, bytes.readUInt32LE(itemStart + 4)]]);
        expect(bytes.readUInt16LE(itemStart + 8)).toBe(0xd8ff); // SOI
      }
    }
  });

  it('refuses pyramids it cannot write, before writing anything', async () => {
    const out = join(dir, 'refused');
    const attempt = (levels: typeof LEVELS, jpegQuality = 90) => writeWsiPyramid(toSharp(pattern), out, { levels, jpegQuality });
    await expect(attempt([{ downsample: 2, tileSizePx: 256 }])).rejects.toThrow('downsample 1');
    await expect(attempt([LEVELS[0]!, LEVELS[2]!, LEVELS[1]!])).rejects.toThrow('must increase');
    await expect(attempt([LEVELS[0]!, { downsample: 1.0001, tileSizePx: 256 }])).rejects.toThrow('same size');
    await expect(attempt([{ downsample: 1, tileSizePx: 0 }])).rejects.toThrow('tileSizePx');
    await expect(attempt(LEVELS, 0)).rejects.toThrow('jpegQuality');
    await expect(writeWsiPyramid(toSharp(pattern), out, { levels: LEVELS, seriesUid: '1.2.03' })).rejects.toThrow('seriesUid');
    await expect(readFile(join(out, 'level-0.dcm'))).rejects.toThrow();
  });
});

/** dcmtk is optional (scripts/install-test-deps.sh installs it): without it, one skipped test says so. */
const hasDcmtk = spawnSync('dcmdump', ['--version']).error === undefined;

(hasDcmtk ? describe : describe.skip)('dcmtk reads the files', () => {
  if (!hasDcmtk) {
    it('needs dcmtk (dcmdump, dcmdjpeg): apt-get install dcmtk', () => {});
    return;
  }
  it('dcmdump parses every file without errors or warnings, and dcmdjpeg decodes every frame', async () => {
    const decodedDir = await mkdtemp(join(tmpdir(), 'wsi-writer-dcmdjpeg-'));
    try {
      for (const path of written.files) {
        const dump = await run('dcmdump', ['--log-level', 'warn', path], { maxBuffer: 64 * 1024 * 1024 });
        expect(dump.stderr, path).toBe('');
        expect(dump.stdout).toContain('(0020,9311) CS [TILED_FULL]');
        const decoded = await run('dcmdjpeg', ['--log-level', 'warn', path, join(decodedDir, 'decoded.dcm')]);
        expect(decoded.stderr, path).toBe('');
      }
    } finally {
      await rm(decodedDir, { recursive: true, force: true });
    }
  });
});

describe('the synthetic non-power-of-2 slide (test/support) that browser tests serve', () => {
  it('reads back with the levels and label it documents', async () => {
    const out = await mkdtemp(join(tmpdir(), 'npot-slide-'));
    const folder = createFolderSource({ dir: out });
    try {
      const npot = await writeNonPowerOfTwoSlide(out);
      const read = computeSlide(npot.studyUid, npot.seriesUid, await folder.readSeries(npot.studyUid, npot.seriesUid));
      expect(read.levels.map((l) => [l.widthPx, l.heightPx, l.tileWidthPx, l.gridCols, l.gridRows])).toEqual([
        [3000, 2200, 256, 12, 9],
        [1000, 734, 200, 5, 4],
        [286, 210, 128, 3, 2],
      ]);
      expect(read.label).toMatchObject({ widthPx: 600, heightPx: 300 });
      expect(await sharp(npot.sourcePngPath).metadata()).toMatchObject({ width: 3000, height: 2200, format: 'png' });
    } finally {
      await folder.close();
      await rm(out, { recursive: true, force: true });
    }
  });
});
