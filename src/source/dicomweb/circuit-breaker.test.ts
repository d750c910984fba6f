import { describe, expect, it } from 'vitest';
import { UpstreamError } from '../../errors.js';
import { createCircuitBreaker, type CircuitOutcome, type CircuitState } from './circuit-breaker.js';

function setup(failureThreshold = 3) {
  const clock = { ms: 0 };
  const changes: CircuitState[] = [];
  const breaker = createCircuitBreaker({ failureThreshold, cooldownMs: 1000, now: () => clock.ms, onStateChange: (s) => changes.push(s) });
  const asFailure = (): CircuitOutcome => 'failure';
  const fail = () => breaker.run(() => Promise.reject(new UpstreamError('reset')), asFailure).catch((e: unknown) => e);
  const succeed = () => breaker.run(() => Promise.resolve('ok'), asFailure);
  return { clock, changes, breaker, fail, succeed };
}

function expectUnavailable(error: unknown): void {
  expect(error).toBeInstanceOf(UpstreamError);
  expect((error as UpstreamError).code).toBe('UPSTREAM_UNAVAILABLE');
  expect((error as UpstreamError).status).toBe(502);
}

describe('circuit breaker', () => {
  it('opens after consecutive failures and then fails fast without calling the PACS', async () => {
    const { breaker, fail, changes } = setup();
    await fail();
    await fail();
    expect(breaker.state).toBe('closed');
    await fail();
    expect(breaker.state).toBe('open');
    let called = false;
    const error = await breaker.run(async () => (called = true), () => 'failure').catch((e: unknown) => e);
    expectUnavailable(error);
    expect((error as Error).message).toMatch(/unavailable.*try it again in 1 s \(the last: reset\)/);
    expect(called).toBe(false);
    expect(changes).toEqual(['open']);
    expect(breaker.openings).toBe(1);
  });

  it('a success resets the count: only failures in a row open it', async () => {
    const { breaker, fail, succeed } = setup();
    for (let i = 0; i < 10; i++) {
      await fail();
      await fail();
      await succeed();
    }
    expect(breaker.state).toBe('closed');
  });

  it('404s, other answers and caller aborts do not count as failures', async () => {
    const { breaker } = setup(2);
    for (const outcome of ['success', 'ignore', 'success', 'ignore'] as const) {
      await breaker.run(() => Promise.reject(new Error('x')), () => outcome).catch(() => undefined);
    }
    expect(breaker.state).toBe('closed');
  });

  it('lets one trial through after the cool-down, and closes when it succeeds', async () => {
    const { breaker, clock, fail, changes } = setup();
    for (let i = 0; i < 3; i++) await fail();
    clock.ms = 999;
    expectUnavailable(await fail());
    clock.ms = 1000;
    let release!: () => void;
    const trial = breaker.run(() => new Promise<string>((r) => (release = () => r('ok'))), () => 'failure');
    expect(breaker.state).toBe('half-open');
    expectUnavailable(await fail()); // only one trial at a time
    release();
    await expect(trial).resolves.toBe('ok');
    expect(breaker.state).toBe('closed');
    expect(changes).toEqual(['open', 'half-open', 'closed']);
  });

  it('opens again for another cool-down when the trial fails', async () => {
    const { breaker, clock, fail } = setup();
    for (let i = 0; i < 3; i++) await fail();
    clock.ms = 1500;
    await fail(); // the trial
    expect(breaker.state).toBe('open');
    expect(breaker.openings).toBe(2);
    clock.ms = 2400;
    expectUnavailable(await fail());
    clock.ms = 2500;
    await fail();
    expect(breaker.openings).toBe(3);
  });

  it('a trial its caller aborted frees the slot for the next request', async () => {
    const { breaker, clock, fail, succeed } = setup();
    for (let i = 0; i < 3; i++) await fail();
    clock.ms = 1000;
    await breaker.run(() => Promise.reject(new Error('aborted')), () => 'ignore').catch(() => undefined);
    expect(breaker.state).toBe('half-open');
    await succeed();
    expect(breaker.state).toBe('closed');
  });

  it('ignores late outcomes of requests that started before it opened', async () => {
    const { breaker, fail, clock } = setup();
    let lateFail!: () => void;
    const late = breaker.run(() => new Promise((_, reject) => (lateFail = () => reject(new UpstreamError('late')))), () => 'failure').catch(() => undefined);
    for (let i = 0; i < 3; i++) await fail();
    clock.ms = 1000;
    const trial = breaker.run(() => Promise.resolve('ok'), () => 'failure');
    lateFail();
    await late;
    await trial;
    expect(breaker.state).toBe('closed');
    expect(breaker.openings).toBe(1);
  });

  it('never opens with a threshold of 0', async () => {
    const { breaker, fail } = setup(0);
    for (let i = 0; i < 20; i++) await fail();
    expect(breaker.state).toBe('closed');
  });
});
