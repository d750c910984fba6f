/**
 * Test fixture: writes a tiny TF.js graph model (model.json + weight shards) shaped like what
 * `tensorflowjs_converter --input_format=tf_saved_model` makes of Path Foundation: a float placeholder
 * `input` [-1,size,size,3], a signature, and an Identity output keyed `output_0`. The network is a
 * 16x16/16 convolution + bias + ReLU, then either Mean over H,W and a MatMul (`pooled`, [N,dim]) or
 * the ReLU map itself (`spatial`, [N,H,W,C] or [N,C,H,W]). `reference` computes the same thing with
 * plain loops over the same weights, so tests check the adapter against arithmetic, not against TF.js.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { mulberry32 } from '../generate/graph.js';

export interface TinyModelOptions {
  /** pooled: [N, dim] through Mean + MatMul; spatial: the ReLU feature map, for a mean-hw manifest. */
  output: 'pooled' | 'spatial';
  /** Placeholder layout; NCHW graphs transpose to NHWC first, as converted PyTorch-style models do. */
  inputLayout?: 'NHWC' | 'NCHW';
  /** Layout of the spatial output. */
  outputLayout?: 'NHWC' | 'NCHW';
  /** Adds Switch/Merge (control flow), so that the graph only runs with executeAsync. */
  controlFlow?: boolean;
  /** Patch side; a multiple of 16. @default 224 */
  sizePx?: number;
  /** Weight shards the bytes are split over (the converter cuts at 4 MB, mid-weight). @default 2 */
  shards?: number;
  seed?: number;
}

export interface TinyModel {
  /** model.json, relative to the folder given to writeTinyGraphModel. */
  file: string;
  dim: number;
  /** Embeddings ([N, dim], spatial maps mean-pooled) of `count` normalised NHWC patches. */
  reference(input: Float64Array, count: number): Float64Array;
}

const KERNEL = 16;
const CHANNELS = 8;
const DENSE = 6;

/** The generator's seeded PRNG: the same seed gives the same weights. */
export const seededRandom = mulberry32;

type Weight = { name: string; shape: number[]; dtype: 'float32' | 'int32' | 'bool'; data: Float32Array | Int32Array | Uint8Array };

// GraphDef JSON as protobuf's JSON mapping writes it: strings base64, int64 as strings.
const str = (s: string) => ({ s: Buffer.from(s).toString('base64') });
const ints = (values: number[]) => ({ list: { i: values.map(String) } });
const dtype = (type: string) => ({ type });
const shapeAttr = (dims: number[]) => ({ shape: { dim: dims.map((d) => ({ size: String(d) })) } });
const DTYPES = { float32: 'DT_FLOAT', int32: 'DT_INT32', bool: 'DT_BOOL' } as const;

function constNode(w: Weight) {
  return {
    name: w.name,
    op: 'Const',
    attr: { dtype: dtype(DTYPES[w.dtype]), value: { tensor: { dtype: DTYPES[w.dtype], tensorShape: shapeAttr(w.shape).shape } } },
  };
}

export async function writeTinyGraphModel(dir: string, options: TinyModelOptions): Promise<TinyModel> {
  const size = options.sizePx ?? 224;
  const inputLayout = options.inputLayout ?? 'NHWC';
  const outputLayout = options.outputLayout ?? 'NHWC';
  const random = seededRandom(options.seed ?? 1);
  const uniform = (n: number, scale: number) => Float32Array.from({ length: n }, () => (random() * 2 - 1) * scale);
  // HWIO, as TF stores Conv2D filters.
  const kernel = uniform(KERNEL * KERNEL * 3 * CHANNELS, 0.05);
  const bias = uniform(CHANNELS, 0.1);
  const dense = uniform(CHANNELS * DENSE, 1);

  const weights: Weight[] = [
    { name: 'conv/kernel', shape: [KERNEL, KERNEL, 3, CHANNELS], dtype: 'float32', data: kernel },
    { name: 'conv/bias', shape: [CHANNELS], dtype: 'float32', data: bias },
  ];
  const F = { T: dtype('DT_FLOAT') };
  const nodes: object[] = [
    { name: 'input', op: 'Placeholder', attr: { dtype: dtype('DT_FLOAT'), shape: shapeAttr(inputLayout === 'NHWC' ? [-1, size, size, 3] : [-1, 3, size, size]) } },
  ];
  let x = 'input';
  if (inputLayout === 'NCHW') {
    weights.push({ name: 'to_nhwc/perm', shape: [4], dtype: 'int32', data: Int32Array.of(0, 2, 3, 1) });
    nodes.push({ name: 'to_nhwc', op: 'Transpose', input: [x, 'to_nhwc/perm'], attr: { ...F, Tperm: dtype('DT_INT32') } });
    x = 'to_nhwc';
  }
  nodes.push(
    {
      name: 'conv/Conv2D',
      op: 'Conv2D',
      input: [x, 'conv/kernel'],
      attr: { ...F, strides: ints([1, KERNEL, KERNEL, 1]), dilations: ints([1, 1, 1, 1]), padding: str('VALID'), data_format: str('NHWC') },
    },
    { name: 'conv/BiasAdd', op: 'BiasAdd', input: ['conv/Conv2D', 'conv/bias'], attr: { ...F, data_format: str('NHWC') } },
    { name: 'conv/Relu', op: 'Relu', input: ['conv/BiasAdd'], attr: F },
  );
  x = 'conv/Relu';
  if (options.output === 'pooled') {
    weights.push({ name: 'pool/axes', shape: [2], dtype: 'int32', data: Int32Array.of(1, 2) });
    weights.push({ name: 'dense/kernel', shape: [CHANNELS, DENSE], dtype: 'float32', data: dense });
    nodes.push(
      { name: 'pool/Mean', op: 'Mean', input: [x, 'pool/axes'], attr: { ...F, Tidx: dtype('DT_INT32'), keep_dims: { b: false } } },
      { name: 'dense/MatMul', op: 'MatMul', input: ['pool/Mean', 'dense/kernel'], attr: { ...F, transpose_a: { b: false }, transpose_b: { b: false } } },
    );
    x = 'dense/MatMul';
  } else if (outputLayout === 'NCHW') {
    weights.push({ name: 'to_nchw/perm', shape: [4], dtype: 'int32', data: Int32Array.of(0, 3, 1, 2) });
    nodes.push({ name: 'to_nchw', op: 'Transpose', input: [x, 'to_nchw/perm'], attr: { ...F, Tperm: dtype('DT_INT32') } });
    x = 'to_nchw';
  }
  if (options.controlFlow) {
    weights.push({ name: 'cond/pred', shape: [], dtype: 'bool', data: Uint8Array.of(1) });
    nodes.push(
      { name: 'cond/Switch', op: 'Switch', input: [x, 'cond/pred'], attr: F },
      { name: 'cond/Merge', op: 'Merge', input: ['cond/Switch:1'], attr: { ...F, N: { i: '1' } } },
    );
    x = 'cond/Merge';
  }
  nodes.push({ name: 'Identity', op: 'Identity', input: [x], attr: F });
  // A second output, so that tests can pick an output by name (the spatial map of the pooled graph).
  nodes.push({ name: 'Identity_1', op: 'Identity', input: ['conv/Relu'], attr: F });
  nodes.splice(1, 0, ...weights.map(constNode));

  const bytes = Buffer.concat(weights.map((w) => Buffer.from(w.data.buffer, w.data.byteOffset, w.data.byteLength)));
  const shardCount = Math.max(1, options.shards ?? 2);
  const shardSize = Math.ceil(bytes.length / shardCount);
  const paths: string[] = [];
  await mkdir(dir, { recursive: true });
  for (let i = 0; i < shardCount; i++) {
    const name = `group1-shard${i + 1}of${shardCount}.bin`;
    await writeFile(path.join(dir, name), bytes.subarray(i * shardSize, (i + 1) * shardSize));
    paths.push(name);
  }
  const tensorInfo = (name: string) => ({ name, dtype: 'DT_FLOAT' });
  const modelJson = {
    format: 'graph-model',
    generatedBy: '2.15.0',
    convertedBy: 'hand-written test fixture',
    signature: {
      inputs: { input: tensorInfo('input:0') },
      outputs: { output_0: tensorInfo('Identity:0'), feature_map: tensorInfo('Identity_1:0') },
    },
    modelTopology: { node: nodes, library: {}, versions: { producer: 1645 } },
    weightsManifest: [{ paths, weights: weights.map(({ name, shape, dtype }) => ({ name, shape, dtype })) }],
  };
  await writeFile(path.join(dir, 'model.json'), JSON.stringify(modelJson));

  const cells = size / KERNEL;
  return {
    file: 'model.json',
    dim: options.output === 'pooled' ? DENSE : CHANNELS,
    reference(input, count) {
      const out = new Float64Array(count * (options.output === 'pooled' ? DENSE : CHANNELS));
      const mean = new Float64Array(CHANNELS);
      for (let n = 0; n < count; n++) {
        mean.fill(0);
        for (let cy = 0; cy < cells; cy++) {
          for (let cx = 0; cx < cells; cx++) {
            for (let c = 0; c < CHANNELS; c++) {
              let sum = bias[c]!;
              for (let ky = 0; ky < KERNEL; ky++) {
                for (let kx = 0; kx < KERNEL; kx++) {
                  const at = ((n * size + cy * KERNEL + ky) * size + cx * KERNEL + kx) * 3;
                  const k = ((ky * KERNEL + kx) * 3) * CHANNELS + c;
                  sum += input[at]! * kernel[k]! + input[at + 1]! * kernel[k + CHANNELS]! + input[at + 2]! * kernel[k + 2 * CHANNELS]!;
                }
              }
              mean[c]! += Math.max(0, sum) / (cells * cells);
            }
          }
        }
        if (options.output === 'pooled') {
          for (let d = 0; d < DENSE; d++) {
            let sum = 0;
            for (let c = 0; c < CHANNELS; c++) sum += mean[c]! * dense[c * DENSE + d]!;
            out[n * DENSE + d] = sum;
          }
        } else {
          out.set(mean, n * CHANNELS);
        }
      }
      return out;
    },
  };
}
