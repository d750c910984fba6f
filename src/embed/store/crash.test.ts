import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { appendFile, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { commitFixture, fixtureBatch, fixtureHeader, fixtureKey } from './crash-child.fixture.js';
import { createLocalStore } from './local-store.js';

const TOTAL = 3000;
const DIM = 32;
const BATCH = 16;
const fixture = fileURLToPath(new URL('./crash-child.fixture.ts', import.meta.url));
/** The child resolves `--import tsx` from its working directory: the repository root, wherever vitest started. */
const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const rowsBefore = (gridEnd: number) => fixtureBatch(0, gridEnd, 1).embeddings.length;

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'embedding-store-crash-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

/** The fixture run done in one go, batch size unlike the crashed run's: the bytes to match. */
async function uninterruptedRun(): Promise<{ embeddings: Buffer; coords: Buffer }> {
  const referenceRoot = join(root, 'reference');
  const writer = await createLocalStore(referenceRoot).openRun(fixtureKey, fixtureHeader(TOTAL, DIM));
  await commitFixture(writer, TOTAL, 64);
  await writer.finish();
  const dir = join(referenceRoot, fixtureKey.studyUid, fixtureKey.seriesUid, fixtureKey.modelId, fixtureKey.runId);
  return { embeddings: await readFile(join(dir, 'embeddings.npy')), coords: await readFile(join(dir, 'coords.npy')) };
}

/**
 * Starts the child on the fixture run; once it has reported `batches` commits past where it resumed,
 * SIGKILLs it `delayMs` later (the child sleeps 10 ms between ~5-10 ms commits, so different delays
 * land in the sleep or inside a commit). Returns where the child resumed and the last commit it reported.
 */
async function crashChild(batches: number, delayMs: number): Promise<{ opened: number; reported: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', fixture, join(root, 'store'), String(TOTAL), String(DIM), String(BATCH), '10'], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let opened = -1;
  let reported = -1;
  let timer: NodeJS.Timeout | undefined;
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString();
    opened = Number(/^opened (\d+)$/m.exec(out)?.[1] ?? -1);
    reported = Math.max(opened, ...[...out.matchAll(/^committed (\d+)$/gm)].map((m) => Number(m[1])));
    if (opened >= 0 && reported >= opened + batches * BATCH && !timer) timer = setTimeout(() => child.kill('SIGKILL'), delayMs);
  });
  // 'close' comes after the pipes are drained: every line the child wrote before it died is in `out`.
  const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
  expect({ code, signal, err }).toMatchObject({ code: null, signal: 'SIGKILL' });
  expect(out).not.toContain('done');
  return { opened, reported };
}

describe('a kill -9 while a run is written', () => {
  it('loses at most the batch in flight, cuts torn appends, and finishes byte-identical to an uninterrupted run', async () => {
    const store = createLocalStore(join(root, 'store'));
    const dir = join(root, 'store', fixtureKey.studyUid, fixtureKey.seriesUid, fixtureKey.modelId, fixtureKey.runId);
    let committed = 0;
    const seen: string[] = [];
    for (const delayMs of [0, 4, 8, 12, 16]) {
      const { opened, reported } = await crashChild(8, delayMs);
      expect(opened).toBe(committed); // the child resumed where the last round's check left the run
      // A torn append on top of whatever the kill left: garbage that no commit counts.
      await appendFile(join(dir, 'embeddings.f32.part'), Buffer.alloc(1001, 0xab));
      await appendFile(join(dir, 'coords.i32.part'), Buffer.alloc(7, 0xcd));

      const writer = await store.openRun(fixtureKey, fixtureHeader(TOTAL, DIM));
      // The child prints right after commitBatch resolves; a kill between the commit point (the rename
      // of progress.json) and the print leaves one batch committed that it never reported.
      expect([reported, reported + BATCH]).toContain(writer.committedPatches);
      seen.push(writer.committedPatches === reported ? 'at the last report' : 'one unreported batch on');
      expect(writer.discarded).toBeUndefined();
      expect(writer.rows).toBe(rowsBefore(writer.committedPatches));
      expect((await stat(join(dir, 'embeddings.f32.part'))).size).toBe(writer.rows * DIM * 4);
      expect((await stat(join(dir, 'coords.i32.part'))).size).toBe(writer.rows * 8);
      committed = writer.committedPatches;
      await writer.close();
    }
    console.log(`crash test: 5 kills resumed ${seen.join(', ')}; ${committed} of ${TOTAL} done`);

    const writer = await store.openRun(fixtureKey, fixtureHeader(TOTAL, DIM));
    await commitFixture(writer, TOTAL, 50);
    const manifest = await writer.finish();
    const reference = await uninterruptedRun();
    expect((await readFile(join(dir, 'embeddings.npy'))).equals(reference.embeddings)).toBe(true);
    expect((await readFile(join(dir, 'coords.npy'))).equals(reference.coords)).toBe(true);
    expect([manifest.rows, manifest.skippedCount]).toEqual([rowsBefore(TOTAL), TOTAL - rowsBefore(TOTAL)]);
  }, 60_000);

  it('finishes again after a finish killed before its manifest', async () => {
    const store = createLocalStore(join(root, 'store'));
    const dir = join(root, 'store', fixtureKey.studyUid, fixtureKey.seriesUid, fixtureKey.modelId, fixtureKey.runId);
    const writer = await store.openRun(fixtureKey, fixtureHeader(TOTAL, DIM));
    await commitFixture(writer, TOTAL, 100);
    await writer.close();
    // What a kill inside finish() can leave: a half-written temp file and a published .npy, no manifest.
    await writeFile(join(dir, 'coords.npy.tmp'), 'half');
    await writeFile(join(dir, 'embeddings.npy'), 'stale');
    expect(await store.getRun(fixtureKey)).toBeUndefined();
    expect(await store.resolveFile(fixtureKey, 'embeddings.npy')).toBeUndefined();

    const resumed = await store.openRun(fixtureKey, fixtureHeader(TOTAL, DIM));
    expect([resumed.committedPatches, resumed.complete]).toEqual([TOTAL, false]);
    await resumed.finish();
    const reference = await uninterruptedRun();
    expect((await readFile(join(dir, 'embeddings.npy'))).equals(reference.embeddings)).toBe(true);
    expect((await readFile(join(dir, 'coords.npy'))).equals(reference.coords)).toBe(true);
  });
});
