/**
 * What a DICOM UID looks like (PS3.5 §9.1): digits and dots, at most 64 characters. Checked on the way
 * in from both sides: from callers (routes/params.ts) and from the PACS (dicom-json.ts), because UIDs
 * become path segments of PACS requests, and one like `1.2/../../system` would climb out of the
 * configured DICOMweb root.
 */
const UID = /^[0-9]+(\.[0-9]+)*$/;

export function isDicomUid(value: string | undefined): value is string {
  return value !== undefined && value.length <= 64 && UID.test(value);
}
