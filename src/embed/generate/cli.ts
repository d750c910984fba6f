/**
 * Writes generated models and their manifests into a folder, and optionally times them on CPU.
 *
 *   npx tsx src/embed/generate/cli.ts --out DIR [--kinds vit-tiny,bit-tiny] [--seed N] [--bench]
 *
 * Full-size kinds (vit-s16, bit-r50x1) are ~90 MB each: generate them at bench time, never commit them.
 */
import { parseArgs } from 'node:util';
import { measureThroughput } from './bench.js';
import { GENERATED_MODEL_KINDS, isGeneratedModelKind, writeGeneratedModels, type GeneratedModelKind } from './index.js';

const usage = `usage: tsx src/embed/generate/cli.ts --out DIR [--kinds ${GENERATED_MODEL_KINDS.join(',')}] [--seed N] [--bench] [--threads N] [--batch N]`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      out: { type: 'string' },
      kinds: { type: 'string', default: 'vit-tiny,bit-tiny' },
      seed: { type: 'string', default: '0' },
      bench: { type: 'boolean', default: false },
      threads: { type: 'string', default: '2' },
      batch: { type: 'string', default: '8' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help || !values.out) {
    console.log(usage);
    process.exitCode = values.help ? 0 : 2;
    return;
  }
  const kinds = values.kinds.split(',').map((k) => k.trim());
  const unknown = kinds.filter((k) => !isGeneratedModelKind(k));
  const seed = Number(values.seed);
  if (unknown.length > 0 || !Number.isSafeInteger(seed)) {
    console.error(unknown.length > 0 ? `unknown kind(s): ${unknown.join(', ')}` : `--seed must be an integer`);
    console.error(usage);
    process.exitCode = 2;
    return;
  }

  const written = await writeGeneratedModels(values.out, kinds as GeneratedModelKind[], { seed });
  for (const w of written) {
    const mb = (w.bytes / 2 ** 20).toFixed(1);
    console.log(`${w.id}: ${w.onnxPath} (${mb} MiB, ${w.paramCount.toLocaleString('en')} parameters, generated in ${w.generateSeconds.toFixed(2)} s) + ${w.manifestPath}`);
  }
  if (!values.bench) return;
  for (const w of written) {
    const batch = Number(values.batch);
    const threads = Number(values.threads);
    const t = await measureThroughput(w.onnxPath, 224, { batch, threads });
    console.log(
      `${w.id}: ${t.patchesPerSecond.toFixed(1)} patches/s, best batch ${t.bestPatchesPerSecond.toFixed(1)} patches/s (batch ${batch}, ${threads} threads, median ${t.medianBatchMs.toFixed(0)} ms/batch over ${t.batches} batches; session created in ${t.sessionCreateSeconds.toFixed(2)} s)`,
    );
  }
}

await main();
