/**
 * Retries for PACS requests during long jobs: a PACS that restarts or drops a connection mid-slide
 * should cost seconds, not the job. Only the PACS's failures (502/504) are retried; a caller's mistake
 * or a cancelled job is not. A PACS that says when to come back (Retry-After, which the source's own
 * quick retries hand on when it is longer than they wait) is waited for, up to five minutes: a job
 * can afford the wait where a tile cannot.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { GatewayError, UpstreamError, UpstreamTimeoutError } from '../../errors.js';

/** The longest Retry-After a job waits; a PACS asking for more fails the job (resubmit it later). */
export const MAX_JOB_RETRY_AFTER_MS = 300_000;

export interface RetryPolicy {
  /** Tries in all, the first included. @default 5 */
  attempts: number;
  /** Wait before the second try; doubled each time, with ±25% jitter. @default 500 */
  baseDelayMs: number;
  /** Longest wait between tries. @default 8000 */
  maxDelayMs: number;
  /** Told of each failed try that will be retried. */
  onRetry?: (error: unknown, attempt: number, delayMs: number) => void;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 5, baseDelayMs: 500, maxDelayMs: 8000 };

export function isRetryable(error: unknown): boolean {
  return error instanceof UpstreamError || error instanceof UpstreamTimeoutError;
}

export async function withRetry<T>(fn: () => Promise<T>, policy: RetryPolicy, signal?: AbortSignal): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (error) {
      if (attempt >= policy.attempts || !isRetryable(error) || signal?.aborted) throw error;
      const askedMs = error instanceof GatewayError && error.retryAfterSeconds !== undefined ? error.retryAfterSeconds * 1000 : 0;
      if (askedMs > MAX_JOB_RETRY_AFTER_MS) throw error;
      const base = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
      const delayMs = Math.max(askedMs, Math.round(base * (0.75 + Math.random() * 0.5)));
      policy.onRetry?.(error, attempt, delayMs);
      await sleep(delayMs, undefined, { signal });
    }
  }
}
