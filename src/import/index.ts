/** Writing slides as DICOM: an image → a VL Whole Slide Microscopy pyramid of Part 10 files. */
export { writeWsiPyramid } from './wsi-writer.js';
export type { ImageInput, LevelSpec, WrittenImage, WrittenLevel, WrittenPyramid, WsiWriteOptions } from './wsi-writer.js';
