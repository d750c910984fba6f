/**
 * TF.js graph models (tensorflowjs_converter output of TensorFlow SavedModels such as Path Foundation
 * or REMEDIS), an optional runtime beside ONNX. The native bindings (@tensorflow/tfjs-node-gpu, or
 * @tensorflow/tfjs-node on CPU) download libtensorflow when installed, so they are optional
 * dependencies, imported only when a tfjs-graph model is loaded, and a host that lacks them is told
 * what to install instead of failing at start.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { GraphModel, io, NamedTensorMap, Tensor } from '@tensorflow/tfjs';
import type { ModelManifest } from '../models/manifest.js';
import { computeChannelTransform, fillInputTensor, poolOutput } from '../models/preprocess.js';
import type { EmbeddingModel, PatchBatch } from './types.js';

/**
 * The TF.js API this runtime uses. The pure-JS package's types stand for the native ones (same API,
 * another backend), so that TypeScript needs no types from packages that are not installed.
 */
export type TfModule = typeof import('@tensorflow/tfjs');

export interface TfjsOptions {
  /** A TF.js module to use instead of importing tfjs-node-gpu or tfjs-node (tests pass @tensorflow/tfjs). */
  tf?: TfModule;
  /** Package name shown in `backend` for an injected `tf`. @default 'tfjs' */
  label?: string;
}

/** GPU build first; where it is absent or cannot load its CUDA libraries, the CPU build. */
const PACKAGES = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'] as const;

/** The first native TF.js package that loads, or an error saying what to install. */
export async function importTfjs(): Promise<{ tf: TfModule; label: string }> {
  const reasons: string[] = [];
  const errors: unknown[] = [];
  for (const name of PACKAGES) {
    try {
      // A variable specifier: neither TypeScript nor the bundler may resolve a package that is absent.
      const specifier: string = name;
      const tf = (await import(/* @vite-ignore */ specifier)) as TfModule;
      return { tf, label: name.slice('@tensorflow/'.length) };
    } catch (err) {
      errors.push(err);
      const e = err as NodeJS.ErrnoException;
      const missing = e.code === 'ERR_MODULE_NOT_FOUND' || /Cannot find (package|module)/.test(e.message ?? '');
      // Installed but not loadable is a different fix (usually CUDA/cuDNN libraries), so say which.
      reasons.push(`${name}: ${missing ? 'not installed' : (e.message ?? String(err)).split('\n')[0]!.slice(0, 300)}`);
    }
  }
  throw new Error(
    'TF.js graph models need a TensorFlow.js Node runtime, and none could be loaded. On a GPU host with ' +
      'CUDA 11.2 and cuDNN 8.1 run `npm install @tensorflow/tfjs-node-gpu`; on CPU run ' +
      '`npm install @tensorflow/tfjs-node` (both download libtensorflow while installing). ONNX models, ' +
      `the default runtime, need neither. (${reasons.join('; ')})`,
    { cause: errors },
  );
}

async function readModelFile(file: string, what: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new Error(`${what} needs ${file}, which does not exist: see models/README.md for how to make it`, { cause: err });
    }
    throw err;
  }
}

/**
 * An IO handler reading model.json and its shards from disk. tfjs-node has a file:// loader but the
 * pure-JS package has none, and this one behaves the same under both.
 */
export function fileModelHandler(tf: TfModule, modelJsonPath: string, what: string): io.IOHandler {
  return {
    async load() {
      const text = (await readModelFile(modelJsonPath, what)).toString('utf8');
      let json: io.ModelJSON;
      try {
        json = JSON.parse(text) as io.ModelJSON;
      } catch (err) {
        throw new Error(`${modelJsonPath}: not valid JSON (${(err as Error).message})`, { cause: err });
      }
      if (json.format && json.format !== 'graph-model') {
        throw new Error(`${modelJsonPath} is a TF.js '${json.format}', not a graph model: convert with --output_format=tfjs_graph_model`);
      }
      if (!json.modelTopology) throw new Error(`${modelJsonPath} has no modelTopology: not a TF.js model.json`);
      const dir = path.dirname(modelJsonPath);
      return tf.io.getModelArtifactsForJSON(json, async (manifest) => {
        const shards: ArrayBuffer[] = [];
        for (const group of manifest) {
          for (const shard of group.paths) {
            const file = path.resolve(dir, shard);
            // Shards sit beside model.json; a path that climbs out of it is a broken or hostile file.
            if (path.relative(dir, file).startsWith('..')) throw new Error(`${modelJsonPath}: weight path '${shard}' leaves the model's folder`);
            const bytes = await readModelFile(file, what);
            shards.push(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);
          }
        }
        // A list, not one joined buffer: TF.js reads weights across shard boundaries without a copy.
        return [tf.io.getWeightSpecs(manifest), shards];
      });
    },
  };
}

/** A model input's shape against the manifest's, -1 or null matching any size. */
function checkInputShape(shape: readonly number[] | undefined, expected: readonly number[], what: string): void {
  if (!shape || shape.length === 0) return;
  const fits = shape.length === expected.length && shape.every((d, i) => d == null || d < 0 || d === expected[i]);
  if (!fits) {
    throw new Error(`${what}: the model's input has shape [${shape.join(',')}], the manifest describes [-1,${expected.slice(1).join(',')}]`);
  }
}

export async function loadTfjsModel(manifest: ModelManifest, modelsDir: string, options: TfjsOptions = {}): Promise<EmbeddingModel> {
  if (manifest.format !== 'tfjs-graph') throw new Error(`model '${manifest.id}' is ${manifest.format}, not tfjs-graph`);
  const { tf, label } = options.tf ? { tf: options.tf, label: options.label ?? 'tfjs' } : await importTfjs();
  await tf.ready();
  const file = path.resolve(modelsDir, manifest.file ?? '');
  const what = `Model '${manifest.id}'`;
  const model: GraphModel = await tf.loadGraphModel(fileModelHandler(tf, file, what));

  const { sizePx, layout } = manifest.input;
  try {
    const inputNames = model.inputs.map((i) => i.name);
    const inputName = manifest.input.name ?? inputNames[0];
    const info = model.inputs.find((i) => i.name === inputName);
    if (!inputName || !info) throw new Error(`${file} has no input '${inputName ?? ''}' (it has ${inputNames.join(', ') || 'none'})`);
    if (info.dtype && info.dtype !== 'float32') throw new Error(`${file}: input '${inputName}' is ${info.dtype}; the gateway feeds float32`);
    checkInputShape(info.shape, layout === 'NHWC' ? [-1, sizePx, sizePx, 3] : [-1, 3, sizePx, sizePx], file);
    // Any node name works as an output in TF.js (an intermediate layer too), so it is not checked here.
    const outputName = manifest.output.name ?? model.outputs[0]?.name;
    if (!outputName) throw new Error(`${file} has no outputs`);
    return makeModel(tf, model, manifest, { inputName, outputName, backend: `${label} ${tf.version_core} (${tf.getBackend()})` });
  } catch (err) {
    model.dispose();
    throw err;
  }
}

function makeModel(
  tf: TfModule,
  model: GraphModel,
  manifest: ModelManifest,
  { inputName, outputName, backend }: { inputName: string; outputName: string; backend: string },
): EmbeddingModel {
  const { sizePx, layout } = manifest.input;
  const transform = computeChannelTransform(manifest.input);
  const patchFloats = sizePx * sizePx * 3;
  // One input buffer for the model's life: batches are views of it, nothing is allocated per batch.
  const input = new Float32Array(manifest.maxBatch * patchFloats);
  // Graphs with control flow or dynamic shapes refuse execute(); the first refusal switches for good.
  let useAsync = false;
  let closed = false;

  async function run(feed: NamedTensorMap): Promise<Tensor> {
    if (!useAsync) {
      try {
        return model.execute(feed, outputName) as Tensor;
      } catch (err) {
        if (!/executeAsync/.test((err as Error).message)) throw err;
        useAsync = true;
      }
    }
    return (await model.executeAsync(feed, outputName)) as Tensor;
  }

  return {
    manifest,
    dim: manifest.output.dim,
    backend,
    async embed(batch: PatchBatch): Promise<Float32Array> {
      if (closed) throw new Error(`model '${manifest.id}' is closed`);
      if (batch.sizePx !== sizePx) throw new Error(`model '${manifest.id}' takes ${sizePx} px patches, got ${batch.sizePx}`);
      if (batch.count < 1 || batch.count > manifest.maxBatch) throw new RangeError(`batch of ${batch.count}, the model takes 1..${manifest.maxBatch}`);
      fillInputTensor(batch, layout, transform, input);
      const shape: [number, number, number, number] = layout === 'NHWC' ? [batch.count, sizePx, sizePx, 3] : [batch.count, 3, sizePx, sizePx];
      const tensor = tf.tensor4d(input.subarray(0, batch.count * patchFloats), shape, 'float32');
      let output: Tensor | undefined;
      try {
        output = await run({ [inputName]: tensor });
        let data = await output.data();
        if (!(data instanceof Float32Array)) data = Float32Array.from(data as ArrayLike<number>);
        // The CPU backend hands out its own arrays; an output that aliases our input buffer would be
        // overwritten by the next batch.
        else if (data.buffer === input.buffer) data = data.slice();
        return poolOutput(data, output.shape, manifest.output, batch.count);
      } finally {
        tensor.dispose();
        output?.dispose();
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      model.dispose();
    },
  };
}
