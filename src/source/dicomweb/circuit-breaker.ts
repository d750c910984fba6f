/**
 * A circuit breaker per PACS (issue 7). When the PACS is down, every tile of every viewer would
 * otherwise wait out its timeout and retries, holding connections and memory, and a recovering PACS
 * would be met by the whole backlog at once. Open, the breaker answers at once with
 * UPSTREAM_UNAVAILABLE (502); after a cool-down it lets one trial request through (half-open), and
 * that request's outcome closes or re-opens it.
 *
 * It opens after N consecutive failed requests rather than at a failure ratio over a window: a PACS
 * that is down fails every request, which N consecutive failures detect within N requests and with no
 * window to size; a PACS that fails some requests (one bad node behind a balancer, 20 % resets)
 * interleaves successes that reset the count, so retries handle it while the breaker stays closed
 * (at 30 % independent failures, 10 in a row happen once in ~170,000 requests).
 *
 * Failures are what retries also treat as the PACS's fault (timeouts, resets, 5xx, unreadable
 * answers). A 404 or another 4xx is an answer, so it counts as a success; a request its caller
 * aborted says nothing of the PACS and counts as neither.
 */
import { UpstreamError } from '../../errors.js';
import { UNAVAILABLE_CODE } from './retry.js';

export type CircuitState = 'closed' | 'open' | 'half-open';

/** How one request through the breaker ended. */
export type CircuitOutcome = 'success' | 'failure' | 'ignore';

export interface CircuitBreakerOptions {
  /** Consecutive failures that open the circuit; 0 = never open. @default 10 */
  failureThreshold: number;
  /** Time open before a trial request, in ms. @default 5000 */
  cooldownMs: number;
  /** Milliseconds on a monotonic clock (tests move it by hand). @default performance.now */
  now?: () => number;
  /** Told of every change of state (metrics). Must not throw. */
  onStateChange?: ((state: CircuitState) => void) | undefined;
}

export interface CircuitBreaker {
  readonly state: CircuitState;
  /** Times it has opened (from closed or from a failed trial). */
  readonly openings: number;
  /**
   * Runs `request` if the circuit lets it through, else throws UPSTREAM_UNAVAILABLE at once.
   * `classify` says what a failure of `request` means for the PACS's health.
   */
  run<T>(request: () => Promise<T>, classify: (error: unknown) => CircuitOutcome): Promise<T>;
}

export function createCircuitBreaker({ failureThreshold, cooldownMs, now = () => performance.now(), onStateChange }: CircuitBreakerOptions): CircuitBreaker {
  let state: CircuitState = 'closed';
  let consecutiveFailures = 0;
  let openedAt = 0;
  let openings = 0;
  let trialInFlight = false;
  /** The message of the failure that last counted (our own words, never the PACS's body), for the error. */
  let lastFailure = '';

  function moveTo(next: CircuitState): void {
    state = next;
    if (next === 'open') {
      openings++;
      openedAt = now();
    }
    if (next === 'closed') consecutiveFailures = 0;
    onStateChange?.(next);
  }

  /** Whether this request may go; true when it is the half-open trial. Throws when it may not. */
  function admit(): boolean {
    if (state === 'open' && now() - openedAt >= cooldownMs) moveTo('half-open');
    if (state === 'closed') return false;
    if (state === 'half-open' && !trialInFlight) {
      trialInFlight = true;
      return true;
    }
    const waitS = Math.max(0, Math.ceil((cooldownMs - (now() - openedAt)) / 1000));
    throw new UpstreamError(
      `The PACS is unavailable: the gateway stopped asking it after ${failureThreshold} failed requests in a row` +
        (state === 'half-open' ? ' and is trying it again now' : ` and will try it again in ${waitS} s`) +
        (lastFailure ? ` (the last: ${lastFailure})` : ''),
      { code: UNAVAILABLE_CODE },
    );
  }

  function settle(isTrial: boolean, outcome: CircuitOutcome): void {
    if (isTrial) {
      trialInFlight = false;
      if (outcome === 'success') moveTo('closed');
      else if (outcome === 'failure') moveTo('open'); // another cool-down
      return;
    }
    // Requests that started before the circuit opened say nothing the opening did not: only the
    // trial decides when it closes again.
    if (state !== 'closed' || outcome === 'ignore') return;
    if (outcome === 'success') consecutiveFailures = 0;
    else if (++consecutiveFailures >= failureThreshold && failureThreshold > 0) moveTo('open');
  }

  return {
    get state() {
      return state;
    },
    get openings() {
      return openings;
    },
    async run(request, classify) {
      const isTrial = admit();
      let result: Awaited<ReturnType<typeof request>>;
      try {
        result = await request();
      } catch (error) {
        const outcome = classify(error);
        if (outcome === 'failure' && error instanceof Error) lastFailure = error.message.slice(0, 200);
        settle(isTrial, outcome);
        throw error;
      }
      settle(isTrial, 'success');
      return result;
    },
  };
}
