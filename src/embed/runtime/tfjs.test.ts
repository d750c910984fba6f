import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseManifest, type ModelManifest } from '../models/manifest.js';
import { seededRandom, writeTinyGraphModel, type TinyModel, type TinyModelOptions } from './tfjs-fixture.js';
import { loadTfjsModel } from './tfjs.js';
import type { EmbeddingModel, PatchBatch } from './types.js';

const SIZE = 224;
let root: string;

beforeAll(async () => {
  // The pure-JS package would try WebGL first; the CPU backend is what runs in Node without bindings.
  await tf.setBackend('cpu');
  // Silences the CPU backend's "install the node backend" banner, which is advice for production.
  tf.enableProdMode();
  root = await mkdtemp(path.join(tmpdir(), 'tfjs-runtime-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

let folders = 0;
async function fixture(options: TinyModelOptions): Promise<{ dir: string; tiny: TinyModel }> {
  const dir = path.join(root, `m${folders++}`);
  return { dir, tiny: await writeTinyGraphModel(dir, options) };
}

function manifest(file: string, overrides: { input?: object; output?: object; maxBatch?: number } = {}): ModelManifest {
  return parseManifest(
    {
      id: 'tiny',
      name: 'Tiny',
      format: 'tfjs-graph',
      file,
      input: { layout: 'NHWC', sizePx: SIZE, range: [0, 1], ...overrides.input },
      output: { pooling: 'none', dim: 6, ...overrides.output },
      recommendedMpp: [0.5],
      maxBatch: overrides.maxBatch ?? 4,
    },
    'tiny.json',
  );
}

function randomBatch(count: number, seed: number): PatchBatch {
  const random = seededRandom(seed);
  // Extra bytes past the batch: the runtime must not read them.
  const pixels = Uint8Array.from({ length: count * SIZE * SIZE * 3 + 100 }, () => Math.floor(random() * 256));
  return { pixels, count, sizePx: SIZE };
}

/** The manifest's normalisation written out the long way, not through computeChannelTransform. */
function normalise(batch: PatchBatch, input: ModelManifest['input']): Float64Array {
  const [low, high] = input.range;
  const out = new Float64Array(batch.count * SIZE * SIZE * 3);
  for (let i = 0; i < out.length; i++) {
    const c = i % 3;
    out[i] = (low + (batch.pixels[i]! / 255) * (high - low) - (input.mean?.[c] ?? 0)) / (input.std?.[c] ?? 1);
  }
  return out;
}

function expectClose(actual: Float32Array, expected: Float64Array): void {
  expect(actual.length).toBe(expected.length);
  let worst = 0;
  for (let i = 0; i < actual.length; i++) worst = Math.max(worst, Math.abs(actual[i]! - expected[i]!));
  expect(worst).toBeLessThan(1e-4);
}

async function withModel<T>(m: ModelManifest, dir: string, use: (model: EmbeddingModel) => Promise<T>): Promise<T> {
  const model = await loadTfjsModel(m, dir, { tf });
  try {
    return await use(model);
  } finally {
    await model.close();
  }
}

describe('loadTfjsModel', () => {
  it('gives the embeddings of the graph for a batch of 3 (pooling none)', async () => {
    const { dir, tiny } = await fixture({ output: 'pooled' });
    const m = manifest(tiny.file);
    await withModel(m, dir, async (model) => {
      expect(model.dim).toBe(6);
      expect(model.backend).toBe(`tfjs ${tf.version_core} (cpu)`);
      const batch = randomBatch(3, 7);
      expectClose(await model.embed(batch), tiny.reference(normalise(batch, m.input), 3));
    });
  });

  it('mean-pools a spatial NHWC output over H and W', async () => {
    const { dir, tiny } = await fixture({ output: 'spatial' });
    const m = manifest(tiny.file, { output: { pooling: 'mean-hw', layout: 'NHWC', dim: 8 } });
    await withModel(m, dir, async (model) => {
      const batch = randomBatch(3, 8);
      expectClose(await model.embed(batch), tiny.reference(normalise(batch, m.input), 3));
    });
  });

  it('reads NCHW inputs and NCHW spatial outputs', async () => {
    const { dir, tiny } = await fixture({ output: 'spatial', inputLayout: 'NCHW', outputLayout: 'NCHW' });
    const m = manifest(tiny.file, { input: { layout: 'NCHW' }, output: { pooling: 'mean-hw', layout: 'NCHW', dim: 8 } });
    await withModel(m, dir, async (model) => {
      const batch = randomBatch(2, 9);
      expectClose(await model.embed(batch), tiny.reference(normalise(batch, m.input), 2));
    });
  });

  it('takes the input and output named in the manifest', async () => {
    const { dir } = await fixture({ output: 'pooled', seed: 5 });
    const spatial = await fixture({ output: 'spatial', seed: 5 }); // same conv weights: feature_map's reference
    const m = manifest('model.json', { input: { name: 'input' }, output: { name: 'feature_map', pooling: 'mean-hw', dim: 8 } });
    await withModel(m, dir, async (model) => {
      const batch = randomBatch(2, 10);
      expectClose(await model.embed(batch), spatial.tiny.reference(normalise(batch, m.input), 2));
    });
    await expect(loadTfjsModel(manifest('model.json', { input: { name: 'pixels' } }), dir, { tf })).rejects.toThrow(/no input 'pixels' \(it has input\)/);
  });

  it('applies range, mean and std from the manifest', async () => {
    const { dir, tiny } = await fixture({ output: 'pooled' });
    const batch = randomBatch(2, 11);
    const plain = manifest(tiny.file);
    const shifted = manifest(tiny.file, { input: { range: [-1, 1], mean: [0.5, 0.25, 0], std: [0.5, 0.25, 2] } });
    const a = await withModel(plain, dir, (model) => model.embed(batch));
    const b = await withModel(shifted, dir, (model) => model.embed(batch));
    expectClose(a, tiny.reference(normalise(batch, plain.input), 2));
    expectClose(b, tiny.reference(normalise(batch, shifted.input), 2));
    expect(Math.max(...a.map((v, i) => Math.abs(v - b[i]!)))).toBeGreaterThan(1e-2);
  });

  it('runs batches of 1 and of maxBatch, and refuses more', async () => {
    const { dir, tiny } = await fixture({ output: 'pooled' });
    const m = manifest(tiny.file, { maxBatch: 5 });
    await withModel(m, dir, async (model) => {
      for (const count of [1, 5]) {
        const batch = randomBatch(count, 20 + count);
        expectClose(await model.embed(batch), tiny.reference(normalise(batch, m.input), count));
      }
      await expect(model.embed(randomBatch(6, 1))).rejects.toThrow(RangeError);
      await expect(model.embed({ ...randomBatch(1, 1), sizePx: 112 })).rejects.toThrow(/takes 224 px patches/);
    });
  });

  it('runs graphs that need executeAsync (control flow)', async () => {
    const { dir, tiny } = await fixture({ output: 'pooled', controlFlow: true });
    const m = manifest(tiny.file);
    await withModel(m, dir, async (model) => {
      for (const seed of [30, 31]) {
        const batch = randomBatch(2, seed);
        expectClose(await model.embed(batch), tiny.reference(normalise(batch, m.input), 2));
      }
    });
  });

  it('leaks no tensors over 5 calls, and close disposes the weights', async () => {
    for (const options of [{ output: 'pooled' }, { output: 'spatial' }, { output: 'pooled', controlFlow: true }] as const) {
      const { dir, tiny } = await fixture(options);
      const before = tf.memory().numTensors;
      const m = manifest(tiny.file, options.output === 'spatial' ? { output: { pooling: 'mean-hw', dim: 8 } } : {});
      const model = await loadTfjsModel(m, dir, { tf });
      const loaded = tf.memory().numTensors;
      for (let i = 0; i < 5; i++) await model.embed(randomBatch(1 + (i % 3), 40 + i));
      expect(tf.memory().numTensors).toBe(loaded);
      await model.close();
      await model.close();
      expect(tf.memory().numTensors).toBe(before);
      await expect(model.embed(randomBatch(1, 1))).rejects.toThrow(/closed/);
    }
  });

  it('names the missing file: model.json or a weight shard', async () => {
    await expect(loadTfjsModel(manifest('absent/model.json'), root, { tf })).rejects.toThrow(
      `Model 'tiny' needs ${path.join(root, 'absent', 'model.json')}, which does not exist`,
    );
    const { dir, tiny } = await fixture({ output: 'pooled' });
    await rm(path.join(dir, 'group1-shard2of2.bin'));
    await expect(loadTfjsModel(manifest(tiny.file), dir, { tf })).rejects.toThrow(`needs ${path.join(dir, 'group1-shard2of2.bin')}`);
  });

  it('refuses a model whose input shape contradicts the manifest, and a Layers model', async () => {
    const { dir, tiny } = await fixture({ output: 'pooled', sizePx: 112 });
    await expect(loadTfjsModel(manifest(tiny.file), dir, { tf })).rejects.toThrow(/input has shape \[-1,112,112,3\], the manifest describes \[-1,224,224,3\]/);
    await writeFile(path.join(dir, 'layers.json'), JSON.stringify({ format: 'layers-model', modelTopology: {}, weightsManifest: [] }));
    await expect(loadTfjsModel(manifest('layers.json'), dir, { tf })).rejects.toThrow(/not a graph model/);
  });

  // Holds on this machine; where a native package is installed, loading it is the point, not an error.
  const require = createRequire(import.meta.url);
  const installed = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'].filter((name) => {
    try {
      require.resolve(`${name}/package.json`);
      return true;
    } catch {
      return false;
    }
  });
  it.skipIf(installed.length > 0)('says what to install when neither tfjs-node-gpu nor tfjs-node loads', async () => {
    const error = await loadTfjsModel(manifest('model.json'), root).then(
      () => new Error('loaded without a runtime'),
      (err: unknown) => err as Error,
    );
    expect(error.message).toContain('npm install @tensorflow/tfjs-node-gpu');
    expect(error.message).toContain('npm install @tensorflow/tfjs-node`');
    expect(error.message).toMatch(/CUDA 11\.2 and cuDNN 8\.1/);
    expect(error.message).toMatch(/ONNX models, the default runtime, need neither/);
    expect(error.message).toContain('@tensorflow/tfjs-node-gpu: not installed; @tensorflow/tfjs-node: not installed');
  });
});
