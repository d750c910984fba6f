/**
 * `import` round trip: an image → `npm run import` (runImport) → a DICOM pyramid that dcmtk parses, the
 * gateway serves with the image's pixels at every level, and a separate Orthanc accepts over STOW-RS.
 */
import { execFile, spawnSync } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runImport } from '../src/cli/import.js';
import { createTestGateway, readJson, type TestGateway } from './support/gateway.js';
import { findOrthancBinary, startOrthanc, type OrthancServer } from './support/orthanc.js';
import { computeJpegTolerance, cropPixels, decodeWithSharp, meanAbsDiff, type Pixels } from './support/reference.js';
import { createTestPattern } from './support/synthetic-slide.js';

const run = promisify(execFile);
/** Not a multiple of the tile size, so every level has padded edge tiles. */
const pattern = createTestPattern(1500, 1100, 100);
const toSharp = (image: Pixels) => sharp(image.data, { raw: { width: image.widthPx, height: image.heightPx, channels: 3 } });

interface Descriptor {
  levels: Array<{ widthPx: number; heightPx: number; tileWidthPx: number; tileHeightPx: number; gridCols: number; gridRows: number; mppX: number }>;
  label: unknown;
}
interface SlideList {
  total: number;
  slides: Array<{ id: string; seriesDescription?: string }>;
}

let dir: string;
let imagePath: string;
let labelPath: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'import-test-'));
  imagePath = join(dir, 'image.png');
  labelPath = join(dir, 'label.png');
  await toSharp(pattern).png({ compressionLevel: 1 }).toFile(imagePath);
  await sharp({ create: { width: 300, height: 150, channels: 3, background: '#e0d0a0' } }).png().toFile(labelPath);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Every tile of every level, compared with the image resampled independently of the writer. */
async function expectTilesMatchImage(gateway: TestGateway, slideId: string): Promise<void> {
  const descriptor = await readJson<Descriptor>(await gateway.get(`/api/slides/${slideId}`));
  for (const [index, level] of descriptor.levels.entries()) {
    const { data, info } = await toSharp(pattern).resize(level.widthPx, level.heightPx, { fit: 'fill', kernel: 'lanczos3' }).raw().toBuffer({ resolveWithObject: true });
    const expected: Pixels = index === 0 ? pattern : { data, widthPx: info.width, heightPx: info.height };
    for (let row = 0; row < level.gridRows; row++) {
      for (let col = 0; col < level.gridCols; col++) {
        const response = await gateway.get(`/api/slides/${slideId}/tiles/${index}/${col}/${row}.jpg`);
        expect(response.headers.get('content-type')).toBe('image/jpeg');
        const tile = await decodeWithSharp(Buffer.from(await response.arrayBuffer()));
        const left = col * level.tileWidthPx;
        const top = row * level.tileHeightPx;
        const reference = cropPixels(expected, left, top, Math.min(level.tileWidthPx, level.widthPx - left), Math.min(level.tileHeightPx, level.heightPx - top));
        const tolerance = await computeJpegTolerance(reference, 90, { widthPx: level.tileWidthPx, heightPx: level.tileHeightPx });
        expect(meanAbsDiff(tile, reference), `level ${index} tile ${col},${row}`).toBeLessThanOrEqual(tolerance);
      }
    }
  }
}

describe('npm run import -- IMAGE --out DIR', () => {
  let out: string;
  let gateway: TestGateway;

  beforeAll(async () => {
    out = join(dir, 'slides');
    const argv = [imagePath, '--out', out, '--mpp', '0.25', '--quality', '90', '--description', 'Imported pattern', '--label', labelPath];
    expect(await runImport(argv)).toBe(0);
    gateway = createTestGateway({ DICOM_DIR: out });
  });

  afterAll(async () => {
    await gateway?.close();
  });

  it('writes a power-of-2 pyramid down to one or two tiles, with the label, that the gateway lists', async () => {
    expect((await readdir(out)).sort()).toEqual(['label.dcm', 'level-0.dcm', 'level-1.dcm', 'level-2.dcm', 'level-3.dcm']);
    const list = await readJson<SlideList>(await gateway.get('/api/slides'));
    expect(list.slides.map((s) => s.seriesDescription)).toEqual(['Imported pattern']);
    const descriptor = await readJson<Descriptor>(await gateway.get(`/api/slides/${list.slides[0]!.id}`));
    expect(descriptor.levels.map((l) => [l.widthPx, l.heightPx, l.gridCols * l.gridRows])).toEqual([
      [1500, 1100, 30],
      [750, 550, 9],
      [375, 275, 4],
      [188, 138, 1],
    ]);
    expect(descriptor.levels[0]!.mppX).toBeCloseTo(0.25, 9);
    expect(descriptor.label).toMatchObject({ widthPx: 300, heightPx: 150 });
  });

  it("serves the image's pixels at every level, within JPEG tolerance", async () => {
    const list = await readJson<SlideList>(await gateway.get('/api/slides'));
    await expectTilesMatchImage(gateway, list.slides[0]!.id);
  });

  const hasDcmdump = spawnSync('dcmdump', ['--version']).error === undefined;
  it.skipIf(!hasDcmdump)('writes files that dcmtk parses without warnings (needs dcmtk: apt-get install dcmtk)', async () => {
    for (const name of await readdir(out)) {
      const dump = await run('dcmdump', ['--log-level', 'warn', join(out, name)], { maxBuffer: 64 * 1024 * 1024 });
      expect(dump.stderr, name).toBe('');
      expect(dump.stdout, name).toContain('(0008,0016) UI =VLWholeSlideMicroscopyImageStorage');
      expect(dump.stdout, name).toContain('(0020,9311) CS [TILED_FULL]');
    }
  });

  it('refuses a folder that already holds a pyramid, and bad usage with exit code 2', async () => {
    expect(await runImport([imagePath, '--out', out])).toBe(1);
    expect(await runImport([join(dir, 'missing.png'), '--out', join(dir, 'other')])).toBe(1);
    expect(await runImport([])).toBe(2);
    expect(await runImport([imagePath])).toBe(2);
    expect(await runImport([imagePath, '--out', out, '--stow'])).toBe(2);
    expect(await runImport([imagePath, '--out', out, '--tile', '7'])).toBe(2);
    expect(await runImport(['--help'])).toBe(0);
  });
});

// A separate Orthanc: the shared one's slide count is what other tests assert on.
describe.skipIf(findOrthancBinary() === undefined)('npm run import -- IMAGE --stow (needs Orthanc)', () => {
  let orthanc: OrthancServer;
  let gateway: TestGateway;

  beforeAll(async () => {
    orthanc = await startOrthanc({ withWsiPlugin: false });
  });

  afterAll(async () => {
    await gateway?.close();
    await orthanc?.stop();
  });

  it('stores the pyramid in the PACS, and the gateway on that PACS serves its pixels', async () => {
    const saved = process.env.DICOMWEB_URL;
    process.env.DICOMWEB_URL = orthanc.dicomwebUrl;
    try {
      expect(await runImport([imagePath, '--stow', '--mpp', '0.25', '--description', 'Stored pattern', '--label', labelPath])).toBe(0);
    } finally {
      if (saved === undefined) delete process.env.DICOMWEB_URL;
      else process.env.DICOMWEB_URL = saved;
    }
    const instances = (await (await fetch(`${orthanc.baseUrl}/instances`)).json()) as unknown[];
    expect(instances).toHaveLength(5);
    gateway = createTestGateway({ DICOMWEB_URL: orthanc.dicomwebUrl });
    const list = await readJson<SlideList>(await gateway.get('/api/slides'));
    expect(list.slides.map((s) => s.seriesDescription)).toEqual(['Stored pattern']);
    await expectTilesMatchImage(gateway, list.slides[0]!.id);
  });
});
