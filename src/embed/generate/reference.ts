/**
 * Straightforward float64 forward passes of the generated ViT and BiT over the same parameters, written
 * from the architectures, not from the graphs. When onnxruntime's output matches these, the graph wires
 * what we think it wires (layouts, head split, token order, residuals, GroupNorm groups, padding).
 * Loops are naive on purpose: only the tiny models are run through them, one image at a time.
 */
import { bitGroups, bitWidths, convOut, type BitConfig } from './bit.js';
import type { Param } from './graph.js';
import type { VitConfig } from './vit.js';

type Params = ReadonlyMap<string, Param>;

function get(params: Params, name: string): Float32Array {
  const p = params.get(name);
  if (!p) throw new Error(`no parameter ${name}`);
  return p.data;
}

/** erf to ~1e-15 below |x| = 3 (Maclaurin series), ~1e-7 above (Abramowitz & Stegun 7.1.26), where erf ≈ ±1 anyway. */
export function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax < 3) {
    let term = x;
    let sum = x;
    for (let n = 1; n < 100 && Math.abs(term) > 1e-17 * Math.abs(sum); n++) {
      term *= (-x * x) / n;
      sum += term / (2 * n + 1);
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  }
  const t = 1 / (1 + 0.3275911 * ax);
  const poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  return Math.sign(x) * (1 - poly * Math.exp(-ax * ax));
}

/** Normalises `v` in place (population variance), then applies gain and bias. */
function normalise(v: Float64Array, eps: number, gain: (i: number) => number, bias: (i: number) => number): void {
  let mean = 0;
  for (const a of v) mean += a;
  mean /= v.length;
  let variance = 0;
  for (const a of v) variance += (a - mean) ** 2;
  const inv = 1 / Math.sqrt(variance / v.length + eps);
  for (let i = 0; i < v.length; i++) v[i] = (v[i]! - mean) * inv * gain(i) + bias(i);
}

/** x [rows, inDim] · kernel [inDim, outDim] + bias. */
function dense(x: Float64Array[], kernel: Float32Array, bias: Float32Array): Float64Array[] {
  const outDim = bias.length;
  return x.map((row) => {
    const out = Float64Array.from(bias);
    row.forEach((a, i) => {
      for (let o = 0; o < outDim; o++) out[o]! += a * kernel[i * outDim + o]!;
    });
    return out;
  });
}

/** ViT class-token embedding [width] of one HWC image (values 0..1). */
export function vitReference(params: Params, cfg: VitConfig, imageHwc: Float32Array): Float64Array {
  const { width, patchSizePx: p, imageSizePx: size, heads } = cfg;
  const side = size / p;
  const headDim = width / heads;
  const kernel = get(params, 'embedding.kernel'); // [width, 3, p, p]
  const tokens: Float64Array[] = [Float64Array.from(get(params, 'cls'))];
  for (let py = 0; py < side; py++) {
    for (let px = 0; px < side; px++) {
      const t = Float64Array.from(get(params, 'embedding.bias'));
      for (let o = 0; o < width; o++) {
        for (let c = 0; c < 3; c++) {
          for (let ky = 0; ky < p; ky++) {
            for (let kx = 0; kx < p; kx++) {
              t[o]! += kernel[((o * 3 + c) * p + ky) * p + kx]! * imageHwc[((py * p + ky) * size + px * p + kx) * 3 + c]!;
            }
          }
        }
      }
      tokens.push(t);
    }
  }
  const pos = get(params, 'pos_embedding');
  tokens.forEach((t, i) => t.forEach((_, d) => (t[d]! += pos[i * width + d]!)));

  const layerNorm = (x: Float64Array[], name: string): Float64Array[] => {
    const gain = get(params, `${name}.scale`);
    const bias = get(params, `${name}.bias`);
    return x.map((row) => {
      const y = Float64Array.from(row);
      normalise(y, cfg.layerNormEps, (i) => gain[i]!, (i) => bias[i]!);
      return y;
    });
  };
  const layer = (name: string, x: Float64Array[]): Float64Array[] => dense(x, get(params, `${name}.kernel`), get(params, `${name}.bias`));

  let h = tokens;
  for (let b = 0; b < cfg.depth; b++) {
    const at = `blocks.${b}`;
    const qkv = layer(`${at}.qkv`, layerNorm(h, `${at}.ln1`)); // per token: q | k | v, each heads x headDim
    const mixed = h.map(() => new Float64Array(width));
    for (let hd = 0; hd < heads; hd++) {
      const q = (t: number, d: number): number => qkv[t]![hd * headDim + d]!;
      const k = (t: number, d: number): number => qkv[t]![width + hd * headDim + d]!;
      const v = (t: number, d: number): number => qkv[t]![2 * width + hd * headDim + d]!;
      for (let i = 0; i < h.length; i++) {
        const scores = h.map((_, j) => {
          let s = 0;
          for (let d = 0; d < headDim; d++) s += q(i, d) * k(j, d);
          return s / Math.sqrt(headDim);
        });
        const max = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - max));
        const total = e.reduce((a, c) => a + c, 0);
        for (let j = 0; j < h.length; j++) {
          for (let d = 0; d < headDim; d++) mixed[i]![hd * headDim + d]! += (e[j]! / total) * v(j, d);
        }
      }
    }
    const attnOut = layer(`${at}.out`, mixed);
    h = h.map((row, i) => row.map((a, d) => a + attnOut[i]![d]!));
    const hidden = layer(`${at}.mlp1`, layerNorm(h, `${at}.ln2`)).map((row) => row.map((a) => 0.5 * a * (1 + erf(a / Math.SQRT2))));
    const mlpOut = layer(`${at}.mlp2`, hidden);
    h = h.map((row, i) => row.map((a, d) => a + mlpOut[i]![d]!));
  }
  return layerNorm([h[0]!], 'encoder_norm')[0]!;
}

/** A CHW feature map. */
interface Map3 {
  c: number;
  side: number;
  data: Float64Array;
}

/** Cross-correlation (what Conv computes), no bias, zero padding `pad` on every side. */
function conv(x: Map3, w: Float32Array, cout: number, k: number, stride: number, pad: number): Map3 {
  const side = convOut(x.side, k, stride, 2 * pad);
  const data = new Float64Array(cout * side * side);
  for (let o = 0; o < cout; o++) {
    for (let oy = 0; oy < side; oy++) {
      for (let ox = 0; ox < side; ox++) {
        let s = 0;
        for (let c = 0; c < x.c; c++) {
          for (let ky = 0; ky < k; ky++) {
            const iy = oy * stride + ky - pad;
            if (iy < 0 || iy >= x.side) continue;
            for (let kx = 0; kx < k; kx++) {
              const ix = ox * stride + kx - pad;
              if (ix < 0 || ix >= x.side) continue;
              s += w[((o * x.c + c) * k + ky) * k + kx]! * x.data[(c * x.side + iy) * x.side + ix]!;
            }
          }
        }
        data[(o * side + oy) * side + ox] = s;
      }
    }
  }
  return { c: cout, side, data };
}

function groupNormRelu(params: Params, cfg: BitConfig, x: Map3, name: string): Map3 {
  const gain = get(params, `${name}.scale`);
  const bias = get(params, `${name}.bias`);
  const groups = bitGroups(cfg, x.c);
  const plane = x.side * x.side;
  const perGroup = (x.c / groups) * plane;
  const data = Float64Array.from(x.data);
  for (let g = 0; g < groups; g++) {
    // Group g holds channels g*C/G .. (g+1)*C/G - 1, contiguous in CHW.
    const slice = data.subarray(g * perGroup, (g + 1) * perGroup);
    const channel = (i: number): number => g * (x.c / groups) + Math.floor(i / plane);
    normalise(slice, cfg.groupNormEps, (i) => gain[channel(i)]!, (i) => bias[channel(i)]!);
  }
  return { ...x, data: data.map((v) => Math.max(0, v)) };
}

/** BiT feature map of one HWC image (values 0..1), returned as HWC like the graph's output. */
export function bitReference(params: Params, cfg: BitConfig, imageHwc: Float32Array): Float64Array {
  const size = cfg.imageSizePx;
  const widths = bitWidths(cfg);
  const chw = new Float64Array(3 * size * size);
  for (let i = 0; i < size * size; i++) for (let c = 0; c < 3; c++) chw[c * size * size + i] = imageHwc[i * 3 + c]!;
  let x = conv({ c: 3, side: size, data: chw }, get(params, 'root.kernel'), widths.root, 7, 2, 3);
  // Zero pad 1, then 3x3/2 max pool without padding: the zeros take part in the max.
  const pooledSide = convOut(x.side, 3, 2, 2);
  const pooled = new Float64Array(x.c * pooledSide * pooledSide);
  for (let c = 0; c < x.c; c++) {
    for (let oy = 0; oy < pooledSide; oy++) {
      for (let ox = 0; ox < pooledSide; ox++) {
        let m = -Infinity;
        for (let ky = 0; ky < 3; ky++) {
          for (let kx = 0; kx < 3; kx++) {
            const iy = oy * 2 + ky - 1;
            const ix = ox * 2 + kx - 1;
            const inside = iy >= 0 && iy < x.side && ix >= 0 && ix < x.side;
            m = Math.max(m, inside ? x.data[(c * x.side + iy) * x.side + ix]! : 0);
          }
        }
        pooled[(c * pooledSide + oy) * pooledSide + ox] = m;
      }
    }
  }
  x = { c: x.c, side: pooledSide, data: pooled };

  cfg.unitsPerStage.forEach((units, s) => {
    const mid = widths.mid[s]!;
    const cout = widths.out[s]!;
    for (let u = 0; u < units; u++) {
      const at = `stages.${s}.units.${u}`;
      const stride = s > 0 && u === 0 ? 2 : 1;
      const pre = groupNormRelu(params, cfg, x, `${at}.gn1`);
      const shortcut = stride !== 1 || x.c !== cout ? conv(pre, get(params, `${at}.proj.kernel`), cout, 1, stride, 0) : x;
      let y = conv(pre, get(params, `${at}.conv1.kernel`), mid, 1, 1, 0);
      y = conv(groupNormRelu(params, cfg, y, `${at}.gn2`), get(params, `${at}.conv2.kernel`), mid, 3, stride, 1);
      y = conv(groupNormRelu(params, cfg, y, `${at}.gn3`), get(params, `${at}.conv3.kernel`), cout, 1, 1, 0);
      x = { c: cout, side: y.side, data: y.data.map((v, i) => v + shortcut.data[i]!) };
    }
  });
  x = groupNormRelu(params, cfg, x, 'head_norm');
  const hwc = new Float64Array(x.data.length);
  const plane = x.side * x.side;
  for (let c = 0; c < x.c; c++) for (let i = 0; i < plane; i++) hwc[i * x.c + c] = x.data[c * plane + i]!;
  return hwc;
}
