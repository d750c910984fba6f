/**
 * Operations: /healthz (liveness: the process answers), /readyz (readiness: the source, the default
 * model and the store, 503 naming what fails) and /metrics (Prometheus). Mounted at the root, outside
 * /api, so probes and scrapers need no credentials.
 */
import { Hono } from 'hono';
import type { GatewayMetrics } from '../ops/metrics.js';
import type { Readiness } from '../ops/readiness.js';

export interface OpsRoutesDeps {
  metrics: GatewayMetrics;
  checkReadiness: () => Promise<Readiness>;
}

export function createOpsRoutes({ metrics, checkReadiness }: OpsRoutesDeps): Hono {
  const app = new Hono();

  app.get('/healthz', (c) => c.json({ status: 'ok' }));

  app.get('/readyz', async (c) => {
    const { ready, checks } = await checkReadiness();
    if (ready) return c.json({ status: 'ready', checks });
    const failing = Object.entries(checks)
      .filter(([, check]) => !check.ok)
      .map(([name]) => name);
    return c.json({ status: 'not ready', failing, checks }, 503);
  });

  app.get('/metrics', async (c) => {
    const text = await metrics.render();
    return c.body(text, 200, { 'content-type': metrics.contentType, 'cache-control': 'no-store' });
  });

  return app;
}
