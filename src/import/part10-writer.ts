/**
 * Writing a DICOM Part 10 file (PS3.10 §7) with encapsulated pixel data (PS3.5 A.4): dcmjs encodes the
 * file meta and the attributes; the pixel data is streamed here, one fragment per frame behind a Basic
 * Offset Table, so an instance never has to be held in memory whole.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import dcmjs from 'dcmjs';
import { ITEM, PIXEL_DATA, SEQUENCE_DELIMITER, UNDEFINED_LENGTH } from '../source/part10.js';
import type { Dataset } from './wsi-dataset.js';

/** Identifies this writer in the file meta (0002,0012): a fixed UID under the 2.25 root. */
export const IMPLEMENTATION_CLASS_UID = '2.25.150473093455057307097897794063469333423';
/** (0002,0013), SH: 16 characters at most. */
export const IMPLEMENTATION_VERSION_NAME = 'WSIGW_WRITER_1';

export interface FileMeta {
  sopClassUid: string;
  sopInstanceUid: string;
  transferSyntaxUid: string;
}

/** dcmjs drops keywords it does not know with a log line; a typo must fail loudly instead. */
function checkKeywords(dataset: Dataset, where: string): void {
  for (const [keyword, value] of Object.entries(dataset)) {
    if (!dcmjs.data.DicomMetaDictionary.nameMap[keyword]) throw new Error(`Unknown DICOM keyword ${where}${keyword}`);
    if (Array.isArray(value)) {
      for (const item of value) {
        if (typeof item === 'object' && item !== null && !(item instanceof ArrayBuffer)) checkKeywords(item as Dataset, `${where}${keyword} > `);
      }
    }
  }
}

/** The preamble, file meta and every attribute of `dataset`: the file up to its pixel data. */
export function encodePart10Header(meta: FileMeta, dataset: Dataset): Buffer {
  checkKeywords(dataset, '');
  const { DicomDict, DicomMetaDictionary } = dcmjs.data;
  const file = new DicomDict(
    DicomMetaDictionary.denaturalizeDataset({
      FileMetaInformationVersion: new Uint8Array([0, 1]).buffer,
      MediaStorageSOPClassUID: meta.sopClassUid,
      MediaStorageSOPInstanceUID: meta.sopInstanceUid,
      TransferSyntaxUID: meta.transferSyntaxUid,
      ImplementationClassUID: IMPLEMENTATION_CLASS_UID,
      ImplementationVersionName: IMPLEMENTATION_VERSION_NAME,
    }),
  );
  file.dict = DicomMetaDictionary.denaturalizeDataset(dataset);
  return Buffer.from(file.write());
}

/** An item or delimiter header: tag (group, element) and a 32-bit length, little endian. */
function encodeItemHeader(tag: number, length: number): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt16LE(tag >>> 16, 0);
  header.writeUInt16LE(tag & 0xffff, 2);
  header.writeUInt32LE(length, 4);
  return header;
}

/** (7FE0,0010) OB with undefined length, explicit VR: the start of encapsulated pixel data. */
function encodePixelDataHeader(): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16LE(PIXEL_DATA >>> 16, 0);
  header.writeUInt16LE(PIXEL_DATA & 0xffff, 2);
  header.write('OB', 4, 'latin1'); // then 2 reserved zero bytes
  header.writeUInt32LE(UNDEFINED_LENGTH, 8);
  return header;
}

export interface EncapsulatedStats {
  frameCount: number;
  /** Sum of the frames' lengths, without item headers or padding. */
  frameBytes: number;
}

const PAD = Buffer.alloc(1);

/**
 * Writes `frames` (encoded frames, in frame order) as the pixel data of a Part 10 file at `path`.
 * `encodeHeader` is called once all frames are known (LossyImageCompressionRatio depends on their
 * size) and returns the file up to the pixel data. The fragments go to a scratch file first, then are
 * copied behind the header and the Basic Offset Table, whose offsets they determine. The file appears
 * under its name only when complete.
 */
export async function writeEncapsulatedPart10(
  path: string,
  frames: AsyncIterable<Buffer>,
  encodeHeader: (stats: EncapsulatedStats) => Buffer,
): Promise<EncapsulatedStats & { fileBytes: number }> {
  const scratch = `${path}.frames.tmp`;
  const partial = `${path}.partial`;
  try {
    const offsets: number[] = [];
    let position = 0;
    let frameBytes = 0;
    const handle = await open(scratch, 'w');
    try {
      for await (const frame of frames) {
        // Offsets are 32-bit; beyond 4 GiB an Extended Offset Table would be needed (not written here).
        if (position > 0xffffffff) throw new Error('The frames of one instance exceed 4 GiB: use a larger downsample or split the level');
        offsets.push(position);
        // Items have an even length (PS3.5 A.4): an odd JPEG gets one zero byte after its EOI marker.
        const pad = frame.length % 2;
        await handle.writev(pad ? [encodeItemHeader(ITEM, frame.length + 1), frame, PAD] : [encodeItemHeader(ITEM, frame.length), frame]);
        position += 8 + frame.length + pad;
        frameBytes += frame.length;
      }
    } finally {
      await handle.close();
    }
    const stats = { frameCount: offsets.length, frameBytes };
    // The Basic Offset Table: where each frame's first item starts, from the first fragment's item tag.
    const offsetTable = encodeItemHeader(ITEM, offsets.length * 4);
    const table = Buffer.alloc(offsets.length * 4);
    offsets.forEach((offset, i) => table.writeUInt32LE(offset, i * 4));
    const header = encodeHeader(stats);
    await pipeline(async function* () {
      yield header;
      yield encodePixelDataHeader();
      yield offsetTable;
      yield table;
      yield* createReadStream(scratch);
      yield encodeItemHeader(SEQUENCE_DELIMITER, 0);
    }, createWriteStream(partial));
    await rename(partial, path);
    return { ...stats, fileBytes: header.length + 12 + 8 + table.length + position + 8 };
  } finally {
    await rm(scratch, { force: true });
    await rm(partial, { force: true });
  }
}
