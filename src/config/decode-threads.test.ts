import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { ConfigError, computeDefaultDecodeThreads, loadConfig } from './index.js';

describe('GATEWAY_DECODE_THREADS', () => {
  it('defaults to one thread per core but one, from 1 to 4', () => {
    expect([1, 2, 3, 4, 5, 8, 64].map((cores) => computeDefaultDecodeThreads(cores))).toEqual([1, 2, 3, 4, 4, 4, 4]);
    expect(loadConfig({}).decodeThreads).toBe(computeDefaultDecodeThreads(availableParallelism()));
  });

  it('takes 0 (decode on the event loop) up to 64', () => {
    expect(loadConfig({ GATEWAY_DECODE_THREADS: '0' }).decodeThreads).toBe(0);
    expect(loadConfig({ GATEWAY_DECODE_THREADS: '6' }).decodeThreads).toBe(6);
  });

  it.each(['-1', '65', 'two', '1.5'])('rejects %s', (value) => {
    expect(() => loadConfig({ GATEWAY_DECODE_THREADS: value })).toThrow(ConfigError);
    expect(() => loadConfig({ GATEWAY_DECODE_THREADS: value })).toThrow(/GATEWAY_DECODE_THREADS/);
  });
});
