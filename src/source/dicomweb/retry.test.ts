import { describe, expect, it } from 'vitest';
import { BadRequestError, NotFoundError, UpstreamError, UpstreamTimeoutError } from '../../errors.js';
import { computeBackoffMs, isRetryableError, MIN_ATTEMPT_MS, parseRetryAfterMs, runWithRetry, UNAVAILABLE_CODE, UpstreamStatusError, type RetryDeps, type RetryPolicy } from './retry.js';

/** A clock that only moves when the code under test sleeps or a try "takes" time. */
function fakeDeps(random = 0.5): RetryDeps & { nowMs: number; sleeps: number[] } {
  const deps = {
    nowMs: 0,
    sleeps: [] as number[],
    now: () => deps.nowMs,
    random: () => random,
    sleep: async (ms: number, signal?: AbortSignal) => {
      if (signal?.aborted) throw signal.reason;
      deps.sleeps.push(ms);
      deps.nowMs += ms;
    },
  };
  return deps;
}

const policy: RetryPolicy = { retries: 2, baseDelayMs: 100, maxDelayMs: 2000, attemptTimeoutMs: 1000, deadlineMs: 2000 };

describe('isRetryableError', () => {
  it.each([
    ['a timeout', new UpstreamTimeoutError('t'), true],
    ['a reset or truncated body', new UpstreamError('reset'), true],
    ['a 503', new UpstreamStatusError('503', 503), true],
    ['a 429', new UpstreamStatusError('429', 429), true],
    ['a 400', new UpstreamStatusError('400', 400), false],
    ['a 401', new UpstreamStatusError('401', 401, { code: 'UPSTREAM_UNAUTHORIZED' }), false],
    ['a 404', new NotFoundError('gone', 'UPSTREAM_NOT_FOUND'), false],
    ['the open breaker', new UpstreamError('open', { code: UNAVAILABLE_CODE }), false],
    ['a caller error', new BadRequestError('bad'), false],
    ['an abort', new DOMException('aborted', 'AbortError'), false],
  ])('%s: %s', (_, error, expected) => {
    expect(isRetryableError(error)).toBe(expected);
  });
});

describe('computeBackoffMs', () => {
  it('is full jitter under a doubling cap', () => {
    expect([1, 2, 3, 4, 5, 6].map((r) => computeBackoffMs(r, policy, () => 0.999999))).toEqual([99, 199, 399, 799, 1599, 1999]);
    expect(computeBackoffMs(3, policy, () => 0)).toBe(0);
  });
});

describe('parseRetryAfterMs', () => {
  const now = Date.parse('2026-11-22T10:00:00Z');
  it.each([
    ['delay-seconds', '3', 3000],
    ['zero', '0', 0],
    ['spaces around', ' 12 ', 12_000],
    ['an HTTP-date', 'Sun, 22 Nov 2026 10:00:05 GMT', 5000],
    ['a date already past', 'Sun, 22 Nov 2026 09:59:00 GMT', 0],
    ['more than a day', '999999999', 86_400_000],
    ['absent', undefined, undefined],
    ['empty', '', undefined],
    ['a negative number', '-5', undefined],
    ['a fraction', '1.5', undefined],
    ['text', 'soon', undefined],
  ])('%s (%j)', (_, value, expected) => {
    expect(parseRetryAfterMs(value, now)).toBe(expected);
  });
});

describe('runWithRetry', () => {
  it("waits at least the PACS's Retry-After before trying again", async () => {
    const deps = fakeDeps(0); // a backoff of 0 on its own
    let tries = 0;
    const result = await runWithRetry(async () => {
      if (++tries === 1) throw new UpstreamStatusError('429', 429, { retryAfterMs: 1500 });
      return 'ok';
    }, { ...policy, deadlineMs: 5000 }, { deps });
    expect(result).toBe('ok');
    expect(deps.sleeps).toEqual([1500]);
  });

  it('fails at once, with the Retry-After, when the PACS asks for more than a retry may wait', async () => {
    const deps = fakeDeps();
    let tries = 0;
    const failure = await runWithRetry(async () => {
      tries++;
      throw new UpstreamStatusError('503', 503, { retryAfterMs: 30_000 });
    }, { ...policy, deadlineMs: 60_000 }, { deps }).catch((error: unknown) => error);
    expect(tries).toBe(1);
    expect(deps.sleeps).toEqual([]);
    expect(failure).toMatchObject({ upstreamStatus: 503, retryAfterSeconds: 30, status: 502 });
  });

  it('does not retry when the Retry-After would run past the deadline', async () => {
    const deps = fakeDeps(0);
    let tries = 0;
    await expect(runWithRetry(async () => {
      tries++;
      throw new UpstreamStatusError('429', 429, { retryAfterMs: 1950 }); // 50 ms would be left for the try
    }, policy, { deps })).rejects.toThrow('429');
    expect(tries).toBe(1);
  });

  it('retries retryable failures and returns the first success', async () => {
    const deps = fakeDeps();
    const seen: number[] = [];
    const result = await runWithRetry(
      async ({ attempt }) => {
        seen.push(attempt);
        if (attempt < 3) throw new UpstreamError('reset');
        return 'ok';
      },
      policy,
      { deps },
    );
    expect(result).toBe('ok');
    expect(seen).toEqual([1, 2, 3]);
    expect(deps.sleeps).toEqual([50, 100]);
  });

  it('gives up after `retries` and throws the last failure', async () => {
    const deps = fakeDeps();
    let tries = 0;
    const failure = runWithRetry(async () => {
      tries++;
      throw new UpstreamStatusError(`503 #${tries}`, 503);
    }, policy, { deps });
    await expect(failure).rejects.toThrow('503 #3');
    expect(tries).toBe(3);
  });

  it('never retries a 404 or another 4xx', async () => {
    for (const error of [new NotFoundError('gone'), new UpstreamStatusError('400', 400)]) {
      let tries = 0;
      await expect(runWithRetry(async () => { tries++; throw error; }, policy, { deps: fakeDeps() })).rejects.toBe(error);
      expect(tries).toBe(1);
    }
  });

  it('never retries once the caller aborted', async () => {
    const controller = new AbortController();
    let tries = 0;
    const failure = runWithRetry(async () => {
      tries++;
      controller.abort(new Error('caller went away'));
      throw new UpstreamError('reset');
    }, policy, { deps: fakeDeps(), signal: controller.signal });
    await expect(failure).rejects.toThrow('reset');
    expect(tries).toBe(1);
  });

  it('cuts each try to what is left of the deadline, and stops when too little is left', async () => {
    const deps = fakeDeps(0);
    const timeouts: number[] = [];
    const failure = runWithRetry(async ({ timeoutMs }) => {
      timeouts.push(timeoutMs);
      deps.nowMs += timeoutMs; // the try times out
      throw new UpstreamTimeoutError('slow');
    }, { ...policy, retries: 5, deadlineMs: 2500 }, { deps });
    await expect(failure).rejects.toBeInstanceOf(UpstreamTimeoutError);
    expect(timeouts).toEqual([1000, 1000, 500]);
    expect(deps.nowMs).toBeLessThanOrEqual(2500);
  });

  it('does not start a try with less than MIN_ATTEMPT_MS left', async () => {
    const deps = fakeDeps(0);
    let tries = 0;
    const failure = runWithRetry(async () => {
      tries++;
      deps.nowMs += 2000 - MIN_ATTEMPT_MS + 1;
      throw new UpstreamError('reset');
    }, policy, { deps });
    await expect(failure).rejects.toThrow('reset');
    expect(tries).toBe(1);
  });

  it('reports each retry', async () => {
    const retries: number[] = [];
    await runWithRetry(async ({ attempt }) => (attempt === 1 ? Promise.reject(new UpstreamTimeoutError('t')) : 'ok'), policy, {
      deps: fakeDeps(),
      onRetry: (_, retry) => retries.push(retry),
    });
    expect(retries).toEqual([1]);
  });
});
