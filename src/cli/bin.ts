/**
 * The `wsi-gateway` command's body: runs one command line and exits with its code. bin/wsi-gateway.mjs
 * loads it from the sources through tsx; scripts/build-server.mjs builds it into dist/wsi-gateway.mjs,
 * which `npm start` and the Docker images run.
 */
import process from 'node:process';
import { runCli } from './main.js';

try {
  const code = await runCli(process.argv.slice(2));
  // Exit explicitly: model runtimes and connection pools may hold handles that would keep Node alive.
  process.exit(code);
} catch (error) {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
}
