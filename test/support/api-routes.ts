/**
 * Every concrete /api route of an app, read from the app itself (so a new route cannot be forgotten by
 * the checks that walk them all: auth in test/security.test.ts, the reliability suite's security pass),
 * with its path parameters filled in with valid-looking values.
 */
import type { Hono } from 'hono';
import { SESSION_PATH } from '../../src/routes/security.js';

/** Valid-looking values for every path parameter the routes use; an unknown one is an error. */
export const ROUTE_PARAMS: Readonly<Record<string, string>> = {
  study: '1.2.3',
  series: '1.2.3.4',
  level: '0',
  col: '0',
  row: '0.jpg',
  id: '00000000-0000-4000-8000-000000000000',
  model: 'stain-texture',
  run: 'mpp0.5-s224-t0.25',
  file: 'embeddings.npy',
};

/** The app's /api routes (not ALL middleware, not the sign-in itself), parameters filled in. */
export function listApiRoutes(app: Hono, params: Readonly<Record<string, string>> = ROUTE_PARAMS): { method: string; url: string; pattern: string }[] {
  return app.routes
    .filter((r) => r.method !== 'ALL' && r.path.startsWith('/api/') && r.path !== SESSION_PATH)
    .map((r) => ({
      method: r.method,
      pattern: r.path,
      url: r.path.replace(/:(\w+)/g, (_, name: string) => {
        const value = params[name];
        if (value === undefined) throw new Error(`test/support/api-routes.ts: add a value for the path parameter :${name} (${r.path})`);
        return value;
      }),
    }));
}
