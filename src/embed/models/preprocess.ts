/**
 * Patches → input tensor and output tensor → embeddings, as a manifest describes them. Shared by every
 * runtime so that ONNX and TF.js models read the same pixels the same way.
 */
import type { ModelManifest } from './manifest.js';
import type { PatchBatch } from '../runtime/types.js';

/** Per-channel affine map v ↦ v * scale[c] + offset[c] from 0..255 to the model's input values. */
export interface ChannelTransform {
  scale: Float32Array;
  offset: Float32Array;
}

/** Folds range, mean and std into one multiply-add per sample. */
export function computeChannelTransform(input: ModelManifest['input']): ChannelTransform {
  const [low, high] = input.range;
  const scale = new Float32Array(3);
  const offset = new Float32Array(3);
  for (let c = 0; c < 3; c++) {
    const mean = input.mean?.[c] ?? 0;
    const std = input.std?.[c] ?? 1;
    scale[c] = (high - low) / 255 / std;
    offset[c] = (low - mean) / std;
  }
  return { scale, offset };
}

/**
 * Writes the batch's patches into `out` (count * 3 * size * size floats) in the manifest's layout.
 * `out` is the runtime's reused buffer: nothing is allocated per batch.
 */
export function fillInputTensor(batch: PatchBatch, layout: 'NHWC' | 'NCHW', transform: ChannelTransform, out: Float32Array): void {
  const { pixels, count, sizePx } = batch;
  const plane = sizePx * sizePx;
  const samples = count * plane * 3;
  if (out.length < samples) throw new RangeError(`tensor buffer holds ${out.length} floats, batch needs ${samples}`);
  const [s0, s1, s2] = transform.scale as unknown as [number, number, number];
  const [o0, o1, o2] = transform.offset as unknown as [number, number, number];
  if (layout === 'NHWC') {
    for (let i = 0; i < samples; i += 3) {
      out[i] = pixels[i]! * s0 + o0;
      out[i + 1] = pixels[i + 1]! * s1 + o1;
      out[i + 2] = pixels[i + 2]! * s2 + o2;
    }
    return;
  }
  for (let n = 0; n < count; n++) {
    const src = n * plane * 3;
    const dst = n * plane * 3;
    for (let p = 0; p < plane; p++) {
      const i = src + p * 3;
      out[dst + p] = pixels[i]! * s0 + o0;
      out[dst + plane + p] = pixels[i + 1]! * s1 + o1;
      out[dst + 2 * plane + p] = pixels[i + 2]! * s2 + o2;
    }
  }
}

/**
 * Embeddings from a model output: [N, dim] as is, or a spatial map averaged over H and W.
 * @param dims the output tensor's shape.
 */
export function poolOutput(data: Float32Array, dims: readonly number[], output: ModelManifest['output'], count: number): Float32Array {
  const { dim } = output;
  if (output.pooling === 'none') {
    const length = dims.slice(1).reduce((a, b) => a * b, 1);
    if (dims[0] !== count || length !== dim) {
      throw new Error(`model output has shape [${dims.join(',')}], the manifest expects [${count},${dim}]`);
    }
    return data.length === count * dim ? data : data.slice(0, count * dim);
  }
  if (dims.length !== 4 || dims[0] !== count) {
    throw new Error(`model output has shape [${dims.join(',')}], the manifest expects a spatial map [${count},H,W,${dim}] to pool`);
  }
  const channels = output.layout === 'NHWC' ? dims[3]! : dims[1]!;
  if (channels !== dim) throw new Error(`model output has ${channels} channels, the manifest says dim ${dim}`);
  const cells = output.layout === 'NHWC' ? dims[1]! * dims[2]! : dims[2]! * dims[3]!;
  const pooled = new Float32Array(count * dim);
  for (let n = 0; n < count; n++) {
    const base = n * cells * dim;
    const into = n * dim;
    if (output.layout === 'NHWC') {
      for (let cell = 0; cell < cells; cell++) {
        const at = base + cell * dim;
        for (let c = 0; c < dim; c++) pooled[into + c]! += data[at + c]!;
      }
    } else {
      for (let c = 0; c < dim; c++) {
        let sum = 0;
        const at = base + c * cells;
        for (let cell = 0; cell < cells; cell++) sum += data[at + cell]!;
        pooled[into + c] = sum;
      }
    }
    for (let c = 0; c < dim; c++) pooled[into + c]! /= cells;
  }
  return pooled;
}
