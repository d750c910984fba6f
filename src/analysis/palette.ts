/**
 * Colours of clusters and of similarity scores. Shared by the server's overlay images and the viewer
 * (which bundles this file), so a cluster has the same colour in a PNG, in a GeoJSON export and on screen.
 */
import { interpolateViridis } from 'd3-scale-chromatic';

/**
 * Up to 32 cluster colours. The first 8 are Okabe and Ito's set (distinguishable with every common
 * colour-vision deficiency; black swapped for grey, which reads over tissue); 9 to 32 follow Paul Tol's
 * muted, light and vibrant schemes. No palette keeps 32 categories apart for every reader, which is why
 * the viewer's legend can show one cluster alone.
 */
export const CLUSTER_PALETTE: readonly string[] = [
  '#e69f00', '#56b4e9', '#009e73', '#f0e442', '#0072b2', '#d55e00', '#cc79a7', '#999999',
  '#cc6677', '#332288', '#ddcc77', '#117733', '#88ccee', '#882255', '#44aa99', '#999933',
  '#aa4499', '#77aadd', '#ee8866', '#eedd88', '#ffaabb', '#99ddff', '#44bb99', '#bbcc33',
  '#aaaa00', '#ee7733', '#0077bb', '#33bbee', '#ee3377', '#cc3311', '#009988', '#bbbbbb',
];

/** The colour of cluster `index` (0-based) as '#rrggbb'. */
export function clusterColour(index: number): string {
  const colour = CLUSTER_PALETTE[index];
  if (colour === undefined) throw new RangeError(`There are ${CLUSTER_PALETTE.length} cluster colours; asked for number ${index}`);
  return colour;
}

/** '#rrggbb' → [r, g, b], 0-255. */
export function parseHexColour(hex: string): [number, number, number] {
  const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex);
  if (!m) throw new RangeError(`Not a #rrggbb colour: ${hex}`);
  return [parseInt(m[1]!, 16), parseInt(m[2]!, 16), parseInt(m[3]!, 16)];
}

/**
 * Viridis (perceptually uniform, readable in grey and with colour-vision deficiencies) sampled at 256
 * steps, RGB triplets: entry 0 is dark purple (least similar), 255 yellow (most similar).
 */
export function computeSimilarityLut(): Uint8Array {
  const lut = new Uint8Array(256 * 3);
  for (let i = 0; i < 256; i++) lut.set(parseHexColour(interpolateViridis(i / 255)), i * 3);
  return lut;
}
