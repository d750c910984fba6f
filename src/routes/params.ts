/** Validation of path and query parameters: every caller mistake becomes a 400 with a clear message. */
import { BadRequestError } from '../errors.js';
import { isDicomUid } from '../source/uid.js';

export function parseUid(value: string | undefined, name: string): string {
  if (!isDicomUid(value)) {
    throw new BadRequestError(`${name} must be a DICOM UID (digits and dots, at most 64 characters)`, 'INVALID_UID');
  }
  return value;
}

/** A non-negative integer path or query parameter, within [min, max]. */
export function parseIndex(value: string | undefined, name: string, { min = 0, max = 1_000_000_000 } = {}): number {
  if (value === undefined || !/^\d{1,10}$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new BadRequestError(`${name} must be a whole number from ${min} to ${max}`, 'INVALID_PARAMETER');
  }
  return Number(value);
}

/** An optional integer query parameter with a default. */
export function parseOptionalIndex(value: string | undefined, name: string, fallback: number, range: { min?: number; max?: number }): number {
  return value === undefined || value === '' ? fallback : parseIndex(value, name, range);
}

const MODEL_ID = /^[a-z0-9][a-z0-9-]{0,62}$/;
const RUN_ID = /^[A-Za-z0-9._-]{1,128}$/;

/** A model manifest id, or undefined when absent. */
export function parseOptionalModelId(value: string | undefined, name = 'model'): string | undefined {
  if (value === undefined || value === '') return undefined;
  if (!MODEL_ID.test(value)) throw new BadRequestError(`${name} must be a model id (lower-case letters, digits and -)`, 'INVALID_PARAMETER');
  return value;
}

/** A stored run's id (e.g. mpp0.5-s224-t0.25), or undefined when absent. */
export function parseOptionalRunId(value: string | undefined, name = 'run'): string | undefined {
  if (value === undefined || value === '') return undefined;
  if (!RUN_ID.test(value)) throw new BadRequestError(`${name} must be a run id (letters, digits, '.', '_' and '-')`, 'INVALID_PARAMETER');
  return value;
}
