/**
 * Tile-serving benchmark: the same level-0 tiles of the large slide (../shared/wsi/make-large-slide.sh)
 * from (a) the gateway, (b) Orthanc's WSI plugin, (c) direct single-frame WADO-RS to Orthanc — cold,
 * in a viewer's order with 8 requests in flight (a Node client, and curl), and warm, with wrk. Prints a
 * markdown report and writes it to bench/results/tiles.md. Run: `npm run bench:tiles` (2-3 minutes on 2 cores).
 *
 * No assertions on speed: it measures and reports. It stops only when something is broken (a tile
 * map that disagrees with the plugin's or the gateway's, a process that does not start).
 */
import { cpus, loadavg, tmpdir } from 'node:os';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startOrthanc, type OrthancServer } from '../test/support/orthanc.js';
import { makeLargeSlide, readDicomFileFacts } from '../test/support/wsi-data.js';
import { startCountingProxy } from './support/count-proxy.js';
import { withFloorServer, writeFloorTiles } from './support/floor-process.js';
import { readGatewayProblems, startGateway, type GatewayProcess } from './support/gateway-process.js';
import { countPacsRequests, countSettledPacsRequests, pickInstanceEnds, readLevel0In } from './support/in-memory.js';
import { extractFirstPart, fetchBytes, fetchOk, runPass, selectMedianPass, type PassResult } from './support/load.js';
import { computeZoomSeconds, formatReport, writeReport, type TileBenchResults } from './support/report.js';
import { computeGridViewerOrder, computeLevel0Map, computeViewerOrder, fetchSeriesMetadata, type Level0Map, type TilePosition } from './support/tile-map.js';
import { runWrk } from './support/wrk.js';
import { runCurlPass } from './support/curl-pass.js';

/** Requests in flight in the cold and second passes: a browser's connections per host. */
const concurrency = 8;
/** Direct single-frame WADO-RS runs at tens of tiles/s: a cold pass over this many tiles says enough. */
const wadoColdTiles = 600;
const wrkSeconds = { main: 10, wado: 5 };
/**
 * Cold passes of each target (straight to level 0, and zooming in), alternating, each on a fresh
 * Orthanc (and gateway): one cold pass varies by ±20 % here from run to run, so the ratios compare
 * medians. `BENCH_TILES_ROUNDS=5 npm run bench:tiles` for more.
 */
const coldRounds = Math.max(1, Number(process.env.BENCH_TILES_ROUNDS ?? 3) || 3);
/** Tiles compared byte for byte across the three paths. */
const checkedTiles = 30;
/** Orthanc's default transfer syntax for `image/jpeg` frames is lossless JPEG: ask for the stored baseline. */
const wadoAccept = { accept: 'multipart/related; type="image/jpeg"; transfer-syntax=1.2.840.10008.1.2.4.50' };

/**
 * The gateway's batch size on a miss, passed through when set (`TILE_PREFETCH_FRAMES=256 npm run
 * bench:tiles`) so a tuning can be compared without editing anything; unset, the gateway's default.
 */
const prefetchFrames = process.env.TILE_PREFETCH_FRAMES ? Number(process.env.TILE_PREFETCH_FRAMES) : undefined;
const benchDir = join(tmpdir(), 'wsi-gateway-bench');
const resultsPath = join(dirname(fileURLToPath(import.meta.url)), 'results', 'tiles.md');
const started = performance.now();

function step(message: string): void {
  console.log(`[${((performance.now() - started) / 1000).toFixed(0).padStart(3)} s] ${message}`);
}

async function getJson(url: string): Promise<unknown> {
  return JSON.parse((await fetchOk(url)).toString('utf8')) as unknown;
}

/** Runs `body` against a freshly started Orthanc on the bench's storage, and stops it whatever happens. */
async function withOrthanc<T>(storageDir: string, body: (orthanc: OrthancServer) => Promise<T>): Promise<T> {
  const orthanc = await startOrthanc({ metadataMode: 'Full', withWsiPlugin: true, storageDir });
  try {
    return await body(orthanc);
  } finally {
    await orthanc.stop();
  }
}

async function withGateway<T>(dicomwebUrl: string, logPath: string, body: (gateway: GatewayProcess) => Promise<T>): Promise<T> {
  const gateway = await startGateway({ dicomwebUrl, logPath, prefetchFrames });
  try {
    return await body(gateway);
  } finally {
    await gateway.stop();
  }
}

/** Orthanc's own id of the series, which the WSI plugin's URLs use. */
async function lookupOrthancSeriesId(orthancUrl: string, seriesUid: string): Promise<string> {
  const response = await fetch(`${orthancUrl}/tools/lookup`, { method: 'POST', body: seriesUid });
  const found = (await response.json()) as Array<{ ID?: string; Type?: string }>;
  const id = found.find((f) => f.Type === 'Series')?.ID;
  if (id === undefined) throw new Error(`Orthanc has no series ${seriesUid}`);
  return id;
}

/** The plugin must see the same level 0 as the map, or the comparison compares different tiles. */
function checkPluginPyramid(pyramid: unknown, map: Level0Map): void {
  const { Sizes, TilesCount } = pyramid as { Sizes?: number[][]; TilesCount?: number[][] };
  const [width, height] = Sizes?.[0] ?? [];
  const [cols, rows] = TilesCount?.[0] ?? [];
  if (width !== map.widthPx || height !== map.heightPx || cols !== map.gridCols || rows !== map.gridRows) {
    throw new Error(`The plugin's level 0 is ${width}x${height} px (${cols}x${rows} tiles), the metadata's ${map.widthPx}x${map.heightPx}`);
  }
}

function checkGatewayLevel0(descriptor: unknown, map: Level0Map): void {
  const level = (descriptor as { levels?: Array<Record<string, unknown>> }).levels?.[0];
  const expected = { index: 0, widthPx: map.widthPx, heightPx: map.heightPx, gridCols: map.gridCols, gridRows: map.gridRows, tileWidthPx: map.tileWidthPx };
  const wrong = Object.entries(expected).filter(([key, value]) => level?.[key] !== value);
  if (wrong.length > 0) throw new Error(`The gateway's level 0 differs from the metadata's: ${JSON.stringify(level)}`);
}

/** A tile of any level: what the zoom-in pass walks. */
interface LevelTile {
  readonly level: number;
  readonly col: number;
  readonly row: number;
}

/**
 * The levels above level 0, smallest first, each in viewer order: what a viewer asks for while it opens
 * a slide at the overview and zooms in. `grids` are [cols, rows] per level, level 0 first.
 */
function levelsAboveZeroTopDown(grids: ReadonlyArray<readonly [number, number]>): LevelTile[] {
  return grids
    .map(([cols, rows], level) => computeGridViewerOrder(cols, rows).map(({ col, row }) => ({ level, col, row })))
    .slice(1)
    .reverse()
    .flat();
}

/** The two targets must walk the same pyramid, or the zoom-in comparison compares different tiles. */
function checkSameGrids(plugin: ReadonlyArray<readonly [number, number]>, gateway: ReadonlyArray<readonly [number, number]>): void {
  if (JSON.stringify(plugin) !== JSON.stringify(gateway)) {
    throw new Error(`The plugin's tile grids ${JSON.stringify(plugin)} differ from the gateway's ${JSON.stringify(gateway)}`);
  }
}

async function timed<T>(work: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const t = performance.now();
  const value = await work();
  return { value, ms: performance.now() - t };
}

async function main(): Promise<void> {
  const startedAt = new Date();
  // Other work on the machine skews every figure; the load average says how much there was.
  const loadAtStart = loadavg()[0] ?? NaN;
  step('building (or reusing) the large slide');
  const slide = await makeLargeSlide(join(benchDir, 'large-slide'));
  const facts = await readDicomFileFacts(slide.files[0]!);
  const { studyInstanceUid: study, seriesInstanceUid: series } = facts;
  await mkdir(benchDir, { recursive: true });
  await removeStaleRunDirs();
  const runDir = await mkdtemp(join(benchDir, `run-${process.pid}-`));
  const storageDir = join(runDir, 'orthanc-storage');
  const gatewayLog = join(runDir, 'gateway.log');
  let succeeded = false;
  try {
    step(`loading ${slide.files.length} instances into Orthanc; reading the series metadata`);
    const loaded = await withOrthanc(storageDir, async (orthanc) => {
      await orthanc.upload(slide.files);
      const map = computeLevel0Map(await fetchSeriesMetadata(orthanc.dicomwebUrl, study, series));
      const orthancSeriesId = await lookupOrthancSeriesId(orthanc.baseUrl, series);
      const system = (await getJson(`${orthanc.baseUrl}/system`)) as { Version?: string };
      // The benchmark's own client (undici, its JIT) warms up here, untimed, so that the first timed pass
      // (the plugin's) does not pay for it: without this the plugin's cold pass ran up to 1.5x slower.
      const pluginTile = ({ col, row }: TilePosition): string => `${orthanc.baseUrl}/wsi/tiles/${orthancSeriesId}/0/${col}/${row}`;
      await runPass(computeViewerOrder(map).map(pluginTile), { concurrency });
      return { map, orthancSeriesId, orthancVersion: system.Version ?? '?' };
    });
    const { map, orthancSeriesId } = loaded;
    const order = computeViewerOrder(map);
    const gatewayPath = ({ col, row }: TilePosition): string => `/api/slides/${study}/${series}/tiles/0/${col}/${row}.jpg`;
    const pluginPath = ({ col, row }: TilePosition): string => `/wsi/tiles/${orthancSeriesId}/0/${col}/${row}`;
    const wadoPath = ({ col, row }: TilePosition): string => {
      const frame = map.frameAt(col, row)!;
      return `/dicom-web/studies/${study}/series/${series}/instances/${frame.sopInstanceUid}/frames/${frame.frameNumber}`;
    };
    const urls = (base: string, path: (p: TilePosition) => string, positions = order): string[] => positions.map((p) => base + path(p));
    step(`level 0: ${map.gridCols}x${map.gridRows} grid, ${order.length} tiles in ${map.instances.length} instances`);

    step('plugin: cold pass on a fresh Orthanc, second pass, wrk');
    const plugin = await withOrthanc(storageDir, async (orthanc) => {
      const open = await timed(() => getJson(`${orthanc.baseUrl}/wsi/pyramids/${orthancSeriesId}`));
      checkPluginPyramid(open.value, map);
      const cold = await runPass(urls(orthanc.baseUrl, pluginPath), { concurrency });
      const second = await runPass(urls(orthanc.baseUrl, pluginPath), { concurrency });
      const warm = await runWrk({ baseUrl: orthanc.baseUrl, paths: order.map(pluginPath), workDir: runDir, name: 'plugin', durationSeconds: wrkSeconds.main });
      // The same bytes the gateway serves (compareBytes checks a sample), at the gateway's paths.
      const floorTiles = await writeFloorTiles(runDir, order.map(gatewayPath), urls(orthanc.baseUrl, pluginPath));
      return { openMs: open.ms, cold, second, warm, floorTiles };
    });

    step('gateway: fresh process on a fresh Orthanc: cold pass, second pass, wrk, byte check');
    const gateway = await withOrthanc(storageDir, (orthanc) =>
      withGateway(orthanc.dicomwebUrl, gatewayLog, async (gw) => {
        const open = await timed(() => getJson(`${gw.baseUrl}/api/slides/${study}/${series}`));
        checkGatewayLevel0(open.value, map);
        const memoryAfterOpen = await gw.readMemory();
        const cold = await runPass(urls(gw.baseUrl, gatewayPath), { concurrency });
        const second = await runPass(urls(gw.baseUrl, gatewayPath), { concurrency });
        const warm = await runWrk({ baseUrl: gw.baseUrl, paths: order.map(gatewayPath), workDir: runDir, name: 'gateway', durationSeconds: wrkSeconds.main });
        const memory = await gw.readMemory();
        const check = await compareBytes(order, { gateway: gw.baseUrl, orthanc: orthanc.baseUrl }, { gatewayPath, pluginPath, wadoPath });
        return { openMs: open.ms, cold, second, warm, memoryAfterOpen, memory, check };
      }),
    );

    step(
      `cold passes of the node:http floor and of a gateway with level 0 in memory${coldRounds > 1 ? `, 2 to ${coldRounds} of each target` : ''}, ` +
        'and each target with curl as the client, alternating (a fresh Orthanc, and a fresh gateway or floor process, each)',
    );
    const coldRuns = { plugin: [plugin.cold], gateway: [gateway.cold], floor: [] as PassResult[], inMemory: [] as PassResult[] };
    const curlRuns = { plugin: [] as PassResult[], gateway: [] as PassResult[], inMemory: [] as PassResult[] };
    // The same passes with two clients: the Node one (undici) and curl's (C), which leaves more CPU to the targets.
    type Client = (urls: readonly string[]) => Promise<PassResult>;
    const nodeClient: Client = (list) => runPass(list, { concurrency });
    const curlClient: Client = (list) => runCurlPass(list, { workDir: runDir, concurrency });
    const floorPass = (): Promise<PassResult> => withFloorServer(plugin.floorTiles, join(runDir, 'floor.log'), (baseUrl) => nodeClient(urls(baseUrl, gatewayPath)));
    const pluginColdPass = (client: Client): Promise<PassResult> => withOrthanc(storageDir, (orthanc) => client(urls(orthanc.baseUrl, pluginPath)));
    const gatewayColdPass = (client: Client): Promise<PassResult> =>
      withOrthanc(storageDir, (orthanc) =>
        withGateway(orthanc.dicomwebUrl, join(runDir, 'gateway-rounds.log'), async (gw) => {
          await getJson(`${gw.baseUrl}/api/slides/${study}/${series}`);
          return client(urls(gw.baseUrl, gatewayPath));
        }),
      );
    let pacsRequestsInMemory = 0;
    const inMemoryPass = (client: Client): Promise<PassResult> =>
      withOrthanc(storageDir, (orthanc) =>
        withGateway(orthanc.dicomwebUrl, join(runDir, 'gateway-memory.log'), async (gw) => {
          await getJson(`${gw.baseUrl}/api/slides/${study}/${series}`);
          await readLevel0In(urls(gw.baseUrl, gatewayPath, pickInstanceEnds(map, order)));
          const before = await countSettledPacsRequests(gw.baseUrl);
          // Reading level 0 in made PACS requests: a count of 0 here means /metrics no longer says them.
          if (before === 0) throw new Error("The gateway's /metrics counts no PACS request after reading level 0 in");
          const pass = await client(urls(gw.baseUrl, gatewayPath));
          pacsRequestsInMemory += (await countPacsRequests(gw.baseUrl)) - before;
          return pass;
        }),
      );
    for (let round = 0; round < coldRounds; round++) {
      coldRuns.floor.push(await floorPass());
      coldRuns.inMemory.push(await inMemoryPass(nodeClient));
      if (round > 0) {
        // The plugin's and the gateway's first cold passes with the Node client ran above.
        coldRuns.plugin.push(await pluginColdPass(nodeClient));
        coldRuns.gateway.push(await gatewayColdPass(nodeClient));
      }
      curlRuns.plugin.push(await pluginColdPass(curlClient));
      curlRuns.gateway.push(await gatewayColdPass(curlClient));
      curlRuns.inMemory.push(await inMemoryPass(curlClient));
    }

    step(`zooming in, ${coldRounds} times: levels above 0 top-down, then level 0, on a fresh Orthanc (plugin) and a fresh gateway process`);
    const zoomRuns: ZoomRound[] = [];
    for (let round = 0; round < coldRounds; round++) {
      zoomRuns.push(await measureZoomIn(storageDir, join(runDir, 'gateway-zoom.log'), { study, series, orthancSeriesId, order, gatewayPath, pluginPath }));
    }
    const zoom = selectMedianZoom(zoomRuns);

    step(`direct WADO-RS: first ${wadoColdTiles} tiles on a fresh Orthanc, short wrk; then an untimed, counted gateway pass`);
    const wado = await withOrthanc(storageDir, async (orthanc) => {
      const cold = await runPass(urls(orthanc.baseUrl, wadoPath, order.slice(0, wadoColdTiles)), { concurrency, headers: wadoAccept });
      const warm = await runWrk({ baseUrl: orthanc.baseUrl, paths: order.map(wadoPath), workDir: runDir, name: 'wado', durationSeconds: wrkSeconds.wado, headers: wadoAccept });
      const proxy = await startCountingProxy(orthanc.baseUrl);
      try {
        const counted = await withGateway(`${proxy.baseUrl}/dicom-web`, join(runDir, 'gateway-counted.log'), async (gw) => {
          await getJson(`${gw.baseUrl}/api/slides/${study}/${series}`);
          return runPass(urls(gw.baseUrl, gatewayPath), { concurrency });
        });
        return { cold, warm, counted: { counts: { ...proxy.counts }, pass: counted } };
      } finally {
        await proxy.close();
      }
    });

    const results: TileBenchResults = {
      startedAt,
      runSeconds: (performance.now() - started) / 1000,
      environment:
        `${cpus().length} CPUs, load average ${loadAtStart.toFixed(1)} at start and ${(loadavg()[0] ?? NaN).toFixed(1)} at the end, ` +
        `gateway TILE_PREFETCH_FRAMES ${prefetchFrames ?? 'default'}, Node ${process.version}, Orthanc ${loaded.orthancVersion} (DICOMweb plugin with Full metadata, WSI plugin)`,
      slide: { widthPx: map.widthPx, heightPx: map.heightPx, gridCols: map.gridCols, gridRows: map.gridRows, tiles: order.length, level0Instances: map.instances.length },
      openMs: { gateway: gateway.openMs, plugin: plugin.openMs },
      cold: {
        gateway: selectMedianPass(coldRuns.gateway),
        plugin: selectMedianPass(coldRuns.plugin),
        floor: selectMedianPass(coldRuns.floor),
        inMemory: selectMedianPass(coldRuns.inMemory),
        pacsRequestsInMemory,
        curl: { gateway: selectMedianPass(curlRuns.gateway), plugin: selectMedianPass(curlRuns.plugin), inMemory: selectMedianPass(curlRuns.inMemory), rounds: curlRuns },
        wado: wado.cold,
        rounds: coldRuns,
      },
      zoom,
      second: { gateway: gateway.second, plugin: plugin.second },
      warm: { gateway: gateway.warm, plugin: plugin.warm, wado: wado.warm },
      concurrency,
      wrkSeconds,
      gateway: {
        memoryAfterOpen: gateway.memoryAfterOpen,
        memory: gateway.memory,
        level0JpegBytes: gateway.cold.bytes,
        problems: (await Promise.all(['gateway.log', 'gateway-rounds.log', 'gateway-memory.log', 'gateway-zoom.log', 'gateway-counted.log'].map((log) => readGatewayProblems(join(runDir, log))))).flat(),
        counted: wado.counted,
      },
      check: gateway.check,
    };
    const report = formatReport(results);
    await writeReport(resultsPath, report);
    console.log(`\n${report}`);
    step(`report written to ${resultsPath}`);
    succeeded = true;
  } finally {
    // A failed run keeps its logs (gateway.log, wrk scripts) for a look; the archive copy goes either way.
    await rm(succeeded ? runDir : storageDir, { recursive: true, force: true });
    if (!succeeded) console.error(`logs kept in ${runDir}`);
  }
}

type ZoomRound = Omit<TileBenchResults['zoom'], 'rounds'>;

/** Each target's round of median time (levels above 0 and level 0 together), and every round's times. */
function selectMedianZoom(runs: readonly ZoomRound[]): TileBenchResults['zoom'] {
  const median = (target: 'gateway' | 'plugin'): ZoomRound[typeof target] =>
    [...runs].sort((a, b) => computeZoomSeconds(a[target]) - computeZoomSeconds(b[target]))[Math.floor(runs.length / 2)]![target];
  const rounds = runs.map((r) => ({ gateway: computeZoomSeconds(r.gateway), plugin: computeZoomSeconds(r.plugin) }));
  return { levels: runs[0]!.levels, gateway: median('gateway'), plugin: median('plugin'), rounds };
}

/**
 * A viewer opening the slide at the overview and zooming in: every tile of the levels above 0, smallest
 * level first, then level 0 — each target on a fresh Orthanc (and the gateway a fresh process), both
 * passes timed. Level 0 is as cold as in the main pass (no level-0 frame read yet), but the processes
 * have served a few thousand tiles, as they have by the time a user zooms in.
 */
async function measureZoomIn(
  storageDir: string,
  gatewayLog: string,
  slide: { study: string; series: string; orthancSeriesId: string; order: readonly TilePosition[]; gatewayPath: (p: TilePosition) => string; pluginPath: (p: TilePosition) => string },
): Promise<ZoomRound> {
  const { study, series, orthancSeriesId, order } = slide;
  const plugin = await withOrthanc(storageDir, async (orthanc) => {
    const pyramid = (await getJson(`${orthanc.baseUrl}/wsi/pyramids/${orthancSeriesId}`)) as { TilesCount: Array<[number, number]> };
    const above = levelsAboveZeroTopDown(pyramid.TilesCount);
    const upper = await runPass(above.map(({ level, col, row }) => `${orthanc.baseUrl}/wsi/tiles/${orthancSeriesId}/${level}/${col}/${row}`), { concurrency });
    const level0 = await runPass(order.map((p) => orthanc.baseUrl + slide.pluginPath(p)), { concurrency });
    return { grids: pyramid.TilesCount, upper, level0 };
  });
  const gateway = await withOrthanc(storageDir, (orthanc) =>
    withGateway(orthanc.dicomwebUrl, gatewayLog, async (gw) => {
      const descriptor = (await getJson(`${gw.baseUrl}/api/slides/${study}/${series}`)) as { levels: Array<{ gridCols: number; gridRows: number }> };
      const grids = descriptor.levels.map((l): [number, number] => [l.gridCols, l.gridRows]);
      checkSameGrids(plugin.grids, grids);
      const above = levelsAboveZeroTopDown(grids);
      const upper = await runPass(above.map(({ level, col, row }) => `${gw.baseUrl}/api/slides/${study}/${series}/tiles/${level}/${col}/${row}.jpg`), { concurrency });
      const level0 = await runPass(order.map((p) => gw.baseUrl + slide.gatewayPath(p)), { concurrency });
      return { upper, level0 };
    }),
  );
  return { levels: plugin.grids.length, plugin: { upper: plugin.upper, level0: plugin.level0 }, gateway };
}

/**
 * A run stopped by Ctrl-C exits without its `finally`, leaving its folder (and a 65 MB Orthanc storage):
 * remove those whose process is gone.
 */
async function removeStaleRunDirs(): Promise<void> {
  for (const name of await readdir(benchDir)) {
    const owner = /^run-(\d+)-/.exec(name)?.[1];
    if (owner === undefined) continue;
    try {
      process.kill(Number(owner), 0);
    } catch (error) {
      // EPERM: alive but someone else's; ESRCH: gone.
      if ((error as NodeJS.ErrnoException).code === 'ESRCH') await rm(join(benchDir, name), { recursive: true, force: true });
    }
  }
}

/** Fetches a spread of tiles from all three paths and compares the JPEG bytes. */
async function compareBytes(
  order: readonly TilePosition[],
  base: { gateway: string; orthanc: string },
  paths: Record<'gatewayPath' | 'pluginPath' | 'wadoPath', (p: TilePosition) => string>,
): Promise<{ sampled: number; identical: number; mismatch: string | undefined }> {
  const stride = Math.max(1, Math.floor(order.length / checkedTiles));
  const sample = order.filter((_, i) => i % stride === 0);
  let identical = 0;
  let mismatch: string | undefined;
  for (const position of sample) {
    const [fromGateway, fromPlugin, fromWado] = await Promise.all([
      fetchBytes(base.gateway + paths.gatewayPath(position)),
      fetchBytes(base.orthanc + paths.pluginPath(position)),
      fetchBytes(base.orthanc + paths.wadoPath(position), wadoAccept),
    ]);
    const wadoJpeg = fromWado.status === 200 ? extractFirstPart(fromWado.contentType, fromWado.body) : Buffer.alloc(0);
    if (fromGateway.body.equals(fromPlugin.body) && fromGateway.body.equals(wadoJpeg)) identical++;
    else mismatch ??= `tile ${position.col},${position.row}: ${fromGateway.body.length} / ${fromPlugin.body.length} / ${wadoJpeg.length} bytes`;
  }
  return { sampled: sample.length, identical, mismatch };
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
