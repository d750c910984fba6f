/**
 * Cluster labels of a slide's patches as files other tools read: GeoJSON that QuPath imports (File ›
 * Import objects, or drag and drop) and CSV. Pure: arrays in, a document out; the route serialises it.
 *
 * QuPath's GeoJSON dialect, as read by QuPath 0.3.2 (qupath-core PathObjectTypeAdapters.java) and 0.4–0.5
 * (QuPathTypeAdapters.java, GsonTools.java), and described in qupath/qupath PR #698, #1099 and #1103:
 * - coordinates are full-resolution (level-0) image pixels, origin top left, x right, y down;
 * - `properties.objectType` picks the object type (0.4+); 0.3 reads only `object_type`, and 0.4+ still
 *   reads it when `objectType` is absent, so both are written;
 * - `properties.classification`: 0.4+ reads `{ name, color: [r, g, b] }`, but takes the pre-0.4 form
 *   (PathClass's own fields `name` and `colorRGB`, a signed packed ARGB int) whenever `colorRGB` is present,
 *   which is also the only colour 0.3 reads: both are written, and every version gets the colour. A ':'
 *   in a name makes a derived class in QuPath (e.g. "Tumour: high");
 * - `properties.measurements`: 0.3 reads only a `[{ name, value }]` array; 0.4+ reads that or an object;
 * - the feature's `id`: 0.4+ keeps it when it parses as a UUID (0.3 ignores it), and asks before
 *   importing objects whose ids are already in the image, so ids here are stable: the same patches and
 *   labels give the same ids, and another run or k gives others.
 *
 * Errors: every input comes from the gateway's own k-means result (ClusterSummary has name and colour),
 * so inconsistent inputs are programming errors (TypeError, RangeError). The one error a request can
 * cause is BadRequestError OUTLINE_TOO_COMPLEX from merged mode on patches far off any grid.
 */
import { createHash } from 'node:crypto';
import { computeCellOutline, type Ring } from './cell-outline.js';
import { parseHexColour } from './palette.js';

export type { Position, Ring } from './cell-outline.js';

/** A run's patches and their cluster labels. */
export interface PatchCells {
  /** rows * 2 ints: level-0 x, y of each patch's top-left corner. */
  coordsPx: Int32Array;
  /** Side of every patch in level-0 pixels. */
  widthPx: number;
  heightPx: number;
  /** One per patch: the cluster index, 0-based. */
  labels: Uint8Array;
}

/** How cluster `index` is called and drawn. */
export interface ClusterStyle {
  name: string;
  /** '#rrggbb' */
  colour: string;
}

export interface ClusterGeoJsonOptions {
  /** 'patches': one detection per patch; 'merged': one annotation per non-empty cluster, the union of its patches. */
  mode: 'patches' | 'merged';
}

export interface GeoJsonPolygon {
  type: 'Polygon';
  coordinates: Ring[];
}

export interface GeoJsonMultiPolygon {
  type: 'MultiPolygon';
  coordinates: Ring[][];
}

/** A QuPath classification (see the module comment for why both colour fields). */
export interface QuPathClassification {
  name: string;
  /** [r, g, b], 0-255: what QuPath 0.4+ writes. */
  color: [number, number, number];
  /** The same colour packed as QuPath's signed 32-bit ARGB int (alpha 255): what QuPath 0.3 reads. */
  colorRGB: number;
}

export interface QuPathMeasurement {
  name: string;
  value: number;
}

export interface ClusterFeatureProperties {
  objectType: 'detection' | 'annotation';
  /** objectType again, for QuPath 0.3. */
  object_type: 'detection' | 'annotation';
  /** The cluster's name (merged mode only). */
  name?: string;
  /** Shared by every feature of a cluster. */
  classification: QuPathClassification;
  /** `cluster` (0-based index) and `patch` (row, as in the CSV) per patch; `cluster` and `patches` (count) per merged cluster. */
  measurements: QuPathMeasurement[];
}

export interface GeoJsonFeature {
  type: 'Feature';
  /** A UUID (version 8, RFC 9562 §5.8) derived from the patches, labels, mode and feature index. */
  id: string;
  geometry: GeoJsonPolygon | GeoJsonMultiPolygon;
  properties: ClusterFeatureProperties;
}

export interface GeoJsonFeatureCollection {
  type: 'FeatureCollection';
  features: GeoJsonFeature[];
}

/** The CSV's first line. */
export const CLUSTER_CSV_HEADER = 'patch,x_px,y_px,width_px,height_px,cluster,cluster_name';

/**
 * Cluster labels as a GeoJSON FeatureCollection in QuPath's dialect. 'patches': one Polygon detection per
 * patch, in row order. 'merged': one annotation per non-empty cluster, in cluster order, whose Polygon or
 * MultiPolygon is the exact union of its patches (see cell-outline.ts for the validity rules).
 */
export function computeClusterGeoJson(cells: PatchCells, clusters: readonly ClusterStyle[], { mode }: ClusterGeoJsonOptions): GeoJsonFeatureCollection {
  validateCells(cells, clusters);
  const classifications = clusters.map(toClassification);
  const idOf = createFeatureIds(cells, mode);
  return { type: 'FeatureCollection', features: mode === 'patches' ? patchFeatures(cells, classifications, idOf) : mergedFeatures(cells, clusters, classifications, idOf) };
}

/**
 * Cluster labels as CSV (RFC 4180: names quoted when they hold a comma, quote or line break; quotes
 * doubled), one row per patch in row order, `\n` after every line. `patch` is the 0-based row, `cluster`
 * the 0-based index; positions and sizes are level-0 pixels.
 */
export function computeClusterCsv(cells: PatchCells, clusters: readonly ClusterStyle[]): string {
  validateCells(cells, clusters);
  const names = clusters.map((cluster) => quoteCsvField(cluster.name));
  const { coordsPx, widthPx, heightPx, labels } = cells;
  const lines = new Array<string>(labels.length + 2);
  lines[0] = CLUSTER_CSV_HEADER;
  for (let row = 0; row < labels.length; row++) {
    const label = labels[row]!;
    lines[row + 1] = `${row},${coordsPx[2 * row]},${coordsPx[2 * row + 1]},${widthPx},${heightPx},${label},${names[label]}`;
  }
  lines[labels.length + 1] = '';
  return lines.join('\n');
}

function patchFeatures(cells: PatchCells, classifications: QuPathClassification[], idOf: (index: number) => string): GeoJsonFeature[] {
  const { coordsPx, widthPx: w, heightPx: h, labels } = cells;
  const features = new Array<GeoJsonFeature>(labels.length);
  for (let row = 0; row < labels.length; row++) {
    const x = coordsPx[2 * row]!;
    const y = coordsPx[2 * row + 1]!;
    const label = labels[row]!;
    features[row] = {
      type: 'Feature',
      id: idOf(row),
      // Positive shoelace area as written, like every exterior ring (RFC 7946 §3.1.6).
      geometry: { type: 'Polygon', coordinates: [[[x, y], [x + w, y], [x + w, y + h], [x, y + h], [x, y]]] },
      properties: {
        objectType: 'detection',
        object_type: 'detection',
        classification: classifications[label]!,
        measurements: [
          { name: 'cluster', value: label },
          { name: 'patch', value: row },
        ],
      },
    };
  }
  return features;
}

function mergedFeatures(cells: PatchCells, clusters: readonly ClusterStyle[], classifications: QuPathClassification[], idOf: (index: number) => string): GeoJsonFeature[] {
  const { labels } = cells;
  // Rows grouped by cluster (a counting sort): members of cluster c are order[start[c] .. start[c + 1]).
  const start = new Int32Array(clusters.length + 1);
  for (let row = 0; row < labels.length; row++) start[labels[row]! + 1]! += 1;
  for (let c = 0; c < clusters.length; c++) start[c + 1]! += start[c]!;
  const order = new Int32Array(labels.length);
  const next = start.slice(0, clusters.length);
  for (let row = 0; row < labels.length; row++) order[next[labels[row]!]!++] = row;

  const features: GeoJsonFeature[] = [];
  for (let c = 0; c < clusters.length; c++) {
    const members = order.subarray(start[c]!, start[c + 1]!);
    if (members.length === 0) continue;
    const polygons = computeCellOutline(cells, members);
    features.push({
      type: 'Feature',
      id: idOf(c),
      geometry: polygons.length === 1 ? { type: 'Polygon', coordinates: polygons[0]! } : { type: 'MultiPolygon', coordinates: polygons },
      properties: {
        objectType: 'annotation',
        object_type: 'annotation',
        name: clusters[c]!.name,
        classification: classifications[c]!,
        measurements: [
          { name: 'cluster', value: c },
          { name: 'patches', value: members.length },
        ],
      },
    });
  }
  return features;
}

function validateCells(cells: PatchCells, clusters: readonly ClusterStyle[]): void {
  const { coordsPx, widthPx, heightPx, labels } = cells;
  if (coordsPx.length !== 2 * labels.length) {
    throw new TypeError(`Cluster export: coordsPx holds ${coordsPx.length} ints for ${labels.length} labels; expected ${2 * labels.length}`);
  }
  if (!(Number.isFinite(widthPx) && widthPx > 0 && Number.isFinite(heightPx) && heightPx > 0)) {
    throw new RangeError(`Cluster export: the patch size must be positive, not ${widthPx} × ${heightPx}`);
  }
  let maxLabel = -1;
  for (let row = 0; row < labels.length; row++) if (labels[row]! > maxLabel) maxLabel = labels[row]!;
  if (maxLabel >= clusters.length) {
    throw new RangeError(`Cluster export: label ${maxLabel} has no cluster style (${clusters.length} given)`);
  }
}

function toClassification(cluster: ClusterStyle): QuPathClassification {
  const [r, g, b] = parseHexColour(cluster.colour);
  // Java's int: alpha 255 in the top byte makes it negative, which is what QuPath 0.3 wrote and reads.
  return { name: cluster.name, color: [r, g, b], colorRGB: (0xff << 24) | (r << 16) | (g << 8) | b };
}

/**
 * Feature ids as UUIDs: 60 bits of a SHA-256 of the patches and labels, the mode in the variant nibble,
 * and the feature index (row or cluster) in the last 48 bits, so ids are unique within the document.
 */
function createFeatureIds(cells: PatchCells, mode: ClusterGeoJsonOptions['mode']): (index: number) => string {
  const hash = createHash('sha256');
  hash.update(new Float64Array([cells.widthPx, cells.heightPx]));
  hash.update(cells.coordsPx);
  hash.update(cells.labels);
  const hex = hash.digest('hex');
  const variant = mode === 'patches' ? '8' : '9';
  const prefix = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(12, 15)}-${variant}${hex.slice(15, 18)}-`;
  return (index) => prefix + index.toString(16).padStart(12, '0');
}

function quoteCsvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}
