/**
 * Run keys become directory names, so each part is checked against a charset that cannot name a parent
 * or hidden directory, a separator or a drive: <root>/<studyUid>/<seriesUid>/<modelId>/<runId>/.
 * Mistakes are 400s with the codes the routes already document.
 */
import path from 'node:path';
import { BadRequestError } from '../../errors.js';
import type { RunKey } from './types.js';

/** A DICOM UID: digits and dots, at most 64 characters (PS3.5 §9.1); no empty component, so never '.' or '..'. */
const UID = /^[0-9]+(\.[0-9]+)*$/;
/** As the model manifest's id. */
const MODEL_ID = /^[a-z0-9][a-z0-9-]{0,62}$/;
/** Starts with a letter or digit: never '.', '..' or a hidden name. */
const RUN_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export function checkUid(value: unknown, name: string): string {
  if (typeof value !== 'string' || value.length > 64 || !UID.test(value)) {
    throw new BadRequestError(`${name} must be a DICOM UID (digits and dots, at most 64 characters)`, 'INVALID_UID');
  }
  return value;
}

export function checkModelId(value: unknown): string {
  if (typeof value !== 'string' || !MODEL_ID.test(value)) {
    throw new BadRequestError('modelId must be lowercase letters, digits and dashes (at most 63)', 'INVALID_PARAMETER');
  }
  return value;
}

export function checkRunId(value: unknown): string {
  if (typeof value !== 'string' || !RUN_ID.test(value)) {
    throw new BadRequestError('runId must be letters, digits, dots, dashes and underscores, starting with a letter or digit (at most 128)', 'INVALID_PARAMETER');
  }
  return value;
}

/** A checked copy of the key (extra properties dropped). */
export function checkRunKey(key: RunKey): RunKey {
  return {
    studyUid: checkUid(key?.studyUid, 'studyUid'),
    seriesUid: checkUid(key?.seriesUid, 'seriesUid'),
    modelId: checkModelId(key?.modelId),
    runId: checkRunId(key?.runId),
  };
}

/** The run's directory; the containment check is a second line of defence behind the charsets. */
export function runDirOf(root: string, key: RunKey): string {
  const k = checkRunKey(key);
  const dir = path.join(root, k.studyUid, k.seriesUid, k.modelId, k.runId);
  if (!dir.startsWith(root + path.sep)) throw new BadRequestError('Run key escapes the store', 'INVALID_PARAMETER');
  return dir;
}
