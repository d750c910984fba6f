/**
 * Level 0's tile → (instance, frame) map, read from the PACS's series metadata independently of the
 * gateway's src/wsi code, so the direct WADO-RS baseline does not inherit a gateway bug.
 *
 * Only what the large slide needs: a TILED_SPARSE level whose frames each carry their position in
 * PerFrameFunctionalGroupsSequence (5200,9230) > PlanePositionSlideSequence (0048,021A) >
 * Column/RowPositionInTotalImagePixelMatrix (0048,021E / 0048,021F), 1-based pixels (PS3.3 C.8.12.6.1).
 * Level 0 may be a concatenation of several instances; each frame lives in exactly one of them.
 */
import { Agent, request } from 'undici';

/** Where a tile's frame lives. */
export interface FrameLocation {
  readonly sopInstanceUid: string;
  /** 1-based, as in the WADO-RS `/frames/{n}` URL. */
  readonly frameNumber: number;
}

/** Level 0 as the metadata describes it. */
export interface Level0Map {
  readonly widthPx: number;
  readonly heightPx: number;
  readonly tileWidthPx: number;
  readonly tileHeightPx: number;
  readonly gridCols: number;
  readonly gridRows: number;
  /** Instances holding level 0 (a concatenation), with their frame counts. */
  readonly instances: ReadonlyArray<{ sopInstanceUid: string; numberOfFrames: number }>;
  /** Frame of tile (col, row), or undefined where a sparse level has none. */
  frameAt(col: number, row: number): FrameLocation | undefined;
}

type DicomJsonDataset = Record<string, unknown>;

function isDataset(value: unknown): value is DicomJsonDataset {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function valuesOf(dataset: DicomJsonDataset, tag: string): unknown[] {
  const element = dataset[tag];
  if (!isDataset(element)) return [];
  const value = element['Value'];
  return Array.isArray(value) ? value : [];
}

function numberOf(dataset: DicomJsonDataset, tag: string): number | undefined {
  // IS values come as numbers or numeric strings depending on the PACS.
  const first = valuesOf(dataset, tag)[0];
  const n = typeof first === 'string' ? Number(first) : first;
  return typeof n === 'number' && Number.isFinite(n) ? n : undefined;
}

function requireNumber(dataset: DicomJsonDataset, tag: string, what: string): number {
  const n = numberOf(dataset, tag);
  if (n === undefined) throw new Error(`series metadata: ${what} (${tag}) missing`);
  return n;
}

function itemsOf(dataset: DicomJsonDataset, tag: string): DicomJsonDataset[] {
  return valuesOf(dataset, tag).filter(isDataset);
}

/** GETs the series metadata (DICOM JSON) from a DICOMweb root. */
export async function fetchSeriesMetadata(dicomwebUrl: string, studyUid: string, seriesUid: string): Promise<DicomJsonDataset[]> {
  const agent = new Agent();
  try {
    const url = `${dicomwebUrl}/studies/${studyUid}/series/${seriesUid}/metadata`;
    const { statusCode, body } = await request(url, { dispatcher: agent, headers: { accept: 'application/dicom+json' } });
    const text = await body.text();
    if (statusCode !== 200) throw new Error(`GET ${url}: HTTP ${statusCode}`);
    const parsed: unknown = JSON.parse(text);
    if (!Array.isArray(parsed)) throw new Error('series metadata is not a JSON array');
    return parsed.filter(isDataset);
  } finally {
    await agent.close();
  }
}

/** Builds level 0's map from series metadata: the tiled instances with the largest total pixel matrix. */
export function computeLevel0Map(metadata: readonly DicomJsonDataset[]): Level0Map {
  const tiled = metadata.filter((d) => numberOf(d, '00480006') !== undefined && itemsOf(d, '52009230').length > 0);
  const widthPx = Math.max(...tiled.map((d) => requireNumber(d, '00480006', 'TotalPixelMatrixColumns')));
  const level0 = tiled.filter((d) => numberOf(d, '00480006') === widthPx);
  const first = level0[0];
  if (first === undefined) throw new Error('series metadata: no instance with per-frame positions');
  const heightPx = requireNumber(first, '00480007', 'TotalPixelMatrixRows');
  const tileWidthPx = requireNumber(first, '00280011', 'Columns');
  const tileHeightPx = requireNumber(first, '00280010', 'Rows');
  const gridCols = Math.ceil(widthPx / tileWidthPx);
  const gridRows = Math.ceil(heightPx / tileHeightPx);

  const frames = new Map<number, FrameLocation>();
  const instances: Array<{ sopInstanceUid: string; numberOfFrames: number }> = [];
  for (const instance of level0) {
    const sopInstanceUid = valuesOf(instance, '00080018')[0];
    if (typeof sopInstanceUid !== 'string') throw new Error('series metadata: SOPInstanceUID missing');
    const perFrame = itemsOf(instance, '52009230');
    instances.push({ sopInstanceUid, numberOfFrames: perFrame.length });
    perFrame.forEach((item, frameIndex) => {
      const position = itemsOf(item, '0048021A')[0];
      if (position === undefined) throw new Error(`frame ${frameIndex + 1}: no PlanePositionSlideSequence`);
      // 1-based pixel positions of the frame's top-left corner in the total pixel matrix.
      const col = (requireNumber(position, '0048021E', 'ColumnPositionInTotalImagePixelMatrix') - 1) / tileWidthPx;
      const row = (requireNumber(position, '0048021F', 'RowPositionInTotalImagePixelMatrix') - 1) / tileHeightPx;
      if (!Number.isInteger(col) || !Number.isInteger(row)) throw new Error(`frame ${frameIndex + 1} is not on the tile grid`);
      // frameIndex is 0-based inside the sequence; WADO-RS frame numbers are 1-based.
      frames.set(row * gridCols + col, { sopInstanceUid, frameNumber: frameIndex + 1 });
    });
  }
  return Object.freeze({
    widthPx,
    heightPx,
    tileWidthPx,
    tileHeightPx,
    gridCols,
    gridRows,
    instances: Object.freeze(instances),
    frameAt: (col: number, row: number) => frames.get(row * gridCols + col),
  });
}

/** A tile position. */
export interface TilePosition {
  readonly col: number;
  readonly row: number;
}

/**
 * The order a viewer asks for tiles while panning a slide row by row: the grid cut into viewport-sized
 * blocks (row-major), each block's tiles row-major. Positions without a frame are skipped.
 */
export function computeViewerOrder(map: Level0Map, blockCols = 8, blockRows = 5): TilePosition[] {
  return computeGridViewerOrder(map.gridCols, map.gridRows, blockCols, blockRows).filter(({ col, row }) => map.frameAt(col, row) !== undefined);
}

/** Every tile of a `gridCols` x `gridRows` grid in viewer order (see {@link computeViewerOrder}). */
export function computeGridViewerOrder(gridCols: number, gridRows: number, blockCols = 8, blockRows = 5): TilePosition[] {
  const order: TilePosition[] = [];
  for (let top = 0; top < gridRows; top += blockRows) {
    for (let left = 0; left < gridCols; left += blockCols) {
      for (let row = top; row < Math.min(top + blockRows, gridRows); row++) {
        for (let col = left; col < Math.min(left + blockCols, gridCols); col++) order.push({ col, row });
      }
    }
  }
  return order;
}
