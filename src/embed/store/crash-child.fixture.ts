/**
 * Deterministic runs for the store's tests, and the child process of the crash test: run as a script
 * (node --import tsx crash-child.fixture.ts <root> <total> <dim> <batch> <delayMs>) it commits batches
 * of the fixture run, printing "committed <gridEnd>" after each commitBatch resolves, until killed.
 */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLocalStore } from './local-store.js';
import type { CommitBatch, RunHeader, RunKey, RunWriter } from './types.js';

export const fixtureKey: RunKey = { studyUid: '1.2.826.0.1.3680043.8.498.1', seriesUid: '1.2.826.0.1.3680043.8.498.2', modelId: 'fixture-model', runId: 'mpp0.5-s224-t0.25' };

export function fixtureHeader(total: number, dim: number): RunHeader {
  return { dim, totalPatches: total, params: { mpp: 0.5, sizePx: 224, tissue: 0.25 } };
}

/** Every 7th grid index (3, 10, ...) is skipped; the others get values derived from the index alone. */
export function fixtureBatch(start: number, end: number, dim: number): CommitBatch {
  const embedded: number[] = [];
  const skipped: CommitBatch['skipped'] = [];
  for (let g = start; g < end; g++) {
    if (g % 7 === 3) skipped.push({ gridIndex: g, reason: 'background' });
    else embedded.push(g);
  }
  const embeddings = new Float32Array(embedded.length * dim);
  const coordsPx = new Int32Array(embedded.length * 2);
  embedded.forEach((g, row) => {
    for (let j = 0; j < dim; j++) embeddings[row * dim + j] = Math.sin(g * 0.37 + j * 1.3) * (1 + g / 1000);
    coordsPx[row * 2] = (g % 50) * 224;
    coordsPx[row * 2 + 1] = Math.floor(g / 50) * 224;
  });
  return { gridEnd: end, embeddings, coordsPx, skipped };
}

/** Commits the fixture run from writer.committedPatches to `to`, `batch` grid indexes at a time. */
export async function commitFixture(writer: RunWriter, to: number, batch: number, afterEach?: (gridEnd: number) => Promise<void>): Promise<void> {
  for (let start = writer.committedPatches; start < to; start = writer.committedPatches) {
    await writer.commitBatch(fixtureBatch(start, Math.min(to, start + batch), writer.header.dim));
    await afterEach?.(writer.committedPatches);
  }
}

async function main(args: string[]): Promise<void> {
  const [root, total, dim, batch, delayMs] = args;
  const writer = await createLocalStore(root!).openRun(fixtureKey, fixtureHeader(Number(total), Number(dim)));
  process.stdout.write(`opened ${writer.committedPatches}\n`);
  await commitFixture(writer, Number(total), Number(batch), async (gridEnd) => {
    // Synchronous on Linux pipes: once written, the parent gets the line even if we die right after.
    process.stdout.write(`committed ${gridEnd}\n`);
    await new Promise((r) => setTimeout(r, Number(delayMs)));
  });
  process.stdout.write('done\n');
  await writer.close();
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
