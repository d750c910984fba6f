export { createTileService, type Tile, type TileService, type TileServiceOptions } from './tile-service.js';
export { createSlideCatalog, type SlideCatalog, type SlideListEntry } from './slide-catalog.js';
export type { FrameCacheStats } from './frame-cache.js';
