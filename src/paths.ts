/**
 * Where the gateway's own files are: the installation's root (package.json, models/, viewer/dist/,
 * src/). Every file the gateway reads from its installation is named from here, never from the
 * location of the module asking: the production build (scripts/build-server.mjs) puts every module into
 * one file, dist/wsi-gateway.mjs, one folder down like this one, so only a path taken from this module
 * holds in both the sources and the build.
 */
import { fileURLToPath } from 'node:url';

export const APP_ROOT_URL = new URL('../', import.meta.url);

/** A path inside the installation, e.g. `appPath('models/')`. */
export function appPath(relative: string): string {
  return fileURLToPath(new URL(relative, APP_ROOT_URL));
}
