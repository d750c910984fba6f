/**
 * A folder of DICOM Part 10 files as a slide source: for a laptop, a demo, or slides not in a PACS.
 * The folder is scanned (recursively, never following links out of it) and indexed by UID; requests
 * only ever address files through that index, so no request can name a path.
 */
import { open, readdir, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import dcmjs from 'dcmjs';
import { isGatewayError, NotFoundError, UpstreamError } from '../../errors.js';
import { computeNativeFrameBytes } from '../../wsi/instance.js';
import { parseSeriesSummary, parseWsiInstance, readModality, type DicomJson } from '../dicom-json.js';
import type { Frame, InstanceRef, ListSeriesOptions, SeriesSummary, SlideSource, WsiInstance } from '../types.js';
import {
  computeEncapsulatedFrames,
  locatePixelData,
  NeedMoreBytes,
  readTransferSyntax,
  type FrameRanges,
  type PixelDataLocation,
} from '../part10.js';

export interface FolderSourceOptions {
  /** The folder to serve. */
  dir: string;
  /** A listing older than this is refreshed (changed files only), in ms. @default 5000 */
  rescanIntervalMs?: number;
}

interface IndexedFile {
  filePath: string;
  sizeBytes: number;
  mtimeMs: number;
  instance: WsiInstance;
  summary: SeriesSummary;
  location: PixelDataLocation;
  frameRanges?: Promise<FrameRanges[]>;
}

const EXPLICIT_LE = '1.2.840.10008.1.2.1';
const HEAD_BYTES = 64 * 1024;

async function readHead(filePath: string, sizeBytes: number): Promise<{ dataset: DicomJson; location: PixelDataLocation } | undefined> {
  const handle = await open(filePath, 'r');
  try {
    for (let length = Math.min(HEAD_BYTES, sizeBytes); ; length = Math.min(length * 4, sizeBytes)) {
      const bytes = Buffer.alloc(length);
      await handle.read(bytes, 0, length, 0);
      try {
        const transferSyntaxUid = readTransferSyntax(bytes);
        const location = locatePixelData(bytes, transferSyntaxUid);
        if (!location) return undefined;
        const header = bytes.subarray(0, location.headerEnd);
        const file = dcmjs.data.DicomMessage.readFile(
          header.buffer.slice(header.byteOffset, header.byteOffset + header.byteLength) as ArrayBuffer,
          { ignoreErrors: true },
        );
        const dataset = { ...(file.dict as DicomJson), '00020010': { vr: 'UI', Value: [transferSyntaxUid] } };
        return { dataset, location };
      } catch (error) {
        if (error instanceof NeedMoreBytes && length < sizeBytes) continue;
        throw error;
      }
    }
  } finally {
    await handle.close();
  }
}

async function listFiles(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  // Plain files only: links are skipped, so nothing outside the folder can be reached through one.
  return entries.filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name));
}

export function createFolderSource(options: FolderSourceOptions): SlideSource {
  const { dir, rescanIntervalMs = 5000 } = options;
  let files = new Map<string, IndexedFile>();
  let series = new Map<string, IndexedFile[]>();
  let scannedAt = -Infinity;
  let scanning: Promise<void> | undefined;

  async function scan(): Promise<void> {
    const root = await realpath(dir);
    const next = new Map<string, IndexedFile>();
    const paths = await listFiles(root);
    const work = [...paths];
    const worker = async (): Promise<void> => {
      for (let p = work.pop(); p !== undefined; p = work.pop()) {
        const info = await stat(p);
        const known = files.get(p);
        if (known && known.mtimeMs === info.mtimeMs && known.sizeBytes === info.size) {
          next.set(p, known);
          continue;
        }
        const head = await readHead(p, info.size).catch(() => undefined); // not DICOM, or unreadable
        if (!head || readModality(head.dataset) !== 'SM') continue;
        const instance = parseWsiInstance(head.dataset);
        const summary = parseSeriesSummary(head.dataset);
        if (!instance || !summary) continue;
        next.set(p, { filePath: p, sizeBytes: info.size, mtimeMs: info.mtimeMs, instance, summary, location: head.location });
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    const grouped = new Map<string, IndexedFile[]>();
    for (const f of next.values()) {
      const key = `${f.instance.studyUid}/${f.instance.seriesUid}`;
      const group = grouped.get(key);
      if (group) group.push(f);
      else grouped.set(key, [f]);
    }
    files = next;
    series = grouped;
    scannedAt = Date.now();
  }

  async function refresh(force = false): Promise<void> {
    if (!force && Date.now() - scannedAt < rescanIntervalMs) return;
    scanning ??= scan().finally(() => (scanning = undefined));
    await scanning;
  }

  async function findSeries(studyUid: string, seriesUid: string): Promise<IndexedFile[]> {
    await refresh();
    let found = series.get(`${studyUid}/${seriesUid}`);
    if (!found) {
      await refresh(true);
      found = series.get(`${studyUid}/${seriesUid}`);
    }
    if (!found) throw new NotFoundError('No such series in the folder', 'SERIES_NOT_FOUND');
    return found;
  }

  /**
   * Opens an indexed file. One deleted or replaced since the scan is the folder's news, not a crash: the
   * listing is dropped so the next request rescans, and the caller gets a 404 (a raw ENOENT was a 500).
   */
  async function openIndexed(file: IndexedFile) {
    try {
      return await open(file.filePath, 'r');
    } catch (error) {
      scannedAt = -Infinity;
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError('A file of this series is gone from the folder', 'SERIES_NOT_FOUND');
      throw new UpstreamError('Cannot open a local DICOM file', { cause: error });
    }
  }

  async function computeFrameRanges(file: IndexedFile): Promise<FrameRanges[]> {
    const { instance, location } = file;
    if (location.valueLength !== undefined) {
      // Native pixel data: frames follow each other, each rows x columns x samples x bytes per sample.
      const frameBytes = computeNativeFrameBytes(instance);
      return Array.from({ length: instance.numberOfFrames }, (_, i) => [[location.valueOffset + i * frameBytes, frameBytes]]);
    }
    const handle = await openIndexed(file);
    try {
      const length = file.sizeBytes - location.valueOffset;
      const bytes = Buffer.alloc(length);
      await handle.read(bytes, 0, length, location.valueOffset);
      return computeEncapsulatedFrames(bytes, location.valueOffset, instance.numberOfFrames);
    } finally {
      await handle.close();
    }
  }

  async function findInstance(ref: InstanceRef): Promise<IndexedFile> {
    const file = (await findSeries(ref.studyUid, ref.seriesUid)).find((f) => f.instance.sopInstanceUid === ref.sopInstanceUid);
    if (!file) throw new NotFoundError('No such instance in the series', 'INSTANCE_NOT_FOUND');
    return file;
  }

  async function readFrames(ref: InstanceRef, frameNumbers: readonly number[]): Promise<Frame[]> {
    const file = await findInstance(ref);
    file.frameRanges ??= computeFrameRanges(file).catch((error: unknown) => {
      file.frameRanges = undefined;
      if (isGatewayError(error)) throw error;
      throw new UpstreamError('Cannot read the pixel data of a local file', { cause: error });
    });
    const ranges = await file.frameRanges;
    const transferSyntaxUid = file.location.valueLength !== undefined ? EXPLICIT_LE : file.instance.transferSyntaxUid ?? EXPLICIT_LE;
    const handle = await openIndexed(file);
    try {
      const frames: Frame[] = [];
      for (const frameNumber of frameNumbers) {
        const frameRanges = ranges[frameNumber - 1];
        if (!frameRanges) throw new NotFoundError(`Frame ${frameNumber} is not in the instance`, 'FRAME_NOT_FOUND');
        const parts = await Promise.all(
          frameRanges.map(async ([position, length]) => {
            const part = Buffer.allocUnsafe(length);
            const { bytesRead } = await handle.read(part, 0, length, position);
            if (bytesRead !== length) throw new UpstreamError('A local DICOM file is truncated');
            return part;
          }),
        );
        frames.push({ frameNumber, data: parts.length === 1 ? parts[0]! : Buffer.concat(parts), transferSyntaxUid });
      }
      return frames;
    } finally {
      await handle.close();
    }
  }

  return {
    kind: 'folder',
    description: dir,

    async listSeries({ offset = 0, limit = 100 }: ListSeriesOptions = {}) {
      await refresh();
      return [...series.values()].map((group) => group[0]!.summary).slice(offset, offset + limit);
    },

    async readSeries(studyUid, seriesUid) {
      return (await findSeries(studyUid, seriesUid)).map((f) => f.instance);
    },

    async readAllFrames(ref: InstanceRef) {
      const file = await findInstance(ref);
      return readFrames(ref, Array.from({ length: file.instance.numberOfFrames }, (_, i) => i + 1));
    },

    readFrames,

    async ping() {
      await stat(dir);
    },

    async close() {
      files = new Map();
      series = new Map();
    },
  };
}
