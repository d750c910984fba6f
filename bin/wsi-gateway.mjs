#!/usr/bin/env node
// The `wsi-gateway` command from the sources: registers tsx and runs src/cli/bin.ts. `npm start` and the
// Docker images run the same command built ahead (dist/wsi-gateway.mjs, scripts/build-server.mjs).
import { fileURLToPath, URL } from 'node:url';
import { register } from 'tsx/esm/api';

register({ tsconfig: fileURLToPath(new URL('../tsconfig.json', import.meta.url)) });
await import('../src/cli/bin.ts');
