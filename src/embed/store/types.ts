/**
 * The embedding store's contract: where a job's embeddings go while it runs and where analysis and
 * download routes find them afterwards. The local-disk store implements it; an object-store or database
 * store can later implement the same interface, so nothing above this seam may assume paths.
 */
import type { Readable } from 'node:stream';

/** Identifies one run: one model over one slide with one grid. Every part is checked against a safe charset. */
export interface RunKey {
  studyUid: string;
  seriesUid: string;
  /** A model manifest id: [a-z0-9-]. */
  modelId: string;
  /** Built by the caller from the grid parameters, e.g. 'mpp0.5-s224-t0.25': [A-Za-z0-9._-]. */
  runId: string;
}

/** What a run is; a resumed run must have the same header (compared as canonical JSON). */
export interface RunHeader {
  /** Embedding length. */
  dim: number;
  /** Grid size: patches have grid indexes 0..totalPatches-1. */
  totalPatches: number;
  /** Everything else that decides the result (grid, preprocessing, model file hash...): plain JSON. */
  params: Record<string, unknown>;
}

export interface SkippedPatch {
  gridIndex: number;
  reason: string;
}

/**
 * One step of a run: grid indexes [previous gridEnd, gridEnd), each either embedded (in grid order, one
 * row of `embeddings` and of `coordsPx` each) or listed in `skipped`.
 */
export interface CommitBatch {
  gridEnd: number;
  /** k * dim floats, row after row. */
  embeddings: Float32Array;
  /** k * 2 ints: level-0 pixel x, y of each embedded patch's top-left corner. */
  coordsPx: Int32Array;
  skipped: SkippedPatch[];
}

export interface StoredFileInfo {
  bytes: number;
  sha256: string;
  dtype: '<f4' | '<i4';
  shape: number[];
}

export const RUN_FILES = ['embeddings.npy', 'coords.npy', 'manifest.json'] as const;
export type RunFileName = (typeof RUN_FILES)[number];

/**
 * manifest.json of a complete run: the caller's meta (model name, backend, versions, timings...) with
 * the store's own fields, which meta may not override.
 */
export interface RunManifest {
  [meta: string]: unknown;
  formatVersion: 1;
  studyUid: string;
  seriesUid: string;
  modelId: string;
  runId: string;
  dim: number;
  rows: number;
  totalPatches: number;
  params: Record<string, unknown>;
  skippedCount: number;
  /** The first SKIPPED_LIST_MAX skipped patches; skippedCount says how many there were. */
  skipped: SkippedPatch[];
  files: { 'embeddings.npy': StoredFileInfo; 'coords.npy': StoredFileInfo };
  createdAt: string;
  finishedAt: string;
}

/** A run that has committed batches but is not finished, as listRuns reports it. */
export interface RunProgress {
  header: RunHeader;
  gridDone: number;
  rows: number;
  skippedCount: number;
  createdAt: string;
  updatedAt: string;
}

export type RunInfo = { key: RunKey; status: 'complete'; manifest: RunManifest } | { key: RunKey; status: 'in-progress'; progress: RunProgress };

export interface RunEmbeddings {
  /** rows * dim floats. */
  embeddings: Float32Array;
  /** rows * 2 ints: x, y in level-0 pixels. */
  coords: Int32Array;
  dim: number;
  rows: number;
  manifest: RunManifest;
}

/** A stored file for a download route: size and hash (an ETag) first, the bytes only when asked for. */
export interface StoredFile {
  name: RunFileName;
  bytes: number;
  /** SHA-256 of the content, hex; for manifest.json, of its bytes as stored. */
  sha256: string;
  /** A fresh stream of the content each call. */
  stream(): Readable;
}

/**
 * Writes one run. Calls must be sequential: await each commitBatch before the next, and finish after
 * the last; an overlapping call is rejected. A kill at any point loses at most the batch in flight: the
 * next openRun resumes after the last batch whose commitBatch resolved (or the one in flight, if the
 * kill came after its commit point).
 */
export interface RunWriter {
  readonly key: RunKey;
  readonly header: RunHeader;
  /** Grid indexes done (embedded or skipped): 0 for a new run, where to continue for a resumed one. */
  readonly committedPatches: number;
  /** Embeddings stored so far. */
  readonly rows: number;
  /** Grid indexes skipped so far: committedPatches - rows. */
  readonly skippedCount: number;
  /** The run was already finished when opened (or finish() has returned); commitBatch is then refused. */
  readonly complete: boolean;
  readonly manifest: RunManifest | undefined;
  /** Why an earlier unfinished run under this key was thrown away on open, for the caller to log. */
  readonly discarded: string | undefined;
  commitBatch(batch: CommitBatch): Promise<void>;
  /** Once committedPatches === totalPatches: publishes the .npy files and the manifest, and returns it. */
  finish(meta?: Record<string, unknown>): Promise<RunManifest>;
  /** Releases the files; what was committed stays for a later resume. Idempotent; waits for a call in flight. */
  close(): Promise<void>;
}

export interface EmbeddingStore {
  /**
   * Opens a run for writing: new, resumed (same header) or already complete. An unfinished run with
   * another header is discarded (writer.discarded says why); a complete one with another header is a
   * RunConflictError (delete it first). One writer per run at a time.
   */
  openRun(key: RunKey, header: RunHeader): Promise<RunWriter>;
  /** The manifest of a complete run, or undefined. */
  getRun(key: RunKey): Promise<RunManifest | undefined>;
  /** Complete and in-progress runs of a series, by model then run id. */
  listRuns(studyUid: string, seriesUid: string, modelId?: string): Promise<RunInfo[]>;
  /** Every series that has a run directory (complete or not), for searches across slides. */
  listSeries(): Promise<Array<{ studyUid: string; seriesUid: string }>>;
  /** One file of a complete run, or undefined when the run is not complete. */
  openFile(key: RunKey, name: RunFileName): Promise<StoredFile | undefined>;
  /** Both arrays of a complete run, or undefined. */
  readEmbeddings(key: RunKey): Promise<RunEmbeddings | undefined>;
  /** Removes a run, complete or not. Refused while a writer has it open. */
  deleteRun(key: RunKey): Promise<void>;
}

/** openRun found a complete run under the key with a different header. */
export class RunConflictError extends Error {}

/** A store file that our own writes cannot have produced (edited, or damaged on disk). */
export class StoreCorruptError extends Error {}
