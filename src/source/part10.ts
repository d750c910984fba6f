/**
 * Byte-level layout of a DICOM Part 10 file (PS3.10 §7, PS3.5 §7 and A.4): where the pixel data starts
 * and where each frame's bytes are, so frames are read from disk by range instead of parsing the file.
 * dcmjs reads the attributes; it copies every fragment of a whole file to get at one frame (≈290 ms for
 * a 6 MB JPEG 2000 instance here), which is why frames go through this walker instead.
 */

import { ByteChunks } from './byte-chunks.js';

/** Tags as (group << 16 | element), and the undefined length (PS3.5 §7.1 and §7.5). */
export const PIXEL_DATA = 0x7fe00010;
export const ITEM = 0xfffee000;
const ITEM_DELIMITER = 0xfffee00d;
export const SEQUENCE_DELIMITER = 0xfffee0dd;
export const UNDEFINED_LENGTH = 0xffffffff;
/** VRs whose explicit-VR header has 2 reserved bytes and a 32-bit length (PS3.5 Table 7.1-1). */
const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);

export class Part10Error extends Error {}

/** Ran past the bytes given: read more of the file and try again. */
export class NeedMoreBytes extends Error {}

export interface PixelDataLocation {
  /** Byte offset of the pixel data's value (after the element header). */
  valueOffset: number;
  /** Value length, or undefined for encapsulated (undefined-length) pixel data. */
  valueLength: number | undefined;
  /** Where the dataset's attributes end: bytes [0, headerEnd) hold everything but the pixel data. */
  headerEnd: number;
}

/** Transfer syntaxes whose dataset this walker reads: little endian, implicit or explicit VR. */
export function isWalkableSyntax(transferSyntaxUid: string): boolean {
  // Big endian (1.2.840.10008.1.2.2, retired) and deflated (1.2.840.10008.1.2.1.99) datasets are not.
  return transferSyntaxUid !== '1.2.840.10008.1.2.2' && transferSyntaxUid !== '1.2.840.10008.1.2.1.99';
}

class Cursor {
  offset: number;
  constructor(
    readonly bytes: ByteChunks,
    offset: number,
  ) {
    this.offset = offset;
  }
  need(n: number): void {
    if (this.offset + n > this.bytes.length) throw new NeedMoreBytes();
  }
  tag(): number {
    this.need(4);
    const group = this.bytes.readUInt16LE(this.offset);
    const element = this.bytes.readUInt16LE(this.offset + 2);
    this.offset += 4;
    return ((group << 16) | element) >>> 0;
  }
  u32(): number {
    this.need(4);
    const v = this.bytes.readUInt32LE(this.offset);
    this.offset += 4;
    return v;
  }
  skip(n: number): void {
    this.need(n);
    this.offset += n;
  }
}

/** Reads an element header; returns its VR ('' when implicit) and value length. */
function readHeader(c: Cursor, implicit: boolean): { vr: string; length: number } {
  if (implicit) return { vr: '', length: c.u32() };
  c.need(4);
  const vr = c.bytes.latin1(c.offset, c.offset + 2);
  if (LONG_VRS.has(vr)) {
    c.skip(4);
    return { vr, length: c.u32() };
  }
  const length = c.bytes.readUInt16LE(c.offset + 2);
  c.skip(4);
  return { vr, length };
}

/** Skips an undefined-length sequence's items up to its delimiter. */
function skipSequence(c: Cursor, implicit: boolean): void {
  for (;;) {
    const tag = c.tag();
    const length = c.u32();
    if (tag === SEQUENCE_DELIMITER) return;
    if (tag !== ITEM) throw new Part10Error(`Expected an item in a sequence, found tag ${tag.toString(16)}`);
    if (length !== UNDEFINED_LENGTH) c.skip(length);
    else skipDataset(c, implicit, ITEM_DELIMITER);
  }
}

/** Skips elements until `endTag` (an item delimiter), or returns the pixel data when found at top level. */
function skipDataset(c: Cursor, implicit: boolean, endTag: number): void {
  for (;;) {
    const tag = c.tag();
    if (tag === endTag) {
      c.u32();
      return;
    }
    const { vr, length } = readHeader(c, implicit);
    if (length === UNDEFINED_LENGTH) skipSequence(c, implicit || vr === 'UN');
    else c.skip(length);
  }
}

/**
 * Finds the pixel data element in the first bytes of a Part 10 file. Throws NeedMoreBytes when the
 * attributes before it run past `bytes`, Part10Error when the file is not Part 10.
 */
export function locatePixelData(file: Buffer | ByteChunks, transferSyntaxUid: string): PixelDataLocation | undefined {
  const bytes = ByteChunks.from(file);
  if (bytes.length < 132) throw new NeedMoreBytes();
  if (bytes.latin1(128, 132) !== 'DICM') throw new Part10Error('Not a DICOM Part 10 file (no DICM prefix)');
  if (!isWalkableSyntax(transferSyntaxUid)) throw new Part10Error(`Transfer syntax ${transferSyntaxUid} is not supported for local files`);
  const c = new Cursor(bytes, 132);
  // The file meta group is explicit VR little endian; its group length (0002,0000) says where it ends.
  if (c.tag() !== 0x00020000) throw new Part10Error('The file meta information has no group length');
  const metaLength = readHeader(c, false).length === 4 ? c.u32() : 0;
  c.skip(metaLength);
  const implicit = transferSyntaxUid === '1.2.840.10008.1.2';
  for (;;) {
    if (c.offset === bytes.length) return undefined; // a file without pixel data
    const start = c.offset;
    const tag = c.tag();
    const { vr, length } = readHeader(c, implicit);
    if (tag === PIXEL_DATA) {
      return { valueOffset: c.offset, valueLength: length === UNDEFINED_LENGTH ? undefined : length, headerEnd: start };
    }
    if (length === UNDEFINED_LENGTH) skipSequence(c, implicit || vr === 'UN');
    else c.skip(length);
  }
}

/** One frame's bytes in the file: one or more [offset, length) fragment ranges. */
export type FrameRanges = Array<[offset: number, length: number]>;

/** Marks that begin a JPEG (SOI), JPEG-LS (SOI) or JPEG 2000 (SOC) codestream. */
function startsCodestream(bytes: ByteChunks, offset: number): boolean {
  if (offset + 2 > bytes.length) return false;
  const second = bytes.byteAt(offset + 1);
  return bytes.byteAt(offset) === 0xff && (second === 0xd8 || second === 0x4f);
}

/**
 * The byte ranges of each frame of encapsulated pixel data (PS3.5 A.4). `bytes` holds the file from
 * `location.valueOffset` to the end of the pixel data, and ranges are file offsets. One fragment per
 * frame is the common case; otherwise the Basic Offset Table, or codestream start markers, group them.
 */
export function computeEncapsulatedFrames(bytes: Buffer, baseOffset: number, numberOfFrames: number): FrameRanges[] {
  return computeFrameRanges(ByteChunks.from(bytes), 0, baseOffset, numberOfFrames);
}

/**
 * computeEncapsulatedFrames over `bytes` from `start` (where the pixel data's value begins); ranges are
 * offsets in `bytes` plus `shift`.
 */
function computeFrameRanges(bytes: ByteChunks, start: number, shift: number, numberOfFrames: number): FrameRanges[] {
  const c = new Cursor(bytes, start);
  const readItem = (): { offset: number; length: number } | undefined => {
    if (c.offset + 8 > bytes.length) return undefined;
    const tag = c.tag();
    const length = c.u32();
    if (tag === SEQUENCE_DELIMITER) return undefined;
    if (tag !== ITEM || length === UNDEFINED_LENGTH) throw new Part10Error('Malformed encapsulated pixel data');
    const offset = c.offset;
    c.skip(length);
    return { offset, length };
  };
  const table = readItem();
  if (!table) throw new Part10Error('Encapsulated pixel data without a Basic Offset Table item');
  const tableOffsets: number[] = [];
  for (let i = 0; i + 4 <= table.length; i += 4) tableOffsets.push(bytes.readUInt32LE(table.offset + i));
  const firstFragment = c.offset;
  const fragments: Array<{ offset: number; length: number; itemStart: number }> = [];
  for (;;) {
    const itemStart = c.offset - firstFragment;
    const item = readItem();
    if (!item) break;
    fragments.push({ ...item, itemStart });
  }
  const toRange = (f: { offset: number; length: number }): [number, number] => [shift + f.offset, f.length];

  if (fragments.length === numberOfFrames) return fragments.map((f) => [toRange(f)]);
  if (numberOfFrames === 1) return [fragments.map(toRange)];
  const frames: FrameRanges[] = [];
  if (tableOffsets.length === numberOfFrames) {
    // Offsets are ascending and relative to the first fragment's item tag: a fragment belongs to the
    // last frame whose offset is at or before it.
    let frameIndex = 0;
    for (const f of fragments) {
      while (frameIndex + 1 < tableOffsets.length && tableOffsets[frameIndex + 1]! <= f.itemStart) frameIndex++;
      (frames[frameIndex] ??= []).push(toRange(f));
    }
  } else {
    for (const f of fragments) {
      if (startsCodestream(bytes, f.offset) || frames.length === 0) frames.push([]);
      frames[frames.length - 1]!.push(toRange(f));
    }
  }
  if (frames.length !== numberOfFrames) {
    throw new Part10Error(`Found ${frames.length} frames in the pixel data, NumberOfFrames says ${numberOfFrames}`);
  }
  return frames;
}

/** Reads the Transfer Syntax UID (0002,0010) from the file meta information. */
export function readTransferSyntax(file: Buffer | ByteChunks): string {
  const bytes = ByteChunks.from(file);
  if (bytes.length < 132) throw new NeedMoreBytes();
  if (bytes.latin1(128, 132) !== 'DICM') throw new Part10Error('Not a DICOM Part 10 file (no DICM prefix)');
  const c = new Cursor(bytes, 132);
  for (;;) {
    const tag = c.tag();
    if (tag >>> 16 !== 0x0002) throw new Part10Error('The file meta information has no transfer syntax');
    const { length } = readHeader(c, false);
    if (tag === 0x00020010) {
      c.need(length);
      return bytes.latin1(c.offset, c.offset + length).replace(/[\0 ]+$/, '');
    }
    c.skip(length);
  }
}

/**
 * Every frame of a whole Part 10 instance held in memory (a WADO-RS instance retrieve), as views into
 * the bytes it came in (one buffer, or the chunks an HTTP body arrived in); only a frame that straddles
 * two chunks, or is split over several fragments, is copied. The frame cache keeps an instance read
 * whole as one entry, so the views and the memory they pin are counted and dropped together.
 */
export function computeFramesOfFile(
  file: Buffer | readonly Buffer[],
  layout: { numberOfFrames: number; frameBytes: number },
): { frames: Buffer[]; transferSyntaxUid: string; isNative: boolean } {
  const bytes = ByteChunks.from(file);
  const transferSyntaxUid = readTransferSyntax(bytes);
  const location = locatePixelData(bytes, transferSyntaxUid);
  if (!location) throw new Part10Error('The instance has no pixel data');
  if (location.valueLength !== undefined) {
    const frames = Array.from({ length: layout.numberOfFrames }, (_, i) => {
      const start = location.valueOffset + i * layout.frameBytes;
      if (start + layout.frameBytes > bytes.length) throw new Part10Error('The pixel data is shorter than its frames');
      return bytes.view(start, start + layout.frameBytes);
    });
    return { frames, transferSyntaxUid, isNative: true };
  }
  const ranges = computeFrameRanges(bytes, location.valueOffset, 0, layout.numberOfFrames);
  const frames = ranges.map((parts) =>
    parts.length === 1 ? bytes.view(parts[0]![0], parts[0]![0] + parts[0]![1]) : Buffer.concat(parts.map(([offset, length]) => bytes.view(offset, offset + length))),
  );
  return { frames, transferSyntaxUid, isNative: false };
}
