/**
 * STOW-RS (PS3.18 §10.5): Part 10 files sent to the PACS through the gateway's own DICOMweb client, so
 * auth, extra headers, the connection pool and error mapping are the ones the gateway reads with.
 * One instance per request: a pyramid's level 0 can be gigabytes, and a failure then names its file.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { Readable } from 'node:stream';
import { UpstreamError } from '../errors.js';
import type { HttpClient } from '../source/dicomweb/http.js';

export interface StoreOptions {
  signal?: AbortSignal | undefined;
  /** Deadline of one instance's upload, in ms. @default 10 minutes */
  timeoutMs?: number;
  /** Called after each stored file. */
  onStored?: (path: string, index: number) => void;
}

/** ReferencedSOPSequence and FailedSOPSequence of the STOW-RS response (PS3.18 Table 10.5.3-1). */
const REFERENCED_SOP_SEQUENCE = '00081199';
const FAILED_SOP_SEQUENCE = '00081198';
const FAILURE_REASON = '00081197';

interface DicomJsonValue {
  Value?: unknown[];
}

/** The failure reasons (numbers, e.g. 272 = processing failure, 43264 = SOP class not supported) the PACS reported. */
function readFailures(json: unknown): number[] {
  const datasets = Array.isArray(json) ? json : [json];
  const reasons: number[] = [];
  for (const dataset of datasets) {
    const failed = (dataset as Record<string, DicomJsonValue> | null)?.[FAILED_SOP_SEQUENCE]?.Value ?? [];
    for (const item of failed) reasons.push(Number((item as Record<string, DicomJsonValue>)[FAILURE_REASON]?.Value?.[0] ?? NaN));
  }
  return reasons;
}

function countReferenced(json: unknown): number {
  const datasets = Array.isArray(json) ? json : [json];
  return datasets.reduce<number>((n, dataset) => n + ((dataset as Record<string, DicomJsonValue> | null)?.[REFERENCED_SOP_SEQUENCE]?.Value?.length ?? 0), 0);
}

/** Stores one Part 10 file as the single part of a multipart/related body. */
async function storeFile(client: HttpClient, path: string, options: StoreOptions): Promise<void> {
  const boundary = `wsi-gateway-${randomBytes(12).toString('hex')}`;
  const head = Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`, 'latin1');
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`, 'latin1');
  const { size } = await stat(path);
  const body = Readable.from(
    (async function* () {
      yield head;
      yield* createReadStream(path);
      yield tail;
    })(),
  );
  const what = `STOW-RS store of ${basename(path)}`;
  const response = await client.post('/studies', {
    what,
    accept: 'application/dicom+json',
    contentType: `multipart/related; type="application/dicom"; boundary=${boundary}`,
    body,
    contentLength: head.length + size + tail.length,
    signal: options.signal,
    timeoutMs: options.timeoutMs ?? 600_000,
  });
  const text = await response.body.text();
  let json: unknown = [];
  try {
    json = text.trim() === '' ? [] : (JSON.parse(text) as unknown);
  } catch {
    // A 200 with a body that is not JSON: nothing to check it against, the status said it was stored.
  }
  const failures = readFailures(json);
  if (failures.length > 0) throw new UpstreamError(`The PACS refused ${basename(path)} (failure reason ${failures.join(', ')})`);
  // 202 means "stored with warnings"; a response that references nothing is treated as stored too,
  // since some servers answer 200 without a body.
  if (response.status !== 200 && response.status !== 202 && countReferenced(json) === 0) {
    throw new UpstreamError(`The PACS answered ${response.status} to the ${what}`);
  }
}

/** Stores `paths` (DICOM Part 10 files) one after another; throws at the first file the PACS refuses. */
export async function storeInstances(client: HttpClient, paths: readonly string[], options: StoreOptions = {}): Promise<void> {
  for (const [index, path] of paths.entries()) {
    await storeFile(client, path, options);
    options.onStored?.(path, index);
  }
}
