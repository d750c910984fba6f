/**
 * The crash scenario's view of the store: where each job's run stands on disk, the checks made after
 * every kill (the store's own verifyStore, the pending-jobs list, committed rows equal to the reference's
 * first rows), and where a kill landed, read from what it left behind.
 */
import { readFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { parsePendingJobs, pendingJobsFile, PENDING_JOBS_FILE, readPendingJobs } from '../../src/embed/jobs/checkpoint.js';
import { computeRunId } from '../../src/embed/jobs/embed-slide-job.js';
import type { EmbedJobSpec } from '../../src/embed/jobs/job-queue.js';
import { parseNpyHeader, verifyStore } from '../../src/embed/store/index.js';

/** A complete run's arrays as bytes: the .npy files whole, and their data after the header. */
export interface RunBytes {
  embeddingsNpy: Buffer;
  coordsNpy: Buffer;
  embeddingsData: Buffer;
  coordsData: Buffer;
}

/** One run on disk, as a kill left it. */
export interface RunState {
  complete: boolean;
  /** Grid indexes committed (progress.json), or the total once complete. */
  gridDone: number;
  rows: number;
  /** Bytes of the part files past the commit point: a batch in flight, cut off at resume. */
  rowsPastCommit: number;
  /** Latest modification time of a file finish() writes (an .npy or a temp file) in an unfinished run. */
  finishingMs: number | undefined;
  /** Modification time of progress.json.tmp, if one exists. */
  progressTmpMs: number | undefined;
}

export type KillPhase = 'start' | 'embedding' | 'commit' | 'finish';

export function runDir(embedDir: string, spec: EmbedJobSpec): string {
  return path.join(embedDir, spec.studyUid, spec.seriesUid, spec.model, computeRunId(spec));
}

export async function readRunBytes(dir: string): Promise<RunBytes> {
  const [embeddingsNpy, coordsNpy] = await Promise.all([readFile(path.join(dir, 'embeddings.npy')), readFile(path.join(dir, 'coords.npy'))]);
  const data = (npy: Buffer) => npy.subarray(parseNpyHeader(npy).dataOffset);
  return { embeddingsNpy, coordsNpy, embeddingsData: data(embeddingsNpy), coordsData: data(coordsNpy) };
}

async function sizeOf(file: string): Promise<number> {
  return stat(file).then((s) => s.size, () => 0);
}

async function latestMtimeMs(dir: string, names: readonly string[]): Promise<number | undefined> {
  const times = await Promise.all(names.map((n) => stat(path.join(dir, n)).then((s) => s.mtimeMs, () => undefined)));
  const found = times.filter((t) => t !== undefined);
  return found.length === 0 ? undefined : Math.max(...found);
}

export async function readRunState(dir: string, dim: number): Promise<RunState> {
  const progressTmpMs = await latestMtimeMs(dir, ['progress.json.tmp']);
  const finishingMs = await latestMtimeMs(dir, ['embeddings.npy', 'coords.npy', 'embeddings.npy.tmp', 'coords.npy.tmp', 'manifest.json.tmp']);
  const names = new Set(await readdir(dir).catch(() => [] as string[]));
  if (names.has('manifest.json')) {
    const manifest = JSON.parse(await readFile(path.join(dir, 'manifest.json'), 'utf8')) as { rows: number; totalPatches: number };
    return { complete: true, gridDone: manifest.totalPatches, rows: manifest.rows, rowsPastCommit: 0, finishingMs: undefined, progressTmpMs };
  }
  if (!names.has('progress.json')) return { complete: false, gridDone: 0, rows: 0, rowsPastCommit: 0, finishingMs, progressTmpMs };
  const progress = JSON.parse(await readFile(path.join(dir, 'progress.json'), 'utf8')) as { gridDone: number; rows: number };
  const partBytes = await sizeOf(path.join(dir, 'embeddings.f32.part'));
  return { complete: false, gridDone: progress.gridDone, rows: progress.rows, rowsPastCommit: Math.max(0, partBytes / (dim * 4) - progress.rows), finishingMs, progressTmpMs };
}

/**
 * Where a kill landed, from the runs before the cycle and after the kill (files written since the cycle
 * began count): in finish() (a run completed, or finish's files were written), inside a commit (a
 * progress.json.tmp written and not yet renamed), between or inside batches (more committed), or before
 * this process's first commit (start-up and resume, that of a job whose run was complete included).
 */
export function classifyKill(before: readonly RunState[], after: readonly RunState[], cycleStartMs: number): KillPhase {
  const since = (ms: number | undefined) => ms !== undefined && ms >= cycleStartMs;
  const open = before.flatMap((b, i) => (b.complete ? [] : [{ b, a: after[i]! }]));
  if (open.some(({ a }) => a.complete || since(a.finishingMs))) return 'finish';
  if (open.some(({ a }) => since(a.progressTmpMs))) return 'commit';
  if (open.some(({ a, b }) => a.gridDone > b.gridDone)) return 'embedding';
  return 'start';
}

function equalPrefix(part: Buffer, reference: Buffer, bytes: number): boolean {
  return part.length >= bytes && part.subarray(0, bytes).equals(reference.subarray(0, bytes));
}

/**
 * Every check of the store after a kill, as failures in words: verifyStore finds no problem (the pending
 * list validated with it); every job whose run is not complete is in the pending list (else nobody
 * would resume it); the committed rows of an unfinished run, and the .npy files of a complete one, are
 * the reference's bytes.
 */
export async function checkStoreAfterKill(embedDir: string, specs: readonly EmbedJobSpec[], references: readonly RunBytes[], dim: number, when: string): Promise<string[]> {
  const failures: string[] = [];
  const check = await verifyStore(embedDir, { rootFiles: { [PENDING_JOBS_FILE]: (json, file) => void parsePendingJobs(json, file) } });
  failures.push(...check.problems.map((p) => `${when}: ${p}`));
  const pending = await readPendingJobs(pendingJobsFile(embedDir)).catch(() => []);
  for (const [i, spec] of specs.entries()) {
    const dir = runDir(embedDir, spec);
    const reference = references[i]!;
    const state = await readRunState(dir, dim);
    const listed = pending.some((p) => p.spec.seriesUid === spec.seriesUid && computeRunId(p.spec) === computeRunId(spec));
    if (!state.complete && !listed) failures.push(`${when}: the run ${computeRunId(spec)} is not complete and its job is not in the pending-jobs list`);
    if (state.complete) {
      const run = await readRunBytes(dir);
      if (!run.embeddingsNpy.equals(reference.embeddingsNpy) || !run.coordsNpy.equals(reference.coordsNpy)) failures.push(`${when}: the complete run's .npy files differ from the reference`);
    } else if (state.rows > 0) {
      const [embeddings, coords] = await Promise.all([readFile(path.join(dir, 'embeddings.f32.part')), readFile(path.join(dir, 'coords.i32.part'))]);
      if (!equalPrefix(embeddings, reference.embeddingsData, state.rows * dim * 4) || !equalPrefix(coords, reference.coordsData, state.rows * 8)) {
        failures.push(`${when}: the ${state.rows} committed rows differ from the reference's first rows`);
      }
    }
  }
  return failures;
}
