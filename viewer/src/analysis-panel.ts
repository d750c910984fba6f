/**
 * The "Clusters" part of the side panel: embed the slide (with live progress) when it has no
 * embeddings, then the k-means map over the tissue with its legend, hover read-out, exports, and a
 * click on a patch for the map of patches like it (on this slide and others).
 */
import OpenSeadragon from 'openseadragon';
import { ApiError, decodeBase64, getClusters, getCoords, getSimilarity, listModels, listRuns, startEmbedding, type ClusterAnswer, type JobInfo, type ModelInfo, type SimilarityAnswer } from './api.js';
import { errorBox, h } from './dom.js';
import { PatchLayer } from './patch-layer.js';
import { clusterPanel, similarityPanel } from './analysis-views.js';
import { computeSimilarityLut, parseHexColour } from '../../src/analysis/palette.js';
import { findPatchAt } from '../../src/analysis/patch-lookup.js';

export type AnalysisMode = 'loading' | 'embed' | 'embedding' | 'clusters' | 'similarity' | 'error';

/** What the page tells scripts about the analysis (the browser tests read it). */
export interface AnalysisState {
  mode: AnalysisMode;
  model: string | undefined;
  runId: string | undefined;
  k: number;
  /** Cluster shown alone, or null for all. */
  isolated: number | null;
  counts: number[];
  patches: number;
  queryRow: number | null;
  busy: boolean;
  message: string | null;
}

export interface AnalysisApi {
  state(): AnalysisState;
  layer: PatchLayer;
  /** The patch under a level-0 pixel: its row, and its cluster or similarity score. */
  patchAt(xPx: number, yPx: number): { row: number; cluster: number | null; score: number | null } | null;
  /** Resolves when nothing is loading. */
  idle(): Promise<void>;
}

const DEFAULT_K = 8;
const ACROSS_SLIDES = 8;
const QUERY_OUTLINE = '#ff00ff';

export function createAnalysisPanel(slideId: string, viewer: OpenSeadragon.Viewer, slideItem: () => OpenSeadragon.TiledImage): { element: HTMLElement; api: AnalysisApi } {
  const layer = new PatchLayer(viewer, slideItem);
  layer.setOpacity(0.5);
  const body = h('div', { class: 'analysis-body' });
  const modelSelect = h('select', { 'aria-label': 'Model' });
  const readout = h('p', { class: 'readout', 'aria-live': 'off' });
  const element = h('section', { class: 'analysis', 'aria-label': 'Clusters' }, h('h2', {}, 'Clusters'), h('label', { class: 'row' }, 'Model ', modelSelect), body, readout);

  const state: AnalysisState = { mode: 'loading', model: undefined, runId: undefined, k: DEFAULT_K, isolated: null, counts: [], patches: 0, queryRow: null, busy: true, message: null };
  let models: ModelInfo[] = [];
  let clusters: ClusterAnswer | undefined;
  let labels: Uint8Array | undefined;
  let similarity: { answer: SimilarityAnswer; scores: Float32Array } | undefined;
  let coords: { url: string; data: Int32Array } | undefined;
  let pending = Promise.resolve();
  let events: EventSource | undefined;
  let request: AbortController | undefined;

  /** Runs one step at a time; the latest step's failure is shown, not thrown. */
  function run(step: (signal: AbortSignal) => Promise<void>): Promise<void> {
    request?.abort();
    const controller = (request = new AbortController());
    state.busy = true;
    pending = pending.then(async () => {
      try {
        await step(controller.signal);
      } catch (error) {
        if (controller.signal.aborted) return;
        state.mode = 'error';
        state.message = error instanceof ApiError ? error.describe() : String(error);
        body.replaceChildren(errorBox(state.message));
      } finally {
        if (request === controller) state.busy = false;
      }
    });
    return pending;
  }

  async function loadCoords(url: string, signal: AbortSignal): Promise<Int32Array> {
    if (coords?.url !== url) coords = { url, data: await getCoords(url, signal) };
    return coords.data;
  }

  function paintClusters(): void {
    if (!clusters || !labels || !coords) return;
    const colours = clusters.clusters.map((c) => parseHexColour(c.colour));
    const rgba = new Uint8ClampedArray(labels.length * 4);
    labels.forEach((label, row) => {
      if (state.isolated !== null && state.isolated !== label) return;
      rgba.set([...colours[label]!, 255], row * 4);
    });
    layer.set({ coordsPx: coords.data, size: clusters.patch, rgba });
  }

  function paintSimilarity(): void {
    if (!similarity || !coords) return;
    const lut = computeSimilarityLut();
    const { answer, scores } = similarity;
    const span = Math.max(1e-6, answer.max - answer.min);
    const rgba = new Uint8ClampedArray(scores.length * 4);
    scores.forEach((score, row) => {
      const i = Math.round(((score - answer.min) / span) * 255) * 3;
      rgba.set([lut[i]!, lut[i + 1]!, lut[i + 2]!, 255], row * 4);
    });
    layer.set({ coordsPx: coords.data, size: answer.patch, rgba }, { row: answer.query.row, colour: QUERY_OUTLINE });
  }

  const showClusters = (k: number) => run((signal) => loadClusters(k, signal));

  async function loadClusters(k: number, signal: AbortSignal): Promise<void> {
      const model = state.model!;
      body.replaceChildren(h('p', { class: 'muted' }, `Clustering with k = ${k}…`));
      const answer = await getClusters(slideId, { model, k }, signal);
      const data = await loadCoords(answer.links.coords, signal);
      if (signal.aborted) return;
      clusters = answer;
      labels = decodeBase64(answer.labels);
      similarity = undefined;
      Object.assign(state, { mode: 'clusters', runId: answer.runId, k, isolated: null, counts: answer.clusters.map((c) => c.count), patches: data.length / 2, queryRow: null, message: null });
      paintClusters();
      body.replaceChildren(
        clusterPanel(answer, slideId, {
          layer,
          onK: (next) => void showClusters(next),
          onIsolate: (index) => {
            state.isolated = state.isolated === index ? null : index;
            paintClusters();
            return state.isolated;
          },
        }),
      );
  }

  const showSimilarity = (xPx: number, yPx: number) =>
    run(async (signal) => {
      if (!state.model || !state.runId) return;
      const answer = await getSimilarity(slideId, { model: state.model, runId: state.runId, xPx, yPx, across: ACROSS_SLIDES }, signal);
      const data = await loadCoords(answer.links.coords, signal);
      if (signal.aborted) return;
      const bytes = decodeBase64(answer.scores);
      similarity = { answer, scores: new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4) };
      Object.assign(state, { mode: 'similarity', queryRow: answer.query.row, patches: data.length / 2, message: null });
      paintSimilarity();
      body.replaceChildren(similarityPanel(answer, { layer, onBack: () => void showClusters(state.k) }));
    });

  function showEmbed(model: ModelInfo): void {
    state.mode = 'embed';
    const button = h('button', { type: 'button', class: 'primary' }, 'Embed this slide');
    button.addEventListener('click', () => void embed(model));
    body.replaceChildren(h('p', { class: 'muted' }, `No embeddings with ${model.name} yet. Embedding cuts the tissue into patches and runs the model on each; progress shows here.`), button);
  }

  const embed = (model: ModelInfo) =>
    run(async (signal) => {
      const job = await startEmbedding(slideId, model.id);
      state.mode = 'embedding';
      const bar = h('progress', { max: 1, value: 0 });
      const text = h('p', { class: 'muted', 'aria-live': 'polite' }, 'Queued…');
      const cancel = h('button', { type: 'button' }, 'Cancel');
      cancel.addEventListener('click', () => void fetch(`/api/jobs/${job.id}`, { method: 'DELETE' }));
      body.replaceChildren(h('p', {}, `Embedding with ${model.name}`), bar, text, cancel);
      await new Promise<void>((resolve, reject) => {
        events?.close();
        events = new EventSource(`/api/jobs/${job.id}/events`);
        const update = (message: MessageEvent<string>): void => {
          const j = JSON.parse(message.data) as JobInfo;
          const { done, total, ratePerSecond, etaSeconds } = j.progress;
          bar.max = Math.max(1, total);
          bar.value = done;
          text.textContent = `${done.toLocaleString()} of ${total.toLocaleString()} patches${ratePerSecond ? ` · ${Math.round(ratePerSecond)}/s` : ''}${etaSeconds !== undefined && j.state === 'running' ? ` · about ${Math.ceil(etaSeconds)} s left` : ''}`;
          if (j.state === 'done') finish(resolve);
          else if (j.state === 'failed' || j.state === 'cancelled') finish(() => reject(new Error(j.error ? `${j.error.message} (${j.error.code})` : `The job was ${j.state}.`)));
        };
        const finish = (then: () => void): void => {
          events?.close();
          events = undefined;
          then();
        };
        signal.addEventListener('abort', () => finish(resolve));
        events.addEventListener('state', update);
        events.addEventListener('progress', update);
      });
      await loadClusters(state.k, signal);
    });

  const chooseModel = (modelId: string) =>
    run(async (signal) => {
      const model = models.find((m) => m.id === modelId);
      if (!model) return;
      state.model = model.id;
      const runs = (await listRuns(slideId)).runs.filter((r) => r.status === 'complete' && r.key.modelId === model.id);
      if (runs.length > 0) await loadClusters(state.k, signal);
      else showEmbed(model);
    });

  void run(async (signal) => {
    const [modelList, runList] = await Promise.all([listModels(), listRuns(slideId)]);
    models = modelList.models.filter((m) => m.available);
    if (models.length === 0) throw new Error('No model is available: see models/README.md.');
    const complete = runList.runs.filter((r) => r.status === 'complete' && models.some((m) => m.id === r.key.modelId));
    const latest = complete.sort((a, b) => (a.manifest?.finishedAt ?? '').localeCompare(b.manifest?.finishedAt ?? '')).at(-1);
    const initial = latest?.key.modelId ?? (models.find((m) => m.id === 'stain-texture') ?? models[0]!).id;
    modelSelect.replaceChildren(...models.map((m) => h('option', { value: m.id, selected: m.id === initial }, m.name)));
    state.model = initial;
    if (latest) await loadClusters(state.k, signal);
    else showEmbed(models.find((m) => m.id === initial)!);
  });
  modelSelect.addEventListener('change', () => void chooseModel(modelSelect.value));

  // Hover: which patch, and its cluster or score. Click (without a drag): patches like this one.
  function patchAt(xPx: number, yPx: number): { row: number; cluster: number | null; score: number | null } | null {
    const size = state.mode === 'similarity' ? similarity?.answer.patch : clusters?.patch;
    if (!coords || !size || (state.mode !== 'clusters' && state.mode !== 'similarity')) return null;
    const row = findPatchAt(coords.data, size, xPx, yPx);
    if (row < 0) return null;
    return { row, cluster: labels && state.mode === 'clusters' ? labels[row]! : null, score: similarity && state.mode === 'similarity' ? similarity.scores[row]! : null };
  }
  const toLevel0 = (clientX: number, clientY: number): OpenSeadragon.Point => {
    const box = viewer.element.getBoundingClientRect();
    return slideItem().viewerElementToImageCoordinates(new OpenSeadragon.Point(clientX - box.left, clientY - box.top));
  };
  viewer.element.addEventListener('pointermove', (event) => {
    const p = toLevel0(event.clientX, event.clientY);
    const hit = patchAt(p.x, p.y);
    if (!hit || !coords) {
      readout.textContent = '';
      return;
    }
    const where = `patch at (${coords.data[2 * hit.row]}, ${coords.data[2 * hit.row + 1]}) px`;
    readout.textContent = hit.cluster !== null ? `Cluster ${hit.cluster + 1} · ${where}` : `Similarity ${hit.score!.toFixed(3)} · ${where}`;
  });
  viewer.addHandler('canvas-click', (event) => {
    const e = event as unknown as { quick: boolean; position: OpenSeadragon.Point };
    if (!e.quick || (state.mode !== 'clusters' && state.mode !== 'similarity')) return;
    const p = slideItem().viewerElementToImageCoordinates(e.position);
    if (patchAt(p.x, p.y)) void showSimilarity(p.x, p.y);
  });

  const api: AnalysisApi = {
    state: () => ({ ...state, counts: [...state.counts] }),
    layer,
    patchAt,
    idle: async () => {
      let seen: Promise<void>;
      do {
        seen = pending;
        await seen;
      } while (seen !== pending);
    },
  };
  return { element, api };
}
