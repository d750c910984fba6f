import type { Config } from '../config/index.js';
import { createDicomwebSource } from './dicomweb/dicomweb-source.js';
import { createFolderSource } from './folder/folder-source.js';
import type { SlideSource } from './types.js';

export type * from './types.js';
export { createDicomwebSource } from './dicomweb/dicomweb-source.js';
export { createFolderSource } from './folder/folder-source.js';

/** The source the configuration names: the PACS when DICOMWEB_URL is set, else the folder. */
export function createSource(config: Config): SlideSource {
  if (config.dicomwebUrl) {
    return createDicomwebSource({
      baseUrl: config.dicomwebUrl,
      auth: config.upstreamAuth,
      headers: config.upstreamHeaders,
      timeoutMs: config.upstreamTimeoutMs,
      connections: config.upstreamConnections,
    });
  }
  return createFolderSource({ dir: config.dicomDir });
}
