/**
 * What a long embedding job must survive, on slides served from folders (no PACS needed): the CLI
 * killed with SIGKILL mid-slide and run again gives files byte-identical to an uninterrupted run; a
 * corrupt frame costs only the patches on it; a grid between pyramid levels is resampled, and only then.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBuiltinModel } from '../src/embed/runtime/builtin.js';
import { loadManifests } from '../src/embed/models/manifest.js';
import { createTestGateway, readJson, type TestGateway } from './support/gateway.js';
import { cutFromTiles, downloadRun, runJob, writeTinyModels } from './support/embeddings.js';
import { writeNonPowerOfTwoSlide, type SyntheticSlide } from './support/synthetic-slide.js';
import { sampleSlideId, sharedWsiDir, wsiSamples } from './support/wsi-data.js';

const repoRoot = resolve(import.meta.dirname, '..');

/** Runs the embed CLI; `onStart` may kill it. Resolves with its exit code or signal and its output. */
function runCli(args: string[], env: Record<string, string>, onStart?: (child: ReturnType<typeof spawn>) => void) {
  const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'src/cli/embed.ts'), ...args], {
    cwd: repoRoot,
    env: { PATH: process.env['PATH'] ?? '', LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  onStart?.(child);
  return new Promise<{ code: number | null; signal: NodeJS.Signals | null; output: string }>((done) => child.on('close', (code, signal) => done({ code, signal, output })));
}

describe('embedding jobs that crash, meet corrupt frames, or sit between levels', () => {
  let modelsDir: string;
  let work: string;
  beforeAll(async () => {
    modelsDir = await writeTinyModels();
    work = await mkdtemp(join(tmpdir(), 'embed-resume-'));
  });
  afterAll(async () => {
    await rm(modelsDir, { recursive: true, force: true });
    await rm(work, { recursive: true, force: true });
  });

  it('resumes after kill -9 of the CLI mid-slide, to files identical to an uninterrupted run', async () => {
    const slideId = await sampleSlideId(wsiSamples.cmu1T256Q90);
    const [studyUid, seriesUid] = slideId.split('/') as [string, string];
    const args = [slideId, '--model', 'test-vit-tiny', '--stride', '56', '--min-tissue', '0'];
    const env = { DICOM_DIR: join(sharedWsiDir, 'cmu1-t256-q90'), MODELS_DIR: modelsDir };
    const killedDir = join(work, 'killed');
    const progressFile = join(killedDir, studyUid, seriesUid, 'test-vit-tiny', 'mpp0.5-s56-t0', 'progress.json');

    let committedAtKill = 0;
    const killed = await runCli(args, { ...env, EMBED_DIR: killedDir }, (child) => {
      const poll = setInterval(() => {
        void readFile(progressFile, 'utf8').then(
          (text) => {
            const done = (JSON.parse(text) as { gridDone: number }).gridDone;
            if (done > 0 && committedAtKill === 0) {
              committedAtKill = done;
              child.kill('SIGKILL');
              clearInterval(poll);
            }
          },
          () => undefined,
        );
      }, 5);
      child.on('close', () => clearInterval(poll));
    });
    expect(killed.signal, killed.output).toBe('SIGKILL');
    expect(committedAtKill).toBeGreaterThan(0);
    expect(committedAtKill).toBeLessThan(36 * 49);

    const resumed = await runCli(args, { ...env, EMBED_DIR: killedDir });
    expect(resumed.code, resumed.output).toBe(0);
    expect(resumed.output).toMatch(/mpp0\.5-s56-t0\t1764 embedded, 0 skipped/);
    const clean = await runCli(args, { ...env, EMBED_DIR: join(work, 'clean') });
    expect(clean.code, clean.output).toBe(0);

    for (const file of ['embeddings.npy', 'coords.npy']) {
      const runDir = (root: string) => join(root, studyUid, seriesUid, 'test-vit-tiny', 'mpp0.5-s56-t0', file);
      const [a, b] = await Promise.all([readFile(runDir(killedDir)), readFile(runDir(join(work, 'clean')))]);
      expect(a.length).toBeGreaterThan(1764 * 8);
      expect(a.equals(b), file).toBe(true);
    }
  });

  describe('a synthetic slide with downsamples 1, 3 and 10.5 at 0.5 µm/px', () => {
    let slide: SyntheticSlide;
    let gateway: TestGateway;
    let slideId: string;
    beforeAll(async () => {
      slide = await writeNonPowerOfTwoSlide(join(work, 'npot'));
      slideId = `${slide.studyUid}/${slide.seriesUid}`;
      // Corrupt frame 14 of level 0 (tile col 1, row 1 of a 12-wide grid): its JPEG start marker is gone.
      const level0 = slide.levels[0]!;
      const bytes = await readFile(level0.path);
      let at = -1;
      for (let n = 0; n < 14; n++) at = bytes.indexOf(Buffer.from([0xff, 0xd8, 0xff]), at + 1);
      bytes.fill(0, at, at + 3);
      await writeFile(level0.path, bytes);
      gateway = createTestGateway({ DICOM_DIR: join(work, 'npot'), EMBED_DIR: join(work, 'npot-embeddings'), MODELS_DIR: modelsDir });
    });
    afterAll(() => gateway.close());

    it('skips and counts the patches on a corrupt frame, and embeds the rest', async () => {
      const { job } = await runJob(gateway, slideId, { model: 'stain-texture', minTissue: 0 });
      expect(job.state, JSON.stringify(job.error)).toBe('done');
      // Patches of 224 px on 256 px tiles: those overlapping tile (1, 1) = x 256..511, y 256..511.
      const overlapping: number[] = [];
      const cols = Math.floor((3000 - 224) / 224) + 1;
      const rows = Math.floor((2200 - 224) / 224) + 1;
      for (let r = 0; r < rows; r++) {
        for (let c = 0; c < cols; c++) {
          const x = c * 224;
          const y = r * 224;
          if (x < 512 && x + 224 > 256 && y < 512 && y + 224 > 256) overlapping.push(r * cols + c);
        }
      }
      expect(job.progress.skipped).toBe(overlapping.length);
      const run = await downloadRun(gateway, slideId, 'stain-texture', job.result!.runId);
      expect(run.manifest.rows).toBe(cols * rows - overlapping.length);
      const skipped = run.manifest['skipped'] as Array<{ gridIndex: number; reason: string }>;
      expect(skipped.map((s) => s.gridIndex)).toEqual(overlapping);
      expect(skipped[0]!.reason).toMatch(/frame 14 of level 0 cannot be decoded/);
    });

    it('reads 1 µm/px from level 0 resized 2x (level 1 is coarser), and 1.5 µm/px from level 1 as is', async () => {
      const resampled = await runJob(gateway, slideId, { model: 'stain-texture', mpp: 1, minTissue: 0 });
      expect(resampled.job.state, JSON.stringify(resampled.job.error)).toBe('done');
      expect(resampled.job.notes.join(' ')).toMatch(/resized to 224/);
      const run = await downloadRun(gateway, slideId, 'stain-texture', resampled.job.result!.runId);
      expect(run.manifest.grid).toMatchObject({ levelIndex: 0, scale: 2, readSizeLevelPx: 448, patchSizeLevel0Px: 448, cols: 6, rows: 4 });
      // Patches (0, 0) and (1, 0), 448 px on level 0, cover the corrupt tile (1, 1): the first stored is (2, 0).
      expect(resampled.job.progress.skipped).toBe(4);
      expect(Array.from(run.coords.subarray(0, 4))).toEqual([896, 0, 1344, 0]);
      // The last patch, cut from the tiles and resized here, gives the same statistics. (The first
      // patches overlap the corrupt frame and were skipped.)
      const last = run.manifest.rows - 1;
      const region = await cutFromTiles(gateway, slideId, { index: 0, tileWidthPx: 256, tileHeightPx: 256 }, run.coords[2 * last]!, run.coords[2 * last + 1]!, 448);
      const patch = await sharp(region.data, { raw: { width: 448, height: 448, channels: 3 } }).resize(224, 224, { fit: 'fill', kernel: 'lanczos3' }).raw().toBuffer();
      const manifest = (await loadManifests(join(repoRoot, 'models'))).get('stain-texture')!;
      const expected = await createBuiltinModel(manifest).embed({ pixels: patch, count: 1, sizePx: 224 });
      const stored = run.embeddings.subarray(last * run.manifest.dim, (last + 1) * run.manifest.dim);
      for (let d = 0; d < run.manifest.dim; d++) expect(stored[d]).toBeCloseTo(expected[d]!, 5);

      const exact = await runJob(gateway, slideId, { model: 'stain-texture', mpp: 1.5, minTissue: 0 });
      expect(exact.job.notes).toEqual([]);
      const exactRun = await downloadRun(gateway, slideId, 'stain-texture', exact.job.result!.runId);
      expect(exactRun.manifest.grid).toMatchObject({ levelIndex: 1, scale: 1, resampled: false, readSizeLevelPx: 224, patchSizeLevel0Px: 672 });
      const list = await readJson<{ runs: unknown[] }>(await gateway.get(`/api/slides/${slideId}/embeddings?model=stain-texture`));
      expect(list.runs).toHaveLength(3);
    });
  });
});
