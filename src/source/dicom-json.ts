/**
 * DICOM JSON (PS3.18 F.2) → typed records. Both sources speak it: DICOMweb returns it, and dcmjs reads
 * Part 10 files into the same shape. This is the only file that knows hex tags.
 */
import type { FramePositions, WsiInstance } from '../wsi/instance.js';
import type { SeriesSummary } from './types.js';
import { isDicomUid } from './uid.js';

/** A DICOM JSON dataset: tag (8 hex digits) → element. */
export type DicomJson = Record<string, DicomJsonElement | undefined>;
export interface DicomJsonElement {
  vr?: string;
  Value?: unknown[];
}

const TAG = {
  transferSyntaxUid: '00020010',
  imageType: '00080008',
  sopClassUid: '00080016',
  sopInstanceUid: '00080018',
  studyDate: '00080020',
  patientName: '00100010',
  patientId: '00100020',
  modality: '00080060',
  studyDescription: '00081030',
  seriesDescription: '0008103E',
  availableTransferSyntaxUid: '00083002',
  studyUid: '0020000D',
  seriesUid: '0020000E',
  seriesNumber: '00200011',
  frameOfReferenceUid: '00200052',
  concatenationUid: '00209161',
  concatenationFrameOffset: '00209228',
  dimensionOrganizationType: '00209311',
  numberOfSeriesRelatedInstances: '00201209',
  samplesPerPixel: '00280002',
  photometricInterpretation: '00280004',
  planarConfiguration: '00280006',
  numberOfFrames: '00280008',
  rows: '00280010',
  columns: '00280011',
  pixelSpacing: '00280030',
  bitsAllocated: '00280100',
  bitsStored: '00280101',
  pixelRepresentation: '00280103',
  pixelMeasuresSequence: '00289110',
  zOffset: '0040074A',
  containerIdentifier: '00400512',
  imagedVolumeWidth: '00480001',
  imagedVolumeHeight: '00480002',
  totalPixelMatrixColumns: '00480006',
  totalPixelMatrixRows: '00480007',
  opticalPathIdentifier: '00480106',
  opticalPathIdentificationSequence: '00480207',
  planePositionSlideSequence: '0048021A',
  columnPositionInTotalImagePixelMatrix: '0048021E',
  rowPositionInTotalImagePixelMatrix: '0048021F',
  numberOfOpticalPaths: '00480302',
  totalPixelMatrixFocalPlanes: '00480303',
  sharedFunctionalGroupsSequence: '52009229',
  perFrameFunctionalGroupsSequence: '52009230',
} as const;

/** Attributes the gateway asks a QIDO-RS search to include. */
export const QIDO_SERIES_FIELDS = [
  TAG.studyDescription,
  TAG.seriesDescription,
  TAG.studyDate,
  TAG.seriesNumber,
  TAG.numberOfSeriesRelatedInstances,
  TAG.patientName,
  TAG.patientId,
] as const;

function values(ds: DicomJson | undefined, tag: string): unknown[] {
  const element = ds?.[tag];
  return Array.isArray(element?.Value) ? element.Value : [];
}

function readString(ds: DicomJson | undefined, tag: string): string | undefined {
  const first = values(ds, tag)[0];
  if (typeof first === 'string') {
    const trimmed = first.trim();
    return trimmed === '' ? undefined : trimmed;
  }
  if (typeof first === 'number') return String(first);
  return undefined;
}

/** A PN value: DICOM JSON gives `{ Alphabetic }` objects, some readers a plain string. `^` separates name parts. */
function readPersonName(ds: DicomJson | undefined, tag: string): string | undefined {
  const first = values(ds, tag)[0];
  const raw = typeof first === 'string' ? first : typeof first === 'object' && first !== null ? (first as { Alphabetic?: unknown }).Alphabetic : undefined;
  if (typeof raw !== 'string') return undefined;
  const name = raw.split('=')[0]!.split('^').map((p) => p.trim()).filter(Boolean).join(' ');
  return name === '' ? undefined : name;
}

function readStrings(ds: DicomJson | undefined, tag: string): string[] {
  return values(ds, tag)
    .map((v) => (typeof v === 'string' ? v.trim() : typeof v === 'number' ? String(v) : ''))
    .filter((v) => v !== '');
}

/** Numbers may arrive as JSON numbers or, from some servers, as IS/DS strings. */
function toNumber(value: unknown): number | undefined {
  const n = typeof value === 'number' ? value : typeof value === 'string' ? Number(value.trim()) : NaN;
  return Number.isFinite(n) ? n : undefined;
}

function readNumber(ds: DicomJson | undefined, tag: string): number | undefined {
  return toNumber(values(ds, tag)[0]);
}

function readItems(ds: DicomJson | undefined, tag: string): DicomJson[] {
  return values(ds, tag).filter((v): v is DicomJson => typeof v === 'object' && v !== null);
}

function readFirstItem(ds: DicomJson | undefined, tag: string): DicomJson | undefined {
  return readItems(ds, tag)[0];
}

/** Reads a QIDO-RS series result. Returns undefined when the UIDs are missing or not UIDs. */
export function parseSeriesSummary(ds: DicomJson): SeriesSummary | undefined {
  const studyUid = readString(ds, TAG.studyUid);
  const seriesUid = readString(ds, TAG.seriesUid);
  if (!isDicomUid(studyUid) || !isDicomUid(seriesUid)) return undefined;
  return {
    studyUid,
    seriesUid,
    modality: readString(ds, TAG.modality),
    studyDescription: readString(ds, TAG.studyDescription),
    seriesDescription: readString(ds, TAG.seriesDescription),
    studyDate: readString(ds, TAG.studyDate),
    seriesNumber: readNumber(ds, TAG.seriesNumber),
    instanceCount: readNumber(ds, TAG.numberOfSeriesRelatedInstances),
    patientName: readPersonName(ds, TAG.patientName),
    patientId: readString(ds, TAG.patientId),
  };
}

function parseFramePositions(ds: DicomJson, frameCount: number): FramePositions | undefined {
  const perFrame = readItems(ds, TAG.perFrameFunctionalGroupsSequence);
  if (perFrame.length === 0) return undefined;
  const count = Math.min(perFrame.length, frameCount);
  const positions: FramePositions = {
    columnPx: new Int32Array(count),
    rowPx: new Int32Array(count),
    zOffsetUm: new Float64Array(count),
    opticalPath: new Array<string>(count),
  };
  let anyPosition = false;
  for (let i = 0; i < count; i++) {
    const item = perFrame[i];
    const plane = readFirstItem(item, TAG.planePositionSlideSequence);
    const col = readNumber(plane, TAG.columnPositionInTotalImagePixelMatrix);
    const row = readNumber(plane, TAG.rowPositionInTotalImagePixelMatrix);
    if (col !== undefined && row !== undefined) anyPosition = true;
    positions.columnPx[i] = col ?? 0;
    positions.rowPx[i] = row ?? 0;
    positions.zOffsetUm[i] = readNumber(plane, TAG.zOffset) ?? NaN;
    const path = readFirstItem(item, TAG.opticalPathIdentificationSequence);
    positions.opticalPath[i] = readString(path, TAG.opticalPathIdentifier) ?? '';
  }
  return anyPosition ? positions : undefined;
}

/** Attributes without which no frame can be located or decoded. */
const REQUIRED = [
  ['Rows', TAG.rows],
  ['Columns', TAG.columns],
  ['SamplesPerPixel', TAG.samplesPerPixel],
  ['PhotometricInterpretation', TAG.photometricInterpretation],
  ['BitsAllocated', TAG.bitsAllocated],
] as const;

/**
 * Reads one instance's metadata. Never throws for missing attributes: it lists them in `missing` so the
 * source can fetch fuller metadata, and the slide model can name them in its error.
 * Returns undefined when the dataset has no study/series/instance UID (not an instance at all), or
 * one that is not a UID (it would become a path segment of the frame requests).
 */
export function parseWsiInstance(ds: DicomJson): WsiInstance | undefined {
  const studyUid = readString(ds, TAG.studyUid);
  const seriesUid = readString(ds, TAG.seriesUid);
  const sopInstanceUid = readString(ds, TAG.sopInstanceUid);
  if (!isDicomUid(studyUid) || !isDicomUid(seriesUid) || !isDicomUid(sopInstanceUid)) return undefined;

  const missing: string[] = REQUIRED.filter(([, tag]) => readNumber(ds, tag) === undefined && readString(ds, tag) === undefined).map(
    ([name]) => name,
  );
  const frameWidthPx = readNumber(ds, TAG.columns) ?? 0;
  const frameHeightPx = readNumber(ds, TAG.rows) ?? 0;
  const numberOfFrames = readNumber(ds, TAG.numberOfFrames) ?? 1;
  const totalWidth = readNumber(ds, TAG.totalPixelMatrixColumns);
  const totalHeight = readNumber(ds, TAG.totalPixelMatrixRows);
  // A single-frame image (a label, a small overview) may omit the total pixel matrix: the frame is the image.
  if ((totalWidth === undefined || totalHeight === undefined) && numberOfFrames > 1) {
    missing.push('TotalPixelMatrixColumns', 'TotalPixelMatrixRows');
  }

  const shared = readFirstItem(ds, TAG.sharedFunctionalGroupsSequence);
  const spacing = values(readFirstItem(shared, TAG.pixelMeasuresSequence), TAG.pixelSpacing).map(toNumber);
  const [rowSpacing, colSpacing] = spacing;
  const pixelSpacingMm =
    rowSpacing !== undefined && colSpacing !== undefined && rowSpacing > 0 && colSpacing > 0
      ? ([rowSpacing, colSpacing] as const)
      : undefined;

  return {
    studyUid,
    seriesUid,
    sopInstanceUid,
    sopClassUid: readString(ds, TAG.sopClassUid),
    imageType: readStrings(ds, TAG.imageType).map((v) => v.toUpperCase()),
    transferSyntaxUid: readString(ds, TAG.transferSyntaxUid) ?? readString(ds, TAG.availableTransferSyntaxUid),
    frameHeightPx,
    frameWidthPx,
    numberOfFrames,
    totalWidthPx: totalWidth ?? frameWidthPx,
    totalHeightPx: totalHeight ?? frameHeightPx,
    samplesPerPixel: readNumber(ds, TAG.samplesPerPixel) ?? 0,
    photometricInterpretation: readString(ds, TAG.photometricInterpretation) ?? '',
    bitsAllocated: readNumber(ds, TAG.bitsAllocated) ?? 0,
    bitsStored: readNumber(ds, TAG.bitsStored) ?? readNumber(ds, TAG.bitsAllocated) ?? 0,
    pixelRepresentation: readNumber(ds, TAG.pixelRepresentation) ?? 0,
    planarConfiguration: readNumber(ds, TAG.planarConfiguration) ?? 0,
    dimensionOrganizationType: readString(ds, TAG.dimensionOrganizationType)?.toUpperCase(),
    pixelSpacingMm,
    imagedVolumeWidthMm: readNumber(ds, TAG.imagedVolumeWidth),
    imagedVolumeHeightMm: readNumber(ds, TAG.imagedVolumeHeight),
    totalPixelMatrixFocalPlanes: readNumber(ds, TAG.totalPixelMatrixFocalPlanes) ?? 1,
    numberOfOpticalPaths: readNumber(ds, TAG.numberOfOpticalPaths) ?? 1,
    concatenationUid: readString(ds, TAG.concatenationUid),
    concatenationFrameOffset: readNumber(ds, TAG.concatenationFrameOffset) ?? 0,
    frameOfReferenceUid: readString(ds, TAG.frameOfReferenceUid),
    framePositions: parseFramePositions(ds, numberOfFrames),
    seriesDescription: readString(ds, TAG.seriesDescription),
    studyDescription: readString(ds, TAG.studyDescription),
    containerIdentifier: readString(ds, TAG.containerIdentifier),
    missing,
  };
}

/** Modality of a dataset (for folder scans). */
export function readModality(ds: DicomJson): string | undefined {
  return readString(ds, TAG.modality);
}
