/**
 * The gateway as production runs it (`npm start`, the Docker images): built by scripts/build-server.mjs
 * and started as `node dist/wsi-gateway.mjs serve` in its own process, so it never shares an event loop
 * (or a CPU-time budget inside one process) with the load generator.
 */
import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findFreePort, readMemoryMiB, spawnTracked, stopChild, waitForHttp } from './children.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** Builds dist/wsi-gateway.mjs from the sources as they are now, once per benchmark process. */
let built = false;
function buildServer(): void {
  if (built) return;
  execFileSync(process.execPath, ['scripts/build-server.mjs'], { cwd: repoRoot, stdio: 'inherit' });
  built = true;
}

/** Options of {@link startGateway}. */
export interface GatewayOptions {
  /** The PACS's DICOMweb root. */
  dicomwebUrl: string;
  /** Where the gateway's stdout and stderr go (pino JSON lines). */
  logPath: string;
  /** TILE_CACHE_BYTES. @default '1GiB' (the large slide's level 0 is ~50 MB of JPEG) */
  cacheBytes?: string;
  /** TILE_PREFETCH_FRAMES; undefined: the gateway's default. */
  prefetchFrames?: number;
  /** Extra `node` flags, e.g. `['--cpu-prof']` to profile it (Node 20 refuses that in NODE_OPTIONS). @default [] */
  nodeArgs?: readonly string[];
}

/** A running gateway process. */
export interface GatewayProcess {
  /** `http://127.0.0.1:PORT`, no trailing slash. */
  readonly baseUrl: string;
  readonly pid: number;
  /** Resident and peak resident memory now, in MiB. */
  readMemory(): Promise<{ rssMiB: number; peakMiB: number } | undefined>;
  /** SIGTERM (the gateway's orderly shutdown), SIGKILL after 5 s. Idempotent. */
  stop(): Promise<void>;
}

/** The gateway rejects unknown variables with its prefixes: pass none of the caller's own. */
const gatewayPrefixes = ['DICOMWEB_', 'DICOM_', 'TILE_', 'GATEWAY_'];

/** Starts the gateway and waits until `/healthz` answers. */
export async function startGateway({ dicomwebUrl, logPath, cacheBytes = '1GiB', prefetchFrames, nodeArgs = [] }: GatewayOptions): Promise<GatewayProcess> {
  const port = await findFreePort();
  const inherited = Object.entries(process.env).filter(([key]) => !gatewayPrefixes.some((p) => key.startsWith(p)));
  const env: NodeJS.ProcessEnv = {
    ...Object.fromEntries(inherited),
    PORT: String(port),
    HOST: '127.0.0.1',
    DICOMWEB_URL: dicomwebUrl,
    TILE_CACHE_BYTES: cacheBytes,
    ...(prefetchFrames === undefined ? {} : { TILE_PREFETCH_FRAMES: String(prefetchFrames) }),
    // One line per request at info level would cost the gateway more than some of the work measured.
    LOG_LEVEL: 'warn',
  };
  buildServer();
  const child = spawnTracked(process.execPath, [...nodeArgs, '--enable-source-maps', 'dist/wsi-gateway.mjs', 'serve'], { cwd: repoRoot, env, logPath });
  const baseUrl = `http://127.0.0.1:${port}`;
  try {
    await waitForHttp(`${baseUrl}/healthz`, child);
  } catch (error) {
    await stopChild(child);
    throw new Error(`The gateway did not start; log tail:\n${await readLogTail(logPath)}`, { cause: error });
  }
  const pid = child.pid;
  if (pid === undefined) throw new Error('The gateway process has no pid');
  let stopping: Promise<void> | undefined;
  return {
    baseUrl,
    pid,
    readMemory: () => readMemoryMiB(pid),
    stop: () => (stopping ??= stopChild(child)),
  };
}

async function readLogTail(path: string, lines = 20): Promise<string> {
  const text = await readFile(path, 'utf8').catch(() => '(no log)');
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

/** Warnings and errors the gateway logged (pino: level 40 warn, 50 error, 60 fatal), as short lines. */
export async function readGatewayProblems(logPath: string): Promise<string[]> {
  const text = await readFile(logPath, 'utf8').catch(() => '');
  const problems: string[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      const entry: unknown = JSON.parse(line);
      if (typeof entry !== 'object' || entry === null) continue;
      const { level, msg } = entry as { level?: unknown; msg?: unknown };
      if (typeof level === 'number' && level >= 40) problems.push(`level ${level}: ${String(msg)}`);
    } catch {
      // Not pino JSON (a Node warning or a stack trace on stderr): a problem worth showing as it is.
      problems.push(line.slice(0, 200));
    }
  }
  return problems;
}
