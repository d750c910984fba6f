/**
 * A real Orthanc (the PACS of our integration tests and benchmarks) as a child process: its own
 * generated configuration, a free loopback port, a temp storage, the DICOMweb plugin and, by default,
 * the WSI plugin. Written against Debian's Orthanc 1.10.1 (packages orthanc orthanc-dicomweb
 * orthanc-wsi).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, closeSync, constants, existsSync, openSync, rmSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, isAbsolute, join } from 'node:path';

/** Where Debian installs Orthanc's plugins. */
const pluginDir = '/usr/share/orthanc/plugins';
const dicomWebPlugin = join(pluginDir, 'libOrthancDicomWeb.so');
const wsiPlugin = join(pluginDir, 'libOrthancWSI.so');
const installHint = 'apt-get install orthanc orthanc-dicomweb orthanc-wsi';

/** Options of {@link startOrthanc}. */
export interface OrthancOptions {
  /**
   * The DICOMweb plugin's `SeriesMetadata`/`StudiesMetadata`. `MainDicomTags` (the plugin's own
   * default) answers series metadata with ~22 attributes: no ImageType, no TotalPixelMatrix*.
   * @default 'Full'
   */
  metadataMode?: 'Full' | 'MainDicomTags';
  /** Load Orthanc's WSI plugin (`/wsi/...`), the viewer whose speed the gateway must beat. @default true */
  withWsiPlugin?: boolean;
  /**
   * Storage and SQLite index folder. Given, it is kept by `stop()` so a benchmark can reuse a loaded
   * archive across runs (never share it between two running Orthancs: the index is locked).
   * @default a folder in the server's temp dir, removed by `stop()`
   */
  storageDir?: string;
  /** How long to wait for `GET /system` to answer, in milliseconds. @default 30_000 */
  startTimeoutMs?: number;
}

/** A running Orthanc. */
export interface OrthancServer {
  /** `http://127.0.0.1:PORT`, no trailing slash. */
  readonly baseUrl: string;
  /** `baseUrl + '/dicom-web'`, no trailing slash. */
  readonly dicomwebUrl: string;
  /** POSTs files to `/instances`, a few in parallel; throws on the first non-2xx answer. */
  upload(filePaths: readonly string[]): Promise<void>;
  /** Stops Orthanc and removes its temp dir. Idempotent. */
  stop(): Promise<void>;
}

/** `/usr/sbin/Orthanc` (Debian), else `Orthanc` on PATH, else undefined. */
export function findOrthancBinary(): string | undefined {
  const onPath = (process.env.PATH ?? '').split(delimiter).filter((dir) => isAbsolute(dir));
  return ['/usr/sbin/Orthanc', ...onPath.map((dir) => join(dir, 'Orthanc'))].find(isExecutable);
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * util-linux `setpriv --pdeathsig KILL` makes the kernel kill Orthanc when its parent dies, even when
 * the test process is SIGKILLed and no 'exit' handler runs. It execs Orthanc, so the pid stays the same.
 * (The signal fires when the spawning *thread* exits: fine for vitest's default `forks` pool.)
 */
const setpriv = ['/usr/bin/setpriv', '/bin/setpriv'].find(isExecutable);

/** Starts Orthanc and waits until it answers `GET /system`. */
export async function startOrthanc(options: OrthancOptions = {}): Promise<OrthancServer> {
  const { metadataMode = 'Full', withWsiPlugin = true, storageDir, startTimeoutMs = 30_000 } = options;
  const binary = findOrthancBinary();
  if (binary === undefined) throw new Error(`Orthanc is not installed (${installHint})`);
  const plugins = [dicomWebPlugin, ...(withWsiPlugin ? [wsiPlugin] : [])];
  const missing = plugins.filter((p) => !existsSync(p));
  if (missing.length > 0) throw new Error(`Orthanc plugin(s) missing: ${missing.join(', ')} (${installHint})`);

  await removeStaleTempDirs();
  const tempDir = await mkdtemp(join(tmpdir(), `${tempPrefix}${process.pid}-`));
  const storage = storageDir ?? join(tempDir, 'storage');
  const configPath = join(tempDir, 'orthanc.json');
  // Orthanc exits with "HttpPortInUse" (code 2003) when another process took the port between our
  // probe and its bind; a fresh port almost always works the second time.
  const attempts = 3;
  try {
    for (let attempt = 1; ; attempt++) {
      const port = await findFreePort();
      await writeFile(configPath, JSON.stringify(buildConfig({ port, storage, plugins, metadataMode }), null, 2));
      const logPath = join(tempDir, `orthanc-${attempt}.log`);
      const child = launch(binary, configPath, tempDir, logPath);
      // Last resort when the test process exits without calling stop(): kill synchronously (nothing
      // async runs in an 'exit' handler) and remove the temp dir; SIGKILL is instant, so rmSync rarely
      // races Orthanc's last writes.
      const killOnExit = (): void => {
        child.kill('SIGKILL');
        rmSync(tempDir, { recursive: true, force: true });
      };
      process.once('exit', killOnExit);
      const baseUrl = `http://127.0.0.1:${port}`;
      const outcome = await waitUntilReady(child, baseUrl, startTimeoutMs);
      if (outcome === 'ready') {
        const keptStorage = storageDir === undefined ? undefined : storage;
        return createOrthancServer({ child, baseUrl, tempDir, keptStorage, killOnExit });
      }
      process.off('exit', killOnExit);
      child.kill('SIGKILL');
      const log = await readTail(logPath);
      if (outcome === 'exited' && /\(code 2003\)/.test(log) && attempt < attempts) continue;
      const why = outcome === 'timeout' ? `did not answer GET /system within ${startTimeoutMs} ms` : 'exited';
      throw new Error(`Orthanc ${why} (attempt ${attempt}, port ${port}); log tail:\n${log}`);
    }
  } catch (error) {
    await rm(tempDir, { recursive: true, force: true });
    throw error;
  }
}

/** Temp dirs are named after the test process, so a later run can tell which ones are orphans. */
const tempPrefix = 'orthanc-test-';

/**
 * A test process killed by a signal runs no 'exit' handler: its Orthanc dies (pdeathsig) but the temp
 * storage stays. Remove those left by processes that no longer exist.
 */
async function removeStaleTempDirs(): Promise<void> {
  const entries = await readdir(tmpdir()).catch(() => []);
  for (const name of entries) {
    const owner = new RegExp(`^${tempPrefix}(\\d+)-`).exec(name)?.[1];
    if (owner !== undefined && !isProcessAlive(Number(owner))) {
      await rm(join(tmpdir(), name), { recursive: true, force: true });
    }
  }
}

function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to someone else.
    return error instanceof Error && 'code' in error && error.code === 'EPERM';
  }
}

interface ConfigInput {
  port: number;
  storage: string;
  plugins: string[];
  metadataMode: 'Full' | 'MainDicomTags';
}

function buildConfig({ port, storage, plugins, metadataMode }: ConfigInput): Record<string, unknown> {
  return {
    Name: 'wsi-gateway-test',
    HttpPort: port,
    // Orthanc 1.10 has no bind-address option (it listens on 0.0.0.0); RemoteAccessAllowed=false makes it
    // refuse every client that is not loopback. HttpBindAddresses arrived in Orthanc's mainline in
    // September 2025 (changeset 86b3ad58baa3); older versions ignore it, newer ones listen on loopback only.
    HttpBindAddresses: ['127.0.0.1'],
    RemoteAccessAllowed: false,
    AuthenticationEnabled: false,
    DicomServerEnabled: false,
    StorageDirectory: storage,
    IndexDirectory: storage,
    // Jobs survive restarts by default; a throwaway test server has none worth keeping.
    SaveJobs: false,
    Plugins: plugins,
    DicomWeb: {
      Enable: true,
      Root: '/dicom-web/',
      SeriesMetadata: metadataMode,
      StudiesMetadata: metadataMode,
    },
  };
}

function launch(binary: string, configPath: string, cwd: string, logPath: string): ChildProcess {
  // Orthanc logs to stderr; both streams go to a file so the test output stays clean and a failed
  // start can quote the tail.
  const logFd = openSync(logPath, 'a');
  try {
    const [command, args] = setpriv
      ? [setpriv, ['--pdeathsig', 'KILL', binary, configPath]]
      : [binary, [configPath]];
    return spawn(command, args, { cwd, stdio: ['ignore', logFd, logFd] });
  } finally {
    // The child holds its own copy of the descriptor.
    closeSync(logFd);
  }
}

/** Listens on port 0 on all interfaces (where Orthanc 1.10 binds), reads the port, closes. */
async function findFreePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const probe = createServer();
    probe.unref();
    probe.on('error', reject);
    probe.listen(0, () => {
      const address = probe.address();
      probe.close(() => {
        if (address !== null && typeof address === 'object') resolvePort(address.port);
        else reject(new Error('could not read a free port'));
      });
    });
  });
}

type StartOutcome = 'ready' | 'exited' | 'timeout';

async function waitUntilReady(child: ChildProcess, baseUrl: string, timeoutMs: number): Promise<StartOutcome> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  const onExit = (): void => {
    exited = true;
  };
  // 'error' covers a binary that cannot be spawned at all; without a listener it would crash the run.
  child.once('exit', onExit).once('error', onExit);
  try {
    while (Date.now() < deadline) {
      if (exited) return 'exited';
      try {
        const response = await fetch(`${baseUrl}/system`, { signal: AbortSignal.timeout(1_000) });
        await response.arrayBuffer();
        if (response.ok) return 'ready';
      } catch {
        // Not listening yet.
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    return 'timeout';
  } finally {
    child.off('exit', onExit).off('error', onExit);
  }
}

async function readTail(path: string, lines = 20): Promise<string> {
  try {
    return (await readFile(path, 'utf8')).trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** How many uploads run at once: enough to overlap Orthanc's parsing with the next file's transfer. */
const uploadConcurrency = 4;

interface ServerParts {
  child: ChildProcess;
  baseUrl: string;
  tempDir: string;
  /** The caller's storage dir, kept by stop(); undefined when it lives (and dies) in tempDir. */
  keptStorage: string | undefined;
  killOnExit: () => void;
}

function createOrthancServer({ child, baseUrl, tempDir, keptStorage, killOnExit }: ServerParts): OrthancServer {
  let stopping: Promise<void> | undefined;

  async function upload(filePaths: readonly string[]): Promise<void> {
    const queue = [...filePaths];
    async function worker(): Promise<void> {
      for (let path = queue.shift(); path !== undefined; path = queue.shift()) {
        const body = await readFile(path);
        const response = await fetch(`${baseUrl}/instances`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/dicom' },
          body,
        });
        const text = await response.text();
        if (!response.ok) {
          queue.length = 0;
          throw new Error(`Orthanc refused ${path}: HTTP ${response.status} ${text.slice(0, 300)}`);
        }
      }
    }
    await Promise.all(Array.from({ length: Math.min(uploadConcurrency, queue.length) }, () => worker()));
  }

  async function stop(): Promise<void> {
    stopping ??= (async () => {
      process.off('exit', killOnExit);
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise<void>((r) => child.once('exit', () => r()));
        // A kept storage deserves a clean SQLite shutdown; a throwaway one is deleted anyway.
        child.kill(keptStorage === undefined ? 'SIGKILL' : 'SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
      await rm(tempDir, { recursive: true, force: true });
    })();
    return stopping;
  }

  return Object.freeze({ baseUrl, dicomwebUrl: `${baseUrl}/dicom-web`, upload, stop });
}
