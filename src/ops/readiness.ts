/**
 * Readiness: can this gateway do its work now? The source answers (one cheap request, short deadline),
 * the default model loads, and the embedding store is writable. Liveness (/healthz) asks none of this:
 * a PACS outage must take a gateway out of the load balancer, not get it restarted.
 */
import { constants } from 'node:fs';
import { access, mkdir } from 'node:fs/promises';
import { DEFAULT_MODEL } from '../embed/jobs/job-queue.js';
import type { ModelRegistry } from '../embed/runtime/index.js';
import type { SlideSource } from '../source/types.js';

export interface CheckResult {
  ok: boolean;
  /** How long the check took, in ms. */
  ms: number;
  /** Why it failed (a gateway message: never a PACS body). */
  error?: string;
  [detail: string]: unknown;
}

export interface Readiness {
  ready: boolean;
  checks: { source: CheckResult; models: CheckResult; store: CheckResult };
}

export interface ReadinessOptions {
  source: Pick<SlideSource, 'ping' | 'kind'>;
  models: Pick<ModelRegistry, 'list' | 'acquire'>;
  /** The embedding store's root. */
  storeDir: string;
  /**
   * Deadline of the source check, in ms: a probe must answer before the orchestrator's own timeout.
   * @default 2000
   */
  sourceTimeoutMs?: number;
}

async function timed(check: () => Promise<Record<string, unknown> | void>): Promise<CheckResult> {
  const started = performance.now();
  const ms = () => Math.round((performance.now() - started) * 10) / 10;
  try {
    const details = await check();
    return { ok: true, ms: ms(), ...details };
  } catch (error) {
    return { ok: false, ms: ms(), error: error instanceof Error ? error.message : String(error) };
  }
}

export function createReadinessProbe({ source, models, storeDir, sourceTimeoutMs = 2000 }: ReadinessOptions): () => Promise<Readiness> {
  return async function checkReadiness() {
    const [sourceCheck, modelsCheck, storeCheck] = await Promise.all([
      timed(async () => {
        const deadline = AbortSignal.timeout(sourceTimeoutMs);
        try {
          await source.ping(deadline);
        } catch (error) {
          if (deadline.aborted) throw new Error(`no answer within ${sourceTimeoutMs} ms`, { cause: error });
          throw error;
        }
        return { kind: source.kind };
      }),
      timed(async () => {
        // Both are cached by the registry: manifests are read once and a loaded model is kept, so
        // probes after the first cost nothing (the built-in default model has no weights to load).
        const known = await models.list();
        const model = await models.acquire(DEFAULT_MODEL);
        return { model: DEFAULT_MODEL, backend: model.backend, available: known.filter((m) => m.available).length };
      }),
      timed(async () => {
        await mkdir(storeDir, { recursive: true });
        await access(storeDir, constants.W_OK);
      }),
    ]);
    const checks = { source: sourceCheck, models: modelsCheck, store: storeCheck };
    return { ready: sourceCheck.ok && modelsCheck.ok && storeCheck.ok, checks };
  };
}
