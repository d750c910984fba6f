/**
 * Requests for the fuzz scenario: for one route of the app (method and Hono path pattern, as
 * `app.routes` lists them), a valid request built from what the gateway really serves (slides, runs,
 * jobs), then one field of it broken at a time (a path parameter, a query value, a body field, a
 * header), or everything broken at once, or a body over the limit. Starting from a valid request is what
 * gets inputs past the first check and into the tile, level and embedding code.
 */
import { CONTENT_TYPES, headerValues, hugeBody, JSON_FIELD_VALUES, RAW_BODIES, RAW_QUERIES } from './fuzz-bodies.js';
import { NUMBER_VALUES, STRING_VALUES, traversalValues, UID_VALUES, type Rng } from './fuzz-values.js';

export interface RouteSpec {
  method: string;
  /** Hono's pattern, e.g. `/api/slides/:study/:series/tiles/:level/:col/:row`; `/*` for the viewer. */
  path: string;
}

export interface SlideTarget {
  studyUid: string;
  seriesUid: string;
  widthPx: number;
  heightPx: number;
  levels: readonly { gridCols: number; gridRows: number }[];
}

export interface RunTarget {
  studyUid: string;
  seriesUid: string;
  modelId: string;
  runId: string;
}

/** What the gateway under test really serves, so a valid request can be built for every route. */
export interface FuzzWorld {
  slides: readonly SlideTarget[];
  runs: readonly RunTarget[];
  jobIds: readonly string[];
  /** The canary, absolute and relative to the DICOM folder (thrown at every path-like field). */
  canaryPaths: readonly string[];
  /** Bearer token of GATEWAY_AUTH=token, or undefined when auth is off. */
  token: string | undefined;
  bodyLimitBytes: number;
}

export interface FuzzInput {
  method: string;
  /** Path and query, as given to `app.request`. */
  url: string;
  headers: Record<string, string>;
  body?: string | Uint8Array;
  /** How the input was made ("param:level", "body:huge"), for the report of a failure. */
  mutation: string;
  /** The status the invariants demand (413 for a body over the limit with valid credentials). */
  expectStatus?: number;
}

type Params = Record<string, string>;
type Query = [string, string][];

interface ValidRequest {
  params: Params;
  query: Query;
  /** A JSON object body (POST routes). */
  body?: Record<string, unknown>;
}

const VIEWER_FILES = ['/', '/index.html', '/app.js', '/app.css', '/favicon.svg', '/app.js.map'];
const RUN_FILES = ['embeddings.npy', 'coords.npy', 'manifest.json'];

function pickPoint(rng: Rng, slide: SlideTarget): [string, string] {
  return [String(rng.int(slide.widthPx)), String(rng.int(slide.heightPx))];
}

/** The query a route understands, filled with good values. Routes not listed get none (and generic fuzz). */
function validQuery(route: RouteSpec, rng: Rng, slide: SlideTarget, run: RunTarget | undefined): Query {
  const tail = route.path.replace(/^\/api\/slides\/:study\/:series/, '');
  const runQuery: Query = run ? [['model', run.modelId], ['run', run.runId], ['k', String(2 + rng.int(8))], ['seed', String(rng.int(5))], ['pca', rng.pick(['0', '0', '4'])]] : [];
  const [x, y] = pickPoint(rng, slide);
  switch (route.path === '/api/slides' ? 'list' : tail) {
    case 'list':
      return [['offset', String(rng.int(3))], ['limit', String(1 + rng.int(20))], ['q', rng.pick(['', 'cmu', 'jpeg', '1.2'])]];
    case '/region.jpg':
      return [['x', x], ['y', y], ['width', String(1 + rng.int(600))], ['height', String(1 + rng.int(600))], ['size', String(16 + rng.int(300))]];
    case '/label.jpg':
    case '/overview.jpg':
    case '/thumbnail.jpg':
      return [['size', String(16 + rng.int(512))]];
    case '/embeddings':
      return route.method === 'GET' && run ? [['model', run.modelId]] : [];
    case '/clusters':
    case '/clusters.csv':
      return runQuery;
    case '/clusters.png':
      return [...runQuery, ['size', String(16 + rng.int(512))], ...(rng.chance(0.5) ? ([['only', '0']] as Query) : [])];
    case '/clusters.geojson':
      return [...runQuery, ['mode', rng.pick(['patches', 'merged'])]];
    case '/similarity':
      return [...runQuery.slice(0, 2), ['x', x], ['y', y], ['across', String(rng.int(4))]];
    case '/similarity.png':
      return [...runQuery.slice(0, 2), ['x', x], ['y', y], ['size', String(16 + rng.int(512))]];
    default:
      return [];
  }
}

/** Good values for every path parameter; an unknown parameter stops the run (a new route needs one here). */
function validRequest(route: RouteSpec, world: FuzzWorld, rng: Rng): ValidRequest {
  const run = world.runs.length > 0 && rng.chance(0.8) ? rng.pick(world.runs) : undefined;
  const slide = (run && world.slides.find((s) => s.seriesUid === run.seriesUid)) ?? rng.pick(world.slides);
  const levelIndex = rng.int(slide.levels.length);
  const level = slide.levels[levelIndex]!;
  const values: Params = {
    study: slide.studyUid,
    series: slide.seriesUid,
    level: String(levelIndex),
    col: String(rng.int(level.gridCols)),
    row: `${rng.int(level.gridRows)}.jpg`,
    id: world.jobIds.length > 0 && rng.chance(0.7) ? rng.pick(world.jobIds) : '00000000-0000-4000-8000-000000000000',
    model: run?.modelId ?? 'stain-texture',
    run: run?.runId ?? 'mpp0.5-s224-t0.25',
    file: rng.pick(RUN_FILES),
  };
  const params: Params = {};
  for (const [, name] of route.path.matchAll(/:(\w+)/g)) {
    const value = values[name!];
    if (value === undefined) throw new Error(`fuzz-grammar.ts: add a valid value for the path parameter :${name} (${route.path})`);
    params[name!] = value;
  }
  if (route.path === '/*') params['*'] = rng.pick(VIEWER_FILES);
  const query = validQuery(route, rng, slide, run);
  if (route.method === 'POST' && route.path.endsWith('/embeddings')) return { params, query, body: { model: 'stain-texture', mpp: rng.pick([2, 4, 8]), minTissue: rng.pick([0.25, 0.5]) } };
  if (route.method === 'POST' && route.path === '/api/session') return { params, query, body: { token: world.token ?? 'no-token-configured-0000' } };
  return { params, query };
}

/** A nasty value for a parameter, chosen by what the parameter holds. */
function nastyFor(name: string, rng: Rng, world: FuzzWorld): string {
  if (rng.chance(0.2)) return rng.pick(traversalValues(world.canaryPaths));
  if (name === 'study' || name === 'series') return rng.chance(0.2) ? mutateUid(rng.pick(world.slides).seriesUid, rng) : rng.pick(UID_VALUES);
  if (name === 'row') return rng.chance(0.5) ? `${rng.pick(NUMBER_VALUES)}${rng.pick(['.jpg', '.JPG', '.png', '', '.jpg.jpg', '.jpg%00'])}` : rng.pick(['.jpg', '-1.jpg', '1e3.jpg', '9999999999.jpg', '0.jpeg', '0.jpg/']);
  if (['level', 'col', 'x', 'y', 'width', 'height', 'size', 'offset', 'limit', 'k', 'seed', 'pca', 'only', 'across'].includes(name)) return rng.chance(0.15) ? String(2 ** rng.int(40)) : rng.pick(NUMBER_VALUES);
  return rng.pick(STRING_VALUES);
}

/** A valid UID broken a little: the first checks pass some of these, the lookup must still 404. */
function mutateUid(uid: string, rng: Rng): string {
  const at = rng.int(uid.length);
  return rng.pick([
    `${uid}.`,
    `0${uid}`,
    `${uid}.0`,
    `${uid}..1`,
    uid.slice(0, at),
    `${uid.slice(0, at)}x${uid.slice(at + 1)}`,
    `${uid}${uid}`,
    `${uid}%2e%2e`,
    `${uid}/..`,
    `${uid}%00`,
    ` ${uid}`,
  ]);
}

/** A value into a URL: usually encoded, sometimes raw (broken percent-encoding included) to reach the parser. */
function encodeValue(value: string, rng: Rng): string {
  if (rng.chance(0.6)) return encodeURIComponent(value);
  // Raw, but only printable ASCII stays as is: the rest could not be sent on a wire either.
  return value.replace(/[^\x21-\x7e]/gu, (c) => encodeURIComponent(c));
}

function buildUrl(route: RouteSpec, params: Params, query: Query, rng: Rng, rawQuery = ''): string {
  const path = route.path === '/*' ? params['*']! : route.path.replace(/:(\w+)/g, (_, name: string) => params[name]!);
  const search = query.map(([k, v]) => `${encodeValue(k, rng)}=${encodeValue(v, rng)}`).join('&');
  return `${path}${search ? `?${search}` : ''}${rawQuery}`;
}

const MUTATIONS = ['param', 'param', 'param', 'query', 'query', 'query-extra', 'query-drop', 'query-raw', 'body', 'body', 'body-raw', 'huge', 'header', 'method', 'shape', 'valid', 'chaos'] as const;

/** One input for a route. Deterministic for a given generator state. */
export function generateInput(route: RouteSpec, world: FuzzWorld, rng: Rng): FuzzInput {
  const valid = validRequest(route, world, rng);
  const params = { ...valid.params };
  const query = valid.query.map(([k, v]) => [k, v] as [string, string]);
  let body: Record<string, unknown> | string | Uint8Array | undefined = valid.body ? { ...valid.body } : undefined;
  let method = route.method;
  let rawQuery = '';
  const headers: Record<string, string> = {};
  if (world.token && route.path.startsWith('/api/')) headers.authorization = `Bearer ${world.token}`;
  let expectStatus: number | undefined;
  const paramNames = Object.keys(params).filter((n) => n !== '*');
  const canHaveBody = method !== 'GET' && method !== 'HEAD';
  let kind: string = rng.pick(MUTATIONS);
  if ((kind === 'param' && paramNames.length === 0 && route.path !== '/*') || (kind === 'query' && query.length === 0)) kind = 'query-extra';
  if ((kind === 'body' || kind === 'body-raw' || kind === 'huge') && !canHaveBody) kind = rng.pick(['header', 'query-raw', 'param']);
  let mutation: string = kind;

  switch (kind) {
    case 'param': {
      if (route.path === '/*') {
        params['*'] = `/${rng.pick([...traversalValues(world.canaryPaths), ...STRING_VALUES, 'index.html%00', 'INDEX.HTML', '/etc/passwd', '.git/config', 'app.js/..', '..%2fpackage.json'])}`;
        mutation = 'param:*';
        break;
      }
      const name = rng.pick(paramNames);
      params[name] = nastyFor(name, rng, world);
      mutation = `param:${name}`;
      break;
    }
    case 'query': {
      const entry = rng.pick(query);
      entry[1] = nastyFor(entry[0], rng, world);
      mutation = `query:${entry[0]}`;
      break;
    }
    case 'query-extra': {
      const key = rng.pick([...query.map(([k]) => k), 'unknown', '__proto__', 'constructor', 'toString', '', 'q', 'limit', 'k']);
      const value = rng.chance(0.5) ? nastyFor(key, rng, world) : rng.pick(['1', '', 'x']);
      if (rng.chance(0.5)) query.push([key, value]);
      else query.unshift([key, value]);
      break;
    }
    case 'query-drop':
      if (query.length > 0) query.splice(rng.int(query.length), 1);
      break;
    case 'query-raw':
      rawQuery = rng.pick(RAW_QUERIES);
      if (query.length > 0) rawQuery = `&${rawQuery.slice(1)}`;
      break;
    case 'body': {
      const object = typeof body === 'object' && !(body instanceof Uint8Array) ? body : {};
      const keys = [...Object.keys(object), 'unknown', '__proto__', 'constructor', 'stride', 'mppOverride', 'token'];
      const key = rng.pick(keys);
      if (rng.chance(0.2)) delete object[key];
      else object[key] = rng.pick(JSON_FIELD_VALUES);
      body = object;
      mutation = `body:${key}`;
      break;
    }
    case 'body-raw':
      body = rng.chance(0.1) ? new Uint8Array([0xff, 0xfe, 0xfd, 0x7b, 0x00, 0xc3]) : rng.pick(RAW_BODIES);
      break;
    case 'huge': {
      const bytes = world.bodyLimitBytes + 1 + rng.pick([0, 1, 100, world.bodyLimitBytes * 3]);
      body = hugeBody(bytes);
      // Past the door (valid credentials, or the sign-in itself), the limit must answer.
      expectStatus = 413;
      if (rng.chance(0.3)) headers['content-length'] = String(bytes);
      break;
    }
    case 'header': {
      const name = rng.pick(['authorization', 'authorization', 'cookie', 'content-type', 'if-none-match', 'x-request-id', 'accept', 'x-forwarded-proto', 'origin', 'range', 'accept-encoding']);
      headers[name] = rng.pick(headerValues(world.token));
      mutation = `header:${name}`;
      break;
    }
    case 'method':
      method = rng.pick(['PUT', 'PATCH', 'OPTIONS', 'HEAD', 'DELETE', 'POST', 'GET', 'PROPFIND']);
      mutation = `method:${method}`;
      break;
    case 'chaos':
      for (const name of paramNames) params[name] = nastyFor(name, rng, world);
      for (const entry of query) entry[1] = nastyFor(entry[0], rng, world);
      if (canHaveBody) body = rng.pick(RAW_BODIES);
      break;
  }

  let url = buildUrl(route, params, query, rng, rawQuery);
  if (kind === 'shape') {
    const shapes = [(u: string) => u.replace(/\//g, '//'), (u: string) => `${u.split('?')[0]}/`, (u: string) => `${u.split('?')[0]}/extra`, (u: string) => u.replace(/\/([^/?]*)$/, '%2F$1'), (u: string) => u.replace('/api/', '/API/'), (u: string) => `/.${u}`];
    url = rng.pick(shapes)(url);
  }
  if (!canHaveBody && method !== route.method) body = undefined;
  if (method === 'GET' || method === 'HEAD') body = undefined;
  const text = body === undefined || typeof body === 'string' || body instanceof Uint8Array ? body : JSON.stringify(body);
  if (text !== undefined && headers['content-type'] === undefined) {
    const type = kind === 'body' || kind === 'body-raw' || kind === 'chaos' ? rng.pick(CONTENT_TYPES) : 'application/json';
    if (type !== undefined) headers['content-type'] = type;
  }
  return { method, url, headers, ...(text !== undefined && { body: text }), mutation, ...(expectStatus !== undefined && { expectStatus }) };
}
