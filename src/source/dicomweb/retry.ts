/**
 * Retries of idempotent PACS reads (issue 7). A PACS that drops a connection, answers 503 while it
 * restarts, or cuts a multipart answer short should cost a tile a few hundred milliseconds, not an
 * error. What is retried is the whole operation, body included: most of these failures happen after
 * the headers arrived. Only GETs come here (a STOW POST is not idempotent and is never retried).
 *
 * Backoff is exponential with full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter"):
 * the wait is uniform in [0, cap], so the many tiles of one viewer that failed together do not come
 * back together. Every try and wait fits in one overall deadline, so retries never turn one timeout
 * into (retries + 1) timeouts. A PACS that says when to come back (Retry-After on a 429 or 503, as
 * Google Cloud Healthcare's quotas and dcm4chee behind a proxy do) is not asked sooner; if it asks for
 * longer than a retry may wait (maxDelayMs), the caller gets the failure at once, with that Retry-After.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { NotFoundError, UpstreamError, UpstreamTimeoutError } from '../../errors.js';

export interface RetryPolicy {
  /** Tries after the first. @default 2 */
  retries: number;
  /** Cap of the wait before the first retry, in ms; doubled for each further retry. @default 100 */
  baseDelayMs: number;
  /** Largest cap of a wait, in ms. @default 2000 */
  maxDelayMs: number;
  /** Timeout of one try, in ms (DICOMWEB_TIMEOUT_MS); cut to what is left of the deadline. */
  attemptTimeoutMs: number;
  /** Most time the whole operation may take, tries and waits included, in ms (DICOMWEB_DEADLINE_MS). */
  deadlineMs: number;
}

/** A try is not started with less than this left before the deadline: it could only time out. */
export const MIN_ATTEMPT_MS = 100;

/**
 * The status a PACS answered, on the error it became: 429 and 5xx are worth another try, other 4xx
 * (a refused credential, a bad request) would only fail again.
 */
export class UpstreamStatusError extends UpstreamError {
  /** The PACS's Retry-After, in ms from when it answered. */
  readonly retryAfterMs: number | undefined;

  constructor(
    message: string,
    readonly upstreamStatus: number,
    options?: { code?: string; retryAfterMs?: number | undefined },
  ) {
    const retryAfterMs = options?.retryAfterMs;
    super(message, { code: options?.code, retryAfterSeconds: retryAfterMs === undefined ? undefined : Math.ceil(retryAfterMs / 1000) });
    this.retryAfterMs = retryAfterMs;
  }
}

/** Longest Retry-After taken from a PACS: a day. A larger value is as good as "not now". */
const MAX_RETRY_AFTER_MS = 86_400_000;

/**
 * A Retry-After header (RFC 9110 §10.2.3) as ms from `nowMs`: delay-seconds or an HTTP-date, a date
 * already past as 0; undefined when absent or unreadable.
 */
export function parseRetryAfterMs(value: string | undefined, nowMs: number = Date.now()): number | undefined {
  const text = value?.trim();
  if (!text) return undefined;
  // An HTTP-date starts with a day name; Date.parse alone would take "-5" or "1.5" for dates too.
  const ms = /^\d+$/.test(text) ? Number(text) * 1000 : /^[A-Za-z]/.test(text) ? Date.parse(text) - nowMs : NaN;
  return Number.isNaN(ms) ? undefined : Math.min(MAX_RETRY_AFTER_MS, Math.max(0, ms));
}

/** UPSTREAM_UNAVAILABLE: the circuit breaker refused the request without asking the PACS. */
export const UNAVAILABLE_CODE = 'UPSTREAM_UNAVAILABLE';

/**
 * Whether a failed try may be repeated: timeouts, network errors and resets, 429 and 5xx, and answers
 * the gateway could not read (truncated or malformed bodies, wrong media types). Not 404, not other 4xx,
 * not a refusal by the circuit breaker, and nothing that is not a PACS failure (a caller's abort).
 */
export function isRetryableError(error: unknown): boolean {
  if (error instanceof UpstreamTimeoutError) return true;
  if (error instanceof NotFoundError || !(error instanceof UpstreamError)) return false;
  if (error.code === UNAVAILABLE_CODE) return false;
  if (error instanceof UpstreamStatusError) return error.upstreamStatus === 429 || error.upstreamStatus >= 500;
  return true;
}

/** The wait before retry number `retry` (1-based), in ms: uniform in [0, min(max, base * 2^(retry-1))]. */
export function computeBackoffMs(retry: number, policy: Pick<RetryPolicy, 'baseDelayMs' | 'maxDelayMs'>, random: () => number = Math.random): number {
  const cap = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (retry - 1));
  return Math.floor(random() * cap);
}

/** What one try gets: its number (1 = the first) and its own timeout, already cut to the deadline. */
export interface Attempt {
  attempt: number;
  timeoutMs: number;
}

/** Clock, sleep and randomness, injected so tests run without waiting. */
export interface RetryDeps {
  now(): number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  random(): number;
}

/** Node's abortable timer, rejecting with the caller's own reason (as every other abort in the source does). */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return delay(ms, undefined, { signal }).catch((error: unknown) => {
    throw signal?.aborted ? (signal.reason as Error) : error;
  });
}

export const realRetryDeps: RetryDeps = { now: () => performance.now(), sleep, random: Math.random };

export interface RunWithRetryOptions {
  /** The caller's signal: once it aborts, nothing is retried and the wait ends at once. */
  signal?: AbortSignal | undefined;
  /** Told before each retry's wait. */
  onRetry?: ((error: unknown, retry: number, delayMs: number) => void) | undefined;
  deps?: RetryDeps;
}

/** Runs `operation` until it succeeds, fails with an error not worth retrying, or runs out of tries or time. */
export async function runWithRetry<T>(operation: (attempt: Attempt) => Promise<T>, policy: RetryPolicy, options: RunWithRetryOptions = {}): Promise<T> {
  const { signal, onRetry, deps = realRetryDeps } = options;
  const deadlineAt = deps.now() + policy.deadlineMs;
  for (let attempt = 1; ; attempt++) {
    const leftMs = deadlineAt - deps.now();
    try {
      // Whole milliseconds: AbortSignal.timeout throws a RangeError on a fraction.
      return await operation({ attempt, timeoutMs: Math.max(1, Math.floor(Math.min(policy.attemptTimeoutMs, leftMs))) });
    } catch (error) {
      if (signal?.aborted || attempt > policy.retries || !isRetryableError(error)) throw error;
      const askedMs = error instanceof UpstreamStatusError ? error.retryAfterMs : undefined;
      if (askedMs !== undefined && askedMs > policy.maxDelayMs) throw error;
      const delayMs = Math.max(computeBackoffMs(attempt, policy, deps.random), askedMs ?? 0);
      if (deadlineAt - deps.now() - delayMs < MIN_ATTEMPT_MS) throw error;
      onRetry?.(error, attempt, delayMs);
      await deps.sleep(delayMs, signal);
    }
  }
}
