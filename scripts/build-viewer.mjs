#!/usr/bin/env node
// Builds viewer/ into viewer/dist: one ES module bundle (OpenSeadragon included), its CSS, index.html and
// OpenSeadragon's button images. Runs on install, before start and before tests; takes well under a second.
import { cp, mkdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'viewer', 'dist');
await rm(out, { recursive: true, force: true });
await mkdir(out, { recursive: true });
await build({
  entryPoints: { app: join(root, 'viewer/src/main.ts'), 'app-style': join(root, 'viewer/src/app.css') },
  outdir: out,
  entryNames: '[name]',
  bundle: true,
  format: 'esm',
  target: 'es2022',
  minify: true,
  sourcemap: true,
  legalComments: 'linked',
  logLevel: 'warning',
});
// esbuild names the CSS entry's output after the entry; the page asks for /app.css.
await cp(join(out, 'app-style.css'), join(out, 'app.css'));
await rm(join(out, 'app-style.css'));
await rm(join(out, 'app-style.css.map'), { force: true });
await cp(join(root, 'viewer/index.html'), join(out, 'index.html'));
await cp(join(root, 'viewer/favicon.svg'), join(out, 'favicon.svg'));
await cp(join(root, 'node_modules/openseadragon/build/openseadragon/images'), join(out, 'osd-images'), { recursive: true });
console.log(`viewer built into ${out}`);
