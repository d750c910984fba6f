/**
 * CPU throughput of a generated model under onnxruntime-node, for the figures in benchmarks and
 * decisions. Printed, never asserted: the numbers depend on the machine and what else runs on it.
 */
import * as ort from 'onnxruntime-node';
import { mulberry32 } from './graph.js';

export interface ThroughputOptions {
  batch?: number;
  /** onnxruntime intra-op threads. */
  threads?: number;
  /** Keep timing batches until this much time has passed (after one warm-up batch). */
  minSeconds?: number;
  minBatches?: number;
}

export interface Throughput {
  patchesPerSecond: number;
  /** Median wall time of one batch. */
  medianBatchMs: number;
  /** From the fastest batch: what an otherwise idle machine gives, when others share this one. */
  bestPatchesPerSecond: number;
  batches: number;
  sessionCreateSeconds: number;
}

export async function measureThroughput(model: Uint8Array | string, sizePx: number, options: ThroughputOptions = {}): Promise<Throughput> {
  const { batch = 8, threads = 2, minSeconds = 10, minBatches = 3 } = options;
  const created = performance.now();
  const session = await ort.InferenceSession.create(model as Uint8Array, { intraOpNumThreads: threads, interOpNumThreads: 1 });
  const sessionCreateSeconds = (performance.now() - created) / 1000;
  try {
    const next = mulberry32(1);
    const input = Float32Array.from({ length: batch * sizePx * sizePx * 3 }, () => next());
    const feeds = { [session.inputNames[0]!]: new ort.Tensor('float32', input, [batch, sizePx, sizePx, 3]) };
    await session.run(feeds); // warm-up: first run allocates and picks kernels
    const times: number[] = [];
    const started = performance.now();
    while (times.length < minBatches || performance.now() - started < minSeconds * 1000) {
      const t0 = performance.now();
      await session.run(feeds);
      times.push(performance.now() - t0);
    }
    const total = times.reduce((a, b) => a + b, 0);
    times.sort((a, b) => a - b);
    return {
      patchesPerSecond: (batch * times.length) / (total / 1000),
      medianBatchMs: times[Math.floor(times.length / 2)]!,
      bestPatchesPerSecond: batch / (times[0]! / 1000),
      batches: times.length,
      sessionCreateSeconds,
    };
  } finally {
    await session.release();
  }
}
