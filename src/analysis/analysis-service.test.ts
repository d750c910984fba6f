import { describe, expect, it } from 'vitest';
import type { EmbeddingStore, RunKey, RunManifest } from '../embed/store/index.js';
import { createAnalysisService } from './analysis-service.js';
import type { KMeansEngine } from './kmeans.js';

const key: RunKey = { studyUid: '1.2.3', seriesUid: '1.2.3.4', modelId: 'stain-texture', runId: 'mpp8-s224-t0.25' };

/** A store holding one complete run with `rows` patches of 32 values. */
function storeWithRun(rows: number): EmbeddingStore {
  const manifest = { ...key, finishedAt: '2025-01-01T00:00:00Z', params: { grid: { patchSizeLevel0Px: 3584 } }, files: { 'embeddings.npy': { sha256: 'a'.repeat(64) } } } as unknown as RunManifest;
  return {
    getRun: async () => manifest,
    listRuns: async () => [{ key, status: 'complete', manifest }],
    readEmbeddings: async () => ({ embeddings: new Float32Array(rows * 32), coords: new Int32Array(rows * 2), dim: 32, rows, manifest }),
  } as unknown as EmbeddingStore;
}

const kmeansNeverCalled: KMeansEngine = {
  run: () => Promise.reject(new Error('k-means must not run on a run with too few patches')),
} as unknown as KMeansEngine;

describe('analysis service', () => {
  // Issue 7 (fuzz): a job whose grid is coarser than the slide finishes with 0 patches; its clusters were a 500.
  it('answers 400 BAD_K, not a 500, for the clusters of a run with no patches', async () => {
    const analysis = createAnalysisService({ store: storeWithRun(0), kmeans: kmeansNeverCalled, cacheBytes: 1 << 20 });
    await expect(analysis.getClusters({ studyUid: key.studyUid, seriesUid: key.seriesUid }, { k: 2, seed: 0, pca: 0 })).rejects.toMatchObject({ status: 400, code: 'BAD_K' });
  });

  it('answers 400 BAD_K for more clusters than patches', async () => {
    const analysis = createAnalysisService({ store: storeWithRun(3), kmeans: kmeansNeverCalled, cacheBytes: 1 << 20 });
    await expect(analysis.getClusters({ ...key }, { k: 4, seed: 0, pca: 0 })).rejects.toMatchObject({ code: 'BAD_K', message: expect.stringContaining('has 3') });
  });
});
