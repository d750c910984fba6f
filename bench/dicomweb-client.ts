/**
 * dicomweb-client (ImagingDataCommons' JS DICOMweb client, the one the user named) against the gateway's
 * own undici source, on the same Orthanc and the same large slide: frames (frames/s and peak memory for
 * 1, 16, 64 and 200 frames per request, 4 requests in flight), series metadata and QIDO (median ms),
 * plus probes of how each behaves on a 5xx, a refused connection, a server that never answers, an
 * abort, a short multipart answer and invalid JSON. Prints a markdown report and writes it to
 * bench/results/dicomweb-client.md. It measures; it asserts no timings (they depend on the machine).
 *
 * Run (global.gc makes the memory baselines comparable; without it the figures are noisier):
 *   node --expose-gc --import tsx bench/dicomweb-client.ts
 * `npm run bench:client` also works, without --expose-gc.
 *
 * Needs Orthanc (orthanc orthanc-dicomweb) and what make-large-slide.sh needs; the slide is built once
 * into os.tmpdir()/wsi-gateway-bench/large-slide and reused.
 */
import { subscribe } from 'node:diagnostics_channel';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { api } from 'dicomweb-client';
import { Agent, request } from 'undici';
import { createDicomwebSource } from '../src/source/dicomweb/dicomweb-source.js';
import type { SlideSource } from '../src/source/types.js';
import { startOrthanc, type OrthancServer } from '../test/support/orthanc.js';
import { makeLargeSlide, readDicomFilesFacts, type DicomFileFacts } from '../test/support/wsi-data.js';
import { writeReport } from './support/report.js';

const require = createRequire(import.meta.url);
const benchDir = dirname(fileURLToPath(import.meta.url));
const resultsPath = join(benchDir, 'results', 'dicomweb-client.md');
const jpegBaseline = '1.2.840.10008.1.2.4.50';

// ---------------------------------------------------------------------------------------------------
// dicomweb-client and xhr2, typed for what this file uses.
//
// dicomweb-client's bundled .d.ts is generated from its JSDoc and does not match its code for the calls
// used here (retrieveInstanceFrames has no `mediaTypes` and a required `request`, and returns `any[]`
// where the code returns a Promise; searchForSeries returns `any[]`; the constructor requires
// `singlepart`). So the client is viewed through this small interface of what the 0.11.3 code does.
// xhr2 ships no types: it is loaded with require and checked to be a constructor.

/** One acceptable media type of a WADO-RS request. */
interface MediaType {
  mediaType: string;
  transferSyntaxUID?: string;
}

/** The part of an XMLHttpRequest (xhr2's) the probes touch. */
interface XhrLike {
  timeout: number;
  abort(): void;
}

/** `request` option of dicomweb-client calls: a caller-made XHR is the only handle for abort/timeout. */
interface ClientRequestOptions {
  instance?: XhrLike;
}

interface DicomwebClientCalls {
  retrieveInstanceFrames(options: {
    studyInstanceUID: string;
    seriesInstanceUID: string;
    sopInstanceUID: string;
    frameNumbers: readonly number[];
    mediaTypes?: MediaType[];
    request?: ClientRequestOptions;
  }): Promise<unknown>;
  retrieveSeriesMetadata(options: {
    studyInstanceUID: string;
    seriesInstanceUID: string;
    request?: ClientRequestOptions;
  }): Promise<unknown>;
  searchForSeries(options: { queryParams?: Record<string, string>; request?: ClientRequestOptions }): Promise<unknown>;
}

const Xhr2: unknown = require('xhr2');
if (typeof Xhr2 !== 'function') throw new Error('xhr2 did not export a constructor');
const XhrConstructor = Xhr2 as new () => XhrLike;
// dicomweb-client calls `new XMLHttpRequest()` for every request; Node has none.
Object.assign(globalThis, { XMLHttpRequest: Xhr2 });

function createClient(url: string, verbose = false): DicomwebClientCalls {
  // verbose (the default) makes every failed request console.error the whole XHR and the response body.
  const client: unknown = new api.DICOMwebClient({ url, singlepart: false, verbose });
  return client as DicomwebClientCalls;
}

function packageVersion(name: string): string {
  const manifest: unknown = JSON.parse(readFileSync(require.resolve(`${name}/package.json`), 'utf8'));
  const version = typeof manifest === 'object' && manifest !== null && 'version' in manifest ? manifest.version : undefined;
  return typeof version === 'string' ? version : '?';
}

// ---------------------------------------------------------------------------------------------------
// Measuring helpers.

interface MemoryPeak {
  rssMb: number;
  heapMb: number;
  /** ArrayBuffers and Buffers live outside the V8 heap: this is where frame bytes go. */
  arrayBuffersMb: number;
}

const mb = (bytes: number): number => bytes / (1024 * 1024);

/** Collects garbage twice (weak callbacks run between passes) when --expose-gc gave us `gc`. */
async function settle(): Promise<void> {
  if (globalThis.gc === undefined) return;
  globalThis.gc();
  await new Promise((r) => setImmediate(r));
  globalThis.gc();
}

/**
 * Samples process.memoryUsage() every 20 ms (and whenever `sample()` is called) and keeps the maximum of
 * each figure minus its value at start. The timer shares the event loop with the code measured, so a
 * long synchronous stretch (xhr2 copying a body, a multipart decode) delays it; the callers also sample
 * right after each request completes, when that request's buffers are still alive.
 */
class PeakSampler {
  private readonly base = process.memoryUsage();
  private peak = { rss: 0, heap: 0, arrayBuffers: 0 };
  private readonly timer = setInterval(() => this.sample(), 20);

  sample(): void {
    const now = process.memoryUsage();
    this.peak = {
      rss: Math.max(this.peak.rss, now.rss - this.base.rss),
      heap: Math.max(this.peak.heap, now.heapUsed - this.base.heapUsed),
      arrayBuffers: Math.max(this.peak.arrayBuffers, now.arrayBuffers - this.base.arrayBuffers),
    };
  }

  stop(): MemoryPeak {
    clearInterval(this.timer);
    this.sample();
    return { rssMb: mb(this.peak.rss), heapMb: mb(this.peak.heap), arrayBuffersMb: mb(this.peak.arrayBuffers) };
  }
}

/** New TCP connections, counted through Node's `net.client.socket` channel (http.Agent and undici both use net.connect). */
let socketsOpened = 0;
subscribe('net.client.socket', () => {
  socketsOpened++;
});

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

const maxOf = (values: readonly number[]): number => Math.max(...values);

/** dicomweb-client's errors carry the PACS's `status`; the gateway's carry a `code` and the `status` it would answer with. */
function errorText(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = 'code' in error && typeof error.code === 'string' ? `, code ${error.code}` : '';
  const status = 'status' in error ? `, .status ${String(error.status)}` : '';
  return `${error.name}: ${error.message}${code}${status}`;
}

// ---------------------------------------------------------------------------------------------------
// The two frame readers, behind one shape: frame numbers in, frame bytes out (in the order asked).

type FrameReader = (frameNumbers: readonly number[]) => Promise<Uint8Array[]>;

interface Instance {
  studyUid: string;
  seriesUid: string;
  sopInstanceUid: string;
}

/** Checks that dicomweb-client gave an array of ArrayBuffers and views them as bytes. */
function asFrames(result: unknown, asked: number): Uint8Array[] {
  if (!Array.isArray(result)) throw new Error(`dicomweb-client returned ${typeof result}, not an array`);
  const frames = result.map((item: unknown) => {
    if (!(item instanceof ArrayBuffer)) throw new Error(`dicomweb-client returned an array of ${Object.prototype.toString.call(item)}`);
    return new Uint8Array(item);
  });
  // dicomweb-client does not check the part count itself (see the short-multipart probe).
  if (frames.length !== asked) throw new Error(`dicomweb-client returned ${frames.length} of ${asked} frames`);
  return frames;
}

function clientFrameReader(client: DicomwebClientCalls, instance: Instance): FrameReader {
  return async (frameNumbers) =>
    asFrames(
      await client.retrieveInstanceFrames({
        studyInstanceUID: instance.studyUid,
        seriesInstanceUID: instance.seriesUid,
        sopInstanceUID: instance.sopInstanceUid,
        frameNumbers,
        mediaTypes: [{ mediaType: 'image/jpeg', transferSyntaxUID: jpegBaseline }],
      }),
      frameNumbers.length,
    );
}

function gatewayFrameReader(source: SlideSource, instance: Instance): FrameReader {
  return async (frameNumbers) =>
    (await source.readFrames(instance, frameNumbers, { transferSyntaxUid: jpegBaseline })).map((f) => f.data);
}

function batchesOf(frameCount: number, perRequest: number): number[][] {
  const batches: number[][] = [];
  for (let first = 1; first <= frameCount; first += perRequest) {
    const last = Math.min(frameCount, first + perRequest - 1);
    batches.push(Array.from({ length: last - first + 1 }, (_, i) => first + i));
  }
  return batches;
}

interface FrameRun {
  framesPerSecond: number;
  memory: MemoryPeak;
  sockets: number;
  /** Every frame's length, by frame number − 1: the cheap cross-check of a timed run. */
  lengths: Int32Array;
}

const IN_FLIGHT = 4;

/**
 * Fetches the batches with IN_FLIGHT requests at a time and drops each answer once counted, so the
 * peak memory is what one client needs to hand over IN_FLIGHT answers, not the whole instance.
 */
async function timeFrames(read: FrameReader, batches: readonly number[][], frameCount: number): Promise<FrameRun> {
  await settle();
  const lengths = new Int32Array(frameCount);
  const sampler = new PeakSampler();
  const socketsBefore = socketsOpened;
  const started = performance.now();
  let next = 0;
  let frames = 0;
  async function worker(): Promise<void> {
    for (let i = next++; i < batches.length; i = next++) {
      const batch = batches[i]!;
      const data = await read(batch);
      sampler.sample();
      batch.forEach((n, j) => {
        lengths[n - 1] = data[j]!.byteLength;
      });
      frames += data.length;
    }
  }
  await Promise.all(Array.from({ length: IN_FLIGHT }, () => worker()));
  const seconds = (performance.now() - started) / 1000;
  return { framesPerSecond: frames / seconds, memory: sampler.stop(), sockets: socketsOpened - socketsBefore, lengths };
}

interface Correctness {
  /** What dicomweb-client's retrieveInstanceFrames resolved to, in words. */
  returned: string;
  framesCompared: number;
  framesEqual: number;
  allJpeg: boolean;
  singleFramesEqual: boolean;
}

/** Every frame of the instance from both readers (200 per request), compared byte for byte; a few single frames too. */
async function checkFrames(
  client: DicomwebClientCalls,
  instance: Instance,
  clientRead: FrameReader,
  gatewayRead: FrameReader,
  frameCount: number,
): Promise<Correctness> {
  const raw = await client.retrieveInstanceFrames({
    studyInstanceUID: instance.studyUid,
    seriesInstanceUID: instance.seriesUid,
    sopInstanceUID: instance.sopInstanceUid,
    frameNumbers: [1, 2],
    mediaTypes: [{ mediaType: 'image/jpeg', transferSyntaxUID: jpegBaseline }],
  });
  const first: unknown = Array.isArray(raw) ? raw[0] : undefined;
  const props = first instanceof ArrayBuffer ? describeFrameProperties(first) : '';
  const returned = Array.isArray(raw)
    ? `Promise of Array(${raw.length}) of ${raw.map((x: unknown) => Object.prototype.toString.call(x).slice(8, -1)).join(', ')}${props}`
    : `Promise of ${Object.prototype.toString.call(raw)}`;

  let framesEqual = 0;
  let allJpeg = true;
  for (const batch of batchesOf(frameCount, 200)) {
    const [a, b] = await Promise.all([clientRead(batch), gatewayRead(batch)]);
    batch.forEach((_, j) => {
      const x = a[j]!;
      const y = b[j]!;
      if (Buffer.compare(x, y) === 0) framesEqual++;
      if (x[0] !== 0xff || x[1] !== 0xd8) allJpeg = false;
    });
  }
  let singleFramesEqual = true;
  for (const n of [1, Math.ceil(frameCount / 2), frameCount]) {
    const [[a], [b], many] = await Promise.all([clientRead([n]), gatewayRead([n]), gatewayRead([n - 1 || 2, n])]);
    if (!a || !b || Buffer.compare(a, b) !== 0 || Buffer.compare(a, many[1]!) !== 0) singleFramesEqual = false;
  }
  return { returned, framesCompared: frameCount, framesEqual, allJpeg, singleFramesEqual };
}

/** dicomweb-client hangs non-enumerable `contentType` and `transferSyntaxUID` (from the first part's headers) on each buffer. */
function describeFrameProperties(frame: ArrayBuffer): string {
  const described = ['contentType', 'transferSyntaxUID']
    .map((key) => [key, Object.getOwnPropertyDescriptor(frame, key)?.value] as const)
    .filter(([, value]) => value !== undefined)
    .map(([key, value]) => `${key}=${JSON.stringify(value)}`);
  return described.length > 0 ? ` (each with ${described.join(', ')})` : '';
}

// ---------------------------------------------------------------------------------------------------
// Metadata and QIDO: median wall time of a few repetitions, alternating which side goes first.

interface TimedCalls {
  medianMs: number;
  memory: MemoryPeak;
}

/** One call: wall time, and peak memory while its result is still referenced. */
async function timeCall(call: () => Promise<unknown>): Promise<{ ms: number; memory: MemoryPeak }> {
  await settle();
  const sampler = new PeakSampler();
  const started = performance.now();
  const result = await call();
  const ms = performance.now() - started;
  sampler.sample();
  const memory = sampler.stop();
  if (result === undefined) throw new Error('a timed call returned nothing');
  return { ms, memory };
}

/** Runs each named call `repetitions` times, round-robin (so no side always runs on a warmer server). */
async function compareCalls(calls: Record<string, () => Promise<unknown>>, repetitions: number): Promise<Record<string, TimedCalls>> {
  const names = Object.keys(calls);
  const times: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  const memory: Record<string, MemoryPeak[]> = Object.fromEntries(names.map((n) => [n, []]));
  for (let i = 0; i < repetitions; i++) {
    const order = i % 2 === 0 ? names : [...names].reverse();
    for (const name of order) {
      const one = await timeCall(calls[name]!);
      times[name]!.push(one.ms);
      memory[name]!.push(one.memory);
    }
  }
  return Object.fromEntries(
    names.map((n) => [
      n,
      {
        medianMs: median(times[n]!),
        memory: {
          rssMb: maxOf(memory[n]!.map((p) => p.rssMb)),
          heapMb: maxOf(memory[n]!.map((p) => p.heapMb)),
          arrayBuffersMb: maxOf(memory[n]!.map((p) => p.arrayBuffersMb)),
        },
      },
    ]),
  );
}

// ---------------------------------------------------------------------------------------------------
// Failure probes against small local servers: what each side does when the PACS misbehaves.

interface Probe {
  case: string;
  dicomwebClient: string;
  gateway: string;
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

async function withServer<T>(handler: Handler, body: (url: string) => Promise<T>): Promise<T> {
  const server: Server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  try {
    return await body(`http://127.0.0.1:${port}/dicom-web`);
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
}

/** Settles `promise` or gives up after `ms`; never leaves a rejection unhandled. */
async function outcome(promise: Promise<unknown>, ms: number): Promise<string> {
  const started = performance.now();
  const elapsed = (): string => `${Math.round(performance.now() - started)} ms`;
  let timer: NodeJS.Timeout | undefined;
  const gaveUp = new Promise<string>((r) => {
    timer = setTimeout(() => r(`still pending after ${ms} ms`), ms);
  });
  const settled = promise.then(
    (value: unknown) => `resolved after ${elapsed()}: ${describeValue(value)}`,
    (error: unknown) => `rejected after ${elapsed()}: ${errorText(error)}`,
  );
  try {
    return await Promise.race([settled, gaveUp]);
  } finally {
    clearTimeout(timer);
  }
}

function describeValue(value: unknown): string {
  if (Array.isArray(value)) return `Array(${value.length})`;
  return value === null ? 'null' : typeof value;
}

/** Whether a logged value carries the probe's patient name: as text, as bytes, or as an XHR's response. */
function mentionsPatient(value: unknown): boolean {
  const name = 'DOE^JANE';
  if (typeof value === 'string') return value.includes(name);
  if (value instanceof ArrayBuffer) return Buffer.from(value).toString('latin1').includes(name);
  if (value instanceof Error) return value.message.includes(name) || ('response' in value && mentionsPatient(value.response));
  if (typeof value === 'object' && value !== null && 'response' in value) return mentionsPatient(value.response);
  return false;
}

const probeInstance: Instance = { studyUid: '1.2.3', seriesUid: '1.2.3.4', sopInstanceUid: '1.2.3.4.5' };

function probeFrames(client: DicomwebClientCalls, frameNumbers: readonly number[], instance?: XhrLike): Promise<unknown> {
  return client.retrieveInstanceFrames({
    studyInstanceUID: probeInstance.studyUid,
    seriesInstanceUID: probeInstance.seriesUid,
    sopInstanceUID: probeInstance.sopInstanceUid,
    frameNumbers,
    mediaTypes: [{ mediaType: 'image/jpeg', transferSyntaxUID: jpegBaseline }],
    ...(instance ? { request: { instance } } : {}),
  });
}

function probeSource(url: string, timeoutMs = 5_000): SlideSource {
  return createDicomwebSource({ baseUrl: url, auth: { kind: 'none' }, headers: {}, timeoutMs, connections: 2 });
}

async function runProbes(): Promise<Probe[]> {
  const probes: Probe[] = [];
  const shortWait = 1_500;

  // 1. A 5xx whose body quotes patient data.
  await withServer(
    (_req, res) => {
      res.writeHead(500, { 'content-type': 'text/plain' }).end('Internal error while reading DOE^JANE');
    },
    async (url) => {
      const source = probeSource(url);
      const failed = probeFrames(createClient(url), [1]);
      const quiet = await outcome(failed, shortWait);
      const kept = await failed.then(
        () => false,
        (error: unknown) => mentionsPatient(error instanceof Error && 'response' in error ? error.response : undefined),
      );
      // With verbose on (dicomweb-client's default), see what it writes to the console.
      const logged: unknown[][] = [];
      const consoleError = console.error;
      console.error = (...args: unknown[]) => {
        logged.push(args);
      };
      try {
        await outcome(probeFrames(createClient(url, true), [1]), shortWait);
      } finally {
        console.error = consoleError;
      }
      const leaks = logged.filter((args) => args.some(mentionsPatient)).length;
      probes.push({
        case: 'PACS answers 500 (body names a patient)',
        dicomwebClient:
          `${quiet}; error.response ${kept ? 'holds the body' : 'does not hold the body'};` +
          ` with verbose (the default) ${logged.length} console.error calls, ${leaks} of them carrying the body`,
        gateway: await outcome(source.readFrames(probeInstance, [1]), shortWait),
      });
      await source.close();
    },
  );

  // 2. Nothing listening.
  {
    const closed = await withServer(() => undefined, async (url) => url);
    const source = probeSource(closed);
    probes.push({
      case: 'connection refused',
      dicomwebClient: await outcome(probeFrames(createClient(closed), [1]), shortWait),
      gateway: await outcome(source.readFrames(probeInstance, [1]), shortWait),
    });
    await source.close();
  }

  // 3. A server that accepts and never answers; 4. an abort while waiting for it.
  await withServer(
    () => undefined,
    async (url) => {
      const client = createClient(url);
      const noDeadline = outcome(probeFrames(client, [1]), shortWait);
      const withTimeout = new XhrConstructor();
      withTimeout.timeout = 300;
      const xhrTimeout = outcome(probeFrames(client, [1], withTimeout), shortWait);
      const toAbort = new XhrConstructor();
      const aborted = outcome(probeFrames(client, [1], toAbort), shortWait);
      setTimeout(() => toAbort.abort(), 100);

      const source = probeSource(url, 300);
      const gatewayTimeout = outcome(source.readFrames(probeInstance, [1]), shortWait);
      const controller = new AbortController();
      setTimeout(() => controller.abort(new Error('the caller went away')), 100);
      const gatewayAbort = outcome(source.readFrames(probeInstance, [1], { signal: controller.signal }), shortWait);

      probes.push({
        case: 'PACS never answers, no deadline given',
        dicomwebClient: `${await noDeadline} (no timeout option; its promise settles only when the socket dies)`,
        gateway: '(every request has a deadline, timeoutMs; see next row)',
      });
      probes.push({
        case: 'PACS never answers, 300 ms deadline',
        dicomwebClient: `request.instance with xhr.timeout = 300: ${await xhrTimeout}`,
        gateway: `timeoutMs 300: ${await gatewayTimeout}`,
      });
      probes.push({
        case: 'caller aborts after 100 ms',
        dicomwebClient: `request.instance, xhr.abort(): ${await aborted}`,
        gateway: `AbortSignal: ${await gatewayAbort}`,
      });
      await source.close();
    },
  );

  // 5. A multipart answer with 2 parts where 3 frames were asked for.
  await withServer(
    (_req, res) => {
      const boundary = 'b0undary';
      const part = (byte: number): Buffer =>
        Buffer.concat([Buffer.from(`--${boundary}\r\nContent-Type: image/jpeg; transfer-syntax=${jpegBaseline}\r\n\r\n`), Buffer.from([0xff, 0xd8, byte, 0xff, 0xd9]), Buffer.from('\r\n')]);
      res.writeHead(200, { 'content-type': `multipart/related; type="image/jpeg"; boundary=${boundary}` });
      res.end(Buffer.concat([part(1), part(2), Buffer.from(`--${boundary}--\r\n`)]));
    },
    async (url) => {
      const source = probeSource(url);
      probes.push({
        case: '3 frames asked, 2 parts answered',
        dicomwebClient: await outcome(probeFrames(createClient(url), [1, 2, 3]), shortWait),
        gateway: await outcome(source.readFrames(probeInstance, [1, 2, 3]), shortWait),
      });
      await source.close();
    },
  );

  // 6. 200 with a body that is not JSON.
  await withServer(
    (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/dicom+json' }).end('[{"0020000D": {"vr": "UI", "Value": ["1.2');
    },
    async (url) => {
      const source = probeSource(url);
      probes.push({
        case: 'series metadata: 200 with truncated JSON',
        dicomwebClient: await outcome(
          createClient(url).retrieveSeriesMetadata({ studyInstanceUID: '1.2.3', seriesInstanceUID: '1.2.3.4' }),
          shortWait,
        ),
        gateway: await outcome(source.readSeries('1.2.3', '1.2.3.4'), shortWait),
      });
      await source.close();
    },
  );
  return probes;
}

// ---------------------------------------------------------------------------------------------------
// The run.

/** The headers that decide connection reuse, of one frames answer (body read and dropped). */
async function responseHeaders(agent: Agent, url: string): Promise<string> {
  const response = await request(url, {
    dispatcher: agent,
    headers: { accept: `multipart/related; type="image/jpeg"; transfer-syntax=${jpegBaseline}` },
  });
  await response.body.dump();
  const h = response.headers;
  return ['content-length', 'transfer-encoding', 'connection', 'keep-alive']
    .map((name) => `${name}: ${h[name] === undefined ? '(none)' : String(h[name])}`)
    .join(', ');
}

interface FrameRow {
  perRequest: number;
  frames: number;
  client: FrameRun[];
  gateway: FrameRun[];
}

function fmt(value: number, digits = 0): string {
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** gateway ÷ dicomweb-client; memory ratios only when both peaks are big enough to mean something. */
function ratio(gateway: number, client: number, minimum = 0): string {
  if (client <= minimum || gateway < 0) return 'n/a';
  return `${fmt(gateway / client, 2)}`;
}

const memCell = (runs: readonly FrameRun[], key: keyof MemoryPeak): number => maxOf(runs.map((r) => r.memory[key]));

async function main(): Promise<void> {
  const startedAt = new Date();
  const slide = await makeLargeSlide(join(tmpdir(), 'wsi-gateway-bench', 'large-slide'));
  const facts = await readDicomFilesFacts(slide.files);
  const level0 = facts
    .filter((f) => f.imageType[2] === 'VOLUME' && f.totalPixelMatrixColumns === maxOf(facts.map((x) => x.totalPixelMatrixColumns ?? 0)))
    .sort((a, b) => b.numberOfFrames - a.numberOfFrames);
  const target: DicomFileFacts | undefined = level0[0];
  if (target === undefined) throw new Error('no level-0 instance in the large slide');
  const instance: Instance = { studyUid: target.studyInstanceUid, seriesUid: target.seriesInstanceUid, sopInstanceUid: target.sopInstanceUid };
  const frameCount = target.numberOfFrames;
  const targetSizeMb = mb(readFileSync(target.path).byteLength);

  const orthanc: OrthancServer = await startOrthanc({ metadataMode: 'Full', withWsiPlugin: false });
  const sources: SlideSource[] = [];
  const undiciAgent = new Agent({ connections: IN_FLIGHT, keepAliveTimeout: 30_000, keepAliveTimeoutThreshold: 100 });
  try {
    const uploadStart = performance.now();
    await orthanc.upload(slide.files);
    console.error(`uploaded ${slide.files.length} instances in ${fmt((performance.now() - uploadStart) / 1000, 1)} s`);
    const system: unknown = await (await fetch(`${orthanc.baseUrl}/system`)).json();
    const orthancVersion = typeof system === 'object' && system !== null && 'Version' in system ? String(system.Version) : '?';

    const client = createClient(orthanc.dicomwebUrl);
    const source = createDicomwebSource({ baseUrl: orthanc.dicomwebUrl, auth: { kind: 'none' }, headers: {}, timeoutMs: 60_000, connections: IN_FLIGHT });
    sources.push(source);
    const clientRead = clientFrameReader(client, instance);
    const gatewayRead = gatewayFrameReader(source, instance);

    // Warm-up: Orthanc reads the instance file for every frame request; the first read comes from disk.
    await gatewayRead([1, 2]);
    await clientRead([1, 2]);
    const loadBefore = loadavg();
    const phase = performance.now();
    const framesUrl = `${orthanc.dicomwebUrl}/studies/${instance.studyUid}/series/${instance.seriesUid}/instances/${instance.sopInstanceUid}/frames`;
    const frameHeaders = {
      single: await responseHeaders(undiciAgent, `${framesUrl}/1`),
      multi: await responseHeaders(undiciAgent, `${framesUrl}/1,2,3`),
    };

    // 1. Frames.
    console.error('checking frames byte for byte…');
    const correctness = await checkFrames(client, instance, clientRead, gatewayRead, frameCount);
    const rows: FrameRow[] = [];
    // Orthanc shares this machine's cores with the client under test (and, here, with whatever else
    // runs): single runs vary by 2x, so each side runs several times and the median is reported.
    for (const [perRequest, frames, repetitions] of [
      [1, 100, 3],
      [16, frameCount, 5],
      [64, frameCount, 5],
      [200, frameCount, 5],
    ] as const) {
      const batches = batchesOf(frames, perRequest);
      const row: FrameRow = { perRequest, frames, client: [], gateway: [] };
      for (let rep = 0; rep < repetitions; rep++) {
        // Alternate who goes first: Orthanc and the page cache warm up over a run.
        const order = rep % 2 === 0 ? (['client', 'gateway'] as const) : (['gateway', 'client'] as const);
        for (const side of order) {
          const run = await timeFrames(side === 'client' ? clientRead : gatewayRead, batches, frames);
          row[side].push(run);
          console.error(`${perRequest}/request ${side}: ${fmt(run.framesPerSecond)} frames/s`);
        }
      }
      rows.push(row);
    }
    const lengthsAgree = rows.every((row) =>
      [...row.client, ...row.gateway].every((run) => Buffer.compare(Buffer.from(run.lengths.buffer), Buffer.from(row.gateway[0]!.lengths.buffer)) === 0),
    );

    console.error(`frames done in ${fmt((performance.now() - phase) / 1000, 1)} s`);

    // 2. Series metadata.
    console.error('series metadata…');
    const metadataUrl = `${orthanc.dicomwebUrl}/studies/${instance.studyUid}/series/${instance.seriesUid}/metadata`;
    const rawJson = async (url: string, encoding: 'gzip' | 'identity'): Promise<unknown> => {
      const response = await request(url, { dispatcher: undiciAgent, headers: { accept: 'application/dicom+json', 'accept-encoding': encoding } });
      const raw = Buffer.from(await response.body.arrayBuffer());
      const text = (response.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw).toString('utf8');
      return JSON.parse(text) as unknown;
    };
    const metadataSize = async (encoding: 'gzip' | 'identity'): Promise<{ bytes: number; encoding: string }> => {
      const response = await request(metadataUrl, { dispatcher: undiciAgent, headers: { accept: 'application/dicom+json', 'accept-encoding': encoding } });
      const bytes = (await response.body.arrayBuffer()).byteLength;
      return { bytes, encoding: String(response.headers['content-encoding'] ?? 'identity') };
    };
    const metadataPlain = await metadataSize('identity');
    const metadataGzip = await metadataSize('gzip');
    const clientMetadata = await client.retrieveSeriesMetadata({ studyInstanceUID: instance.studyUid, seriesInstanceUID: instance.seriesUid });
    const metadataEqual = JSON.stringify(clientMetadata) === JSON.stringify(await rawJson(metadataUrl, 'identity'));
    const gatewayInstances = (await source.readSeries(instance.studyUid, instance.seriesUid)).length;
    const metadata = await compareCalls(
      {
        'dicomweb-client retrieveSeriesMetadata': () =>
          client.retrieveSeriesMetadata({ studyInstanceUID: instance.studyUid, seriesInstanceUID: instance.seriesUid }),
        'gateway readSeries (fetch + parse into typed records)': () => source.readSeries(instance.studyUid, instance.seriesUid),
        'undici request + JSON.parse (uncompressed, as dicomweb-client gets it)': () => rawJson(metadataUrl, 'identity'),
        'undici request + gunzip + JSON.parse (gzip, as the gateway gets it)': () => rawJson(metadataUrl, 'gzip'),
      },
      5,
    );
    console.error(`metadata done in ${fmt((performance.now() - phase) / 1000, 1)} s`);

    // 3. QIDO.
    console.error('QIDO…');
    const qido = await compareCalls(
      {
        "dicomweb-client searchForSeries({Modality:'SM'})": () => client.searchForSeries({ queryParams: { Modality: 'SM' } }),
        'gateway listSeries() (+ includefield, parse)': () => source.listSeries(),
      },
      20,
    );
    const found = await client.searchForSeries({ queryParams: { Modality: 'SM' } });
    const qidoSeries = Array.isArray(found) ? String(found.length) : describeValue(found);
    const listed = (await source.listSeries()).length;
    const loadAfter = loadavg();

    // 4. Failure probes.
    console.error('failure probes…');
    const probes = await runProbes();

    const report = renderReport({
      startedAt,
      orthancVersion,
      target,
      targetSizeMb,
      frameCount,
      correctness,
      rows,
      lengthsAgree,
      metadata,
      metadataPlain,
      metadataGzip,
      frameHeaders,
      loadBefore,
      loadAfter,
      metadataEqual,
      gatewayInstances,
      qido,
      qidoSeries,
      listed,
      probes,
    });
    console.log(report);
    await writeReport(resultsPath, report);
    console.error(`written to ${resultsPath}`);
  } finally {
    await Promise.all(sources.map((s) => s.close()));
    await undiciAgent.close();
    await orthanc.stop();
  }
}

interface ReportInput {
  startedAt: Date;
  orthancVersion: string;
  target: DicomFileFacts;
  targetSizeMb: number;
  frameCount: number;
  correctness: Correctness;
  rows: FrameRow[];
  lengthsAgree: boolean;
  metadata: Record<string, TimedCalls>;
  metadataPlain: { bytes: number; encoding: string };
  metadataGzip: { bytes: number; encoding: string };
  frameHeaders: { single: string; multi: string };
  loadBefore: number[];
  loadAfter: number[];
  metadataEqual: boolean;
  gatewayInstances: number;
  qido: Record<string, TimedCalls>;
  qidoSeries: string;
  listed: number;
  probes: Probe[];
}

function renderReport(input: ReportInput): string {
  const { correctness: c, rows } = input;
  const lines: string[] = [];
  const cpu = cpus();
  lines.push(
    '# dicomweb-client vs the gateway\'s undici source',
    '',
    `Run ${input.startedAt.toISOString()} with \`node --expose-gc --import tsx bench/dicomweb-client.ts\`` +
      ` (gc ${globalThis.gc ? 'available' : 'NOT available: memory figures are noisier'}).` +
      ` Node ${process.version}, ${cpu.length} × ${cpu[0]?.model.trim() ?? '?'}, Orthanc ${input.orthancVersion} (DICOMweb plugin, metadata Full) on loopback,` +
      ` dicomweb-client ${packageVersion('dicomweb-client')} with xhr2 ${packageVersion('xhr2')}, undici ${packageVersion('undici')}.` +
      ` Orthanc runs on the same machine as the client under test, so a client's CPU use slows Orthanc too.` +
      ` Load average (1 min) ${fmt(input.loadBefore[0] ?? 0, 2)} before the timed part, ${fmt(input.loadAfter[0] ?? 0, 2)} after` +
      (Math.max(input.loadBefore[0] ?? 0, input.loadAfter[0] ?? 0) > cpu.length
        ? ` (above the ${cpu.length} cores: other processes competed for them, and the figures are noisier).`
        : ` on ${cpu.length} cores.`),
    '',
    '## Frames',
    '',
    `One level-0 instance of the large slide: ${fmt(input.frameCount)} JPEG frames, ${fmt(input.targetSizeMb, 1)} MB file.` +
      ` ${IN_FLIGHT} requests in flight; each answer is counted and dropped. frames/s: median of the runs per side` +
      ' (3 at 1 frame/request, else 5), run in alternating order; memory: the largest peak of those runs, above a baseline' +
      ' taken after gc, sampled every 20 ms and after each answer. Ratios are gateway ÷ dicomweb-client: above 1 the gateway' +
      ' is faster, below 1 it needs less memory. ΔRSS hardly moves because the process keeps the pages earlier runs freed;' +
      ' ΔarrayBuffers (Buffers and ArrayBuffers, outside the V8 heap) is where frame bytes live. "sockets": new TCP' +
      ' connections opened in each run.',
    '',
    '| frames/request | frames | dicomweb-client frames/s | gateway frames/s | ratio | dwc peak ΔRSS MB | gateway peak ΔRSS MB | ratio | dwc peak Δheap MB | gateway peak Δheap MB | ratio | dwc peak ΔarrayBuffers MB | gateway peak ΔarrayBuffers MB | ratio | sockets dwc / gateway |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  );
  for (const row of rows) {
    const cf = median(row.client.map((r) => r.framesPerSecond));
    const gf = median(row.gateway.map((r) => r.framesPerSecond));
    const cells = [fmt(row.perRequest), fmt(row.frames), fmt(cf), fmt(gf), ratio(gf, cf)];
    for (const key of ['rssMb', 'heapMb', 'arrayBuffersMb'] as const) {
      const cm = memCell(row.client, key);
      const gm = memCell(row.gateway, key);
      cells.push(fmt(cm, 1), fmt(gm, 1), ratio(gm, cm, 1));
    }
    cells.push(`${row.client.map((r) => r.sockets).join(',')} / ${row.gateway.map((r) => r.sockets).join(',')}`);
    lines.push(`| ${cells.join(' | ')} |`);
  }
  lines.push(
    '',
    `Connection reuse: Orthanc's single-frame answer has ${input.frameHeaders.single}; its multi-frame answer has` +
      ` ${input.frameHeaders.multi}. A body without length ends when Orthanc closes the connection, so multi-frame` +
      ' requests cost a new connection with any client. For single frames the gateway\'s undici pool reuses connections' +
      ' (keepAliveTimeoutThreshold 100 ms); xhr2 goes through Node\'s http.Agent, whose keepSocketAlive refuses to keep a' +
      ' socket when the server\'s `Keep-Alive: timeout=` hint minus its 1 s safety buffer is 0, so against Orthanc every' +
      ' dicomweb-client request opens a new TCP connection (xhr2 has a `nodejsHttpAgent` property but the Agent rule is the same).',
    '',
    `Correctness: dicomweb-client's retrieveInstanceFrames returns a ${c.returned}.` +
      ` All ${fmt(c.framesCompared)} frames fetched 200 per request by both: ${fmt(c.framesEqual)} byte-for-byte equal` +
      `${c.allJpeg ? ', every one starting with a JPEG SOI marker' : ', SOME NOT JPEG'}.` +
      ` Single-frame requests (first, middle, last frame) equal across clients and to the same frame in a batch: ${c.singleFramesEqual ? 'yes' : 'NO'}.` +
      ` Every timed run returned the same length for every frame as the gateway's: ${input.lengthsAgree ? 'yes' : 'NO'}.`,
    '',
    '## Series metadata',
    '',
    `The large slide's series metadata: ${fmt(input.metadataPlain.bytes / 1e6, 2)} MB of JSON uncompressed;` +
      ` asked with Accept-Encoding: gzip, Orthanc answers \`${input.metadataGzip.encoding}\`, ${fmt(input.metadataGzip.bytes / 1e6, 2)} MB.` +
      ' xhr2 forbids setting Accept-Encoding (a "restricted header") and would not decompress, so dicomweb-client in Node always' +
      ' transfers it uncompressed; the gateway asks for gzip. 5 repetitions each, round-robin.' +
      ` dicomweb-client's parsed JSON equals undici's: ${input.metadataEqual ? 'yes' : 'NO'};` +
      ` the gateway parsed ${input.gatewayInstances} instances.`,
    '',
    ...callTable(input.metadata, 'dicomweb-client retrieveSeriesMetadata'),
    '',
    '## QIDO-RS series search',
    '',
    `20 repetitions each, round-robin. dicomweb-client found ${input.qidoSeries} series; the gateway listed ${input.listed} slides.` +
      ' The gateway also asks for five includefields and parses each answer into a summary.',
    '',
    ...callTable(input.qido, "dicomweb-client searchForSeries({Modality:'SM'})"),
    '',
    '## Failure behaviour (probes against small local servers)',
    '',
    '| case | dicomweb-client 0.11 + xhr2 | gateway source |',
    '|---|---|---|',
    ...input.probes.map((p) => `| ${p.case} | ${p.dicomwebClient.replaceAll('|', '\\|')} | ${p.gateway.replaceAll('|', '\\|')} |`),
    '',
    '## From reading dicomweb-client 0.11.3 and xhr2 0.2.1',
    '',
    '- Needs an XMLHttpRequest in Node; xhr2 gives one over `http.request` with `http.globalAgent` (keep-alive in Node ≥ 19).',
    '- No streaming: xhr2 keeps every chunk until the end, concatenates them (copy 1), and for `responseType: "arraybuffer"`',
    '  copies the result into a new ArrayBuffer one byte at a time in a JS loop (copy 2); dicomweb-client then scans the whole',
    '  buffer for boundaries and `slice`s every part (copy 3). The gateway parses parts as the body streams in and keeps one',
    '  Buffer per frame.',
    '- The multipart decoder takes the boundary from the body\'s first line, not from Content-Type, and gives every part the',
    '  headers of the first part (`contentType`, `transferSyntaxUID`); it never checks the part count against the frames asked.',
    '- No timeout or AbortSignal options. The only handle is `request.instance` (a caller-made XHR): its `timeout` works,',
    '  `abort()` never settles the promise (xhr2 drops the request without reaching readyState 4, the only state',
    '  dicomweb-client listens for, so the caller\'s await hangs for good).',
    '- Errors are `Error("request failed")` with `status` (0 for network errors and timeouts, the cause is lost) and',
    '  `response` (the body, which may carry patient data); `verbose` defaults to true and console.errors them.',
    '- JSON answers go through xhr2\'s `responseType: "json"`, which swallows a parse error and resolves `null`.',
    '- Gzip: on loopback it costs Orthanc CPU on the same cores and saves nothing; across a network,' +
      ` ${fmt(input.metadataPlain.bytes / Math.max(1, input.metadataGzip.bytes))}x fewer metadata bytes is what matters,` +
      ' and only the gateway\'s path can ask for them.',
    '- The bundled TypeScript declarations do not match the code (see the top of bench/dicomweb-client.ts).',
    '',
  );
  return lines.join('\n');
}

function callTable(results: Record<string, TimedCalls>, baselineName: string): string[] {
  const baseline = results[baselineName];
  const rows = Object.entries(results).map(([name, r]) => {
    const cells = [
      name,
      fmt(r.medianMs, 1),
      name === baselineName || baseline === undefined ? '1.00' : ratio(r.medianMs, baseline.medianMs),
      fmt(r.memory.rssMb, 1),
      fmt(r.memory.heapMb, 1),
      fmt(r.memory.arrayBuffersMb, 1),
    ];
    return `| ${cells.join(' | ')} |`;
  });
  return [
    '| call | median ms | ÷ dicomweb-client (below 1 = faster) | peak ΔRSS MB | peak Δheap MB | peak ΔarrayBuffers MB |',
    '|---|---:|---:|---:|---:|---:|',
    ...rows,
  ];
}

await main();
