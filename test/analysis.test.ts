/**
 * Clusters and similarity against the real Orthanc: CMU-1 embedded twice with the built-in model (JPEG
 * and JPEG 2000 copies of one scan), then k-means summaries, overlay PNGs, exports and similarity, with
 * the caller's mistakes answered with 400/404 before anything is computed.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { clusterColour, parseHexColour } from '../src/analysis/palette.js';
import type { ClusterAnswer, SimilarityAnswer, SlideDescriptor } from '../viewer/src/api.js';
import { downloadRun, runJob, type StoredRun } from './support/embeddings.js';
import { createTestGateway, readJson, type TestGateway } from './support/gateway.js';
import { describeWithOrthanc } from './support/skip.js';
import { sampleSlideId, wsiSamples } from './support/wsi-data.js';

describeWithOrthanc('clusters and similarity against Orthanc', ({ dicomwebUrl }) => {
  let gateway: TestGateway;
  let embedDir: string;
  let jpeg: string;
  let j2k: string;
  let run: StoredRun;
  let slide: SlideDescriptor;

  beforeAll(async () => {
    embedDir = await mkdtemp(join(tmpdir(), 'analysis-'));
    gateway = createTestGateway({ DICOMWEB_URL: dicomwebUrl, EMBED_DIR: embedDir });
    [jpeg, j2k] = await Promise.all([sampleSlideId(wsiSamples.cmu1T256Q90), sampleSlideId(wsiSamples.cmu1T256J2k)]);
    for (const id of [jpeg, j2k]) {
      const { job } = await runJob(gateway, id, { model: 'stain-texture' });
      expect(job.state, JSON.stringify(job.error)).toBe('done');
      if (id === jpeg) run = await downloadRun(gateway, id, 'stain-texture', job.result!.runId);
    }
    slide = await readJson<SlideDescriptor>(await gateway.get(`/api/slides/${jpeg}`));
  });
  afterAll(async () => {
    await gateway?.close();
    await rm(embedDir, { recursive: true, force: true });
  });

  const getClusters = async (query: string): Promise<ClusterAnswer> => {
    const response = await gateway.get(`/api/slides/${jpeg}/clusters?${query}`);
    expect(response.status, await response.clone().text()).toBe(200);
    return readJson<ClusterAnswer>(response);
  };
  const labelsOf = (answer: ClusterAnswer) => Buffer.from(answer.labels, 'base64');

  it('clusters the slide: counts add up, every label is a cluster, representatives are members, results are cached', async () => {
    const answer = await getClusters('model=stain-texture&k=4');
    expect(answer).toMatchObject({ model: 'stain-texture', runId: run.manifest.runId, k: 4, seed: 0, rows: run.manifest.rows, patch: { widthPx: 224, heightPx: 224 } });
    const labels = labelsOf(answer);
    expect(labels.length).toBe(run.manifest.rows);
    expect(answer.clusters.map((c) => c.count).reduce((a, b) => a + b, 0)).toBe(run.manifest.rows);
    for (const cluster of answer.clusters) {
      expect(cluster.colour).toBe(clusterColour(cluster.index));
      expect(labels.filter((l) => l === cluster.index).length).toBe(cluster.count);
      expect(labels[cluster.representative.row]).toBe(cluster.index);
      expect([cluster.representative.xPx, cluster.representative.yPx]).toEqual([run.coords[2 * cluster.representative.row], run.coords[2 * cluster.representative.row + 1]]);
    }
    // Tissue and its surroundings differ: more than one cluster is used.
    expect(answer.clusters.filter((c) => c.count > 0).length).toBeGreaterThan(1);
    const again = await getClusters('model=stain-texture&k=4');
    expect(again.labels).toBe(answer.labels);
    expect((again as unknown as { cached: boolean }).cached).toBe(true);
    // The model is optional: the slide's latest run is used.
    expect((await getClusters('k=4')).labels).toBe(answer.labels);
    // PCA first is allowed and gives a valid partition too.
    const pca = await getClusters('model=stain-texture&k=4&pca=8');
    expect(labelsOf(pca).length).toBe(run.manifest.rows);
  });

  it('answers the caller\'s mistakes with 400 and missing embeddings with 404', async () => {
    const cases: Array<[string, number, string]> = [
      ['clusters?k=1', 400, 'INVALID_PARAMETER'],
      ['clusters?k=33', 400, 'INVALID_PARAMETER'],
      ['clusters?k=x', 400, 'INVALID_PARAMETER'],
      ['clusters?model=Bad_Model', 400, 'INVALID_PARAMETER'],
      ['clusters?run=mpp0.5', 400, 'INVALID_PARAMETER'],
      ['clusters?pca=1', 400, 'BAD_PCA'],
      ['clusters?pca=32', 400, 'BAD_PCA'],
      ['clusters?model=test-vit-tiny', 404, 'NO_EMBEDDINGS'],
      ['clusters?model=stain-texture&run=mpp9-s1-t0', 404, 'RUN_NOT_FOUND'],
      ['clusters.geojson?mode=blobs', 400, 'INVALID_PARAMETER'],
      ['clusters.png?k=4&only=4', 400, 'INVALID_PARAMETER'],
      ['similarity?x=1', 400, 'INVALID_PARAMETER'],
      ['similarity?x=0&y=0', 404, 'NO_PATCH_THERE'],
      ['region.jpg?x=0&y=0&width=0&height=10', 400, 'INVALID_PARAMETER'],
      ['region.jpg?x=99999999&y=0&width=10&height=10', 404, 'REGION_OUTSIDE_SLIDE'],
    ];
    for (const [path, status, code] of cases) {
      const response = await gateway.get(`/api/slides/${jpeg}/${path}`);
      expect([path, response.status, (await readJson<{ error: { code: string } }>(response)).error.code]).toEqual([path, status, code]);
    }
    // k larger than the number of patches is the k-means code's to refuse, with a clear code.
    const tooMany = await gateway.get(`/api/slides/${jpeg}/clusters?k=32&model=stain-texture`);
    if (run.manifest.rows < 32) expect((await readJson<{ error: { code: string } }>(tooMany)).error.code).toBe('BAD_K');
  });

  it('draws the overlay PNG: each patch a cell of its cluster colour, transparent elsewhere, aligned to level 0', async () => {
    const answer = await getClusters('model=stain-texture&k=4');
    const labels = labelsOf(answer);
    const level0 = slide.levels[0]!;
    const response = await gateway.get(`/api/slides/${jpeg}/clusters.png?model=stain-texture&k=4&size=1024`);
    expect(response.headers.get('content-type')).toBe('image/png');
    const { data, info } = await sharp(Buffer.from(await response.arrayBuffer())).raw().toBuffer({ resolveWithObject: true });
    expect(Math.max(info.width, info.height)).toBe(1024);
    const scale = info.width / level0.widthPx;
    const pixel = (xPx: number, yPx: number) => {
      const i = (Math.floor(yPx * scale) * info.width + Math.floor(xPx * scale)) * 4;
      return [...data.subarray(i, i + 4)];
    };
    for (let row = 0; row < run.manifest.rows; row += 7) {
      const centre = pixel(run.coords[2 * row]! + 112, run.coords[2 * row + 1]! + 112);
      expect(centre).toEqual([...parseHexColour(clusterColour(labels[row]!)), 255]);
    }
    // The slide's top-left corner is glass: no patch, fully transparent.
    expect(pixel(1, 1)[3]).toBe(0);
    // One cluster alone leaves the others out.
    const only = await sharp(Buffer.from(await (await gateway.get(`/api/slides/${jpeg}/clusters.png?model=stain-texture&k=4&size=1024&only=0`)).arrayBuffer())).raw().toBuffer();
    const other = labels.findIndex((l) => l !== 0);
    const i = (Math.floor((run.coords[2 * other + 1]! + 112) * scale) * info.width + Math.floor((run.coords[2 * other]! + 112) * scale)) * 4;
    expect(only[i + 3]).toBe(0);
  });

  it('exports GeoJSON (per patch and merged) and CSV with the same labels', async () => {
    const answer = await getClusters('model=stain-texture&k=4');
    const labels = labelsOf(answer);
    const patches = await readJson<{ type: string; features: Array<{ geometry: { type: string; coordinates: number[][][] }; properties: { classification: { name: string; color: number[] } } }> }>(
      await gateway.get(`/api/slides/${jpeg}/clusters.geojson?model=stain-texture&k=4&mode=patches`),
    );
    expect(patches.type).toBe('FeatureCollection');
    expect(patches.features.length).toBe(run.manifest.rows);
    const first = patches.features[0]!;
    expect(first.geometry.coordinates[0]).toContainEqual([run.coords[0], run.coords[1]]);
    expect(first.properties.classification).toMatchObject({ name: answer.clusters[labels[0]!]!.name, color: parseHexColour(answer.clusters[labels[0]!]!.colour) });
    const merged = await readJson<{ features: unknown[] }>(await gateway.get(`/api/slides/${jpeg}/clusters.geojson?model=stain-texture&k=4&mode=merged`));
    expect(merged.features.length).toBe(answer.clusters.filter((c) => c.count > 0).length);
    const csv = await (await gateway.get(`/api/slides/${jpeg}/clusters.csv?model=stain-texture&k=4`)).text();
    const lines = csv.trim().split('\n');
    expect(lines[0]).toBe('patch,x_px,y_px,width_px,height_px,cluster,cluster_name');
    expect(lines.length).toBe(run.manifest.rows + 1);
    expect(lines[1]!.split(',').slice(1, 6).map(Number)).toEqual([run.coords[0], run.coords[1], 224, 224, labels[0]]);
  });

  it('similarity: the chosen patch is its own best match, and the same place on the JPEG 2000 copy is the best elsewhere', async () => {
    const row = Math.floor(run.manifest.rows / 2);
    const [x, y] = [run.coords[2 * row]! + 100, run.coords[2 * row + 1]! + 50];
    const response = await gateway.get(`/api/slides/${jpeg}/similarity?model=stain-texture&x=${x}&y=${y}&across=3`);
    expect(response.status, await response.clone().text()).toBe(200);
    const answer = await readJson<SimilarityAnswer>(response);
    expect(answer.query).toMatchObject({ row, xPx: run.coords[2 * row], yPx: run.coords[2 * row + 1] });
    const bytes = Buffer.from(answer.scores, 'base64');
    const scores = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
    expect(scores.length).toBe(run.manifest.rows);
    expect(scores[row]).toBeCloseTo(1, 5);
    expect(Math.max(...scores)).toBe(scores[row]);
    expect(Math.min(...scores)).toBeCloseTo(answer.min, 6);
    const [, j2kSeries] = j2k.split('/');
    expect(answer.matches.length).toBe(3);
    expect(answer.matches[0]).toMatchObject({ seriesUid: j2kSeries, xPx: run.coords[2 * row], yPx: run.coords[2 * row + 1] });
    expect(answer.matches[0]!.score).toBeGreaterThan(0.99);
    const png = await gateway.get(`/api/slides/${jpeg}/similarity.png?model=stain-texture&x=${x}&y=${y}&size=512`);
    expect([png.status, png.headers.get('content-type')]).toEqual([200, 'image/png']);
  });

  it('renders a region of the slide from the best level', async () => {
    const response = await gateway.get(`/api/slides/${jpeg}/region.jpg?x=${run.coords[0]}&y=${run.coords[1]}&width=224&height=224&size=112`);
    expect([response.status, response.headers.get('content-type')]).toEqual([200, 'image/jpeg']);
    const meta = await sharp(Buffer.from(await response.arrayBuffer())).metadata();
    expect([meta.width, meta.height]).toEqual([112, 112]);
  });
});
