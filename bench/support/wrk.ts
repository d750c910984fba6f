/**
 * Warm throughput with wrk (C, epoll): it spends far less CPU per request than a Node client, which
 * matters on a 2-core machine where the client and the server share the cores. A Lua script cycles
 * through every tile path so no single tile's cache entry makes the answer.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runToEnd } from './children.js';

/** Options of {@link runWrk}. */
export interface WrkOptions {
  /** Scheme, host and port, no path. */
  baseUrl: string;
  /** Absolute paths (with query, if any) to cycle through. */
  paths: readonly string[];
  /** Folder for the Lua script and the path list. */
  workDir: string;
  /** Name for the script files. */
  name: string;
  /** @default 10 */
  durationSeconds?: number;
  /** @default 2 */
  threads?: number;
  /** @default 16 */
  connections?: number;
  /** Request headers (the WADO-RS Accept). */
  headers?: Record<string, string>;
}

/** wrk's summary, from the script's `done()`. */
export interface WrkResult {
  readonly requests: number;
  readonly seconds: number;
  readonly requestsPerSecond: number;
  readonly bytes: number;
  /** Socket errors (connect, read, write, timeout) and answers outside 2xx/3xx (`status`). */
  readonly errors: { connect: number; read: number; write: number; timeout: number; status: number };
  readonly latencyMs: { p50: number; p99: number; max: number };
}

const luaString = (s: string): string => JSON.stringify(s);

/**
 * Each thread reads the path list in init() and starts at its own offset (setup() numbers the threads in
 * wrk's main Lua state) so the two threads do not walk the list in lockstep.
 */
function buildScript(pathsFile: string, headers: Record<string, string>, threads: number): string {
  const headerLines = Object.entries(headers).map(([k, v]) => `wrk.headers[${luaString(k)}] = ${luaString(v)}`);
  return `${headerLines.join('\n')}
local threadCount = 0
function setup(thread)
  thread:set("threadIndex", threadCount)
  threadCount = threadCount + 1
end
function init(args)
  paths = {}
  for line in io.lines(${luaString(pathsFile)}) do paths[#paths + 1] = line end
  i = math.floor((threadIndex or 0) * #paths / ${threads})
end
function request()
  i = i % #paths + 1
  return wrk.format(nil, paths[i])
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('BENCH_JSON {"requests":%d,"durationUs":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,"timeout":%d,"status":%d,"p50Us":%d,"p99Us":%d,"maxUs":%d}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.timeout, e.status,
    latency:percentile(50), latency:percentile(99), latency.max))
end
`;
}

interface WrkJson {
  requests: number;
  durationUs: number;
  bytes: number;
  connect: number;
  read: number;
  write: number;
  timeout: number;
  status: number;
  p50Us: number;
  p99Us: number;
  maxUs: number;
}

/** Runs `wrk -tT -cC -dDs -s script URL` and parses its summary. */
export async function runWrk(options: WrkOptions): Promise<WrkResult> {
  const { baseUrl, paths, workDir, name, durationSeconds = 10, threads = 2, connections = 16, headers = {} } = options;
  const pathsFile = join(workDir, `${name}.paths`);
  const scriptFile = join(workDir, `${name}.lua`);
  await writeFile(pathsFile, `${paths.join('\n')}\n`);
  await writeFile(scriptFile, buildScript(pathsFile, headers, threads));
  const args = [`-t${threads}`, `-c${connections}`, `-d${durationSeconds}s`, '--timeout', '10s', '-s', scriptFile, `${baseUrl}/`];
  const { code, stdout, stderr } = await runToEnd('wrk', args);
  const line = stdout.split('\n').find((l) => l.startsWith('BENCH_JSON '));
  if (code !== 0 || line === undefined) throw new Error(`wrk ${args.join(' ')} failed (exit ${code}):\n${stdout}\n${stderr}`);
  const json = JSON.parse(line.slice('BENCH_JSON '.length)) as WrkJson;
  const seconds = json.durationUs / 1e6;
  return {
    requests: json.requests,
    seconds,
    requestsPerSecond: json.requests / seconds,
    bytes: json.bytes,
    errors: { connect: json.connect, read: json.read, write: json.write, timeout: json.timeout, status: json.status },
    latencyMs: { p50: json.p50Us / 1000, p99: json.p99Us / 1000, max: json.maxUs / 1000 },
  };
}
