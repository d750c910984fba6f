/**
 * A minimal protobuf writer for the part of onnx.proto (proto2, package onnx) that a plain inference
 * graph needs: ModelProto, GraphProto, NodeProto, AttributeProto, TensorProto and ValueInfoProto.
 * Written here rather than taken from npm because the protobufjs-based ONNX packages are stale and we
 * only ever write, never read. Field numbers are quoted from onnx.proto next to each use.
 *
 * Large tensors are never copied while encoding: a message is a list of chunks, and raw_data chunks
 * are the caller's Float32Array bytes; `encodeModel` concatenates once at the end.
 */
import { endianness } from 'node:os';

const WIRE_VARINT = 0;
const WIRE_FIXED32 = 5;
const WIRE_LEN = 2;

/** Appends protobuf fields to a growing list of byte chunks. */
export class ProtoWriter {
  private readonly chunks: Uint8Array[] = [];
  /** Small bytes (tags, varints) pending before the next chunk. */
  private pending: number[] = [];
  private flushedBytes = 0;

  get byteLength(): number {
    return this.flushedBytes + this.pending.length;
  }

  /** Varint of a non-negative safe integer, or of a negative one as its 64-bit two's complement (10 bytes). */
  private varint(value: number): void {
    if (!Number.isSafeInteger(value)) throw new RangeError(`varint: ${value} is not a safe integer`);
    if (value < 0) {
      let v = BigInt.asUintN(64, BigInt(value));
      while (v > 0x7fn) {
        this.pending.push(Number(v & 0x7fn) | 0x80);
        v >>= 7n;
      }
      this.pending.push(Number(v));
      return;
    }
    // Division rather than >>> because values above 2^32 (int64 dims, byte lengths) must survive.
    while (value > 0x7f) {
      this.pending.push((value % 0x80) | 0x80);
      value = Math.floor(value / 0x80);
    }
    this.pending.push(value);
  }

  private tag(field: number, wire: number): void {
    this.varint(field * 8 + wire);
  }

  private flush(): void {
    if (this.pending.length === 0) return;
    this.chunks.push(Uint8Array.from(this.pending));
    this.flushedBytes += this.pending.length;
    this.pending = [];
  }

  private append(bytes: Uint8Array): void {
    this.flush();
    this.chunks.push(bytes);
    this.flushedBytes += bytes.byteLength;
  }

  /** int32, int64, enum or bool field (wire type 0); negative values take 10 bytes as protobuf requires. */
  int(field: number, value: number): this {
    this.tag(field, WIRE_VARINT);
    this.varint(value);
    return this;
  }

  /** float field (wire type 5, little-endian IEEE 754 single). */
  float(field: number, value: number): this {
    this.tag(field, WIRE_FIXED32);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    this.pending.push(...b);
    return this;
  }

  /** bytes field; the bytes are referenced, not copied, until `finish`. */
  bytes(field: number, value: Uint8Array): this {
    this.tag(field, WIRE_LEN);
    this.varint(value.byteLength);
    this.append(value);
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, new TextEncoder().encode(value));
  }

  /** Embedded message field: the inner writer's chunks are moved over, not copied; do not use `inner` again. */
  message(field: number, inner: ProtoWriter): this {
    inner.flush();
    this.tag(field, WIRE_LEN);
    this.varint(inner.byteLength);
    this.flush();
    for (const c of inner.chunks) this.chunks.push(c);
    this.flushedBytes += inner.byteLength;
    return this;
  }

  /** Packed repeated int64/int32 (one length-delimited field of varints), as [packed = true] fields are written. */
  packedInts(field: number, values: readonly number[]): this {
    const body = new ProtoWriter();
    for (const v of values) body.varint(v);
    return this.message(field, body);
  }

  /** Unpacked repeated int64: one tag per value, as proto2 writes repeated scalars without [packed = true]. */
  repeatedInts(field: number, values: readonly number[]): this {
    for (const v of values) this.int(field, v);
    return this;
  }

  repeatedFloats(field: number, values: readonly number[]): this {
    for (const v of values) this.float(field, v);
    return this;
  }

  finish(): Uint8Array {
    this.flush();
    const out = new Uint8Array(this.flushedBytes);
    let at = 0;
    for (const c of this.chunks) {
      out.set(c, at);
      at += c.byteLength;
    }
    return out;
  }
}

// ---- ONNX messages ----

/** TensorProto.DataType values used here. */
export const DataType = { FLOAT: 1, INT64: 7 } as const;

export type TensorSpec =
  | { name: string; dims: readonly number[]; dataType: 'float'; data: Float32Array }
  | { name: string; dims: readonly number[]; dataType: 'int64'; data: readonly number[] };

export type AttributeSpec =
  | { name: string; kind: 'int'; value: number }
  | { name: string; kind: 'float'; value: number }
  | { name: string; kind: 'ints'; value: readonly number[] }
  | { name: string; kind: 'floats'; value: readonly number[] }
  | { name: string; kind: 'string'; value: string }
  | { name: string; kind: 'tensor'; value: TensorSpec };

export interface NodeSpec {
  opType: string;
  name: string;
  inputs: readonly string[];
  outputs: readonly string[];
  attributes: readonly AttributeSpec[];
}

/** A float tensor graph input or output; a string dim is symbolic (dim_param), e.g. 'N' for batch. */
export interface ValueInfoSpec {
  name: string;
  shape: readonly (number | string)[];
}

export interface GraphSpec {
  name: string;
  nodes: readonly NodeSpec[];
  initializers: readonly TensorSpec[];
  inputs: readonly ValueInfoSpec[];
  outputs: readonly ValueInfoSpec[];
}

export interface ModelSpec {
  irVersion: number;
  opsetVersion: number;
  producerName: string;
  producerVersion: string;
  docString: string;
  graph: GraphSpec;
}

const littleEndian = endianness() === 'LE';

/** Float32 values as little-endian bytes (raw_data is little-endian whatever the host). */
function floatBytes(data: Float32Array): Uint8Array {
  if (littleEndian) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const out = new Uint8Array(data.byteLength);
  const view = new DataView(out.buffer);
  data.forEach((v, i) => view.setFloat32(i * 4, v, true));
  return out;
}

export function encodeTensor(t: TensorSpec): ProtoWriter {
  const w = new ProtoWriter();
  w.repeatedInts(1, t.dims); // dims = 1 (repeated int64, not packed in onnx.proto)
  if (t.dataType === 'float') {
    w.int(2, DataType.FLOAT); // data_type = 2
    w.string(8, t.name); // name = 8
    w.bytes(9, floatBytes(t.data)); // raw_data = 9
  } else {
    w.int(2, DataType.INT64);
    w.string(8, t.name);
    w.packedInts(7, t.data); // int64_data = 7 [packed = true]
  }
  return w;
}

/** AttributeProto.AttributeType values. */
const AttributeType = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, FLOATS: 6, INTS: 7 } as const;

export function encodeAttribute(a: AttributeSpec): ProtoWriter {
  const w = new ProtoWriter().string(1, a.name); // name = 1
  switch (a.kind) {
    case 'float':
      return w.float(2, a.value).int(20, AttributeType.FLOAT); // f = 2; type = 20
    case 'int':
      return w.int(3, a.value).int(20, AttributeType.INT); // i = 3
    case 'string':
      return w.string(4, a.value).int(20, AttributeType.STRING); // s = 4
    case 'tensor':
      return w.message(5, encodeTensor(a.value)).int(20, AttributeType.TENSOR); // t = 5
    case 'floats':
      return w.repeatedFloats(7, a.value).int(20, AttributeType.FLOATS); // floats = 7 (not packed)
    case 'ints':
      return w.repeatedInts(8, a.value).int(20, AttributeType.INTS); // ints = 8 (not packed)
  }
}

export function encodeNode(n: NodeSpec): ProtoWriter {
  const w = new ProtoWriter();
  for (const i of n.inputs) w.string(1, i); // input = 1 ('' for an omitted optional input)
  for (const o of n.outputs) w.string(2, o); // output = 2
  w.string(3, n.name); // name = 3
  w.string(4, n.opType); // op_type = 4 (default domain: no domain = 7)
  for (const a of n.attributes) w.message(5, encodeAttribute(a)); // attribute = 5
  return w;
}

export function encodeValueInfo(v: ValueInfoSpec): ProtoWriter {
  const shape = new ProtoWriter();
  for (const d of v.shape) {
    // TensorShapeProto.dim = 1; Dimension.dim_value = 1 (int64), dim_param = 2 (string)
    shape.message(1, typeof d === 'number' ? new ProtoWriter().int(1, d) : new ProtoWriter().string(2, d));
  }
  // TypeProto.Tensor: elem_type = 1, shape = 2
  const tensorType = new ProtoWriter().int(1, DataType.FLOAT).message(2, shape);
  const type = new ProtoWriter().message(1, tensorType); // TypeProto.tensor_type = 1
  return new ProtoWriter().string(1, v.name).message(2, type); // ValueInfoProto: name = 1, type = 2
}

export function encodeGraph(g: GraphSpec): ProtoWriter {
  const w = new ProtoWriter();
  for (const n of g.nodes) w.message(1, encodeNode(n)); // node = 1
  w.string(2, g.name); // name = 2
  for (const t of g.initializers) w.message(5, encodeTensor(t)); // initializer = 5
  for (const v of g.inputs) w.message(11, encodeValueInfo(v)); // input = 11
  for (const v of g.outputs) w.message(12, encodeValueInfo(v)); // output = 12
  return w;
}

/** The serialised ModelProto, ready for `InferenceSession.create(bytes)` or a .onnx file. */
export function encodeModel(m: ModelSpec): Uint8Array {
  const w = new ProtoWriter();
  w.int(1, m.irVersion); // ir_version = 1
  w.string(2, m.producerName); // producer_name = 2
  w.string(3, m.producerVersion); // producer_version = 3
  w.string(6, m.docString); // doc_string = 6
  w.message(7, encodeGraph(m.graph)); // graph = 7
  // opset_import = 8: OperatorSetIdProto { domain = 1 ('' = ai.onnx), version = 2 }
  w.message(8, new ProtoWriter().string(1, '').int(2, m.opsetVersion));
  return w.finish();
}
