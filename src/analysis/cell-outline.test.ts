import { describe, expect, it } from 'vitest';
import { mulberry32 as random } from '../embed/generate/graph.js';
import { BadRequestError } from '../errors.js';
import { computeCellOutline, computeRingArea, type PolygonRings, type Position, type Ring } from './cell-outline.js';

/** Rectangles of one size from [x, y] origins; all of them are members. */
function outline(origins: ReadonlyArray<readonly [number, number]>, widthPx: number, heightPx = widthPx): PolygonRings[] {
  const coordsPx = Int32Array.from(origins.flat());
  return computeCellOutline({ coordsPx, widthPx, heightPx }, origins.map((_, row) => row));
}

/** Origins of the cells marked '#' in a picture, one character per cell of the given side. */
function picture(rows: readonly string[], side = 1): Array<[number, number]> {
  const origins: Array<[number, number]> = [];
  rows.forEach((line, y) => [...line].forEach((ch, x) => ch === '#' && origins.push([x * side, y * side])));
  return origins;
}

/** Even-odd test of a point that lies on no ring's line (pixel centres against integer rings). */
function isInsideRing(ring: Ring, [px, py]: Position): boolean {
  let inside = false;
  for (let k = 0; k + 1 < ring.length; k++) {
    const [x1, y1] = ring[k]!;
    const [x2, y2] = ring[k + 1]!;
    if (y1 > py !== y2 > py && px < x1 + ((py - y1) * (x2 - x1)) / (y2 - y1)) inside = !inside;
  }
  return inside;
}

function isInsidePolygon(polygon: PolygonRings, point: Position): boolean {
  return isInsideRing(polygon[0]!, point) && polygon.slice(1).every((hole) => !isInsideRing(hole, point));
}

function isOnRing(ring: Ring, [px, py]: Position): boolean {
  return ring.some(([x1, y1], k) => {
    const [x2, y2] = ring[(k + 1) % ring.length]!;
    return (x1 === x2 && px === x1 && py >= Math.min(y1, y2) && py <= Math.max(y1, y2)) || (y1 === y2 && py === y1 && px >= Math.min(x1, x2) && px <= Math.max(x1, x2));
  });
}

/** Everything the GeoJSON must satisfy for QuPath's JTS and RFC 7946; returns the union's area. */
function expectValid(polygons: PolygonRings[]): number {
  let area = 0;
  for (const polygon of polygons) {
    polygon.forEach((ring, r) => {
      expect(ring.length, 'a closed ring has at least 4 corners + the repeat').toBeGreaterThanOrEqual(5);
      expect(ring[ring.length - 1], 'closed').toEqual(ring[0]);
      const corners = ring.slice(0, -1).map(([x, y]) => `${x},${y}`);
      expect(new Set(corners).size, 'no repeated points: the ring does not touch itself').toBe(corners.length);
      for (let k = 0; k < corners.length; k++) {
        const [a, b, c] = [ring[k]!, ring[k + 1]!, ring[(k + 2) % corners.length]!];
        const firstHorizontal = a[1] === b[1];
        expect(firstHorizontal ? a[0] !== b[0] : a[0] === b[0] && a[1] !== b[1], 'axis-aligned, non-empty edge').toBe(true);
        expect(b[1] === c[1], 'edges alternate: no collinear vertex').toBe(!firstHorizontal);
      }
      const signed = computeRingArea(ring);
      if (r === 0) expect(signed, 'exterior: positive as written').toBeGreaterThan(0);
      else expect(signed, 'hole: negative as written').toBeLessThan(0);
      area += signed;
    });
    for (const hole of polygon.slice(1)) {
      for (const point of hole) expect(isInsideRing(polygon[0]!, point) || isOnRing(polygon[0]!, point), 'hole within its exterior').toBe(true);
    }
  }
  return area;
}

/** Brute force: the set of unit pixels covered by any rectangle, and by the polygons (pixel centres). */
function expectSameRaster(origins: ReadonlyArray<readonly [number, number]>, widthPx: number, heightPx: number, polygons: PolygonRings[]): number {
  const xMax = Math.max(...origins.map(([x]) => x)) + widthPx + 1;
  const yMax = Math.max(...origins.map(([, y]) => y)) + heightPx + 1;
  let count = 0;
  for (let y = -1; y < yMax; y++) {
    for (let x = -1; x < xMax; x++) {
      const covered = origins.some(([ox, oy]) => x >= ox && x < ox + widthPx && y >= oy && y < oy + heightPx);
      const owners = polygons.filter((polygon) => isInsidePolygon(polygon, [x + 0.5, y + 0.5])).length;
      expect(owners, `pixel ${x},${y}`).toBe(covered ? 1 : 0);
      if (covered) count++;
    }
  }
  return count;
}

describe('computeCellOutline', () => {
  it('returns nothing for no cells', () => {
    expect(computeCellOutline({ coordsPx: new Int32Array(0), widthPx: 4, heightPx: 4 }, [])).toEqual([]);
  });

  it('outlines one patch as its rectangle, exterior positive on the numbers as written', () => {
    expect(outline([[10, 20]], 4, 3)).toEqual([
      [
        [
          [10, 20],
          [14, 20],
          [14, 23],
          [10, 23],
          [10, 20],
        ],
      ],
    ]);
  });

  it('merges a row of patches into one rectangle without collinear vertices', () => {
    const polygons = outline([[0, 0], [4, 0], [8, 0]], 4);
    expect(polygons).toHaveLength(1);
    expect(polygons[0]![0]).toHaveLength(5);
    expect(expectValid(polygons)).toBe(3 * 16);
  });

  it('gives a 3×3 block whose centre is another cluster one polygon with one hole, orientations opposite', () => {
    const polygons = outline(picture(['###', '#.#', '###'], 10), 10);
    expect(polygons).toHaveLength(1);
    const [exterior, hole, ...rest] = polygons[0]!;
    expect(rest).toEqual([]);
    expect(computeRingArea(exterior!)).toBe(900);
    expect(computeRingArea(hole!)).toBe(-100);
    expect(new Set(hole!.map(([x, y]) => `${x},${y}`))).toEqual(new Set(['10,10', '20,10', '20,20', '10,20']));
    expect(expectValid(polygons)).toBe(800);
  });

  it('splits cells that touch only at a corner into polygons that touch at that point', () => {
    const polygons = outline(picture(['#.', '.#']), 1);
    expect(polygons).toHaveLength(2);
    expect(expectValid(polygons)).toBe(2);
  });

  it('makes a pocket that reaches the outside only at a corner a hole touching the exterior there, not a self-touching ring', () => {
    const origins = picture(['###.', '#.#.', '##..']);
    const polygons = outline(origins, 1);
    expect(polygons).toHaveLength(1);
    expect(polygons[0]).toHaveLength(2);
    expect(isOnRing(polygons[0]![0]!, [2, 2])).toBe(true);
    expect(isOnRing(polygons[0]![1]!, [2, 2])).toBe(true);
    expect(expectValid(polygons)).toBe(7);
    expectSameRaster(origins, 1, 1, polygons);
  });

  // The second picture's hole boundary starts its trace at the very corner where it touches itself.
  it.each([[['####', '#.##', '##.#', '####']], [['####', '##.#', '#.##', '####']]])('splits two holes touching at a corner into two holes of the same polygon: %j', (rows) => {
    const origins = picture(rows);
    const polygons = outline(origins, 1);
    expect(polygons).toHaveLength(1);
    expect(polygons[0]).toHaveLength(3);
    expect(expectValid(polygons)).toBe(14);
    expectSameRaster(origins, 1, 1, polygons);
  });

  it('gives the exact union of random pictures (many diagonal touches)', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const next = random(seed);
      const rows = Array.from({ length: 12 }, () => Array.from({ length: 12 }, () => (next() < 0.5 ? '#' : '.')).join(''));
      const origins = picture(rows);
      const polygons = outline(origins, 1);
      expect(expectValid(polygons), rows.join('/')).toBe(origins.length);
      expectSameRaster(origins, 1, 1, polygons);
    }
  });

  it('keeps four cells around an empty centre, touching only diagonally, as four polygons', () => {
    const polygons = outline(picture(['.#.', '#.#', '.#.']), 1);
    expect(polygons).toHaveLength(4);
    expect(polygons.every((polygon) => polygon.length === 1)).toBe(true);
    expect(expectValid(polygons)).toBe(4);
  });

  it('gives each hole to the exterior that holds it when islands sit in lakes', () => {
    const origins = picture(['#######', '#.....#', '#.###.#', '#.#.#.#', '#.###.#', '#.....#', '#######']);
    const polygons = outline(origins, 1);
    expect(polygons).toHaveLength(2);
    const [outer, inner] = polygons;
    expect(outer!.map(computeRingArea)).toEqual([49, -25]);
    expect(inner!.map(computeRingArea)).toEqual([9, -1]);
    expect(expectValid(polygons)).toBe(32);
    expectSameRaster(origins, 1, 1, polygons);
  });

  it('gives the exact union on a picture with every kind of touch', () => {
    const origins = picture(['##..#.##', '#.##.#.#', '.#..#..#', '##.###.#', '#..#.#.#', '.####..#', '#.....##', '.#####.#']);
    const polygons = outline(origins, 1);
    expect(expectValid(polygons)).toBe(origins.length);
    expectSameRaster(origins, 1, 1, polygons);
  });

  describe('random labels on grids that are not exact', () => {
    const cases: Array<{ name: string; sidePx: number; strideX: number; strideY: number; jitter: 'none' | 'per axis' | 'per patch' }> = [
      { name: 'exact grid', sidePx: 4, strideX: 4, strideY: 4, jitter: 'none' },
      { name: 'overlap (stride < side)', sidePx: 5, strideX: 3, strideY: 4, jitter: 'none' },
      { name: 'gaps (stride > side)', sidePx: 3, strideX: 4, strideY: 5, jitter: 'none' },
      { name: 'fractional stride, origins rounded one by one', sidePx: 4, strideX: 3.6, strideY: 4.4, jitter: 'none' },
      { name: '±1 per column and row', sidePx: 4, strideX: 4, strideY: 4, jitter: 'per axis' },
      { name: '±1 per patch', sidePx: 4, strideX: 4, strideY: 4, jitter: 'per patch' },
    ];
    for (const { name, sidePx, strideX, strideY, jitter } of cases) {
      it(`covers exactly the union of each cluster's patches: ${name}`, () => {
        const next = random(7);
        const cols = 9;
        const rows = 8;
        const shiftX = Array.from({ length: cols }, () => (jitter === 'per axis' ? Math.floor(next() * 3) - 1 : 0));
        const shiftY = Array.from({ length: rows }, () => (jitter === 'per axis' ? Math.floor(next() * 3) - 1 : 0));
        const clusters: Array<Array<[number, number]>> = [[], [], []];
        for (let row = 0; row < rows; row++) {
          for (let col = 0; col < cols; col++) {
            const jx = jitter === 'per patch' ? Math.floor(next() * 3) - 1 : shiftX[col]!;
            const jy = jitter === 'per patch' ? Math.floor(next() * 3) - 1 : shiftY[row]!;
            clusters[Math.floor(next() * 3)]!.push([1 + Math.round(col * strideX) + jx, 1 + Math.round(row * strideY) + jy]);
          }
        }
        for (const origins of clusters) {
          const polygons = outline(origins, sidePx);
          const area = expectValid(polygons);
          expect(area).toBe(expectSameRaster(origins, sidePx, sidePx, polygons));
          if (jitter === 'none' && strideX === sidePx && strideY === sidePx) expect(area).toBe(origins.length * sidePx * sidePx);
        }
      });
    }
  });

  it('refuses rectangles so far off a grid that the compressed grid would be too large', () => {
    const origins = Array.from({ length: 4200 }, (_, k) => [3 * k, 5 * k] as const);
    try {
      outline(origins, 2);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(BadRequestError);
      expect((err as BadRequestError).code).toBe('OUTLINE_TOO_COMPLEX');
    }
  });
});
