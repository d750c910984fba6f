/**
 * What every answered request leaves behind: one HTTP metric observation and, at info level, one log
 * line. Shared by the Hono middleware (createApp) and the warm-tile fast path, so both are counted
 * and logged alike.
 */
import type { Logger } from 'pino';
import type { GatewayMetrics } from '../ops/metrics.js';

export interface AnsweredRequest {
  method: string;
  /** The route pattern, not the path: UIDs in label values would make a series per slide. */
  route: string;
  path: string;
  status: number;
  /** performance.now() when the request arrived. */
  startedMs: number;
  /** The caller's X-Request-Id header, if any (cut to 64 characters). */
  requestId: string | undefined;
  /** Who called (Security.identify), for the log. */
  user: string | undefined;
}

export type RequestRecorder = (request: AnsweredRequest) => void;

export function createRequestRecorder(logger: Logger, metrics: Pick<GatewayMetrics, 'observeHttp'>): RequestRecorder {
  let nextRequestId = 0;
  return function recordRequest({ method, route, path, status, startedMs, requestId, user }) {
    const ms = performance.now() - startedMs;
    metrics.observeHttp(method, route, status, ms / 1000);
    // One line per request, no patient identifiers (paths hold only UIDs). Not even built when off.
    if (logger.isLevelEnabled('info')) {
      const id = requestId?.slice(0, 64) ?? `r${++nextRequestId}`;
      logger.info({ id, user, method, path, status, ms: Math.round(ms * 10) / 10 }, 'request');
    }
  };
}
