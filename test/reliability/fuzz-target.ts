/**
 * One gateway fuzzed from start to end: built from its settings, fuzzed, closed; with the process
 * watched for unhandled rejections and uncaught exceptions all the while, and its open file
 * descriptors counted before and after (a handle left open on an error path is a leak). Runs in the
 * scenario's own process (DICOMweb) or in a child under strace (folder), with the same code.
 */
import { readdirSync } from 'node:fs';
import type { FuzzGateway } from './fuzz-gateway.js';
import { createFuzzGateway, readDocumentedCodes, type CreateFuzzGatewayOptions } from './fuzz-gateway.js';
import { runFuzzPass, type PassResult } from './fuzz-pass.js';

export interface TargetOptions {
  name: 'folder' | 'dicomweb';
  env: Record<string, string>;
  token?: string;
  bodyLimitBytes: number;
  canaryPaths: string[];
  canaryMarker: string;
  machinePaths: string[];
  seedSeriesUid?: string;
  perRoute: number;
  seed: number;
}

export interface TargetResult extends PassResult {
  routes: string[];
  /** Open file descriptors after the fuzz and the gateway's close, less before it started. */
  fdGrowth: number | undefined;
  peakRssBytes: number;
}

function countOpenFds(): number | undefined {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return undefined;
  }
}

/** Allowed 5xx: the PACS's failure, said with an UPSTREAM_* code (502 or 504); never ours. */
export function isUpstream5xx(status: number, code: string | undefined): boolean {
  return (status === 502 || status === 504) && code !== undefined && code.startsWith('UPSTREAM_');
}

export async function runTargetFuzz(options: TargetOptions, log: (line: string) => void): Promise<TargetResult> {
  const processEvents: string[] = [];
  const onRejection = (reason: unknown) => processEvents.push(`unhandled rejection: ${(reason as Error)?.stack ?? String(reason)}`);
  const onException = (error: Error) => processEvents.push(`uncaught exception: ${error.stack ?? error.message}`);
  // Node's own leak detector (listeners piling up on one emitter or signal) counts as a leak.
  const onWarning = (warning: Error) => warning.name === 'MaxListenersExceededWarning' && processEvents.push(`leak warning: ${warning.message}`);
  process.on('unhandledRejection', onRejection);
  process.on('uncaughtException', onException);
  process.on('warning', onWarning);
  const fdsBefore = countOpenFds();
  let peakRssBytes = process.memoryUsage().rss;
  const sampler = setInterval(() => (peakRssBytes = Math.max(peakRssBytes, process.memoryUsage().rss)), 500);
  let target: FuzzGateway | undefined;
  try {
    const gatewayOptions: CreateFuzzGatewayOptions = { env: options.env, token: options.token, bodyLimitBytes: options.bodyLimitBytes, canaryPaths: options.canaryPaths, seedSeriesUid: options.seedSeriesUid, log };
    target = await createFuzzGateway(gatewayOptions);
    const fuzzed = target;
    const pass = await runFuzzPass({
      name: options.name,
      app: fuzzed.gateway.app,
      routes: fuzzed.routes,
      world: fuzzed.world,
      perRoute: options.perRoute,
      seed: options.seed,
      isAllowed5xx: options.name === 'dicomweb' ? isUpstream5xx : () => false,
      // Under the fuzz's load the PACS may miss the probe's 2 s deadline; the folder, the models and the store may not.
      isAllowedNotReady: (failing) => options.name === 'dicomweb' && failing.every((f) => f === 'source'),
      documentedCodes: readDocumentedCodes(),
      canaryMarker: options.canaryMarker,
      machinePaths: options.machinePaths,
      checkKnownGood: () => fuzzed.checkKnownGood(),
      afterBatch: () => fuzzed.cancelJobs(),
      lastLoggedError: () => fuzzed.lastLoggedError(),
      log,
    });
    await fuzzed.gateway.close();
    target = undefined;
    // Let handles closed just now finish closing before they are counted.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const fdsAfter = countOpenFds();
    const fdGrowth = fdsBefore === undefined || fdsAfter === undefined ? undefined : fdsAfter - fdsBefore;
    const failures = [...pass.failures, ...processEvents.map((e) => `${options.name}: ${e}`)];
    // A few descriptors come and go with the runtime (timers, worker pipes); a leak per error grows with the inputs.
    if (fdGrowth !== undefined && fdGrowth > 16) failures.push(`${options.name}: ${fdGrowth} more file descriptors open after the fuzz than before`);
    return { ...pass, failures, routes: fuzzed.routes.map((r) => `${r.method} ${r.path}`), fdGrowth, peakRssBytes };
  } finally {
    clearInterval(sampler);
    await target?.gateway.close();
    process.off('unhandledRejection', onRejection);
    process.off('uncaughtException', onException);
    process.off('warning', onWarning);
  }
}
