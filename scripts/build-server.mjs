#!/usr/bin/env node
// Builds the gateway (src/cli/bin.ts, every command) into one ES module, dist/wsi-gateway.mjs, with npm
// packages left as imports. `npm start` and the Docker images run it; tests and `bin/wsi-gateway.mjs`
// run the sources through tsx. A fresh process serving its first slide spent 5-16 % less CPU built
// than under tsx (docs/decisions.md, "Cold tiles"). Takes well under a second.
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outfile = join(root, 'dist/wsi-gateway.mjs');
const { outputFiles } = await build({
  entryPoints: [join(root, 'src/cli/bin.ts')],
  outfile,
  write: false,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  packages: 'external',
  sourcemap: 'linked',
  // Modules that run themselves when started as a script compare process.argv[1] with their own
  // file; in one bundle every module's file is the bundle, so none of them is a script there.
  define: { 'import.meta.filename': '""' },
  logLevel: 'warning',
});
// Each file written aside and renamed into place: a gateway starting from dist/ while another build
// runs (two test files, a benchmark) reads a whole file, the old or the new, never half of one.
await mkdir(dirname(outfile), { recursive: true });
for (const file of outputFiles) {
  const aside = `${file.path}.${process.pid}.tmp`;
  await writeFile(aside, file.contents);
  await rename(aside, file.path);
}
