import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { readDicomFileFacts, wsiSamples } from '../../test/support/wsi-data.js';
import { ByteChunks } from './byte-chunks.js';
import { computeFramesOfFile, locatePixelData, readTransferSyntax } from './part10.js';

/** `bytes` cut into chunks of the given sizes, cycling through them. */
function cut(bytes: Buffer, sizes: readonly number[]): Buffer[] {
  const chunks: Buffer[] = [];
  for (let offset = 0, i = 0; offset < bytes.length; i++) {
    const size = sizes[i % sizes.length]!;
    chunks.push(Buffer.from(bytes.subarray(offset, offset + size))); // each its own memory, as from a socket
    offset += size;
  }
  return chunks;
}

describe('ByteChunks', () => {
  const bytes = Buffer.from(Array.from({ length: 100 }, (_, i) => i));
  const chunks = new ByteChunks([Buffer.alloc(0), ...cut(bytes, [3, 10, 1, 40])]);

  it('reads numbers and text across chunk boundaries as one buffer would', () => {
    expect(chunks.length).toBe(100);
    for (let offset = 0; offset + 4 <= 100; offset++) {
      expect(chunks.readUInt32LE(offset)).toBe(bytes.readUInt32LE(offset));
      expect(chunks.readUInt16LE(offset)).toBe(bytes.readUInt16LE(offset));
      expect(chunks.byteAt(offset)).toBe(offset);
    }
    expect(chunks.latin1(2, 15)).toBe(bytes.toString('latin1', 2, 15));
  });

  it('hands out a view within a chunk and a copy across chunks, backwards too', () => {
    const within = chunks.view(4, 12);
    expect(within).toEqual(bytes.subarray(4, 12));
    expect(within.buffer).toBe(chunks.view(3, 4).buffer); // the second chunk's own memory
    expect(chunks.view(90, 95)).toEqual(bytes.subarray(90, 95));
    expect(chunks.view(1, 60)).toEqual(bytes.subarray(1, 60));
    expect(chunks.view(7, 7)).toHaveLength(0);
  });

  it('refuses offsets outside its bytes', () => {
    expect(() => chunks.byteAt(100)).toThrow(RangeError);
    expect(() => chunks.readUInt32LE(97)).toThrow(RangeError);
    expect(() => chunks.view(90, 101)).toThrow(RangeError);
  });
});

/** Frames in the file, and the bytes of one when they are native (their pixel data's length / frames). */
async function layoutOf(path: string, file: Buffer): Promise<{ numberOfFrames: number; frameBytes: number }> {
  const { numberOfFrames } = await readDicomFileFacts(path);
  const pixels = locatePixelData(file, readTransferSyntax(file))!;
  return { numberOfFrames, frameBytes: pixels.valueLength === undefined ? 0 : pixels.valueLength / numberOfFrames };
}

describe('frames of a whole instance taken as chunks', () => {
  it.each([
    ['JPEG', wsiSamples.cmu1T256Q90.paths[0]!],
    ['JPEG 2000', wsiSamples.cmu1T256J2k.paths[0]!],
    ['native', wsiSamples.wsi2dcmRaw.paths[0]!],
  ])('%s: the same frames as from one buffer, whatever the chunk sizes', async (_, path) => {
    const file = await readFile(path);
    const layout = await layoutOf(path, file);
    const reference = computeFramesOfFile(file, layout);
    for (const sizes of [[65_536], [30_000, 997, 64_512], [7, 13, 4_099]]) {
      const chunked = computeFramesOfFile(cut(file, sizes), layout);
      expect(chunked.transferSyntaxUid).toBe(reference.transferSyntaxUid);
      // Buffer.equals: toEqual walks megabytes byte by byte.
      expect(chunked.frames.map((f) => f.length)).toEqual(reference.frames.map((f) => f.length));
      expect(chunked.frames.every((f, i) => f.equals(reference.frames[i]!))).toBe(true);
    }
  });

  it('leaves most frames of a JPEG instance as views into the chunks they arrived in', async () => {
    const file = await readFile(wsiSamples.cmu1T256Q90.paths[0]!);
    const chunks = cut(file, [65_536]);
    const { frames } = computeFramesOfFile(chunks, await layoutOf(wsiSamples.cmu1T256Q90.paths[0]!, file));
    const chunkBuffers = new Set(chunks.map((c) => c.buffer));
    const views = frames.filter((f) => chunkBuffers.has(f.buffer)).length;
    expect(views).toBeGreaterThan(frames.length / 2);
  });
});
