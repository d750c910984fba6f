/**
 * The gateway's Prometheus metrics, on a registry of its own (never prom-client's global one: several
 * gateways run in one test process, and each must count only its own work). Events are counted where
 * they happen (HTTP requests, PACS requests, committed batches); the rest is read from the services when
 * Prometheus scrapes (tile cache, jobs), so nothing is counted twice and nothing runs between scrapes.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { createHttpMetrics } from './http-metrics.js';
import type { KMeansEngine } from '../analysis/kmeans.js';
import type { JobQueue, JobReporter, JobState } from '../embed/jobs/job-queue.js';
import type { CircuitState } from '../source/index.js';
import type { UpstreamRequestEvent } from '../source/types.js';
import type { FrameCacheStats } from '../tiles/index.js';

const PREFIX = 'wsi_gateway_';
const JOB_STATES: readonly JobState[] = ['queued', 'running', 'done', 'failed', 'cancelled'];
/** Seconds: warm tiles answer in ~1 ms, cold ones from a PACS in 10-100 ms, slide lists and renders in seconds. */
const HTTP_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const PACS_BUCKETS = [0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const KMEANS_BUCKETS = [0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60];

/** What the scrape-time metrics read; bound once the services exist (the source needs metrics first). */
export interface MetricsSources {
  tiles: { stats(): FrameCacheStats };
  jobs: Pick<JobQueue, 'list'>;
}

export interface GatewayMetrics {
  readonly registry: Registry;
  /** The exposition format's media type, for the /metrics response. */
  readonly contentType: string;
  /** Binds the tile cache and job queue, read at each scrape. */
  watch(sources: MetricsSources): void;
  /** One HTTP request; `route` is the matched route pattern (never the URL: UIDs would explode the series). */
  observeHttp(method: string, route: string, status: number, seconds: number): void;
  /** One PACS request (the DICOMweb source's observer). */
  observeUpstream(event: UpstreamRequestEvent): void;
  /** One retry of a failed PACS read. */
  observeUpstreamRetry(operation: string): void;
  /** The PACS circuit breaker changed state. */
  observeCircuit(state: CircuitState): void;
  /** A job's reporter that also counts the patches this process embeds and skips. */
  countPatches(report: JobReporter): JobReporter;
  /** The engine, with each k-means run timed. */
  timeKMeans(engine: KMeansEngine): KMeansEngine;
  /** The exposition text. */
  render(): Promise<string>;
}

/** A counter that mirrors a cumulative count the service keeps, read at scrape time. */
function createMirrorCounter(name: string, help: string, registers: Registry[], read: () => number | undefined): Counter {
  let last = 0;
  return new Counter({
    name,
    help,
    registers,
    collect() {
      const now = read();
      if (now === undefined) return;
      if (now > last) this.inc(now - last);
      last = now;
    },
  });
}

export function createMetrics(): GatewayMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  let sources: MetricsSources | undefined;
  const registers = [registry];

  const http = createHttpMetrics(registry, {
    requestsName: `${PREFIX}http_requests_total`,
    requestsHelp: 'HTTP requests answered, by route pattern, method and status',
    durationName: `${PREFIX}http_request_duration_seconds`,
    durationHelp: 'HTTP request duration until the handler returned, by route pattern and method',
    buckets: HTTP_BUCKETS,
  });

  const cacheStats = () => sources?.tiles.stats();
  createMirrorCounter(`${PREFIX}tile_cache_hits_total`, 'Tile (frame) lookups answered from memory or from a fetch already in flight', registers, () => cacheStats()?.hits);
  createMirrorCounter(`${PREFIX}tile_cache_misses_total`, 'Tile (frame) lookups that had to ask the source', registers, () => cacheStats()?.misses);
  new Gauge({
    name: `${PREFIX}tile_cache_hit_ratio`,
    help: 'Hits / (hits + misses) since start (0 before any lookup); rate() of the counters gives the recent ratio',
    registers,
    collect() {
      const s = cacheStats();
      const lookups = s ? s.hits + s.misses : 0;
      this.set(s && lookups > 0 ? s.hits / lookups : 0);
    },
  });
  new Gauge({ name: `${PREFIX}tile_cache_bytes`, help: 'Bytes held by the tile cache (frames plus per-entry overhead)', registers, collect() { this.set(cacheStats()?.bytes ?? 0); } });
  new Gauge({ name: `${PREFIX}tile_cache_entries`, help: 'Frames held by the tile cache', registers, collect() { this.set(cacheStats()?.entries ?? 0); } });

  const pacsRequests = new Counter({ name: `${PREFIX}pacs_requests_total`, help: 'PACS requests by operation and outcome (ok, error, aborted by the caller)', labelNames: ['operation', 'outcome'], registers });
  const pacsDuration = new Histogram({ name: `${PREFIX}pacs_request_duration_seconds`, help: 'PACS request latency until the response headers, by operation', labelNames: ['operation'], buckets: PACS_BUCKETS, registers });
  const pacsErrors = new Counter({ name: `${PREFIX}pacs_errors_total`, help: 'Failed PACS requests by operation and kind (timeout, http_4xx, http_5xx, network)', labelNames: ['operation', 'kind'], registers });
  const pacsRetries = new Counter({ name: `${PREFIX}pacs_retries_total`, help: 'Failed PACS reads tried again, by operation', labelNames: ['operation'], registers });
  const circuitOpen = new Gauge({ name: `${PREFIX}pacs_circuit_open`, help: 'PACS circuit breaker: 0 closed, 1 open (failing fast), 0.5 half-open (one trial request)', registers });
  const circuitOpenings = new Counter({ name: `${PREFIX}pacs_circuit_openings_total`, help: 'Times the PACS circuit breaker opened', registers });

  const patchesEmbedded = new Counter({ name: `${PREFIX}patches_embedded_total`, help: 'Patches embedded and stored by this process (rate() gives patches/s)', registers });
  const patchesSkipped = new Counter({ name: `${PREFIX}patches_skipped_total`, help: 'Patches skipped by this process (frames the source could not give)', registers });
  new Gauge({
    name: `${PREFIX}embedding_patches_per_second`,
    help: 'Sum of the running jobs\' current rates (patches/s over their last seconds)',
    registers,
    collect() {
      this.set((sources?.jobs.list() ?? []).filter((j) => j.state === 'running').reduce((sum, j) => sum + j.progress.ratePerSecond, 0));
    },
  });
  new Gauge({
    name: `${PREFIX}jobs`,
    help: 'Embedding jobs the queue holds, by state (finished ones are kept up to a bound)',
    labelNames: ['state'],
    registers,
    collect() {
      const counts = new Map<JobState, number>(JOB_STATES.map((s) => [s, 0]));
      for (const job of sources?.jobs.list() ?? []) counts.set(job.state, (counts.get(job.state) ?? 0) + 1);
      for (const [state, count] of counts) this.set({ state }, count);
    },
  });
  const kmeansDuration = new Histogram({ name: `${PREFIX}kmeans_duration_seconds`, help: 'k-means runs (count) and their duration, failed ones included', buckets: KMEANS_BUCKETS, registers });

  return {
    registry,
    contentType: registry.contentType,
    watch(next) {
      sources = next;
    },
    observeHttp: http.observe,
    observeUpstream({ operation, outcome, errorKind, seconds }) {
      const op = operation.replaceAll(' ', '_');
      pacsRequests.inc({ operation: op, outcome });
      pacsDuration.observe({ operation: op }, seconds);
      if (outcome === 'error') pacsErrors.inc({ operation: op, kind: errorKind ?? 'network' });
    },
    observeUpstreamRetry(operation) {
      pacsRetries.inc({ operation: operation.replaceAll(' ', '_') });
    },
    observeCircuit(state) {
      circuitOpen.set(state === 'open' ? 1 : state === 'half-open' ? 0.5 : 0);
      if (state === 'open') circuitOpenings.inc();
    },
    countPatches(report) {
      // A job's first report is where it starts (the part stored by an earlier attempt, or all of it
      // for a complete run): only what follows was done here.
      let last: { embedded: number; skipped: number } | undefined;
      return {
        note: (text) => report.note(text),
        progress(update) {
          if (last) {
            if (update.embedded > last.embedded) patchesEmbedded.inc(update.embedded - last.embedded);
            if (update.skipped > last.skipped) patchesSkipped.inc(update.skipped - last.skipped);
          }
          last = { embedded: update.embedded, skipped: update.skipped };
          report.progress(update);
        },
      };
    },
    timeKMeans(engine) {
      return {
        async run(...args) {
          const end = kmeansDuration.startTimer();
          try {
            return await engine.run(...args);
          } finally {
            end();
          }
        },
        pca: (...args) => engine.pca(...args),
        close: () => engine.close(),
      };
    },
    render: () => registry.metrics(),
  };
}
