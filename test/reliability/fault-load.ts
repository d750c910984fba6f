/**
 * The load side of the faults scenario: which tiles to ask for, firing requests at a bounded
 * concurrency, checking each answer against what a fault-free gateway gives, and the sums the report
 * needs. Nothing here knows about faults; faults.ts runs the phases.
 */
import { createHash } from 'node:crypto';
import type { LevelDescriptor, SlideDescriptor, SlideList } from '../../viewer/src/api.js';
import { mulberry32 } from '../../src/embed/generate/graph.js';

/** One request of the load: a tile (checked byte for byte), a slide descriptor, or the slide list. */
export interface LoadRequest {
  kind: 'tile' | 'slide' | 'list';
  path: string;
}

/** How one request ended. `status` 0: no HTTP answer at all (the gateway died or hung past the bound). */
export interface Outcome {
  phase: string;
  kind: LoadRequest['kind'];
  path: string;
  status: number;
  /** The error code of a JSON error answer. */
  code: string | undefined;
  ms: number;
  /** What was wrong with the answer, when something was. */
  problem: string | undefined;
}

/** What a fault-free gateway answered: tile hashes by path, slide ids. */
export interface Reference {
  tileHashes: Map<string, string>;
  slideIds: string[];
}

export type Get = (path: string, signal: AbortSignal) => Promise<Response>;

export const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

/** Every tile path of a level, row by row. */
function listTilePaths(slideId: string, level: LevelDescriptor): string[] {
  const paths: string[] = [];
  for (let row = 0; row < level.gridRows; row++) {
    for (let col = 0; col < level.gridCols; col++) paths.push(`/api/slides/${slideId}/tiles/${level.index}/${col}/${row}.jpg`);
  }
  return paths;
}

/** Fisher-Yates with the seeded PRNG, so a run asks for the same tiles in the same order. */
export function shuffle<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/**
 * `count` tiles over every slide of a fault-free gateway, taken from each slide in turn so that every
 * slide (and so every transfer syntax) is in the sample, with their reference hashes.
 */
export async function readReference(get: Get, count: number, seed: number): Promise<Reference> {
  const random = mulberry32(seed);
  const signal = () => AbortSignal.timeout(60_000);
  const list = (await (await get('/api/slides?limit=500', signal())).json()) as SlideList;
  const slideIds = list.slides.map((s) => s.id).sort();
  const perSlide: string[][] = [];
  for (const id of slideIds) {
    const slide = (await (await get(`/api/slides/${id}`, signal())).json()) as SlideDescriptor;
    perSlide.push(shuffle(slide.levels.flatMap((level) => listTilePaths(id, level)), random));
  }
  const chosen: string[] = [];
  for (let i = 0; chosen.length < count && perSlide.some((p) => i < p.length); i++) {
    for (const paths of perSlide) if (i < paths.length && chosen.length < count) chosen.push(paths[i]!);
  }
  const tileHashes = new Map<string, string>();
  await runPool(chosen, 4, async (path) => {
    const response = await get(path, signal());
    if (response.status !== 200) throw new Error(`the fault-free gateway answered ${response.status} for ${path}`);
    tileHashes.set(path, sha256(new Uint8Array(await response.arrayBuffer())));
  });
  return { tileHashes, slideIds };
}

/** Runs `work` over `items` with at most `concurrency` at once. */
export async function runPool<T>(items: readonly T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}

/** `count` requests: mostly tiles, with slide descriptors and the slide list mixed in (5 % each). */
export function planRequests(reference: Reference, count: number, random: () => number): LoadRequest[] {
  const tiles = [...reference.tileHashes.keys()];
  return Array.from({ length: count }, (): LoadRequest => {
    const r = random();
    if (r < 0.05) return { kind: 'list', path: '/api/slides' };
    if (r < 0.1) return { kind: 'slide', path: `/api/slides/${reference.slideIds[Math.floor(random() * reference.slideIds.length)]}` };
    return { kind: 'tile', path: tiles[Math.floor(random() * tiles.length)]! };
  });
}

/**
 * Sends one request and checks its answer: 200, 502 or 504 only; errors as `{ error: { code, message } }`;
 * a 200 tile byte-identical to the reference; a 200 list naming exactly the reference's slides.
 */
export async function sendChecked(get: Get, request: LoadRequest, reference: Reference, phase: string, boundMs: number): Promise<Outcome> {
  const started = performance.now();
  const outcome: Outcome = { phase, kind: request.kind, path: request.path, status: 0, code: undefined, ms: 0, problem: undefined };
  try {
    // The client waits past the bound so that a hang shows as a slow answer, not a missing one.
    const response = await get(request.path, AbortSignal.timeout(boundMs + 10_000));
    outcome.status = response.status;
    const body = new Uint8Array(await response.arrayBuffer());
    outcome.ms = performance.now() - started;
    if (response.status === 200) {
      if (request.kind === 'tile' && sha256(body) !== reference.tileHashes.get(request.path)) outcome.problem = 'a 200 tile differs from the fault-free one';
      if (request.kind === 'list') {
        // Every slide is listed; a series whose metadata could not be read is listed with its error
        // (it may be one the fault-free gateway found to hold labels only, and left out).
        const slides = (JSON.parse(Buffer.from(body).toString('utf8')) as SlideList).slides;
        const listed = new Set(slides.map((s) => s.id));
        const missing = reference.slideIds.filter((id) => !listed.has(id));
        const unknown = slides.filter((s) => !reference.slideIds.includes(s.id) && s.error === undefined);
        if (missing.length > 0 || unknown.length > 0) outcome.problem = `a 200 slide list lacks ${missing.length} slides and names ${unknown.length} unknown ones without an error`;
      }
    } else if (response.status === 502 || response.status === 504) {
      const parsed = JSON.parse(Buffer.from(body).toString('utf8')) as { error?: { code?: unknown; message?: unknown } };
      if (typeof parsed.error?.code !== 'string' || typeof parsed.error.message !== 'string' || !response.headers.get('content-type')?.includes('json')) {
        outcome.problem = `a ${response.status} without the JSON error shape`;
      }
      outcome.code = typeof parsed.error?.code === 'string' ? parsed.error.code : undefined;
    } else {
      outcome.problem = `status ${response.status} (only 200, 502 and 504 are allowed)`;
    }
  } catch (error) {
    outcome.ms = performance.now() - started;
    outcome.problem = `no answer: ${(error as Error).message}`;
  }
  if (outcome.ms > boundMs && !outcome.problem) outcome.problem = `answered after ${Math.round(outcome.ms)} ms, past the ${boundMs} ms bound`;
  return outcome;
}

/** Sum of a Prometheus metric over its label sets, from the exposition text. */
export function sumMetric(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name} `) || line.startsWith(`${name}{`)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}
