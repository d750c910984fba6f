/**
 * A check of a whole store on disk, for an operator after a crash or a restore, and for the crash tests:
 * every JSON file parses and validates, an unfinished run's part files hold at least the rows its
 * progress.json commits, and a complete run's .npy files match its manifest (size, dtype, shape,
 * SHA-256). Read-only. Meant for a store no process is writing: a run caught mid-commit can show a
 * moment between the part files and progress.json that no crash would leave.
 *
 * What the design ignores is a note, not a problem: a temp file (`<name>.tmp`, never read and always
 * truncated before it is written again), rows past the commit point (cut off at resume), the work files
 * of a complete run (removed at its next open) and .npy files published by a finish cut short before
 * its manifest (not served without one; the resumed finish writes them again).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { readJsonIfExists } from './files.js';
import { checkModelId, checkRunId, checkUid } from './keys.js';
import { parseNpyHeader } from './npy.js';
import { COORDS_PART, EMBEDDINGS_PART, MANIFEST, PROGRESS } from './run-writer.js';
import { parseManifest, parseProgress } from './schema.js';
import type { RunManifest, StoredFileInfo } from './types.js';

export interface StoreCheck {
  runs: { complete: number; unfinished: number };
  /** Broken invariants, one sentence each: what a crash must never leave. */
  problems: string[];
  /** Leftovers the design ignores, for a person's information. */
  notes: string[];
}

export interface VerifyOptions {
  /** Files of the store root besides the run tree, each with its validator (which throws). */
  rootFiles?: Record<string, (json: unknown, file: string) => void>;
}

const NPY_FILES = ['embeddings.npy', 'coords.npy'] as const;
const RUN_DIR_FILES = new Set<string>([MANIFEST, PROGRESS, EMBEDDINGS_PART, COORDS_PART, ...NPY_FILES]);
const TEMP_OF = new Set<string>([MANIFEST, PROGRESS, ...NPY_FILES]);

async function entriesOf(dir: string) {
  return (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1));
}

const isValid = (check: (name: string) => unknown) => (name: string) => {
  try {
    check(name);
    return true;
  } catch {
    return false;
  }
};

async function sizeOf(file: string): Promise<number | undefined> {
  return stat(file).then((s) => s.size, () => undefined);
}

async function sha256Of(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Problems of one published .npy file against its manifest entry and the run's shape. */
async function checkNpy(file: string, info: StoredFileInfo, shape: number[]): Promise<string[]> {
  const size = await sizeOf(file);
  if (size === undefined) return [`${file}: missing, though the manifest lists it`];
  if (size !== info.bytes) return [`${file}: ${size} bytes, the manifest says ${info.bytes}`];
  const handle = await open(file, 'r');
  let head: Buffer;
  try {
    head = Buffer.alloc(Math.min(size, 65536));
    await handle.read(head, 0, head.length, 0);
  } finally {
    await handle.close();
  }
  const problems: string[] = [];
  try {
    const header = parseNpyHeader(head, file);
    if (header.dtype !== info.dtype || header.shape.join() !== info.shape.join() || info.shape.join() !== shape.join()) {
      problems.push(`${file}: ${header.dtype} [${header.shape.join(', ')}], the manifest says ${info.dtype} [${info.shape.join(', ')}] of [${shape.join(', ')}]`);
    }
    if (header.dataOffset + header.dataBytes !== size) problems.push(`${file}: ${size} bytes, its header needs ${header.dataOffset + header.dataBytes}`);
  } catch (error) {
    problems.push((error as Error).message);
  }
  if ((await sha256Of(file)) !== info.sha256) problems.push(`${file}: SHA-256 differs from the manifest's`);
  return problems;
}

async function checkComplete(dir: string, manifest: RunManifest, names: Set<string>, check: StoreCheck): Promise<void> {
  check.runs.complete++;
  if (manifest.rows + manifest.skippedCount !== manifest.totalPatches) {
    check.problems.push(`${dir}: manifest counts ${manifest.rows} rows and ${manifest.skippedCount} skipped of ${manifest.totalPatches} patches`);
  }
  check.problems.push(...(await checkNpy(path.join(dir, 'embeddings.npy'), manifest.files['embeddings.npy'], [manifest.rows, manifest.dim])));
  check.problems.push(...(await checkNpy(path.join(dir, 'coords.npy'), manifest.files['coords.npy'], [manifest.rows, 2])));
  const leftovers = [...names].filter((n) => n !== MANIFEST && !(NPY_FILES as readonly string[]).includes(n));
  if (leftovers.length > 0) check.notes.push(`${dir}: complete, with work files left by a finish cut short after its manifest (${leftovers.join(', ')})`);
}

async function checkUnfinished(dir: string, names: Set<string>, check: StoreCheck): Promise<void> {
  check.runs.unfinished++;
  const published = NPY_FILES.filter((n) => names.has(n));
  if (published.length > 0) check.notes.push(`${dir}: ${published.join(', ')} without a manifest: a finish cut short, not served`);
  if (!names.has(PROGRESS)) return; // opened, nothing committed: the part files hold nothing that counts
  const file = path.join(dir, PROGRESS);
  const progress = parseProgress(await readJsonIfExists(file), file);
  const { dim } = progress.header;
  for (const [part, rowBytes] of [[EMBEDDINGS_PART, dim * 4], [COORDS_PART, 8]] as const) {
    const size = (await sizeOf(path.join(dir, part))) ?? 0;
    const committed = progress.rows * rowBytes;
    if (size < committed) check.problems.push(`${dir}/${part}: ${size} bytes, fewer than the ${progress.rows} committed rows need (${committed})`);
    else if (size > committed) check.notes.push(`${dir}/${part}: ${size - committed} bytes past the commit point (a batch in flight, cut off at resume)`);
  }
}

async function checkRunDir(dir: string, check: StoreCheck): Promise<void> {
  const names = new Set<string>();
  for (const entry of await entriesOf(dir)) {
    const base = entry.name.endsWith('.tmp') ? entry.name.slice(0, -4) : undefined;
    if (entry.isFile() && RUN_DIR_FILES.has(entry.name)) names.add(entry.name);
    else if (entry.isFile() && base !== undefined && TEMP_OF.has(base)) check.notes.push(`${dir}/${entry.name}: a temp file, never read`);
    else check.problems.push(`${dir}/${entry.name}: not a file the store writes`);
  }
  try {
    const json = await readJsonIfExists(path.join(dir, MANIFEST));
    if (json !== undefined) await checkComplete(dir, parseManifest(json, path.join(dir, MANIFEST)), names, check);
    else await checkUnfinished(dir, names, check);
  } catch (error) {
    check.problems.push((error as Error).message);
  }
}

/** Checks every run under `rootDir` (the store's EMBED_DIR) and the root files named in the options. */
export async function verifyStore(rootDir: string, options: VerifyOptions = {}): Promise<StoreCheck> {
  const check: StoreCheck = { runs: { complete: 0, unfinished: 0 }, problems: [], notes: [] };
  const root = path.resolve(rootDir);
  const rootFiles = options.rootFiles ?? {};
  // Levels of the tree: study, series, model, run directories, each name checked as the store checks it.
  const levels = [isValid((n) => checkUid(n, 'studyUid')), isValid((n) => checkUid(n, 'seriesUid')), isValid(checkModelId), isValid(checkRunId)];
  async function walk(dir: string, depth: number): Promise<void> {
    if (depth === levels.length) return checkRunDir(dir, check);
    for (const entry of await entriesOf(dir)) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory() && levels[depth]!(entry.name)) {
        await walk(full, depth + 1);
      } else if (depth === 0 && entry.isFile() && rootFiles[entry.name]) {
        try {
          const json = await readJsonIfExists(full);
          rootFiles[entry.name]!(json, full);
        } catch (error) {
          check.problems.push((error as Error).message);
        }
      } else if (depth === 0 && entry.isFile() && entry.name.endsWith('.tmp') && rootFiles[entry.name.slice(0, -4)]) {
        check.notes.push(`${full}: a temp file, never read`);
      } else {
        check.problems.push(`${full}: not a file or directory the store writes`);
      }
    }
  }
  await walk(root, 0);
  return check;
}
