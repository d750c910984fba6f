/**
 * Warm tiles answered before Hono. A tile already in memory as a browser JPEG is the gateway's most
 * frequent answer, and Hono's Node adapter (a Request, a Context, a Response and a header copy per
 * request) cost more than half of it: a bare Node listener serves 36,000-41,000 tiles/s here where the
 * Hono route served 14,000 (docs/decisions.md, bench/tiles). This path answers only what it can answer
 * exactly as the tile route would, from memory and synchronously; anything else (a miss, a tile to
 * transcode, a bad parameter, a refused caller, a cross-origin request, shutdown) goes on to Hono.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SlideCatalog, TileService } from '../tiles/index.js';
import type { RequestRecorder } from './request-log.js';
import type { HeaderReader, Identity } from './security.js';
import { TILE_CACHE_CONTROL, TILE_ROUTE } from './slides.js';

/** The tile route's paths with no query: UIDs are digits and dots, numbers as parseIndex takes them. */
const TILE_PATH = /^\/api\/slides\/([0-9.]{1,64})\/([0-9.]{1,64})\/tiles\/(\d{1,2})\/(\d{1,10})\/(\d{1,9})\.jpg$/;

export interface TileFastPathDeps {
  catalog: Pick<SlideCatalog, 'peekSlide'>;
  tiles: Pick<TileService, 'peekTile'>;
  identify: (header: HeaderReader) => Identity;
  /** Leave requests with an Origin header to Hono (its CORS middleware adds the headers). */
  passCrossOrigin: boolean;
  isClosing: () => boolean;
  recordRequest: RequestRecorder;
}

/** Answers a warm tile and returns true, or returns false having written nothing. */
export type TileFastPath = (req: IncomingMessage, res: ServerResponse) => boolean;

/** A request header as one string (repeated headers joined, as Hono's `c.req.header` gives them). */
function readHeader(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

export function createTileFastPath({ catalog, tiles, identify, passCrossOrigin, isClosing, recordRequest }: TileFastPathDeps): TileFastPath {
  return function serveWarmTile(req: IncomingMessage, res: ServerResponse): boolean {
    if (req.method !== 'GET' || isClosing()) return false;
    const match = TILE_PATH.exec(req.url ?? '');
    if (!match) return false;
    if (passCrossOrigin && req.headers.origin !== undefined) return false;
    const startedMs = performance.now();
    // An unnamed closure: tsx (esbuild keepNames) wraps each named one in a defineProperty call, per request.
    const identity = identify((name) => readHeader(req, name));
    if ('refused' in identity) return false;
    const [, study, series, level, col, row] = match as unknown as [string, string, string, string, string, string];
    const slide = catalog.peekSlide(study, series);
    const image = slide?.levels[Number(level)];
    const tile = slide && image && tiles.peekTile(slide, image, Number(col), Number(row));
    if (!tile) return false;
    let status = 200;
    if (req.headers['if-none-match'] === tile.etag) {
      status = 304;
      res.writeHead(304, { etag: tile.etag, 'cache-control': TILE_CACHE_CONTROL });
      res.end();
    } else {
      res.writeHead(200, { 'content-type': 'image/jpeg', etag: tile.etag, 'cache-control': TILE_CACHE_CONTROL, 'content-length': tile.data.length });
      res.end(tile.data);
    }
    recordRequest({ method: 'GET', route: TILE_ROUTE, path: req.url!, status, startedMs, requestId: readHeader(req, 'x-request-id'), user: identity.user });
    return true;
  };
}
