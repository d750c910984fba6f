/**
 * The gateway's front door: who may call /api (GATEWAY_AUTH), which other sites may (CORS), and how
 * large a body may be. Built from the config as plain middleware so that any route can be put behind
 * it (createApp puts every /api route there; /metrics can use `requireAuth` too).
 *
 * Token mode accepts `Authorization: Bearer <token>` or a session cookie from `POST /api/session`: the
 * viewer's <img> tiles and EventSource cannot send headers, but they do send cookies.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { Hono, type Context, type MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { deleteCookie, setCookie } from 'hono/cookie';
import { cors } from 'hono/cors';
import { parse as parseCookies } from 'hono/utils/cookie';
import type { Config } from '../config/index.js';
import { AuthError, BadRequestError, GatewayError } from '../errors.js';

declare module 'hono' {
  interface ContextVariableMap {
    /** Who called, for the request log: `token:<n>` (1-based) or the proxy's user name. Never patient data. */
    user: string;
  }
}

export const SESSION_COOKIE = 'wsigw_session';
/** Paths that must work without credentials in token mode: they are how one gets them. */
export const SESSION_PATH = '/api/session';
/** The header a trusted proxy sends to prove it is the proxy (GATEWAY_TRUSTED_PROXY_SECRET). */
export const PROXY_SECRET_HEADER = 'x-proxy-secret';
/** The longest user name taken from a trusted header; longer ones are refused, not cut. */
const MAX_USER_LENGTH = 256;

export interface SecurityOptions {
  /** How long a session cookie is valid, in ms. @default 43200000 (12 h) */
  sessionTtlMs?: number;
  /** The clock, in ms since the epoch (tests move it). @default Date.now */
  now?: () => number;
}

/** A request header by lower-case name. */
export type HeaderReader = (name: string) => string | undefined;

/** Who a request comes from (`user` undefined when GATEWAY_AUTH=none), or why it is refused. */
export type Identity = { user: string | undefined } | { refused: AuthError; challenge?: string };

export interface Security {
  /** Refuses a request without valid credentials (401 AUTH_REQUIRED); a no-op when GATEWAY_AUTH=none. */
  requireAuth: MiddlewareHandler;
  /**
   * The check requireAuth makes, from the headers alone: the warm-tile fast path (tile-fast-path.ts)
   * asks it too, so there is one rule for who may call, whichever way a request is answered.
   */
  identify: (header: HeaderReader) => Identity;
  /** CORS for the configured origins, or undefined when none are (then no CORS headers at all). */
  cors: MiddlewareHandler | undefined;
  /** 413 BODY_TOO_LARGE past GATEWAY_BODY_LIMIT_BYTES. */
  bodyLimit: MiddlewareHandler;
  /** POST/DELETE /api/session in token mode; undefined otherwise. Mount at the root. */
  sessionRoutes: Hono | undefined;
}

const sha256 = (text: string) => createHash('sha256').update(text).digest();

/**
 * The index of the matching token, or -1. Digests make every comparison the same length, and every
 * token is compared, so the time taken says nothing about how close a guess was.
 */
function createTokenMatcher(tokens: readonly string[]): (candidate: string) => number {
  const digests = tokens.map(sha256);
  return function matchToken(candidate) {
    const digest = sha256(candidate);
    let found = -1;
    digests.forEach((d, i) => {
      if (timingSafeEqual(d, digest) && found === -1) found = i;
    });
    return found;
  };
}

/** A session: `<payload>.<hmac>`, both base64url; the payload names the token and the expiry. */
function createSessionSigner(now: () => number, ttlMs: number) {
  // Per process: a restart signs everyone out, and no key has to be configured, stored or rotated.
  const key = randomBytes(32);
  const mac = (payload: string) => createHmac('sha256', key).update(payload).digest();
  return {
    sign(tokenIndex: number): { value: string; expiresAt: number } {
      const expiresAt = now() + ttlMs;
      const payload = Buffer.from(JSON.stringify({ t: tokenIndex, exp: expiresAt })).toString('base64url');
      return { value: `${payload}.${mac(payload).toString('base64url')}`, expiresAt };
    },
    /** The token index of a valid, unexpired session, or -1. */
    verify(value: string | undefined): number {
      const [payload, signature, extra] = value?.split('.') ?? [];
      if (!payload || !signature || extra !== undefined) return -1;
      const given = Buffer.from(signature, 'base64url');
      const expected = mac(payload);
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) return -1;
      const session = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { t?: unknown; exp?: unknown };
      if (typeof session.t !== 'number' || typeof session.exp !== 'number' || session.exp <= now()) return -1;
      return session.t;
    },
  };
}

function bearerOf(header: HeaderReader): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header('authorization') ?? '');
  return match?.[1];
}

function cookieOf(header: HeaderReader, name: string): string | undefined {
  const cookies = header('cookie');
  return cookies === undefined ? undefined : parseCookies(cookies, name)[name];
}

/** requireAuth for an `identify`: refuses with its challenge, or records the user for the request log. */
function createAuthMiddleware(identify: (header: HeaderReader) => Identity, exemptPath?: string): MiddlewareHandler {
  return async function requireAuth(c, next) {
    if (c.req.path === exemptPath) return next();
    const identity = identify((name) => c.req.header(name));
    if ('refused' in identity) {
      if (identity.challenge) c.header('WWW-Authenticate', identity.challenge);
      throw identity.refused;
    }
    if (identity.user !== undefined) c.set('user', identity.user);
    await next();
  };
}

/** Behind a proxy that ends TLS the request arrives over http; the cookie is still for an https page. */
function isHttps(c: Context): boolean {
  return new URL(c.req.url).protocol === 'https:' || c.req.header('x-forwarded-proto')?.split(',')[0]?.trim() === 'https';
}

export function createSecurity(config: Pick<Config, 'gatewayAuth' | 'corsOrigins' | 'bodyLimitBytes'>, { sessionTtlMs = 12 * 3600_000, now = Date.now }: SecurityOptions = {}): Security {
  const auth = config.gatewayAuth;
  const limitBody = bodyLimit({
    maxSize: config.bodyLimitBytes,
    onError: () => {
      throw new GatewayError('BODY_TOO_LARGE', 413, `The body is larger than ${config.bodyLimitBytes} bytes (GATEWAY_BODY_LIMIT_BYTES)`);
    },
  });
  // Only for methods whose handlers read a body. Hono's bodyLimit reads `c.req.raw.body`, which makes
  // the Node adapter build a full Request (and an AbortController) for every GET: it halved warm tile
  // throughput in bench/tiles. A GET's body is never read, so Node discards it unbuffered.
  const limit: MiddlewareHandler = (c, next) => (c.req.method === 'GET' || c.req.method === 'HEAD' ? next() : limitBody(c, next));
  const corsMiddleware =
    config.corsOrigins.length === 0
      ? undefined
      : cors({
          origin: config.corsOrigins.includes('*') ? '*' : [...config.corsOrigins],
          allowMethods: ['GET', 'HEAD', 'POST', 'DELETE'],
          exposeHeaders: ['Location', 'ETag', 'Content-Disposition'],
          maxAge: 600,
        });

  if (auth.kind === 'none') {
    const identify = (): Identity => ({ user: undefined });
    const requireAuth: MiddlewareHandler = async function noAuth(_c, next) {
      await next();
    };
    return { requireAuth, identify, cors: corsMiddleware, bodyLimit: limit, sessionRoutes: undefined };
  }

  if (auth.kind === 'trusted-header') {
    const secret = auth.proxySecret === undefined ? undefined : createTokenMatcher([auth.proxySecret]);
    const identify = (header: HeaderReader): Identity => {
      if (secret && secret(header(PROXY_SECRET_HEADER) ?? '') !== 0) return { refused: new AuthError('The request did not come through the authenticating proxy') };
      const user = header(auth.userHeader)?.trim();
      if (!user || user.length > MAX_USER_LENGTH) return { refused: new AuthError(`Sign in through the proxy in front of the gateway (no ${auth.userHeader} header)`) };
      return { user };
    };
    return { requireAuth: createAuthMiddleware(identify), identify, cors: corsMiddleware, bodyLimit: limit, sessionRoutes: undefined };
  }

  const matchToken = createTokenMatcher(auth.tokens);
  const sessions = createSessionSigner(now, sessionTtlMs);
  const identify = (header: HeaderReader): Identity => {
    const bearer = bearerOf(header);
    // A bearer header that is wrong is refused even with a good cookie: the caller meant the header.
    const index = bearer !== undefined ? matchToken(bearer) : sessions.verify(cookieOf(header, SESSION_COOKIE));
    if (index < 0 || index >= auth.tokens.length) {
      return bearer === undefined
        ? { refused: new AuthError(), challenge: 'Bearer' }
        : { refused: new AuthError('The token is not valid'), challenge: 'Bearer error="invalid_token"' };
    }
    return { user: `token:${index + 1}` };
  };
  const requireAuth = createAuthMiddleware(identify, SESSION_PATH);

  const sessionRoutes = new Hono();
  sessionRoutes.post(SESSION_PATH, async (c) => {
    let token: unknown;
    try {
      token = ((await c.req.json()) as { token?: unknown } | null)?.token;
    } catch {
      throw new BadRequestError('The body must be JSON: {"token": "..."}', 'INVALID_BODY');
    }
    const index = typeof token === 'string' ? matchToken(token) : -1;
    if (index < 0) {
      c.header('WWW-Authenticate', 'Bearer error="invalid_token"');
      throw new AuthError('The token is not valid');
    }
    const session = sessions.sign(index);
    setCookie(c, SESSION_COOKIE, session.value, { path: '/', httpOnly: true, sameSite: 'Strict', secure: isHttps(c), maxAge: Math.floor(sessionTtlMs / 1000) });
    c.set('user', `token:${index + 1}`);
    return c.json({ user: `token:${index + 1}`, expiresAt: new Date(session.expiresAt).toISOString() }, 200, { 'cache-control': 'no-store' });
  });
  sessionRoutes.delete(SESSION_PATH, (c) => {
    deleteCookie(c, SESSION_COOKIE, { path: '/', httpOnly: true, sameSite: 'Strict', secure: isHttps(c) });
    return c.body(null, 204);
  });
  return { requireAuth, identify, cors: corsMiddleware, bodyLimit: limit, sessionRoutes };
}
