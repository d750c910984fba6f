/**
 * A DICOMweb PACS as a slide source: QIDO-RS for the series list, WADO-RS series metadata (with
 * per-instance metadata when the series metadata is incomplete), and WADO-RS frames, many per request,
 * parsed from multipart/related as they stream in. Every read is retried as a whole, body included
 * (retry.ts), through one circuit breaker for this PACS (circuit-breaker.ts).
 */
import type { Readable } from 'node:stream';
import { GatewayError, NotFoundError, UpstreamError } from '../../errors.js';
import { parseSeriesSummary, parseWsiInstance, QIDO_SERIES_FIELDS, type DicomJson } from '../dicom-json.js';
import { computeFramesOfFile } from '../part10.js';
import type { Frame, InstanceLayout, InstanceRef, ListSeriesOptions, ReadFramesOptions, SeriesSummary, SlideSource, WsiInstance } from '../types.js';
import { createCircuitBreaker, type CircuitOutcome, type CircuitState } from './circuit-breaker.js';
import { createHttpClient, toUpstreamError, type HttpClientOptions } from './http.js';
import { MultipartError, parseContentType, parseMultipart, parseMultipartChunks, readTransferSyntaxParam } from './multipart.js';
import { isRetryableError, runWithRetry, type RetryDeps, type RetryPolicy } from './retry.js';

/** Media type of a frame in a transfer syntax (PS3.18 Table 8.7.3-5). */
function frameMediaType(transferSyntaxUid: string): string {
  if (transferSyntaxUid.startsWith('1.2.840.10008.1.2.4.5') || transferSyntaxUid === '1.2.840.10008.1.2.4.70') return 'image/jpeg';
  if (transferSyntaxUid === '1.2.840.10008.1.2.4.80' || transferSyntaxUid === '1.2.840.10008.1.2.4.81') return 'image/jls';
  if (transferSyntaxUid === '1.2.840.10008.1.2.4.90' || transferSyntaxUid === '1.2.840.10008.1.2.4.91') return 'image/jp2';
  if (transferSyntaxUid.startsWith('1.2.840.10008.1.2.4.20')) return 'image/jphc';
  return 'application/octet-stream';
}

/**
 * The Accept header for frames: always with an explicit transfer syntax. Without one, Orthanc transcodes
 * JPEG to lossless JPEG (10x larger); with the stored syntax, JPEG comes back byte for byte. When the
 * metadata does not say how frames are stored, `*` asks for them as stored.
 */
export function frameAcceptHeader(transferSyntaxUid: string | undefined): string {
  if (!transferSyntaxUid) return 'multipart/related; type="application/octet-stream"; transfer-syntax=*';
  return `multipart/related; type="${frameMediaType(transferSyntaxUid)}"; transfer-syntax=${transferSyntaxUid}`;
}

/** Frame lists are cut so that request URLs stay well under the 8 KB many servers accept. */
const MAX_FRAME_LIST_CHARS = 2000;

function chunkFrameNumbers(frameNumbers: readonly number[]): number[][] {
  const chunks: number[][] = [];
  let current: number[] = [];
  let chars = 0;
  for (const n of frameNumbers) {
    const len = String(n).length + 1;
    if (current.length > 0 && chars + len > MAX_FRAME_LIST_CHARS) {
      chunks.push(current);
      current = [];
      chars = 0;
    }
    current.push(n);
    chars += len;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

const INSTANCE_METADATA_CONCURRENCY = 4;

/**
 * A single-part answer is taken as the frame (or the instance) only in a media type that can be one: an
 * HTML error page from a proxy, or a multipart body mislabelled, must not become a tile.
 */
const SINGLE_PART_FRAME = /^(image\/|application\/octet-stream$)/;
const SINGLE_PART_INSTANCE = /^application\/(dicom|octet-stream)$/;

/**
 * Drops an answer's body unread. undici's body emits 'error' (RequestAbortedError) when destroyed
 * unread after it has fully arrived (a small answer), and an 'error' with no listener kills the
 * process: a body never iterated (a wrong media type, a multipart answer without a boundary) has none.
 * Found by the fault proxy (test/reliability/faults.ts); regression test in dicomweb-source.test.ts.
 */
function discardBody(body: Readable): void {
  body.on('error', () => undefined);
  body.destroy();
}

export interface DicomwebSourceOptions extends HttpClientOptions {
  /** Tries after the first for a failed read (DICOMWEB_RETRIES). @default 2 */
  retries?: number;
  /** Most time one read may take, tries and waits included, in ms (DICOMWEB_DEADLINE_MS). @default 2 * timeoutMs */
  deadlineMs?: number;
  /** Consecutive failed requests that open the circuit; 0 = never (DICOMWEB_BREAKER_FAILURES). @default 10 */
  breakerFailures?: number;
  /** Time the circuit stays open before a trial request, in ms (DICOMWEB_BREAKER_COOLDOWN_MS). @default 5000 */
  breakerCooldownMs?: number;
  /** Told of each retry, with the operation ('frames', 'series metadata'). Must not throw. */
  onRetry?: ((operation: string) => void) | undefined;
  /** Told of each change of the circuit's state. Must not throw. */
  onCircuitChange?: ((state: CircuitState) => void) | undefined;
  /** Clock, sleep and randomness of retries and of the breaker (tests). */
  retryDeps?: RetryDeps | undefined;
}

export function createDicomwebSource(options: DicomwebSourceOptions): SlideSource {
  const { retries = 2, deadlineMs = 2 * options.timeoutMs, breakerFailures = 10, breakerCooldownMs = 5000, retryDeps } = options;
  const http = createHttpClient(options);
  const seriesPath = (studyUid: string, seriesUid: string) => `/studies/${studyUid}/series/${seriesUid}`;
  const policy: RetryPolicy = { retries, baseDelayMs: 100, maxDelayMs: 2000, attemptTimeoutMs: options.timeoutMs, deadlineMs };
  const breaker = createCircuitBreaker({
    failureThreshold: breakerFailures,
    cooldownMs: breakerCooldownMs,
    ...(retryDeps ? { now: retryDeps.now } : {}),
    onStateChange: options.onCircuitChange,
  });

  /**
   * One read of the PACS, retried as a whole (headers and body) through the breaker. `operation` gets
   * its try's timeout. `tries` of 1 is for probes (/readyz), which should say how the PACS is now.
   */
  function read<T>(what: string, signal: AbortSignal | undefined, operation: (timeoutMs: number) => Promise<T>, tries = retries + 1): Promise<T> {
    const classify = (error: unknown): CircuitOutcome =>
      signal?.aborted ? 'ignore' : isRetryableError(error) ? 'failure' : error instanceof GatewayError ? 'success' : 'ignore';
    return runWithRetry(({ timeoutMs }) => breaker.run(() => operation(timeoutMs), classify), { ...policy, retries: tries - 1 }, {
      signal,
      onRetry: () => options.onRetry?.(what),
      ...(retryDeps ? { deps: retryDeps } : {}),
    });
  }

  function readDatasets(path: string, what: string, signal?: AbortSignal, tries?: number): Promise<DicomJson[]> {
    return read(what, signal, (timeoutMs) => readDatasetsOnce(path, what, signal, timeoutMs), tries);
  }

  async function readDatasetsOnce(path: string, what: string, signal: AbortSignal | undefined, timeoutMs: number): Promise<DicomJson[]> {
    const json = await http.getJson(path, { what, signal, timeoutMs });
    if (!Array.isArray(json)) throw new UpstreamError(`The PACS's ${what} answer is not a JSON array`);
    return json.filter((d): d is DicomJson => typeof d === 'object' && d !== null);
  }

  async function readFrameChunk(ref: InstanceRef, frameNumbers: number[], options: ReadFramesOptions, timeoutMs: number): Promise<Frame[]> {
    const what = 'frames';
    const path = `${seriesPath(ref.studyUid, ref.seriesUid)}/instances/${ref.sopInstanceUid}/frames/${frameNumbers.join(',')}`;
    const response = await http.get(path, { accept: frameAcceptHeader(options.transferSyntaxUid), signal: options.signal, what, timeoutMs });
    const contentType = parseContentType(response.contentType);
    const defaultSyntax = readTransferSyntaxParam(contentType) ?? options.transferSyntaxUid;
    const frames: Frame[] = [];
    try {
      if (contentType.mediaType !== 'multipart/related' && !SINGLE_PART_FRAME.test(contentType.mediaType)) {
        throw new MultipartError('neither multipart/related nor a frame media type');
      }
      if (contentType.mediaType !== 'multipart/related') {
        // A single-part answer (some servers do this for one frame).
        const data = Buffer.from(await response.body.arrayBuffer());
        frames.push({ frameNumber: frameNumbers[0]!, data, transferSyntaxUid: defaultSyntax ?? '1.2.840.10008.1.2.1' });
      } else {
        for await (const part of parseMultipart(response.body, contentType.params['boundary'] ?? '')) {
          const frameNumber = frameNumbers[frames.length];
          if (frameNumber === undefined) throw new UpstreamError('The PACS sent more frames than were asked for');
          const partType = part.headers['content-type'];
          // Each part says its own transfer syntax; fall back to the response's, then to what we asked.
          const transferSyntaxUid = (partType && readTransferSyntaxParam(parseContentType(partType))) ?? defaultSyntax;
          frames.push({ frameNumber, data: part.data, transferSyntaxUid: transferSyntaxUid ?? '1.2.840.10008.1.2.1' });
        }
      }
    } catch (error) {
      discardBody(response.body);
      if (error instanceof MultipartError) throw new UpstreamError(`The PACS's frames answer is malformed: ${error.message}`, { cause: error });
      throw toUpstreamError(error, what, options.signal);
    }
    if (frames.length !== frameNumbers.length) {
      throw new UpstreamError(`The PACS sent ${frames.length} of the ${frameNumbers.length} frames asked for`);
    }
    return frames;
  }

  async function readAllFramesOnce(ref: InstanceRef, layout: InstanceLayout, signal: AbortSignal | undefined, timeoutMs: number): Promise<Frame[]> {
    const what = 'instance';
    const path = `${seriesPath(ref.studyUid, ref.seriesUid)}/instances/${ref.sopInstanceUid}`;
    const response = await http.get(path, { accept: 'multipart/related; type="application/dicom"; transfer-syntax=*', signal, what, timeoutMs });
    const contentType = parseContentType(response.contentType);
    // The instance as the chunks it arrived in: joining 10 MB cost more than reading it (ByteChunks).
    let file: Buffer | Buffer[] | undefined;
    try {
      if (contentType.mediaType !== 'multipart/related' && !SINGLE_PART_INSTANCE.test(contentType.mediaType)) {
        throw new MultipartError('neither multipart/related nor application/dicom');
      }
      if (contentType.mediaType !== 'multipart/related') file = Buffer.from(await response.body.arrayBuffer());
      else for await (const part of parseMultipartChunks(response.body, contentType.params['boundary'] ?? '')) file ??= part.chunks;
    } catch (error) {
      discardBody(response.body);
      if (error instanceof MultipartError) throw new UpstreamError(`The PACS's instance answer is malformed: ${error.message}`, { cause: error });
      throw toUpstreamError(error, what, signal);
    }
    if (!file) throw new UpstreamError('The PACS sent no instance');
    try {
      const { frames, transferSyntaxUid, isNative } = computeFramesOfFile(file, layout);
      // Native pixel data is handed on as explicit little endian, whatever dataset encoding held it.
      const frameSyntax = isNative ? '1.2.840.10008.1.2.1' : transferSyntaxUid;
      return frames.map((data, i) => ({ frameNumber: i + 1, data, transferSyntaxUid: frameSyntax }));
    } catch (error) {
      throw new UpstreamError('The PACS sent an instance the gateway cannot read', { cause: error });
    }
  }

  return {
    kind: 'dicomweb',
    description: http.baseUrl,

    async listSeries({ offset = 0, limit = 100, signal }: ListSeriesOptions = {}): Promise<SeriesSummary[]> {
      const fields = QIDO_SERIES_FIELDS.map((f) => `includefield=${f}`).join('&');
      const datasets = await readDatasets(`/series?Modality=SM&${fields}&offset=${offset}&limit=${limit}`, 'series search', signal);
      return datasets.map(parseSeriesSummary).filter((s): s is SeriesSummary => s !== undefined);
    },

    async readSeries(studyUid, seriesUid, signal): Promise<WsiInstance[]> {
      const datasets = await readDatasets(`${seriesPath(studyUid, seriesUid)}/metadata`, 'series metadata', signal);
      const instances = datasets.map(parseWsiInstance).filter((i): i is WsiInstance => i !== undefined);
      // Some servers answer an unknown series with an empty list rather than 404.
      if (instances.length === 0) throw new NotFoundError('The PACS has no such series', 'UPSTREAM_NOT_FOUND');
      // A PACS configured to return only main tags (Orthanc's default "MainDicomTags") leaves out what
      // geometry needs: ask for each incomplete instance's own metadata, a few at a time.
      const incomplete = instances.filter((i) => i.missing.length > 0);
      for (let start = 0; start < incomplete.length; start += INSTANCE_METADATA_CONCURRENCY) {
        await Promise.all(
          incomplete.slice(start, start + INSTANCE_METADATA_CONCURRENCY).map(async (partial) => {
            const path = `${seriesPath(studyUid, seriesUid)}/instances/${partial.sopInstanceUid}/metadata`;
            const [dataset] = await readDatasets(path, 'instance metadata', signal);
            const full = dataset && parseWsiInstance(dataset);
            if (full) instances[instances.indexOf(partial)] = full;
          }),
        );
      }
      return instances;
    },

    async readFrames(ref, frameNumbers, options = {}): Promise<Frame[]> {
      if (frameNumbers.length === 0) return [];
      const chunks = await Promise.all(
        chunkFrameNumbers(frameNumbers).map((chunk) => read('frames', options.signal, (timeoutMs) => readFrameChunk(ref, chunk, options, timeoutMs))),
      );
      return chunks.flat();
    },

    readAllFrames(ref: InstanceRef, layout: InstanceLayout, signal?: AbortSignal): Promise<Frame[]> {
      return read('instance', signal, (timeoutMs) => readAllFramesOnce(ref, layout, signal, timeoutMs));
    },

    async ping(signal) {
      await readDatasets('/series?Modality=SM&limit=1', 'series search', signal, 1);
    },

    close: () => http.close(),
  };
}
