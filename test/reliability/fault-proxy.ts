/**
 * A fault-injecting HTTP proxy for the reliability suite (issue 7), put between the gateway and a real
 * Orthanc. Each request draws at most one fault from a plan (probabilities per kind, a seeded PRNG so a
 * failing run can be replayed), plus, independently, added latency. The faults are those a PACS or the
 * network between really produces: 5xx answers, connections reset before the headers or mid-body,
 * bodies cut short and ended cleanly (a crashed worker behind a load balancer), bodies that drip in a
 * few bytes at a time, and a wrong Content-Type (an HTML error page with a 200).
 */
import { createServer, request as httpRequest, Agent, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { mulberry32 } from '../../src/embed/generate/graph.js';

export const FAULT_KINDS = ['latency', 'status5xx', 'resetBeforeHeaders', 'resetMidBody', 'truncate', 'slowDrip', 'wrongContentType'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface FaultPlan {
  /**
   * Chance per request of each fault, 0-1. Latency is drawn on its own and adds to any other fault;
   * the others exclude each other (their chances must sum to at most 1).
   */
  chances: Partial<Record<FaultKind, number>>;
  /** Added latency, uniform in [min, max] ms. @default [50, 500] */
  latencyMs?: readonly [number, number];
  /** Slow drip: `chunkBytes` every `intervalMs`, for the first `prefixBytes` of the body, then the rest at once. */
  drip?: { chunkBytes: number; intervalMs: number; prefixBytes: number };
}

/** No faults: a transparent proxy. */
export const NO_FAULTS: FaultPlan = { chances: {} };

export interface FaultProxyStats {
  requests: number;
  faults: Record<FaultKind, number>;
  /** Requests the proxy could not forward (Orthanc refused or reset): not injected, but seen. */
  upstreamErrors: number;
}

export interface FaultProxy {
  /** The target base URL with the proxy's origin: `http://127.0.0.1:PORT/dicom-web`. */
  readonly url: string;
  setPlan(plan: FaultPlan): void;
  stats(): FaultProxyStats;
  /** Stops listening and cuts every open connection. Idempotent. */
  close(): Promise<void>;
}

export interface FaultProxyOptions {
  /** Where requests go: a base URL such as Orthanc's DICOMweb root; paths are forwarded unchanged. */
  target: string;
  /** PRNG seed. @default 7 */
  seed?: number;
  /** @default NO_FAULTS */
  plan?: FaultPlan;
}

/** Hop-by-hop headers (RFC 9110 §7.6.1) and the length, which a fault may change. */
const DROPPED_HEADERS = new Set(['connection', 'keep-alive', 'transfer-encoding', 'proxy-connection', 'te', 'trailer', 'upgrade', 'host']);

function copyHeaders(headers: IncomingMessage['headers'], dropLength: boolean): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || DROPPED_HEADERS.has(name) || (dropLength && name === 'content-length')) continue;
    out[name] = value;
  }
  return out;
}

async function readAll(stream: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export async function startFaultProxy({ target, seed = 7, plan: initialPlan = NO_FAULTS }: FaultProxyOptions): Promise<FaultProxy> {
  const targetUrl = new URL(target);
  const random = mulberry32(seed);
  const agent = new Agent({ keepAlive: true, maxSockets: 32 });
  let plan = initialPlan;
  const stats: FaultProxyStats = { requests: 0, faults: Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])) as Record<FaultKind, number>, upstreamErrors: 0 };
  const sockets = new Set<Socket>();
  const uniform = (min: number, max: number) => min + random() * (max - min);

  /** The one exclusive fault of this request, or undefined. */
  function drawFault(): Exclude<FaultKind, 'latency'> | undefined {
    let r = random();
    for (const kind of FAULT_KINDS) {
      if (kind === 'latency') continue;
      const chance = plan.chances[kind] ?? 0;
      if (r < chance) return kind;
      r -= chance;
    }
    return undefined;
  }

  function handle(req: IncomingMessage, res: ServerResponse): void {
    stats.requests++;
    const current = plan;
    const delayMs = random() < (current.chances.latency ?? 0) ? uniform(...(current.latencyMs ?? [50, 500])) : 0;
    const fault = drawFault();
    if (delayMs > 0) stats.faults.latency++;
    if (fault) stats.faults[fault]++;
    let closed = false;
    let upstream: ReturnType<typeof httpRequest> | undefined;
    const timers = new Set<NodeJS.Timeout>();
    const later = (ms: number, fn: () => void) => {
      const timer = setTimeout(() => {
        timers.delete(timer);
        if (!closed) fn();
      }, ms);
      timers.add(timer);
    };
    // The gateway gave up (its deadline) or the proxy is closing: stop whatever this request still does.
    res.on('close', () => {
      closed = true;
      for (const timer of timers) clearTimeout(timer);
      upstream?.destroy();
    });

    const forward = () => {
      if (fault === 'resetBeforeHeaders') return void req.socket.destroy();
      if (fault === 'status5xx') {
        const status = [500, 502, 503][Math.floor(random() * 3)]!;
        return void res.writeHead(status, { 'content-type': 'text/plain' }).end('injected fault');
      }
      const url = new URL(req.url ?? '/', targetUrl);
      upstream = httpRequest(url, { method: req.method, headers: { ...copyHeaders(req.headers, false), host: targetUrl.host }, agent }, (answer) => {
        void respond(answer).catch(() => res.destroy());
      });
      upstream.on('error', () => {
        if (closed) return;
        stats.upstreamErrors++;
        if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' }).end('proxy: upstream failed');
        else res.destroy();
      });
      req.pipe(upstream);
    };

    async function respond(answer: IncomingMessage): Promise<void> {
      const status = answer.statusCode ?? 502;
      if (!fault || status < 200 || status >= 300) {
        res.writeHead(status, copyHeaders(answer.headers, false));
        answer.pipe(res);
        return;
      }
      if (fault === 'wrongContentType') {
        res.writeHead(status, { ...copyHeaders(answer.headers, false), 'content-type': 'text/html; charset=utf-8' });
        answer.pipe(res);
        return;
      }
      // The other faults work on the whole body: Orthanc sends multipart answers without a length.
      const body = await readAll(answer);
      if (closed) return;
      const headers = copyHeaders(answer.headers, true);
      if (fault === 'truncate') {
        // Cut inside the body (never at 0: an empty JSON answer is a legitimate "nothing"), then end
        // the chunked response cleanly, so only the content tells that it is short.
        const cut = Math.max(1, Math.floor(body.length * uniform(0.05, 0.95)));
        res.writeHead(status, headers).end(body.subarray(0, Math.min(cut, body.length - 1)));
      } else if (fault === 'resetMidBody') {
        const cut = Math.floor(body.length * uniform(0.05, 0.95));
        res.writeHead(status, headers);
        res.write(body.subarray(0, cut), () => later(5, () => res.destroy()));
      } else if (fault === 'slowDrip') {
        const { chunkBytes, intervalMs, prefixBytes } = current.drip ?? { chunkBytes: 256, intervalMs: 20, prefixBytes: 4096 };
        res.writeHead(status, headers);
        const drip = (offset: number) => {
          if (offset >= Math.min(prefixBytes, body.length)) return void res.end(body.subarray(offset));
          res.write(body.subarray(offset, offset + chunkBytes));
          later(intervalMs, () => drip(offset + chunkBytes));
        };
        drip(0);
      }
    }

    if (delayMs > 0) later(delayMs, forward);
    else forward();
  }

  const server = createServer(handle);
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  // A client that resets mid-request must not bring the proxy down.
  server.on('clientError', (_, socket) => socket.destroy());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;

  return {
    url: `http://127.0.0.1:${port}${targetUrl.pathname.replace(/\/+$/, '')}`,
    setPlan(next) {
      plan = next;
    },
    stats: () => ({ ...stats, faults: { ...stats.faults } }),
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
        agent.destroy();
      });
      return closing;
    },
  };
}
