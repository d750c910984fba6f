/**
 * Retries, deadline and circuit breaker of the DICOMweb source against a local server that misbehaves
 * on cue (issue 7). The integration suite does the same through a proxy in front of Orthanc.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { NotFoundError, UpstreamError, UpstreamTimeoutError } from '../../errors.js';
import type { CircuitState } from './circuit-breaker.js';
import { createDicomwebSource, type DicomwebSourceOptions } from './dicomweb-source.js';

const REF = { studyUid: '1.2', seriesUid: '1.3', sopInstanceUid: '1.4' };
const FRAME = Buffer.from('frame bytes');

function answerFrame(res: ServerResponse): void {
  const boundary = 'b0undary';
  res.writeHead(200, { 'content-type': `multipart/related; type="image/jpeg"; boundary=${boundary}` });
  res.end(Buffer.concat([Buffer.from(`--${boundary}\r\ncontent-type: image/jpeg\r\n\r\n`), FRAME, Buffer.from(`\r\n--${boundary}--\r\n`)]));
}

let server: Server | undefined;
const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
  server = undefined;
});

/** A PACS whose n-th request (0-based) is answered by `handlers[n]`, the last one repeating. */
async function startPacs(...handlers: Array<(req: IncomingMessage, res: ServerResponse) => void>) {
  let n = 0;
  server = createServer((req, res) => handlers[Math.min(n++, handlers.length - 1)]!(req, res));
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  const requests = () => n;
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/dicom-web`, requests };
}

function open(url: string, options: Partial<DicomwebSourceOptions> = {}) {
  const retries: string[] = [];
  const source = createDicomwebSource({ baseUrl: url, auth: { kind: 'none' }, headers: {}, timeoutMs: 2000, connections: 4, onRetry: (op) => retries.push(op), ...options });
  closers.push(() => source.close());
  return { source, retries };
}

const status = (code: number) => (_: IncomingMessage, res: ServerResponse) => void res.writeHead(code).end('nope');
const reset = (req: IncomingMessage) => void req.socket.destroy();

describe('DICOMweb source under faults', () => {
  it('retries a 503, a reset and a truncated body, then returns the frames', async () => {
    const truncated = (_: IncomingMessage, res: ServerResponse) => {
      res.writeHead(200, { 'content-type': 'multipart/related; type="image/jpeg"; boundary=b0undary' });
      res.end('--b0undary\r\ncontent-type: image/jpeg\r\n\r\nfra');
    };
    const pacs = await startPacs(status(503), reset, truncated, (_, res) => answerFrame(res));
    const { source, retries } = open(pacs.url, { retries: 3 });
    const frames = await source.readFrames(REF, [1]);
    expect(frames.map((f) => f.data)).toEqual([FRAME]);
    expect(retries).toEqual(['frames', 'frames', 'frames']);
  });

  it("honours a 429's Retry-After, and hands a longer one on to the caller without waiting", async () => {
    const busy = (seconds: string) => (_: IncomingMessage, res: ServerResponse) => void res.writeHead(429, { 'retry-after': seconds }).end('slow down');
    const sleeps: number[] = [];
    const retryDeps = { now: () => 0, sleep: async (ms: number) => void sleeps.push(ms), random: () => 0 };
    const pacs = await startPacs(busy('1'), (_, res) => answerFrame(res), busy('120'));
    const { source } = open(pacs.url, { retries: 2, retryDeps });
    expect((await source.readFrames(REF, [1])).map((f) => f.data)).toEqual([FRAME]);
    expect(sleeps).toEqual([1000]);
    const refused = await source.readFrames(REF, [1]).catch((e: unknown) => e);
    expect(refused).toMatchObject({ status: 502, upstreamStatus: 429, retryAfterSeconds: 120 });
    expect((refused as Error).message).toContain('retry after 120 s');
    expect(pacs.requests()).toBe(3);
  });

  it('never retries a 404 or a 400', async () => {
    const pacs = await startPacs(status(404), status(400));
    const { source } = open(pacs.url);
    await expect(source.readFrames(REF, [1])).rejects.toBeInstanceOf(NotFoundError);
    await expect(source.readFrames(REF, [1])).rejects.toThrow('answered 400');
    expect(pacs.requests()).toBe(2);
  });

  it('refuses a frames answer labelled text/html rather than serving its bytes as a tile (wrong Content-Type)', async () => {
    const pacs = await startPacs((_, res) => void res.writeHead(200, { 'content-type': 'text/html' }).end('<html>login</html>'));
    const { source } = open(pacs.url, { retries: 0 });
    await expect(source.readFrames(REF, [1])).rejects.toThrow(/malformed/);
  });

  it('survives a multipart answer without a boundary (an unread body destroyed without a listener crashed the process)', async () => {
    const pacs = await startPacs((_, res) => void res.writeHead(200, { 'content-type': 'multipart/related' }).end('--x'));
    const { source } = open(pacs.url, { retries: 0 });
    await expect(source.readFrames(REF, [1])).rejects.toBeInstanceOf(UpstreamError);
    await expect(source.readAllFrames(REF, { numberOfFrames: 1, frameBytes: 3 })).rejects.toBeInstanceOf(UpstreamError);
    await new Promise((resolve) => setTimeout(resolve, 50)); // an 'error' event would fire by now
  });

  it('bounds a PACS that never answers by the deadline, not by (retries + 1) timeouts', async () => {
    const pacs = await startPacs(() => undefined);
    const { source } = open(pacs.url, { timeoutMs: 300, deadlineMs: 450, retries: 5 });
    const started = performance.now();
    await expect(source.readFrames(REF, [1])).rejects.toBeInstanceOf(UpstreamTimeoutError);
    expect(performance.now() - started).toBeLessThan(900);
    expect(pacs.requests()).toBeLessThanOrEqual(2);
  });

  it('does not retry once the caller aborted', async () => {
    const controller = new AbortController();
    const pacs = await startPacs((req) => {
      controller.abort(new Error('viewer moved on'));
      req.socket.destroy();
    });
    const { source, retries } = open(pacs.url);
    await expect(source.readFrames(REF, [1], { signal: controller.signal })).rejects.toThrow('viewer moved on');
    expect(retries).toEqual([]);
  });

  it('opens the breaker after consecutive failures, fails fast, and closes after a good trial', async () => {
    let down = true;
    const pacs = await startPacs((req, res) => (down ? reset(req) : answerFrame(res)));
    const clock = { ms: 0 };
    const states: CircuitState[] = [];
    const { source } = open(pacs.url, {
      retries: 1,
      breakerFailures: 4,
      breakerCooldownMs: 1000,
      onCircuitChange: (s) => states.push(s),
      retryDeps: { now: () => clock.ms, sleep: async () => undefined, random: () => 0 },
    });
    await expect(source.readFrames(REF, [1])).rejects.toThrow('request failed');
    await expect(source.readFrames(REF, [1])).rejects.toThrow('request failed');
    expect(states).toEqual(['open']);
    const before = pacs.requests();
    const refused = await source.readFrames(REF, [1]).catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', status: 502 });
    expect(pacs.requests()).toBe(before);
    down = false;
    clock.ms = 1000;
    expect(await source.readFrames(REF, [1])).toHaveLength(1);
    expect(states).toEqual(['open', 'half-open', 'closed']);
  });

  it('404s do not open the breaker', async () => {
    const pacs = await startPacs(status(404));
    const { source } = open(pacs.url, { breakerFailures: 2 });
    for (let i = 0; i < 5; i++) await expect(source.readSeries('1.2', '1.3')).rejects.toBeInstanceOf(NotFoundError);
    expect(pacs.requests()).toBe(5);
  });
});
