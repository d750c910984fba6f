/**
 * Which patch is under a point. No imports, so the viewer bundles it too: the server's similarity and
 * the viewer's hover agree on the patch a click means.
 */

/** A run's patch side in level-0 pixels. */
export interface PatchSizeLevel0 {
  widthPx: number;
  heightPx: number;
}

/**
 * The row of the patch that holds level-0 pixel (xPx, yPx), or -1. Where overlapping patches hold it,
 * the one whose centre is nearest wins (ties: the lower row). A linear scan: 100,000 patches take
 * well under a millisecond, so it needs no index.
 */
export function findPatchAt(coordsPx: Int32Array, size: PatchSizeLevel0, xPx: number, yPx: number): number {
  let best = -1;
  let bestDistance = Infinity;
  for (let row = 0; row < coordsPx.length / 2; row++) {
    const x = coordsPx[2 * row]!;
    const y = coordsPx[2 * row + 1]!;
    if (xPx < x || yPx < y || xPx >= x + size.widthPx || yPx >= y + size.heightPx) continue;
    const distance = (x + size.widthPx / 2 - xPx) ** 2 + (y + size.heightPx / 2 - yPx) ** 2;
    if (distance < bestDistance) {
      best = row;
      bestDistance = distance;
    }
  }
  return best;
}
