/**
 * Faults between the gateway and the PACS (issue 7): the gateway runs as its own process against a
 * real Orthanc through the fault-injecting proxy, and takes tile, slide and list requests in phases:
 * mixed faults (every kind, about a quarter of PACS requests), a storm of hung requests, a storm of
 * resets and 5xx, then recovery with the faults off. Every answer is checked as it comes (only 200,
 * 502 or 504; the JSON error shape; a 200 tile byte-identical to a fault-free gateway's; no answer
 * past the deadline bound), and the process's memory is sampled throughout.
 */
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { percentile } from '../../bench/support/load.js';
import { createTestGateway } from '../support/gateway.js';
import { planRequests, readReference, runPool, sendChecked, shuffle, sumMetric, type Get, type LoadRequest, type Outcome } from './fault-load.js';
import { FAULT_KINDS, NO_FAULTS, startFaultProxy, type FaultPlan } from './fault-proxy.js';
import { startGatewayProcess } from './gateway-process.js';
import { formatCount, formatMiB, readProcessMemory, type Figure, type Scenario } from './scenario.js';
import { mulberry32 } from '../../src/embed/generate/graph.js';

const SIZES = {
  ci: { tiles: 200, mixed: 1200, hang: 40, storm: 200, concurrency: 8 },
  full: { tiles: 1500, mixed: 20_000, hang: 100, storm: 1000, concurrency: 16 },
} as const;

const SEED = 20_240_607;
const TIMEOUT_MS = 1500;
const DEADLINE_MS = 3000;
const COOLDOWN_MS = 1000;
/** A tile may wait on a slide's metadata and then its frames, each within the deadline; plus decoding. */
const BOUND_MS = 2 * DEADLINE_MS + 2000;
/**
 * Fail fast: the median tile refused by the open breaker. Well under the timeout (so no request waited
 * on the PACS), with room for a CPU shared with other work (the refusal itself takes ~1 ms).
 */
const FAIL_FAST_MS = 250;

/** About a quarter of PACS requests get one fault, and 15 % are also delayed (some past the timeout). */
const MIXED: FaultPlan = {
  chances: { latency: 0.15, status5xx: 0.04, resetBeforeHeaders: 0.04, resetMidBody: 0.04, truncate: 0.04, slowDrip: 0.04, wrongContentType: 0.04 },
  latencyMs: [20, 2000],
  drip: { chunkBytes: 256, intervalMs: 25, prefixBytes: 4096 },
};
/** Every request hangs past the deadline: the breaker must open on timeouts too. */
const HANG: FaultPlan = { chances: { latency: 1 }, latencyMs: [2 * DEADLINE_MS, 2 * DEADLINE_MS] };
/** Every request fails at once: the PACS is down. */
const STORM: FaultPlan = { chances: { status5xx: 0.5, resetBeforeHeaders: 0.5 } };

export const runFaults: Scenario = async (ctx) => {
  const started = performance.now();
  const size = SIZES[ctx.scale];
  const failures: string[] = [];
  const random = mulberry32(SEED);
  const proxy = await startFaultProxy({ target: ctx.dicomwebUrl, seed: SEED });
  // The reference: a gateway in this process, straight on Orthanc, with no faults.
  const ref = createTestGateway({ DICOMWEB_URL: ctx.dicomwebUrl, GATEWAY_DEMO: 'false', EMBED_DIR: path.join(ctx.workDir, 'ref-embeddings') });
  const refGet: Get = async (p, signal) => ref.app.request(p, { signal });
  const gateway = await startGatewayProcess({
    logFile: path.join(ctx.workDir, 'gateway.log'),
    env: {
      DICOMWEB_URL: proxy.url,
      DICOMWEB_TIMEOUT_MS: String(TIMEOUT_MS),
      DICOMWEB_DEADLINE_MS: String(DEADLINE_MS),
      DICOMWEB_RETRIES: '2',
      DICOMWEB_BREAKER_FAILURES: '10',
      DICOMWEB_BREAKER_COOLDOWN_MS: String(COOLDOWN_MS),
      // A small cache and small batches, so that most tiles go to the PACS and meet faults.
      TILE_CACHE_BYTES: '4MiB',
      TILE_PREFETCH_FRAMES: '8',
      EMBED_DIR: path.join(ctx.workDir, 'embeddings'),
    },
  });
  let exitCode: number | string | undefined;
  void gateway.exited.then((code) => (exitCode = code));
  const get: Get = (p, signal) => fetch(`${gateway.url}${p}`, { signal });
  const rss: Array<{ phase: string; bytes: number }> = [];
  let phase = 'reference';
  let peakRssBytes = 0;
  const sampler = setInterval(() => {
    void readProcessMemory(gateway.pid).then((m) => {
      if (!m) return;
      rss.push({ phase, bytes: m.rssBytes });
      peakRssBytes = Math.max(peakRssBytes, m.peakRssBytes);
    });
  }, 250);
  const outcomes: Outcome[] = [];
  const run = async (name: string, requests: readonly LoadRequest[], concurrency: number = size.concurrency) => {
    phase = name;
    ctx.log(`faults: ${name}, ${requests.length} requests`);
    await runPool(requests, concurrency, async (request) => void outcomes.push(await sendChecked(get, request, reference, name, BOUND_MS)));
    return outcomes.filter((o) => o.phase === name);
  };
  const metrics = async () => (await get('/metrics', AbortSignal.timeout(10_000))).text();
  let reference: Awaited<ReturnType<typeof readReference>>;

  try {
    reference = await readReference(refGet, size.tiles, SEED);
    const tiles = [...reference.tileHashes.keys()];
    ctx.log(`faults: ${reference.slideIds.length} slides, ${tiles.length} reference tiles`);

    // Warm-up without faults: slide metadata is loaded, and the path through the proxy works.
    await run('warm-up', [{ kind: 'list', path: '/api/slides' }, ...shuffle(tiles, random).slice(0, 20).map((p): LoadRequest => ({ kind: 'tile', path: p }))], 4);
    const rssStart = rss.at(-1)?.bytes ?? 0;

    proxy.setPlan(MIXED);
    const mixed = await run('mixed faults', planRequests(reference, size.mixed, random));
    const injected = proxy.stats().faults;
    const tilesOk = mixed.filter((o) => o.kind === 'tile' && o.status === 200).length / Math.max(1, mixed.filter((o) => o.kind === 'tile').length);
    if (tilesOk < 0.9) failures.push(`retries hid too few faults: ${(tilesOk * 100).toFixed(1)} % of tiles were 200 under mixed faults (expected at least 90 %)`);
    for (const kind of FAULT_KINDS) if (injected[kind] === 0) failures.push(`no ${kind} fault was injected: the mixed phase is too small`);

    proxy.setPlan(HANG);
    const hang = await run('hang storm', shuffle(tiles, random).slice(0, size.hang).map((p): LoadRequest => ({ kind: 'tile', path: p })));
    if (!hang.some((o) => o.status === 504)) failures.push('no 504 while every PACS request hung past the timeout');

    proxy.setPlan(STORM);
    const storm = await run('reset storm', planRequests(reference, size.storm, random).map((r): LoadRequest => (r.kind === 'tile' ? r : { kind: 'tile', path: tiles[0]! })));
    const openMs = storm.filter((o) => o.code === 'UPSTREAM_UNAVAILABLE').map((o) => o.ms).sort((a, b) => a - b);
    if (openMs.length === 0) failures.push('the breaker never failed a request fast (no UPSTREAM_UNAVAILABLE) under a storm of resets and 5xx');
    else if (percentile(openMs, 50) > FAIL_FAST_MS) failures.push(`failing fast took ${percentile(openMs, 50).toFixed(0)} ms at the median (expected under ${FAIL_FAST_MS} ms)`);
    const openings = sumMetric(await metrics(), 'wsi_gateway_pacs_circuit_openings_total');
    if (openings < 1) failures.push('the circuit breaker never opened');

    // Recovery: faults off; after the cool-down, /readyz's probe is the breaker's trial and closes it.
    proxy.setPlan(NO_FAULTS);
    phase = 'recovery';
    let circuitOpen = 1;
    for (let attempt = 0; attempt < 5 && circuitOpen !== 0; attempt++) {
      await sleep(COOLDOWN_MS + 100);
      await get('/readyz', AbortSignal.timeout(BOUND_MS)).then((r) => r.arrayBuffer());
      circuitOpen = sumMetric(await metrics(), 'wsi_gateway_pacs_circuit_open');
    }
    if (circuitOpen !== 0) failures.push('the circuit breaker did not close once the faults stopped');
    const recovery = await run('recovery', tiles.map((p): LoadRequest => ({ kind: 'tile', path: p })));
    const notOk = recovery.filter((o) => o.status !== 200);
    if (notOk.length > 0) failures.push(`${notOk.length} of ${recovery.length} tiles were not 200 after the faults stopped (first: ${notOk[0]!.status} ${notOk[0]!.code ?? ''} ${notOk[0]!.path})`);

    const finalMetrics = await metrics();
    const healthy = await get('/healthz', AbortSignal.timeout(5000)).then((r) => r.status === 200, () => false);
    if (exitCode !== undefined || !healthy) failures.push(`the gateway process died or stopped answering (exit ${exitCode ?? 'none'}, healthz ${healthy ? 'ok' : 'failed'})`);

    // Problems found answer by answer, grouped so that one bug is one line.
    const problems = new Map<string, Outcome[]>();
    for (const o of outcomes) if (o.problem) problems.set(`${o.phase}: ${o.problem}`, [...(problems.get(`${o.phase}: ${o.problem}`) ?? []), o]);
    for (const [problem, list] of problems) failures.push(`${problem} (${list.length} times, e.g. ${list[0]!.path})`);

    // Memory plateaus: the second half of the mixed phase needs no more than the first, give or take.
    const mixedRss = rss.filter((s) => s.phase === 'mixed faults').map((s) => s.bytes);
    const half = Math.floor(mixedRss.length / 2);
    const firstPeak = Math.max(0, ...mixedRss.slice(0, half));
    const secondPeak = Math.max(0, ...mixedRss.slice(half));
    if (half > 2 && secondPeak > firstPeak * 1.25 + 48 * 2 ** 20) failures.push(`memory kept growing under faults: ${formatMiB(firstPeak)} peak in the first half of the mixed phase, ${formatMiB(secondPeak)} in the second`);
    const rssEnd = rss.at(-1)?.bytes ?? 0;

    const failed = outcomes.filter((o) => o.status !== 200 && o.phase !== 'warm-up').map((o) => o.ms).sort((a, b) => a - b);
    const byStatus = new Map<string, number>();
    for (const o of outcomes) byStatus.set(`${o.status}${o.code ? ` ${o.code}` : ''}`, (byStatus.get(`${o.status}${o.code ? ` ${o.code}` : ''}`) ?? 0) + 1);
    const total = proxy.stats();
    const ms = (v: number) => (Number.isNaN(v) ? 'n/a' : `${Math.round(v)} ms`);
    const figures: Figure[] = [
      { label: 'Gateway requests sent', value: formatCount(outcomes.length) },
      { label: 'PACS requests through the proxy', value: formatCount(total.requests) },
      ...FAULT_KINDS.map((k) => ({ label: `Faults injected: ${k}`, value: formatCount(total.faults[k]) })),
      ...[...byStatus].sort().map(([status, n]) => ({ label: `Answers ${status}`, value: formatCount(n) })),
      { label: 'Tiles 200 under mixed faults', value: `${(tilesOk * 100).toFixed(1)} %` },
      { label: 'PACS retries by the gateway', value: formatCount(sumMetric(finalMetrics, 'wsi_gateway_pacs_retries_total')) },
      { label: 'Circuit breaker openings', value: formatCount(sumMetric(finalMetrics, 'wsi_gateway_pacs_circuit_openings_total')) },
      { label: 'Failed requests, p50 / p99 latency', value: `${ms(percentile(failed, 50))} / ${ms(percentile(failed, 99))}` },
      { label: 'Failed fast (breaker open), p50 / p99', value: `${ms(percentile(openMs, 50))} / ${ms(percentile(openMs, 99))}` },
      { label: 'Slowest answer (bound)', value: `${ms(Math.max(...outcomes.map((o) => o.ms)))} (${BOUND_MS} ms)` },
      { label: 'Gateway RSS start / peak / end', value: `${formatMiB(rssStart)} / ${formatMiB(peakRssBytes)} / ${formatMiB(rssEnd)}` },
    ];
    return {
      title: 'Faults between the gateway and the PACS',
      summary:
        `The gateway ran as its own process against Orthanc through a fault-injecting proxy (seed ${SEED}; timeout ${TIMEOUT_MS} ms, ` +
        `deadline ${DEADLINE_MS} ms, 2 retries, breaker at 10 failures, ${COOLDOWN_MS} ms cool-down, 4 MiB tile cache) and took ` +
        `${formatCount(outcomes.length)} tile, slide and list requests over ${reference.slideIds.length} slides: mixed faults, a storm of hung ` +
        `requests, a storm of resets and 5xx, then recovery with the faults off.`,
      figures,
      failures,
      peakRssBytes,
      seconds: (performance.now() - started) / 1000,
    };
  } catch (error) {
    // A broken setup or a gateway that stopped answering /metrics: reported, not thrown (scenario.ts).
    failures.push(`the scenario stopped in the ${phase} phase: ${(error as Error).message}`);
    return { title: 'Faults between the gateway and the PACS', summary: 'Did not finish.', figures: [], failures, peakRssBytes, seconds: (performance.now() - started) / 1000 };
  } finally {
    clearInterval(sampler);
    await gateway.stop(10_000).catch(() => undefined);
    await proxy.close();
    await ref.close();
  }
};
