/**
 * NumPy .npy files (format 1.0, https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html):
 * the magic "\x93NUMPY", a version, a little-endian header length, then a Python dict literal padded
 * with spaces and a '\n' so the data starts at a multiple of 64 bytes (numpy can then memory-map it
 * aligned). Only the two dtypes the embedding store writes are supported: '<f4' and '<i4', C order.
 *
 * Embeddings of 100k patches x 2048 floats are ~800 MB, so writing streams (header, then chunks) and
 * reading goes straight into one typed array, never through a second whole-file buffer.
 */
import { createHash, type Hash } from 'node:crypto';
import { open, rm, type FileHandle } from 'node:fs/promises';
import { endianness } from 'node:os';

export type NpyDtype = '<f4' | '<i4';

export type NpyArray =
  | { dtype: '<f4'; shape: number[]; data: Float32Array }
  | { dtype: '<i4'; shape: number[]; data: Int32Array };

/** A file that is not an .npy we can read; the message names the file and the problem. */
export class NpyFormatError extends Error {}

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY
const ALIGN = 64;
const ITEM_BYTES = 4; // both supported dtypes
/** fs read/write calls take at most 2 GiB - 1; stay well below. */
const IO_CHUNK = 1 << 30;

/** Typed arrays use the host's byte order; '<' files are only right on little-endian hosts (all Node targets in practice). */
function assertLittleEndian(): void {
  if (endianness() !== 'LE') throw new Error('.npy support needs a little-endian host');
}

function checkShape(shape: readonly number[]): number {
  let count = 1;
  for (const n of shape) {
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`Bad .npy shape [${shape.join(', ')}]`);
    count *= n;
  }
  if (!Number.isSafeInteger(count * ITEM_BYTES)) throw new RangeError(`.npy shape [${shape.join(', ')}] is too large`);
  return count;
}

/** Python's repr of a tuple of ints: (), (5,), (3, 4). */
function shapeRepr(shape: readonly number[]): string {
  return shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
}

/** Magic, version 1.0, header length and the padded dict: everything before the data. */
export function encodeNpyHeader(dtype: NpyDtype, shape: readonly number[]): Buffer {
  checkShape(shape);
  const dict = `{'descr': '${dtype}', 'fortran_order': False, 'shape': ${shapeRepr(shape)}, }`;
  const unpadded = MAGIC.length + 2 + 2 + dict.length + 1; // + the final '\n'
  const total = Math.ceil(unpadded / ALIGN) * ALIGN;
  const headerLength = total - MAGIC.length - 4;
  if (headerLength > 0xffff) throw new RangeError('.npy header too long for format 1.0');
  const out = Buffer.alloc(total, 0x20);
  MAGIC.copy(out, 0);
  out[6] = 1;
  out[7] = 0;
  out.writeUInt16LE(headerLength, 8);
  out.write(dict, 10, 'latin1');
  out[total - 1] = 0x0a;
  return out;
}

export interface NpyHeader {
  dtype: NpyDtype;
  shape: number[];
  /** Byte offset of the data. */
  dataOffset: number;
  /** Byte length of the data. */
  dataBytes: number;
}

/**
 * Parses the header at the start of `bytes` (which must hold at least the whole header). Accepts format
 * versions 1.0 to 3.0 (they differ in the length field) and any key order, as numpy and other writers emit.
 */
export function parseNpyHeader(bytes: Uint8Array, name = '.npy file'): NpyHeader {
  const fail = (why: string): never => {
    throw new NpyFormatError(`${name}: ${why}`);
  };
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < 10 || !buf.subarray(0, 6).equals(MAGIC)) fail('not a NumPy .npy file (bad magic)');
  const major = buf[6];
  if (major !== 1 && major !== 2 && major !== 3) fail(`unsupported .npy format version ${major}.${buf[7]}`);
  const lengthBytes = major === 1 ? 2 : 4;
  if (buf.length < 8 + lengthBytes) fail('truncated header');
  const headerLength = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const dataOffset = 8 + lengthBytes + headerLength;
  if (buf.length < dataOffset) fail('truncated header');
  const dict = buf.toString(major === 3 ? 'utf8' : 'latin1', 8 + lengthBytes, dataOffset).trim();
  if (!dict.startsWith('{') || !dict.endsWith('}')) fail('header is not a dict');
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(dict)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(dict)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(dict)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) fail(`header lacks descr, fortran_order or shape: ${dict.slice(0, 200)}`);
  if (descr !== '<f4' && descr !== '<i4') fail(`unsupported dtype '${descr}' (only '<f4' float32 and '<i4' int32)`);
  const parts = shapeText!.split(',').map((s) => s.trim());
  if (parts.at(-1) === '') parts.pop(); // "(5,)"
  if (parts.some((p) => !/^\d{1,15}$/.test(p))) fail(`bad shape (${shapeText})`);
  const shape = parts.map(Number);
  // Fortran order only matters with two or more axes of length > 1; refuse it rather than transpose.
  if (fortran === 'True' && shape.filter((n) => n > 1).length > 1) fail('Fortran-order arrays are not supported');
  let count: number;
  try {
    count = checkShape(shape);
  } catch (error) {
    return fail((error as Error).message);
  }
  return { dtype: descr as NpyDtype, shape, dataOffset, dataBytes: count * ITEM_BYTES };
}

async function readFully(handle: FileHandle, target: Uint8Array, position: number): Promise<number> {
  let done = 0;
  while (done < target.length) {
    const { bytesRead } = await handle.read(target, done, Math.min(IO_CHUNK, target.length - done), position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done;
}

export async function writeFully(handle: FileHandle, data: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await handle.write(data, done, Math.min(IO_CHUNK, data.length - done), position + done);
    done += bytesWritten;
  }
}

/** Reads a whole .npy file into a typed array of its dtype. Throws NpyFormatError on a bad, truncated or over-long file. */
export async function readNpy(file: string): Promise<NpyArray> {
  assertLittleEndian();
  const handle = await open(file, 'r');
  try {
    const size = (await handle.stat()).size;
    // Headers are short: 64 KiB covers format 1.0's largest, and a longer 2.0 header is read again below.
    let head = Buffer.alloc(Math.min(size, 65536 + 10));
    await readFully(handle, head, 0);
    if (head.length >= 12 && head[6] !== 1) {
      const wanted = 12 + head.readUInt32LE(8);
      if (wanted > head.length && wanted <= size) {
        head = Buffer.alloc(wanted);
        await readFully(handle, head, 0);
      }
    }
    const header = parseNpyHeader(head, file);
    if (size !== header.dataOffset + header.dataBytes) {
      throw new NpyFormatError(`${file}: holds ${size - header.dataOffset} data bytes, shape [${header.shape.join(', ')}] needs ${header.dataBytes}`);
    }
    const count = header.dataBytes / ITEM_BYTES;
    // Reading into the array's own buffer keeps the data aligned whatever the header length.
    const data = header.dtype === '<f4' ? new Float32Array(count) : new Int32Array(count);
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if ((await readFully(handle, bytes, header.dataOffset)) !== bytes.length) throw new NpyFormatError(`${file}: truncated data`);
    return { dtype: header.dtype, shape: header.shape, data } as NpyArray;
  } finally {
    await handle.close();
  }
}

/**
 * Writes an .npy file front to back: the header at once, then the data in chunks of any size. finish()
 * checks the byte count against the shape, flushes to disk and returns the file's size and SHA-256
 * (computed on the way, so an 800 MB file is not read twice). The caller picks the path (a temp name to
 * rename, for atomic publication).
 */
export class NpyWriter {
  readonly dataBytes: number;
  private written = 0;
  private readonly hash: Hash = createHash('sha256');
  private closed = false;

  private constructor(
    readonly file: string,
    private readonly handle: FileHandle,
    private readonly headerBytes: number,
    dataBytes: number,
  ) {
    this.dataBytes = dataBytes;
  }

  static async create(file: string, dtype: NpyDtype, shape: readonly number[]): Promise<NpyWriter> {
    assertLittleEndian();
    const header = encodeNpyHeader(dtype, shape);
    const handle = await open(file, 'w');
    try {
      await writeFully(handle, header, 0);
    } catch (error) {
      await handle.close();
      throw error;
    }
    const writer = new NpyWriter(file, handle, header.length, checkShape(shape) * ITEM_BYTES);
    writer.hash.update(header);
    return writer;
  }

  /** Appends raw little-endian items (a Float32Array, an Int32Array, or their bytes). */
  async write(chunk: ArrayBufferView): Promise<void> {
    if (this.closed) throw new Error(`${this.file}: write after finish or abort`);
    const bytes = new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (this.written + bytes.length > this.dataBytes) throw new RangeError(`${this.file}: more data than the shape holds (${this.dataBytes} bytes)`);
    await writeFully(this.handle, bytes, this.headerBytes + this.written);
    this.hash.update(bytes);
    this.written += bytes.length;
  }

  /** Checks the data is complete, fsyncs and closes. */
  async finish(): Promise<{ bytes: number; sha256: string }> {
    if (this.written !== this.dataBytes) throw new RangeError(`${this.file}: ${this.written} of ${this.dataBytes} data bytes written`);
    this.closed = true;
    try {
      await this.handle.sync();
    } finally {
      await this.handle.close();
    }
    return { bytes: this.headerBytes + this.dataBytes, sha256: this.hash.digest('hex') };
  }

  /** Closes and deletes the file. Idempotent; safe after a failed finish. */
  async abort(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      await this.handle.close().catch(() => undefined);
    }
    await rm(this.file, { force: true });
  }
}

/** One-shot write of a whole array (small arrays, tests). */
export async function writeNpy(file: string, dtype: NpyDtype, shape: readonly number[], data: Float32Array | Int32Array): Promise<{ bytes: number; sha256: string }> {
  if ((dtype === '<f4') !== data instanceof Float32Array) throw new TypeError(`writeNpy: ${dtype} needs a ${dtype === '<f4' ? 'Float32Array' : 'Int32Array'}`);
  const writer = await NpyWriter.create(file, dtype, shape);
  try {
    await writer.write(data);
    return await writer.finish();
  } catch (error) {
    await writer.abort();
    throw error;
  }
}
