/**
 * The gateway assembled from its parts: `createServices(config)` builds everything that holds
 * resources, `createApp(services)` puts routes on top. No module-level state, so tests start as many
 * gateways as they like, on any port, against any source.
 */
import { Hono } from 'hono';
import { pino, type Logger } from 'pino';
import type { Config } from './config/index.js';
import { ClosingError } from './errors.js';
import { createErrorHandler, notFound } from './routes/errors.js';
import { createSlideRoutes } from './routes/slides.js';
import { createViewerRoutes } from './routes/viewer.js';
import { createSource, type SlideSource } from './source/index.js';
import { createSlideCatalog, createTileService, type SlideCatalog, type TileService } from './tiles/index.js';

export interface Services {
  config: Readonly<Config>;
  logger: Logger;
  source: SlideSource;
  catalog: SlideCatalog;
  tiles: TileService;
  /** True once draining or closing has begun: new requests get 503. */
  readonly closing: boolean;
  /** Answers new requests with 503 while those in flight finish; releases nothing. */
  drain(): void;
  /** Releases everything, in reverse order of acquisition. Idempotent. */
  close(): Promise<void>;
}

export interface ServiceOverrides {
  logger?: Logger;
  source?: SlideSource;
}

export function createServices(config: Readonly<Config>, overrides: ServiceOverrides = {}): Services {
  const logger = overrides.logger ?? pino({ level: config.logLevel });
  const source = overrides.source ?? createSource(config);
  const catalog = createSlideCatalog({ source, searchPatientData: config.showPatientData });
  const tiles = createTileService({ source, cacheBytes: config.tileCacheBytes, prefetchFrames: config.prefetchFrames, jpegQuality: config.jpegQuality });
  let draining = false;
  let closing: Promise<void> | undefined;
  return {
    config,
    logger,
    source,
    catalog,
    tiles,
    get closing() {
      return draining;
    },
    drain() {
      draining = true;
    },
    close() {
      draining = true;
      closing ??= (async () => {
        tiles.clear();
        catalog.clear();
        await source.close();
      })();
      return closing;
    },
  };
}

export interface AppOptions {
  /** The built viewer (viewer/dist). */
  viewerDir?: string;
}

export function createApp(services: Services, options: AppOptions = {}): Hono {
  const { logger } = services;
  const app = new Hono();
  let nextRequestId = 0;

  app.use(async function logRequest(c, next) {
    if (services.closing) throw new ClosingError();
    const started = performance.now();
    await next();
    // One line per request, no patient identifiers (paths hold only UIDs). Not even built when off.
    if (logger.isLevelEnabled('info')) {
      const id = c.req.header('x-request-id')?.slice(0, 64) ?? `r${++nextRequestId}`;
      logger.info({ id, method: c.req.method, path: c.req.path, status: c.res.status, ms: Math.round((performance.now() - started) * 10) / 10 }, 'request');
    }
  });
  app.onError(createErrorHandler(logger));
  app.notFound(notFound);

  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  app.route('/api/slides', createSlideRoutes({ ...services, showPatientData: services.config.showPatientData }));
  app.route('/', createViewerRoutes(options.viewerDir));
  return app;
}
