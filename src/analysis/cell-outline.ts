/**
 * The exact outline of a union of axis-aligned rectangles (a cluster's patches) as valid polygons. Pure:
 * arrays in, arrays out.
 *
 * Patches are not always a clean grid: the stride may be shorter than the side (overlap) or longer (gaps),
 * and origins are rounded one by one, so neighbours can be stride ± 1 apart. Instead of assuming a grid,
 * the rectangles' distinct x and y edges cut the plane into a compressed grid whose cells are either wholly
 * covered or wholly empty; the boundary between covered and empty cells is then traced into rings.
 *
 * Validity (OGC simple features, what JTS in QuPath checks; RFC 7946 §3.1.6 for orientation):
 * - Exterior rings have a positive shoelace area on the numbers as written, holes a negative one: RFC 7946
 *   §3.1.6's counterclockwise exteriors read with y up. In image pixels (y down) they look clockwise on
 *   screen; QuPath (JTS) accepts either orientation.
 * - Cells that share only a corner belong to different polygons (covered cells are 4-connected). Where a
 *   ring would pass through such a corner twice, it is split there, so no ring touches itself: the pieces
 *   are polygons touching at a point, or a hole touching its exterior (or another hole) at a point, which
 *   OGC allows. Each polygon is one 4-connected set of cells, so its interior is connected.
 * - Rings are closed, have no repeated consecutive points and no collinear vertices (only corners).
 */
import { BadRequestError } from '../errors.js';

/** [x, y] in level-0 pixels. */
export type Position = [number, number];
/** A closed ring: the first position is repeated last. */
export type Ring = Position[];
/** An exterior ring, then its holes. */
export type PolygonRings = Ring[];

/** Rectangles sharing one size: `coordsPx` holds the top-left corner of each, x then y. */
export interface RectangleSet {
  coordsPx: Int32Array;
  widthPx: number;
  heightPx: number;
}

/**
 * Largest compressed grid (cells) one outline may need: about 6 bytes a cell while tracing, so ~100 MB.
 * A grid of patches needs (2 · columns + 1) · (2 · rows + 1) at most (300 × 300 patches: 0.36 M); only
 * rectangles placed off any grid come near it.
 */
export const MAX_OUTLINE_GRID_CELLS = 1 << 24;

// Directions, turning left (counter-clockwise on the numbers as written) as the index grows.
const DX = [1, 0, -1, 0] as const;
const DY = [0, 1, 0, -1] as const;

/**
 * OUT[mask]: the directions (bit d) in which a boundary edge leaves a vertex, given which of the four cells
 * around it are covered: bit 0 the cell at (-x, -y) of the vertex, 1 (+x, -y), 2 (-x, +y), 3 (+x, +y).
 * An edge runs with its covered cell on its left (-dy, dx), so exteriors come out positive.
 */
const OUT = new Uint8Array(16);
for (let mask = 0; mask < 16; mask++) {
  const [nw, ne, sw, se] = [mask & 1, mask & 2, mask & 4, mask & 8].map(Boolean) as [boolean, boolean, boolean, boolean];
  OUT[mask] = (se && !ne ? 1 : 0) | (sw && !se ? 2 : 0) | (nw && !sw ? 4 : 0) | (ne && !nw ? 8 : 0);
}
/** Two covered cells diagonal to each other and two empty ones: where rings may pass twice. */
const PINCH_NW_SE = 0b1001;
const PINCH_NE_SW = 0b0110;

/**
 * The union of the rectangles `members` (indices into `cells.coordsPx`) as polygons, each an exterior ring
 * followed by its holes, in level-0 pixels, in the order a top-to-bottom scan first meets them.
 * Throws BadRequestError `OUTLINE_TOO_COMPLEX` when the rectangles lie so far off a grid that the
 * compressed grid would pass MAX_OUTLINE_GRID_CELLS.
 */
export function computeCellOutline(cells: RectangleSet, members: ArrayLike<number>): PolygonRings[] {
  if (members.length === 0) return [];
  const { coordsPx, widthPx, heightPx } = cells;
  const xs = new Float64Array(2 * members.length);
  const ys = new Float64Array(2 * members.length);
  for (let m = 0; m < members.length; m++) {
    const row = members[m]!;
    xs[2 * m] = coordsPx[2 * row]!;
    xs[2 * m + 1] = coordsPx[2 * row]! + widthPx;
    ys[2 * m] = coordsPx[2 * row + 1]!;
    ys[2 * m + 1] = coordsPx[2 * row + 1]! + heightPx;
  }
  const edgesX = sortUnique(xs);
  const edgesY = sortUnique(ys);
  const nx = edgesX.length - 1;
  const ny = edgesY.length - 1;
  if (nx * ny > MAX_OUTLINE_GRID_CELLS) {
    throw new BadRequestError(`The patches lie too far off a grid to merge (${nx} × ${ny} cells); export one feature per patch instead`, 'OUTLINE_TOO_COMPLEX');
  }
  const grid = createCoverage(edgesX, edgesY, cells, members);
  const rings = traceRings(grid);
  return assemblePolygons(grid, rings).map((polygon) =>
    polygon.map((ring) => {
      const positions: Ring = new Array<Position>(ring.length + 1);
      for (let k = 0; k < ring.length; k++) positions[k] = [edgesX[ring[k]! % (nx + 1)]!, edgesY[Math.floor(ring[k]! / (nx + 1))]!];
      positions[ring.length] = [...positions[0]!];
      return positions;
    }),
  );
}

/** Signed shoelace area of a closed ring: positive for the exteriors written here, negative for holes. */
export function computeRingArea(ring: readonly Position[]): number {
  let twice = 0;
  for (let k = 0; k + 1 < ring.length; k++) twice += ring[k]![0] * ring[k + 1]![1] - ring[k + 1]![0] * ring[k]![1];
  return twice / 2;
}

function sortUnique(values: Float64Array): Float64Array {
  values.sort();
  let n = 0;
  for (let k = 0; k < values.length; k++) if (n === 0 || values[k] !== values[n - 1]) values[n++] = values[k]!;
  return values.subarray(0, n);
}

function indexOf(sorted: Float64Array, value: number): number {
  let lo = 0;
  let hi = sorted.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * The compressed grid: `covered` has a one-cell empty border so neighbours never need bounds checks;
 * cell (i, j) is at (i + 1) + (j + 1) · stride. Vertices (i, j), 0 ≤ i ≤ nx, are numbered i + j · (nx + 1).
 */
interface Coverage {
  nx: number;
  ny: number;
  stride: number;
  covered: Uint8Array;
  /** Scratch of the padded grid's size, zeroed: component labels. */
  scratch: Int32Array;
}

function createCoverage(edgesX: Float64Array, edgesY: Float64Array, cells: RectangleSet, members: ArrayLike<number>): Coverage {
  const nx = edgesX.length - 1;
  const ny = edgesY.length - 1;
  const stride = nx + 2;
  const covered = new Uint8Array(stride * (ny + 2));
  // A 2-D difference array over vertices (i + j · (nx + 1)): each rectangle adds 4 entries, one prefix
  // sum gives every cell's coverage, whatever the overlap.
  const scratch = new Int32Array(covered.length);
  const vx = nx + 1;
  for (let m = 0; m < members.length; m++) {
    const row = members[m]!;
    const x = cells.coordsPx[2 * row]!;
    const y = cells.coordsPx[2 * row + 1]!;
    const i0 = indexOf(edgesX, x);
    const i1 = indexOf(edgesX, x + cells.widthPx);
    const j0 = indexOf(edgesY, y);
    const j1 = indexOf(edgesY, y + cells.heightPx);
    scratch[i0 + j0 * vx]! += 1;
    scratch[i1 + j0 * vx]! -= 1;
    scratch[i0 + j1 * vx]! -= 1;
    scratch[i1 + j1 * vx]! += 1;
  }
  for (let j = 0; j < ny; j++) {
    let rowSum = 0;
    for (let i = 0; i < nx; i++) {
      rowSum += scratch[i + j * vx]!;
      const count = rowSum + (j > 0 ? scratch[i + (j - 1) * vx]! : 0);
      scratch[i + j * vx] = count;
      covered[i + 1 + (j + 1) * stride] = count > 0 ? 1 : 0;
    }
  }
  scratch.fill(0);
  return { nx, ny, stride, covered, scratch };
}

/** Which of the four cells around vertex (i, j) are covered, as OUT's mask. */
function maskAt(grid: Coverage, i: number, j: number): number {
  const at = i + j * grid.stride; // the cell at (-x, -y) of the vertex, in padded numbering
  const c = grid.covered;
  return c[at]! | (c[at + 1]! << 1) | (c[at + grid.stride]! << 2) | (c[at + grid.stride + 1]! << 3);
}

/** A simple ring as vertex numbers (corners only, not closed), and the covered cell left of its first edge. */
interface TracedRing {
  vertices: number[];
  cell: number;
  exterior: boolean;
}

/**
 * Every boundary loop, starting from each not yet visited +x edge in raster order (every loop has one, and
 * its first is at a corner). At a pinch the loop turns left, keeping to the same cell, so a loop never
 * leaves its 4-connected component; a loop that comes back to a pinch is cut there into simple rings.
 */
function traceRings(grid: Coverage): TracedRing[] {
  const { nx, ny } = grid;
  const vx = nx + 1;
  const visited = new Uint8Array(vx * (ny + 1));
  const rings: TracedRing[] = [];
  for (let j = 0; j <= ny; j++) {
    for (let i = 0; i < nx; i++) {
      if (!(OUT[maskAt(grid, i, j)]! & 1) || visited[i + j * vx]! & 1) continue;
      const corners = [i + j * vx];
      visited[i + j * vx]! |= 1;
      let x = i;
      let y = j;
      let d = 0;
      let pinched = false;
      for (;;) {
        x += DX[d]!;
        y += DY[d]!;
        const mask = maskAt(grid, x, y);
        const out = OUT[mask]!;
        const left = (d + 1) & 3;
        const next = out & (1 << left) ? left : out & (1 << d) ? d : (d + 3) & 3;
        const v = x + y * vx;
        if (visited[v]! & (1 << next)) break;
        visited[v]! |= 1 << next;
        if (next !== d) corners.push(v);
        if (mask === PINCH_NW_SE || mask === PINCH_NE_SW) pinched = true;
        d = next;
      }
      if (!pinched) rings.push(describeRing(grid, corners));
      else for (const vertices of splitAtPinches(grid, corners)) rings.push(describeRing(grid, vertices));
    }
  }
  return rings;
}

/** Cuts a loop into simple rings at the vertices it passes twice (only pinches can be passed twice). */
function splitAtPinches(grid: Coverage, corners: number[]): number[][] {
  const vx = grid.nx + 1;
  const rings: number[][] = [];
  const stack: number[] = [];
  const seenAt = new Map<number, number>();
  for (const v of corners) {
    const mask = maskAt(grid, v % vx, Math.floor(v / vx));
    if (mask !== PINCH_NW_SE && mask !== PINCH_NE_SW) {
      stack.push(v);
      continue;
    }
    const at = seenAt.get(v);
    if (at === undefined) {
      seenAt.set(v, stack.length);
      stack.push(v);
      continue;
    }
    const ring = stack.splice(at);
    for (const w of ring) {
      const p = seenAt.get(w);
      if (p !== undefined && p >= at) seenAt.delete(w);
    }
    rings.push(ring);
    seenAt.set(v, stack.length);
    stack.push(v);
  }
  rings.push(stack);
  return rings;
}

function describeRing(grid: Coverage, vertices: number[]): TracedRing {
  const vx = grid.nx + 1;
  let twiceArea = 0;
  for (let k = 0; k < vertices.length; k++) {
    const a = vertices[k]!;
    const b = vertices[(k + 1) % vertices.length]!;
    twiceArea += (a % vx) * Math.floor(b / vx) - (b % vx) * Math.floor(a / vx);
  }
  // The covered cell left of the first edge, in padded numbering (vertex (i, j) → its (-x, -y) cell).
  const i = vertices[0]! % vx;
  const j = Math.floor(vertices[0]! / vx);
  const d = directionOf(vertices[0]!, vertices[1]!, vx);
  const [ci, cj] = d === 0 ? [i, j] : d === 1 ? [i - 1, j] : d === 2 ? [i - 1, j - 1] : [i, j - 1];
  return { vertices, cell: ci + 1 + (cj + 1) * grid.stride, exterior: twiceArea > 0 };
}

function directionOf(from: number, to: number, vx: number): number {
  const di = (to % vx) - (from % vx);
  const dj = Math.floor(to / vx) - Math.floor(from / vx);
  return dj === 0 ? (di > 0 ? 0 : 2) : dj > 0 ? 1 : 3;
}

/**
 * Groups holes with their exterior: each 4-connected set of covered cells has exactly one exterior ring,
 * so flooding the cells from each exterior's cell labels the set, and a hole belongs to the label of the
 * cell left of its first edge.
 */
function assemblePolygons(grid: Coverage, rings: TracedRing[]): number[][][] {
  const { covered, scratch: label, stride } = grid;
  const polygons: number[][][] = [];
  const queue = new Int32Array(grid.nx * grid.ny);
  for (const ring of rings) {
    if (!ring.exterior) continue;
    polygons.push([ring.vertices]);
    const id = polygons.length;
    let head = 0;
    let tail = 0;
    label[ring.cell] = id;
    queue[tail++] = ring.cell;
    while (head < tail) {
      const cell = queue[head++]!;
      for (let n = 0; n < 4; n++) {
        const next = n === 0 ? cell - 1 : n === 1 ? cell + 1 : n === 2 ? cell - stride : cell + stride;
        if (covered[next] && label[next] === 0) {
          label[next] = id;
          queue[tail++] = next;
        }
      }
    }
  }
  for (const ring of rings) {
    if (ring.exterior) continue;
    const owner = polygons[label[ring.cell]! - 1];
    if (!owner) throw new Error('cell-outline: a hole lies in no traced component');
    owner.push(ring.vertices);
  }
  return polygons;
}
