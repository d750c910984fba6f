/** The gateway's version, from package.json, for stored manifests and logs. */
import { readFileSync } from 'node:fs';
import { appPath } from './paths.js';

export const GATEWAY_VERSION: string = (JSON.parse(readFileSync(appPath('package.json'), 'utf8')) as { version: string }).version;
