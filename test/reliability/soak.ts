/**
 * Soak (issue 7, part 4): many tile requests at 64 connections over two slides, through a tile cache
 * smaller than either slide, so the cache evicts all the time and misses go back to the PACS. The
 * gateway runs as its own process so its memory can be read from /proc while the load runs.
 *
 * Checked: every answer is a 200 JPEG; a tile's bytes never change between answers (eviction and
 * refetch give the same tile); the cache's bytes (its /metrics gauge) never pass TILE_CACHE_BYTES;
 * resident memory stays under a stated bound and does not keep growing once warm; the process lives.
 */
import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { Agent, request } from 'undici';
import { mulberry32 } from '../../src/embed/generate/graph.js';
import { percentile } from '../../bench/support/load.js';
import { sampleSlideId, wsiSamples, type WsiSample } from '../support/wsi-data.js';
import { sumMetric } from './fault-load.js';
import { startGatewayProcess, type GatewayProcess } from './gateway-process.js';
import { formatCount, formatMiB, readProcessMemory, type Scenario } from './scenario.js';

const CONCURRENCY = 64;
const CACHE_BYTES = 1 << 20;
/**
 * The stated bound on the gateway's resident memory under this load. Measured peaks are ~190-260 MiB
 * (Node and V8 ~60 MiB, sharp/libvips thread pools, onnxruntime, 64 sockets); twice that is a leak.
 */
export const SOAK_RSS_BOUND_BYTES = 512 * 2 ** 20;
/** Growth allowed between the end of the first tenth of the run (warm) and the end. */
const RSS_GROWTH_BOUND_BYTES = 64 * 2 ** 20;
const SEED = 7;

interface LevelJson {
  gridCols: number;
  gridRows: number;
}

async function listTileUrls(gateway: GatewayProcess, sample: WsiSample): Promise<string[]> {
  const id = await sampleSlideId(sample);
  const response = await fetch(`${gateway.url}/api/slides/${id}`);
  if (!response.ok) throw new Error(`${sample.id}: the gateway answered ${response.status} for the slide`);
  const { levels } = (await response.json()) as { levels: LevelJson[] };
  const urls: string[] = [];
  levels.forEach((level, index) => {
    for (let row = 0; row < level.gridRows; row++) {
      for (let col = 0; col < level.gridCols; col++) urls.push(`${gateway.url}/api/slides/${id}/tiles/${index}/${col}/${row}.jpg`);
    }
  });
  return urls;
}

/** JPEG's end-of-image marker, allowing the one pad byte a DICOM fragment's even length may add after it. */
function endsWithEoi(data: Buffer): boolean {
  const end = data.at(-1) === 0 ? data.length - 1 : data.length;
  return data[end - 2] === 0xff && data[end - 1] === 0xd9;
}

async function bytesOnDisk(sample: WsiSample): Promise<number> {
  const sizes = await Promise.all(sample.paths.map(async (p) => (await stat(p)).size));
  return sizes.reduce((a, b) => a + b, 0);
}

async function readCacheBytes(gateway: GatewayProcess): Promise<{ bytes: number; hitRatio: number }> {
  const text = await (await fetch(`${gateway.url}/metrics`)).text();
  return { bytes: sumMetric(text, 'wsi_gateway_tile_cache_bytes'), hitRatio: sumMetric(text, 'wsi_gateway_tile_cache_hit_ratio') };
}

export const runSoak: Scenario = async (context) => {
  const started = performance.now();
  const total = context.scale === 'full' ? 100_000 : 6_000;
  const failures: string[] = [];
  const samples = [wsiSamples.cmu1T256Q90, wsiSamples.cmu1T256J2k];
  const gateway = await startGatewayProcess({
    env: { DICOMWEB_URL: context.dicomwebUrl, TILE_CACHE_BYTES: String(CACHE_BYTES), EMBED_DIR: path.join(context.workDir, 'embeddings') },
    logFile: path.join(context.workDir, 'gateway.log'),
  });
  const agent = new Agent({ connections: CONCURRENCY, keepAliveTimeout: 30_000 });
  let peakRss = 0;
  let warmRss = 0;
  let endRss: number;
  let peakCacheBytes = 0;
  let hitRatio = NaN;
  let sampler: NodeJS.Timeout | undefined;
  const latenciesMs: number[] = [];
  const byStatus = new Map<string, number>();
  let loadSeconds: number;
  try {
    const slideUrls = await Promise.all(samples.map((s) => listTileUrls(gateway, s)));
    const urls = slideUrls.flat();
    const slideBytes = await Promise.all(samples.map(bytesOnDisk));
    context.log(`soak: ${formatCount(total)} requests over ${urls.length} tiles of 2 slides, ${CONCURRENCY} connections, cache ${formatMiB(CACHE_BYTES)}`);

    const sampleMemory = async () => {
      const memory = await readProcessMemory(gateway.pid);
      if (memory) peakRss = Math.max(peakRss, memory.peakRssBytes);
      const cache = await readCacheBytes(gateway).catch(() => undefined);
      if (cache) {
        peakCacheBytes = Math.max(peakCacheBytes, cache.bytes);
        hitRatio = cache.hitRatio;
      }
      return memory;
    };
    sampler = setInterval(() => void sampleMemory(), 250);

    const random = mulberry32(SEED);
    const digests = new Map<string, string>();
    let next = 0;
    let done = 0;
    const note = (key: string) => byStatus.set(key, (byStatus.get(key) ?? 0) + 1);
    const slot = async () => {
      for (let i = next++; i < total; i = next++) {
        const url = urls[Math.floor(random() * urls.length)]!;
        const sent = performance.now();
        try {
          const { statusCode, headers, body } = await request(url, { dispatcher: agent });
          const data = Buffer.from(await body.arrayBuffer());
          latenciesMs.push(performance.now() - sent);
          note(String(statusCode));
          const isJpeg = headers['content-type'] === 'image/jpeg' && data[0] === 0xff && data[1] === 0xd8 && endsWithEoi(data);
          if (statusCode !== 200 || !isJpeg) {
            if (failures.length < 10) failures.push(`${url.slice(gateway.url.length)}: ${statusCode} ${String(headers['content-type'])}`);
            continue;
          }
          const digest = createHash('sha1').update(data).digest('hex');
          const seen = digests.get(url);
          if (seen === undefined) digests.set(url, digest);
          else if (seen !== digest && failures.length < 10) failures.push(`${url.slice(gateway.url.length)}: the tile's bytes changed between answers`);
        } catch (error) {
          note('error');
          if (failures.length < 10) failures.push(`${url.slice(gateway.url.length)}: ${(error as Error).message}`);
        }
        if (++done === Math.round(total / 10)) warmRss = (await sampleMemory())?.rssBytes ?? 0;
        if (done % 20_000 === 0) context.log(`soak: ${formatCount(done)} of ${formatCount(total)}`);
      }
    };
    const loadStarted = performance.now();
    await Promise.all(Array.from({ length: CONCURRENCY }, slot));
    loadSeconds = (performance.now() - loadStarted) / 1000;
    clearInterval(sampler);
    endRss = (await sampleMemory())?.rssBytes ?? 0;

    const errors = [...byStatus].filter(([status]) => status !== '200').reduce((sum, [, n]) => sum + n, 0);
    if (errors > 0) failures.unshift(`${errors} of ${total} requests failed`);
    if (gateway.child.exitCode !== null || gateway.child.signalCode !== null) failures.push('the gateway process died');
    if (!(peakCacheBytes > 0)) failures.push('the cache gauge never reported any bytes: the check measured nothing');
    if (peakCacheBytes > CACHE_BYTES) failures.push(`the cache held ${peakCacheBytes} bytes, over its limit of ${CACHE_BYTES}`);
    if (!(slideBytes.every((b) => b > CACHE_BYTES))) failures.push('a slide fits in the cache: the soak would not evict');
    if (peakRss > SOAK_RSS_BOUND_BYTES) failures.push(`peak resident memory ${formatMiB(peakRss)} is over the bound of ${formatMiB(SOAK_RSS_BOUND_BYTES)}`);
    if (endRss - warmRss > RSS_GROWTH_BOUND_BYTES) failures.push(`resident memory grew by ${formatMiB(endRss - warmRss)} after warm-up: a leak?`);

    latenciesMs.sort((a, b) => a - b);
    return {
      title: 'Soak: tiles through a cache smaller than the slides',
      summary:
        `${formatCount(total)} tile requests at ${CONCURRENCY} concurrent connections, each for a tile drawn at random from every level of two slides ` +
        `(CMU-1 as JPEG, passed through, and as JPEG 2000, transcoded; ${slideBytes.map(formatMiB).join(' and ')} stored) through a ${formatMiB(CACHE_BYTES)} tile cache, ` +
        'against a real Orthanc. The gateway is its own process; its memory is read from /proc every 250 ms and its cache gauge from /metrics.',
      figures: [
        { label: 'Requests served', value: formatCount(total) },
        { label: 'Answers', value: [...byStatus].map(([s, n]) => `${s}: ${formatCount(n)}`).join(', ') },
        { label: 'Distinct tiles asked for', value: formatCount(digests.size) },
        { label: 'Throughput', value: `${formatCount(total / loadSeconds)} tiles/s` },
        { label: 'Latency p50 / p99 / max', value: `${percentile(latenciesMs, 50).toFixed(1)} / ${percentile(latenciesMs, 99).toFixed(1)} / ${latenciesMs.at(-1)?.toFixed(1)} ms` },
        { label: 'Tile cache limit / largest seen', value: `${formatMiB(CACHE_BYTES)} / ${formatMiB(peakCacheBytes)}` },
        { label: 'Cache hit ratio', value: hitRatio.toFixed(2) },
        { label: 'Resident memory warm / end / peak (bound)', value: `${formatMiB(warmRss)} / ${formatMiB(endRss)} / ${formatMiB(peakRss)} (${formatMiB(SOAK_RSS_BOUND_BYTES)})` },
      ],
      failures,
      peakRssBytes: peakRss,
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    clearInterval(sampler);
    await agent.close();
    await gateway.stop();
  }
};
