export { computeSlide, NotASlideError } from './pyramid.js';
export { computeTileIndex, getTileFrame, isInGrid } from './tile-index.js';
export type { AssociatedImage, AssociatedKind, FrameRef, Level, Slide, SlideInstance, TiledImage } from './types.js';
export { computeNativeFrameBytes, VL_WSI_SOP_CLASS } from './instance.js';
export type { FramePositions, WsiInstance } from './instance.js';
