import { describe, expect, it } from 'vitest';
import { NotFoundError, UpstreamError } from '../../errors.js';
import { withRetry } from './retry.js';

/** A failure as the DICOMweb source hands it on: a 503 whose Retry-After it would not wait for. */
const busyFor = (seconds: number) => new UpstreamError('The PACS answered 503', { retryAfterSeconds: seconds });

describe('job retries', () => {
  it("wait at least the PACS's Retry-After", async () => {
    const delays: number[] = [];
    let tries = 0;
    const result = await withRetry(async () => {
      if (++tries === 1) throw busyFor(1);
      return 'ok';
    }, { attempts: 3, baseDelayMs: 1, maxDelayMs: 1, onRetry: (_, __, delayMs) => delays.push(delayMs) });
    expect(result).toBe('ok');
    expect(delays).toEqual([1000]);
  });

  it('give up at once when the PACS asks for more than five minutes', async () => {
    let tries = 0;
    await expect(withRetry(async () => {
      tries++;
      throw busyFor(3600);
    }, { attempts: 5, baseDelayMs: 1, maxDelayMs: 1 })).rejects.toThrow('503');
    expect(tries).toBe(1);
  });

  it('do not retry what is not a PACS failure', async () => {
    let tries = 0;
    await expect(withRetry(async () => {
      tries++;
      throw new NotFoundError('gone');
    }, { attempts: 5, baseDelayMs: 1, maxDelayMs: 1 })).rejects.toThrow('gone');
    expect(tries).toBe(1);
  });
});
