/**
 * ONNX models on onnxruntime-node, the default runtime: CPU everywhere, and the CUDA or TensorRT
 * execution providers on a GPU host that installed them (models/README.md says how). Providers are
 * tried in the configured order and the first one that opens the model is used; the log says which.
 */
import { access, readFile } from 'node:fs/promises';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import type { ModelManifest } from '../models/manifest.js';
import { computeChannelTransform, fillInputTensor, poolOutput } from '../models/preprocess.js';
import type { EmbeddingModel, PatchBatch } from './types.js';

export type ExecutionProvider = 'tensorrt' | 'cuda' | 'cpu';

export interface OnnxOptions {
  /** Providers in order of preference; 'cpu' is always tried last. @default ['cpu'] */
  executionProviders?: readonly ExecutionProvider[];
  /** Threads for one operator on CPU; 0 lets onnxruntime choose (one per core). @default 0 */
  intraOpThreads?: number;
  /** Told which provider opened the model, and why others did not. */
  onProvider?: (used: ExecutionProvider, failures: ReadonlyArray<{ provider: ExecutionProvider; reason: string }>) => void;
}

/** The weights file a manifest names, resolved against the models folder. */
export function resolveModelFile(manifest: ModelManifest, modelsDir: string): string {
  return path.resolve(modelsDir, manifest.file ?? '');
}

/** Opens a session with the first provider that works, falling back towards CPU. */
async function openSession(bytes: Uint8Array, manifest: ModelManifest, options: OnnxOptions): Promise<{ session: ort.InferenceSession; provider: ExecutionProvider }> {
  const wanted = [...new Set([...(options.executionProviders ?? []), 'cpu' as const])];
  const failures: Array<{ provider: ExecutionProvider; reason: string }> = [];
  for (let i = 0; i < wanted.length; i++) {
    const provider = wanted[i]!;
    try {
      const session = await ort.InferenceSession.create(bytes, {
        // The remaining providers stay in the list so operators the first cannot run fall back per node.
        executionProviders: wanted.slice(i),
        intraOpNumThreads: options.intraOpThreads ?? 0,
        graphOptimizationLevel: manifest.onnxGraphOptimization,
      });
      options.onProvider?.(provider, failures);
      return { session, provider };
    } catch (err) {
      if (provider === 'cpu') throw err;
      failures.push({ provider, reason: (err as Error).message.split('\n')[0]!.slice(0, 300) });
    }
  }
  throw new Error('unreachable: cpu is always tried');
}

export async function loadOnnxModel(manifest: ModelManifest, modelsDir: string, options: OnnxOptions = {}): Promise<EmbeddingModel> {
  const file = resolveModelFile(manifest, modelsDir);
  await access(file).catch(() => {
    throw new Error(`Model '${manifest.id}' needs ${file}, which does not exist: see models/README.md for how to make it`);
  });
  const { session, provider } = await openSession(await readFile(file), manifest, options);
  const inputName = manifest.input.name ?? session.inputNames[0]!;
  const outputName = manifest.output.name ?? session.outputNames[0]!;
  if (!session.inputNames.includes(inputName)) throw new Error(`${file} has no input '${inputName}' (it has ${session.inputNames.join(', ')})`);
  if (!session.outputNames.includes(outputName)) throw new Error(`${file} has no output '${outputName}' (it has ${session.outputNames.join(', ')})`);

  const { sizePx, layout } = manifest.input;
  const transform = computeChannelTransform(manifest.input);
  const patchFloats = sizePx * sizePx * 3;
  // One input buffer for the session's life: batches are views of it, nothing is allocated per batch.
  const input = new Float32Array(manifest.maxBatch * patchFloats);
  let closed = false;

  return {
    manifest,
    dim: manifest.output.dim,
    backend: `onnxruntime-node ${ort.env.versions.node ?? ''} (${provider})`,
    async embed(batch: PatchBatch): Promise<Float32Array> {
      if (closed) throw new Error(`model '${manifest.id}' is closed`);
      if (batch.sizePx !== sizePx) throw new Error(`model '${manifest.id}' takes ${sizePx} px patches, got ${batch.sizePx}`);
      if (batch.count < 1 || batch.count > manifest.maxBatch) throw new RangeError(`batch of ${batch.count}, the model takes 1..${manifest.maxBatch}`);
      fillInputTensor(batch, layout, transform, input);
      const dims = layout === 'NHWC' ? [batch.count, sizePx, sizePx, 3] : [batch.count, 3, sizePx, sizePx];
      const tensor = new ort.Tensor('float32', input.subarray(0, batch.count * patchFloats), dims);
      const results = await session.run({ [inputName]: tensor }, [outputName]);
      const output = results[outputName]!;
      return poolOutput(output.data as Float32Array, output.dims, manifest.output, batch.count);
    },
    async close() {
      if (closed) return;
      closed = true;
      await session.release();
    },
  };
}
