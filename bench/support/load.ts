/**
 * A closed-loop client like a tiled viewer's: a fixed number of requests in flight, each slot asking for
 * the next URL of an ordered list as soon as its previous answer has been read to the end.
 */
import { Agent, request } from 'undici';

/** Options of {@link runPass}. */
export interface PassOptions {
  /** Requests in flight. @default 8 (what OpenSeadragon-style viewers and browsers use per host) */
  concurrency?: number;
  /** Extra request headers (the WADO-RS Accept). */
  headers?: Record<string, string>;
}

/** What one pass over a URL list measured. */
export interface PassResult {
  readonly requests: number;
  readonly seconds: number;
  /** Body bytes received. */
  readonly bytes: number;
  /** Answers that were not 200, plus requests that threw. */
  readonly failures: number;
  readonly firstFailure: string | undefined;
  /** Latency of each request (send → last body byte), in ms, sorted ascending. */
  readonly latenciesMs: readonly number[];
}

/**
 * A keep-alive pool for one target. Orthanc announces `Keep-Alive: timeout=1`; undici's default 2 s safety
 * margin would then never reuse a connection, so the margin is cut to 100 ms (as the gateway does).
 */
export function createClientAgent(connections: number): Agent {
  return new Agent({ connections, keepAliveTimeoutThreshold: 100, keepAliveTimeout: 30_000 });
}

/** Fetches every URL once, `concurrency` at a time, in list order. Failures are counted, not thrown. */
export async function runPass(urls: readonly string[], { concurrency = 8, headers = {} }: PassOptions = {}): Promise<PassResult> {
  const agent = createClientAgent(concurrency);
  const latenciesMs: number[] = [];
  let next = 0;
  let bytes = 0;
  let failures = 0;
  let firstFailure: string | undefined;

  async function slot(): Promise<void> {
    for (let i = next++; i < urls.length; i = next++) {
      const url = urls[i]!;
      const sent = performance.now();
      try {
        const { statusCode, body } = await request(url, { dispatcher: agent, headers });
        // Reading the whole body is part of the cost: a viewer cannot draw half a tile.
        for await (const chunk of body) bytes += (chunk as Buffer).length;
        if (statusCode !== 200) {
          failures++;
          firstFailure ??= `HTTP ${statusCode} for ${url}`;
        }
      } catch (error) {
        failures++;
        firstFailure ??= `${error instanceof Error ? error.message : String(error)} for ${url}`;
      }
      latenciesMs.push(performance.now() - sent);
    }
  }

  const started = performance.now();
  try {
    await Promise.all(Array.from({ length: Math.min(concurrency, urls.length) }, () => slot()));
  } finally {
    await agent.close();
  }
  const seconds = (performance.now() - started) / 1000;
  latenciesMs.sort((a, b) => a - b);
  return { requests: urls.length, seconds, bytes, failures, firstFailure, latenciesMs };
}

/** The pass of median time (the slower of the middle two for an even count): a figure measured, not averaged. */
export function selectMedianPass(passes: readonly PassResult[]): PassResult {
  if (passes.length === 0) throw new Error('no passes to take the median of');
  return [...passes].sort((a, b) => a.seconds - b.seconds)[Math.floor(passes.length / 2)]!;
}

/** The p-th percentile (0-100) of an ascending list, nearest rank; NaN for an empty list. */
export function percentile(sortedAscending: readonly number[], p: number): number {
  if (sortedAscending.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sortedAscending.length);
  return sortedAscending[Math.min(sortedAscending.length, Math.max(1, rank)) - 1]!;
}

/** GETs one URL and returns its status, content type and body (for checks, not for timing). */
export async function fetchBytes(url: string, headers: Record<string, string> = {}): Promise<{ status: number; contentType: string; body: Buffer }> {
  const { statusCode, headers: responseHeaders, body } = await request(url, { headers });
  return { status: statusCode, contentType: String(responseHeaders['content-type'] ?? ''), body: Buffer.from(await body.arrayBuffer()) };
}

/** The body of a GET that must answer 200; `purpose` ends the error otherwise (", reading level 0 in"). */
export async function fetchOk(url: string, purpose = ''): Promise<Buffer> {
  const { status, body } = await fetchBytes(url);
  if (status !== 200) throw new Error(`HTTP ${status} for ${url}${purpose}`);
  return body;
}

/**
 * The first part of a multipart/related body (a single-frame WADO-RS answer). Orthanc puts the boundary
 * unquoted after the `type` parameter; quoted boundaries are allowed by RFC 2046 too.
 */
export function extractFirstPart(contentType: string, body: Buffer): Buffer {
  const boundary = /boundary="?([^";]+)"?/i.exec(contentType)?.[1];
  if (boundary === undefined) throw new Error(`no boundary in ${contentType}`);
  const start = body.indexOf('\r\n\r\n', body.indexOf(`--${boundary}`));
  const end = body.indexOf(`\r\n--${boundary}`, start);
  if (start < 0 || end < 0) throw new Error('malformed multipart body');
  return body.subarray(start + 4, end);
}
