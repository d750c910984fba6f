/** A gateway for tests: the real app and services, configured like production from an env record. */
import type { Hono } from 'hono';
import { pino } from 'pino';
import { createApp, createServices, type ServiceOverrides, type Services } from '../../src/app.js';
import { loadConfig } from '../../src/config/index.js';

export interface TestGateway {
  app: Hono;
  services: Services;
  /** GET through the app (no socket). */
  get(path: string, headers?: Record<string, string>): Promise<Response>;
  close(): Promise<void>;
}

export function createTestGateway(env: Record<string, string>, overrides: ServiceOverrides = {}): TestGateway {
  const config = loadConfig({ LOG_LEVEL: 'silent', ...env });
  const services = createServices(config, { logger: pino({ level: 'silent' }), ...overrides });
  const app = createApp(services);
  return {
    app,
    services,
    get: (path, headers) => Promise.resolve(app.request(path, { headers })),
    close: () => services.close(),
  };
}

/** JSON of a response, typed by the caller. */
export async function readJson<T>(response: Response): Promise<T> {
  return (await response.json()) as T;
}
