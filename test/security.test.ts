/**
 * The gateway's front door on the real app (issue 6): with GATEWAY_AUTH on, every /api route the app
 * has, enumerated from the app itself so that a new route cannot be forgotten, refuses a caller without
 * credentials and serves one with them; CORS is closed unless configured; bodies are bounded.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Hono } from 'hono';
import { afterAll, describe, expect, it } from 'vitest';
import { SESSION_COOKIE, SESSION_PATH } from '../src/routes/security.js';
import { listApiRoutes } from './support/api-routes.js';
import { createTestGateway, type TestGateway } from './support/gateway.js';

const TOKEN = 'test-token-0123456789abcdef';
const OTHER_TOKEN = 'second-token-abcdef0123456789';
const dir = mkdtempSync(join(tmpdir(), 'wsigw-security-'));
mkdirSync(join(dir, 'slides'));
const gateways: TestGateway[] = [];
afterAll(async () => {
  await Promise.all(gateways.map((g) => g.close()));
  rmSync(dir, { recursive: true, force: true });
});

function gateway(env: Record<string, string>): TestGateway {
  const g = createTestGateway({ DICOM_DIR: join(dir, 'slides'), EMBED_DIR: join(dir, 'embeddings'), ...env });
  gateways.push(g);
  return g;
}

/** Every concrete /api route of the app, with its parameters filled in, except the sign-in itself. */
function apiRoutes(app: Hono): { method: string; url: string }[] {
  return listApiRoutes(app).map(({ method, url }) => ({ method, url }));
}

async function call(g: TestGateway, method: string, url: string, headers: Record<string, string> = {}): Promise<Response> {
  const body = method === 'POST' ? '{}' : undefined;
  const response = await g.app.request(url, { method, headers: { ...(body && { 'content-type': 'application/json' }), ...headers }, body });
  // Drain streams (job events) so nothing stays open.
  await response.body?.cancel();
  return response;
}

async function signIn(g: TestGateway, token: string): Promise<Response> {
  return g.app.request(SESSION_PATH, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token }) });
}

const cookieOf = (response: Response) => /^[^;]+/.exec(response.headers.get('set-cookie') ?? '')![0];

describe('GATEWAY_AUTH=token', () => {
  const g = gateway({ GATEWAY_AUTH: 'token', GATEWAY_API_TOKENS: `${TOKEN},\n${OTHER_TOKEN}` });
  const routes = apiRoutes(g.app);

  it('finds the API routes to check', () => {
    expect(routes.length).toBeGreaterThanOrEqual(20);
    expect(routes).toContainEqual({ method: 'GET', url: '/api/slides/1.2.3/1.2.3.4/tiles/0/0/0.jpg' });
    expect(routes).toContainEqual({ method: 'POST', url: '/api/slides/1.2.3/1.2.3.4/embeddings' });
  });

  it('refuses every /api route without credentials, and unknown /api paths too', async () => {
    for (const { method, url } of [...routes, { method: 'GET', url: '/api/no-such-route' }]) {
      const response = await g.app.request(url, { method });
      expect(response.status, `${method} ${url}`).toBe(401);
      expect(response.headers.get('www-authenticate'), `${method} ${url}`).toBe('Bearer');
      expect(await response.json()).toMatchObject({ error: { code: 'AUTH_REQUIRED' } });
    }
  });

  it('refuses every /api route with a wrong token', async () => {
    for (const { method, url } of routes) {
      const response = await call(g, method, url, { authorization: `Bearer ${TOKEN}x` });
      expect(response.status, `${method} ${url}`).toBe(401);
      expect(response.headers.get('www-authenticate')).toContain('invalid_token');
    }
  });

  it('serves every /api route with either bearer token', async () => {
    for (const token of [TOKEN, OTHER_TOKEN]) {
      for (const { method, url } of routes) {
        const response = await call(g, method, url, { authorization: `Bearer ${token}` });
        // Not found or a bad parameter is fine: the slide does not exist. Past the door is what counts.
        expect(response.status, `${method} ${url}`).not.toBe(401);
      }
    }
    expect((await call(g, 'GET', '/api/slides', { authorization: `Bearer ${TOKEN}` })).status).toBe(200);
  });

  it('signs in with POST /api/session: an HttpOnly, SameSite=Strict cookie that opens every route', async () => {
    const response = await signIn(g, OTHER_TOKEN);
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ user: 'token:2' });
    const setCookie = response.headers.get('set-cookie')!;
    expect(setCookie).toMatch(new RegExp(`^${SESSION_COOKIE}=`));
    expect(setCookie).toContain('HttpOnly');
    expect(setCookie).toContain('SameSite=Strict');
    expect(setCookie).not.toContain('Secure');
    expect(setCookie).not.toContain(OTHER_TOKEN);
    const cookie = cookieOf(response);
    for (const { method, url } of routes) {
      expect((await call(g, method, url, { cookie })).status, `${method} ${url}`).not.toBe(401);
    }
    // Behind a TLS-terminating proxy the cookie is marked Secure.
    const viaHttps = await g.app.request(SESSION_PATH, { method: 'POST', headers: { 'content-type': 'application/json', 'x-forwarded-proto': 'https' }, body: JSON.stringify({ token: TOKEN }) });
    expect(viaHttps.headers.get('set-cookie')).toContain('Secure');
  });

  it('refuses a wrong token at sign-in, and a tampered or forged cookie', async () => {
    expect((await signIn(g, 'not-the-token-at-all-0000')).status).toBe(401);
    expect((await g.app.request(SESSION_PATH, { method: 'POST', body: 'not json' })).status).toBe(400);
    const cookie = cookieOf(await signIn(g, TOKEN));
    const [name, value] = cookie.split('=') as [string, string];
    const [payload, signature] = value.split('.') as [string, string];
    const forgedPayload = Buffer.from(JSON.stringify({ t: 0, exp: Date.now() + 10 * 365 * 86_400_000 })).toString('base64url');
    for (const bad of [`${payload}.${signature.slice(0, -2)}AA`, `${forgedPayload}.${signature}`, payload, 'garbage', '']) {
      expect((await call(g, 'GET', '/api/slides', { cookie: `${name}=${bad}` })).status, bad).toBe(401);
    }
  });

  it('signs out with DELETE /api/session', async () => {
    const response = await g.app.request(SESSION_PATH, { method: 'DELETE' });
    expect(response.status).toBe(204);
    expect(response.headers.get('set-cookie')).toMatch(new RegExp(`^${SESSION_COOKIE}=;.*Max-Age=0`));
  });

  it('leaves the viewer page and the probes open', async () => {
    expect((await g.get('/healthz')).status).toBe(200);
    expect((await g.get('/')).status).not.toBe(401);
  });
});

describe('GATEWAY_AUTH=token session expiry', () => {
  it('refuses a cookie after its lifetime', async () => {
    let nowMs = Date.UTC(2025, 0, 1);
    const g = gateway({ GATEWAY_AUTH: 'token', GATEWAY_API_TOKENS: TOKEN });
    const { createApp } = await import('../src/app.js');
    const app = createApp(g.services, { security: { sessionTtlMs: 60_000, now: () => nowMs } });
    const signedIn = await app.request(SESSION_PATH, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: TOKEN }) });
    const cookie = cookieOf(signedIn);
    expect((await app.request('/api/models', { headers: { cookie } })).status).toBe(200);
    nowMs += 59_000;
    expect((await app.request('/api/models', { headers: { cookie } })).status).toBe(200);
    nowMs += 1_000;
    expect((await app.request('/api/models', { headers: { cookie } })).status).toBe(401);
    // Another gateway (or a restart) has another key: its cookies are worthless here.
    expect((await g.app.request('/api/models', { headers: { cookie } })).status).toBe(401);
  });
});

describe('GATEWAY_AUTH=trusted-header', () => {
  const secret = 'proxy-secret-0123456789';
  const g = gateway({ GATEWAY_AUTH: 'trusted-header', GATEWAY_TRUSTED_PROXY_SECRET: secret });
  const routes = apiRoutes(g.app);

  it('refuses every /api route without the user header or with a wrong proxy secret', async () => {
    expect(routes.length).toBeGreaterThanOrEqual(20);
    for (const { method, url } of routes) {
      expect((await call(g, method, url, { 'x-proxy-secret': secret })).status, `${method} ${url}`).toBe(401);
      expect((await call(g, method, url, { 'x-forwarded-user': 'dr.who' })).status, `${method} ${url}`).toBe(401);
      expect((await call(g, method, url, { 'x-forwarded-user': 'dr.who', 'x-proxy-secret': `${secret}x` })).status, `${method} ${url}`).toBe(401);
    }
  });

  it('serves every /api route with the user header and the proxy secret', async () => {
    for (const { method, url } of routes) {
      expect((await call(g, method, url, { 'x-forwarded-user': 'dr.who', 'x-proxy-secret': secret })).status, `${method} ${url}`).not.toBe(401);
    }
  });

  it('has no session routes, and needs no secret when none is configured', async () => {
    expect((await signIn(g, TOKEN)).status).toBe(401);
    const open = gateway({ GATEWAY_AUTH: 'trusted-header', GATEWAY_TRUSTED_USER_HEADER: 'X-Auth-Request-Email' });
    expect((await call(open, 'GET', '/api/slides', { 'x-auth-request-email': 'a@b.org' })).status).toBe(200);
    expect((await call(open, 'GET', '/api/slides', { 'x-forwarded-user': 'a' })).status).toBe(401);
  });
});

describe('CORS', () => {
  it('sends no CORS headers by default', async () => {
    const g = gateway({});
    const response = await g.get('/api/slides', { origin: 'https://evil.example' });
    expect(response.status).toBe(200);
    expect(response.headers.get('access-control-allow-origin')).toBeNull();
    const preflight = await g.app.request('/api/slides', { method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'GET' } });
    expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('echoes a configured origin, refuses others, and answers preflights before auth', async () => {
    const g = gateway({ GATEWAY_CORS_ORIGINS: 'https://viewer.example, http://localhost:5173', GATEWAY_AUTH: 'token', GATEWAY_API_TOKENS: TOKEN });
    const allowed = await call(g, 'GET', '/api/slides', { origin: 'https://viewer.example', authorization: `Bearer ${TOKEN}` });
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://viewer.example');
    const other = await call(g, 'GET', '/api/slides', { origin: 'https://evil.example', authorization: `Bearer ${TOKEN}` });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
    const preflight = await g.app.request('/api/slides', {
      method: 'OPTIONS',
      headers: { origin: 'http://localhost:5173', 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('http://localhost:5173');
    expect(preflight.headers.get('access-control-allow-headers')).toBe('authorization');
  });
});

describe('body limit', () => {
  it('answers 413 BODY_TOO_LARGE past GATEWAY_BODY_LIMIT_BYTES, with or without Content-Length', async () => {
    const g = gateway({ GATEWAY_BODY_LIMIT_BYTES: '2048' });
    const big = JSON.stringify({ model: 'stain-texture', padding: 'x'.repeat(4096) });
    const url = '/api/slides/1.2.3/1.2.3.4/embeddings';
    const withLength = await g.app.request(url, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': String(big.length) }, body: big });
    expect(withLength.status).toBe(413);
    expect(await withLength.json()).toMatchObject({ error: { code: 'BODY_TOO_LARGE' } });
    const stream = new Blob([big]).stream();
    const streamed = await g.app.request(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: stream, duplex: 'half' } as RequestInit);
    expect(streamed.status).toBe(413);
    // Under the limit the request reaches the route (the slide does not exist).
    expect((await call(g, 'POST', url)).status).toBe(404);
  });
});
