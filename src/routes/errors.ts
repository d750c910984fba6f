/** The one place errors become HTTP answers: `{ error: { code, message } }` with the error's status. */
import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { Logger } from 'pino';
import { isGatewayError } from '../errors.js';

export function createErrorHandler(logger: Logger) {
  return function handleError(error: Error, c: Context): Response {
    if (isGatewayError(error)) {
      if (error.status >= 500) {
        logger.warn({ code: error.code, path: c.req.path, cause: error.cause instanceof Error ? error.cause.message : undefined }, error.message);
      }
      if (error.retryAfterSeconds !== undefined) c.header('retry-after', String(error.retryAfterSeconds));
      return c.json({ error: { code: error.code, message: error.message } }, error.status as ContentfulStatusCode);
    }
    logger.error({ err: error, path: c.req.path }, 'unexpected error');
    return c.json({ error: { code: 'INTERNAL', message: 'Internal error' } }, 500);
  };
}

export function notFound(c: Context): Response {
  return c.json({ error: { code: 'NOT_FOUND', message: `No route for ${c.req.method} ${c.req.path}` } }, 404);
}
