/** The benchmark's results as a markdown report: figures, ratios against the baselines, and the method. */
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { dirname } from 'node:path';
import { percentile, type PassResult } from './load.js';
import type { ProxyCounts } from './count-proxy.js';
import type { WrkResult } from './wrk.js';

/** When and where a run measured, for a report's first line: the time, the cores, the load at the end. */
export function describeMachine(): string {
  return `${new Date().toISOString()}, ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), load average at the end ${loadavg().map((l) => l.toFixed(1)).join(' ')}`;
}

/** Writes a report to bench/results (creating the folder). */
export async function writeReport(path: string, text: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, text);
}

/** Everything one run measured. */
export interface TileBenchResults {
  readonly startedAt: Date;
  readonly runSeconds: number;
  readonly environment: string;
  readonly slide: { widthPx: number; heightPx: number; gridCols: number; gridRows: number; tiles: number; level0Instances: number };
  /** Opening the slide, before any tile: gateway descriptor and plugin pyramid, each on a fresh Orthanc. */
  readonly openMs: { gateway: number; plugin: number };
  /**
   * `gateway`, `plugin` and `floor`: the median of `rounds`, each a cold pass on fresh processes. `floor`
   * is a bare node:http server answering the same tiles from memory (support/floor-server.mjs).
   */
  readonly cold: {
    gateway: PassResult;
    plugin: PassResult;
    floor: PassResult;
    /** A fresh gateway process that read level 0 in before the pass (support/in-memory.ts). */
    inMemory: PassResult;
    /** PACS requests the gateway made during the in-memory passes, all rounds and both clients: 0 when level 0 was all in. */
    pacsRequestsInMemory: number;
    wado: PassResult;
    /** The gateway's, the plugin's and the in-memory gateway's cold passes with curl as the client (support/curl-pass.ts). */
    curl: {
      gateway: PassResult;
      plugin: PassResult;
      inMemory: PassResult;
      rounds: { gateway: readonly PassResult[]; plugin: readonly PassResult[]; inMemory: readonly PassResult[] };
    };
    rounds: { gateway: readonly PassResult[]; plugin: readonly PassResult[]; floor: readonly PassResult[]; inMemory: readonly PassResult[] };
  };
  /**
   * A viewer zooming in: the levels above 0 top-down (`upper`), then level 0, each target fresh; each
   * target's round of median time, and every round's total seconds.
   */
  readonly zoom: {
    levels: number;
    gateway: { upper: PassResult; level0: PassResult };
    plugin: { upper: PassResult; level0: PassResult };
    rounds: ReadonlyArray<{ gateway: number; plugin: number }>;
  };
  readonly second: { gateway: PassResult; plugin: PassResult };
  readonly warm: { gateway: WrkResult; plugin: WrkResult; wado: WrkResult };
  readonly concurrency: number;
  readonly wrkSeconds: { main: number; wado: number };
  readonly gateway: {
    memoryAfterOpen: { rssMiB: number; peakMiB: number } | undefined;
    memory: { rssMiB: number; peakMiB: number } | undefined;
    level0JpegBytes: number;
    problems: readonly string[];
    counted: { counts: ProxyCounts; pass: PassResult };
  };
  readonly check: { sampled: number; identical: number; mismatch: string | undefined };
}

/** A zoom-in pass's whole time: the levels above 0, then level 0. */
export function computeZoomSeconds(z: { upper: PassResult; level0: PassResult }): number {
  return z.upper.seconds + z.level0.seconds;
}

const fixed = (n: number, digits = 0): string => (Number.isFinite(n) ? n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : 'n/a');
const ratio = (a: number, b: number): string => `${fixed(a / b, 2)}x`;
const rate = (p: PassResult): number => p.requests / p.seconds;

function passRow(path: string, what: string, p: PassResult): string {
  const failures = p.failures === 0 ? '0' : `**${p.failures}** (${p.firstFailure ?? ''})`;
  return `| ${path} | ${what} | ${fixed(p.requests)} | ${fixed(p.seconds, 2)} | **${fixed(rate(p))}** | ${fixed(percentile(p.latenciesMs, 50), 1)} | ${fixed(percentile(p.latenciesMs, 99), 1)} | ${failures} |`;
}

function wrkRow(path: string, what: string, w: WrkResult): string {
  const { connect, read, write, timeout, status } = w.errors;
  const socket = connect + read + write + timeout;
  const errors = `non-2xx ${status}, socket ${socket}${socket > 0 ? ` (connect ${connect}, read ${read}, write ${write}, timeout ${timeout})` : ''}`;
  return `| ${path} | ${what} | ${fixed(w.requests)} | ${fixed(w.seconds, 2)} | **${fixed(w.requestsPerSecond)}** | ${fixed(w.latencyMs.p50, 1)} | ${fixed(w.latencyMs.p99, 1)} | ${errors} |`;
}

function verdict(value: number, target: number): string {
  return value >= target ? 'yes' : '**no**';
}

/** The report in markdown, ready to print and to quote. */
export function formatReport(r: TileBenchResults): string {
  const { slide, cold, zoom, second, warm, gateway, concurrency: c } = r;
  const zoomVsPlugin = computeZoomSeconds(zoom.plugin) / computeZoomSeconds(zoom.gateway);
  const zoomLevel0VsPlugin = rate(zoom.gateway.level0) / rate(zoom.plugin.level0);
  const coldVsPlugin = rate(cold.gateway) / rate(cold.plugin);
  const rounds = cold.rounds.gateway.length;
  const coldRounds = rounds === 1 ? 'one pass' : `median of ${rounds} passes`;
  const roundTimes = (passes: readonly PassResult[]): string => passes.map((p) => fixed(p.seconds, 2)).join(', ');
  // Gateway / plugin speed, round by round: each round's two passes ran minutes apart at most.
  const roundRatios = (r: { gateway: readonly PassResult[]; plugin: readonly PassResult[] }): string =>
    r.gateway.map((g, i) => fixed(r.plugin[i]!.seconds / g.seconds, 2)).join(', ');
  const curlVsPlugin = rate(cold.curl.gateway) / rate(cold.curl.plugin);
  const coldVsWado = rate(cold.gateway) / rate(cold.wado);
  const warmVsPlugin = warm.gateway.requestsPerSecond / warm.plugin.requestsPerSecond;
  const { counts } = gateway.counted;
  const tilesServed = gateway.counted.pass.requests;
  const wrkMain = `wrk -t2 -c16 -d${r.wrkSeconds.main}s, all ${fixed(slide.tiles)} tiles cycled`;
  const lines = [
    `## Level-0 tile serving: gateway vs Orthanc's WSI plugin vs direct WADO-RS`,
    '',
    `Large slide ${slide.widthPx}x${slide.heightPx} px, level 0 = ${slide.gridCols}x${slide.gridRows} = ${fixed(slide.tiles)} tiles of 256 px JPEG in ` +
      `${slide.level0Instances} instances (a concatenation). ${r.environment}. Run ${r.startedAt.toISOString()}, ${fixed(r.runSeconds)} s in all.`,
    '',
    '| path | measurement | requests | time (s) | tiles/s | p50 ms | p99 ms | failures / errors |',
    '|---|---|---|---|---|---|---|---|',
    passRow('gateway', `cold: fresh gateway process, fresh Orthanc, viewer order, ${c} in flight (${coldRounds})`, cold.gateway),
    passRow('Orthanc WSI plugin', `cold: fresh Orthanc, viewer order, ${c} in flight (${coldRounds})`, cold.plugin),
    passRow(
      'gateway',
      `cold process, level 0 already in its memory: fresh gateway process and Orthanc, level 0 read in first (untimed), ${c} in flight (${coldRounds}; ` +
        `${fixed(cold.pacsRequestsInMemory)} PACS requests during these passes and those with curl)`,
      cold.inMemory,
    ),
    passRow('gateway', `cold, curl as the client: fresh gateway process, fresh Orthanc, viewer order, ${c} in flight (${coldRounds})`, cold.curl.gateway),
    passRow('Orthanc WSI plugin', `cold, curl as the client: fresh Orthanc, viewer order, ${c} in flight (${coldRounds})`, cold.curl.plugin),
    passRow('gateway', `cold process, level 0 already in its memory, curl as the client (${coldRounds})`, cold.curl.inMemory),
    passRow('node:http floor', `cold: fresh bare Node server, the same tiles already in its memory, no PACS, ${c} in flight (${coldRounds})`, cold.floor),
    passRow('gateway', `zooming in, cold: fresh gateway process, fresh Orthanc, the ${zoom.levels - 1} levels above 0 smallest first`, zoom.gateway.upper),
    passRow('Orthanc WSI plugin', `zooming in, cold: fresh Orthanc, the ${zoom.levels - 1} levels above 0 smallest first`, zoom.plugin.upper),
    passRow('gateway', 'zooming in, cold: then level 0 in viewer order', zoom.gateway.level0),
    passRow('Orthanc WSI plugin', 'zooming in, cold: then level 0 in viewer order', zoom.plugin.level0),
    passRow('direct WADO-RS, 1 frame per request', `cold: fresh Orthanc, **first ${fixed(cold.wado.requests)} tiles only** in viewer order, ${c} in flight`, cold.wado),
    passRow('gateway', `second pass (warm), ${c} in flight, Node client`, second.gateway),
    passRow('Orthanc WSI plugin', `second pass (warm), ${c} in flight, Node client`, second.plugin),
    wrkRow('gateway', `warm: ${wrkMain}`, warm.gateway),
    wrkRow('Orthanc WSI plugin', `warm: ${wrkMain}`, warm.plugin),
    wrkRow('direct WADO-RS, 1 frame per request', `after its cold pass: wrk -t2 -c16 **-d${r.wrkSeconds.wado}s only**, all tiles cycled`, warm.wado),
    '',
    '| comparison (same run) | ratio | target (issue) | met |',
    '|---|---|---|---|',
    `| gateway cold / plugin cold (level 0 straight after opening, ${coldRounds}) | ${ratio(rate(cold.gateway), rate(cold.plugin))} | ≥ 1x | ${verdict(coldVsPlugin, 1)} |`,
    `| gateway cold / plugin cold, curl as the client (${coldRounds}) | ${ratio(rate(cold.curl.gateway), rate(cold.curl.plugin))} | ≥ 1x | ${verdict(curlVsPlugin, 1)} |`,
    `| zooming in, whole pyramid (time, ${coldRounds}): gateway / plugin | ${fixed(zoomVsPlugin, 2)}x | ≥ 1x | ${verdict(zoomVsPlugin, 1)} |`,
    `| zooming in, level 0 after the levels above: gateway / plugin | ${fixed(zoomLevel0VsPlugin, 2)}x | ≥ 1x | ${verdict(zoomLevel0VsPlugin, 1)} |`,
    `| gateway with level 0 in memory / plugin cold (serving alone, on a fresh process) | ${ratio(rate(cold.inMemory), rate(cold.plugin))} | none | |`,
    `| gateway with level 0 in memory / plugin cold, curl as the client | ${ratio(rate(cold.curl.inMemory), rate(cold.curl.plugin))} | none | |`,
    `| gateway cold / gateway with level 0 in memory (what reading level 0 over DICOMweb costs) | ${ratio(rate(cold.gateway), rate(cold.inMemory))} | none | |`,
    `| gateway cold / node:http floor cold | ${ratio(rate(cold.gateway), rate(cold.floor))} | none | |`,
    `| plugin cold / node:http floor cold | ${ratio(rate(cold.plugin), rate(cold.floor))} | none | |`,
    `| gateway cold / direct single-frame WADO-RS cold | ${ratio(rate(cold.gateway), rate(cold.wado))} | ≥ 5x | ${verdict(coldVsWado, 5)} |`,
    `| gateway warm / plugin warm (wrk) | ${ratio(warm.gateway.requestsPerSecond, warm.plugin.requestsPerSecond)} | ≥ 1x | ${verdict(warmVsPlugin, 1)} |`,
    `| gateway warm / direct WADO-RS (wrk) | ${ratio(warm.gateway.requestsPerSecond, warm.wado.requestsPerSecond)} | none | |`,
    '',
    `Cold passes straight to level 0, in the order run (each on fresh processes, the two targets alternating): gateway ${roundTimes(cold.rounds.gateway)} s; ` +
      `plugin ${roundTimes(cold.rounds.plugin)} s; round by round, gateway / plugin ${roundRatios(cold.rounds)}; gateway with level 0 in memory ${roundTimes(cold.rounds.inMemory)} s; ` +
      `node:http floor ${roundTimes(cold.rounds.floor)} s. ` +
      `With curl as the client: gateway ${roundTimes(cold.curl.rounds.gateway)} s; plugin ${roundTimes(cold.curl.rounds.plugin)} s; round by round ${roundRatios(cold.curl.rounds)}; ` +
      `gateway with level 0 in memory ${roundTimes(cold.curl.rounds.inMemory)} s. ` +
      `Zooming in (whole pyramid): gateway ${zoom.rounds.map((z) => fixed(z.gateway, 2)).join(', ')} s; plugin ${zoom.rounds.map((z) => fixed(z.plugin, 2)).join(', ')} s; ` +
      `round by round ${zoom.rounds.map((z) => fixed(z.plugin / z.gateway, 2)).join(', ')}.`,
    '',
    '### Gateway',
    '',
    `- Opening the slide, not in the cold pass figures: the gateway's \`GET /api/slides/{study}/{series}\` on a fresh process ` +
      `(reads the series metadata from the PACS) took ${fixed(r.openMs.gateway)} ms; the plugin's \`/wsi/pyramids/{id}\` on a fresh Orthanc ${fixed(r.openMs.plugin)} ms.`,
    `- PACS requests in a cold pass of ${fixed(tilesServed)} tiles (a separate, untimed pass of a fresh gateway through a counting proxy): ` +
      `${fixed(counts.requests)} requests, of which ${fixed(counts.frameRequests)} frame requests naming ${fixed(counts.framesRequested)} frames = ` +
      `**${fixed(counts.framesRequested / counts.frameRequests, 1)} frames per PACS request**, ${fixed(counts.framesRequested / tilesServed, 2)} frames fetched per tile served ` +
      `(that pass took ${fixed(gateway.counted.pass.seconds, 1)} s with the proxy hop).`,
    `- Memory (the built gateway, \`node dist/wsi-gateway.mjs serve\` as \`npm start\` runs it): RSS ${fixed(gateway.memoryAfterOpen?.rssMiB ?? NaN)} MiB after opening the slide, ` +
      `${fixed(gateway.memory?.rssMiB ?? NaN)} MiB after its passes and wrk, peak ${fixed(gateway.memory?.peakMiB ?? NaN)} MiB ` +
      `(TILE_CACHE_BYTES=1GiB; level 0 is ${fixed(gateway.level0JpegBytes / 2 ** 20, 1)} MiB of JPEG).`,
    `- Warnings and errors in the gateway's log: ${gateway.problems.length}${gateway.problems.length > 0 ? ` (first: \`${gateway.problems[0]}\`)` : ''}.`,
    `- Same bytes: ${r.check.identical} of ${r.check.sampled} sampled tiles identical from the gateway, the plugin and WADO-RS` +
      `${r.check.mismatch === undefined ? '' : ` (first mismatch: ${r.check.mismatch})`}.`,
    '',
    '### Method',
    '',
    '- The zoom-in rows show each target\'s round of median total time; its level-0 ratio compares those rounds\' level-0 passes.',
    '- The gateway runs built (scripts/build-server.mjs), as `npm start` and the Docker images run it, not from its sources under tsx.',
    '- One Orthanc 1.10.1 storage (DICOMweb plugin with Full series metadata, WSI plugin on), loaded once; Orthanc is restarted on that ' +
      'storage before each cold pass (plugin, gateway, direct WADO-RS), so no pass inherits the in-memory caches of Orthanc (its parsed-DICOM ' +
      'cache) or of the WSI plugin that an earlier pass warmed. The OS page cache is warm for all three alike (the files were just written).',
    '- The benchmark\'s client (undici) first runs one untimed pass, so that its own JIT warm-up is not charged to the first timed pass (the plugin\'s).',
    '- Two clients for the cold passes, each keeping 8 requests in flight in viewer order: the benchmark\'s Node client (undici) and curl ' +
      '(`--parallel`, libcurl in C; its times include starting curl, about 10 ms). Per pass the Node client spends about as much CPU as the server it ' +
      'measures (~0.6 s), curl about half that; on two cores shared with the server and Orthanc, the CPU the client leaves goes to whichever ' +
      'target can use it, so the two clients rank the targets differently. A browser\'s network stack is C++ too.',
    '- One cold pass varies by ±20 % here from run to run, so both cold scenarios run several times per target ' +
      '(`BENCH_TILES_ROUNDS`, default 3), the two targets alternating, each time on fresh processes; the tables show the median pass.',
    '- Two cold scenarios. Level 0 straight after opening the slide: every tile of a fresh gateway process is also the first its JIT sees. ' +
      'Zooming in, as a viewer opens a slide at the overview: every tile of the levels above 0, smallest level first, then level 0, each target ' +
      'fresh; the ratio for the whole pyramid compares the two passes\' total times.',
    '- The node:http floor is a fresh `node bench/support/floor-server.mjs` per pass: node:http answering the same tiles (fetched once from the ' +
      'plugin, untimed) from memory at the gateway\'s paths with its headers, and doing nothing else. It is what a fresh Node process costs ' +
      'for the pass on this machine before any gateway work: no PACS reads, no cache, no routing, no metrics, and no Orthanc running beside it.',
    '- The passes of a gateway with level 0 in memory start a fresh Orthanc and a fresh gateway process, open the slide, then read level 0 in ' +
      '(untimed: for each instance the tile of its first frame, a miss that reads the instance whole, then the tile of its last frame, which ' +
      'waits for that read), then run the same pass. Set against the cold pass, they separate what taking level 0 in over DICOMweb costs ' +
      '(the PACS reads, Orthanc\'s CPU, the intake) from what serving the tiles costs a fresh process. The gateway\'s own PACS request count ' +
      '(`/metrics`) before and after each pass gives the PACS requests made during them.',
    '- Viewer order: the grid in 8x5-tile blocks (a viewport), blocks row-major, tiles row-major inside each block, as a viewer panning row by row asks.',
    '- The direct WADO-RS baseline asks `/studies/../series/../instances/{sop}/frames/{n}` with `Accept: multipart/related; type="image/jpeg"; ' +
      'transfer-syntax=1.2.840.10008.1.2.4.50`, its tile → (instance, frame) map derived in the benchmark from the per-frame positions ' +
      '(5200,9230 > 0048,021A) of the PACS metadata, not with the gateway\'s code.',
    '- Warm figures: each target first served every level-0 tile once more (second pass), then wrk ran with a Lua script cycling through all ' +
      'tile paths, each thread from its own offset. wrk, Orthanc, the gateway and the Node client share the machine\'s cores.',
    '- Figures vary from run to run with whatever else the machine runs; compare the ratios, measured minutes apart, more than the absolutes.',
  ];
  return `${lines.join('\n')}\n`;
}
