/**
 * Embedding tests' tools: generated tiny models, jobs followed over SSE, stored runs downloaded and
 * parsed, and patches cut out independently of the pipeline (from the gateway's own tile route,
 * stitched here with plain loops) and run through onnxruntime directly.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { expect } from 'vitest';
import { writeGeneratedModels } from '../../src/embed/generate/index.js';
import { parseNpyHeader } from '../../src/embed/store/index.js';
import type { Job } from '../../src/embed/jobs/job-queue.js';
import { decodeWithSharp, type Pixels } from './reference.js';
import { readJson, type TestGateway } from './gateway.js';

/** A folder with the tiny generated models (test-vit-tiny, test-bit-tiny) and their manifests. */
export async function writeTinyModels(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'models-'));
  await writeGeneratedModels(dir, ['vit-tiny', 'bit-tiny']);
  return dir;
}

export async function postJob(gateway: TestGateway, slideId: string, body: unknown): Promise<Response> {
  return gateway.app.request(`/api/slides/${slideId}/embeddings`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
}

/** Follows a job's SSE stream to its end; returns every event in order. */
export async function followJob(gateway: TestGateway, jobId: string): Promise<Array<{ event: string; job: Job }>> {
  const response = await gateway.get(`/api/jobs/${jobId}/events`);
  expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
  const events: Array<{ event: string; job: Job }> = [];
  const decoder = new TextDecoder();
  let text = '';
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    text += decoder.decode(chunk, { stream: true });
    let end: number;
    while ((end = text.indexOf('\n\n')) >= 0) {
      const block = text.slice(0, end);
      text = text.slice(end + 2);
      const event = /^event: (.*)$/m.exec(block)?.[1];
      const data = /^data: (.*)$/m.exec(block)?.[1];
      if (event && data) events.push({ event, job: JSON.parse(data) as Job });
    }
  }
  return events;
}

/** Submits a job and waits for its end over SSE. */
export async function runJob(gateway: TestGateway, slideId: string, body: unknown): Promise<{ job: Job; events: Array<{ event: string; job: Job }> }> {
  const response = await postJob(gateway, slideId, body);
  expect(response.status, await response.clone().text()).toBe(202);
  const { id } = await readJson<Job>(response);
  const events = await followJob(gateway, id);
  return { job: events.at(-1)!.job, events };
}

export interface StoredRun {
  manifest: Record<string, unknown> & { rows: number; dim: number; grid: { patchSizeLevel0Px: number; cols: number; rows: number; count: number; levelIndex: number; readSizeLevelPx: number; strideLevelPx: number; scale: number } };
  embeddings: Float32Array;
  coords: Int32Array;
  embeddingsBytes: Buffer;
  coordsBytes: Buffer;
}

async function download(gateway: TestGateway, path: string): Promise<Buffer> {
  const response = await gateway.get(path);
  expect(response.status, path).toBe(200);
  return Buffer.from(await response.arrayBuffer());
}

function npyData(bytes: Buffer): { shape: number[]; offset: number } {
  const header = parseNpyHeader(bytes);
  return { shape: header.shape, offset: header.dataOffset };
}

/** A complete run's files, downloaded through the routes and parsed. */
export async function downloadRun(gateway: TestGateway, slideId: string, model: string, runId: string): Promise<StoredRun> {
  const base = `/api/slides/${slideId}/embeddings/${model}/${runId}`;
  const manifest = JSON.parse((await download(gateway, `${base}/manifest.json`)).toString('utf8')) as StoredRun['manifest'];
  const embeddingsBytes = await download(gateway, `${base}/embeddings.npy`);
  const coordsBytes = await download(gateway, `${base}/coords.npy`);
  const e = npyData(embeddingsBytes);
  const c = npyData(coordsBytes);
  expect(e.shape).toEqual([manifest.rows, manifest.dim]);
  expect(c.shape).toEqual([manifest.rows, 2]);
  const embeddings = new Float32Array(embeddingsBytes.buffer.slice(embeddingsBytes.byteOffset + e.offset, embeddingsBytes.byteOffset + embeddingsBytes.length));
  const coords = new Int32Array(coordsBytes.buffer.slice(coordsBytes.byteOffset + c.offset, coordsBytes.byteOffset + coordsBytes.length));
  return { manifest, embeddings, coords, embeddingsBytes, coordsBytes };
}

/**
 * A rectangle of a level, in level px, stitched from the gateway's JPEG tiles (as stored in the PACS)
 * decoded by sharp: nothing of the embedding pipeline is used.
 */
export async function cutFromTiles(gateway: TestGateway, slideId: string, level: { index: number; tileWidthPx: number; tileHeightPx: number }, xPx: number, yPx: number, sizePx: number): Promise<Pixels> {
  const out = Buffer.alloc(sizePx * sizePx * 3);
  for (let row = Math.floor(yPx / level.tileHeightPx); row * level.tileHeightPx < yPx + sizePx; row++) {
    for (let col = Math.floor(xPx / level.tileWidthPx); col * level.tileWidthPx < xPx + sizePx; col++) {
      const tile = await decodeWithSharp(await download(gateway, `/api/slides/${slideId}/tiles/${level.index}/${col}/${row}.jpg`));
      for (let y = 0; y < sizePx; y++) {
        for (let x = 0; x < sizePx; x++) {
          const tx = xPx + x - col * level.tileWidthPx;
          const ty = yPx + y - row * level.tileHeightPx;
          if (tx < 0 || ty < 0 || tx >= level.tileWidthPx || ty >= level.tileHeightPx) continue;
          tile.data.copy(out, (y * sizePx + x) * 3, (ty * tile.widthPx + tx) * 3, (ty * tile.widthPx + tx) * 3 + 3);
        }
      }
    }
  }
  return { data: out, widthPx: sizePx, heightPx: sizePx };
}

/** The generated tiny ViT run on one patch by onnxruntime directly: NHWC float in [0, 1], output_0. */
export async function runOnnxDirectly(modelFile: string, patch: Pixels): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(modelFile);
  try {
    const input = Float32Array.from(patch.data, (v) => v / 255);
    const result = await session.run({ input: new ort.Tensor('float32', input, [1, patch.heightPx, patch.widthPx, 3]) });
    return result['output_0']!.data as Float32Array;
  } finally {
    await session.release();
  }
}
