/**
 * Where a run's patches lie on the slide, in level-0 pixels: their side (from the run's grid), the patch
 * under a point, and cosine similarity between patches. Pure: arrays in, arrays out.
 */
import { z } from 'zod';
import type { RunManifest } from '../embed/store/index.js';
import type { PatchSizeLevel0 } from './patch-lookup.js';

export { findPatchAt, type PatchSizeLevel0 } from './patch-lookup.js';

/** The run's grid as the embedding job recorded it (see PatchGridPlan): only what analysis needs. */
const GridSchema = z.object({
  patchSizeLevel0Px: z.number().int().positive(),
  patchHeightLevel0Px: z.number().int().positive().optional(),
  targetMpp: z.number().positive().optional(),
  patchSizePx: z.number().int().positive().optional(),
});

/** A patch's side in level-0 pixels, read from the run's parameters. */
export function computePatchSizeLevel0(manifest: Pick<RunManifest, 'params'>): PatchSizeLevel0 {
  const grid = GridSchema.safeParse(manifest.params.grid);
  if (!grid.success) throw new Error('The run has no grid in its parameters: it was not written by an embedding job');
  return { widthPx: grid.data.patchSizeLevel0Px, heightPx: grid.data.patchHeightLevel0Px ?? grid.data.patchSizeLevel0Px };
}

/** 1 / |row| for every row (0 for an all-zero row, so its similarities are 0 rather than NaN). */
export function computeInverseNorms(embeddings: Float32Array, rows: number, dim: number): Float32Array {
  const inverse = new Float32Array(rows);
  for (let row = 0; row < rows; row++) {
    let sum = 0;
    for (let i = row * dim, end = i + dim; i < end; i++) sum += embeddings[i]! * embeddings[i]!;
    inverse[row] = sum > 0 ? 1 / Math.sqrt(sum) : 0;
  }
  return inverse;
}

/** Cosine similarity of `query` (dim floats) with every row: rows floats in [-1, 1]. */
export function computeCosineSimilarity(query: Float32Array, embeddings: Float32Array, inverseNorms: Float32Array, dim: number): Float32Array {
  let queryNorm = 0;
  for (let i = 0; i < dim; i++) queryNorm += query[i]! * query[i]!;
  const queryInverse = queryNorm > 0 ? 1 / Math.sqrt(queryNorm) : 0;
  const rows = inverseNorms.length;
  const scores = new Float32Array(rows);
  for (let row = 0; row < rows; row++) {
    let dot = 0;
    const base = row * dim;
    for (let i = 0; i < dim; i++) dot += query[i]! * embeddings[base + i]!;
    scores[row] = Math.max(-1, Math.min(1, dot * queryInverse * inverseNorms[row]!));
  }
  return scores;
}

/** Rows of the `limit` highest scores, best first (ties: the lower row first), skipping `exclude`. */
export function computeTopRows(scores: Float32Array, limit: number, exclude = -1): number[] {
  const top: number[] = [];
  for (let row = 0; row < scores.length; row++) {
    if (row === exclude) continue;
    const score = scores[row]!;
    if (top.length === limit && score <= scores[top[top.length - 1]!]!) continue;
    let at = top.length;
    while (at > 0 && scores[top[at - 1]!]! < score) at--;
    top.splice(at, 0, row);
    if (top.length > limit) top.pop();
  }
  return top;
}
