/**
 * /metrics against the real Orthanc: after listing slides, fetching tiles twice and one embedding job
 * with the built-in model, the scrape shows each counter moved by what was done, and a second gateway in
 * the same process counts only its own work.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { SlideDescriptor } from '../viewer/src/api.js';
import { runJob } from './support/embeddings.js';
import { createTestGateway, readJson, type TestGateway } from './support/gateway.js';
import { describeWithOrthanc } from './support/skip.js';
import { sampleSlideId, wsiSamples } from './support/wsi-data.js';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of a Prometheus text exposition (no escapes in our label values). */
function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) continue;
    const labels = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

/** Sum of the samples named `name` whose labels include `labels`; undefined when none matches. */
function total(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const matching = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return matching.length === 0 ? undefined : matching.reduce((sum, s) => sum + s.value, 0);
}

async function scrape(gateway: TestGateway): Promise<Sample[]> {
  const response = await gateway.get('/metrics');
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
  return parseExposition(await response.text());
}

const TILE_ROUTE = '/api/slides/:study/:series/tiles/:level/:col/:row';

describeWithOrthanc('Prometheus metrics against Orthanc', ({ dicomwebUrl }) => {
  let gateway: TestGateway;
  let embedDir: string;
  let cmu1: string;

  beforeAll(async () => {
    embedDir = await mkdtemp(join(tmpdir(), 'metrics-'));
    gateway = createTestGateway({ DICOMWEB_URL: dicomwebUrl, EMBED_DIR: embedDir, EMBED_FRAMES_PER_REQUEST: '16' });
    cmu1 = await sampleSlideId(wsiSamples.cmu1T256Q90);
  });
  afterAll(async () => {
    await gateway.close();
    await rm(embedDir, { recursive: true, force: true });
  });

  it('counts requests by route pattern, tile cache hits, PACS requests, embedded patches and jobs by state', async () => {
    const before = await scrape(gateway);
    expect(total(before, 'wsi_gateway_http_requests_total', { route: TILE_ROUTE })).toBeUndefined();
    expect(total(before, 'wsi_gateway_tile_cache_hits_total')).toBe(0);
    expect(total(before, 'wsi_gateway_jobs', { state: 'done' })).toBe(0);

    expect((await gateway.get('/api/slides')).status).toBe(200);
    const slide = await readJson<SlideDescriptor>(await gateway.get(`/api/slides/${cmu1}`));
    const level = slide.levels[0]!;
    const tiles = [
      [0, 0],
      [1, 0],
      [level.gridCols - 1, level.gridRows - 1],
    ] as const;
    for (let pass = 0; pass < 2; pass++) {
      for (const [col, row] of tiles) expect((await gateway.get(`/api/slides/${cmu1}/tiles/0/${col}/${row}.jpg`)).status).toBe(200);
    }
    const { job } = await runJob(gateway, cmu1, { model: 'stain-texture' });
    expect(job.state, JSON.stringify(job.error)).toBe('done');
    expect(job.progress.embedded).toBeGreaterThan(0);

    const after = await scrape(gateway);
    // Route patterns, never URLs with UIDs in them.
    expect(total(after, 'wsi_gateway_http_requests_total', { route: TILE_ROUTE, method: 'GET', status: '200' })).toBe(2 * tiles.length);
    expect(total(after, 'wsi_gateway_http_request_duration_seconds_count', { route: TILE_ROUTE })).toBe(2 * tiles.length);
    expect(total(after, 'wsi_gateway_http_requests_total', { route: '/api/slides' })).toBe(1);
    expect(after.filter((s) => s.name === 'wsi_gateway_http_requests_total' && s.labels['route']!.includes(slide.seriesUid))).toEqual([]);

    // The second pass is served from memory: at least one hit per repeated tile, on top of the first pass.
    const hits = total(after, 'wsi_gateway_tile_cache_hits_total')!;
    const misses = total(after, 'wsi_gateway_tile_cache_misses_total')!;
    expect(hits).toBeGreaterThanOrEqual(tiles.length);
    expect(misses).toBeGreaterThan(0);
    expect(total(after, 'wsi_gateway_tile_cache_hit_ratio')).toBeCloseTo(hits / (hits + misses), 6);
    expect(total(after, 'wsi_gateway_tile_cache_bytes')).toBeGreaterThan(0);
    expect(total(after, 'wsi_gateway_tile_cache_entries')).toBeGreaterThanOrEqual(tiles.length);

    // The series list, the slide's metadata and frames all went to the PACS, and all succeeded.
    expect(total(after, 'wsi_gateway_pacs_requests_total', { operation: 'series_search', outcome: 'ok' })).toBeGreaterThanOrEqual(1);
    expect(total(after, 'wsi_gateway_pacs_requests_total', { operation: 'series_metadata', outcome: 'ok' })).toBeGreaterThanOrEqual(1);
    expect(total(after, 'wsi_gateway_pacs_request_duration_seconds_count', { operation: 'frames' })).toBeGreaterThan(0);
    expect(total(after, 'wsi_gateway_pacs_requests_total', { outcome: 'error' }) ?? 0).toBe(0);
    expect(total(after, 'wsi_gateway_pacs_request_duration_seconds_count')).toBe(total(after, 'wsi_gateway_pacs_requests_total'));

    expect(total(after, 'wsi_gateway_patches_embedded_total')).toBe(job.progress.embedded);
    expect(total(after, 'wsi_gateway_patches_skipped_total')).toBe(job.progress.skipped);
    expect(total(after, 'wsi_gateway_jobs', { state: 'done' })).toBe(1);
    expect(total(after, 'wsi_gateway_jobs', { state: 'running' })).toBe(0);
    expect(total(after, 'wsi_gateway_embedding_patches_per_second')).toBe(0);
    expect(total(after, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);

    // The same job again finds the complete run: no patch is counted twice.
    const { job: again } = await runJob(gateway, cmu1, { model: 'stain-texture' });
    expect(again.state).toBe('done');
    const last = await scrape(gateway);
    expect(total(last, 'wsi_gateway_patches_embedded_total')).toBe(job.progress.embedded);
    expect(total(last, 'wsi_gateway_jobs', { state: 'done' })).toBe(2);

    // Clusters are timed.
    expect((await gateway.get(`/api/slides/${cmu1}/clusters?model=stain-texture&k=4`)).status).toBe(200);
    expect(total(await scrape(gateway), 'wsi_gateway_kmeans_duration_seconds_count')).toBe(1);
  });

  it('keeps each gateway\'s counts apart in one process', async () => {
    const other = createTestGateway({ DICOMWEB_URL: dicomwebUrl, EMBED_DIR: embedDir });
    try {
      const samples = await scrape(other);
      expect(total(samples, 'wsi_gateway_http_requests_total', { route: TILE_ROUTE })).toBeUndefined();
      expect(total(samples, 'wsi_gateway_patches_embedded_total')).toBe(0);
      expect(total(samples, 'wsi_gateway_pacs_requests_total')).toBeUndefined();
    } finally {
      await other.close();
    }
  });
});
