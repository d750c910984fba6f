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
}

/** One entry of the slide list. */
export interface SlideListEntry {
  summary: SeriesSummary;
  slide?: Slide;
  /** Set when the series looked like a slide but could not be read as one. */
  error?: { code: string; message: string };
}

export function createSlideCatalog({ source, maxSlides = 256, slideTtlMs = 600_000 }: SlideCatalogOptions) {
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
    if (!signal) return promise;
    return Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        if (signal.aborted) reject(signal.reason);
        signal.addEventListener('abort', () => reject(signal.reason), { once: true });
      }),
    ]);
  }

  /** A page of the source's SM series, each with its slide (read a few at a time) or the reason it has none. */
  async function listSlides(offset: number, limit: number, signal?: AbortSignal): Promise<SlideListEntry[]> {
    const summaries = await source.listSeries({ offset, limit, signal });
    const entries: Array<SlideListEntry | undefined> = new Array(summaries.length);
    const queue = summaries.map((summary, i) => ({ summary, i }));
    const worker = async (): Promise<void> => {
      for (let next = queue.shift(); next; next = queue.shift()) {
        try {
          entries[next.i] = { summary: next.summary, slide: await getSlide(next.summary.studyUid, next.summary.seriesUid, signal) };
        } catch (error) {
          // A series of labels only, or of something else stored as SM, is not a slide: leave it out.
          if (error instanceof NotASlideError) continue;
          if (!isGatewayError(error)) throw error;
          entries[next.i] = { summary: next.summary, error: { code: error.code, message: error.message } };
        }
      }
    };
    await Promise.all(Array.from({ length: 4 }, worker));
    return entries.filter((e): e is SlideListEntry => e !== undefined);
  }

  return {
    /** The slide if it is in memory, without any I/O. */
    peekSlide: (studyUid: string, seriesUid: string): Slide | undefined => slides.get(`${studyUid}/${seriesUid}`),
    getSlide,
    listSlides,
    clear: () => slides.clear(),
  };
}

export type SlideCatalog = ReturnType<typeof createSlideCatalog>;
