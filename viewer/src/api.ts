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

/** Reads an error answer ({error: {code, message}}) or makes one up from the status line. */
export async function readApiError(response: Response): Promise<ApiError> {
  try {
    const body = (await response.json()) as { error?: { code?: string; message?: string } };
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
