/**
 * Writing one run in its directory. While it runs, embeddings and coordinates are appended to
 * embeddings.f32.part and coords.i32.part (raw little-endian rows) and progress.json records how far the
 * run got. A batch is committed when progress.json has been replaced (temp file, fsync, rename, fsync
 * of the directory): bytes in the .part files beyond what it counts are a batch in flight that a kill
 * cut short, and are cut off on resume. finish() turns the parts into .npy files and writes
 * manifest.json last: its presence is what makes a run complete.
 *
 * Data goes in at explicit offsets (rows * row bytes), not in append mode, so a resumed or retried
 * batch lands exactly where the committed data ends whatever a torn write left behind.
 */
import { open, rename, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { NpyWriter, writeFully, type NpyDtype } from './npy.js';
import { canonicalJson, mkdirDurable, readJsonIfExists, removeFiles, syncDir, writeFileAtomic } from './files.js';
import { checkHeader, headerOfManifest, MANIFEST_KEYS, parseManifest, parseProgress, SKIPPED_LIST_MAX, type Progress } from './schema.js';
import { RunConflictError, StoreCorruptError, type CommitBatch, type RunHeader, type RunKey, type RunManifest, type RunWriter, type SkippedPatch, type StoredFileInfo } from './types.js';

export const EMBEDDINGS_PART = 'embeddings.f32.part';
export const COORDS_PART = 'coords.i32.part';
export const PROGRESS = 'progress.json';
export const MANIFEST = 'manifest.json';
/** Everything an unfinished run may have in its directory besides manifest.json. */
const WORK_FILES = [PROGRESS, `${PROGRESS}.tmp`, EMBEDDINGS_PART, COORDS_PART, 'embeddings.npy.tmp', 'coords.npy.tmp', `${MANIFEST}.tmp`];
const REASON_MAX = 200;
const COPY_CHUNK = 8 << 20;

/** Run directories with a writer open in this process: two writers on one run would interleave rows. */
const openDirs = new Set<string>();
export function isRunOpen(dir: string): boolean {
  return openDirs.has(dir);
}

function nameOf(key: RunKey): string {
  return `${key.modelId}/${key.runId} of series ${key.seriesUid}`;
}

interface Handles {
  embeddings: FileHandle;
  coords: FileHandle;
  /** Kept open to fsync the directory after each rename; absent on Windows, which cannot open directories. */
  dir: FileHandle | undefined;
}

type State = Pick<Progress, 'createdAt' | 'gridDone' | 'rows' | 'skippedCount' | 'skipped'>;

/** Opens (creating) a part file and cuts it to `bytes`; undefined when it holds fewer than that. */
async function openPart(file: string, bytes: number): Promise<FileHandle | undefined> {
  const handle = await open(file, bytes === 0 ? 'w+' : 'r+').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
  if (!handle) return undefined;
  const size = (await handle.stat()).size;
  if (size < bytes) {
    await handle.close();
    return undefined;
  }
  if (size > bytes) await handle.truncate(bytes);
  return handle;
}

export async function openRunWriter(dir: string, key: RunKey, rawHeader: RunHeader): Promise<RunWriter> {
  const header = checkHeader(rawHeader);
  if (openDirs.has(dir)) throw new Error(`Run ${nameOf(key)} is already open for writing in this process`);
  openDirs.add(dir);
  let handles: Partial<Handles> = {};
  try {
    await mkdirDurable(dir);
    const manifestJson = await readJsonIfExists(path.join(dir, MANIFEST));
    if (manifestJson !== undefined) {
      const manifest = parseManifest(manifestJson, path.join(dir, MANIFEST));
      if (canonicalJson(headerOfManifest(manifest)) !== canonicalJson(header)) {
        throw new RunConflictError(`Run ${nameOf(key)} is complete with another header; delete it to compute it again`);
      }
      // Leftovers of a finish killed between writing the manifest and cleaning up.
      await removeFiles(dir, WORK_FILES);
      openDirs.delete(dir); // nothing left to write, nothing to guard
      return new LocalRunWriter(dir, key, header, undefined, { createdAt: manifest.createdAt, gridDone: manifest.totalPatches, rows: manifest.rows, skippedCount: manifest.skippedCount, skipped: manifest.skipped }, manifest, undefined);
    }

    let discarded: string | undefined;
    let progress: Progress | undefined;
    try {
      const json = await readJsonIfExists(path.join(dir, PROGRESS));
      if (json !== undefined) progress = parseProgress(json, path.join(dir, PROGRESS));
    } catch (error) {
      if (!(error instanceof StoreCorruptError)) throw error;
      discarded = `unreadable progress (${error.message})`;
    }
    if (progress && canonicalJson(progress.header) !== canonicalJson(header)) {
      discarded = `it had another header (${canonicalJson(progress.header).slice(0, 300)})`;
      progress = undefined;
    }
    if (progress) {
      handles.embeddings = await openPart(path.join(dir, EMBEDDINGS_PART), progress.rows * header.dim * 4);
      handles.coords = await openPart(path.join(dir, COORDS_PART), progress.rows * 8);
      if (!handles.embeddings || !handles.coords) {
        discarded = `its part files hold fewer than the ${progress.rows} rows progress.json counts`;
        progress = undefined;
        await handles.embeddings?.close();
        await handles.coords?.close();
        handles = {};
      }
    }
    if (!progress) {
      // progress.json goes first: a kill in between leaves a directory that reads as a new run. Old .npy
      // files are not served without a manifest, but would confuse a person looking at the directory.
      await removeFiles(dir, [PROGRESS]);
      await removeFiles(dir, [...WORK_FILES, 'embeddings.npy', 'coords.npy']);
      handles.embeddings = await open(path.join(dir, EMBEDDINGS_PART), 'w+');
      handles.coords = await open(path.join(dir, COORDS_PART), 'w+');
    }
    if (process.platform !== 'win32') handles.dir = await open(dir, 'r');
    const state: State = progress ?? { createdAt: new Date().toISOString(), gridDone: 0, rows: 0, skippedCount: 0, skipped: [] };
    return new LocalRunWriter(dir, key, header, handles as Handles, state, undefined, discarded);
  } catch (error) {
    await Promise.all(Object.values(handles).map((h) => h?.close().catch(() => undefined)));
    openDirs.delete(dir);
    throw error;
  }
}

/** Streams `dataBytes` of a part file behind an .npy header into `name`.tmp, then renames it to `name`. */
async function publishNpy(dir: string, name: string, dtype: NpyDtype, shape: number[], part: FileHandle, dataBytes: number): Promise<StoredFileInfo> {
  const final = path.join(dir, name);
  const writer = await NpyWriter.create(`${final}.tmp`, dtype, shape);
  try {
    const buffer = Buffer.alloc(Math.min(COPY_CHUNK, Math.max(dataBytes, 1)));
    for (let done = 0; done < dataBytes; ) {
      const { bytesRead } = await part.read(buffer, 0, Math.min(buffer.length, dataBytes - done), done);
      if (bytesRead === 0) throw new StoreCorruptError(`${name}: the part file ended after ${done} of ${dataBytes} bytes`);
      await writer.write(buffer.subarray(0, bytesRead));
      done += bytesRead;
    }
    const { bytes, sha256 } = await writer.finish();
    await rename(`${final}.tmp`, final);
    return { bytes, sha256, dtype, shape };
  } catch (error) {
    await writer.abort();
    throw error;
  }
}

class LocalRunWriter implements RunWriter {
  private busy = false;
  private idle: Promise<void> = Promise.resolve();
  private release: () => void = () => undefined;
  private closing: Promise<void> | undefined;
  private failed: unknown;

  constructor(
    private readonly dir: string,
    readonly key: RunKey,
    readonly header: RunHeader,
    private handles: Handles | undefined,
    private state: State,
    private finished: RunManifest | undefined,
    readonly discarded: string | undefined,
  ) {
    if (!handles) this.closing = Promise.resolve();
  }

  get committedPatches(): number {
    return this.state.gridDone;
  }
  get rows(): number {
    return this.state.rows;
  }
  get skippedCount(): number {
    return this.state.skippedCount;
  }
  get complete(): boolean {
    return this.finished !== undefined;
  }
  get manifest(): RunManifest | undefined {
    return this.finished;
  }

  /** Refuses overlapping, late and post-failure calls; marks the writer busy until leave(). */
  private enter(what: string): Handles {
    if (this.finished) throw new Error(`${what}: run ${nameOf(this.key)} is already complete`);
    if (this.closing || !this.handles) throw new Error(`${what}: the writer of run ${nameOf(this.key)} is closed`);
    if (this.busy) throw new Error(`${what} while another call is in flight: commitBatch and finish calls must be sequential`);
    if (this.failed !== undefined) throw new Error(`${what}: an earlier write failed; close and reopen the run to resume`, { cause: this.failed });
    this.busy = true;
    this.idle = new Promise((resolve) => (this.release = resolve));
    return this.handles;
  }

  private leave(): void {
    this.busy = false;
    this.release();
  }

  /** After a failed write the files may be ahead of this.state: only a reopen (which reads the disk) is safe. */
  private async io<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      this.failed = error;
      throw error;
    }
  }

  async commitBatch(batch: CommitBatch): Promise<void> {
    const handles = this.enter('commitBatch');
    try {
      const { dim, totalPatches } = this.header;
      const { gridDone, rows } = this.state;
      const { gridEnd, embeddings, coordsPx, skipped } = batch;
      if (!Number.isInteger(gridEnd) || gridEnd <= gridDone || gridEnd > totalPatches) {
        throw new RangeError(`commitBatch: gridEnd ${gridEnd} must be a whole number in (${gridDone}, ${totalPatches}]`);
      }
      if (!(embeddings instanceof Float32Array) || embeddings.length % dim !== 0) throw new TypeError(`commitBatch: embeddings must be a Float32Array of k * ${dim} floats`);
      const k = embeddings.length / dim;
      if (!(coordsPx instanceof Int32Array) || coordsPx.length !== k * 2) throw new TypeError(`commitBatch: coordsPx must be an Int32Array of ${k} * 2 ints`);
      if (k + skipped.length !== gridEnd - gridDone) {
        throw new RangeError(`commitBatch: ${k} embedded + ${skipped.length} skipped must cover grid indexes ${gridDone}..${gridEnd - 1}`);
      }
      let previous = gridDone - 1;
      for (const s of skipped) {
        if (!Number.isInteger(s.gridIndex) || s.gridIndex <= previous || s.gridIndex >= gridEnd) {
          throw new RangeError(`commitBatch: skipped grid indexes must rise within ${gridDone}..${gridEnd - 1} (got ${s.gridIndex})`);
        }
        previous = s.gridIndex;
      }
      const listed: SkippedPatch[] = skipped
        .slice(0, Math.max(0, SKIPPED_LIST_MAX - this.state.skipped.length))
        .map((s) => ({ gridIndex: s.gridIndex, reason: String(s.reason).slice(0, REASON_MAX) }));
      const next: State = { ...this.state, gridDone: gridEnd, rows: rows + k, skippedCount: this.state.skippedCount + skipped.length, skipped: [...this.state.skipped, ...listed] };

      await this.io(async () => {
        await Promise.all([
          writeFully(handles.embeddings, new Uint8Array(embeddings.buffer, embeddings.byteOffset, embeddings.byteLength), rows * dim * 4),
          writeFully(handles.coords, new Uint8Array(coordsPx.buffer, coordsPx.byteOffset, coordsPx.byteLength), rows * 8),
        ]);
        await Promise.all([handles.embeddings.datasync(), handles.coords.datasync()]);
        const progress: Progress = { formatVersion: 1, header: this.header, updatedAt: new Date().toISOString(), ...next };
        await writeFileAtomic(path.join(this.dir, PROGRESS), JSON.stringify(progress), handles.dir); // the commit point
      });
      this.state = next;
    } finally {
      this.leave();
    }
  }

  async finish(meta: Record<string, unknown> = {}): Promise<RunManifest> {
    const handles = this.enter('finish');
    try {
      const { dim, totalPatches } = this.header;
      const { gridDone, rows } = this.state;
      if (gridDone !== totalPatches) throw new RangeError(`finish: ${gridDone} of ${totalPatches} grid indexes committed`);
      const clash = Object.keys(meta).filter((k) => MANIFEST_KEYS.has(k));
      if (clash.length > 0) throw new TypeError(`finish: meta may not set ${clash.join(', ')}`);

      const manifest = await this.io(async () => {
        const embeddingsInfo = await publishNpy(this.dir, 'embeddings.npy', '<f4', [rows, dim], handles.embeddings, rows * dim * 4);
        const coordsInfo = await publishNpy(this.dir, 'coords.npy', '<i4', [rows, 2], handles.coords, rows * 8);
        await syncDir(handles.dir ?? this.dir);
        const draft: RunManifest = {
          ...meta,
          formatVersion: 1,
          ...this.key,
          dim,
          rows,
          totalPatches,
          params: this.header.params,
          skippedCount: this.state.skippedCount,
          skipped: this.state.skipped,
          files: { 'embeddings.npy': embeddingsInfo, 'coords.npy': coordsInfo },
          createdAt: this.state.createdAt,
          finishedAt: new Date().toISOString(),
        };
        const text = `${JSON.stringify(draft, null, 2)}\n`;
        await writeFileAtomic(path.join(this.dir, MANIFEST), text, handles.dir); // the run is complete from here
        return parseManifest(JSON.parse(text), MANIFEST);
      });
      this.finished = manifest;
      // Cleanup may fail (or be killed) harmlessly: the next open of a complete run removes leftovers.
      this.closing = this.closeHandles().then(() => removeFiles(this.dir, WORK_FILES)).catch(() => undefined);
      await this.closing;
      return manifest;
    } finally {
      this.leave();
    }
  }

  private async closeHandles(): Promise<void> {
    const handles = this.handles;
    this.handles = undefined;
    openDirs.delete(this.dir);
    if (handles) await Promise.all([handles.embeddings, handles.coords, handles.dir].map((h) => h?.close().catch(() => undefined)));
  }

  close(): Promise<void> {
    this.closing ??= this.idle.then(() => this.closeHandles());
    return this.closing;
  }
}
