/**
 * An OpenSeadragon TileSource on the exact DICOM grid: one OpenSeadragon tile = one DICOM frame, served
 * by the gateway's tiles route. The geometry is DicomGrid's; this file only plugs it in.
 */
import OpenSeadragon from 'openseadragon';
import { slideUrl, type SlideDescriptor } from './api.js';
import { DicomGrid } from './grid.js';

export function createDicomTileSource(slide: SlideDescriptor): OpenSeadragon.TileSource {
  const grid = new DicomGrid(slide.levels);
  const base = slide.levels[0]!;
  const tilesUrl = slideUrl(slide.id, '/tiles');
  // OpenSeadragon's TileSource is a prototype-style class that copies its options onto the instance
  // (its source warns against subclassing it with `class`), so the overrides travel as options.
  const overrides = {
    width: base.widthPx,
    height: base.heightPx,
    tileWidth: base.tileWidthPx,
    tileHeight: base.tileHeightPx,
    tileOverlap: 0,
    minLevel: 0,
    maxLevel: grid.levelCount - 1,
    getLevelScale: (level: number) => grid.levelScale(level),
    getNumTiles: (level: number) => toPoint(grid.numTiles(level)),
    getTileWidth: (level: number) => grid.tileWidth(level),
    getTileHeight: (level: number) => grid.tileHeight(level),
    tileExists: (level: number, x: number, y: number) => grid.tileExists(level, x, y),
    getTileBounds: (level: number, x: number, y: number, isSource?: boolean) => {
      const r = grid.tileBounds(level, x, y, isSource === true);
      return new OpenSeadragon.Rect(r.x, r.y, r.width, r.height);
    },
    getTileAtPoint: (level: number, point: OpenSeadragon.Point) => toPoint(grid.tileAtPoint(level, point)),
    getTileUrl: (level: number, x: number, y: number) => `${tilesUrl}/${grid.dicomLevel(level)}/${x}/${y}.jpg`,
  };
  return new OpenSeadragon.TileSource(overrides as unknown as OpenSeadragon.TileSourceOptions);
}

const toPoint = (p: { x: number; y: number }) => new OpenSeadragon.Point(p.x, p.y);
