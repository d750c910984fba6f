/**
 * The warm-tile fast path (src/routes/tile-fast-path.ts) on a real socket: it answers only warm tiles,
 * with the bytes, status and headers the Hono tile route gives, and leaves everything else (misses,
 * refused callers, cross-origin requests, HEAD, queries, bad parameters, shutdown) to Hono.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { getRequestListener } from '@hono/node-server';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { createGatewayHttp, createServices, type Services } from '../src/app.js';
import { loadConfig } from '../src/config/index.js';
import { TILE_ROUTE } from '../src/routes/slides.js';
import { serveGateway } from '../src/server.js';
import { sharedWsiDir } from './support/wsi-data.js';

const TOKEN = 'fast-path-token-0123456789';
const closers: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const close of closers.reverse()) await close();
});

interface Counted {
  baseUrl: string;
  services: Services;
  /** How many requests the fast path answered. */
  fast: () => number;
}

/** The gateway's two request paths on a socket, counting the ones the fast path answers. */
async function startCounted(env: Record<string, string>): Promise<Counted> {
  const services = createServices(loadConfig({ LOG_LEVEL: 'silent', ...env }), { logger: pino({ level: 'silent' }) });
  const { app, serveWarmTile } = createGatewayHttp(services);
  const honoListener = getRequestListener(app.fetch);
  let fast = 0;
  const server = createServer((req, res) => {
    if (serveWarmTile(req, res)) fast++;
    else void honoListener(req, res);
  });
  return { baseUrl: await listen(server, services), services, fast: () => fast };
}

async function listen(server: Server, services: Services): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await services.close();
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function firstSlideId(baseUrl: string, headers: Record<string, string> = {}): Promise<string> {
  const list = (await (await fetch(`${baseUrl}/api/slides`, { headers })).json()) as { slides: Array<{ id: string }> };
  return list.slides[0]!.id;
}

/** Status, headers (without Date) and body of a GET. */
async function get(url: string, init: RequestInit = {}) {
  const response = await fetch(url, init);
  const headers = Object.fromEntries([...response.headers].filter(([name]) => name !== 'date'));
  return { status: response.status, headers, body: Buffer.from(await response.arrayBuffer()) };
}

const jpegDir = join(sharedWsiDir, 'cmu1-t256-q90');
const j2kDir = join(sharedWsiDir, 'cmu1-t256-j2k');

describe('warm tiles', () => {
  it('answers a warm JPEG tile exactly as the Hono route answered it cold, and a 304 alike', async () => {
    const g = await startCounted({ DICOM_DIR: jpegDir });
    const tile = `${g.baseUrl}/api/slides/${await firstSlideId(g.baseUrl)}/tiles/0/3/4.jpg`;
    const cold = await get(tile);
    expect(g.fast()).toBe(0);
    const warm = await get(tile);
    expect(g.fast()).toBe(1);
    expect(cold.status).toBe(200);
    expect(warm).toEqual(cold);
    expect(warm.headers['content-length']).toBe(String(warm.body.length));

    const etag = warm.headers['etag']!;
    const notModified = await get(tile, { headers: { 'if-none-match': etag } });
    expect(g.fast()).toBe(2);
    expect(notModified.status).toBe(304);
    expect(notModified.headers['etag']).toBe(etag);
    expect(notModified.headers['cache-control']).toBe(warm.headers['cache-control']);
  });

  it('serves a JPEG 2000 tile from the fast path once it has been transcoded, the same bytes', async () => {
    const g = await startCounted({ DICOM_DIR: j2kDir });
    const tile = `${g.baseUrl}/api/slides/${await firstSlideId(g.baseUrl)}/tiles/1/2/2.jpg`;
    const first = await get(tile);
    const second = await get(tile);
    expect(first.status).toBe(200);
    expect(first.body.subarray(0, 2)).toEqual(Buffer.from([0xff, 0xd8]));
    expect(second).toEqual(first);
    expect(g.fast()).toBe(1);
  });

  it('counts its answers in the HTTP metrics under the tile route, like the Hono route', async () => {
    const g = await startCounted({ DICOM_DIR: jpegDir });
    const tile = `${g.baseUrl}/api/slides/${await firstSlideId(g.baseUrl)}/tiles/0/0/0.jpg`;
    for (let i = 0; i < 3; i++) await get(tile);
    expect(g.fast()).toBe(2);
    const metrics = await (await fetch(`${g.baseUrl}/metrics`)).text();
    const tileLines = metrics.split('\n').filter((line) => line.startsWith('wsi_gateway_http_requests_total') && line.includes('/tiles/'));
    expect(tileLines).toEqual([`wsi_gateway_http_requests_total{route="${TILE_ROUTE}",method="GET",status="200"} 3`]);
    expect(metrics).toMatch(/wsi_gateway_tile_cache_hits_total 2\b/);
  });

  it('leaves misses, HEAD, queries, bad parameters and tiles outside the grid to Hono', async () => {
    const g = await startCounted({ DICOM_DIR: jpegDir });
    const slide = `${g.baseUrl}/api/slides/${await firstSlideId(g.baseUrl)}`;
    await get(`${slide}/tiles/0/1/1.jpg`);
    expect(g.fast()).toBe(0);
    const answers = [
      await get(`${slide}/tiles/0/1/1.jpg`, { method: 'HEAD' }),
      await get(`${slide}/tiles/0/1/1.jpg?x=1`),
      await get(`${slide}/tiles/0/99/1.jpg`),
      await get(`${slide}/tiles/9/1/1.jpg`),
      await get(`${slide}/tiles/0/1/1.png`),
      await get(`${g.baseUrl}/api/slides/1.2.3/4.5.6/tiles/0/1/1.jpg`),
    ];
    expect(answers.map((a) => a.status)).toEqual([200, 200, 404, 404, 404, 404]);
    expect(g.fast()).toBe(0);
  });
});

describe('who may call', () => {
  it('applies token auth: no credentials get Hono\'s 401, a bearer token or a session cookie the fast path', async () => {
    const g = await startCounted({ DICOM_DIR: jpegDir, GATEWAY_AUTH: 'token', GATEWAY_API_TOKENS: TOKEN });
    const bearer = { authorization: `Bearer ${TOKEN}` };
    const tile = `${g.baseUrl}/api/slides/${await firstSlideId(g.baseUrl, bearer)}/tiles/0/2/2.jpg`;
    expect((await get(tile, { headers: bearer })).status).toBe(200);
    const before = g.fast();

    const refused = await get(tile);
    expect(refused.status).toBe(401);
    expect(refused.headers['www-authenticate']).toBe('Bearer');
    const wrong = await get(tile, { headers: { authorization: 'Bearer nope' } });
    expect(wrong.status).toBe(401);
    expect(g.fast()).toBe(before);

    expect((await get(tile, { headers: bearer })).status).toBe(200);
    const session = await fetch(`${g.baseUrl}/api/session`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: TOKEN }) });
    const cookie = /^[^;]+/.exec(session.headers.get('set-cookie') ?? '')![0];
    expect((await get(tile, { headers: { cookie } })).status).toBe(200);
    expect((await get(tile, { headers: { cookie: `${cookie}x` } })).status).toBe(401);
    expect(g.fast()).toBe(before + 2);
  });

  it('leaves cross-origin requests to Hono when CORS is on, so they get their CORS headers', async () => {
    const g = await startCounted({ DICOM_DIR: jpegDir, GATEWAY_CORS_ORIGINS: 'https://viewer.example' });
    const tile = `${g.baseUrl}/api/slides/${await firstSlideId(g.baseUrl)}/tiles/0/5/5.jpg`;
    await get(tile);
    const crossOrigin = await get(tile, { headers: { origin: 'https://viewer.example' } });
    expect(crossOrigin.status).toBe(200);
    expect(crossOrigin.headers['access-control-allow-origin']).toBe('https://viewer.example');
    expect(g.fast()).toBe(0);
    expect((await get(tile)).status).toBe(200);
    expect(g.fast()).toBe(1);
  });

  it('answers 503 through Hono once the gateway drains', async () => {
    const g = await startCounted({ DICOM_DIR: jpegDir });
    const tile = `${g.baseUrl}/api/slides/${await firstSlideId(g.baseUrl)}/tiles/0/6/6.jpg`;
    await get(tile);
    g.services.drain();
    expect((await get(tile)).status).toBe(503);
    expect(g.fast()).toBe(0);
  });
});

describe('serveGateway', () => {
  it('serves tiles through both paths on a socket, warm answers equal to cold ones', async () => {
    const services = createServices(loadConfig({ LOG_LEVEL: 'silent', DICOM_DIR: jpegDir }), { logger: pino({ level: 'silent' }) });
    const server = await new Promise<ReturnType<typeof serveGateway>>((resolve) => {
      const s = serveGateway(services, { port: 0, hostname: '127.0.0.1' }, () => resolve(s));
    });
    closers.push(async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await services.close();
    });
    const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const tile = `${baseUrl}/api/slides/${await firstSlideId(baseUrl)}/tiles/0/7/7.jpg`;
    const cold = await get(tile);
    expect(cold.status).toBe(200);
    expect(await get(tile)).toEqual(cold);
    expect(services.tiles.stats()).toMatchObject({ misses: 1, hits: 1 });
  });
});
