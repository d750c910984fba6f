/**
 * The faults scenario of the reliability suite (issue 7) in its reduced form: a fault-injecting proxy
 * between a gateway process and the shared Orthanc; see test/reliability/faults.ts for the invariants.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runFaults } from './reliability/faults.js';
import { FAULT_KINDS } from './reliability/fault-proxy.js';
import { describeWithOrthanc } from './support/skip.js';

describeWithOrthanc('faults between the gateway and the PACS', ({ dicomwebUrl, orthancUrl }) => {
  let workDir: string;
  beforeAll(async () => {
    workDir = await mkdtemp(path.join(tmpdir(), 'wsi-faults-'));
  });
  afterAll(() => rm(workDir, { recursive: true, force: true }));

  it('answers only 200, 502 or 504, fails fast with the breaker open, and recovers', async () => {
    const result = await runFaults({ scale: 'ci', dicomwebUrl, orthancUrl, workDir, log: () => undefined });
    const figure = (label: string) => Number(result.figures.find((f) => f.label === label)?.value.replaceAll(',', '') ?? NaN);
    expect(result.failures).toEqual([]);
    for (const kind of FAULT_KINDS) expect(figure(`Faults injected: ${kind}`), kind).toBeGreaterThan(0);
    expect(figure('Gateway requests sent')).toBeGreaterThan(1000);
    expect(figure('PACS retries by the gateway')).toBeGreaterThan(0);
    expect(figure('Circuit breaker openings')).toBeGreaterThan(0);
    expect(result.peakRssBytes ?? 0).toBeGreaterThan(0);
  }, 300_000);
});
