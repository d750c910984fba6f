import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buffer, text } from 'node:stream/consumers';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BadRequestError } from '../../errors.js';
import { commitFixture, fixtureBatch, fixtureHeader, fixtureKey } from './crash-child.fixture.js';
import { createLocalStore, type LocalEmbeddingStore } from './local-store.js';
import { readNpy } from './npy.js';
import { RunConflictError, type RunKey } from './types.js';

let root: string;
let store: LocalEmbeddingStore;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'embedding-store-'));
  store = createLocalStore(root);
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const key = fixtureKey;
const runDir = () => join(root, key.studyUid, key.seriesUid, key.modelId, key.runId);
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** What the fixture run's .npy files must hold: every non-skipped grid index in order. */
function expectedArrays(total: number, dim: number) {
  const all = fixtureBatch(0, total, dim);
  return { embeddings: all.embeddings, coords: all.coordsPx, rows: all.embeddings.length / dim, skipped: all.skipped };
}

describe('a run', () => {
  it('commits batches, resumes after close, finishes into .npy files and a manifest', async () => {
    const total = 100;
    const dim = 8;
    const writer = await store.openRun(key, fixtureHeader(total, dim));
    expect([writer.committedPatches, writer.rows, writer.complete, writer.discarded]).toEqual([0, 0, false, undefined]);
    await commitFixture(writer, 40, 16);
    expect(writer.committedPatches).toBe(40);
    await writer.close();
    await writer.close(); // idempotent
    await expect(writer.commitBatch(fixtureBatch(40, 41, dim))).rejects.toThrow('closed');

    // The same header with its params in another key order is the same run.
    const header = fixtureHeader(total, dim);
    const resumed = await store.openRun(key, { totalPatches: total, params: Object.fromEntries(Object.entries(header.params).reverse()), dim });
    expect([resumed.committedPatches, resumed.rows, resumed.skippedCount, resumed.discarded]).toEqual([40, 40 - 6, 6, undefined]); // 3, 10, ..., 38 skipped
    const listed = await store.listRuns(key.studyUid, key.seriesUid);
    expect(listed).toMatchObject([{ key, status: 'in-progress', progress: { gridDone: 40, rows: 34, skippedCount: 6 } }]);
    await expect(resumed.finish()).rejects.toThrow('40 of 100 grid indexes committed');
    await commitFixture(resumed, total, 25);
    const manifest = await resumed.finish({ model: 'Fixture', backend: 'builtin' });

    const expected = expectedArrays(total, dim);
    expect(manifest).toMatchObject({
      formatVersion: 1,
      ...key,
      model: 'Fixture',
      backend: 'builtin',
      dim,
      rows: expected.rows,
      totalPatches: total,
      params: header.params,
      skippedCount: expected.skipped.length,
      skipped: expected.skipped,
    });
    expect(Date.parse(manifest.finishedAt)).toBeGreaterThanOrEqual(Date.parse(manifest.createdAt));
    const embeddings = await readNpy(join(runDir(), 'embeddings.npy'));
    const coords = await readNpy(join(runDir(), 'coords.npy'));
    expect(embeddings).toEqual({ dtype: '<f4', shape: [expected.rows, dim], data: expected.embeddings });
    expect(coords).toEqual({ dtype: '<i4', shape: [expected.rows, 2], data: expected.coords });
    for (const name of ['embeddings.npy', 'coords.npy'] as const) {
      const bytes = await readFile(join(runDir(), name));
      expect(manifest.files[name]).toMatchObject({ bytes: bytes.length, sha256: sha256(bytes) });
    }
    expect((await readdir(runDir())).sort()).toEqual(['coords.npy', 'embeddings.npy', 'manifest.json']);
    expect(resumed.complete).toBe(true);
    await expect(resumed.commitBatch(fixtureBatch(0, 1, dim))).rejects.toThrow('already complete');
    await resumed.close();

    expect(await store.getRun(key)).toEqual(manifest);
    expect(await store.listRuns(key.studyUid, key.seriesUid)).toEqual([{ key, status: 'complete', manifest }]);
    expect(await store.listSeries()).toEqual([{ studyUid: key.studyUid, seriesUid: key.seriesUid }]);
    const read = await store.readEmbeddings(key);
    expect(read).toEqual({ embeddings: expected.embeddings, coords: expected.coords, dim, rows: expected.rows, manifest });
    const again = await store.openRun(key, header);
    expect([again.complete, again.committedPatches, again.rows, again.skippedCount]).toEqual([true, total, expected.rows, expected.skipped.length]);
    expect(again.manifest).toEqual(manifest);
    await expect(again.finish()).rejects.toThrow('already complete');
    await again.close();
  });

  it('starts over when an unfinished run had another header, and says why', async () => {
    const writer = await store.openRun(key, fixtureHeader(100, 8));
    await commitFixture(writer, 32, 16);
    await writer.close();
    const other = await store.openRun(key, fixtureHeader(100, 16));
    expect(other.committedPatches).toBe(0);
    expect(other.discarded).toContain('another header');
    expect((await stat(join(runDir(), 'embeddings.f32.part'))).size).toBe(0);
    await expect(readFile(join(runDir(), 'progress.json'))).rejects.toThrow('ENOENT');
    await commitFixture(other, 100, 50);
    expect((await other.finish()).dim).toBe(16);
  });

  it('starts over when progress.json is damaged or the part files are short', async () => {
    const writer = await store.openRun(key, fixtureHeader(50, 4));
    await commitFixture(writer, 20, 10);
    await writer.close();
    await writeFile(join(runDir(), 'embeddings.f32.part'), Buffer.alloc(10));
    const short = await store.openRun(key, fixtureHeader(50, 4));
    expect([short.committedPatches, short.discarded]).toEqual([0, expect.stringContaining('fewer than the 17 rows')]);
    await commitFixture(short, 20, 10);
    await short.close();
    await writeFile(join(runDir(), 'progress.json'), '{"formatVersion": 1, "gridDo');
    const damaged = await store.openRun(key, fixtureHeader(50, 4));
    expect([damaged.committedPatches, damaged.discarded]).toEqual([0, expect.stringContaining('unreadable progress')]);
    await damaged.close();
  });

  it('refuses a bad batch without harm to the run', async () => {
    const dim = 4;
    const writer = await store.openRun(key, fixtureHeader(30, dim));
    await writer.commitBatch(fixtureBatch(0, 10, dim));
    const bad: Array<[string, Parameters<typeof writer.commitBatch>[0]]> = [
      ['must be a whole number in (10, 30]', fixtureBatch(5, 10, dim)], // gridEnd not past the last one
      ['must be a whole number in (10, 30]', { ...fixtureBatch(10, 20, dim), gridEnd: 10 }],
      ['must be a whole number in (10, 30]', { ...fixtureBatch(10, 20, dim), gridEnd: 31 }],
      ['must be a whole number in (10, 30]', { ...fixtureBatch(10, 20, dim), gridEnd: 19.5 }],
      ['must cover grid indexes 10..19', { ...fixtureBatch(10, 21, dim), gridEnd: 20 }],
      ['coordsPx must be an Int32Array of 8 * 2', { ...fixtureBatch(10, 20, dim), coordsPx: new Int32Array(2) }],
      ['k * 4 floats', { ...fixtureBatch(10, 20, dim), embeddings: new Float32Array(3) }],
      ['must rise within 10..19', { ...fixtureBatch(10, 20, dim), skipped: [{ gridIndex: 17, reason: 'x' }, { gridIndex: 10, reason: 'x' }] }],
      ['must rise within 10..19', { ...fixtureBatch(10, 20, dim), skipped: [{ gridIndex: 9, reason: 'x' }, { gridIndex: 10, reason: 'x' }] }],
    ];
    for (const [message, batch] of bad) await expect(writer.commitBatch(batch), message).rejects.toThrow(message);
    await writer.commitBatch(fixtureBatch(10, 30, dim));
    const manifest = await writer.finish();
    expect(manifest.rows).toBe(expectedArrays(30, dim).rows);
  });

  it('refuses further writes after a failed one, until reopened', async () => {
    const writer = await store.openRun(key, fixtureHeader(30, 4));
    await writer.commitBatch(fixtureBatch(0, 10, 4));
    await rm(runDir(), { recursive: true }); // progress.json.tmp cannot be created any more
    await expect(writer.commitBatch(fixtureBatch(10, 20, 4))).rejects.toThrow('ENOENT');
    await expect(writer.commitBatch(fixtureBatch(10, 20, 4))).rejects.toThrow('close and reopen the run');
    await writer.close();
    const reopened = await store.openRun(key, fixtureHeader(30, 4));
    expect(reopened.committedPatches).toBe(0);
    await reopened.close();
  });

  it('rejects overlapping calls: they must be sequential', async () => {
    const writer = await store.openRun(key, fixtureHeader(30, 4));
    const first = writer.commitBatch(fixtureBatch(0, 10, 4));
    await expect(writer.commitBatch(fixtureBatch(10, 20, 4))).rejects.toThrow('must be sequential');
    await expect(writer.finish()).rejects.toThrow('must be sequential');
    const closing = writer.close(); // waits for the batch in flight
    await first;
    await closing;
    const reopened = await store.openRun(key, fixtureHeader(30, 4));
    expect(reopened.committedPatches).toBe(10);
    await reopened.close();
  });

  it('allows one writer per run, and keeps it from being deleted', async () => {
    const writer = await store.openRun(key, fixtureHeader(10, 4));
    await expect(store.openRun(key, fixtureHeader(10, 4))).rejects.toThrow('already open');
    await expect(store.deleteRun(key)).rejects.toThrow('open for writing');
    await writer.close();
    const second = await store.openRun(key, fixtureHeader(10, 4));
    await second.close();
  });

  it('refuses to reopen a complete run with another header until it is deleted', async () => {
    const writer = await store.openRun(key, fixtureHeader(10, 4));
    await commitFixture(writer, 10, 10);
    await writer.finish();
    await expect(store.openRun(key, fixtureHeader(10, 8))).rejects.toThrow(RunConflictError);
    await store.deleteRun(key);
    expect(await store.getRun(key)).toBeUndefined();
    const fresh = await store.openRun(key, fixtureHeader(10, 8));
    expect([fresh.committedPatches, fresh.complete]).toEqual([0, false]);
    await fresh.close();
  });

  it('finishes an empty grid, and one where every patch was skipped, with a capped skipped list', async () => {
    const empty = await store.openRun(key, fixtureHeader(0, 4));
    expect((await empty.finish()).files['embeddings.npy'].shape).toEqual([0, 4]);
    const allSkipped: RunKey = { ...key, runId: 'all-skipped' };
    const writer = await store.openRun(allSkipped, fixtureHeader(1500, 4));
    const skipped = Array.from({ length: 1500 }, (_, gridIndex) => ({ gridIndex, reason: `blank ${'x'.repeat(300)}` }));
    await writer.commitBatch({ gridEnd: 1500, embeddings: new Float32Array(0), coordsPx: new Int32Array(0), skipped });
    const manifest = await writer.finish();
    expect([manifest.rows, manifest.skippedCount, manifest.skipped.length, manifest.skipped[999]?.gridIndex]).toEqual([0, 1500, 1000, 999]);
    expect(manifest.skipped[0]?.reason).toHaveLength(200);
    expect(await store.readEmbeddings(allSkipped)).toMatchObject({ rows: 0, embeddings: new Float32Array(0) });
  });

  it('keeps the store fields of the manifest out of meta', async () => {
    const writer = await store.openRun(key, fixtureHeader(0, 4));
    await expect(writer.finish({ rows: 5, files: {} })).rejects.toThrow('meta may not set rows, files');
    expect((await writer.finish({ note: 'ok' })).note).toBe('ok');
  });
});

describe('reading and keys', () => {
  it('serves only the allowed files of complete runs', async () => {
    const writer = await store.openRun(key, fixtureHeader(20, 4));
    await commitFixture(writer, 20, 20);
    expect(await store.resolveFile(key, 'embeddings.npy')).toBeUndefined();
    expect(await store.openFile(key, 'coords.npy')).toBeUndefined();
    expect(await store.readEmbeddings(key)).toBeUndefined();
    const manifest = await writer.finish();
    expect(await store.resolveFile(key, 'embeddings.npy')).toBe(join(runDir(), 'embeddings.npy'));
    for (const name of ['../../x', 'progress.json', 'embeddings.f32.part', '']) {
      await expect(store.resolveFile(key, name)).rejects.toThrow(BadRequestError);
    }
    const file = await store.openFile(key, 'coords.npy');
    const bytes = await readFile(join(runDir(), 'coords.npy'));
    expect(file).toMatchObject({ name: 'coords.npy', bytes: bytes.length, sha256: manifest.files['coords.npy'].sha256 });
    expect(sha256(await buffer(file!.stream()))).toBe(sha256(bytes));
    const manifestFile = await store.openFile(key, 'manifest.json');
    expect(JSON.parse(await text(manifestFile!.stream()))).toEqual(manifest);
  });

  it('rejects keys that could leave the store', async () => {
    const bad: Array<[Partial<RunKey>, string]> = [
      [{ studyUid: '..' }, 'INVALID_UID'],
      [{ studyUid: '1.2/../3' }, 'INVALID_UID'],
      [{ seriesUid: '1..2' }, 'INVALID_UID'],
      [{ seriesUid: '1'.repeat(65) }, 'INVALID_UID'],
      [{ modelId: '../x' }, 'INVALID_PARAMETER'],
      [{ modelId: 'Upper' }, 'INVALID_PARAMETER'],
      [{ runId: '..' }, 'INVALID_PARAMETER'],
      [{ runId: '.hidden' }, 'INVALID_PARAMETER'],
      [{ runId: 'a/b' }, 'INVALID_PARAMETER'],
      [{ runId: 'a\\b' }, 'INVALID_PARAMETER'],
      [{ runId: '' }, 'INVALID_PARAMETER'],
    ];
    for (const [change, code] of bad) {
      const badKey = { ...key, ...change };
      await expect(store.openRun(badKey, fixtureHeader(1, 4)), JSON.stringify(change)).rejects.toMatchObject({ code, status: 400 });
      await expect(store.getRun(badKey)).rejects.toMatchObject({ code });
      await expect(store.deleteRun(badKey)).rejects.toMatchObject({ code });
    }
    await expect(store.listRuns('1.2', '..')).rejects.toMatchObject({ code: 'INVALID_UID' });
    await expect(store.listRuns('1.2', '3', '../..')).rejects.toMatchObject({ code: 'INVALID_PARAMETER' });
    expect(await readdir(root)).toEqual([]);
  });

  it('lists the runs of a series by model, ignoring strays', async () => {
    const other: RunKey = { ...key, modelId: 'another', runId: 'mpp1-s224' };
    const done = await store.openRun(other, fixtureHeader(5, 4));
    await commitFixture(done, 5, 5);
    await done.finish();
    const running = await store.openRun(key, fixtureHeader(50, 4));
    await commitFixture(running, 10, 10);
    const fresh = await store.openRun({ ...key, runId: 'nothing-yet' }, fixtureHeader(50, 4));
    await mkdir(join(root, key.studyUid, key.seriesUid, 'Not-A-Model'));
    await writeFile(join(root, key.studyUid, key.seriesUid, key.modelId, 'stray.txt'), 'x');
    const runs = await store.listRuns(key.studyUid, key.seriesUid);
    expect(runs.map((r) => [r.key.modelId, r.key.runId, r.status])).toEqual([
      ['another', 'mpp1-s224', 'complete'],
      ['fixture-model', 'mpp0.5-s224-t0.25', 'in-progress'],
    ]);
    expect((await store.listRuns(key.studyUid, key.seriesUid, 'another')).map((r) => r.status)).toEqual(['complete']);
    expect(await store.listRuns(key.studyUid, '9.9')).toEqual([]);
    await running.close();
    await fresh.close();
  });
});

describe('cost', () => {
  it('measures commitBatch of 32 x 384 floats, fsyncs included (printed, not asserted)', async () => {
    const dim = 384;
    const batches = 200;
    const writer = await store.openRun(key, { dim, totalPatches: batches * 32, params: {} });
    const embeddings = Float32Array.from({ length: 32 * dim }, (_, i) => i);
    const coordsPx = new Int32Array(64);
    const times: number[] = [];
    for (let b = 1; b <= batches; b++) {
      const start = process.hrtime.bigint();
      await writer.commitBatch({ gridEnd: b * 32, embeddings, coordsPx, skipped: [] });
      times.push(Number(process.hrtime.bigint() - start) / 1e6);
    }
    await writer.close();
    times.sort((a, b) => a - b);
    const mean = times.reduce((a, b) => a + b, 0) / times.length;
    const at = (q: number) => times[Math.min(times.length - 1, Math.floor(q * times.length))]!.toFixed(2);
    console.log(`commitBatch 32 x ${dim} float32 (${(32 * dim * 4) / 1024} KiB): mean ${mean.toFixed(2)} ms, median ${at(0.5)} ms, p95 ${at(0.95)} ms, max ${at(1)} ms over ${batches} batches in ${tmpdir()}`);
    expect(times).toHaveLength(batches);
  });
});
