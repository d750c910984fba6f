/**
 * `npm run import -- IMAGE (--out DIR | --stow) [options]`: a large image (any TIFF, JPEG, PNG, ... that
 * sharp reads) → a DICOM VL Whole Slide Microscopy pyramid, written to a folder the gateway can serve
 * (DICOM_DIR) or sent to the PACS (DICOMWEB_URL) with STOW-RS.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { ConfigError, loadConfig } from '../config/index.js';
import { computeDefaultLevels } from '../import/levels.js';
import { storeInstances } from '../import/stow.js';
import { writeWsiPyramid, type LevelSpec } from '../import/wsi-writer.js';
import { createHttpClient } from '../source/dicomweb/http.js';

const USAGE = `Usage: npm run import -- IMAGE --out DIR [options]
       npm run import -- IMAGE --stow [options]

Converts IMAGE (TIFF, JPEG, PNG, WebP, ... anything sharp reads) into a DICOM VL Whole Slide
Microscopy pyramid: JPEG baseline tiles, TILED_FULL, one file per level, plus a label if given.

Options:
  --out DIR            write the files into DIR (created; must not hold another pyramid already);
                       serve it with DICOM_DIR=DIR npm start (or put DIR under DICOM_DIR)
  --stow               send the files to DICOMWEB_URL with STOW-RS, with the gateway's auth settings
  --mpp X              µm per pixel of IMAGE (default: the TIFF's resolution if it has one, else 0.5)
  --tile N             tile edge in pixels, 16-4096 (default 256)
  --levels N           number of levels, each half the size of the one before (default: halve until
                       a level fits in one or two tiles)
  --quality N          JPEG quality, 1-100 (default 90)
  --description TEXT   the series description shown in the slide list
  --label IMAGE        an image of the slide's label, stored as a LABEL instance
  -h, --help           this text

Exit codes: 0 done, 1 the import failed, 2 usage or configuration error.`;

class UsageError extends Error {}

function wholeNumber(value: string | undefined, name: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${name} must be a whole number from ${min} to ${max}, got '${value}'`);
  return n;
}

/** µm per pixel from a TIFF's resolution tags, when they are in physical units (not bare DPI). */
async function readMpp(input: string): Promise<number | undefined> {
  const { density, resolutionUnit } = await sharp(input, { limitInputPixels: false }).metadata();
  // sharp reports density in pixels per inch; resolutionUnit 'cm' means the file gave pixels per cm.
  if (!density || resolutionUnit !== 'cm') return undefined;
  const mpp = 25_400 / density;
  // Screen and print resolutions (72 ppi...) are not a microscope's: only trust 0.05-20 µm/px.
  return mpp >= 0.05 && mpp <= 20 ? mpp : undefined;
}

function parse(argv: string[]) {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      out: { type: 'string' },
      stow: { type: 'boolean', default: false },
      mpp: { type: 'string' },
      tile: { type: 'string' },
      levels: { type: 'string' },
      quality: { type: 'string' },
      description: { type: 'string' },
      label: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return { help: true as const };
  if (positionals.length !== 1) throw new UsageError(positionals.length === 0 ? 'Name the image to import.' : `One image at a time, got ${positionals.length}.`);
  if ((values.out === undefined) === !values.stow) throw new UsageError('Give either --out DIR or --stow.');
  const mpp = values.mpp === undefined ? undefined : Number(values.mpp);
  if (mpp !== undefined && !(mpp > 0 && mpp < 1000)) throw new UsageError(`--mpp must be a positive number of µm per pixel, got '${values.mpp}'`);
  return {
    help: false as const,
    input: resolve(positionals[0]!),
    out: values.out === undefined ? undefined : resolve(values.out),
    stow: values.stow,
    mpp,
    tileSizePx: wholeNumber(values.tile, 'tile', 16, 4096) ?? 256,
    levelCount: wholeNumber(values.levels, 'levels', 1, 32),
    quality: wholeNumber(values.quality, 'quality', 1, 100) ?? 90,
    description: values.description,
    label: values.label === undefined ? undefined : resolve(values.label),
  };
}

/** Runs the import command with `argv` (the arguments after `import`); resolves to the exit code. */
export async function runImport(argv: string[]): Promise<number> {
  let args;
  let config;
  try {
    args = parse(argv);
    if (args.help) {
      console.log(USAGE);
      return 0;
    }
    config = args.stow ? loadConfig(process.env) : undefined;
    if (config && !config.dicomwebUrl) throw new UsageError('--stow sends to DICOMWEB_URL, which is not set.');
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      return 2;
    }
    const message = error instanceof Error ? error.message : String(error);
    console.error(`${message}\n\n${USAGE}`);
    return 2;
  }

  const started = performance.now();
  const outDir = args.out ?? (await mkdtemp(join(tmpdir(), 'wsi-import-')));
  try {
    if (args.out && (await readdir(args.out).catch((): string[] => [])).includes('level-0.dcm')) {
      throw new Error(`${args.out} already holds a pyramid (level-0.dcm): choose another --out folder`);
    }
    const { width, height } = await sharp(args.input, { limitInputPixels: false }).metadata();
    if (!width || !height) throw new Error(`Cannot read the size of ${args.input}`);
    const mpp = args.mpp ?? (await readMpp(args.input));
    if (mpp === undefined) console.error('No --mpp given and the image states no resolution: assuming 0.5 µm per pixel.');
    const defaults = computeDefaultLevels(width, height, args.tileSizePx);
    const levels: LevelSpec[] =
      args.levelCount === undefined ? defaults : Array.from({ length: args.levelCount }, (_, i) => ({ downsample: 2 ** i, tileSizePx: args.tileSizePx }));
    const written = await writeWsiPyramid(args.input, outDir, {
      levels,
      mppAtLevel0: mpp ?? 0.5,
      jpegQuality: args.quality,
      seriesDescription: args.description,
      label: args.label,
    });
    for (const level of written.levels) {
      console.log(`level ${level.index}: ${level.widthPx} x ${level.heightPx} px, ${level.frameCount} tiles, ${(level.fileBytes / 1e6).toFixed(1)} MB`);
    }
    if (config?.dicomwebUrl) {
      const client = createHttpClient({
        baseUrl: config.dicomwebUrl,
        auth: config.upstreamAuth,
        headers: config.upstreamHeaders,
        timeoutMs: config.upstreamTimeoutMs,
        connections: 1,
      });
      try {
        await storeInstances(client, written.files, { onStored: (path) => console.log(`stored ${path.slice(outDir.length + 1)}`) });
      } finally {
        await client.close();
      }
    }
    const where = config?.dicomwebUrl ? `sent to ${config.dicomwebUrl}` : `written to ${outDir}`;
    console.log(`Slide ${written.studyUid}/${written.seriesUid} ${where} in ${((performance.now() - started) / 1000).toFixed(1)} s.`);
    return 0;
  } catch (error) {
    console.error(`Import failed: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  } finally {
    if (!args.out) await rm(outDir, { recursive: true, force: true });
  }
}

// `tsx src/cli/import.ts ...` (npm run import) runs it; `wsi-gateway import` imports runImport.
if (process.argv[1] !== undefined && resolve(process.argv[1]) === import.meta.filename) {
  process.exitCode = await runImport(process.argv.slice(2));
}
