/** /api/slides: the slide list, slide descriptors, tiles and associated images. Thin: validate, call, shape. */
import { Hono, type Context } from 'hono';
import { BadRequestError, NotFoundError } from '../errors.js';
import type { SlideCatalog, SlideListEntry, TileService } from '../tiles/index.js';
import type { Level, Slide, TiledImage } from '../wsi/index.js';
import { parseIndex, parseOptionalIndex, parseUid } from './params.js';

export interface SlideRoutesDeps {
  catalog: SlideCatalog;
  tiles: TileService;
  /** Include patient names and IDs in the slide list (GATEWAY_SHOW_PATIENT_DATA). */
  showPatientData: boolean;
}

/** Tiles never change for a given SOP Instance UID; `private` keeps them out of shared caches. */
export const TILE_CACHE_CONTROL = 'private, max-age=31536000, immutable';
/** The tile route's pattern as mounted under /api/slides (the HTTP metrics' route label). */
export const TILE_ROUTE = '/api/slides/:study/:series/tiles/:level/:col/:row';
const SHORT = 'private, max-age=60';

/** Node Buffers are never backed by a SharedArrayBuffer here; Hono's types want that said. */
const asBody = (data: Buffer) => data as Uint8Array<ArrayBuffer>;

function describeLevel(level: Level) {
  return {
    index: level.index,
    widthPx: level.widthPx,
    heightPx: level.heightPx,
    tileWidthPx: level.tileWidthPx,
    tileHeightPx: level.tileHeightPx,
    gridCols: level.gridCols,
    gridRows: level.gridRows,
    downsample: level.downsample,
    mppX: level.mppX ?? null,
    mppY: level.mppY ?? null,
    tileCount: level.tileCount,
    sparse: level.tileCount < level.gridCols * level.gridRows,
    tileMap: level.tileCount < level.gridCols * level.gridRows ? encodeTileMap(level) : null,
  };
}

/**
 * Which tiles of a sparse level exist, so a viewer asks only for those: a bitset over the grid in
 * row-major order (bit t = col + row * gridCols, least significant bit first), base64. 6,000 tiles → 1 KB.
 */
export function encodeTileMap(level: Level): string {
  const bits = new Uint8Array(Math.ceil((level.gridCols * level.gridRows) / 8));
  for (let t = 0; t < level.tileInstance.length; t++) {
    if (level.tileInstance[t] !== -1) bits[t >> 3]! |= 1 << (t & 7);
  }
  return Buffer.from(bits).toString('base64');
}

function describeAssociated(image: TiledImage | undefined) {
  return image ? { widthPx: image.widthPx, heightPx: image.heightPx } : null;
}

function slideBase(slide: Slide) {
  const base = slide.levels[0]!;
  return {
    id: `${slide.studyUid}/${slide.seriesUid}`,
    studyUid: slide.studyUid,
    seriesUid: slide.seriesUid,
    studyDescription: slide.studyDescription ?? null,
    seriesDescription: slide.seriesDescription ?? null,
    widthPx: base.widthPx,
    heightPx: base.heightPx,
    mpp: base.mppX === undefined ? null : { x: base.mppX, y: base.mppY },
    levelCount: slide.levels.length,
    hasLabel: slide.label !== undefined,
    hasOverview: slide.overview !== undefined,
  };
}

function describeEntry(entry: SlideListEntry, showPatientData: boolean) {
  const { summary } = entry;
  const patient = showPatientData ? { patientName: summary.patientName ?? null, patientId: summary.patientId ?? null } : {};
  const dated = { studyDate: summary.studyDate ?? null, ...patient };
  if (entry.slide) return { ...slideBase(entry.slide), ...dated };
  return {
    id: `${summary.studyUid}/${summary.seriesUid}`,
    studyUid: summary.studyUid,
    seriesUid: summary.seriesUid,
    studyDescription: summary.studyDescription ?? null,
    seriesDescription: summary.seriesDescription ?? null,
    ...dated,
    error: entry.error,
  };
}

export function createSlideRoutes({ catalog, tiles, showPatientData }: SlideRoutesDeps): Hono {
  const app = new Hono();

  const slideOf = (c: Context): Slide | Promise<Slide> => {
    const study = parseUid(c.req.param('study'), 'study UID');
    const series = parseUid(c.req.param('series'), 'series UID');
    // The hot path (a known slide) must not touch c.req.raw.signal: the Node adapter then builds an
    // AbortController per request, which cost a quarter of warm tile throughput in bench/tiles.
    return catalog.peekSlide(study, series) ?? catalog.getSlide(study, series, c.req.raw.signal);
  };

  app.get('/', async (c) => {
    const offset = parseOptionalIndex(c.req.query('offset'), 'offset', 0, { max: 1_000_000 });
    const limit = parseOptionalIndex(c.req.query('limit'), 'limit', 50, { min: 1, max: 500 });
    const query = c.req.query('q') ?? '';
    if (query.length > 200) throw new BadRequestError('q: at most 200 characters', 'INVALID_PARAMETER');
    const { total, entries } = await catalog.listSlides({ offset, limit, query, signal: c.req.raw.signal });
    const slides = entries.map((e) => describeEntry(e, showPatientData));
    return c.json({ total, offset, limit, query, slides }, 200, { 'cache-control': 'no-store' });
  });

  app.get('/:study/:series', async (c) => {
    const slide = await slideOf(c);
    return c.json(
      { ...slideBase(slide), notes: slide.notes, levels: slide.levels.map(describeLevel), label: describeAssociated(slide.label), overview: describeAssociated(slide.overview) },
      200,
      { 'cache-control': SHORT },
    );
  });

  // TILE_ROUTE. Warm tiles are mostly answered before Hono, by tile-fast-path.ts, with the same headers.
  app.get('/:study/:series/tiles/:level/:col/:row', async (c) => {
    const rowMatch = /^(\d{1,9})\.jpg$/.exec(c.req.param('row'));
    if (!rowMatch) throw new NotFoundError('Tiles are addressed as tiles/{level}/{col}/{row}.jpg', 'NOT_FOUND');
    const levelIndex = parseIndex(c.req.param('level'), 'level', { max: 64 });
    const col = parseIndex(c.req.param('col'), 'col');
    const row = Number(rowMatch[1]);
    const slide = await slideOf(c);
    const level = slide.levels[levelIndex];
    if (!level) throw new NotFoundError(`The slide has levels 0 to ${slide.levels.length - 1}`, 'LEVEL_NOT_FOUND');
    const tile = await tiles.getTile(slide, level, col, row);
    // Validated after the lookup so an ETag never vouches for a tile outside the grid.
    if (c.req.header('if-none-match') === tile.etag) return c.body(null, 304, { etag: tile.etag, 'cache-control': TILE_CACHE_CONTROL });
    return c.body(asBody(tile.data), 200, {
      'content-type': 'image/jpeg',
      etag: tile.etag,
      'cache-control': TILE_CACHE_CONTROL,
    });
  });

  const renderRoute = (name: 'label' | 'overview' | 'thumbnail') =>
    app.get(`/:study/:series/${name}.jpg`, async (c) => {
      const maxSizePx = parseOptionalIndex(c.req.query('size'), 'size', name === 'thumbnail' ? 256 : 1024, { min: 16, max: 2048 });
      const slide = await slideOf(c);
      const image = name === 'thumbnail' ? chooseThumbnailLevel(slide, maxSizePx) : slide[name];
      if (!image) throw new NotFoundError(`The slide has no ${name} image`, `${name.toUpperCase()}_NOT_FOUND`);
      const data = await tiles.renderImage(slide, image, maxSizePx);
      return c.body(asBody(data), 200, { 'content-type': 'image/jpeg', 'cache-control': SHORT });
    });
  // A region in level-0 pixels (a patch's picture for the cluster legend and similar-patch lists).
  app.get('/:study/:series/region.jpg', async (c) => {
    const region = {
      xPx: parseIndex(c.req.query('x'), 'x'),
      yPx: parseIndex(c.req.query('y'), 'y'),
      widthPx: parseIndex(c.req.query('width'), 'width', { min: 1 }),
      heightPx: parseIndex(c.req.query('height'), 'height', { min: 1 }),
    };
    const maxSizePx = parseOptionalIndex(c.req.query('size'), 'size', 256, { min: 16, max: 1024 });
    const slide = await slideOf(c);
    const data = await tiles.renderRegion(slide, region, maxSizePx);
    return c.body(asBody(data), 200, { 'content-type': 'image/jpeg', 'cache-control': SHORT });
  });

  renderRoute('label');
  renderRoute('overview');
  renderRoute('thumbnail');

  return app;
}

/** The smallest level that still fills `maxSizePx`, or the smallest level there is. */
export function chooseThumbnailLevel(slide: Slide, maxSizePx: number): Level {
  const bySize = [...slide.levels].reverse();
  const fits = bySize.find((l) => Math.max(l.widthPx, l.heightPx) >= maxSizePx && l.gridCols * l.gridRows <= 256);
  return fits ?? bySize[0]!;
}
