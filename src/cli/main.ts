/**
 * `wsi-gateway <command>`: the one command-line entry (bin/wsi-gateway.mjs loads this through tsx).
 * Each command lives in its own module, imported only when chosen, so `--help` and `bench` never load
 * onnxruntime or sharp. Exit codes are the same for every command, for scripts to rely on.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';
import { ConfigError, readConfigFlags } from '../config/index.js';
import { APP_ROOT_URL } from '../paths.js';
import { GATEWAY_VERSION } from '../version.js';

export const EXIT = { ok: 0, failed: 1, usage: 2, interrupted: 130 } as const;

const EXIT_CODES = `Exit codes:
  0    success
  1    the work failed (e.g. some slides failed to embed or import, a benchmark failed)
  2    usage or configuration error (unknown command or flag, invalid environment variable)
  130  interrupted (Ctrl-C); work already committed is kept`;

const USAGE = `Usage: wsi-gateway <command> [options]

Commands:
  serve      start the gateway (HTTP API, tiles, viewer)
  embed      embed slides without a server, with a progress bar
  import     convert images to DICOM WSI and store them in the source
  bench      run a benchmark: tiles | embed | kmeans | client

Options:
  -h, --help       this text; \`wsi-gateway <command> --help\` for a command's options
  -v, --version    the gateway's version

Settings come from environment variables (PORT, DICOMWEB_URL, MODELS_DIR, ...: README.md).

${EXIT_CODES}`;

const SERVE_USAGE = `Usage: wsi-gateway serve [--setting value ...]

Starts the gateway on HOST:PORT (default 0.0.0.0:8080) and serves until SIGINT or SIGTERM, then stops
accepting, drains requests in flight and exits 0. Every setting is an environment variable (README.md's
table); a flag sets one for this run and wins over the environment: --port 9000, --dicomweb-url URL,
--log-level debug. Secrets (passwords, tokens) only from the environment or *_FILE.
Exits 2 when the configuration or a model manifest is invalid, 1 when it cannot listen.`;

/** bench name → script, relative to the repository root. */
const BENCHES: Readonly<Record<string, string>> = {
  tiles: 'bench/tiles.ts',
  embed: 'bench/embed.ts',
  kmeans: 'bench/kmeans.ts',
  client: 'bench/dicomweb-client.ts',
};

const BENCH_USAGE = `Usage: wsi-gateway bench <${Object.keys(BENCHES).join('|')}> [args...]

Runs bench/<name>.ts in a child process (the benchmarks start their own Orthanc from the test support
code, so they need a checkout, not an installed image) and exits with its exit code. Results are
printed and written to bench/results/.

${EXIT_CODES}`;

function isHelp(argv: readonly string[]): boolean {
  return argv.includes('--help') || argv.includes('-h');
}

function usageError(message: string, usage: string): number {
  console.error(`${message}\n\n${usage}`);
  return EXIT.usage;
}

/** A child's exit as ours: its code, or 128 + the signal number when a signal ended it (the shell's rule). */
function exitCodeOf(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  return 128 + (signal ? (constants.signals[signal] ?? 0) : 0);
}

async function runBench(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--help' || name === '-h') {
    console.log(BENCH_USAGE);
    return EXIT.ok;
  }
  if (name === undefined) return usageError('Name a benchmark.', BENCH_USAGE);
  const script = BENCHES[name];
  if (script === undefined) return usageError(`Unknown benchmark '${name}'.`, BENCH_USAGE);
  const path = fileURLToPath(new URL(script, APP_ROOT_URL));
  if (!existsSync(path)) return usageError(`${script} is not in this installation: run benchmarks from a checkout.`, BENCH_USAGE);
  // tsx by absolute URL, so the child finds it whatever the working directory is.
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), path, ...rest], { cwd: fileURLToPath(APP_ROOT_URL), stdio: 'inherit' });
  // Ctrl-C reaches the child through the terminal's process group: wait for it to stop and report its
  // exit (130). A signal sent to this process alone is passed on.
  process.on('SIGINT', () => undefined);
  process.on('SIGTERM', () => child.kill('SIGTERM'));
  return new Promise((resolve) => {
    child.on('error', (error) => {
      console.error(`cannot start the benchmark: ${error.message}`);
      resolve(EXIT.failed);
    });
    child.on('exit', (code, signal) => resolve(exitCodeOf(code, signal)));
  });
}

async function runServe(argv: string[]): Promise<number> {
  if (isHelp(argv)) {
    console.log(SERVE_USAGE);
    return EXIT.ok;
  }
  let flags: Record<string, string>;
  try {
    flags = readConfigFlags(argv);
  } catch (error) {
    if (error instanceof ConfigError) return usageError(error.problems.join('\n'), SERVE_USAGE);
    throw error;
  }
  const { main } = await import('../main.js');
  await main({ ...process.env, ...flags });
  // The server now owns the process: it exits itself on SIGINT/SIGTERM (0) or a fatal error (1, 2).
  return new Promise<number>(() => undefined);
}

/**
 * Runs one command line (without `node` and the script) and resolves to the process's exit code. `serve`
 * never resolves: the server exits the process when it stops.
 */
export async function runCli(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case undefined:
      return usageError('Name a command.', USAGE);
    case '-h':
    case '--help':
    case 'help':
      console.log(USAGE);
      return EXIT.ok;
    case '-v':
    case '--version':
      console.log(GATEWAY_VERSION);
      return EXIT.ok;
    case 'serve':
      return runServe(rest);
    case 'embed': {
      const { runEmbed } = await import('./embed.js');
      return runEmbed(rest);
    }
    case 'import': {
      const { runImport } = await import('./import.js');
      return runImport(rest);
    }
    case 'bench':
      return runBench(rest);
    default:
      return usageError(`Unknown command '${command}'.`, USAGE);
  }
}
