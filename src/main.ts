/**
 * Starts the gateway: config from the environment, services, routes, an HTTP server, and an orderly
 * shutdown on SIGINT/SIGTERM (stop accepting, answer 503 meanwhile, release resources in reverse order).
 */
import { mkdirSync } from 'node:fs';
import { createServices } from './app.js';
import { ConfigError, describeConfig, loadConfig } from './config/index.js';
import { ensureDemoSlide } from './import/demo-setup.js';
import { serveGateway } from './server.js';

/** Starts the gateway configured from `env` (the process's environment, or that with a command's flags laid over it). */
async function main(env: Readonly<Record<string, string | undefined>> = process.env): Promise<void> {
  let config;
  try {
    config = loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      process.exit(2);
    }
    throw error;
  }
  const services = createServices(config, { checkpointJobs: true });
  const { logger } = services;
  if (!config.dicomwebUrl) {
    mkdirSync(config.dicomDir, { recursive: true });
    // The first run with nothing configured: a demo slide to look at (GATEWAY_DEMO). A failure here
    // must not keep the gateway from serving the (empty) folder.
    await ensureDemoSlide({ dicomDir: config.dicomDir, mode: config.demo, servingPacs: false, logger }).catch((error: unknown) =>
      logger.error({ err: error }, 'could not generate the demo slide; serving the folder as it is'),
    );
    logger.info(
      `Serving DICOM files from ${config.dicomDir}. To serve a PACS instead, set DICOMWEB_URL ` +
        '(e.g. DICOMWEB_URL=http://pacs:8042/dicom-web npm start); see README.md for auth settings.',
    );
  }
  // A bad model manifest is a configuration error: stop now, naming the file, not at the first job.
  services.models.list().catch((error: unknown) => {
    logger.fatal({ reason: (error as Error).message }, 'cannot read the model manifests');
    process.exit(2);
  });
  const server = serveGateway(services, { port: config.port, hostname: config.host }, (info) => {
    const address = `http://${info.address === '0.0.0.0' || info.address === '::' ? 'localhost' : info.address}:${info.port}`;
    logger.info({ config: describeConfig(config), address }, `gateway listening: open ${address}/ in a browser`);
  });
  server.on('error', (error) => {
    logger.fatal({ err: error }, 'cannot listen');
    process.exit(1);
  });

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    const deadline = setTimeout(() => process.exit(1), 10_000).unref();
    // Stop accepting; requests still arriving on kept-alive connections get 503 while those in flight
    // finish; only then are the PACS connections and caches released.
    services.drain();
    server.close(() => {
      void services.close().finally(() => {
        clearTimeout(deadline);
        process.exit(0);
      });
    });
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  // A failure nobody awaited must not take the gateway down: log it and carry on.
  process.on('unhandledRejection', (reason) => logger.error({ err: reason }, 'unhandled rejection'));
}

export { main };

// `tsx src/main.ts` runs it; `wsi-gateway serve` (npm start) imports it and calls main() itself.
if (process.argv[1] === import.meta.filename) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
