/**
 * JPEG 2000 decode benchmark: the 108 level-0 frames of ../shared/wsi/cmu1-t256-j2k (256 px, lossless,
 * read with the folder source and src/source/part10.ts) decoded to RGB ROUNDS times, on the main thread
 * (GATEWAY_DECODE_THREADS=0) and through the decode pool with 1 and 2 worker threads, in the same run.
 * Prints a markdown table of frames/s, ratios against the main thread and the event loop's longest
 * delay during each run, and writes it to bench/results/decode.md. Run: `npx tsx bench/decode.ts`
 * (about half a minute on 2 cores).
 *
 * Decodes are started IN_FLIGHT at a time, each from its own setImmediate, as requests arriving on
 * sockets would start them; each run follows an untimed warm-up (workers started, WASM instantiated).
 * Nothing is asserted, except that every pooled frame has the main thread's pixels.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { computeDefaultDecodeThreads } from '../src/config/index.js';
import { createFrameDecoder, type FrameDecoder, type FramePixelFormat, type RgbImage } from '../src/tiles/codecs/index.js';
import { readEncodedInstances, type EncodedInstance } from '../test/support/encoded-frames.js';
import { sharedWsiDir } from '../test/support/wsi-data.js';
import { describeMachine, writeReport } from './support/report.js';

/** Passes over the 108 frames per run. */
const ROUNDS = 3;
/** Decodes started and not yet finished, at most. */
const IN_FLIGHT = 4;
const THREADS = [0, 1, 2];
const resultsPath = join(dirname(fileURLToPath(import.meta.url)), 'results', 'decode.md');

interface Run {
  threads: number;
  frames: number;
  seconds: number;
  maxDelayMs: number;
  p99DelayMs: number;
  /** Frames whose pixels differ from the main thread's. */
  mismatches: number;
}

/** Decodes every frame `rounds` times, IN_FLIGHT at a time; returns the last round's images. */
async function decodeAll(decoder: FrameDecoder, frames: readonly Buffer[], transferSyntaxUid: string, format: FramePixelFormat, rounds: number): Promise<RgbImage[]> {
  const images: RgbImage[] = [];
  const total = frames.length * rounds;
  let next = 0;
  const lane = async (): Promise<void> => {
    for (let i = next++; i < total; i = next++) {
      // A macrotask per decode: between two, the event loop gets its turn (and is measured).
      await new Promise((resolve) => setImmediate(resolve));
      const image = await decoder.decodeFrame(frames[i % frames.length]!, transferSyntaxUid, format);
      if (i >= total - frames.length) images[i % frames.length] = image;
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, lane));
  return images;
}

async function measure(threads: number, level0: EncodedInstance, reference: RgbImage[] | undefined): Promise<{ run: Run; images: RgbImage[] }> {
  const { frames, transferSyntaxUid, format } = level0;
  const decoder = createFrameDecoder({ threads });
  try {
    await decodeAll(decoder, frames.slice(0, 4 * Math.max(1, threads)), transferSyntaxUid, format, 1);
    const delay = monitorEventLoopDelay({ resolution: 1 });
    delay.enable();
    const started = performance.now();
    const images = await decodeAll(decoder, frames, transferSyntaxUid, format, ROUNDS);
    const seconds = (performance.now() - started) / 1000;
    delay.disable();
    const mismatches = reference ? images.filter((image, i) => !image.data.equals(reference[i]!.data)).length : 0;
    const run = { threads, frames: frames.length * ROUNDS, seconds, maxDelayMs: delay.max / 1e6, p99DelayMs: delay.percentile(99) / 1e6, mismatches };
    return { run, images };
  } finally {
    await decoder.close();
  }
}

function formatReport(runs: readonly Run[], frameBytes: number): string {
  const baseline = runs[0]!;
  const rate = (r: Run): number => r.frames / r.seconds;
  const rows = runs.map((r) => {
    const what = r.threads === 0 ? 'main thread (GATEWAY_DECODE_THREADS=0)' : `pool, ${r.threads} worker thread${r.threads > 1 ? 's' : ''}`;
    const ratio = r === baseline ? '1.00x' : `**${(rate(r) / rate(baseline)).toFixed(2)}x**`;
    const pixels = r === baseline ? 'reference' : r.mismatches === 0 ? 'identical' : `**${r.mismatches} frames differ**`;
    return `| ${what} | ${r.frames} | ${r.seconds.toFixed(2)} | **${rate(r).toFixed(1)}** | ${ratio} | ${r.maxDelayMs.toFixed(1)} | ${r.p99DelayMs.toFixed(1)} | ${pixels} |`;
  });
  return [
    '# JPEG 2000 decode: main thread vs the decode pool',
    '',
    `${describeMachine()}; the 108 level-0 frames of cmu1-t256-j2k (256x256 lossless JPEG 2000, ${(frameBytes / 1024).toFixed(0)} KiB a frame on average), ` +
      `${ROUNDS} passes per run, ${IN_FLIGHT} decodes in flight; the default GATEWAY_DECODE_THREADS here is ${computeDefaultDecodeThreads()}.`,
    '',
    '| decoding on | frames | seconds | frames/s | vs main thread | event loop max delay (ms) | p99 delay (ms) | pixels |',
    '|---|---:|---:|---:|---:|---:|---:|---|',
    ...rows,
    '',
    '- A decode is `decodeFrame` to 8-bit RGB: the WASM step (OpenJPEG) runs where the row says; reading the header, the colour decision and the copy to RGB stay on the main thread.',
    '- The delay columns are `monitorEventLoopDelay` (1 ms resolution) during the timed run: how long a request that arrived then, a warm tile say, waited for the event loop.',
    '- Each decode starts from its own macrotask; on the main thread, the decodes started in one event loop turn run back to back, so its delay is several decodes long.',
    '- The machine is shared: compare the ratios within one run more than absolute figures across runs.',
    '',
  ].join('\n');
}

async function main(): Promise<void> {
  const [level0] = await readEncodedInstances(join(sharedWsiDir, 'cmu1-t256-j2k'));
  if (!level0 || level0.frames.length !== 108) throw new Error('cmu1-t256-j2k level 0 should have 108 frames');
  const runs: Run[] = [];
  let reference: RgbImage[] | undefined;
  for (const threads of THREADS) {
    console.log(`decoding on ${threads === 0 ? 'the main thread' : `${threads} worker thread(s)`}`);
    const { run, images } = await measure(threads, level0, reference);
    reference ??= images;
    runs.push(run);
  }
  const frameBytes = level0.frames.reduce((sum, f) => sum + f.byteLength, 0) / level0.frames.length;
  const text = formatReport(runs, frameBytes);
  console.log(`\n${text}`);
  await writeReport(resultsPath, text);
}

await main();
