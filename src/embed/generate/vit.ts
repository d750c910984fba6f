/**
 * Vision Transformer graph, laid out as Google's Path Foundation (ViT-S/16) is: NHWC input in 0..1,
 * 16x16 patch embedding, class token, learned position embedding, pre-norm blocks, final
 * LayerNormalization, and the class token as the embedding.
 *
 * Weights are random. Their scales keep activations in a trained model's range (Xavier for dense
 * layers, 0.02 for embeddings), and norms and biases are drawn around 1 and 0 rather than set to
 * exactly 1 and 0 so that a wiring mistake (a swapped gain, a bias added twice) changes the output
 * and the reference forward pass in reference.ts can catch it.
 */
import { attr, type GraphBuilder } from './graph.js';

export interface VitConfig {
  imageSizePx: number;
  patchSizePx: number;
  /** Token width (embedding dim). */
  width: number;
  depth: number;
  heads: number;
  /** MLP hidden width = mlpRatio * width. */
  mlpRatio: number;
  /** big_vision / Scenic use 1e-6. */
  layerNormEps: number;
}

/** ViT-S/16 as in Path Foundation: 22M parameters with a 1000-class head, 21.7M without. */
export const VIT_S16: VitConfig = { imageSizePx: 224, patchSizePx: 16, width: 384, depth: 12, heads: 6, mlpRatio: 4, layerNormEps: 1e-6 };
/** Same input contract, a few thousand times cheaper: for tests. */
export const VIT_TINY: VitConfig = { imageSizePx: 224, patchSizePx: 16, width: 32, depth: 2, heads: 2, mlpRatio: 4, layerNormEps: 1e-6 };

export function vitTokens(cfg: VitConfig): number {
  const side = cfg.imageSizePx / cfg.patchSizePx;
  if (!Number.isInteger(side)) throw new Error(`image ${cfg.imageSizePx}px is not a whole number of ${cfg.patchSizePx}px patches`);
  return side * side + 1;
}

const xavierStd = (fanIn: number, fanOut: number): number => Math.sqrt(2 / (fanIn + fanOut));

/** y = x W + b with W [inDim, outDim] (TF's Dense kernel layout, so MatMul needs no transpose). */
function dense(g: GraphBuilder, x: string, name: string, inDim: number, outDim: number): string {
  const [w, b] = g.within(name, () => [g.param('kernel', [inDim, outDim], xavierStd(inDim, outDim)), g.param('bias', [outDim], 0.02)] as const);
  return g.op('Add', [g.op('MatMul', [x, w]), b]);
}

function layerNorm(g: GraphBuilder, x: string, name: string, width: number, eps: number): string {
  const [gamma, beta] = g.within(name, () => [g.param('scale', [width], 0.1, 1), g.param('bias', [width], 0.02)] as const);
  return g.op('LayerNormalization', [x, gamma, beta], { axis: attr.int(-1), epsilon: attr.float(eps) });
}

/** Exact (erf) GELU as the opset-20 Gelu op; onnxruntime 1.30 runs it on CPU (fused with the bias add into BiasGelu). */
function gelu(g: GraphBuilder, x: string): string {
  return g.op('Gelu', [x], { approximate: attr.string('none') });
}

/** Multi-head self-attention over [N, T, width]: fused QKV projection, softmax(q kᵀ / √d) v, output projection. */
function attention(g: GraphBuilder, x: string, cfg: VitConfig): string {
  const { width, heads } = cfg;
  const headDim = width / heads;
  if (!Number.isInteger(headDim)) throw new Error(`width ${width} does not split into ${heads} heads`);
  const qkv = dense(g, x, 'qkv', width, 3 * width); // [N, T, 3*width], q then k then v
  // Reshape's 0 copies N and T from the input, so the batch stays symbolic.
  const split = g.op('Reshape', [qkv, g.constInt64([5], [0, 0, 3, heads, headDim])]); // [N, T, 3, h, d]
  const part = (i: number): string => g.op('Gather', [split, g.constInt64([], [i])], { axis: attr.int(2) }); // [N, T, h, d]
  const q = g.op('Transpose', [part(0)], { perm: attr.ints([0, 2, 1, 3]) }); // [N, h, T, d]
  const kT = g.op('Transpose', [part(1)], { perm: attr.ints([0, 2, 3, 1]) }); // [N, h, d, T]
  const v = g.op('Transpose', [part(2)], { perm: attr.ints([0, 2, 1, 3]) }); // [N, h, T, d]
  const scores = g.op('Mul', [g.op('MatMul', [q, kT]), g.constFloat([], [1 / Math.sqrt(headDim)])]); // [N, h, T, T]
  const weights = g.op('Softmax', [scores], { axis: attr.int(-1) });
  const mixed = g.op('Transpose', [g.op('MatMul', [weights, v])], { perm: attr.ints([0, 2, 1, 3]) }); // [N, T, h, d]
  const merged = g.op('Reshape', [mixed, g.constInt64([3], [0, 0, width])]); // [N, T, width]
  return dense(g, merged, 'out', width, width);
}

/**
 * Adds the ViT to `g`, reading graph input `input` [N, H, W, 3] and writing `outputName` [N, width].
 * Parameter names (read by the reference forward pass): embedding.kernel [width,3,P,P],
 * embedding.bias, cls [1,1,width], pos_embedding [1,T,width], blocks.{i}.{ln1,qkv,out,ln2,mlp1,mlp2}.{…},
 * encoder_norm.{scale,bias}.
 */
export function buildVit(g: GraphBuilder, cfg: VitConfig, outputName: string): void {
  const { width, patchSizePx: p } = cfg;
  const tokens = vitTokens(cfg);
  const nchw = g.op('Transpose', ['input'], { perm: attr.ints([0, 3, 1, 2]) });
  // LeCun-normal on the patch kernel: the input is 0..1, not centred, so this keeps token scale near 1.
  const kernel = g.param('embedding.kernel', [width, 3, p, p], Math.sqrt(1 / (3 * p * p)));
  const patches = g.op('Conv', [nchw, kernel, g.param('embedding.bias', [width], 0.02)], {
    kernel_shape: attr.ints([p, p]),
    strides: attr.ints([p, p]),
  }); // [N, width, H/P, W/P]
  const flat = g.op('Reshape', [patches, g.constInt64([3], [0, width, -1])]); // [N, width, T-1]
  const patchTokens = g.op('Transpose', [flat], { perm: attr.ints([0, 2, 1]) }); // [N, T-1, width]

  // The class token is one parameter broadcast to the batch: Expand to [N, 1, width].
  const batch = g.op('Shape', ['input'], { start: attr.int(0), end: attr.int(1) }); // [N]
  const expandTo = g.op('Concat', [batch, g.constInt64([2], [1, 1])], { axis: attr.int(0) }); // [N, 1, 1]
  const cls = g.op('Expand', [g.param('cls', [1, 1, width], 0.02), expandTo]);
  let h = g.op('Concat', [cls, patchTokens], { axis: attr.int(1) }); // [N, T, width]
  h = g.op('Add', [h, g.param('pos_embedding', [1, tokens, width], 0.02)]);

  for (let i = 0; i < cfg.depth; i++) {
    g.scope = `blocks.${i}`;
    h = g.op('Add', [h, attention(g, layerNorm(g, h, 'ln1', width, cfg.layerNormEps), cfg)]);
    const hidden = gelu(g, dense(g, layerNorm(g, h, 'ln2', width, cfg.layerNormEps), 'mlp1', width, cfg.mlpRatio * width));
    h = g.op('Add', [h, dense(g, hidden, 'mlp2', cfg.mlpRatio * width, width)]);
  }
  g.scope = '';
  h = layerNorm(g, h, 'encoder_norm', width, cfg.layerNormEps);
  g.op('Gather', [h, g.constInt64([], [0])], { axis: attr.int(1) }, outputName); // class token: [N, width]
}
