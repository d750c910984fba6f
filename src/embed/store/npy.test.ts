import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeNpyHeader, NpyFormatError, NpyWriter, parseNpyHeader, readNpy, writeNpy } from './npy.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'npy-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const shapes = [[0, 3], [1, 1], [7, 5], [5], [100, 384], [2, 3, 4], []];
const countOf = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
/** Values that exercise the sign, fractions, large magnitudes and float32 rounding. */
const floats = (n: number) => Float32Array.from({ length: n }, (_, i) => (i % 2 ? -1 : 1) * (i * 0.1 + 1e-3) * 10 ** (i % 7));
const ints = (n: number) => Int32Array.from({ length: n }, (_, i) => (i % 3 === 0 ? -i * 1000 : i * 123457) | 0);

describe('encodeNpyHeader', () => {
  it('writes the dict numpy writes, padded so the data starts at a multiple of 64', () => {
    const header = encodeNpyHeader('<f4', [3, 4]);
    expect(header.length % 64).toBe(0);
    expect([...header.subarray(0, 8)]).toEqual([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
    expect(header.readUInt16LE(8)).toBe(header.length - 10);
    const dict = header.toString('latin1', 10);
    expect(dict).toMatch(/^\{'descr': '<f4', 'fortran_order': False, 'shape': \(3, 4\), \} *\n$/);
    expect(encodeNpyHeader('<i4', [5]).toString('latin1')).toContain("'shape': (5,), }");
    expect(encodeNpyHeader('<i4', []).toString('latin1')).toContain("'shape': (), }");
  });

  it.each(shapes.concat([[123456789, 2048]]).map((shape) => ({ shape })))('keeps 64-byte alignment for shape $shape', ({ shape }) => {
    const header = encodeNpyHeader('<i4', shape);
    expect(header.length % 64).toBe(0);
    expect(parseNpyHeader(header)).toEqual({ dtype: '<i4', shape, dataOffset: header.length, dataBytes: countOf(shape) * 4 });
  });

  it('refuses shapes that are not whole non-negative numbers', () => {
    expect(() => encodeNpyHeader('<f4', [-1, 2])).toThrow(RangeError);
    expect(() => encodeNpyHeader('<f4', [1.5])).toThrow(RangeError);
  });
});

describe('readNpy and writeNpy', () => {
  it.each(shapes.map((shape) => ({ shape })))('round-trip float32 and int32 of shape $shape', async ({ shape }) => {
    const n = countOf(shape);
    const f = join(dir, `f-${shape.join('x')}.npy`);
    const i = join(dir, `i-${shape.join('x')}.npy`);
    const written = await writeNpy(f, '<f4', shape, floats(n));
    await writeNpy(i, '<i4', shape, ints(n));
    const bytes = await readFile(f);
    expect(written).toEqual({ bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') });
    expect(await readNpy(f)).toEqual({ dtype: '<f4', shape, data: floats(n) });
    expect(await readNpy(i)).toEqual({ dtype: '<i4', shape, data: ints(n) });
  });

  it('streams chunks of any size and checks the count against the shape', async () => {
    const data = floats(10 * 3);
    const file = join(dir, 'chunks.npy');
    const writer = await NpyWriter.create(file, '<f4', [10, 3]);
    await writer.write(data.subarray(0, 7));
    await writer.write(new Uint8Array(data.buffer, 28, 13)); // not even whole floats
    await expect(writer.finish()).rejects.toThrow('41 of 120 data bytes written');
    await writer.write(new Uint8Array(data.buffer, 41));
    await expect(writer.write(new Float32Array(1))).rejects.toThrow('more data than the shape holds');
    await writer.finish();
    expect((await readNpy(file)).data).toEqual(data);
    const aborted = await NpyWriter.create(join(dir, 'aborted.npy'), '<i4', [2]);
    await aborted.abort();
    await aborted.abort();
    await expect(readFile(join(dir, 'aborted.npy'))).rejects.toThrow('ENOENT');
  });

  it('says what is wrong with a bad file', async () => {
    const good = Buffer.concat([encodeNpyHeader('<f4', [2, 2]), Buffer.from(new Float32Array(4).buffer)]);
    const cases: Array<[string, Buffer, string]> = [
      ['magic', Buffer.from('not an npy file at all, sorry'), 'bad magic'],
      ['short', good.subarray(0, 6), 'bad magic'],
      ['truncated', good.subarray(0, good.length - 1), 'holds 15 data bytes, shape [2, 2] needs 16'],
      ['trailing', Buffer.concat([good, Buffer.alloc(4)]), 'holds 20 data bytes'],
      ['f8', Buffer.from(good.toString('latin1').replace('<f4', '<f8'), 'latin1'), "unsupported dtype '<f8'"],
      ['fortran', Buffer.from(good.toString('latin1').replace('False', 'True '), 'latin1'), 'Fortran-order'],
      ['version', Buffer.concat([good.subarray(0, 6), Buffer.from([9]), good.subarray(7)]), 'version 9.0'],
      ['noshape', Buffer.from(good.toString('latin1').replace("'shape'", "'shapf'"), 'latin1'), 'lacks descr'],
    ];
    for (const [name, bytes, message] of cases) {
      const file = join(dir, `bad-${name}.npy`);
      await writeFile(file, bytes);
      const error = await readNpy(file).catch((e: unknown) => e);
      expect(error, name).toBeInstanceOf(NpyFormatError);
      expect((error as Error).message, name).toContain(message);
      expect((error as Error).message, name).toContain(file);
    }
  });

  it('reads a header of any key order, as other writers emit', async () => {
    const dict = "{'shape': (2,),'fortran_order':False, 'descr': '<i4'}";
    const header = Buffer.alloc(64, 0x20);
    Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]).copy(header);
    header.writeUInt16LE(64 - 10, 8);
    header.write(dict, 10, 'latin1');
    header[63] = 0x0a;
    const file = join(dir, 'order.npy');
    await writeFile(file, header);
    await appendFile(file, Buffer.from(new Int32Array([7, -7]).buffer));
    expect(await readNpy(file)).toEqual({ dtype: '<i4', shape: [2], data: new Int32Array([7, -7]) });
  });
});

// The first python3 with numpy: the one on PATH, or Debian's (python3-numpy, installed by scripts/install-test-deps.sh).
const pythonWithNumpy = ['python3', '/usr/bin/python3'].find((bin) => spawnSync(bin, ['-c', 'import numpy'], { stdio: 'ignore' }).status === 0);
const hasNumpy = pythonWithNumpy !== undefined;
if (!hasNumpy) console.warn('npy.test.ts: python3 with numpy not found (apt-get install python3-numpy); the numpy compatibility tests are skipped');

function python(script: string, ...args: string[]): string {
  const result = spawnSync(pythonWithNumpy!, ['-c', script, ...args], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`python3 failed: ${result.stderr}`);
  return result.stdout;
}

describe.skipIf(!hasNumpy)('against numpy (needs python3 with numpy)', () => {
  it.each(shapes.map((shape) => ({ shape })))('numpy loads our float32 and int32 files of shape $shape', async ({ shape }) => {
    const n = countOf(shape);
    const f = join(dir, `np-f-${shape.join('x')}.npy`);
    const i = join(dir, `np-i-${shape.join('x')}.npy`);
    await writeNpy(f, '<f4', shape, floats(n));
    await writeNpy(i, '<i4', shape, ints(n));
    const out = python(
      'import json, sys, numpy as np\n' +
        'a = [np.load(p, allow_pickle=False) for p in sys.argv[1:]]\n' +
        'print(json.dumps([{"shape": list(x.shape), "dtype": x.dtype.str, "c": bool(x.flags.c_contiguous), "values": x.ravel().tolist()} for x in a]))',
      f,
      i,
    );
    const [pf, pi] = JSON.parse(out) as Array<{ shape: number[]; dtype: string; c: boolean; values: number[] }>;
    expect(pf).toEqual({ shape, dtype: '<f4', c: true, values: [...floats(n)] });
    expect(pi).toEqual({ shape, dtype: '<i4', c: true, values: [...ints(n)] });
  });

  it("reads numpy's own files (format 1.0 and 2.0) and refuses float64 clearly", async () => {
    const base = join(dir, 'from-numpy');
    python(
      'import sys, numpy as np\n' +
        'b = sys.argv[1]\n' +
        'np.save(b + "-f.npy", (np.arange(12, dtype=np.float32).reshape(3, 4) - 5.5) / 3)\n' +
        'np.save(b + "-i.npy", np.arange(-3, 3, dtype=np.int32) * 1000003)\n' +
        'with open(b + "-v2.npy", "wb") as f: np.lib.format.write_array(f, np.ones((2, 2), np.float32), version=(2, 0))\n' +
        'np.save(b + "-f8.npy", np.zeros(3))\n',
      base,
    );
    const expected = Float32Array.from({ length: 12 }, (_, k) => Math.fround(Math.fround(k - 5.5) / 3));
    expect(await readNpy(`${base}-f.npy`)).toEqual({ dtype: '<f4', shape: [3, 4], data: expected });
    expect(await readNpy(`${base}-i.npy`)).toEqual({ dtype: '<i4', shape: [6], data: Int32Array.from([-3, -2, -1, 0, 1, 2], (k) => k * 1000003) });
    expect(await readNpy(`${base}-v2.npy`)).toEqual({ dtype: '<f4', shape: [2, 2], data: new Float32Array([1, 1, 1, 1]) });
    await expect(readNpy(`${base}-f8.npy`)).rejects.toThrow("unsupported dtype '<f8'");
  });
});
