/**
 * The HTTP request count and duration histogram, kept in plain numbers and handed to the prom-client
 * registry as two metrics of its own (`registerMetric`, read through `get()` at each scrape).
 *
 * Why not prom-client's Counter and Histogram: every tile answered is one observation, and their
 * observe/inc validate the label names and build a label hash string on each call. A fresh gateway
 * process serving a slide's 4,582 level-0 tiles from memory used 540 ms of CPU with this against 580 ms
 * with them (median of 10 alternating rounds; docs/decisions.md, "Cold tiles: a floor"). Here a request
 * finds its series through two map lookups on the route and method it already has.
 */
import type { Registry } from 'prom-client';

interface RouteSeries {
  /** Requests by status code. */
  readonly statuses: Map<number, number>;
  /** Observations per bucket (not cumulative), the last one for those above every bound. */
  readonly buckets: Float64Array;
  sum: number;
  count: number;
}

/** One exposition line as prom-client's registry reads it from a metric's get(). */
interface ExposedValue {
  labels: Record<string, string | number>;
  /** Written after `labels`: a histogram's series labels follow its `le`. */
  sharedLabels?: Record<string, string>;
  value: number;
  metricName?: string;
}

/** What the registry needs of a metric (prom-client's typings want one of its own classes). */
interface ExposedMetric {
  name: string;
  help: string;
  type: 'counter' | 'histogram';
  aggregator: 'sum';
  get(): Promise<Omit<ExposedMetric, 'get'> & { values: ExposedValue[] }>;
}

export interface HttpMetricsOptions {
  /** Metric names: the counter's and the histogram's. */
  requestsName: string;
  durationName: string;
  requestsHelp: string;
  durationHelp: string;
  /** The histogram's upper bounds in seconds, ascending. */
  buckets: readonly number[];
}

export interface HttpMetrics {
  /** One answered request: `route` is the route pattern, never the path. */
  observe(method: string, route: string, status: number, seconds: number): void;
}

function exposeMetric(registry: Registry, name: string, help: string, type: ExposedMetric['type'], read: () => ExposedValue[]): void {
  const metric: ExposedMetric = { name, help, type, aggregator: 'sum', get: () => Promise.resolve({ name, help, type, aggregator: 'sum', values: read() }) };
  registry.registerMetric(metric as unknown as Parameters<Registry['registerMetric']>[0]);
}

export function createHttpMetrics(registry: Registry, { requestsName, durationName, requestsHelp, durationHelp, buckets }: HttpMetricsOptions): HttpMetrics {
  /** route → method → series. */
  const series = new Map<string, Map<string, RouteSeries>>();

  function collect(visit: (route: string, method: string, s: RouteSeries, out: ExposedValue[]) => void): ExposedValue[] {
    const out: ExposedValue[] = [];
    for (const [route, byMethod] of series) for (const [method, s] of byMethod) visit(route, method, s, out);
    return out;
  }

  exposeMetric(registry, requestsName, requestsHelp, 'counter', () =>
    collect((route, method, s, out) => {
      for (const [status, count] of s.statuses) out.push({ labels: { route, method, status: String(status) }, value: count });
    }),
  );
  exposeMetric(registry, durationName, durationHelp, 'histogram', () =>
    collect((route, method, s, out) => {
      // As prom-client writes a histogram: cumulative buckets, `le` before the series' own labels.
      const sharedLabels = { route, method };
      let cumulative = 0;
      buckets.forEach((bound, i) => {
        cumulative += s.buckets[i]!;
        out.push({ labels: { le: bound }, sharedLabels, value: cumulative, metricName: `${durationName}_bucket` });
      });
      out.push({ labels: { le: '+Inf' }, sharedLabels, value: s.count, metricName: `${durationName}_bucket` });
      out.push({ labels: {}, sharedLabels, value: s.sum, metricName: `${durationName}_sum` });
      out.push({ labels: {}, sharedLabels, value: s.count, metricName: `${durationName}_count` });
    }),
  );

  return {
    observe(method, route, status, seconds) {
      let byMethod = series.get(route);
      if (!byMethod) series.set(route, (byMethod = new Map()));
      let s = byMethod.get(method);
      if (!s) byMethod.set(method, (s = { statuses: new Map(), buckets: new Float64Array(buckets.length + 1), sum: 0, count: 0 }));
      s.statuses.set(status, (s.statuses.get(status) ?? 0) + 1);
      let i = 0;
      while (i < buckets.length && seconds > buckets[i]!) i++;
      s.buckets[i] = s.buckets[i]! + 1;
      s.sum += seconds;
      s.count++;
    },
  };
}
