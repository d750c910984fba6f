/**
 * Slides by UID: series metadata fetched once, computed into a slide, and kept (a large slide's series
 * metadata is megabytes of JSON; its slide is a few typed arrays). Concurrent first requests share one
 * fetch.
 */
import { LRUCache } from 'lru-cache';
import { isGatewayError } from '../errors.js';
import type { SeriesSummary, SlideSource } from '../source/types.js';
import { computeSlide, NotASlideError, type Slide } from '../wsi/index.js';

export interface SlideCatalogOptions {
  source: SlideSource;
  /** Slides kept in memory. @default 256 */
  maxSlides?: number;
  /** How long a slide is trusted before its metadata is read again, in ms. @default 600000 */
  slideTtlMs?: number;
  /** How long the list of series is trusted before the source is searched again, in ms. @default 30000 */
  seriesTtlMs?: number;
  /** Let the slide-list filter match patient names and IDs (only when the operator shows them). */
  searchPatientData?: boolean;
}

/** One entry of the slide list. */
export interface SlideListEntry {
  summary: SeriesSummary;
  slide?: Slide;
  /** Set when the series looked like a slide but could not be read as one. */
  error?: { code: string; message: string };
}

export interface ListSlidesOptions {
  offset: number;
  limit: number;
  query?: string;
  signal?: AbortSignal;
}

export interface SlideList {
  total: number;
  entries: SlideListEntry[];
}

/** Series read per QIDO request, and the most the list holds (a bound on memory, not a real limit). */
const SERIES_PAGE = 1000;
const MAX_SERIES = 200_000;

/** Lower-case text a slide-list filter searches. */
function searchableText(s: SeriesSummary, withPatientData: boolean): string {
  const fields = [s.studyDescription, s.seriesDescription, s.studyDate, s.studyUid, s.seriesUid];
  if (withPatientData) fields.push(s.patientName, s.patientId);
  return fields.filter(Boolean).join('\n').toLowerCase();
}

/**
 * `promise`, or the signal's reason as soon as it aborts (the shared work itself goes on for others).
 * The listener goes once the promise settles: a slide list adds one per slide to the same request's
 * signal, and they piled up past Node's leak warning (found by the fuzz, issue 7).
 */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  return Promise.race([promise, aborted]).finally(() => signal.removeEventListener('abort', onAbort!));
}

export function createSlideCatalog({ source, maxSlides = 256, slideTtlMs = 600_000, seriesTtlMs = 30_000, searchPatientData = false }: SlideCatalogOptions) {
  const slides = new LRUCache<string, Slide>({ max: maxSlides, ttl: slideTtlMs });
  const loading = new Map<string, Promise<Slide>>();

  function getSlide(studyUid: string, seriesUid: string, signal?: AbortSignal): Promise<Slide> {
    const key = `${studyUid}/${seriesUid}`;
    const cached = slides.get(key);
    if (cached) return Promise.resolve(cached);
    let promise = loading.get(key);
    if (!promise) {
      // Not tied to the first caller's signal: others may be waiting on the same load.
      promise = source
        .readSeries(studyUid, seriesUid)
        .then((instances) => {
          const slide = computeSlide(studyUid, seriesUid, instances);
          slides.set(key, slide);
          return slide;
        })
        .finally(() => loading.delete(key));
      loading.set(key, promise);
    }
    return abortable(promise, signal);
  }

  /**
   * Every SM series of the source, read in pages of SERIES_PAGE and kept for seriesTtlMs so that
   * filtering and paging through thousands of slides costs one QIDO pass, not one per keystroke.
   */
  /** Series found not to be slides (a bound on memory, like the slide cache). */
  const notSlides = new LRUCache<string, true>({ max: 10_000 });
  let seriesList: { at: number; promise: Promise<SeriesSummary[]> } | undefined;
  function allSeries(): Promise<SeriesSummary[]> {
    if (seriesList && performance.now() - seriesList.at < seriesTtlMs) return seriesList.promise;
    const promise = (async () => {
      const all: SeriesSummary[] = [];
      for (let offset = 0; ; offset += SERIES_PAGE) {
        const page = await source.listSeries({ offset, limit: SERIES_PAGE });
        all.push(...page);
        if (page.length < SERIES_PAGE || all.length >= MAX_SERIES) return all;
      }
    })();
    seriesList = { at: performance.now(), promise };
    promise.catch(() => (seriesList = undefined)); // a failed read is not cached
    return promise;
  }

  /**
   * A page of the series matching `query` (case-insensitive words, all of which must appear in the
   * descriptions, date or UIDs, and in the patient name/ID only when those are shown), each with its
   * slide or the reason it has none. Offsets count series. A series that turns out not to be a slide
   * (labels only) is left out of its page and, from then on, out of `total`; so `total` is exact for
   * what has been paged through and otherwise an upper bound.
   */
  async function listSlides({ offset, limit, query = '', signal }: ListSlidesOptions): Promise<SlideList> {
    const words = query.toLowerCase().split(/\s+/).filter(Boolean);
    const matching = (await abortable(allSeries(), signal)).filter((summary) => {
      if (words.length === 0) return true;
      const text = searchableText(summary, searchPatientData);
      return words.every((w) => text.includes(w));
    });
    const summaries = matching.slice(offset, offset + limit);
    const entries: Array<SlideListEntry | undefined> = new Array(summaries.length);
    const queue = summaries.map((summary, i) => ({ summary, i }));
    const worker = async (): Promise<void> => {
      for (let next = queue.shift(); next; next = queue.shift()) {
        try {
          entries[next.i] = { summary: next.summary, slide: await getSlide(next.summary.studyUid, next.summary.seriesUid, signal) };
        } catch (error) {
          // A series of labels only, or of something else stored as SM, is not a slide: leave it out.
          if (error instanceof NotASlideError) {
            notSlides.set(`${next.summary.studyUid}/${next.summary.seriesUid}`, true);
            continue;
          }
          if (!isGatewayError(error)) throw error;
          entries[next.i] = { summary: next.summary, error: { code: error.code, message: error.message } };
        }
      }
    };
    await Promise.all(Array.from({ length: 4 }, worker));
    const knownNotSlides = matching.reduce((n, s) => n + (notSlides.has(`${s.studyUid}/${s.seriesUid}`) ? 1 : 0), 0);
    return { total: matching.length - knownNotSlides, entries: entries.filter((e): e is SlideListEntry => e !== undefined) };
  }

  return {
    /** The slide if it is in memory, without any I/O. */
    peekSlide: (studyUid: string, seriesUid: string): Slide | undefined => slides.get(`${studyUid}/${seriesUid}`),
    getSlide,
    listSlides,
    clear: () => {
      slides.clear();
      seriesList = undefined;
      notSlides.clear();
    },
  };
}

export type SlideCatalog = ReturnType<typeof createSlideCatalog>;
