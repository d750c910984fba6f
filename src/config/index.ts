/**
 * The gateway's configuration: read from the environment once, validated with every problem reported
 * at once, frozen, and passed to whatever needs it. Nothing else reads process.env.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { z } from 'zod';

export type UpstreamAuth =
  | { kind: 'none' }
  | { kind: 'basic'; username: string; password: string }
  | { kind: 'bearer'; token: string };

/**
 * Who may call /api: anyone (`none`), holders of an API token (`token`), or whoever a reverse proxy in
 * front (e.g. oauth2-proxy doing OIDC) names in a header (`trusted-header`; the gateway must then be
 * reachable only through that proxy).
 */
export type GatewayAuth =
  | { kind: 'none' }
  | { kind: 'token'; tokens: readonly string[] }
  | { kind: 'trusted-header'; userHeader: string; proxySecret: string | undefined };

export interface Config {
  /** TCP port to listen on. @default 8080 */
  port: number;
  /** Address to bind. @default '0.0.0.0' */
  host: string;
  /** The PACS's DICOMweb base URL (QIDO/WADO root), or undefined to serve a folder. */
  dicomwebUrl: string | undefined;
  upstreamAuth: UpstreamAuth;
  /** Extra headers sent with every PACS request (e.g. an API gateway key). */
  upstreamHeaders: Readonly<Record<string, string>>;
  /** Deadline for one PACS request, headers and body, in ms. @default 30000 */
  upstreamTimeoutMs: number;
  /** Most concurrent connections to the PACS. @default 16 */
  upstreamConnections: number;
  /** Tries after the first for a failed PACS read (GETs only; never STOW). @default 2 */
  upstreamRetries: number;
  /** Most time one PACS read may take, tries and backoff included, in ms. @default 2 * upstreamTimeoutMs */
  upstreamDeadlineMs: number;
  /** Consecutive failed PACS requests that open the circuit breaker; 0 = never. @default 10 */
  breakerFailures: number;
  /** Time the circuit stays open before one trial request, in ms. @default 5000 */
  breakerCooldownMs: number;
  /** Folder of DICOM Part 10 files, served when dicomwebUrl is unset. @default './data/slides' */
  dicomDir: string;
  /** Upper bound of the tile cache, in bytes. @default 536870912 (512 MiB) */
  tileCacheBytes: number;
  /** Frames fetched together on a tile cache miss (the missed frame and its neighbours). @default 64 */
  prefetchFrames: number;
  /** JPEG quality for tiles the gateway re-encodes (JPEG 2000, JPEG-LS, uncompressed). @default 90 */
  jpegQuality: number;
  /**
   * Worker threads decoding JPEG 2000 and JPEG-LS frames off the event loop; 0 = on the event loop.
   * @default one per core, from 1 to 4 (computeDefaultDecodeThreads)
   */
  decodeThreads: number;
  /** Show patient names and IDs in the slide list (and let the filter match them). @default false */
  showPatientData: boolean;
  /**
   * Generate the synthetic demo slide into DICOM_DIR/demo/ at start: `auto` when no PACS is set and
   * DICOM_DIR holds no files, `true` also when it does (never when a PACS is set), `false` never. @default 'auto'
   */
  demo: 'auto' | 'true' | 'false';
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** Folder of model weights, and of manifests that add to or replace the shipped ones. @default './models' */
  modelsDir: string;
  /** Where embeddings are stored, per slide, model and grid. @default './data/embeddings' */
  embedDir: string;
  /** onnxruntime execution providers in order of preference; cpu is always the last resort. @default ['cpu'] */
  onnxExecutionProviders: readonly ('tensorrt' | 'cuda' | 'cpu')[];
  /** Threads per operator for onnxruntime on CPU; 0 = one per core. @default 0 */
  onnxThreads: number;
  /** Most frames asked for in one PACS request while embedding. @default 200 */
  embedFramesPerRequest: number;
  /** Bytes of stored embeddings kept in memory for clusters and similarity. @default 536870912 (512 MiB) */
  analysisCacheBytes: number;
  /** Slides embedded at once: 2 lets the next slide's frames load while the model finishes the last. @default 2 */
  embedConcurrentSlides: number;
  /** Authentication of /api routes (GATEWAY_AUTH). @default { kind: 'none' } */
  gatewayAuth: GatewayAuth;
  /** Origins allowed to call /api from another site; empty = no CORS headers at all. @default [] */
  corsOrigins: readonly string[];
  /** Largest request body accepted on /api, in bytes. @default 65536 (64 KiB) */
  bodyLimitBytes: number;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

/** Environment variables the gateway reads. A variable with one of our prefixes that is not here is a typo. */
export const KNOWN_KEYS = [
  'PORT',
  'HOST',
  'DICOMWEB_URL',
  'DICOMWEB_AUTH',
  'DICOMWEB_USERNAME',
  'DICOMWEB_PASSWORD',
  'DICOMWEB_PASSWORD_FILE',
  'DICOMWEB_TOKEN',
  'DICOMWEB_TOKEN_FILE',
  'DICOMWEB_HEADERS',
  'DICOMWEB_TIMEOUT_MS',
  'DICOMWEB_CONNECTIONS',
  'DICOMWEB_RETRIES',
  'DICOMWEB_DEADLINE_MS',
  'DICOMWEB_BREAKER_FAILURES',
  'DICOMWEB_BREAKER_COOLDOWN_MS',
  'DICOM_DIR',
  'TILE_CACHE_BYTES',
  'TILE_PREFETCH_FRAMES',
  'TILE_JPEG_QUALITY',
  'GATEWAY_DECODE_THREADS',
  'GATEWAY_SHOW_PATIENT_DATA',
  'GATEWAY_DEMO',
  'GATEWAY_AUTH',
  'GATEWAY_API_TOKENS',
  'GATEWAY_API_TOKENS_FILE',
  'GATEWAY_TRUSTED_USER_HEADER',
  'GATEWAY_TRUSTED_PROXY_SECRET',
  'GATEWAY_TRUSTED_PROXY_SECRET_FILE',
  'GATEWAY_CORS_ORIGINS',
  'GATEWAY_BODY_LIMIT_BYTES',
  'LOG_LEVEL',
  'MODELS_DIR',
  'EMBED_DIR',
  'ONNX_EXECUTION_PROVIDERS',
  'ONNX_THREADS',
  'EMBED_FRAMES_PER_REQUEST',
  'EMBED_CONCURRENT_SLIDES',
  'ANALYSIS_CACHE_BYTES',
] as const;
const OUR_PREFIXES = ['DICOMWEB_', 'DICOM_', 'TILE_', 'GATEWAY_', 'EMBED_', 'ONNX_', 'MODELS_', 'ANALYSIS_'];

const BYTE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, kib: 1024, m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3, gib: 1024 ** 3 };

const int = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

const bytes = z
  .string()
  .regex(/^\s*\d+(\.\d+)?\s*([kmg]i?b?|b)?\s*$/i, 'must be a size in bytes, e.g. 536870912 or 512MiB')
  .transform((v) => {
    const [, n, unit] = /^\s*([\d.]+)\s*([a-z]*)\s*$/i.exec(v)!;
    return Math.floor(Number(n) * BYTE_UNITS[unit!.toLowerCase()]!);
  })
  .pipe(z.number().int().min(1024 * 1024, 'must be at least 1 MiB'));

const headers = z
  .string()
  .transform((v, ctx) => {
    try {
      return JSON.parse(v) as unknown;
    } catch {
      ctx.addIssue({ code: 'custom', message: 'must be a JSON object of header names to values' });
      return z.NEVER;
    }
  })
  .pipe(z.record(z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'is not a valid header name'), z.string()));

const schema = z.object({
  PORT: int(0, 65535).default(8080),
  HOST: z.string().min(1).default('0.0.0.0'),
  DICOMWEB_URL: z
    .url({ protocol: /^https?$/, error: 'must be an http(s) URL, e.g. http://pacs:8042/dicom-web' })
    .transform((v) => v.replace(/\/+$/, ''))
    .optional(),
  DICOMWEB_AUTH: z.enum(['none', 'basic', 'bearer']).optional(),
  DICOMWEB_USERNAME: z.string().min(1).optional(),
  DICOMWEB_PASSWORD: z.string().optional(),
  DICOMWEB_PASSWORD_FILE: z.string().optional(),
  DICOMWEB_TOKEN: z.string().min(1).optional(),
  DICOMWEB_TOKEN_FILE: z.string().optional(),
  DICOMWEB_HEADERS: headers.optional(),
  DICOMWEB_TIMEOUT_MS: int(100, 3_600_000).default(30_000),
  DICOMWEB_CONNECTIONS: int(1, 1024).default(16),
  DICOMWEB_RETRIES: int(0, 10).default(2),
  // Default: twice DICOMWEB_TIMEOUT_MS, filled in below (it depends on that key).
  DICOMWEB_DEADLINE_MS: int(100, 7_200_000).optional(),
  DICOMWEB_BREAKER_FAILURES: int(0, 10_000).default(10),
  DICOMWEB_BREAKER_COOLDOWN_MS: int(100, 3_600_000).default(5000),
  DICOM_DIR: z.string().min(1).default('./data/slides'),
  TILE_CACHE_BYTES: bytes.default(512 * 1024 * 1024),
  TILE_PREFETCH_FRAMES: int(1, 1024).default(64),
  TILE_JPEG_QUALITY: int(1, 100).default(90),
  // Default: computeDefaultDecodeThreads(), filled in below (it depends on the machine).
  GATEWAY_DECODE_THREADS: int(0, 64).optional(),
  GATEWAY_SHOW_PATIENT_DATA: z
    .enum(['true', 'false', '1', '0'], { error: 'must be true or false' })
    .transform((v) => v === 'true' || v === '1')
    .default(false),
  GATEWAY_DEMO: z.enum(['auto', 'true', 'false'], { error: 'must be auto, true or false' }).default('auto'),
  GATEWAY_AUTH: z.enum(['none', 'token', 'trusted-header']).default('none'),
  GATEWAY_API_TOKENS: z.string().optional(),
  GATEWAY_API_TOKENS_FILE: z.string().optional(),
  GATEWAY_TRUSTED_USER_HEADER: z
    .string()
    .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'is not a valid header name')
    .transform((v) => v.toLowerCase())
    .default('x-forwarded-user'),
  GATEWAY_TRUSTED_PROXY_SECRET: z.string().optional(),
  GATEWAY_TRUSTED_PROXY_SECRET_FILE: z.string().optional(),
  GATEWAY_CORS_ORIGINS: z
    .string()
    .transform((v) => v.split(',').map((o) => o.trim()).filter(Boolean))
    .default([]),
  GATEWAY_BODY_LIMIT_BYTES: int(1024, 64 * 1024 * 1024).default(64 * 1024),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  MODELS_DIR: z.string().min(1).default('./models'),
  EMBED_DIR: z.string().min(1).default('./data/embeddings'),
  ONNX_EXECUTION_PROVIDERS: z
    .string()
    .transform((v) => v.split(',').map((p) => p.trim().toLowerCase()).filter(Boolean))
    .pipe(z.array(z.enum(['tensorrt', 'cuda', 'cpu'], { error: 'must be a comma-separated list of tensorrt, cuda, cpu' })).min(1))
    .default(['cpu']),
  ONNX_THREADS: int(0, 1024).default(0),
  EMBED_FRAMES_PER_REQUEST: int(1, 10_000).default(200),
  EMBED_CONCURRENT_SLIDES: int(1, 16).default(2),
  ANALYSIS_CACHE_BYTES: bytes.default(512 * 1024 * 1024),
});

function readSecretFile(path: string | undefined, name: string, problems: string[]): string | undefined {
  if (path === undefined) return undefined;
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    problems.push(`${name}: cannot read the file ${path}`);
    return undefined;
  }
}

/**
 * Settings given as command-line flags (`--dicomweb-url URL`, `--port=9000`) as the environment
 * variables they stand for, to lay over process.env before loadConfig. Secrets are refused: a flag
 * shows in `ps` and shell history; they belong in the environment or a `*_FILE`.
 */
export function readConfigFlags(argv: readonly string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const match = /^--([a-z][a-z0-9-]*)(?:=(.*))?$/.exec(argv[i]!);
    if (!match) throw new ConfigError([`${argv[i]}: not a setting; settings are --name value or --name=value`]);
    const key = match[1]!.toUpperCase().replaceAll('-', '_');
    if (!(KNOWN_KEYS as readonly string[]).includes(key)) throw new ConfigError([`--${match[1]}: unknown setting (flags are the variables in README's table, e.g. --dicomweb-url)`]);
    if (/(PASSWORD|TOKEN|TOKENS|SECRET)$/.test(key)) throw new ConfigError([`--${match[1]}: secrets are read only from the environment or ${key}_FILE, never from flags`]);
    const value = match[2] ?? argv[++i];
    if (value === undefined) throw new ConfigError([`--${match[1]}: needs a value`]);
    env[key] = value;
  }
  return env;
}

/** Reads and validates the configuration. Throws ConfigError listing every problem. */
export function loadConfig(env: Readonly<Record<string, string | undefined>>): Readonly<Config> {
  const problems: string[] = [];
  const known = new Set<string>(KNOWN_KEYS);
  for (const key of Object.keys(env)) {
    if (OUR_PREFIXES.some((p) => key.startsWith(p)) && !known.has(key)) {
      problems.push(`${key}: unknown setting (known: ${KNOWN_KEYS.filter((k) => OUR_PREFIXES.some((p) => k.startsWith(p))).join(', ')})`);
    }
  }
  // Empty variables count as unset, as a shell user expects of `FOO= npm start`.
  const input = Object.fromEntries(KNOWN_KEYS.map((k) => [k, env[k] === '' ? undefined : env[k]]));
  const parsed = schema.safeParse(input);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) problems.push(`${issue.path.join('.')}: ${issue.message}`);
  }
  const v = parsed.data;
  if (!v) throw new ConfigError(problems);

  const password = v.DICOMWEB_PASSWORD ?? readSecretFile(v.DICOMWEB_PASSWORD_FILE, 'DICOMWEB_PASSWORD_FILE', problems);
  const token = v.DICOMWEB_TOKEN ?? readSecretFile(v.DICOMWEB_TOKEN_FILE, 'DICOMWEB_TOKEN_FILE', problems);
  const authKind = v.DICOMWEB_AUTH ?? (v.DICOMWEB_USERNAME ? 'basic' : token ? 'bearer' : 'none');
  let upstreamAuth: UpstreamAuth = { kind: 'none' };
  if (authKind === 'basic') {
    if (!v.DICOMWEB_USERNAME) problems.push('DICOMWEB_USERNAME: required for basic auth');
    if (password === undefined) problems.push('DICOMWEB_PASSWORD or DICOMWEB_PASSWORD_FILE: required for basic auth');
    upstreamAuth = { kind: 'basic', username: v.DICOMWEB_USERNAME ?? '', password: password ?? '' };
  } else if (authKind === 'bearer') {
    if (!token) problems.push('DICOMWEB_TOKEN or DICOMWEB_TOKEN_FILE: required for bearer auth');
    upstreamAuth = { kind: 'bearer', token: token ?? '' };
  }
  if (v.DICOMWEB_URL && /^[a-z]+:\/\/[^/]*@/i.test(v.DICOMWEB_URL)) {
    problems.push('DICOMWEB_URL: put credentials in DICOMWEB_USERNAME/DICOMWEB_PASSWORD, not in the URL');
  }
  const gatewayAuth = readGatewayAuth(v, problems);
  for (const origin of v.GATEWAY_CORS_ORIGINS) {
    if (origin === '*') {
      if (gatewayAuth.kind !== 'none') problems.push('GATEWAY_CORS_ORIGINS: * is refused while GATEWAY_AUTH is on; list the origins');
    } else if (!isOrigin(origin)) {
      problems.push(`GATEWAY_CORS_ORIGINS: ${origin} is not an origin (scheme://host[:port], no path)`);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);

  return Object.freeze({
    port: v.PORT,
    host: v.HOST,
    dicomwebUrl: v.DICOMWEB_URL,
    upstreamAuth: Object.freeze(upstreamAuth),
    upstreamHeaders: Object.freeze({ ...v.DICOMWEB_HEADERS }),
    upstreamTimeoutMs: v.DICOMWEB_TIMEOUT_MS,
    upstreamConnections: v.DICOMWEB_CONNECTIONS,
    upstreamRetries: v.DICOMWEB_RETRIES,
    upstreamDeadlineMs: v.DICOMWEB_DEADLINE_MS ?? 2 * v.DICOMWEB_TIMEOUT_MS,
    breakerFailures: v.DICOMWEB_BREAKER_FAILURES,
    breakerCooldownMs: v.DICOMWEB_BREAKER_COOLDOWN_MS,
    dicomDir: v.DICOM_DIR,
    tileCacheBytes: v.TILE_CACHE_BYTES,
    prefetchFrames: v.TILE_PREFETCH_FRAMES,
    jpegQuality: v.TILE_JPEG_QUALITY,
    decodeThreads: v.GATEWAY_DECODE_THREADS ?? computeDefaultDecodeThreads(),
    showPatientData: v.GATEWAY_SHOW_PATIENT_DATA,
    demo: v.GATEWAY_DEMO,
    logLevel: v.LOG_LEVEL,
    modelsDir: v.MODELS_DIR,
    embedDir: v.EMBED_DIR,
    onnxExecutionProviders: Object.freeze([...v.ONNX_EXECUTION_PROVIDERS]),
    onnxThreads: v.ONNX_THREADS,
    embedFramesPerRequest: v.EMBED_FRAMES_PER_REQUEST,
    embedConcurrentSlides: v.EMBED_CONCURRENT_SLIDES,
    analysisCacheBytes: v.ANALYSIS_CACHE_BYTES,
    gatewayAuth: Object.freeze(gatewayAuth),
    corsOrigins: Object.freeze([...v.GATEWAY_CORS_ORIGINS]),
    bodyLimitBytes: v.GATEWAY_BODY_LIMIT_BYTES,
  });
}

/**
 * One decode thread per core but one, which the event loop and sharp's JPEG work keep busy; at most
 * 4, since each thread holds its own WASM heaps (OpenJPEG starts at about 50 MB) and a gateway only
 * decodes JPEG 2000 on tile misses.
 */
export function computeDefaultDecodeThreads(cores = availableParallelism()): number {
  // One per core, not one but one: the event loop loses nothing to a worker but its share of a core, and
  // an embedding job on 2 cores decodes 1.3x faster with 2 workers than with 1 (docs/decisions.md).
  return Math.max(1, Math.min(4, cores));
}

/** Shorter tokens could be guessed through POST /api/session. */
const MIN_TOKEN_LENGTH = 16;

function readGatewayAuth(v: z.output<typeof schema>, problems: string[]): GatewayAuth {
  if (v.GATEWAY_AUTH === 'token') {
    const list = v.GATEWAY_API_TOKENS ?? readSecretFile(v.GATEWAY_API_TOKENS_FILE, 'GATEWAY_API_TOKENS_FILE', problems) ?? '';
    const tokens = list.split(/[,\n]/).map((t) => t.trim()).filter(Boolean);
    if (tokens.length === 0) problems.push('GATEWAY_API_TOKENS or GATEWAY_API_TOKENS_FILE: at least one token is required when GATEWAY_AUTH=token');
    // Positions only: a token's value must never reach a log or a terminal.
    tokens.forEach((t, i) => t.length < MIN_TOKEN_LENGTH && problems.push(`GATEWAY_API_TOKENS: token ${i + 1} is shorter than ${MIN_TOKEN_LENGTH} characters`));
    return { kind: 'token', tokens: Object.freeze(tokens) };
  }
  if (v.GATEWAY_AUTH === 'trusted-header') {
    const secret = v.GATEWAY_TRUSTED_PROXY_SECRET ?? readSecretFile(v.GATEWAY_TRUSTED_PROXY_SECRET_FILE, 'GATEWAY_TRUSTED_PROXY_SECRET_FILE', problems);
    if (secret !== undefined && secret.length < MIN_TOKEN_LENGTH) problems.push(`GATEWAY_TRUSTED_PROXY_SECRET: shorter than ${MIN_TOKEN_LENGTH} characters`);
    return { kind: 'trusted-header', userHeader: v.GATEWAY_TRUSTED_USER_HEADER, proxySecret: secret };
  }
  return { kind: 'none' };
}

function isOrigin(value: string): boolean {
  try {
    return /^https?:$/.test(new URL(value).protocol) && new URL(value).origin === value;
  } catch {
    return false;
  }
}

/** The configuration without secrets, for the start-up log line. */
export function describeConfig(config: Config): Record<string, unknown> {
  return {
    port: config.port,
    host: config.host,
    source: config.dicomwebUrl ? { dicomweb: config.dicomwebUrl, auth: config.upstreamAuth.kind, extraHeaders: Object.keys(config.upstreamHeaders) } : { folder: config.dicomDir },
    tileCacheBytes: config.tileCacheBytes,
    prefetchFrames: config.prefetchFrames,
    decodeThreads: config.decodeThreads,
    showPatientData: config.showPatientData,
    modelsDir: config.modelsDir,
    embedDir: config.embedDir,
    onnxExecutionProviders: config.onnxExecutionProviders,
    // The kind and header names only: tokens and the proxy secret are never described.
    gatewayAuth: config.gatewayAuth.kind === 'trusted-header' ? { kind: 'trusted-header', userHeader: config.gatewayAuth.userHeader, proxySecret: config.gatewayAuth.proxySecret !== undefined } : config.gatewayAuth.kind === 'token' ? { kind: 'token', tokens: config.gatewayAuth.tokens.length } : { kind: 'none' },
    corsOrigins: config.corsOrigins,
    bodyLimitBytes: config.bodyLimitBytes,
  };
}
