/**
 * The gateway assembled from its parts: `createServices(config)` builds everything that holds
 * resources, `createApp(services)` puts routes on top. No module-level state, so tests start as many
 * gateways as they like, on any port, against any source.
 */
import { Hono } from 'hono';
import { routePath } from 'hono/route';
import { pino, type Logger } from 'pino';
import type { Config } from './config/index.js';
import { createAnalysisService, createKMeansEngine, type AnalysisService } from './analysis/index.js';
import { ClosingError } from './errors.js';
import { runEmbedSlideJob } from './embed/jobs/embed-slide-job.js';
import { makeJobListDurable, pendingJobsFile } from './embed/jobs/checkpoint.js';
import { createInProcessQueue, type Job, type JobQueue } from './embed/jobs/job-queue.js';
import type { RetryPolicy } from './embed/pipeline/retry.js';
import { createModelRegistry, type ModelRegistry } from './embed/runtime/index.js';
import { createLocalStore, type EmbeddingStore } from './embed/store/index.js';
import { createMetrics, type GatewayMetrics } from './ops/metrics.js';
import { createReadinessProbe } from './ops/readiness.js';
import { createAnalysisRoutes } from './routes/analysis.js';
import { createEmbeddingRoutes, createModelRoutes } from './routes/embeddings.js';
import { createErrorHandler, notFound } from './routes/errors.js';
import { createJobRoutes } from './routes/jobs.js';
import { createOpsRoutes } from './routes/ops.js';
import { createRequestRecorder, type RequestRecorder } from './routes/request-log.js';
import { createSecurity, type Security, type SecurityOptions } from './routes/security.js';
import { createSlideRoutes } from './routes/slides.js';
import { createTileFastPath, type TileFastPath } from './routes/tile-fast-path.js';
import { createViewerRoutes } from './routes/viewer.js';
import { createSource, type SlideSource } from './source/index.js';
import { createSlideCatalog, createTileService, type SlideCatalog, type TileService } from './tiles/index.js';
import { createFrameDecoder } from './tiles/codecs/index.js';

export interface Services {
  config: Readonly<Config>;
  logger: Logger;
  source: SlideSource;
  catalog: SlideCatalog;
  tiles: TileService;
  models: ModelRegistry;
  store: EmbeddingStore;
  jobs: JobQueue;
  analysis: AnalysisService;
  metrics: GatewayMetrics;
  /** Jobs submitted again from the durable job list at start ([] unless checkpointJobs is on). */
  resumed: Promise<Job[]>;
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
  /** How embedding jobs retry the PACS (tests shorten the waits). */
  embedRetry?: Partial<RetryPolicy>;
  /**
   * Keep the list of queued and running jobs on disk (`<EMBED_DIR>/pending-jobs.json`) and resume
   * them at start, after a graceful shutdown or a crash. The server turns it on; the CLI leaves it
   * off, so it neither leaves nor takes the server's jobs.
   * @default false
   */
  checkpointJobs?: boolean;
}

export function createServices(config: Readonly<Config>, overrides: ServiceOverrides = {}): Services {
  const logger = overrides.logger ?? pino({ level: config.logLevel });
  const metrics = createMetrics();
  const source =
    overrides.source ??
    createSource(config, { onUpstreamRequest: metrics.observeUpstream, onUpstreamRetry: metrics.observeUpstreamRetry, onCircuitChange: metrics.observeCircuit });
  const catalog = createSlideCatalog({ source, searchPatientData: config.showPatientData });
  // Its workers start with the first frame to decode (JPEG 2000 or JPEG-LS tiles, embedding jobs), not here.
  const decoder = createFrameDecoder({ threads: config.decodeThreads });
  const tiles = createTileService({ source, cacheBytes: config.tileCacheBytes, prefetchFrames: config.prefetchFrames, jpegQuality: config.jpegQuality, decoder });
  const models = createModelRegistry({ modelsDir: config.modelsDir, executionProviders: config.onnxExecutionProviders, intraOpThreads: config.onnxThreads, logger });
  const store = createLocalStore(config.embedDir);
  const jobDeps = { source, catalog, tiles, models, store, logger, framesPerRequest: config.embedFramesPerRequest, retry: overrides.embedRetry };
  const queue = createInProcessQueue((spec, report, signal) => runEmbedSlideJob(spec, jobDeps, metrics.countPatches(report), signal), {
    concurrency: config.embedConcurrentSlides,
    onError: (job, error) => logger.warn({ job: job.id, series: job.spec.seriesUid, model: job.spec.model, reason: (error as Error).message }, 'embedding job failed'),
  });
  const analysis = createAnalysisService({ store, kmeans: metrics.timeKMeans(createKMeansEngine({ threads: config.onnxThreads })), cacheBytes: config.analysisCacheBytes });
  const { jobs, resumed } = overrides.checkpointJobs ? makeJobListDurable(queue, pendingJobsFile(config.embedDir), logger) : { jobs: queue, resumed: Promise.resolve([]) };
  metrics.watch({ tiles, jobs });
  let draining = false;
  let closing: Promise<void> | undefined;
  return {
    config,
    logger,
    source,
    catalog,
    tiles,
    models,
    store,
    jobs,
    analysis,
    metrics,
    resumed,
    get closing() {
      return draining;
    },
    drain() {
      draining = true;
    },
    close() {
      draining = true;
      closing ??= (async () => {
        // Jobs first: they stop at their next batch, with everything committed so far kept for a resume.
        await resumed;
        await jobs.close();
        await analysis.close();
        await models.close();
        tiles.clear();
        await decoder.close();
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
  /** Session lifetime and clock of GATEWAY_AUTH=token (tests move the clock). */
  security?: SecurityOptions;
}

/** The routes, and the warm-tile fast path that a socket server tries first (server.ts). */
export interface GatewayHttp {
  app: Hono;
  /** Answers a warm tile from memory and returns true, or returns false having written nothing. */
  serveWarmTile: TileFastPath;
}

/** The routes on top of the services. */
export function createApp(services: Services, options: AppOptions = {}): Hono {
  return createGatewayHttp(services, options).app;
}

/** The routes and the request listener for a socket, sharing one security layer (one session key). */
export function createGatewayHttp(services: Services, options: AppOptions = {}): GatewayHttp {
  const security = createSecurity(services.config, options.security);
  const recordRequest = createRequestRecorder(services.logger, services.metrics);
  const app = buildRoutes(services, security, recordRequest, options.viewerDir);
  const fastPath = createTileFastPath({
    catalog: services.catalog,
    tiles: services.tiles,
    identify: security.identify,
    // A cross-origin request needs CORS headers: Hono's cors middleware answers it.
    passCrossOrigin: security.cors !== undefined,
    isClosing: () => services.closing,
    recordRequest,
  });
  return { app, serveWarmTile: fastPath };
}

function buildRoutes(services: Services, security: Security, recordRequest: RequestRecorder, viewerDir: string | undefined): Hono {
  const app = new Hono();

  app.use(async function logRequest(c, next) {
    if (services.closing) throw new ClosingError();
    const startedMs = performance.now();
    await next();
    recordRequest({
      method: c.req.method,
      route: routePath(c),
      path: c.req.path,
      status: c.res.status,
      startedMs,
      requestId: c.req.header('x-request-id'),
      user: c.get('user'),
    });
  });
  app.onError(createErrorHandler(services.logger));
  app.notFound(notFound);

  const checkReadiness = createReadinessProbe({ source: services.source, models: services.models, storeDir: services.config.embedDir });
  app.route('/', createOpsRoutes({ metrics: services.metrics, checkReadiness }));
  // Every /api route, present and future, sits behind these; the viewer's files and probes do not.
  if (security.cors) app.use('/api/*', security.cors);
  app.use('/api/*', security.requireAuth, security.bodyLimit);
  if (security.sessionRoutes) app.route('/', security.sessionRoutes);
  app.route('/api/slides', createSlideRoutes({ ...services, showPatientData: services.config.showPatientData }));
  app.route('/api/slides', createEmbeddingRoutes(services));
  app.route('/api/slides', createAnalysisRoutes(services));
  app.route('/api/jobs', createJobRoutes(services));
  app.route('/api/models', createModelRoutes(services));
  app.route('/', createViewerRoutes(viewerDir));
  return app;
}
