/**
 * The embedding store on a local (or mounted) disk: one directory per run,
 * <root>/<studyUid>/<seriesUid>/<modelId>/<runId>/, holding embeddings.npy, coords.npy and manifest.json
 * once complete (see run-writer.ts for the files of a run in progress). Readers trust only manifest.json:
 * without it, .npy files in a run directory are leftovers of an unfinished finish().
 *
 * One process owns a root: writers are guarded against each other within the process, not across
 * processes (a second gateway on the same root needs a lock this store does not take).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { BadRequestError } from '../../errors.js';
import { readJsonIfExists } from './files.js';
import { checkModelId, checkRunId, checkRunKey, checkUid, runDirOf } from './keys.js';
import { readNpy } from './npy.js';
import { isRunOpen, MANIFEST, openRunWriter, PROGRESS } from './run-writer.js';
import { parseManifest, parseProgress } from './schema.js';
import { RUN_FILES, StoreCorruptError, type EmbeddingStore, type RunEmbeddings, type RunFileName, type RunInfo, type RunKey, type RunManifest, type StoredFile } from './types.js';

export interface LocalEmbeddingStore extends EmbeddingStore {
  readonly rootDir: string;
  /**
   * Absolute path of one file of a complete run, for routes that serve files from disk; undefined when
   * the run is not complete. Only the names in RUN_FILES are served, whatever the caller passes.
   */
  resolveFile(key: RunKey, name: string): Promise<string | undefined>;
}

function checkFileName(name: string): RunFileName {
  if (!(RUN_FILES as readonly string[]).includes(name)) {
    throw new BadRequestError(`File must be one of ${RUN_FILES.join(', ')}`, 'INVALID_PARAMETER');
  }
  return name as RunFileName;
}

/** Subdirectory names that are valid for `check`; anything else in the tree (stray files, temp names) is ignored. */
async function childDirs(dir: string, check: (name: string) => unknown): Promise<string[]> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  return entries
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .filter((name) => {
      try {
        check(name);
        return true;
      } catch {
        return false;
      }
    })
    .sort();
}

export function createLocalStore(rootDir: string): LocalEmbeddingStore {
  const root = path.resolve(rootDir);

  async function getRun(key: RunKey): Promise<RunManifest | undefined> {
    const file = path.join(runDirOf(root, key), MANIFEST);
    const json = await readJsonIfExists(file);
    return json === undefined ? undefined : parseManifest(json, file);
  }

  async function resolveFile(key: RunKey, name: string): Promise<string | undefined> {
    const file = checkFileName(name);
    if (!(await getRun(key))) return undefined;
    return path.join(runDirOf(root, key), file);
  }

  return {
    rootDir: root,

    openRun: async (key, header) => openRunWriter(runDirOf(root, key), checkRunKey(key), header),

    getRun,

    resolveFile,

    async listRuns(studyUid, seriesUid, modelId) {
      const seriesDir = path.join(root, checkUid(studyUid, 'studyUid'), checkUid(seriesUid, 'seriesUid'));
      const models = modelId === undefined ? await childDirs(seriesDir, checkModelId) : [checkModelId(modelId)];
      const runs: RunInfo[] = [];
      for (const model of models) {
        for (const runId of await childDirs(path.join(seriesDir, model), checkRunId)) {
          const key: RunKey = { studyUid, seriesUid, modelId: model, runId };
          const dir = runDirOf(root, key);
          const manifest = await readJsonIfExists(path.join(dir, MANIFEST));
          if (manifest !== undefined) {
            runs.push({ key, status: 'complete', manifest: parseManifest(manifest, path.join(dir, MANIFEST)) });
            continue;
          }
          const progress = await readJsonIfExists(path.join(dir, PROGRESS)).catch(() => undefined);
          if (progress === undefined) continue; // opened, nothing committed yet
          try {
            const p = parseProgress(progress, path.join(dir, PROGRESS));
            runs.push({ key, status: 'in-progress', progress: { header: p.header, gridDone: p.gridDone, rows: p.rows, skippedCount: p.skippedCount, createdAt: p.createdAt, updatedAt: p.updatedAt } });
          } catch {
            // A damaged unfinished run is discarded by the next openRun; it is nothing to list.
          }
        }
      }
      return runs;
    },

    async listSeries() {
      const series: Array<{ studyUid: string; seriesUid: string }> = [];
      for (const studyUid of await childDirs(root, (name) => checkUid(name, 'studyUid'))) {
        for (const seriesUid of await childDirs(path.join(root, studyUid), (name) => checkUid(name, 'seriesUid'))) series.push({ studyUid, seriesUid });
      }
      return series;
    },

    async openFile(key, name) {
      const file = checkFileName(name);
      const manifest = await getRun(key);
      if (!manifest) return undefined;
      const full = path.join(runDirOf(root, key), file);
      if (file === 'manifest.json') {
        const bytes = await readFile(full);
        return { name: file, bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex'), stream: () => createReadStream(full) };
      }
      const info = manifest.files[file];
      return { name: file, bytes: info.bytes, sha256: info.sha256, stream: () => createReadStream(full) } satisfies StoredFile;
    },

    async readEmbeddings(key): Promise<RunEmbeddings | undefined> {
      const manifest = await getRun(key);
      if (!manifest) return undefined;
      const dir = runDirOf(root, key);
      const [embeddings, coords] = await Promise.all([readNpy(path.join(dir, 'embeddings.npy')), readNpy(path.join(dir, 'coords.npy'))]);
      const { rows, dim } = manifest;
      if (embeddings.dtype !== '<f4' || embeddings.shape.join() !== `${rows},${dim}` || coords.dtype !== '<i4' || coords.shape.join() !== `${rows},2`) {
        throw new StoreCorruptError(`${dir}: the .npy files do not match the manifest's ${rows} x ${dim}`);
      }
      return { embeddings: embeddings.data, coords: coords.data, dim, rows, manifest };
    },

    async deleteRun(key) {
      const dir = runDirOf(root, key);
      if (isRunOpen(dir)) throw new Error(`Run ${key.modelId}/${key.runId} is open for writing; close it first`);
      // The manifest goes first, so a kill midway leaves an unfinished run (discarded on the next open), never a damaged complete one.
      await rm(path.join(dir, MANIFEST), { force: true });
      await rm(dir, { recursive: true, force: true });
    },
  };
}
