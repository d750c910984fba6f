/**
 * The models a gateway knows: manifests shipped in models/ plus those in MODELS_DIR (which add to or
 * replace them by id), each loaded on first use by its runtime and shared by every job. Calls into one
 * model are queued so that two slides embedding at once never overlap on the accelerator.
 */
import { access } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { BadRequestError } from '../../errors.js';
import { appPath } from '../../paths.js';
import { findManifest, loadManifests, type ModelManifest } from '../models/manifest.js';
import { loadOnnxModel, resolveModelFile, type ExecutionProvider } from './onnx.js';
import type { EmbeddingModel, PatchBatch } from './types.js';

export type { EmbeddingModel, PatchBatch } from './types.js';
export type { ExecutionProvider } from './onnx.js';

/** The manifests that ship with the gateway. */
export const SHIPPED_MODELS_DIR = appPath('models/');

export interface ModelRegistryOptions {
  /** Weights live here, and manifests here override the shipped ones. */
  modelsDir: string;
  executionProviders: readonly ExecutionProvider[];
  intraOpThreads: number;
  logger: Logger;
}

export interface ModelInfo {
  manifest: ModelManifest;
  /** Whether its weights file is in place (always true for built-in models). */
  available: boolean;
  /** The runtime running it, once loaded. */
  backend: string | undefined;
}

export interface ModelRegistry {
  list(): Promise<ModelInfo[]>;
  /** The manifest for a job, after checking its weights are in place: 400 otherwise, naming the file. */
  check(id: string): Promise<ModelManifest>;
  /** The loaded model, shared; its embed() calls are queued. */
  acquire(id: string): Promise<EmbeddingModel>;
  close(): Promise<void>;
}

async function loadRuntime(manifest: ModelManifest, options: ModelRegistryOptions): Promise<EmbeddingModel> {
  switch (manifest.format) {
    case 'onnx':
      return loadOnnxModel(manifest, options.modelsDir, {
        executionProviders: options.executionProviders,
        intraOpThreads: options.intraOpThreads,
        onProvider: (used, failures) => {
          for (const f of failures) options.logger.warn({ model: manifest.id, provider: f.provider, reason: f.reason }, 'execution provider unavailable, trying the next');
          options.logger.info({ model: manifest.id, provider: used }, 'model loaded');
        },
      });
    case 'tfjs-graph': {
      // Imported only here: the TF.js packages are optional and absent on most hosts.
      const { loadTfjsModel } = await import('./tfjs.js');
      return loadTfjsModel(manifest, options.modelsDir);
    }
    case 'builtin': {
      const { createBuiltinModel } = await import('./builtin.js');
      return createBuiltinModel(manifest);
    }
  }
}

/** Wraps a model so calls run one after another, in the order they were made. */
function serialise(model: EmbeddingModel): EmbeddingModel {
  let tail: Promise<unknown> = Promise.resolve();
  return {
    manifest: model.manifest,
    dim: model.dim,
    backend: model.backend,
    embed(batch: PatchBatch) {
      const result = tail.then(() => model.embed(batch));
      tail = result.catch(() => undefined);
      return result;
    },
    close: () => model.close(),
  };
}

async function loadAllManifests(modelsDir: string): Promise<Map<string, ModelManifest>> {
  const manifests = await loadManifests(SHIPPED_MODELS_DIR);
  const userDir = path.resolve(modelsDir);
  if (userDir !== path.resolve(SHIPPED_MODELS_DIR)) {
    const user = await loadManifests(userDir).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return new Map<string, ModelManifest>();
      throw err;
    });
    for (const [id, manifest] of user) manifests.set(id, manifest);
  }
  return manifests;
}

/** Manifests are read on first use; main() calls list() at start so a bad manifest stops it at once. */
export function createModelRegistry(options: ModelRegistryOptions): ModelRegistry {
  let reading: Promise<Map<string, ModelManifest>> | undefined;
  const manifestsReady = () => (reading ??= loadAllManifests(options.modelsDir));
  const loaded = new Map<string, Promise<EmbeddingModel>>();
  const backends = new Map<string, string>();

  async function isAvailable(manifest: ModelManifest): Promise<boolean> {
    if (manifest.format === 'builtin') return true;
    return access(resolveModelFile(manifest, options.modelsDir)).then(
      () => true,
      () => false,
    );
  }

  return {
    async list() {
      const manifests = await manifestsReady();
      return Promise.all(
        [...manifests.values()].map(async (manifest) => ({ manifest, available: await isAvailable(manifest), backend: backends.get(manifest.id) })),
      );
    },
    async check(id) {
      const manifest = findManifest(await manifestsReady(), id);
      if (!(await isAvailable(manifest))) {
        throw new BadRequestError(
          `Model '${id}' needs its weights at ${resolveModelFile(manifest, options.modelsDir)}; models/README.md says how to convert and place them`,
          'MODEL_FILE_MISSING',
        );
      }
      return manifest;
    },
    async acquire(id) {
      const manifest = findManifest(await manifestsReady(), id);
      let model = loaded.get(id);
      if (!model) {
        model = loadRuntime(manifest, options).then((m) => {
          backends.set(id, m.backend);
          return serialise(m);
        });
        // A failed load is not cached: the operator may fix the file and try again.
        model.catch(() => loaded.delete(id));
        loaded.set(id, model);
      }
      return model;
    },
    async close() {
      const models = [...loaded.values()];
      loaded.clear();
      await Promise.all(models.map((m) => m.then((x) => x.close(), () => undefined)));
    },
  };
}
