/**
 * The fuzz scenario (issue 7, part 3) at CI scale: every route with a few hundred malformed inputs per
 * gateway, every invariant holding. The folder half needs nothing installed; the DICOMweb half needs
 * the shared Orthanc and is skipped, with the reason, without it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FUZZ_INPUTS_PER_ROUTE, minimumInputsPerRoute, runFuzz } from './reliability/fuzz.js';
import { describeWithOrthanc, hasOrthanc } from './support/skip.js';

const workDirs: string[] = [];
afterAll(() => {
  for (const dir of workDirs) rmSync(dir, { recursive: true, force: true });
});

function fuzzAtCiScale(urls: { dicomwebUrl: string; orthancUrl: string }) {
  it('answers every malformed input to every route within the invariants', { timeout: 600_000 }, async () => {
    const workDir = mkdtempSync(join(tmpdir(), 'wsigw-fuzz-'));
    workDirs.push(workDir);
    const result = await runFuzz({ scale: 'ci', ...urls, workDir, log: (line) => process.env.FUZZ_VERBOSE && console.log(line) });
    console.log(result.figures.map((f) => `${f.label}: ${f.value}`).join('\n'));
    expect(result.failures).toEqual([]);
    expect(minimumInputsPerRoute(result)).toBeGreaterThanOrEqual(FUZZ_INPUTS_PER_ROUTE.ci);
    expect(result.figures.find((f) => f.label === 'Routes fuzzed')?.value).toMatch(/^(2\d|[3-9]\d) /);
  });
}

if (hasOrthanc) {
  describeWithOrthanc('fuzz: folder and DICOMweb sources', fuzzAtCiScale);
} else {
  // Without Orthanc the folder half still runs; the DICOMweb half is skipped by runFuzz and said so.
  describe('fuzz: folder source (no Orthanc: the DICOMweb half is skipped)', () => fuzzAtCiScale({ dicomwebUrl: '', orthancUrl: '' }));
}
