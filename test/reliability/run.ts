/**
 * `npm run reliability`: the whole reliability suite (issue 7) at full scale against a fresh Orthanc
 * loaded with ../shared/wsi, then docs/reliability.md from every scenario's figures. `npm test` runs
 * the same scenarios in reduced form (test/reliability-*.test.ts).
 *
 *   npm run reliability                       # all scenarios, full scale, writes docs/reliability.md
 *   npm run reliability -- --only soak,fuzz   # some of them (prints, writes nothing unless --out)
 *   npm run reliability -- --scale ci         # the reduced sizes, for a quick look
 *
 * Exit code 0 when every invariant held, 1 when one broke (the report says which), 2 for bad usage.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { describeMachine, writeReport } from '../../bench/support/report.js';
import { startOrthanc } from '../support/orthanc.js';
import { listDicomFiles, sharedWsiDir } from '../support/wsi-data.js';
import { runCrash } from './crash.js';
import { runFaults } from './faults.js';
import { runFuzz } from './fuzz.js';
import { formatMiB, type Scale, type Scenario, type ScenarioResult } from './scenario.js';
import { runSecurity } from './security.js';
import { runSoak } from './soak.js';

const SCENARIOS: Record<string, Scenario> = { faults: runFaults, crash: runCrash, fuzz: runFuzz, soak: runSoak, security: runSecurity };
const DEFAULT_REPORT = 'docs/reliability.md';

function usage(message: string): never {
  console.error(`${message}\nusage: npm run reliability -- [--scale full|ci] [--only ${Object.keys(SCENARIOS).join(',')}] [--out FILE]`);
  process.exit(2);
}

function renderReport(results: ScenarioResult[], scale: Scale, totalSeconds: number): string {
  const passed = results.every((r) => r.failures.length === 0);
  const peak = Math.max(...results.map((r) => r.peakRssBytes ?? 0));
  const lines = [
    '# Reliability',
    '',
    `Written by \`npm run reliability\` (${scale} scale) from one run: ${describeMachine()}; ${(totalSeconds / 60).toFixed(1)} minutes in all. ` +
      'Every scenario runs against a real Orthanc (DICOMweb plugin) loaded with ../shared/wsi; `npm test` runs each in reduced form. ' +
      'The figures are this run\'s, not targets; the invariants are what the suite asserts.',
    '',
    `**Result: ${passed ? 'every invariant held' : 'INVARIANTS BROKEN (see below)'}.** Peak resident memory of a process under test (the gateway; for fuzzing, the process holding the in-process gateway and the fuzzer): ${peak > 0 ? formatMiB(peak) : 'not measured'}.`,
    '',
    '| Scenario | Result | Time | Peak memory |',
    '|---|---|---|---|',
    ...results.map((r) => `| ${r.title} | ${r.failures.length === 0 ? 'passed' : `**${r.failures.length} broken**`} | ${r.seconds.toFixed(0)} s | ${r.peakRssBytes ? formatMiB(r.peakRssBytes) : '–'} |`),
  ];
  for (const r of results) {
    lines.push('', `## ${r.title}`, '', r.summary, '', '| Figure | Value |', '|---|---|', ...r.figures.map((f) => `| ${f.label} | ${f.value.replaceAll('|', '\\|')} |`));
    if (r.failures.length > 0) lines.push('', '**Broken invariants:**', '', ...r.failures.map((f) => `- ${f}`));
  }
  return `${lines.join('\n')}\n`;
}

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({ options: { scale: { type: 'string', default: 'full' }, only: { type: 'string' }, out: { type: 'string' } } }));
  } catch (error) {
    usage((error as Error).message);
  }
  const scale = values.scale;
  if (scale !== 'full' && scale !== 'ci') usage(`--scale must be full or ci, not ${scale}`);
  const names = values.only ? values.only.split(',').map((n) => n.trim()) : Object.keys(SCENARIOS);
  const unknown = names.filter((n) => !(n in SCENARIOS));
  if (unknown.length > 0) usage(`unknown scenario(s): ${unknown.join(', ')}`);
  const out = values.out ?? (values.only === undefined && scale === 'full' ? DEFAULT_REPORT : undefined);

  const started = performance.now();
  const orthanc = await startOrthanc({ withWsiPlugin: false });
  const results: ScenarioResult[] = [];
  try {
    await orthanc.upload(await listDicomFiles(sharedWsiDir));
    for (const name of names) {
      const workDir = await mkdtemp(path.join(tmpdir(), `wsigw-reliability-${name}-`));
      const scenarioStarted = performance.now();
      console.log(`== ${name} (${scale})`);
      try {
        const result = await SCENARIOS[name]!({ scale, dicomwebUrl: orthanc.dicomwebUrl, orthancUrl: orthanc.baseUrl, workDir, log: (line) => console.log(`   ${line}`) });
        results.push(result);
      } catch (error) {
        // A scenario that could not run is a broken invariant too, reported with the rest.
        results.push({ title: name, summary: 'The scenario could not run.', figures: [], failures: [`it threw: ${(error as Error).stack ?? String(error)}`], seconds: (performance.now() - scenarioStarted) / 1000 });
      } finally {
        await rm(workDir, { recursive: true, force: true });
      }
      const last = results.at(-1)!;
      for (const f of last.figures) console.log(`   ${f.label}: ${f.value}`);
      console.log(`   ${last.failures.length === 0 ? 'passed' : `BROKEN:\n     ${last.failures.join('\n     ')}`} in ${last.seconds.toFixed(0)} s`);
    }
  } finally {
    await orthanc.stop();
  }
  const report = renderReport(results, scale, (performance.now() - started) / 1000);
  if (out) {
    await writeReport(out, report);
    console.log(`wrote ${out}`);
  }
  process.exit(results.every((r) => r.failures.length === 0) ? 0 : 1);
}

await main();
