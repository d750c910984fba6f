/** The gateway's HTTP API as the viewer sees it: typed answers, and errors that carry the gateway's code. */

export interface SlideSummary {
  id: string;
  studyUid: string;
  seriesUid: string;
  studyDescription: string | null;
  seriesDescription: string | null;
  studyDate: string | null;
  /** Present only when the operator turned patient data on (GATEWAY_SHOW_PATIENT_DATA). */
  patientName?: string | null;
  patientId?: string | null;
  widthPx?: number;
  heightPx?: number;
  mpp?: { x: number; y: number } | null;
  levelCount?: number;
  hasLabel?: boolean;
  hasOverview?: boolean;
  /** Set when the series could not be read as a slide. */
  error?: { code: string; message: string };
}

export interface SlideList {
  total: number;
  offset: number;
  limit: number;
  query: string;
  slides: SlideSummary[];
}

export interface LevelDescriptor {
  index: number;
  widthPx: number;
  heightPx: number;
  tileWidthPx: number;
  tileHeightPx: number;
  gridCols: number;
  gridRows: number;
  downsample: number;
  mppX: number | null;
  mppY: number | null;
  tileCount: number;
  sparse: boolean;
  /** Sparse levels only: base64 bitset of the tiles that exist, row-major, least significant bit first. */
  tileMap: string | null;
}

export interface SlideDescriptor extends SlideSummary {
  widthPx: number;
  heightPx: number;
  levels: LevelDescriptor[];
  label: { widthPx: number; heightPx: number } | null;
  overview: { widthPx: number; heightPx: number } | null;
  notes: string[];
}

/** A failed API call: `status` 0 means the gateway could not be reached at all. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }

  /** What to tell the user, naming who failed: the gateway, or the PACS behind it. */
  describe(): string {
    if (this.status === 0) return `The gateway cannot be reached (${this.message}).`;
    if (this.status === 502 || this.status === 504) return `The PACS failed: ${this.message} (${this.status} ${this.code}).`;
    return `${this.message} (${this.status} ${this.code}).`;
  }
}

/**
 * Dispatched on `window` when the gateway wants a token (GATEWAY_AUTH=token): sign-in.ts shows its form.
 * Not sent for a trusted-header gateway (no `WWW-Authenticate: Bearer`): a token would not help there.
 */
export const AUTH_REQUIRED_EVENT = 'wsigw:auth-required';

/** Reads an error answer ({error: {code, message}}) or makes one up from the status line. */
export async function readApiError(response: Response): Promise<ApiError> {
  try {
    const body = (await response.json()) as { error?: { code?: string; message?: string } };
    if (response.status === 401 && body.error?.code === 'AUTH_REQUIRED' && /^Bearer/i.test(response.headers.get('www-authenticate') ?? '')) {
      // Through globalThis, typed by hand: this module is also compiled, and unit-tested, without the DOM.
      (globalThis as { dispatchEvent?: (event: Event) => boolean }).dispatchEvent?.(new Event(AUTH_REQUIRED_EVENT));
    }
    if (body.error?.code) return new ApiError(response.status, body.error.code, body.error.message ?? response.statusText);
  } catch {
    // not JSON: fall through
  }
  return new ApiError(response.status, `HTTP_${response.status}`, response.statusText || 'request failed');
}

export async function getJson<T>(url: string, signal?: AbortSignal): Promise<T> {
  let response: Response;
  try {
    response = await fetch(url, { signal, headers: { accept: 'application/json' } });
  } catch (error) {
    if (signal?.aborted) throw error;
    throw new ApiError(0, 'NETWORK', error instanceof Error ? error.message : String(error));
  }
  if (!response.ok) throw await readApiError(response);
  return (await response.json()) as T;
}

/** URL of a slide's API resources, with each UID encoded. */
export function slideUrl(slideId: string, rest = ''): string {
  const [study, series] = slideId.split('/');
  return `/api/slides/${encodeURIComponent(study ?? '')}/${encodeURIComponent(series ?? '')}${rest}`;
}

export const listSlides = (params: { offset: number; limit: number; query: string }, signal?: AbortSignal) =>
  getJson<SlideList>(`/api/slides?offset=${params.offset}&limit=${params.limit}&q=${encodeURIComponent(params.query)}`, signal);

export const getSlide = (slideId: string, signal?: AbortSignal) => getJson<SlideDescriptor>(slideUrl(slideId), signal);

// --- Embeddings, jobs, clusters and similarity -------------------------------------------------

export interface ModelInfo {
  id: string;
  name: string;
  description?: string;
  dim: number;
  patchSizePx: number;
  recommendedMpp?: number[];
  available: boolean;
}

export interface RunSummary {
  key: { studyUid: string; seriesUid: string; modelId: string; runId: string };
  status: 'complete' | 'in-progress';
  manifest?: { rows: number; finishedAt: string };
}

export interface JobInfo {
  id: string;
  state: 'queued' | 'running' | 'done' | 'failed' | 'cancelled';
  progress: { done: number; total: number; embedded: number; skipped: number; ratePerSecond: number; etaSeconds?: number };
  notes: string[];
  error?: { code: string; message: string };
  result?: { runId: string };
}

export interface ClusterInfo {
  index: number;
  name: string;
  colour: string;
  count: number;
  representative: { row: number; xPx: number; yPx: number; image: string };
}

export interface ClusterAnswer {
  model: string;
  runId: string;
  k: number;
  seed: number;
  rows: number;
  patch: { widthPx: number; heightPx: number };
  iterations: number;
  computeMs: number;
  clusters: ClusterInfo[];
  /** base64, one byte per patch. */
  labels: string;
  links: { coords: string; overlay: string; geojson: string; geojsonMerged: string; csv: string };
}

export interface SimilarPatch {
  studyUid: string;
  seriesUid: string;
  xPx: number;
  yPx: number;
  widthPx: number;
  heightPx: number;
  score: number;
  image: string;
}

export interface SimilarityAnswer {
  model: string;
  runId: string;
  rows: number;
  patch: { widthPx: number; heightPx: number };
  query: { row: number; xPx: number; yPx: number; image: string };
  /** base64 float32 per patch. */
  scores: string;
  min: number;
  max: number;
  matches: SimilarPatch[];
  links: { coords: string };
}

export const listModels = () => getJson<{ models: ModelInfo[] }>('/api/models');
export const listRuns = (slideId: string) => getJson<{ runs: RunSummary[] }>(slideUrl(slideId, '/embeddings'));

export async function startEmbedding(slideId: string, model: string): Promise<JobInfo> {
  let response: Response;
  try {
    response = await fetch(slideUrl(slideId, '/embeddings'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model }) });
  } catch (error) {
    throw new ApiError(0, 'NETWORK', error instanceof Error ? error.message : String(error));
  }
  if (!response.ok) throw await readApiError(response);
  return (await response.json()) as JobInfo;
}

export const getClusters = (slideId: string, params: { model: string; k: number }, signal?: AbortSignal) =>
  getJson<ClusterAnswer>(slideUrl(slideId, `/clusters?model=${encodeURIComponent(params.model)}&k=${params.k}`), signal);

export const getSimilarity = (slideId: string, params: { model: string; runId: string; xPx: number; yPx: number; across: number }, signal?: AbortSignal) =>
  getJson<SimilarityAnswer>(
    slideUrl(slideId, `/similarity?model=${encodeURIComponent(params.model)}&run=${encodeURIComponent(params.runId)}&x=${Math.floor(params.xPx)}&y=${Math.floor(params.yPx)}&across=${params.across}`),
    signal,
  );

/** A run's coords.npy: level-0 x, y per patch (int32, little-endian, C order). */
export async function getCoords(url: string, signal?: AbortSignal): Promise<Int32Array> {
  const response = await fetch(url, { signal });
  if (!response.ok) throw await readApiError(response);
  return parseNpyInt32(await response.arrayBuffer());
}

/** The .npy format's header (magic, version, length, a Python dict), then the data. */
export function parseNpyInt32(buffer: ArrayBuffer): Int32Array {
  const bytes = new Uint8Array(buffer);
  if (bytes[0] !== 0x93 || String.fromCharCode(...bytes.subarray(1, 6)) !== 'NUMPY') throw new Error('Not a .npy file');
  const view = new DataView(buffer);
  const major = bytes[6]!;
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = (major === 1 ? 10 : 12) + headerLength;
  const header = new TextDecoder().decode(bytes.subarray(major === 1 ? 10 : 12, start));
  if (!header.includes("'descr': '<i4'") || header.includes("'fortran_order': True")) throw new Error(`Expected little-endian int32 in C order, got ${header.trim()}`);
  return new Int32Array(buffer.slice(start));
}

export function decodeBase64(text: string): Uint8Array {
  const binary = atob(text);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}
