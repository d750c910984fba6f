/**
 * Proves the test harness (support/orthanc.ts, support/wsi-data.ts) and pins down the Orthanc 1.10.1 /
 * DICOMweb 1.7 / WSI 1.1 behaviour the gateway is built on (DESIGN.md, PROVENANCE.md). Every fact is
 * asserted against the live server, so an Orthanc upgrade that changes one fails here first, with a
 * name that says which assumption broke.
 */
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startOrthanc, type OrthancServer } from './support/orthanc.js';
import { describeWithOrthanc } from './support/skip.js';
import {
  listDicomFiles,
  listDicomSamples,
  readDicomFileFacts,
  readDicomFilesFacts,
  readSharedWsiSeries,
  sharedWsiDir,
  transferSyntaxUids,
  wsiSamples,
  type DicomFileFacts,
  type DicomSeriesFacts,
} from './support/wsi-data.js';

const jpegFramesAccept = `multipart/related; type="image/jpeg"; transfer-syntax=${transferSyntaxUids.jpegBaseline}`;
const asStoredAccept = 'multipart/related; type="application/octet-stream"; transfer-syntax=*';

describe('shared WSI catalogue', () => {
  test('names every DICOM file in ../shared/wsi exactly once', async () => {
    const onDisk = await listDicomFiles(sharedWsiDir);
    const catalogued = listDicomSamples().flatMap((s) => s.paths);
    expect([...catalogued].sort()).toEqual(onDisk);
  });

  test('agrees with the files on transfer syntax, level sizes and frame counts', async () => {
    for (const sample of listDicomSamples()) {
      const files = await readDicomFilesFacts(sample.paths);
      if (sample.kind === 'annotation') {
        expect(files.every((f) => f.modality === undefined), sample.id).toBe(true);
        continue;
      }
      expect(new Set(files.map((f) => f.transferSyntaxUid)), sample.id).toEqual(new Set([sample.transferSyntaxUid]));
      const volumes = sample.kind === 'label' ? files : files.filter((f) => !isAssociated(f));
      const levels = volumes
        .map((f) => ({ widthPx: f.totalPixelMatrixColumns, heightPx: f.totalPixelMatrixRows, frameCount: f.numberOfFrames }))
        .sort((a, b) => (b.widthPx ?? 0) - (a.widthPx ?? 0));
      expect(levels, sample.id).toEqual(sample.levels);
      expect(new Set(files.map((f) => f.seriesInstanceUid)).size, `${sample.id}: one series`).toBe(1);
      for (const [kind, size] of [['LABEL', sample.label], ['OVERVIEW', sample.overview]] as const) {
        const image = files.find((f) => sample.kind === 'slide' && f.imageType.includes(kind));
        const found = image && { widthPx: image.totalPixelMatrixColumns, heightPx: image.totalPixelMatrixRows };
        expect(found, `${sample.id} ${kind}`).toEqual(size);
      }
    }
  });
});

describeWithOrthanc('Orthanc facts the gateway relies on', ({ orthancUrl, dicomwebUrl }) => {
  let series: DicomSeriesFacts[];
  beforeAll(async () => {
    series = await readSharedWsiSeries();
  });

  test('QIDO /series?Modality=SM lists exactly the SM series of ../shared/wsi', async () => {
    const expected = series.filter((s) => s.modality === 'SM').map((s) => s.seriesInstanceUid);
    const found = (await getDicomJson(`${dicomwebUrl}/series?Modality=SM`)).map((d) => stringValue(d, '0020000E'));
    expect(found.length).toBe(expected.length);
    expect(new Set(found)).toEqual(new Set(expected));
  });

  test('QIDO /series also lists the annotation series, without a Modality: the gateway must skip it', async () => {
    const annotation = await readDicomFileFacts(only(wsiSamples.annotation.paths));
    const all = await getDicomJson(`${dicomwebUrl}/series`);
    expect(all).toHaveLength(series.length);
    const listed = all.find((d) => stringValue(d, '0020000E') === annotation.seriesInstanceUid);
    expect(listed).toBeDefined();
    expect(listed?.['00080060']).toBeUndefined();
  });

  test('Full series metadata has ImageType and TotalPixelMatrixColumns for every instance', async () => {
    const files = await readDicomFilesFacts(wsiSamples.cmu1T256Q90.paths);
    const { studyInstanceUid, seriesInstanceUid } = await levelZero(wsiSamples.cmu1T256Q90.paths);
    const metadata = await getDicomJson(`${dicomwebUrl}/studies/${studyInstanceUid}/series/${seriesInstanceUid}/metadata`);
    expect(metadata).toHaveLength(files.length);
    for (const instance of metadata) {
      const file = files.find((f) => f.sopInstanceUid === stringValue(instance, '00080018'));
      expect(file).toBeDefined();
      expect(elementValues(instance, '00080008')).toEqual(file?.imageType);
      expect(elementValues(instance, '00480006')).toEqual([file?.totalPixelMatrixColumns]);
    }
  });

  test('JSON answers carry "Keep-Alive: timeout=1": undici drops such connections unless its threshold is < 1 s', async () => {
    // undici keeps a connection for (server timeout - keepAliveTimeoutThreshold) and drops it when that is
    // <= 0; the default threshold is 2 s (undici 7; 1 s in Node 20's bundled fetch). Measured: 20 requests
    // open 20 connections with the defaults, 1 with `new Agent({ keepAliveTimeoutThreshold: 100 })`.
    const response = await fetch(`${orthancUrl}/system`);
    await response.arrayBuffer();
    expect(response.headers.get('keep-alive')).toBe('timeout=1');
  });

  test('/frames/1,2,3 as JPEG: transfer syntax inside the quoted type, no Content-Length, stored bytes', async () => {
    const file = await levelZero(wsiSamples.cmu1T256Q90.paths);
    const response = await fetch(frameUrl(dicomwebUrl, file, '1,2,3'), { headers: { Accept: jpegFramesAccept } });
    expect(response.status).toBe(200);
    const contentType = response.headers.get('content-type') ?? '';
    // Seen: multipart/related; type="image/jpeg; transfer-syntax=1.2.840.10008.1.2.4.50"; boundary=<uuid>-<uuid>
    // (boundary unquoted; the response also says "Connection: close").
    expect(mediaTypeParameter(contentType, 'type')).toBe(`image/jpeg; transfer-syntax=${transferSyntaxUids.jpegBaseline}`);
    expect(response.headers.get('content-length')).toBeNull();
    const parts = splitMultipart(new Uint8Array(await response.arrayBuffer()), boundaryOf(contentType));
    expect(parts).toHaveLength(3);
    const stored = await readFile(file.path);
    for (const part of parts) {
      expect(part.headers['content-type']).toBe(`image/jpeg; transfer-syntax=${transferSyntaxUids.jpegBaseline}`);
      expect([...part.body.subarray(0, 2)]).toEqual([0xff, 0xd8]);
      // Passthrough, not a re-encode: the frame is byte-for-byte in the stored file.
      expect(stored.indexOf(part.body)).toBeGreaterThan(0);
    }
  });

  test('JPEG 2000 frames come back as stored, labelled image/jp2 but holding a raw J2K codestream', async () => {
    const file = await levelZero(wsiSamples.cmu1T256J2k.paths);
    const response = await fetch(frameUrl(dicomwebUrl, file, '1,2'), { headers: { Accept: asStoredAccept } });
    expect(response.status).toBe(200);
    const contentType = response.headers.get('content-type') ?? '';
    // Seen: multipart/related; type="image/jp2; transfer-syntax=1.2.840.10008.1.2.4.90"; boundary=...
    expect(mediaTypeParameter(contentType, 'type')).toBe(`image/jp2; transfer-syntax=${transferSyntaxUids.jpeg2000Lossless}`);
    const parts = splitMultipart(new Uint8Array(await response.arrayBuffer()), boundaryOf(contentType));
    expect(parts).toHaveLength(2);
    const stored = await readFile(file.path);
    for (const part of parts) {
      // SOC + SIZ markers (ISO 15444-1 Annex A), not the JP2 file signature box that image/jp2 promises.
      expect([...part.body.subarray(0, 4)]).toEqual([0xff, 0x4f, 0xff, 0x51]);
      expect(stored.indexOf(part.body)).toBeGreaterThan(0);
    }
  });

  test('Orthanc cannot transcode JPEG 2000 (500) nor render it (400): the gateway decodes it', async () => {
    const file = await levelZero(wsiSamples.cmu1T256J2k.paths);
    const asJpeg = await fetch(frameUrl(dicomwebUrl, file, '1'), { headers: { Accept: jpegFramesAccept } });
    await asJpeg.arrayBuffer();
    expect(asJpeg.status).toBe(500);
    const rendered = await fetch(`${frameUrl(dicomwebUrl, file, '1')}/rendered`, { headers: { Accept: 'image/jpeg' } });
    await rendered.arrayBuffer();
    expect(rendered.status).toBe(400);
  });

  test('the WSI plugin answers /wsi/pyramids/{id} and serves tiles', async () => {
    const file = await levelZero(wsiSamples.cmu1T256Q90.paths);
    const id = await lookupSeriesId(orthancUrl, file.seriesInstanceUid);
    const pyramid = await getJsonObject(`${orthancUrl}/wsi/pyramids/${id}`);
    expect(pyramid).toMatchObject({ ID: id, TotalWidth: 2220, TotalHeight: 2967 });
    const sizes = pyramid.Sizes;
    expect(Array.isArray(sizes) ? sizes[0] : undefined).toEqual([2220, 2967]);
    // WSI plugin 1.1 ignores ImageType: the 387x463 LABEL becomes a pyramid level (resolution ~5.74)
    // while the 1280x431 OVERVIEW is left out. Its pyramid is no model for ours.
    expect(sizes).toContainEqual([387, 463]);
    expect(sizes).not.toContainEqual([1280, 431]);
    const tile = await fetch(`${orthancUrl}/wsi/tiles/${id}/0/0/0`);
    expect(tile.status).toBe(200);
    expect(tile.headers.get('content-type')).toBe('image/jpeg');
    expect([...new Uint8Array(await tile.arrayBuffer()).subarray(0, 2)]).toEqual([0xff, 0xd8]);
  });
});

describeWithOrthanc('a second Orthanc with MainDicomTags metadata (the plugin default)', () => {
  const smallFile = wsiSamples.cmu1T256Q90.paths.find((p) => p.endsWith('wsi-000004.dcm')) ?? '';
  let started: OrthancServer | undefined;
  let file: DicomFileFacts;
  function server(): OrthancServer {
    if (started === undefined) throw new Error('the MainDicomTags Orthanc did not start');
    return started;
  }
  beforeAll(async () => {
    started = await startOrthanc({ metadataMode: 'MainDicomTags', withWsiPlugin: false });
    file = await readDicomFileFacts(smallFile);
    await started.upload([smallFile]);
  });
  afterAll(async () => {
    await started?.stop();
  });

  test('series metadata lacks TotalPixelMatrixColumns and ImageType', async () => {
    const metadata = await getDicomJson(
      `${server().dicomwebUrl}/studies/${file.studyInstanceUid}/series/${file.seriesInstanceUid}/metadata`,
    );
    expect(metadata).toHaveLength(1);
    const instance = metadata[0] ?? {};
    expect(instance['0020000E']).toBeDefined();
    expect(instance['00480006']).toBeUndefined();
    expect(instance['00080008']).toBeUndefined();
  });

  test('has no WSI plugin when asked not to load it', async () => {
    const response = await fetch(`${server().baseUrl}/wsi/pyramids/x`);
    await response.arrayBuffer();
    expect(response.status).toBe(404);
  });

  test('upload() throws on a file Orthanc refuses (the SVS is not DICOM)', async () => {
    await expect(server().upload([wsiSamples.cmu1Svs.paths[0] ?? ''])).rejects.toThrow(/HTTP 400/);
  });

  test('stop() is idempotent and the server is gone afterwards', async () => {
    await Promise.all([server().stop(), server().stop()]);
    await server().stop();
    await expect(fetch(`${server().baseUrl}/system`)).rejects.toThrow();
  });
});

// ---- helpers: DICOM JSON and multipart, just enough to read Orthanc's answers ----

type DicomJsonDataset = Record<string, unknown>;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

async function getJson(url: string): Promise<unknown> {
  const response = await fetch(url, { headers: { Accept: 'application/json' } });
  if (!response.ok) throw new Error(`GET ${url}: HTTP ${response.status}`);
  return response.json();
}

async function getJsonObject(url: string): Promise<Record<string, unknown>> {
  const body = await getJson(url);
  if (!isRecord(body)) throw new Error(`GET ${url}: not a JSON object`);
  return body;
}

async function getDicomJson(url: string): Promise<DicomJsonDataset[]> {
  const body = await getJson(url);
  if (!Array.isArray(body) || !body.every(isRecord)) throw new Error(`GET ${url}: not DICOM JSON`);
  return body;
}

function elementValues(dataset: DicomJsonDataset, tag: string): unknown[] | undefined {
  const element = dataset[tag];
  return isRecord(element) && Array.isArray(element.Value) ? element.Value : undefined;
}

function stringValue(dataset: DicomJsonDataset, tag: string): string {
  const value = elementValues(dataset, tag)?.[0];
  if (typeof value !== 'string') throw new Error(`no string at ${tag}`);
  return value;
}

function only<T>(items: readonly T[]): T {
  if (items.length !== 1 || items[0] === undefined) throw new Error(`expected one item, got ${items.length}`);
  return items[0];
}

function isAssociated(file: DicomFileFacts): boolean {
  return file.imageType.includes('LABEL') || file.imageType.includes('OVERVIEW');
}

/** The level-0 instance of a sample: the largest volume image. */
async function levelZero(paths: readonly string[]): Promise<DicomFileFacts> {
  const files = (await readDicomFilesFacts(paths)).filter((f) => !isAssociated(f));
  const largest = files.sort((a, b) => (b.totalPixelMatrixColumns ?? 0) - (a.totalPixelMatrixColumns ?? 0))[0];
  if (largest === undefined) throw new Error('no volume instance');
  return largest;
}

function frameUrl(dicomwebUrl: string, file: DicomFileFacts, frameNumbers: string): string {
  return (
    `${dicomwebUrl}/studies/${file.studyInstanceUid}/series/${file.seriesInstanceUid}` +
    `/instances/${file.sopInstanceUid}/frames/${frameNumbers}`
  );
}

/** Orthanc's own id of a series (a hash of the UIDs), for its non-DICOMweb routes such as /wsi. */
async function lookupSeriesId(orthancUrl: string, seriesInstanceUid: string): Promise<string> {
  const response = await fetch(`${orthancUrl}/tools/lookup`, { method: 'POST', body: seriesInstanceUid });
  const body: unknown = await response.json();
  const hit = Array.isArray(body) ? body.find((h) => isRecord(h) && h.Type === 'Series') : undefined;
  if (!isRecord(hit) || typeof hit.ID !== 'string') throw new Error(`series ${seriesInstanceUid} not in Orthanc`);
  return hit.ID;
}

/** One parameter of a media type, quotes removed (RFC 2045 §5.1); quoted values may hold ';'. */
function mediaTypeParameter(contentType: string, name: string): string | undefined {
  const match = new RegExp(`;\\s*${name}=(?:"([^"]*)"|([^;\\s]*))`, 'i').exec(contentType);
  return match?.[1] ?? match?.[2];
}

function boundaryOf(contentType: string): string {
  const boundary = mediaTypeParameter(contentType, 'boundary');
  if (boundary === undefined) throw new Error(`no boundary in ${contentType}`);
  return boundary;
}

interface Part {
  headers: Record<string, string>;
  body: Uint8Array;
}

/** Splits a multipart body (RFC 2046 §5.1.1) into parts; enough for Orthanc's well-formed answers. */
function splitMultipart(bytes: Uint8Array, boundary: string): Part[] {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const delimiter = Buffer.from(`--${boundary}`);
  const parts: Part[] = [];
  let start = buffer.indexOf(delimiter);
  while (start >= 0) {
    const afterDelimiter = start + delimiter.length;
    if (buffer.subarray(afterDelimiter, afterDelimiter + 2).toString() === '--') break;
    const next = buffer.indexOf(Buffer.concat([Buffer.from('\r\n'), delimiter]), afterDelimiter);
    if (next < 0) throw new Error('multipart body ends without a closing delimiter');
    const part = buffer.subarray(afterDelimiter + 2, next);
    const headerEnd = part.indexOf('\r\n\r\n');
    const headers: Record<string, string> = {};
    for (const line of part.subarray(0, headerEnd).toString('latin1').split('\r\n')) {
      const colon = line.indexOf(':');
      if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    parts.push({ headers, body: part.subarray(headerEnd + 4) });
    start = next + 2;
  }
  return parts;
}
