import { describe, expect, it } from 'vitest';
import { computeRingArea } from './cell-outline.js';
import { CLUSTER_CSV_HEADER, computeClusterCsv, computeClusterGeoJson, type ClusterStyle, type GeoJsonFeature, type PatchCells, type Ring } from './export.js';

const CLUSTERS: ClusterStyle[] = [
  { name: 'Tumour', colour: '#e69f00' },
  { name: 'Stroma, "loose"', colour: '#56B4E9' },
  { name: 'Empty', colour: '#009e73' },
];

/** A cols × rows grid of patches with side `sidePx` and the given stride, labelled by `labelOf`. */
function grid(cols: number, rows: number, sidePx: number, stridePx: number, labelOf: (col: number, row: number) => number): PatchCells {
  const coordsPx = new Int32Array(cols * rows * 2);
  const labels = new Uint8Array(cols * rows);
  for (let row = 0; row < rows; row++) {
    for (let col = 0; col < cols; col++) {
      const k = row * cols + col;
      coordsPx[2 * k] = 1000 + Math.round(col * stridePx);
      coordsPx[2 * k + 1] = 2000 + Math.round(row * stridePx);
      labels[k] = labelOf(col, row);
    }
  }
  return { coordsPx, widthPx: sidePx, heightPx: sidePx, labels };
}

function ringsOf(feature: GeoJsonFeature): Ring[][] {
  return feature.geometry.type === 'Polygon' ? [feature.geometry.coordinates] : feature.geometry.coordinates;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('computeClusterGeoJson, patches mode', () => {
  const cells = grid(4, 3, 224, 224, (col, row) => (col + row) % 2);
  const collection = computeClusterGeoJson(cells, CLUSTERS, { mode: 'patches' });

  it('has one Polygon detection per patch, in row order, as its level-0 rectangle', () => {
    expect(collection.type).toBe('FeatureCollection');
    expect(collection.features).toHaveLength(12);
    const fifth = collection.features[5]!;
    expect(fifth.geometry).toEqual({
      type: 'Polygon',
      coordinates: [
        [
          [1224, 2224],
          [1448, 2224],
          [1448, 2448],
          [1224, 2448],
          [1224, 2224],
        ],
      ],
    });
    for (const feature of collection.features) {
      expect(feature.properties.objectType).toBe('detection');
      expect(feature.properties.object_type).toBe('detection');
      expect(computeRingArea(ringsOf(feature)[0]![0]!)).toBe(224 * 224);
    }
  });

  it('classifies each patch with its cluster name and colour, in both of QuPath colour forms', () => {
    expect(collection.features[0]!.properties.classification).toEqual({ name: 'Tumour', color: [0xe6, 0x9f, 0x00], colorRGB: 0xffe69f00 | 0 });
    expect(collection.features[1]!.properties.classification).toEqual({ name: 'Stroma, "loose"', color: [0x56, 0xb4, 0xe9], colorRGB: 0xff56b4e9 | 0 });
    expect(collection.features[1]!.properties.measurements).toEqual([
      { name: 'cluster', value: 1 },
      { name: 'patch', value: 1 },
    ]);
    expect(collection.features.map((f) => f.properties.classification.name)).toEqual(Array.from(cells.labels, (label) => CLUSTERS[label]!.name));
  });

  it('gives every feature a distinct UUID that is the same on the next export and differs from merged mode', () => {
    const ids = collection.features.map((f) => f.id);
    expect(ids.every((id) => UUID.test(id))).toBe(true);
    expect(new Set(ids).size).toBe(12);
    expect(computeClusterGeoJson(cells, CLUSTERS, { mode: 'patches' }).features.map((f) => f.id)).toEqual(ids);
    const merged = computeClusterGeoJson(cells, CLUSTERS, { mode: 'merged' }).features.map((f) => f.id);
    expect(merged.some((id) => ids.includes(id))).toBe(false);
    const relabelled = { ...cells, labels: cells.labels.map((label) => 1 - label) };
    expect(computeClusterGeoJson(relabelled, CLUSTERS, { mode: 'patches' }).features[0]!.id).not.toBe(ids[0]);
  });

  it('survives JSON unchanged (no undefined, no typed arrays)', () => {
    expect(JSON.parse(JSON.stringify(collection))).toEqual(collection);
  });
});

describe('computeClusterGeoJson, merged mode', () => {
  it('gives one annotation per non-empty cluster whose area is its patch count × patch area on an exact grid', () => {
    const cells = grid(7, 5, 256, 256, (col, row) => ((col * 3 + row * 5) % 7 < 3 ? 0 : 1));
    const { features } = computeClusterGeoJson(cells, CLUSTERS, { mode: 'merged' });
    expect(features.map((f) => f.properties.name)).toEqual(['Tumour', 'Stroma, "loose"']);
    for (const feature of features) {
      const cluster = feature.properties.measurements.find((m) => m.name === 'cluster')!.value;
      const count = cells.labels.filter((label) => label === cluster).length;
      expect(feature.properties).toMatchObject({ objectType: 'annotation', object_type: 'annotation', classification: { name: CLUSTERS[cluster]!.name } });
      expect(feature.properties.measurements).toContainEqual({ name: 'patches', value: count });
      const area = ringsOf(feature).reduce((sum, polygon) => sum + polygon.reduce((s, ring) => s + computeRingArea(ring), 0), 0);
      expect(area).toBe(count * 256 * 256);
    }
  });

  it('writes a Polygon for one piece and a MultiPolygon for several', () => {
    const cells = grid(3, 1, 10, 10, (col) => (col === 1 ? 1 : 0));
    const { features } = computeClusterGeoJson(cells, CLUSTERS, { mode: 'merged' });
    expect(features.map((f) => f.geometry.type)).toEqual(['MultiPolygon', 'Polygon']);
    expect(features[1]!.geometry.coordinates).toEqual([
      [
        [1010, 2000],
        [1020, 2000],
        [1020, 2010],
        [1010, 2010],
        [1010, 2000],
      ],
    ]);
  });

  it('covers the union of overlapping patches once', () => {
    const cells = grid(4, 4, 300, 224, () => 0);
    const { features } = computeClusterGeoJson(cells, CLUSTERS, { mode: 'merged' });
    expect(features).toHaveLength(1);
    expect(features[0]!.geometry.type).toBe('Polygon');
    expect(computeRingArea(ringsOf(features[0]!)[0]![0]!)).toBe((3 * 224 + 300) ** 2);
  });

  it('exports an empty collection for no patches', () => {
    const cells: PatchCells = { coordsPx: new Int32Array(0), widthPx: 224, heightPx: 224, labels: new Uint8Array(0) };
    expect(computeClusterGeoJson(cells, CLUSTERS, { mode: 'merged' })).toEqual({ type: 'FeatureCollection', features: [] });
  });
});

describe('computeClusterCsv', () => {
  it('writes the header, one row per patch in row order, RFC 4180 quoting and \\n line ends', () => {
    const cells = grid(2, 2, 224, 200, (col, row) => (row === 1 && col === 0 ? 1 : 0));
    expect(computeClusterCsv(cells, CLUSTERS)).toBe(
      [CLUSTER_CSV_HEADER, '0,1000,2000,224,224,0,Tumour', '1,1200,2000,224,224,0,Tumour', '2,1000,2200,224,224,1,"Stroma, ""loose"""', '3,1200,2200,224,224,0,Tumour', ''].join('\n'),
    );
    expect(CLUSTER_CSV_HEADER).toBe('patch,x_px,y_px,width_px,height_px,cluster,cluster_name');
  });

  it('quotes names holding a line break', () => {
    const cells = grid(1, 1, 10, 10, () => 0);
    expect(computeClusterCsv(cells, [{ name: 'two\nlines', colour: '#000000' }])).toBe(`${CLUSTER_CSV_HEADER}\n0,1000,2000,10,10,0,"two\nlines"\n`);
  });
});

describe('input checks (programming errors: the gateway builds every input)', () => {
  const cells = grid(2, 1, 10, 10, (col) => col);

  it.each([
    ['coordinates and labels of different lengths', { ...cells, coordsPx: new Int32Array(3) }, CLUSTERS, TypeError],
    ['a label without a cluster style', cells, CLUSTERS.slice(0, 1), RangeError],
    ['a patch size that is not positive', { ...cells, widthPx: 0 }, CLUSTERS, RangeError],
    ['a colour that is not #rrggbb', cells, [CLUSTERS[0]!, { name: 'x', colour: 'red' }], RangeError],
  ] as const)('rejects %s', (_, badCells, clusters, type) => {
    expect(() => computeClusterGeoJson(badCells, clusters, { mode: 'patches' })).toThrow(type);
  });

  it('checks the CSV inputs the same way', () => {
    expect(() => computeClusterCsv(cells, CLUSTERS.slice(0, 1))).toThrow(RangeError);
  });
});
