/**
 * The security pass of the reliability suite (issue 7): a PACS that plants foreign URLs, path-climbing
 * UIDs, patient data and leaky error pages; see test/reliability/security.ts for what is checked.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect, it } from 'vitest';
import { runSecurity } from './reliability/security.js';
import { describeWithOrthanc } from './support/skip.js';

describeWithOrthanc('security pass', ({ dicomwebUrl, orthancUrl }) => {
  it('calls no host but the PACS root, refuses callers without credentials, and writes no secret down', async () => {
    const workDir = await mkdtemp(path.join(tmpdir(), 'wsigw-security-'));
    try {
      const result = await runSecurity({ scale: 'ci', dicomwebUrl, orthancUrl, workDir, log: () => undefined });
      expect(result.failures).toEqual([]);
      const figure = (label: string) => result.figures.find((f) => f.label.startsWith(label))?.value ?? '';
      expect(figure('URLs planted')).toMatch(/^[1-9][\d,]* \/ 0$/);
      expect(figure('Leaky PACS error pages')).not.toBe('0');
    } finally {
      await rm(workDir, { recursive: true, force: true });
    }
  }, 300_000);
});
