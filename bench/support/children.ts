/**
 * Child processes of the benchmark (the gateway, wrk) and their cleanup: whatever is still running when
 * the benchmark exits — normally, on an error, or on Ctrl-C — is killed. Orthanc cleans up after itself
 * (test/support/orthanc.ts registers its own exit handler).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, closeSync, constants, openSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';

const live = new Set<ChildProcess>();

process.once('exit', () => {
  // Nothing async runs in an 'exit' handler: SIGKILL is the only thing that surely lands.
  for (const child of live) child.kill('SIGKILL');
});
// Without these, Ctrl-C ends Node without running 'exit' handlers and the children live on.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => process.exit(130));
}

/**
 * util-linux `setpriv --pdeathsig KILL` makes the kernel kill the child when the benchmark dies even by
 * SIGKILL; it execs the command, so the pid (and /proc/PID/status) stays the child's own.
 */
const setpriv = ['/usr/bin/setpriv', '/bin/setpriv'].find((path) => {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
});

/** Options of {@link spawnTracked}. */
export interface SpawnOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** stdout and stderr go to this file; undefined: both are piped to the caller. */
  logPath?: string;
}

/** Spawns a child that the benchmark kills on exit, whatever happens. */
export function spawnTracked(command: string, args: readonly string[], options: SpawnOptions = {}): ChildProcess {
  const [file, argv] = setpriv ? [setpriv, ['--pdeathsig', 'KILL', command, ...args]] : [command, [...args]];
  const logFd = options.logPath === undefined ? undefined : openSync(options.logPath, 'a');
  try {
    const stdio = logFd === undefined ? (['ignore', 'pipe', 'pipe'] as const) : (['ignore', logFd, logFd] as const);
    const child = spawn(file, argv, { cwd: options.cwd, env: options.env, stdio: [...stdio] });
    live.add(child);
    child.once('exit', () => live.delete(child));
    child.once('error', () => live.delete(child));
    return child;
  } finally {
    // The child holds its own copy of the descriptor.
    if (logFd !== undefined) closeSync(logFd);
  }
}

/** Runs a tracked child to its end, collecting what it printed. */
export async function runToEnd(command: string, args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawnTracked(command, args);
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (c) => resolve(c));
  });
  return { code, stdout, stderr };
}

/** Sends SIGTERM, then SIGKILL after `graceMs`; resolves once the child has exited. */
export async function stopChild(child: ChildProcess, graceMs = 5_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** A free TCP port on loopback (probe, read, close: a small race that a benchmark can live with). */
export async function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.unref();
    probe.on('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => {
        if (address !== null && typeof address === 'object') resolve(address.port);
        else reject(new Error('could not read a free port'));
      });
    });
  });
}

/** Polls `url` until it answers 2xx; throws when the child exits first or after `timeoutMs`. */
export async function waitForHttp(url: string, child: ChildProcess, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${url}: the process exited (${child.exitCode ?? child.signalCode}) before answering`);
    }
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(1_000) });
      await response.arrayBuffer();
      if (response.ok) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms`);
}

/** Resident and peak resident memory of a process, in MiB (Linux /proc). */
export async function readMemoryMiB(pid: number): Promise<{ rssMiB: number; peakMiB: number } | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const kib = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
    return { rssMiB: kib('VmRSS') / 1024, peakMiB: kib('VmHWM') / 1024 };
  } catch {
    return undefined;
  }
}
