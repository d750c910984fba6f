import { describe, expect, it } from 'vitest';
import { encodeAttribute, encodeTensor, encodeValueInfo, ProtoWriter } from './onnx-proto.js';

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

describe('ProtoWriter', () => {
  it('writes varints as the protobuf encoding guide does', () => {
    expect(hex(new ProtoWriter().int(1, 150).finish())).toBe('089601');
    expect(hex(new ProtoWriter().int(1, 0).finish())).toBe('0800');
    expect(hex(new ProtoWriter().int(1, 2 ** 35).finish())).toBe('088080808080' + '01');
  });

  it('writes negative int64 as ten-byte two’s complement', () => {
    expect(hex(new ProtoWriter().int(1, -1).finish())).toBe('08' + 'ff'.repeat(9) + '01');
    expect(hex(new ProtoWriter().int(2, -2).finish())).toBe('10fe' + 'ff'.repeat(8) + '01');
  });

  it('writes strings, floats and nested messages length-delimited or fixed', () => {
    expect(hex(new ProtoWriter().string(2, 'testing').finish())).toBe('120774657374696e67');
    expect(hex(new ProtoWriter().float(2, 1.5).finish())).toBe('150000c03f');
    expect(hex(new ProtoWriter().message(3, new ProtoWriter().int(1, 150)).finish())).toBe('1a03089601');
  });

  it('packs repeated ints into one field, or repeats the tag when unpacked', () => {
    expect(hex(new ProtoWriter().packedInts(4, [3, 270, 86942]).finish())).toBe('2206038e029ea705');
    expect(hex(new ProtoWriter().repeatedInts(1, [3, 270]).finish())).toBe('0803088e02');
  });

  it('keeps byteLength in step with the bytes written, across chunks', () => {
    const w = new ProtoWriter().int(1, 1).bytes(2, new Uint8Array(300)).message(3, new ProtoWriter().string(1, 'x'));
    expect(w.finish().byteLength).toBe(w.byteLength);
    expect(w.byteLength).toBe(2 + 3 + 300 + 2 + 3);
  });
});

describe('ONNX messages', () => {
  it('encodes an int64 tensor with unpacked dims and packed int64_data', () => {
    const bytes = encodeTensor({ name: 's', dims: [2], dataType: 'int64', data: [0, -1] }).finish();
    // dims=1: 08 02 | data_type=2: 10 07 | name=8: 42 01 's' | int64_data=7 packed: 3a 0b 00 ff*9 01
    expect(hex(bytes)).toBe('0802' + '1007' + '420173' + '3a0b00' + 'ff'.repeat(9) + '01');
  });

  it('encodes a float tensor as little-endian raw_data', () => {
    const bytes = encodeTensor({ name: 'w', dims: [], dataType: 'float', data: Float32Array.of(1) }).finish();
    // no dims (a scalar) | data_type FLOAT | name | raw_data=9: 4a 04 0000803f
    expect(hex(bytes)).toBe('1001' + '420177' + '4a040000803f');
  });

  it('sets the attribute type next to the value', () => {
    // name=1 'perm' | ints=8 unpacked: 40 00 40 02 | type=20 (tag a0 01) INTS=7
    expect(hex(encodeAttribute({ name: 'perm', kind: 'ints', value: [0, 2] }).finish())).toBe('0a047065726d' + '40004002' + 'a00107');
    // f=2 fixed32 | type FLOAT=1
    expect(hex(encodeAttribute({ name: 'e', kind: 'float', value: 0.5 }).finish())).toBe('0a0165' + '150000003f' + 'a00101');
    // i=3 varint (-1: ten bytes) | type INT=2
    expect(hex(encodeAttribute({ name: 'a', kind: 'int', value: -1 }).finish())).toBe('0a0161' + '18' + 'ff'.repeat(9) + '01' + 'a00102');
  });

  it('writes a symbolic batch dim as dim_param and the others as dim_value', () => {
    const bytes = encodeValueInfo({ name: 'x', shape: ['N', 3] }).finish();
    // name | type=2 { tensor_type=1 { elem_type=1 FLOAT, shape=2 { dim { dim_param 'N' }, dim { dim_value 3 } } } }
    expect(hex(bytes)).toBe('0a0178' + '120f' + '0a0d' + '0801' + '1209' + '0a03' + '12014e' + '0a02' + '0803');
  });
});
