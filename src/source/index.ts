import type { Config } from '../config/index.js';
import type { CircuitState } from './dicomweb/circuit-breaker.js';
import { createDicomwebSource } from './dicomweb/dicomweb-source.js';
import { createFolderSource } from './folder/folder-source.js';
import type { SlideSource, UpstreamRequestObserver } from './types.js';

export type * from './types.js';
export type { CircuitState } from './dicomweb/circuit-breaker.js';
export { createDicomwebSource, type DicomwebSourceOptions } from './dicomweb/dicomweb-source.js';
export { createFolderSource } from './folder/folder-source.js';

export interface SourceHooks {
  /** Told about every PACS request as it ends (metrics). */
  onUpstreamRequest?: UpstreamRequestObserver | undefined;
  /** Told of each retried PACS read, with its operation (metrics). */
  onUpstreamRetry?: ((operation: string) => void) | undefined;
  /** Told of each change of the PACS circuit breaker's state (metrics). */
  onCircuitChange?: ((state: CircuitState) => void) | undefined;
}

/** The source the configuration names: the PACS when DICOMWEB_URL is set, else the folder. */
export function createSource(config: Config, hooks: SourceHooks = {}): SlideSource {
  if (config.dicomwebUrl) {
    return createDicomwebSource({
      baseUrl: config.dicomwebUrl,
      auth: config.upstreamAuth,
      headers: config.upstreamHeaders,
      timeoutMs: config.upstreamTimeoutMs,
      connections: config.upstreamConnections,
      onRequest: hooks.onUpstreamRequest,
      retries: config.upstreamRetries,
      deadlineMs: config.upstreamDeadlineMs,
      breakerFailures: config.breakerFailures,
      breakerCooldownMs: config.breakerCooldownMs,
      onRetry: hooks.onUpstreamRetry,
      onCircuitChange: hooks.onCircuitChange,
    });
  }
  return createFolderSource({ dir: config.dicomDir });
}
