/** The gateway's version, from package.json, for stored manifests and logs. */
import { readFileSync } from 'node:fs';

export const GATEWAY_VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
