/**
 * Bytes that arrived in chunks (an HTTP body: 30-64 KB each from the socket), read as if they were one
 * buffer without copying them into one. Joining the chunks of a 10 MB whole-instance answer cost the
 * gateway ~20 ms of CPU per instance (a fresh 10 MB allocation, its pages touched for the first time),
 * the largest cost of a cold slide left once frames were views (docs/decisions.md, "Cold tiles"). What
 * lies within one chunk comes back as a view into it; only what straddles two is copied.
 */
export class ByteChunks {
  readonly length: number;
  private readonly chunks: readonly Buffer[];
  /** Offset of each chunk's first byte. */
  private readonly starts: readonly number[];
  /** The chunk found last: reads walk forward, so the next one is almost always here or just after. */
  private last = 0;

  constructor(chunks: readonly Buffer[]) {
    this.chunks = chunks.filter((c) => c.length > 0);
    const starts: number[] = [];
    let offset = 0;
    for (const chunk of this.chunks) {
      starts.push(offset);
      offset += chunk.length;
    }
    this.starts = starts;
    this.length = offset;
  }

  /** One buffer, or chunks, as ByteChunks; ByteChunks as they are. */
  static from(bytes: Buffer | readonly Buffer[] | ByteChunks): ByteChunks {
    if (bytes instanceof ByteChunks) return bytes;
    return new ByteChunks(Buffer.isBuffer(bytes) ? [bytes] : bytes);
  }

  /** The index of the chunk holding `offset` (0 <= offset < length). */
  private find(offset: number): number {
    if (offset < 0 || offset >= this.length) throw new RangeError(`Offset ${offset} is outside ${this.length} bytes`);
    let i = this.last;
    if (offset < this.starts[i]!) i = 0;
    while (offset >= this.starts[i]! + this.chunks[i]!.length) i++;
    this.last = i;
    return i;
  }

  byteAt(offset: number): number {
    const i = this.find(offset);
    return this.chunks[i]![offset - this.starts[i]!]!;
  }

  readUInt16LE(offset: number): number {
    const i = this.find(offset);
    const within = offset - this.starts[i]!;
    const chunk = this.chunks[i]!;
    return within + 2 <= chunk.length ? chunk.readUInt16LE(within) : this.view(offset, offset + 2).readUInt16LE(0);
  }

  readUInt32LE(offset: number): number {
    const i = this.find(offset);
    const within = offset - this.starts[i]!;
    const chunk = this.chunks[i]!;
    return within + 4 <= chunk.length ? chunk.readUInt32LE(within) : this.view(offset, offset + 4).readUInt32LE(0);
  }

  latin1(start: number, end: number): string {
    return this.view(start, end).toString('latin1');
  }

  /** Bytes [start, end): a view into a chunk when they lie in one, else a copy. */
  view(start: number, end: number): Buffer {
    if (end > this.length || start > end) throw new RangeError(`Bytes ${start}-${end} are outside ${this.length} bytes`);
    if (start === end) return Buffer.alloc(0);
    const first = this.find(start);
    const within = start - this.starts[first]!;
    const chunk = this.chunks[first]!;
    if (within + (end - start) <= chunk.length) return chunk.subarray(within, within + (end - start));
    const copy = Buffer.allocUnsafe(end - start);
    let written = chunk.copy(copy, 0, within);
    for (let i = first + 1; written < copy.length; i++) written += this.chunks[i]!.copy(copy, written, 0, copy.length - written);
    return copy;
  }
}
