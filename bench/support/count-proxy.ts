/**
 * A counting HTTP proxy in front of the PACS: how many requests the gateway sent, and how many frames it
 * asked for, which Orthanc 1.10 does not report itself (/statistics and /tools/metrics-prometheus have no
 * request counters). It runs in the benchmark's own process and adds a hop, so passes through it are
 * counted but never timed.
 */
import { Agent, createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';

/** What went through the proxy. */
export interface ProxyCounts {
  /** Every request. */
  requests: number;
  /** WADO-RS `/frames/...` requests. */
  frameRequests: number;
  /** Frames those requests named (`/frames/1,2,3` is three). */
  framesRequested: number;
}

/** A running proxy. */
export interface CountingProxy {
  /** The proxy's URL for `targetBaseUrl`'s root, no trailing slash. */
  readonly baseUrl: string;
  readonly counts: Readonly<ProxyCounts>;
  close(): Promise<void>;
}

/** Hop-by-hop headers (RFC 9110 §7.6.1) are the proxy's own business, not forwarded. */
const hopByHop = new Set(['connection', 'keep-alive', 'transfer-encoding', 'proxy-connection', 'upgrade', 'te', 'trailer']);

function endToEnd(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  return Object.fromEntries(Object.entries(headers).filter(([name]) => !hopByHop.has(name.toLowerCase())));
}

/** Starts a proxy on a loopback port that forwards everything to `targetBaseUrl` (`http://host:port`). */
export async function startCountingProxy(targetBaseUrl: string): Promise<CountingProxy> {
  const target = new URL(targetBaseUrl);
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const counts: ProxyCounts = { requests: 0, frameRequests: 0, framesRequested: 0 };
  const server: Server = createServer((incoming, outgoing) => {
    const path = incoming.url ?? '/';
    counts.requests++;
    const frames = /\/frames\/([\d,]+)/.exec(path)?.[1];
    if (frames !== undefined) {
      counts.frameRequests++;
      counts.framesRequested += frames.split(',').length;
    }
    const upstream = request(
      { host: target.hostname, port: target.port, method: incoming.method, path, headers: endToEnd(incoming.headers), agent },
      (answer) => {
        outgoing.writeHead(answer.statusCode ?? 502, endToEnd(answer.headers));
        answer.pipe(outgoing);
      },
    );
    upstream.on('error', () => outgoing.destroy());
    incoming.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address !== 'object') throw new Error('the proxy has no port');
  return {
    baseUrl: `http://127.0.0.1:${address.port}`,
    counts,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}
