/**
 * What every model runtime (onnxruntime-node, TF.js, the built-in statistics) offers the pipeline.
 * The pipeline hands over 8-bit RGB patches; each runtime turns them into its own input tensor (layout,
 * range, normalisation from the manifest) in buffers it reuses, and returns pooled embeddings.
 */
import type { ModelManifest } from '../models/manifest.js';

/** `count` patches of `sizePx` x `sizePx` RGB pixels, row-major, interleaved, patch after patch. */
export interface PatchBatch {
  /** At least count * sizePx * sizePx * 3 bytes; bytes past that are garbage. */
  pixels: Uint8Array;
  count: number;
  sizePx: number;
}

export interface EmbeddingModel {
  readonly manifest: ModelManifest;
  /** Embedding length. */
  readonly dim: number;
  /** What runs it, for logs and store manifests: 'onnxruntime-node 1.30.0 (cpu)', 'builtin', ... */
  readonly backend: string;
  /**
   * Embeddings of the batch: count * dim float32, patch after patch. The caller may reuse
   * `batch.pixels` as soon as the promise settles. Calls must not overlap (the pipeline awaits each).
   */
  embed(batch: PatchBatch): Promise<Float32Array>;
  /** Frees the session and its buffers. Idempotent. */
  close(): Promise<void>;
}
