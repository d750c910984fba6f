/**
 * The gateway as a real child process, for the scenarios that kill it (crash) or measure its memory
 * (soak, faults): `node --import tsx src/main.ts`, one process (the `tsx` command would put a second
 * node between us and the gateway, and kill -9 would orphan it), configured by environment only, on a
 * free loopback port. Spawning, port probing and cleanup are the benchmarks' (bench/support/children.ts);
 * this adds what the scenarios need on top: any settings, kill -9, and the exit as a promise.
 */
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { findFreePort, spawnTracked, waitForHttp } from '../../bench/support/children.js';

export { findFreePort };

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface GatewayProcess {
  readonly pid: number;
  /** `http://127.0.0.1:PORT`. */
  readonly url: string;
  readonly child: ChildProcess;
  /** Resolves with the exit code (or signal name) once the process has ended. */
  readonly exited: Promise<number | string>;
  /** SIGKILL, then wait for the exit. */
  kill9(): Promise<void>;
  /** SIGTERM (orderly shutdown), then wait; SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<number | string>;
}

export interface StartGatewayOptions {
  /** Settings (DICOMWEB_URL, EMBED_DIR, TILE_CACHE_BYTES ...); PORT and HOST are chosen here. */
  env: Record<string, string>;
  /** Appended to (the log of every start of one scenario can go to one file). */
  logFile: string;
  /** How long to wait for /healthz. @default 60_000 */
  startTimeoutMs?: number;
  /** Extra node flags (--max-old-space-size=...). */
  nodeFlags?: string[];
}

/** Starts the gateway and waits until /healthz answers 200. */
export async function startGatewayProcess(options: StartGatewayOptions): Promise<GatewayProcess> {
  const port = await findFreePort();
  // Only what the gateway needs from our environment: it rejects unknown variables with its prefixes.
  const env = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', GATEWAY_DEMO: 'false', LOG_LEVEL: 'warn', ...options.env, PORT: String(port), HOST: '127.0.0.1' };
  const child = spawnTracked(process.execPath, [...(options.nodeFlags ?? []), '--import', 'tsx', 'src/main.ts'], { cwd: repoRoot, env, logPath: options.logFile });
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitForHttp(`${url}/healthz`, child, options.startTimeoutMs ?? 60_000);
  } catch (error) {
    child.kill('SIGKILL');
    throw new Error(`the gateway did not start (see ${options.logFile})`, { cause: error });
  }
  return {
    pid: child.pid!,
    url,
    child,
    exited,
    async kill9() {
      child.kill('SIGKILL');
      await exited;
    },
    async stop(graceMs = 15_000) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}
