import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Hono } from 'hono';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createErrorHandler, notFound } from './errors.js';
import { createViewerRoutes } from './viewer.js';

function appOn(dir: string): Hono {
  const app = new Hono();
  app.onError(createErrorHandler(pino({ level: 'silent' })));
  app.notFound(notFound);
  app.route('/', createViewerRoutes(dir));
  return app;
}

describe('viewer routes', () => {
  it('serves the built files with types, a CSP on the page and ETag revalidation', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'viewer-'));
    mkdirSync(join(dir, 'osd-images'));
    writeFileSync(join(dir, 'index.html'), '<!doctype html>');
    writeFileSync(join(dir, 'app.js'), 'console.log(1)');
    writeFileSync(join(dir, 'osd-images', 'home_rest.png'), 'png');
    writeFileSync(join(dir, '..', 'secret.txt'), 'not served');
    const app = appOn(dir);
    const page = await app.request('/');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect((await app.request('/app.js')).headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect((await app.request('/osd-images/home_rest.png')).status).toBe(200);
    const etag = page.headers.get('etag')!;
    expect((await app.request('/', { headers: { 'if-none-match': etag } })).status).toBe(304);
    for (const path of ['/../secret.txt', '/%2e%2e/secret.txt', '/nope.js']) expect((await app.request(path)).status).toBe(404);
  });

  it('answers 503 VIEWER_NOT_BUILT until the viewer is built, then serves it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'viewer-'));
    const app = appOn(dir);
    const before = await app.request('/');
    expect(before.status).toBe(503);
    expect(((await before.json()) as { error: { code: string } }).error.code).toBe('VIEWER_NOT_BUILT');
    writeFileSync(join(dir, 'index.html'), '<!doctype html>');
    expect((await app.request('/')).status).toBe(200);
  });
});
