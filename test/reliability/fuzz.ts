/**
 * Fuzzing (issue 7, part 3): every route the app has, with generated malformed inputs (fuzz-grammar.ts),
 * against two gateways: a folder of DICOM files with a canary file beside it (in a child process under
 * strace, so every file it opens is on record) and the shared Orthanc over DICOMweb (in this process).
 * Invariants: no 5xx but an upstream's (502/504 with an UPSTREAM_* code), the one error shape with a
 * documented code, no canary and no machine path in an answer, no hang, no unhandled rejection or
 * uncaught exception, the known-good request unchanged after every batch, and no file opened outside
 * the folder, the store, the repository and the system's trees.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, createWriteStream, existsSync, mkdirSync, readFileSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import path from 'node:path';
import { sharedWsiDir } from '../support/wsi-data.js';
import { repoRoot } from './fuzz-gateway.js';
import { findForbiddenOpens, findStrace, readOpenedPaths, straceArgs } from './fuzz-files.js';
import type { TargetOptions, TargetResult } from './fuzz-target.js';
import { runTargetFuzz } from './fuzz-target.js';
import { formatCount, type Scenario, type ScenarioContext, type ScenarioResult } from './scenario.js';

/** Inputs per route and gateway. The issue asks for at least 10,000 in full. */
export const FUZZ_INPUTS_PER_ROUTE = { ci: 250, full: 10_000 } as const;
/** The seed of a run, in the report; FUZZ_SEED replays another. */
export const DEFAULT_FUZZ_SEED = 20_250_707;
const TOKEN = 'fuzz-token-0123456789abcdef';
/** Small, so that bodies over it are cheap to make; the README's range starts at 1024. */
const FOLDER_BODY_LIMIT = 4096;

/** The folder the folder gateway serves: small slides of every kind, a file that is not DICOM, links out. */
function prepareFolder(workDir: string, marker: string): { dicomDir: string; canaryPath: string } {
  const dicomDir = path.join(workDir, 'slides');
  const outside = path.join(workDir, 'outside');
  mkdirSync(path.join(dicomDir, 'cmu1'), { recursive: true });
  mkdirSync(path.join(dicomDir, 'public'), { recursive: true });
  mkdirSync(outside, { recursive: true });
  const q90 = path.join(sharedWsiDir, 'cmu1-t256-q90');
  for (const name of ['wsi-000000.dcm', 'wsi-000001.dcm', 'wsi-000002.dcm', 'wsi-000003.dcm', 'wsi-000004.dcm', 'label-000006.dcm', 'overview-000007.dcm']) {
    copyFileSync(path.join(q90, name), path.join(dicomDir, 'cmu1', name));
  }
  for (const file of ['highdicom/sm_image_jpegls.dcm', 'google-wsi2dcm/raw.dicom', 'google-ezwsi/label.dcm', 'google-medical-imaging/wsi_annotation.dcm']) {
    copyFileSync(path.join(sharedWsiDir, 'public', file), path.join(dicomDir, 'public', file.replace('/', '-')));
  }
  writeFileSync(path.join(dicomDir, 'README.txt'), 'not DICOM\n');
  const canaryPath = path.join(outside, 'canary.dcm');
  writeFileSync(canaryPath, `DICM canary ${marker}\n`);
  // Links out of the folder: the scan must not follow them (README: links are not followed).
  symlinkSync(canaryPath, path.join(dicomDir, 'canary-link.dcm'));
  symlinkSync(outside, path.join(dicomDir, 'outside-link'));
  return { dicomDir, canaryPath };
}

/** The viewer's files are a route too; global-setup builds them for the tests, run.ts may not have. */
async function ensureViewerBuilt(): Promise<void> {
  if (existsSync(path.join(repoRoot, 'viewer/dist/index.html'))) return;
  await runChild(process.execPath, ['scripts/build-viewer.mjs'], path.join(tmpdir(), 'wsigw-viewer-build.log'));
}

function runChild(command: string, args: string[], logFile: string, onLine?: (line: string) => void): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: repoRoot, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', UV_USE_IO_URING: '0' }, stdio: ['ignore', 'pipe', 'pipe'] });
    const log = createWriteStream(logFile, { flags: 'a' });
    child.stderr.pipe(log);
    child.stdout.on('data', (chunk: Buffer) => {
      log.write(chunk);
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) onLine?.(line);
    });
    child.once('error', reject);
    child.once('exit', (code) => {
      log.end();
      resolve(code ?? 1);
    });
  });
}

interface FolderOutcome {
  result?: TargetResult;
  failures: string[];
  fileCheck: string;
}

/** The folder half, in a child process; under strace when there is one (UV_USE_IO_URING=0 keeps opens visible). */
async function fuzzFolder(context: ScenarioContext, options: TargetOptions, dicomDir: string, canaryPath: string): Promise<FolderOutcome> {
  const optionsFile = path.join(context.workDir, 'folder-options.json');
  const resultFile = path.join(context.workDir, 'folder-result.json');
  const straceLog = path.join(context.workDir, 'folder-strace.log');
  writeFileSync(optionsFile, JSON.stringify(options));
  const strace = findStrace();
  const node = [process.execPath, '--import', 'tsx', 'test/reliability/fuzz-child.ts', optionsFile, resultFile];
  const [command, ...args] = strace ? [strace, ...straceArgs(straceLog), ...node] : node;
  if (!strace) context.log('fuzz: strace not found: the folder half runs without the file-open check (install strace in CI)');
  const code = await runChild(command!, args, path.join(context.workDir, 'folder-child.log'), context.log);
  const outcome = existsSync(resultFile) ? (JSON.parse(readFileSync(resultFile, 'utf8')) as { result?: TargetResult; error?: string }) : { error: `the child exited ${code} without a result` };
  const failures = outcome.error ? [`folder: the fuzz did not finish: ${outcome.error}`] : [...outcome.result!.failures];
  if (code !== 0) failures.push(`folder: the child process exited with ${code} (see folder-child.log)`);
  if (!strace) return { result: outcome.result, failures, fileCheck: 'skipped: strace is not installed' };
  const opened = readOpenedPaths(straceLog, repoRoot);
  const real = (p: string) => (existsSync(p) ? realpathSync(p) : p);
  const workDir = real(context.workDir);
  const temp = [tmpdir(), real(tmpdir()), '/tmp', '/var/tmp'];
  // onnxruntime's native library keeps a device id under ~/.cache when it loads a model (its telemetry);
  // the path is fixed in the library, never built from a request.
  const onnxDeviceId = path.join(homedir(), '.cache/Microsoft/DeveloperTools');
  const bad = findForbiddenOpens(opened, {
    allowed: [real(dicomDir), repoRoot, real(repoRoot), '/proc', '/sys', '/dev', '/usr', '/lib', '/lib64', '/etc', ...temp, onnxDeviceId],
    // The workDir is in the temp dir: inside it only the folder, the store and the child's own files are fair.
    forbidden: [workDir, context.workDir, path.dirname(canaryPath), real(path.dirname(canaryPath))],
    allowedInsideForbidden: [real(dicomDir), path.join(workDir, 'embed-folder'), path.join(workDir, 'folder-options.json'), path.join(workDir, 'folder-result.json')],
    // The store fsyncs the parent of a folder it creates (embed-folder), which is the workDir itself.
    allowedExact: [workDir, context.workDir],
  });
  const canaryOpened = opened.some((o) => o.path === canaryPath || o.path === real(canaryPath));
  if (canaryOpened) failures.push(`folder: the canary ${canaryPath} was opened`);
  for (const file of bad.slice(0, 20)) failures.push(`folder: a file outside the allowed trees was opened: ${file}`);
  if (bad.length > 20) failures.push(`folder: … and ${bad.length - 20} more files outside the allowed trees`);
  const inFolder = new Set(opened.filter((o) => o.path.startsWith(real(dicomDir))).map((o) => o.path)).size;
  return { result: outcome.result, failures, fileCheck: `${formatCount(opened.length)} opens traced, ${formatCount(inFolder)} distinct paths in the folder, ${bad.length} outside the allowed trees, canary ${canaryOpened ? 'OPENED' : 'never opened'}` };
}

const tally = (records: Record<string, number>[]) => {
  const sum: Record<string, number> = {};
  for (const record of records) for (const [key, n] of Object.entries(record)) sum[key] = (sum[key] ?? 0) + n;
  return Object.entries(sum).sort(([a], [b]) => a.localeCompare(b)).map(([key, n]) => `${key}: ${formatCount(n)}`).join(', ');
};

export const runFuzz: Scenario = async (context): Promise<ScenarioResult> => {
  const started = performance.now();
  const seed = Number(process.env.FUZZ_SEED ?? DEFAULT_FUZZ_SEED);
  const perRoute = FUZZ_INPUTS_PER_ROUTE[context.scale];
  const marker = `CANARY-${randomBytes(12).toString('hex')}`;
  const { dicomDir, canaryPath } = prepareFolder(context.workDir, marker);
  await ensureViewerBuilt();
  const canaryPaths = [canaryPath, path.relative(dicomDir, canaryPath), `../outside/canary.dcm`, 'canary-link.dcm', 'outside-link/canary.dcm'];
  const machinePaths = [...new Set([repoRoot, context.workDir, realpathSync(context.workDir), sharedWsiDir, tmpdir(), ...(homedir().length > 1 ? [homedir()] : []), 'file:///'])];
  const seedSeriesUid = (JSON.parse(readFileSync(path.join(sharedWsiDir, 'recipe/cmu1-t256-q90.json'), 'utf8')) as { SeriesInstanceUID: string }).SeriesInstanceUID;
  const common = { canaryPaths, canaryMarker: marker, machinePaths, seedSeriesUid, perRoute, seed };
  const smallCaches = { TILE_CACHE_BYTES: '32MiB', ANALYSIS_CACHE_BYTES: '32MiB', EMBED_CONCURRENT_SLIDES: '1', ONNX_THREADS: '1', GATEWAY_DEMO: 'false' };

  const folder = await fuzzFolder(
    context,
    {
      name: 'folder',
      env: { ...smallCaches, DICOM_DIR: dicomDir, EMBED_DIR: path.join(context.workDir, 'embed-folder'), GATEWAY_AUTH: 'token', GATEWAY_API_TOKENS: TOKEN, GATEWAY_BODY_LIMIT_BYTES: String(FOLDER_BODY_LIMIT) },
      token: TOKEN,
      bodyLimitBytes: FOLDER_BODY_LIMIT,
      ...common,
    },
    dicomDir,
    canaryPath,
  );
  // Without a PACS (a test run without Orthanc) the DICOMweb half is skipped, and the figures say so.
  const dicomweb = context.dicomwebUrl
    ? await runTargetFuzz({ name: 'dicomweb', env: { ...smallCaches, DICOMWEB_URL: context.dicomwebUrl, EMBED_DIR: path.join(context.workDir, 'embed-dicomweb') }, bodyLimitBytes: 65_536, ...common }, context.log)
    : undefined;

  const passes = [folder.result, dicomweb].filter((r): r is TargetResult => r !== undefined);
  const minPerRoute = Math.min(...passes.flatMap((p) => Object.values(p.perRoute)));
  const routes = new Set(passes.flatMap((p) => p.routes));
  return {
    title: 'Fuzzing every route',
    summary:
      `Every route of the app (enumerated from app.routes, all methods) got ${formatCount(perRoute)} generated malformed inputs per gateway: broken UIDs, levels, coordinates, query strings, ` +
      'JSON bodies, bodies over the limit, path traversal, and one-field mutations of valid requests on real slides and a real embedding run; once against a DICOM folder with a canary file beside it (under strace), once against Orthanc over DICOMweb.',
    figures: [
      { label: 'Routes fuzzed', value: `${routes.size} (${[...routes].join(', ')})` },
      { label: 'Inputs in total', value: formatCount(passes.reduce((n, p) => n + p.inputs, 0)) },
      { label: 'Fewest inputs for one route and gateway', value: formatCount(minPerRoute) },
      { label: 'Answers by status', value: tally(passes.map((p) => p.statuses)) },
      { label: 'Distinct error codes seen', value: tally(passes.map((p) => p.codes)) },
      { label: 'Files opened by the folder gateway', value: folder.fileCheck },
      { label: 'Seconds (folder, DICOMweb)', value: `${folder.result?.seconds.toFixed(1) ?? '-'}, ${dicomweb?.seconds.toFixed(1) ?? 'skipped (no DICOMweb URL)'}` },
      { label: 'Seed', value: String(seed) },
    ],
    failures: [...folder.failures, ...(dicomweb?.failures ?? [])],
    peakRssBytes: Math.max(...passes.map((p) => p.peakRssBytes)),
    seconds: (performance.now() - started) / 1000,
  };
};

/** The fewest inputs per route and gateway the test demands at a scale. */
export function minimumInputsPerRoute(result: ScenarioResult): number {
  return Number(result.figures.find((f) => f.label === 'Fewest inputs for one route and gateway')?.value.replaceAll(',', '') ?? 0);
}
