import type { Config } from '../config/index.js';
import { createDicomwebSource } from './dicomweb/dicomweb-source.js';
import { createFolderSource } from './folder/folder-source.js';
import type { SlideSource, UpstreamRequestObserver } from './types.js';

export type * from './types.js';
export { createDicomwebSource } from './dicomweb/dicomweb-source.js';
export { createFolderSource } from './folder/folder-source.js';

export interface SourceHooks {
  /** Told about every PACS request as it ends (metrics). */
  onUpstreamRequest?: UpstreamRequestObserver | undefined;
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
    });
  }
  return createFolderSource({ dir: config.dicomDir });
}
