/**
 * The store's own JSON files, checked when read back: progress.json (an unfinished run's commit point)
 * and manifest.json (a complete run). Our writes are atomic, so a file failing these checks was edited
 * or damaged, and the reader says so rather than guessing.
 */
import { z } from 'zod';
import { StoreCorruptError, type RunHeader, type RunManifest } from './types.js';

/** Entries of the skipped list kept in progress.json and the manifest; the count is always exact. */
export const SKIPPED_LIST_MAX = 1000;

const count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

export const HeaderSchema = z.object({
  dim: z.number().int().min(1).max(1 << 20),
  totalPatches: z.number().int().min(0).max(2 ** 31 - 1),
  params: z.record(z.string(), z.unknown()),
});

const SkippedSchema = z.object({ gridIndex: count, reason: z.string() });

export const ProgressSchema = z.object({
  formatVersion: z.literal(1),
  header: HeaderSchema,
  createdAt: z.string(),
  updatedAt: z.string(),
  gridDone: count,
  rows: count,
  skippedCount: count,
  skipped: z.array(SkippedSchema).max(SKIPPED_LIST_MAX),
});
export type Progress = z.infer<typeof ProgressSchema>;

const FileInfoSchema = z.object({ bytes: count, sha256: z.string().regex(/^[0-9a-f]{64}$/), dtype: z.enum(['<f4', '<i4']), shape: z.array(count) });

const ManifestSchema = z.looseObject({
  formatVersion: z.literal(1),
  studyUid: z.string(),
  seriesUid: z.string(),
  modelId: z.string(),
  runId: z.string(),
  dim: HeaderSchema.shape.dim,
  rows: count,
  totalPatches: HeaderSchema.shape.totalPatches,
  params: z.record(z.string(), z.unknown()),
  skippedCount: count,
  skipped: z.array(SkippedSchema),
  files: z.object({ 'embeddings.npy': FileInfoSchema, 'coords.npy': FileInfoSchema }),
  createdAt: z.string(),
  finishedAt: z.string(),
});

/** Keys of the manifest the store owns; meta passed to finish() may not use them. */
export const MANIFEST_KEYS: ReadonlySet<string> = new Set(Object.keys(ManifestSchema.shape));

function problems(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
}

export function parseProgress(json: unknown, file: string): Progress {
  const parsed = ProgressSchema.safeParse(json);
  if (!parsed.success) throw new StoreCorruptError(`${file}: ${problems(parsed.error)}`);
  const p = parsed.data;
  if (p.gridDone > p.header.totalPatches || p.rows + p.skippedCount !== p.gridDone) {
    throw new StoreCorruptError(`${file}: gridDone ${p.gridDone}, rows ${p.rows} and skippedCount ${p.skippedCount} disagree`);
  }
  return p;
}

export function parseManifest(json: unknown, file: string): RunManifest {
  const parsed = ManifestSchema.safeParse(json);
  if (!parsed.success) throw new StoreCorruptError(`${file}: ${problems(parsed.error)}`);
  return parsed.data as RunManifest;
}

export function headerOfManifest(manifest: RunManifest): RunHeader {
  return { dim: manifest.dim, totalPatches: manifest.totalPatches, params: manifest.params };
}

/** Checks a caller's header and returns it as it will read back from JSON (undefined dropped, etc.). */
export function checkHeader(header: RunHeader): RunHeader {
  const parsed = HeaderSchema.safeParse(JSON.parse(JSON.stringify(header ?? null)) as unknown);
  if (!parsed.success) throw new TypeError(`Bad run header: ${problems(parsed.error)}`);
  return parsed.data;
}
