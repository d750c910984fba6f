import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadManifests, parseManifest } from '../models/manifest.js';
import { bitWidths, buildBit } from './bit.js';
import { GraphBuilder, mulberry32 } from './graph.js';
import { encodeModel } from './onnx-proto.js';
import { buildVit, VIT_S16 } from './vit.js';
import { BIT_R50X1, BIT_TINY, countGeneratedParams, generateOnnxModel, VIT_TINY, writeGeneratedModels, type GeneratedModel } from './index.js';
import { bitReference, erf, vitReference } from './reference.js';

const SIZE = 224;
const PIXELS = SIZE * SIZE * 3;

/** `count` NHWC images of uniform 0..1 noise, seeded. */
function images(count: number, seed: number): Float32Array {
  const next = mulberry32(seed);
  return Float32Array.from({ length: count * PIXELS }, () => next());
}

async function run(bytes: Uint8Array, input: Float32Array, count: number): Promise<ort.Tensor> {
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 2 });
  try {
    const out = await session.run({ input: new ort.Tensor('float32', input, [count, SIZE, SIZE, 3]) });
    return out.output_0!;
  } finally {
    await session.release();
  }
}

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
};

describe.each([
  { kind: 'vit-tiny' as const, id: 'test-vit-tiny', shape: [2, 32], pooling: 'none' },
  { kind: 'bit-tiny' as const, id: 'test-bit-tiny', shape: [2, 7, 7, 256], pooling: 'mean-hw' },
])('$kind', ({ kind, id, shape, pooling }) => {
  let model: GeneratedModel;
  let output: ort.Tensor;
  const input = images(2, 7);
  beforeAll(async () => {
    model = generateOnnxModel(kind, { seed: 1 });
    output = await run(model.bytes, input, 2);
  });

  it('loads in onnxruntime-node with a symbolic batch and runs a batch of two', async () => {
    const session = await ort.InferenceSession.create(model.bytes);
    const [meta] = session.inputMetadata;
    expect(meta).toMatchObject({ name: 'input', isTensor: true, shape: ['N', SIZE, SIZE, 3] });
    expect(session.outputNames).toEqual(['output_0']);
    await session.release();
    expect(output.dims).toEqual(shape);
  });

  it('gives finite outputs that differ between inputs', () => {
    const data = output.data as Float32Array;
    expect(data.every(Number.isFinite)).toBe(true);
    const half = data.length / 2;
    expect(maxAbsDiff(data.subarray(0, half), data.subarray(half))).toBeGreaterThan(0.05);
  });

  it('emits a manifest the gateway accepts', () => {
    const manifest = parseManifest(JSON.parse(JSON.stringify(model.manifest)), `${id}.json`);
    expect(manifest).toMatchObject({ id, format: 'onnx', file: `${id}.onnx`, output: { name: 'output_0', pooling, dim: shape.at(-1) } });
    expect(manifest.input).toEqual({ name: 'input', layout: 'NHWC', sizePx: 224, range: [0, 1] });
    expect(manifest.description).toMatch(/random weights/i);
  });

  it('is byte-identical for the same seed and differs for another', () => {
    expect(Buffer.from(generateOnnxModel(kind, { seed: 1 }).bytes).equals(Buffer.from(model.bytes))).toBe(true);
    expect(Buffer.from(generateOnnxModel(kind, { seed: 2 }).bytes).equals(Buffer.from(model.bytes))).toBe(false);
  });
});

// The graph against a plain float64 forward pass over the same parameters: this is what shows the
// graph computes the architecture (token order, head split, residuals, GroupNorm groups, padding).
describe('onnxruntime agrees with the reference forward pass', () => {
  it('tiny ViT', async () => {
    const model = generateOnnxModel('vit-tiny', { seed: 3 });
    const image = images(1, 11);
    const onnx = (await run(model.bytes, image, 1)).data as Float32Array;
    const reference = vitReference(model.params, VIT_TINY, image);
    expect(onnx.length).toBe(reference.length);
    expect(maxAbsDiff(onnx, reference)).toBeLessThan(1e-4);
  });

  it('tiny BiT', async () => {
    const model = generateOnnxModel('bit-tiny', { seed: 3 });
    const image = images(1, 12);
    const onnx = (await run(model.bytes, image, 1)).data as Float32Array;
    const reference = bitReference(model.params, BIT_TINY, image);
    expect(onnx.length).toBe(reference.length);
    expect(maxAbsDiff(onnx, reference)).toBeLessThan(1e-4);
  });

  it('erf matches known values', () => {
    expect(erf(0)).toBe(0);
    expect(erf(0.5)).toBeCloseTo(0.5204998778130465, 14);
    expect(erf(-1)).toBeCloseTo(-0.8427007929497149, 14);
    expect(erf(2.9)).toBeCloseTo(0.9999589021219005, 13);
    expect(erf(3.5)).toBeCloseTo(0.9999992569016276, 6);
  });
});

describe('BiT weights', () => {
  it('are stored weight-standardised: each output channel has mean 0 and variance 1', () => {
    const { params } = generateOnnxModel('bit-tiny', { seed: 1 });
    const kernels = [...params].filter(([name]) => name.endsWith('.kernel'));
    expect(kernels.length).toBe(1 + 4 * 4); // root, then conv1-3 and a projection per unit
    for (const [, { dims, data }] of kernels) {
      const fanIn = data.length / dims[0]!;
      for (let o = 0; o < dims[0]!; o++) {
        const w = data.subarray(o * fanIn, (o + 1) * fanIn);
        const mean = w.reduce((a, v) => a + v, 0) / fanIn;
        const variance = w.reduce((a, v) => a + (v - mean) ** 2, 0) / fanIn;
        expect(Math.abs(mean)).toBeLessThan(1e-5);
        expect(variance).toBeCloseTo(1, 4);
      }
    }
  });
});

// The weight scales must keep activations finite through the full depth (12 blocks, 16 units / 50
// layers); full width adds nothing to that and costs seconds, so these run narrow.
describe('full depth at narrow width', () => {
  it.each([
    { family: 'vit', build: (g: GraphBuilder) => buildVit(g, { ...VIT_S16, width: 48 }, 'output_0'), shape: [2, 48] },
    { family: 'bit', build: (g: GraphBuilder) => buildBit(g, { ...BIT_R50X1, widthFactor: 1 / 8 }, 'output_0'), shape: [2, 7, 7, bitWidths({ ...BIT_R50X1, widthFactor: 1 / 8 }).out[3]!] },
  ])('$family stays finite and input-dependent', async ({ build, shape }) => {
    const g = new GraphBuilder(4);
    build(g);
    const graph = g.toGraph('deep', [{ name: 'input', shape: ['N', SIZE, SIZE, 3] }], [{ name: 'output_0', shape: ['N', ...shape.slice(1)] }]);
    const bytes = encodeModel({ irVersion: 10, opsetVersion: 21, producerName: 'test', producerVersion: '0', docString: '', graph });
    const data = (await run(bytes, images(2, 8), 2)).data as Float32Array;
    expect(data.every(Number.isFinite)).toBe(true);
    expect(maxAbsDiff(data.subarray(0, data.length / 2), data.subarray(data.length / 2))).toBeGreaterThan(0.05);
  });
});

describe('full-size parameter counts (dry run, no weights drawn)', () => {
  // Published sizes include a 1000-class ImageNet head; the generated models stop before it.
  it('ViT-S/16 has 22.05M parameters with a 1000-class head (timm vit_small_patch16_224)', () => {
    const head = 384 * 1000 + 1000;
    const count = countGeneratedParams('vit-s16');
    expect(count).toBe(21_665_664);
    expect(Math.abs(count + head - 22.05e6) / 22.05e6).toBeLessThan(0.01);
  });

  it('BiT-R50x1 has 23.5M parameters without its head (25.55M with a 1000-class head)', () => {
    const head = 2048 * 1000 + 1000;
    const count = countGeneratedParams('bit-r50x1');
    expect(Math.abs(count - 23.5e6) / 23.5e6).toBeLessThan(0.01);
    expect(Math.abs(count + head - 25.55e6) / 25.55e6).toBeLessThan(0.01);
  });
});

describe('writeGeneratedModels', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'generated-models-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes <id>.onnx and <id>.json that loadManifests reads', async () => {
    const written = await writeGeneratedModels(dir, ['vit-tiny', 'bit-tiny'], { seed: 5 });
    expect(written.map((w) => path.basename(w.onnxPath))).toEqual(['test-vit-tiny.onnx', 'test-bit-tiny.onnx']);
    const manifests = await loadManifests(dir);
    expect([...manifests.keys()].sort()).toEqual(['test-bit-tiny', 'test-vit-tiny']);
    const bytes = await readFile(written[0]!.onnxPath);
    expect(bytes.equals(Buffer.from(generateOnnxModel('vit-tiny', { seed: 5 }).bytes))).toBe(true);
  });
});
