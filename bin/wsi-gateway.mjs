#!/usr/bin/env node
// The `wsi-gateway` command: registers tsx (the gateway runs from its TypeScript sources, as `npm start`
// does) and hands the arguments to src/cli/main.ts, whose exit code becomes the process's.
import process from 'node:process';
import { fileURLToPath, URL } from 'node:url';
import { register } from 'tsx/esm/api';

register({ tsconfig: fileURLToPath(new URL('../tsconfig.json', import.meta.url)) });

try {
  const { runCli } = await import('../src/cli/main.ts');
  const code = await runCli(process.argv.slice(2));
  // Exit explicitly: model runtimes and connection pools may hold handles that would keep Node alive.
  process.exit(code);
} catch (error) {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
}
