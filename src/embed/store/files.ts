/**
 * The few durable-write primitives the store is built on. "Durable" means it survives a power cut, not
 * only a kill -9 (which loses nothing the kernel already has): data is fsynced before the rename that
 * publishes it, and the directory is fsynced after, so the new name itself is on disk.
 */
import { mkdir, open, readFile, rename, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { StoreCorruptError } from './types.js';

/** fsync of a directory: Linux and macOS allow it on a read-only handle; Windows cannot open directories. */
export async function syncDir(dir: string | FileHandle): Promise<void> {
  if (process.platform === 'win32') return;
  if (typeof dir !== 'string') return dir.sync();
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** mkdir -p, then fsync the parent of every directory it created so the path survives a power cut. */
export async function mkdirDurable(dir: string): Promise<void> {
  const first = await mkdir(dir, { recursive: true });
  if (first === undefined) return;
  for (let d = dir; ; d = path.dirname(d)) {
    await syncDir(path.dirname(d));
    if (d === first || path.dirname(d) === d) break;
  }
}

/**
 * Replaces `file` atomically: readers (and a restart after a crash) see the old content or the new one,
 * never a mix. `dirHandle` saves an open per call when the caller keeps the directory open.
 */
export async function writeFileAtomic(file: string, content: string | Uint8Array, dirHandle?: FileHandle): Promise<void> {
  const temp = `${file}.tmp`;
  const handle = await open(temp, 'w');
  try {
    await handle.writeFile(content);
    await handle.datasync();
  } finally {
    await handle.close();
  }
  await rename(temp, file);
  await syncDir(dirHandle ?? path.dirname(file));
}

function isMissing(error: unknown): boolean {
  return (error as NodeJS.ErrnoException)?.code === 'ENOENT';
}

/** The parsed JSON file, undefined when absent; unparsable JSON is a StoreCorruptError. */
export async function readJsonIfExists(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw error;
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new StoreCorruptError(`${file}: not JSON (${(error as Error).message})`);
  }
}

export async function removeFiles(dir: string, names: readonly string[]): Promise<void> {
  await Promise.all(names.map((name) => rm(path.join(dir, name), { force: true })));
}

/** JSON with object keys sorted at every level: equal values give equal strings, whatever the key order. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    return Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  });
}
