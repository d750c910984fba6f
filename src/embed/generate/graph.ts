/**
 * Builds an ONNX graph node by node with seeded random weights. The same seed gives the same bytes:
 * weights come from one PRNG stream drawn in build order, and names come from counters, never from
 * time or Math.random.
 *
 * A builder made without a seed is a dry run: it records every parameter's shape (for counting) but
 * allocates and draws nothing, so the full-size models can be counted in milliseconds.
 */
import type { AttributeSpec, GraphSpec, NodeSpec, TensorSpec, ValueInfoSpec } from './onnx-proto.js';

/** mulberry32: a small, fast 32-bit PRNG; uniform in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Fills `out` with N(0, 1) samples by Box-Muller, both values of each pair used. */
export function fillStandardNormal(uniform: () => number, out: Float32Array): void {
  for (let i = 0; i < out.length; i += 2) {
    const u1 = 1 - uniform(); // (0, 1]: log(0) must not happen
    const u2 = uniform();
    const r = Math.sqrt(-2 * Math.log(u1));
    out[i] = r * Math.cos(2 * Math.PI * u2);
    if (i + 1 < out.length) out[i + 1] = r * Math.sin(2 * Math.PI * u2);
  }
}

// Attribute shorthands, so that model code reads like the operator docs.
export const attr = {
  int: (value: number) => ({ kind: 'int', value }) as const,
  float: (value: number) => ({ kind: 'float', value }) as const,
  ints: (value: readonly number[]) => ({ kind: 'ints', value }) as const,
  floats: (value: readonly number[]) => ({ kind: 'floats', value }) as const,
  string: (value: string) => ({ kind: 'string', value }) as const,
};
export type Attrs = Record<string, { kind: AttributeSpec['kind']; value: number | string | readonly number[] }>;

/** A trained parameter: its shape and (when not a dry run) its values, by initializer name. */
export interface Param {
  dims: readonly number[];
  data: Float32Array;
}

export const product = (dims: readonly number[]): number => dims.reduce((a, b) => a * b, 1);

export class GraphBuilder {
  readonly nodes: NodeSpec[] = [];
  readonly initializers: TensorSpec[] = [];
  /** Trained parameters only (not shape constants), in build order. */
  readonly params = new Map<string, Param>();
  /** Prefix of the next names, e.g. 'blocks.3.attn'; set by the model code as it goes. */
  scope = '';
  private readonly uniform: (() => number) | null;
  private counter = 0;
  private readonly constants = new Map<string, string>();

  constructor(seed: number | null) {
    this.uniform = seed === null ? null : mulberry32(seed);
  }

  get dryRun(): boolean {
    return this.uniform === null;
  }

  get paramCount(): number {
    let n = 0;
    for (const p of this.params.values()) n += product(p.dims);
    return n;
  }

  private scoped(name: string): string {
    return this.scope ? `${this.scope}.${name}` : name;
  }

  /** Runs `build` with `name` appended to the scope, e.g. 'blocks.3' + 'qkv' → 'blocks.3.qkv'. */
  within<T>(name: string, build: () => T): T {
    const outer = this.scope;
    this.scope = this.scoped(name);
    try {
      return build();
    } finally {
      this.scope = outer;
    }
  }

  /**
   * A trained float parameter: mean + std * N(0,1), then `transform` (e.g. weight standardisation).
   * Returns its initializer name.
   */
  param(name: string, dims: readonly number[], std: number, mean = 0, transform?: (data: Float32Array) => void): string {
    const full = this.scoped(name);
    if (this.params.has(full)) throw new Error(`parameter ${full} defined twice`);
    const data = new Float32Array(this.uniform ? product(dims) : 0);
    if (this.uniform) {
      fillStandardNormal(this.uniform, data);
      for (let i = 0; i < data.length; i++) data[i] = mean + std * data[i]!;
      transform?.(data);
      this.initializers.push({ name: full, dims, dataType: 'float', data });
    }
    this.params.set(full, { dims, data });
    return full;
  }

  /** A fixed float constant (not a parameter), shared by value: e.g. a scale or GroupNorm's unit gains. */
  constFloat(dims: readonly number[], values: readonly number[]): string {
    return this.constant('float', dims, values);
  }

  /** A fixed int64 constant (shapes, axes, indices); a scalar when `dims` is []. */
  constInt64(dims: readonly number[], values: readonly number[]): string {
    return this.constant('int64', dims, values);
  }

  private constant(dataType: 'float' | 'int64', dims: readonly number[], values: readonly number[]): string {
    if (values.length !== product(dims)) throw new Error(`constant of shape [${dims}] given ${values.length} values`);
    const key = `${dataType}[${dims}]=${values}`;
    const known = this.constants.get(key);
    if (known) return known;
    const name = `const.${dataType}.${this.constants.size}`;
    this.constants.set(key, name);
    if (!this.dryRun) {
      this.initializers.push(
        dataType === 'float'
          ? { name, dims, dataType, data: Float32Array.from(values) }
          : { name, dims, dataType, data: [...values] },
      );
    }
    return name;
  }

  /** Adds one node; returns its output name (`outputName` when given, e.g. the graph output). */
  op(opType: string, inputs: readonly string[], attrs: Attrs = {}, outputName?: string): string {
    const name = this.scoped(`${opType}_${this.counter++}`);
    const output = outputName ?? name;
    const attributes = Object.entries(attrs).map(([key, a]) => ({ name: key, ...a }) as AttributeSpec);
    this.nodes.push({ opType, name, inputs, outputs: [output], attributes });
    return output;
  }

  toGraph(name: string, inputs: readonly ValueInfoSpec[], outputs: readonly ValueInfoSpec[]): GraphSpec {
    if (this.dryRun) throw new Error('a dry-run builder has no weights to serialise');
    return { name, nodes: this.nodes, initializers: this.initializers, inputs, outputs };
  }
}
