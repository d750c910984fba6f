import { appendFile, mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { commitFixture, fixtureHeader, fixtureKey } from './crash-child.fixture.js';
import { createLocalStore } from './local-store.js';
import { verifyStore } from './verify.js';

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'embedding-store-verify-'));
});
afterEach(() => rm(root, { recursive: true, force: true }));

const complete = { ...fixtureKey, runId: 'complete' };
const unfinished = { ...fixtureKey, runId: 'unfinished' };
const dirOf = (key: typeof fixtureKey) => join(root, key.studyUid, key.seriesUid, key.modelId, key.runId);

/** A store with one complete run of 100 patches and one unfinished at 40 of 100. */
async function writeStore(): Promise<void> {
  const store = createLocalStore(root);
  const done = await store.openRun(complete, fixtureHeader(100, 8));
  await commitFixture(done, 100, 16);
  await done.finish();
  const open = await store.openRun(unfinished, fixtureHeader(100, 8));
  await commitFixture(open, 40, 16);
  await open.close();
}

describe('verifyStore', () => {
  it('finds nothing wrong with what the store wrote, and notes what the design ignores', async () => {
    await writeStore();
    expect(await verifyStore(root)).toEqual({ runs: { complete: 1, unfinished: 1 }, problems: [], notes: [] });
    // A batch in flight, a torn temp progress file, a finish cut short after its manifest: all harmless.
    await appendFile(join(dirOf(unfinished), 'embeddings.f32.part'), Buffer.alloc(32));
    await writeFile(join(dirOf(unfinished), 'progress.json.tmp'), '{"formatVer');
    await writeFile(join(dirOf(complete), 'coords.i32.part'), '');
    const check = await verifyStore(root);
    expect(check.problems).toEqual([]);
    expect(check.notes).toEqual([
      expect.stringMatching(/complete, with work files left by a finish cut short after its manifest \(coords\.i32\.part\)$/),
      expect.stringMatching(/progress\.json\.tmp: a temp file, never read$/),
      expect.stringMatching(/embeddings\.f32\.part: 32 bytes past the commit point/),
    ]);
  });

  it('validates the root files it is told about', async () => {
    await writeStore();
    const rootFiles = {
      'jobs.json': (json: unknown) => {
        if (!Array.isArray(json)) throw new Error('jobs.json: not a list');
      },
    };
    await writeFile(join(root, 'jobs.json'), '[]');
    await writeFile(join(root, 'jobs.json.tmp'), '[');
    expect((await verifyStore(root, { rootFiles })).problems).toEqual([]);
    await writeFile(join(root, 'jobs.json'), '{}');
    expect((await verifyStore(root, { rootFiles })).problems).toEqual(['jobs.json: not a list']);
    expect((await verifyStore(root)).problems).toEqual([expect.stringMatching(/jobs\.json: not a file or directory the store writes$/), expect.stringMatching(/jobs\.json\.tmp: not a file/)]);
  });

  it.each([
    ['a part file shorter than the committed rows', async () => truncate(join(dirOf(unfinished), 'coords.i32.part'), 40), /coords\.i32\.part: 40 bytes, fewer than the 34 committed rows need \(272\)/],
    ['a progress.json that is not JSON', async () => writeFile(join(dirOf(unfinished), 'progress.json'), '{'), /progress\.json: not JSON/],
    ['a progress.json that does not validate', async () => writeFile(join(dirOf(unfinished), 'progress.json'), '{"formatVersion":1}'), /progress\.json: header: /],
    ['a manifest that does not validate', async () => writeFile(join(dirOf(complete), 'manifest.json'), '{"formatVersion":2}'), /manifest\.json: formatVersion/],
    ['an .npy file changed in place', async () => {
      const file = join(dirOf(complete), 'embeddings.npy');
      const bytes = await readFile(file);
      bytes[bytes.length - 1]! ^= 1;
      await writeFile(file, bytes);
    }, /embeddings\.npy: SHA-256 differs from the manifest's/],
    ['an .npy file cut short', async () => truncate(join(dirOf(complete), 'coords.npy'), 100), /coords\.npy: 100 bytes, the manifest says/],
    ['an .npy file missing', async () => rm(join(dirOf(complete), 'coords.npy')), /coords\.npy: missing/],
    ['a stray file in a run', async () => writeFile(join(dirOf(complete), 'embeddings.npy.bak'), ''), /embeddings\.npy\.bak: not a file the store writes/],
  ])('reports %s', async (_what, damage, message) => {
    await writeStore();
    await damage();
    const check = await verifyStore(root);
    expect(check.problems).toEqual([expect.stringMatching(message)]);
  });
});
