/**
 * A gateway under fuzz, and what the fuzz needs to know about it: its routes (from `app.routes`, so a
 * new route is fuzzed without anyone remembering to add it), the slides it serves, an embedding run
 * made before the fuzz (so cluster and similarity requests reach the analysis code), a known-good
 * request whose answer must never change, and the error codes README.md documents.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import type { Hono } from 'hono';
import { createTestGateway, type TestGateway } from '../support/gateway.js';
import type { FuzzWorld, RouteSpec, RunTarget, SlideTarget } from './fuzz-grammar.js';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface FuzzGateway {
  gateway: TestGateway;
  routes: RouteSpec[];
  world: FuzzWorld;
  /** The message and first stack line of the last error the gateway logged as unexpected. */
  lastLoggedError(): string | undefined;
  checkKnownGood(): Promise<string | undefined>;
  /** Cancels every job still queued or running (valid POSTs start real ones). */
  cancelJobs(): Promise<void>;
}

/** Every concrete route of the app: handlers only (middleware is `ALL`), each method once. */
export function listRoutes(app: Hono): RouteSpec[] {
  const seen = new Set<string>();
  return app.routes
    .filter((r) => r.method !== 'ALL')
    .map((r) => ({ method: r.method, path: r.path }))
    .filter((r) => !seen.has(`${r.method} ${r.path}`) && seen.add(`${r.method} ${r.path}`));
}

/** The codes in README.md's error table (and the viewer's VIEWER_NOT_BUILT): the stable ones. */
export function readDocumentedCodes(): Set<string> {
  const readme = readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
  const codes = new Set<string>();
  for (const line of readme.split('\n')) {
    if (!/^\| (\d{3}|`[A-Z]+ )/.test(line)) continue;
    for (const [, code] of line.matchAll(/`([A-Z][A-Z0-9_]{2,})`/g)) codes.add(code!);
  }
  return codes;
}

async function json<T>(app: Hono, url: string, init: RequestInit = {}): Promise<T> {
  const response = await app.request(url, init);
  if (!response.ok) throw new Error(`fuzz setup: ${init.method ?? 'GET'} ${url} answered ${response.status}: ${await response.text()}`);
  return (await response.json()) as T;
}

interface Descriptor {
  studyUid: string;
  seriesUid: string;
  widthPx: number;
  heightPx: number;
  levels: { gridCols: number; gridRows: number }[];
}

/** Embeds one slide with the built-in model and waits for the run (a minute at most). */
async function seedRun(app: Hono, slide: SlideTarget, headers: Record<string, string>, log: (line: string) => void): Promise<{ run?: RunTarget; jobId: string }> {
  const url = `/api/slides/${slide.studyUid}/${slide.seriesUid}/embeddings`;
  const job = await json<{ id: string }>(app, url, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify({ model: 'stain-texture', mpp: 0.5, minTissue: 0 }) });
  const deadline = Date.now() + 120_000;
  for (;;) {
    const state = await json<{ state: string; result?: { runId: string }; error?: { message: string } }>(app, `/api/jobs/${job.id}`, { headers });
    if (state.state === 'done' && state.result) return { run: { studyUid: slide.studyUid, seriesUid: slide.seriesUid, modelId: 'stain-texture', runId: state.result.runId }, jobId: job.id };
    if (state.state === 'failed' || state.state === 'cancelled' || Date.now() > deadline) {
      log(`fuzz setup: the seed embedding of ${slide.seriesUid} ended ${state.state}: ${state.error?.message ?? 'timed out'}`);
      return { jobId: job.id };
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

export interface CreateFuzzGatewayOptions {
  env: Record<string, string>;
  token?: string;
  bodyLimitBytes: number;
  canaryPaths: readonly string[];
  /** Series to embed before the fuzz (the first slide when unset). */
  seedSeriesUid?: string;
  log(line: string): void;
}

export async function createFuzzGateway(options: CreateFuzzGatewayOptions): Promise<FuzzGateway> {
  let lastError: string | undefined;
  // The app logs an unexpected error with its stack; kept so a 500 in the report says where it came from.
  const logger = pino({ level: 'error' }, { write: (line: string) => void (lastError = describeLogged(line)) });
  const gateway = createTestGateway(options.env, { logger });
  const { app } = gateway;
  const headers: Record<string, string> = options.token ? { authorization: `Bearer ${options.token}` } : {};
  const list = await json<{ slides: { studyUid: string; seriesUid: string; error?: unknown }[] }>(app, '/api/slides?limit=500', { headers });
  const slides: SlideTarget[] = [];
  for (const entry of list.slides.filter((s) => !s.error)) {
    const d = await json<Descriptor>(app, `/api/slides/${entry.studyUid}/${entry.seriesUid}`, { headers });
    slides.push({ studyUid: d.studyUid, seriesUid: d.seriesUid, widthPx: d.widthPx, heightPx: d.heightPx, levels: d.levels.map((l) => ({ gridCols: l.gridCols, gridRows: l.gridRows })) });
  }
  if (slides.length === 0) throw new Error('fuzz setup: the gateway serves no slide');
  const seedSlide = slides.find((s) => s.seriesUid === options.seedSeriesUid) ?? slides[0]!;
  const seeded = await seedRun(app, seedSlide, headers, options.log);

  // Known good: the last (smallest) level's first tile, the slide descriptor and the liveness probe.
  const level = seedSlide.levels.length - 1;
  const tileUrl = `/api/slides/${seedSlide.studyUid}/${seedSlide.seriesUid}/tiles/${level}/0/0.jpg`;
  const baseline = await app.request(tileUrl, { headers });
  if (baseline.status !== 200) throw new Error(`fuzz setup: the known-good tile answered ${baseline.status}`);
  const baselineTile = Buffer.from(await baseline.arrayBuffer());
  async function checkKnownGood(): Promise<string | undefined> {
    const tile = await app.request(tileUrl, { headers });
    if (tile.status !== 200) return `${tileUrl} answered ${tile.status}`;
    if (!Buffer.from(await tile.arrayBuffer()).equals(baselineTile)) return `${tileUrl} answered other bytes`;
    const descriptor = await app.request(`/api/slides/${seedSlide.studyUid}/${seedSlide.seriesUid}`, { headers });
    if (descriptor.status !== 200 || ((await descriptor.json()) as Descriptor).levels.length !== seedSlide.levels.length) return `the descriptor answered ${descriptor.status}`;
    const health = await app.request('/healthz');
    return health.status === 200 ? undefined : `/healthz answered ${health.status}`;
  }

  return {
    gateway,
    routes: listRoutes(app),
    world: {
      slides,
      runs: seeded.run ? [seeded.run] : [],
      jobIds: [seeded.jobId],
      canaryPaths: options.canaryPaths,
      token: options.token,
      bodyLimitBytes: options.bodyLimitBytes,
    },
    lastLoggedError: () => lastError,
    checkKnownGood,
    async cancelJobs() {
      const { jobs } = gateway.services;
      for (const job of jobs.list()) if (job.state === 'queued' || job.state === 'running') jobs.cancel(job.id);
    },
  };
}

function describeLogged(line: string): string {
  try {
    const entry = JSON.parse(line) as { msg?: string; err?: { message?: string; stack?: string } };
    const frame = entry.err?.stack?.split('\n').find((l) => l.includes(' at '))?.trim();
    return `${entry.msg ?? ''}: ${entry.err?.message ?? ''} ${frame ?? ''}`.trim();
  } catch {
    return line.slice(0, 200);
  }
}
