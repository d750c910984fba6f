/**
 * Model manifests: one JSON file per model in models/, saying what file to load, how to turn RGB
 * patches into the model's input tensor and how to read an embedding out of its output. The gateway
 * knows nothing about a model that its manifest does not say.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { BadRequestError } from '../../errors.js';

const rgb = z.tuple([z.number(), z.number(), z.number()]);

export const ModelManifestSchema = z
  .object({
    /** Stable id used in requests and store paths: lowercase letters, digits, dashes. */
    id: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/),
    name: z.string().min(1),
    description: z.string().default(''),
    /** Where the weights come from and under which licence: shown to users, never fetched. */
    source: z.string().default(''),
    /** onnx: an .onnx file run by onnxruntime-node; tfjs-graph: a TF.js graph model's model.json; builtin: no file. */
    format: z.enum(['onnx', 'tfjs-graph', 'builtin']),
    /** Weights file relative to the models folder (MODELS_DIR). Not used by builtin models. */
    file: z.string().min(1).optional(),
    input: z.object({
      /** Input tensor name; the model's first input when absent. */
      name: z.string().optional(),
      /** NHWC ([N,224,224,3], TensorFlow's) or NCHW ([N,3,224,224], PyTorch's). */
      layout: z.enum(['NHWC', 'NCHW']),
      /** Patch side in pixels: the grid cuts patches of this size at the requested mpp. */
      sizePx: z.number().int().min(8).max(4096),
      /** Pixel values are scaled from 0..255 to this range before normalisation. */
      range: z.tuple([z.number(), z.number()]),
      /** Per-channel (R, G, B) mean subtracted after scaling, then divided by std. Defaults: 0 and 1. */
      mean: rgb.optional(),
      std: rgb.optional(),
    }),
    output: z.object({
      /** Output tensor name; the model's first output when absent. */
      name: z.string().optional(),
      /** none: the output is [N, dim]; mean-hw: a spatial map [N,H,W,C] (or [N,C,H,W]) averaged over H and W. */
      pooling: z.enum(['none', 'mean-hw']),
      /** Layout of a spatial output. @default 'NHWC' */
      layout: z.enum(['NHWC', 'NCHW']).default('NHWC'),
      dim: z.number().int().min(1).max(65536),
    }),
    /** µm per pixel the model was trained at, finest last; the first value a job uses by default. */
    recommendedMpp: z.array(z.number().positive()).min(1),
    /**
     * onnxruntime's graph optimisation. onnxruntime 1.30 folds a zero Pad into the MaxPool after it,
     * which then pads with -inf instead of 0 and changes border values: ResNet-v2/BiT exports (REMEDIS)
     * have exactly that Pad → MaxPool and need 'disabled'. @default 'all'
     */
    onnxGraphOptimization: z.enum(['disabled', 'basic', 'extended', 'all']).default('all'),
    /** Largest batch worth sending at once (CPU gains nothing above 8; GPUs like 64+). @default 32 */
    maxBatch: z.number().int().min(1).max(4096).default(32),
  })
  .superRefine((m, ctx) => {
    if (m.format !== 'builtin' && !m.file) ctx.addIssue({ code: 'custom', path: ['file'], message: `a ${m.format} model needs a file` });
    if (m.input.range[0] >= m.input.range[1]) ctx.addIssue({ code: 'custom', path: ['input', 'range'], message: 'range must be [low, high] with low < high' });
    if (m.input.std?.some((s) => s === 0)) ctx.addIssue({ code: 'custom', path: ['input', 'std'], message: 'std must not be 0' });
  });

export type ModelManifest = z.infer<typeof ModelManifestSchema>;

export class ManifestError extends Error {}

/** Parses one manifest; the message names the file and every problem. */
export function parseManifest(json: unknown, fileName: string): ModelManifest {
  const parsed = ModelManifestSchema.safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new ManifestError(`${fileName}: ${problems.join('; ')}`);
  }
  return parsed.data;
}

/** Every *.json manifest directly in `dir`, by id. Duplicate ids and bad files fail loudly at start. */
export async function loadManifests(dir: string): Promise<Map<string, ModelManifest>> {
  const manifests = new Map<string, ModelManifest>();
  const names = (await readdir(dir)).filter((n) => n.endsWith('.json')).sort();
  for (const name of names) {
    const file = path.join(dir, name);
    let json: unknown;
    try {
      json = JSON.parse(await readFile(file, 'utf8'));
    } catch (err) {
      throw new ManifestError(`${file}: not valid JSON (${(err as Error).message})`);
    }
    const manifest = parseManifest(json, file);
    if (manifests.has(manifest.id)) throw new ManifestError(`${file}: model id '${manifest.id}' is used twice`);
    manifests.set(manifest.id, manifest);
  }
  return manifests;
}

/** The manifest for a request's `model`, or a 400 listing the ids there are. */
export function findManifest(manifests: ReadonlyMap<string, ModelManifest>, id: string): ModelManifest {
  const manifest = manifests.get(id);
  if (!manifest) {
    throw new BadRequestError(`Unknown model '${id}'. Models: ${[...manifests.keys()].join(', ') || '(none)'}`, 'UNKNOWN_MODEL');
  }
  return manifest;
}
