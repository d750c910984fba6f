/**
 * The crash scenario of the reliability suite (issue 7, part 2) in its reduced form: a gateway process
 * killed with SIGKILL about eight times while it embeds a slide from the shared Orthanc, restarted
 * without resubmitting; see test/reliability/crash.ts for the invariants.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runCrash } from './reliability/crash.js';
import { describeWithOrthanc } from './support/skip.js';

describeWithOrthanc('kill -9 of the gateway while it embeds', ({ dicomwebUrl, orthancUrl }) => {
  let workDir: string;
  beforeAll(async () => {
    workDir = await mkdtemp(path.join(tmpdir(), 'wsi-crash-'));
  });
  afterAll(() => rm(workDir, { recursive: true, force: true }));

  it('resumes from the durable job list after every kill, never leaves a corrupt file, and ends with the uninterrupted bytes', async () => {
    const result = await runCrash({ scale: 'ci', dicomwebUrl, orthancUrl, workDir, log: () => undefined });
    const figure = (label: string) => Number(result.figures.find((f) => f.label.startsWith(label))?.value.replaceAll(',', '').split(' ')[0] ?? NaN);
    expect(result.failures).toEqual([]);
    expect(figure('Kills (kill -9)')).toBeGreaterThanOrEqual(8);
    // Kills that landed while batches were embedded or committed, not only at start-up.
    expect(figure('Kills mid-embedding') + figure('Kills inside a commit')).toBeGreaterThan(0);
    expect(figure('Restarts')).toBe(figure('Kills (kill -9)'));
    expect(figure('Resumes observed')).toBeGreaterThan(0);
    expect(result.figures.find((f) => f.label === 'Final files identical to the uninterrupted run')?.value).toBe('yes, byte for byte');
  }, 600_000);
});
