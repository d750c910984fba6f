import { Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createHttpMetrics } from './http-metrics.js';

const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

describe('createHttpMetrics', () => {
  it("writes exactly what prom-client's Counter and Histogram write for the same requests", async () => {
    const reference = new Registry();
    const counter = new Counter({ name: 't_requests_total', help: 'requests', labelNames: ['route', 'method', 'status'], registers: [reference] });
    const histogram = new Histogram({ name: 't_duration_seconds', help: 'duration', labelNames: ['route', 'method'], buckets: BUCKETS, registers: [reference] });
    const registry = new Registry();
    const metrics = createHttpMetrics(registry, { requestsName: 't_requests_total', requestsHelp: 'requests', durationName: 't_duration_seconds', durationHelp: 'duration', buckets: BUCKETS });

    // On a bound, between bounds, above every bound; several statuses and methods; a quote to escape.
    const requests: Array<[string, string, number, number]> = [
      ['GET', '/api/slides/:study/:series/tiles/:level/:col/:row', 200, 0.0004],
      ['GET', '/api/slides/:study/:series/tiles/:level/:col/:row', 304, 0.001],
      ['GET', '/api/slides/:study/:series/tiles/:level/:col/:row', 200, 0.0025],
      ['POST', '/api/slides/:study/:series/embeddings', 202, 0.3],
      ['GET', '/odd"route', 404, 12],
    ];
    for (const [method, route, status, seconds] of requests) {
      counter.inc({ route, method, status: String(status) });
      histogram.observe({ route, method }, seconds);
      metrics.observe(method, route, status, seconds);
    }

    const text = await registry.metrics();
    expect(text).toBe(await reference.metrics());
    expect(text).toContain('t_duration_seconds_bucket{le="0.001",route="/api/slides/:study/:series/tiles/:level/:col/:row",method="GET"} 2');
  });

  it('writes only help and type before any request', async () => {
    const registry = new Registry();
    createHttpMetrics(registry, { requestsName: 'e_total', requestsHelp: 'r', durationName: 'e_seconds', durationHelp: 'd', buckets: BUCKETS });
    expect(await registry.metrics()).toBe('# HELP e_total r\n# TYPE e_total counter\n\n# HELP e_seconds d\n# TYPE e_seconds histogram\n');
  });
});
