/**
 * The viewer's static files (viewer/dist, built by scripts/build-viewer.mjs) at `/`. A handful of files,
 * read once into memory: no path from a request ever reaches the file system.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join, relative, sep } from 'node:path';
import { Hono } from 'hono';
import { GatewayError } from '../errors.js';
import { appPath } from '../paths.js';

export const DEFAULT_VIEWER_DIR = appPath('viewer/dist/');

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.txt': 'text/plain; charset=utf-8',
};

/** Same-origin only: the page talks to this gateway and nothing else. */
const CSP = "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'none'; frame-ancestors 'self'";

interface StaticFile {
  body: Uint8Array<ArrayBuffer>;
  type: string;
  etag: string;
}

function readTree(dir: string): Map<string, StaticFile> {
  const files = new Map<string, StaticFile>();
  const walk = (current: string): void => {
    for (const entry of readdirSync(current, { withFileTypes: true })) {
      const path = join(current, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.isFile()) {
        const body = new Uint8Array(readFileSync(path));
        const etag = `"${createHash('sha1').update(body).digest('base64url').slice(0, 16)}"`;
        files.set(`/${relative(dir, path).split(sep).join('/')}`, { body, type: CONTENT_TYPES[extname(path)] ?? 'application/octet-stream', etag });
      }
    }
  };
  walk(dir);
  return files;
}

export function createViewerRoutes(dir = DEFAULT_VIEWER_DIR): Hono {
  const app = new Hono();
  let files: Map<string, StaticFile> | undefined;
  // Read on first use, and again while it is missing, so a build after start is picked up.
  const load = (): Map<string, StaticFile> | undefined => {
    if (!files && statSync(join(dir, 'index.html'), { throwIfNoEntry: false })) files = readTree(dir);
    return files;
  };

  app.get('*', async (c, next) => {
    const path = c.req.path === '/' ? '/index.html' : c.req.path;
    const all = load();
    if (!all) {
      if (path !== '/index.html') return next();
      throw new GatewayError('VIEWER_NOT_BUILT', 503, 'The viewer is not built: run `npm run build:viewer` (npm install does it).');
    }
    const file = all.get(path);
    if (!file) return next();
    const headers: Record<string, string> = { 'content-type': file.type, etag: file.etag, 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff' };
    if (path === '/index.html') headers['content-security-policy'] = CSP;
    if (c.req.header('if-none-match') === file.etag) return c.body(null, 304, headers);
    return c.body(file.body, 200, headers);
  });
  return app;
}
