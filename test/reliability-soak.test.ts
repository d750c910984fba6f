/**
 * The soak scenario of the reliability suite (issue 7) in its reduced form: a few thousand tile requests
 * at 64 connections through a cache smaller than the slides; see test/reliability/soak.ts.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect, it } from 'vitest';
import { runSoak } from './reliability/soak.js';
import { describeWithOrthanc } from './support/skip.js';

describeWithOrthanc('soak', ({ dicomwebUrl, orthancUrl }) => {
  it('serves every tile, keeps the cache within its limit and memory under the bound', async () => {
    const workDir = await mkdtemp(path.join(tmpdir(), 'wsigw-soak-'));
    try {
      const result = await runSoak({ scale: 'ci', dicomwebUrl, orthancUrl, workDir, log: () => undefined });
      expect(result.failures).toEqual([]);
      expect(result.figures.find((f) => f.label === 'Answers')?.value).toMatch(/^200: [\d,]+$/);
      expect(result.peakRssBytes ?? 0).toBeGreaterThan(0);
    } finally {
      await rm(workDir, { recursive: true, force: true });
    }
  }, 300_000);
});
