/**
 * The one HTTP path to the PACS: an undici connection pool (keep-alive), auth headers, a deadline on
 * every request, and PACS failures turned into gateway errors that name what failed without echoing
 * the PACS's body (it may carry patient data).
 */
import type { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { Agent, errors as undiciErrors, request } from 'undici';
import type { Dispatcher } from 'undici';
import { NotFoundError, UpstreamError, UpstreamTimeoutError } from '../../errors.js';
import type { UpstreamAuth } from '../../config/index.js';
import type { UpstreamRequestEvent, UpstreamRequestObserver } from '../types.js';
import { parseRetryAfterMs, UpstreamStatusError } from './retry.js';

export interface HttpClientOptions {
  baseUrl: string;
  auth: UpstreamAuth;
  headers: Readonly<Record<string, string>>;
  /** Deadline of one request, headers and body, in ms. */
  timeoutMs: number;
  /** Most connections to the PACS. */
  connections: number;
  /** Told about every request as it ends (the gateway's metrics); the source knows nothing more of it. */
  onRequest?: UpstreamRequestObserver | undefined;
}

export interface UpstreamResponse {
  status: number;
  contentType: string;
  body: Dispatcher.ResponseData['body'];
}

export interface GetOptions {
  accept: string;
  signal?: AbortSignal | undefined;
  /** What the request is for, in words, for error messages ("series metadata"). */
  what: string;
  /**
   * This request's deadline in ms, headers and body: shorter than DICOMWEB_TIMEOUT_MS for a retry near
   * the end of its operation's deadline, longer for an upload. @default HttpClientOptions.timeoutMs
   */
  timeoutMs?: number | undefined;
}

function authHeader(auth: UpstreamAuth): string | undefined {
  if (auth.kind === 'basic') return `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}`;
  if (auth.kind === 'bearer') return `Bearer ${auth.token}`;
  return undefined;
}

function isTimeout(error: unknown): boolean {
  return (
    error instanceof undiciErrors.HeadersTimeoutError ||
    error instanceof undiciErrors.BodyTimeoutError ||
    error instanceof undiciErrors.ConnectTimeoutError ||
    (error instanceof Error && (error.name === 'TimeoutError' || error.cause instanceof Error && error.cause.name === 'TimeoutError'))
  );
}

/** Maps a failure to reach or read from the PACS to a gateway error. Rethrows the caller's own aborts. */
export function toUpstreamError(error: unknown, what: string, callerSignal?: AbortSignal): Error {
  if (callerSignal?.aborted) return callerSignal.reason instanceof Error ? callerSignal.reason : new Error('Aborted');
  if (error instanceof UpstreamError || error instanceof UpstreamTimeoutError || error instanceof NotFoundError) return error;
  if (isTimeout(error)) return new UpstreamTimeoutError(`The PACS did not answer the ${what} request in time`, { cause: error });
  const code = error instanceof Error && 'code' in error ? String(error.code) : error instanceof Error && error.cause instanceof Error && 'code' in error.cause ? String(error.cause.code) : '';
  return new UpstreamError(`The PACS ${what} request failed${code ? ` (${code})` : ''}`, { cause: error });
}

/** A request with a body (STOW-RS): what GetOptions says, plus the body and its media type. */
export interface PostOptions extends GetOptions {
  contentType: string;
  body: Buffer | Readable;
  /** The body's length in bytes, for a stream: some servers (Orthanc) want it rather than chunked encoding. */
  contentLength?: number | undefined;
}

export interface HttpClient {
  /** The base URL without credentials, for logs. */
  readonly baseUrl: string;
  /** GET a path under the base URL; resolves once headers arrive, with the body to stream. */
  get(path: string, options: GetOptions): Promise<UpstreamResponse>;
  /** GET and parse a JSON answer; 204 gives []. */
  getJson(path: string, options: Omit<GetOptions, 'accept'>): Promise<unknown>;
  /** POST a body to a path under the base URL (STOW-RS); resolves once headers arrive, like get. */
  post(path: string, options: PostOptions): Promise<UpstreamResponse>;
  close(): Promise<void>;
}

export function createHttpClient(options: HttpClientOptions): HttpClient {
  const { baseUrl, timeoutMs } = options;
  const agent = new Agent({
    connections: options.connections,
    keepAliveTimeout: 30_000,
    // Orthanc says `Keep-Alive: timeout=1`; with undici's default 2 s safety margin no connection would
    // ever be reused (one TCP handshake per request). 100 ms still avoids racing the server's close.
    keepAliveTimeoutThreshold: 100,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    connect: { timeout: Math.min(timeoutMs, 10_000) },
  });
  const fixedHeaders: Record<string, string> = { ...options.headers };
  const authorization = authHeader(options.auth);
  if (authorization) fixedHeaders['authorization'] = authorization;
  let closed = false;

  function observe(operation: string, startedMs: number, outcome: UpstreamRequestEvent['outcome'], errorKind: UpstreamRequestEvent['errorKind']): void {
    options.onRequest?.({ operation, outcome, errorKind, seconds: (performance.now() - startedMs) / 1000 });
  }

  async function send(path: string, options: GetOptions | PostOptions, method: 'GET' | 'POST'): Promise<UpstreamResponse> {
    const { accept, signal, what } = options;
    const upload = 'body' in options ? options : undefined;
    const requestTimeoutMs = options.timeoutMs ?? timeoutMs;
    if (closed) throw new UpstreamError('The PACS client is closed');
    const startedMs = performance.now();
    const deadline = AbortSignal.timeout(requestTimeoutMs);
    const combined = signal ? AbortSignal.any([signal, deadline]) : deadline;
    let response: Dispatcher.ResponseData;
    try {
      response = await request(`${baseUrl}${path}`, {
        method,
        dispatcher: agent,
        headers: {
          ...fixedHeaders,
          accept,
          'accept-encoding': accept.includes('json') ? 'gzip' : 'identity',
          ...(upload ? { 'content-type': upload.contentType } : {}),
          ...(upload?.contentLength === undefined ? {} : { 'content-length': String(upload.contentLength) }),
        },
        ...(upload ? { body: upload.body, headersTimeout: requestTimeoutMs } : {}),
        signal: combined,
      });
    } catch (error) {
      const mapped = toUpstreamError(deadline.aborted ? deadline.reason : error, what, signal);
      observe(what, startedMs, signal?.aborted ? 'aborted' : 'error', mapped instanceof UpstreamTimeoutError ? 'timeout' : 'network');
      throw mapped;
    }
    const status = response.statusCode;
    if (status >= 200 && status < 300) {
      observe(what, startedMs, 'ok', undefined);
      return { status, contentType: String(response.headers['content-type'] ?? ''), body: response.body };
    }
    observe(what, startedMs, 'error', status === 408 || status === 504 ? 'timeout' : status >= 500 ? 'http_5xx' : 'http_4xx');
    // Drain and drop the body: it may quote patient data, and the connection goes back to the pool.
    await response.body.dump().catch(() => undefined);
    if (status === 404) throw new NotFoundError(`The PACS has no such ${what}`, 'UPSTREAM_NOT_FOUND');
    if (status === 401 || status === 403) {
      throw new UpstreamStatusError(`The PACS refused the ${what} request (${status}): check DICOMWEB_AUTH and credentials`, status, { code: 'UPSTREAM_UNAUTHORIZED' });
    }
    if (status === 408 || status === 504) throw new UpstreamTimeoutError(`The PACS timed out on the ${what} request (${status})`);
    const retryAfter = response.headers['retry-after'];
    const retryAfterMs = parseRetryAfterMs(Array.isArray(retryAfter) ? retryAfter[0] : retryAfter);
    throw new UpstreamStatusError(`The PACS answered ${status} to the ${what} request${retryAfterMs === undefined ? '' : ` (retry after ${Math.ceil(retryAfterMs / 1000)} s)`}`, status, { retryAfterMs });
  }

  const get = (path: string, options: GetOptions) => send(path, options, 'GET');

  return {
    baseUrl,
    get,
    post: (path, options) => send(path, options, 'POST'),
    async getJson(path, { signal, what, timeoutMs: requestTimeoutMs }) {
      const response = await get(path, { accept: 'application/dicom+json, application/json', signal, what, timeoutMs: requestTimeoutMs });
      if (response.status === 204) {
        await response.body.dump();
        return [];
      }
      try {
        const raw = Buffer.from(await response.body.arrayBuffer());
        const gzipped = raw[0] === 0x1f && raw[1] === 0x8b;
        const text = (gzipped ? gunzipSync(raw) : raw).toString('utf8');
        return text.trim() === '' ? [] : (JSON.parse(text) as unknown);
      } catch (error) {
        if (error instanceof SyntaxError) throw new UpstreamError(`The PACS sent invalid JSON for the ${what} request`, { cause: error });
        throw toUpstreamError(error, what, signal);
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      await agent.close();
    },
  };
}
