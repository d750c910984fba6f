/**
 * BiT ResNet-v2 graph (Kolesnikov et al., "Big Transfer"), the backbone REMEDIS uses: NHWC input in
 * 0..1, weight-standardised 7x7/2 root conv, zero pad + 3x3/2 max pool, four stages of pre-activation
 * bottleneck units (GroupNorm + ReLU before each conv, stride on the 3x3 conv, a 1x1 projection
 * shortcut on each stage's first unit), final GroupNorm + ReLU, and the 7x7 feature map out as NHWC.
 *
 * Weight standardisation ((w - mean) / sqrt(var + 1e-10) per output channel, over cin*kh*kw) is done
 * once here, on the generated weights, instead of in the graph: a standardised conv computes
 * conv(x, standardise(w)), so storing standardise(w) is numerically the same model. This is also what
 * an exporter does with a trained BiT, whose weights are constants.
 */
import { attr, type GraphBuilder } from './graph.js';

export interface BitConfig {
  imageSizePx: number;
  /** Channel multiplier: 1 for R50x1, 2 for R152x2; 1/8 for the tiny test model. */
  widthFactor: number;
  /** Bottleneck units in each of the four stages: [3, 4, 6, 3] for R50. */
  unitsPerStage: readonly number[];
  /** GroupNorm groups (32 in BiT); a layer with fewer channels uses gcd(groups, channels). */
  groups: number;
  groupNormEps: number;
}

/** BiT-M R50x1: 23.5M parameters without the classification head. */
export const BIT_R50X1: BitConfig = { imageSizePx: 224, widthFactor: 1, unitsPerStage: [3, 4, 6, 3], groups: 32, groupNormEps: 1e-5 };
/** Same input contract and topology (one unit per stage, 1/8 width): [N, 7, 7, 256] out. */
export const BIT_TINY: BitConfig = { imageSizePx: 224, widthFactor: 1 / 8, unitsPerStage: [1, 1, 1, 1], groups: 32, groupNormEps: 1e-5 };

const WS_EPS = 1e-10;
const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

/** Groups a GroupNorm over `channels` uses. */
export function bitGroups(cfg: BitConfig, channels: number): number {
  return gcd(cfg.groups, channels);
}

/** Channel widths per stage: bottleneck (mid) and unit output. */
export function bitWidths(cfg: BitConfig): { root: number; mid: number[]; out: number[] } {
  const scaled = (c: number): number => {
    const v = c * cfg.widthFactor;
    if (!Number.isInteger(v) || v < 1) throw new Error(`width factor ${cfg.widthFactor} gives ${v} channels`);
    return v;
  };
  const stages = cfg.unitsPerStage.map((_, s) => 2 ** s);
  return { root: scaled(64), mid: stages.map((m) => scaled(64 * m)), out: stages.map((m) => scaled(256 * m)) };
}

/** Output side of a conv or pool: floor((in + pads - kernel) / stride) + 1. */
export const convOut = (inPx: number, kernel: number, stride: number, padTotal: number): number =>
  Math.floor((inPx + padTotal - kernel) / stride) + 1;

/** Per output channel: zero mean, unit (population) variance over its cin*kh*kw weights. */
export function standardiseWeights(data: Float32Array, outChannels: number): void {
  const fanIn = data.length / outChannels;
  for (let o = 0; o < outChannels; o++) {
    const w = data.subarray(o * fanIn, (o + 1) * fanIn);
    let mean = 0;
    for (const v of w) mean += v;
    mean /= fanIn;
    let variance = 0;
    for (const v of w) variance += (v - mean) ** 2;
    variance /= fanIn;
    const inv = 1 / Math.sqrt(variance + WS_EPS);
    for (let i = 0; i < fanIn; i++) w[i] = (w[i]! - mean) * inv;
  }
}

/** A bias-free weight-standardised conv with symmetric padding (k-1)/2, as BiT pads. */
function stdConv(g: GraphBuilder, x: string, name: string, cin: number, cout: number, kernel: number, stride: number): string {
  const w = g.param(`${name}.kernel`, [cout, cin, kernel, kernel], 1, 0, (d) => standardiseWeights(d, cout));
  const pad = (kernel - 1) / 2;
  return g.op('Conv', [x, w], {
    kernel_shape: attr.ints([kernel, kernel]),
    strides: attr.ints([stride, stride]),
    pads: attr.ints([pad, pad, pad, pad]),
  });
}

/**
 * GroupNorm over NCHW `x` ([N, C, side, side]) followed by ReLU: Reshape to [N, G, C/G*H*W] →
 * LayerNormalization over the last axis (unit gain, zero bias) → Reshape back → per-channel gain and
 * bias. Same arithmetic as GroupNormalization; chosen because onnxruntime 1.30's CPU kernels run it
 * fastest. Measured on [8, 256, 56, 56], 32 groups, 2 threads, best of 15: this 48 ms, tf2onnx's
 * Reshape → InstanceNormalization → Reshape 62 ms, opset-21 GroupNormalization (a function op that
 * onnxruntime expands) 93 ms, a bare Relu 11 ms; all three agree within 4e-6.
 */
function groupNormRelu(g: GraphBuilder, cfg: BitConfig, x: string, name: string, channels: number, sidePx: number): string {
  const groups = bitGroups(cfg, channels);
  const perGroup = (channels / groups) * sidePx * sidePx;
  const gamma = g.param(`${name}.scale`, [channels, 1, 1], 0.1, 1);
  const beta = g.param(`${name}.bias`, [channels, 1, 1], 0.02);
  const grouped = g.op('Reshape', [x, g.constInt64([3], [0, groups, -1])]);
  const unitGain = g.constFloat([perGroup], new Array<number>(perGroup).fill(1));
  const zeroBias = g.constFloat([perGroup], new Array<number>(perGroup).fill(0));
  const normed = g.op('LayerNormalization', [grouped, unitGain, zeroBias], { axis: attr.int(-1), epsilon: attr.float(cfg.groupNormEps) });
  const back = g.op('Reshape', [normed, g.constInt64([4], [0, channels, sidePx, sidePx])]);
  return g.op('Relu', [g.op('Add', [g.op('Mul', [back, gamma]), beta])]);
}

/**
 * BiT's zero pad 1 + 3x3/2 max pool (ConstantPad2d then MaxPool2d without padding). The zeros matter:
 * nothing before this pool is a ReLU, so a window of negative values pools to 0 at the border.
 * Written as Pad → MaxPool, onnxruntime 1.30's PadFusion folds the Pad into MaxPool's `pads`, which pad
 * with -inf, and the border changes (caught by reference.ts; onnxsim issue #290 is the same fold).
 * So: MaxPool with its own pads, then Max with a constant that is 0 where the window reaches into the
 * padding and -inf elsewhere, which is exactly max(window ∪ {0}) at the border and a no-op inside.
 */
function zeroPadMaxPool(g: GraphBuilder, x: string, sidePx: number): [string, number] {
  const outSide = convOut(sidePx, 3, 2, 2);
  const touchesPad = (o: number): boolean => o * 2 - 1 < 0 || o * 2 + 1 > sidePx - 1;
  const border: number[] = [];
  for (let oy = 0; oy < outSide; oy++) {
    for (let ox = 0; ox < outSide; ox++) border.push(touchesPad(oy) || touchesPad(ox) ? 0 : -Infinity);
  }
  const pooled = g.op('MaxPool', [x], { kernel_shape: attr.ints([3, 3]), strides: attr.ints([2, 2]), pads: attr.ints([1, 1, 1, 1]) });
  return [g.op('Max', [pooled, g.constFloat([1, 1, outSide, outSide], border)]), outSide];
}

/** One pre-activation bottleneck unit; returns its output and spatial side. */
function unit(g: GraphBuilder, cfg: BitConfig, x: string, cin: number, mid: number, cout: number, stride: number, sidePx: number): [string, number] {
  const pre = groupNormRelu(g, cfg, x, 'gn1', cin, sidePx);
  // The projection reads the pre-activated input, as in BiT (and ResNet-v2), not the raw residual.
  const shortcut = stride !== 1 || cin !== cout ? stdConv(g, pre, 'proj', cin, cout, 1, stride) : x;
  let y = stdConv(g, pre, 'conv1', cin, mid, 1, 1);
  y = stdConv(g, groupNormRelu(g, cfg, y, 'gn2', mid, sidePx), 'conv2', mid, mid, 3, stride);
  const outSide = convOut(sidePx, 3, stride, 2);
  y = stdConv(g, groupNormRelu(g, cfg, y, 'gn3', mid, outSide), 'conv3', mid, cout, 1, 1);
  return [g.op('Add', [y, shortcut]), outSide];
}

/**
 * Adds the BiT to `g`, reading graph input `input` [N, H, W, 3] and writing `outputName`
 * [N, H/32, W/32, C]. Parameter names (read by the reference forward pass): root.kernel,
 * stages.{s}.units.{u}.{gn1,gn2,gn3}.{scale,bias}, stages.{s}.units.{u}.{proj,conv1,conv2,conv3}.kernel,
 * head_norm.{scale,bias}. Returns the output's spatial side.
 */
export function buildBit(g: GraphBuilder, cfg: BitConfig, outputName: string): number {
  const widths = bitWidths(cfg);
  const nchw = g.op('Transpose', ['input'], { perm: attr.ints([0, 3, 1, 2]) });
  let x = stdConv(g, nchw, 'root', 3, widths.root, 7, 2);
  let side = convOut(cfg.imageSizePx, 7, 2, 6);
  [x, side] = zeroPadMaxPool(g, x, side);

  let cin = widths.root;
  cfg.unitsPerStage.forEach((units, s) => {
    for (let u = 0; u < units; u++) {
      const stride = s > 0 && u === 0 ? 2 : 1;
      [x, side] = g.within(`stages.${s}.units.${u}`, () => unit(g, cfg, x, cin, widths.mid[s]!, widths.out[s]!, stride, side));
      cin = widths.out[s]!;
    }
  });
  x = groupNormRelu(g, cfg, x, 'head_norm', cin, side);
  g.op('Transpose', [x], { perm: attr.ints([0, 2, 3, 1]) }, outputName);
  return side;
}
