/**
 * One fuzz pass: every route of one gateway gets `perRoute` generated inputs through `app.request` (no
 * socket), a few at a time, and every answer is held to the invariants of issue 7: no 5xx unless an
 * upstream failed, the one error shape with a documented code, no canary and no machine path in any
 * body, no hang; after each batch a known-good request must still be answered exactly as before.
 */
import type { Hono } from 'hono';
import { createRng } from './fuzz-values.js';
import { generateInput, type FuzzInput, type FuzzWorld, type RouteSpec } from './fuzz-grammar.js';

export interface PassOptions {
  /** 'folder' or 'dicomweb', in failure messages. */
  name: string;
  app: Hono;
  routes: readonly RouteSpec[];
  world: FuzzWorld;
  perRoute: number;
  seed: number;
  /** Whether a 5xx answer is the upstream's failure (allowed) rather than ours. */
  isAllowed5xx(status: number, code: string | undefined): boolean;
  /** Whether a 503 from /readyz names only what may fail here (the PACS, for DICOMweb). */
  isAllowedNotReady(failing: readonly string[]): boolean;
  /** Codes the README documents; any other is not a stable code. */
  documentedCodes: ReadonlySet<string>;
  /** Must appear in no answer. */
  canaryMarker: string;
  /** Absolute paths of this machine that must not appear in an answer unless the request held them. */
  machinePaths: readonly string[];
  /** A request whose answer must not change: resolves to a difference in words, or undefined. */
  checkKnownGood(): Promise<string | undefined>;
  /** Called after each batch (cancel the jobs that valid POSTs started). */
  afterBatch?(): Promise<void>;
  /** The last unexpected error the gateway logged, to say why a 500 happened. */
  lastLoggedError?(): string | undefined;
  log(line: string): void;
  /** Inputs per batch. @default 100 */
  batchSize?: number;
  /** Requests in flight at once. @default 4 */
  concurrency?: number;
  /** A request taking longer than this is a hang, in ms. @default 30000 */
  timeoutMs?: number;
}

export interface PassResult {
  inputs: number;
  perRoute: Record<string, number>;
  statuses: Record<string, number>;
  codes: Record<string, number>;
  failures: string[];
  seconds: number;
}

/** Distinct failures kept in full; the rest are counted. */
const MAX_FAILURES = 40;
const STACK_FRAME = /\n\s+at .+:\d+:\d+/;

async function readBody(response: Response, timeoutMs: number): Promise<{ text: string } | 'hang'> {
  if (!response.body) return { text: '' };
  // An event stream never ends by itself: its first event is enough.
  const streaming = response.headers.get('content-type')?.startsWith('text/event-stream') === true;
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<'hang'>((resolve) => (timer = setTimeout(() => resolve('hang'), timeoutMs)));
  try {
    for (;;) {
      const next = await Promise.race([reader.read(), timeout]);
      if (next === 'hang') return 'hang';
      if (next.done) break;
      chunks.push(next.value);
      if (streaming) break;
    }
  } finally {
    clearTimeout(timer);
    await reader.cancel().catch(() => undefined);
  }
  return { text: Buffer.concat(chunks).toString('latin1') };
}

function describeInput(input: FuzzInput): string {
  const url = input.url.length > 160 ? `${input.url.slice(0, 160)}…(${input.url.length} chars)` : input.url;
  const body = typeof input.body === 'string' ? ` body ${JSON.stringify(input.body.slice(0, 80))}${input.body.length > 80 ? `…(${input.body.length})` : ''}` : input.body ? ' body <bytes>' : '';
  return `${input.method} ${url}${body} [${input.mutation}]`;
}

function errorOf(text: string): { code?: string; message?: string } | undefined {
  try {
    const parsed = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    const { code, message } = parsed?.error ?? {};
    return typeof code === 'string' && typeof message === 'string' ? { code, message } : undefined;
  } catch {
    return undefined;
  }
}

export async function runFuzzPass(options: PassOptions): Promise<PassResult> {
  const { app, world, timeoutMs = 30_000, batchSize = 100, concurrency = 4 } = options;
  const started = performance.now();
  const rng = createRng(options.seed);
  const result: PassResult = { inputs: 0, perRoute: {}, statuses: {}, codes: {}, failures: [], seconds: 0 };
  const seen = new Map<string, number>();
  const fail = (key: string, text: string) => {
    const count = (seen.get(key) ?? 0) + 1;
    seen.set(key, count);
    if (count === 1 && result.failures.length < MAX_FAILURES) result.failures.push(`${options.name}: ${text}`);
  };

  async function send(route: RouteSpec, input: FuzzInput): Promise<void> {
    const routeName = `${route.method} ${route.path}`;
    let response: Response;
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const init = { method: input.method, headers: input.headers, ...(input.body !== undefined && { body: input.body }) };
      const answered = Promise.resolve(app.request(input.url, init));
      const timeout = new Promise<'hang'>((resolve) => (timer = setTimeout(() => resolve('hang'), timeoutMs)));
      const first = await Promise.race([answered, timeout]);
      if (first === 'hang') return fail(`${routeName} hang`, `${routeName}: no answer within ${timeoutMs} ms to ${describeInput(input)}`);
      response = first;
    } catch (error) {
      return fail(`${routeName} threw`, `${routeName}: app.request threw ${(error as Error).message} for ${describeInput(input)}`);
    } finally {
      clearTimeout(timer);
    }
    const { status } = response;
    result.statuses[status] = (result.statuses[status] ?? 0) + 1;
    const body = await readBody(response, timeoutMs);
    if (body === 'hang') return fail(`${routeName} body hang`, `${routeName}: the body did not end within ${timeoutMs} ms for ${describeInput(input)}`);
    // /readyz has its own documented answer: 503 {"status":"not ready","failing":[...]} (README).
    const notReady = route.path === '/readyz' && status === 503 ? notReadyOf(body.text) : undefined;
    if (notReady) {
      if (!options.isAllowedNotReady(notReady)) fail(`${routeName} not ready ${notReady.join()}`, `${routeName}: not ready, failing ${notReady.join(', ')}: ${body.text.slice(0, 300)}`);
      return;
    }
    const error = status >= 400 ? errorOf(body.text) : undefined;
    if (error?.code) result.codes[error.code] = (result.codes[error.code] ?? 0) + 1;
    if (status >= 500 && !options.isAllowed5xx(status, error?.code)) {
      const cause = error?.code === 'INTERNAL' ? ` (logged: ${options.lastLoggedError?.() ?? 'nothing'})` : '';
      fail(`${routeName} ${status} ${error?.code}`, `${routeName}: ${status} ${error?.code ?? 'no code'}${cause} for ${describeInput(input)}`);
    }
    if (status >= 400 && input.method !== 'HEAD' && !error) fail(`${routeName} shape ${status}`, `${routeName}: ${status} without {error:{code,message}}: ${JSON.stringify(body.text.slice(0, 300))} for ${describeInput(input)}`);
    if (error?.code && !options.documentedCodes.has(error.code)) fail(`code ${error.code}`, `${routeName}: code ${error.code} is not documented in README.md (${status}) for ${describeInput(input)}`);
    if (input.expectStatus !== undefined && status !== input.expectStatus) fail(`${routeName} expect ${input.expectStatus} got ${status}`, `${routeName}: ${status} where ${input.expectStatus} was due for ${describeInput(input)}`);
    if (body.text.includes(options.canaryMarker)) fail(`${routeName} canary`, `${routeName}: the canary's marker is in the answer to ${describeInput(input)}`);
    const asked = `${safeDecode(input.url)}\n${typeof input.body === 'string' ? input.body : ''}`;
    const leaked = options.machinePaths.find((p) => body.text.includes(p) && !asked.includes(p));
    if (leaked) fail(`${routeName} path`, `${routeName}: the answer holds the machine path ${leaked} for ${describeInput(input)}`);
    if (STACK_FRAME.test(body.text) && status >= 400) fail(`${routeName} stack`, `${routeName}: a stack trace in the answer to ${describeInput(input)}`);
  }

  for (const route of options.routes) {
    const routeName = `${route.method} ${route.path}`;
    result.perRoute[routeName] = 0;
    for (let done = 0; done < options.perRoute; ) {
      const batch = Array.from({ length: Math.min(batchSize, options.perRoute - done) }, () => generateInput(route, world, rng));
      let next = 0;
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          for (let i = next++; i < batch.length; i = next++) await send(route, batch[i]!);
        }),
      );
      done += batch.length;
      result.inputs += batch.length;
      result.perRoute[routeName] += batch.length;
      await options.afterBatch?.();
      const broken = await options.checkKnownGood();
      if (broken) fail(`known-good after ${routeName}`, `the known-good request failed after a batch of ${routeName}: ${broken}`);
    }
    options.log(`fuzz ${options.name}: ${routeName} ${result.perRoute[routeName]} inputs (${result.inputs} in all, ${Math.round(performance.now() - started) / 1000} s)`);
  }
  for (const [key, count] of seen) if (count > 1) result.failures.push(`${options.name}: (${count} times in all) ${key}`);
  result.seconds = (performance.now() - started) / 1000;
  return result;
}

function notReadyOf(text: string): string[] | undefined {
  try {
    const parsed = JSON.parse(text) as { status?: unknown; failing?: unknown };
    return parsed.status === 'not ready' && Array.isArray(parsed.failing) ? parsed.failing.map(String) : undefined;
  } catch {
    return undefined;
  }
}

function safeDecode(url: string): string {
  try {
    return `${url}\n${decodeURIComponent(url)}`;
  } catch {
    return url;
  }
}
