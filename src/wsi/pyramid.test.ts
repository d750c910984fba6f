import { describe, expect, it } from 'vitest';
import { InvalidMetadataError } from '../errors.js';
import { getTileFrame } from './tile-index.js';
import { computeSlide, NotASlideError } from './pyramid.js';
import { VL_WSI_SOP_CLASS, type WsiInstance } from './instance.js';

/** A synthetic instance record: only what each test changes is spelled out. */
function instance(overrides: Partial<WsiInstance> & { sopInstanceUid: string }): WsiInstance {
  return {
    studyUid: '1.2',
    seriesUid: '1.2.3',
    sopClassUid: VL_WSI_SOP_CLASS,
    imageType: ['DERIVED', 'PRIMARY', 'VOLUME', 'NONE'],
    transferSyntaxUid: '1.2.840.10008.1.2.4.50',
    frameHeightPx: 256,
    frameWidthPx: 256,
    numberOfFrames: 1,
    totalWidthPx: 256,
    totalHeightPx: 256,
    samplesPerPixel: 3,
    photometricInterpretation: 'YBR_FULL_422',
    bitsAllocated: 8,
    bitsStored: 8,
    pixelRepresentation: 0,
    planarConfiguration: 0,
    dimensionOrganizationType: 'TILED_FULL',
    pixelSpacingMm: undefined,
    imagedVolumeWidthMm: undefined,
    imagedVolumeHeightMm: undefined,
    totalPixelMatrixFocalPlanes: 1,
    numberOfOpticalPaths: 1,
    concatenationUid: undefined,
    concatenationFrameOffset: 0,
    frameOfReferenceUid: undefined,
    framePositions: undefined,
    seriesDescription: undefined,
    studyDescription: undefined,
    containerIdentifier: undefined,
    missing: [],
    ...overrides,
  };
}

/** Per-frame positions for the given (col, row) tiles of `tilePx` size, optionally on z planes. */
function positions(tiles: Array<[number, number]>, tilePx = 256, z: number[] = [], paths: string[] = []) {
  return {
    columnPx: Int32Array.from(tiles.map(([c]) => c * tilePx + 1)),
    rowPx: Int32Array.from(tiles.map(([, r]) => r * tilePx + 1)),
    zOffsetUm: Float64Array.from(tiles.map((_, i) => z[i] ?? NaN)),
    opticalPath: tiles.map((_, i) => paths[i] ?? ''),
  };
}

describe('computeSlide', () => {
  it('orders levels by size and keeps exact non-power-of-2 downsamples (slim#318)', () => {
    const slide = computeSlide('1.2', '1.2.3', [
      instance({ sopInstanceUid: '9.3', totalWidthPx: 278, totalHeightPx: 371, numberOfFrames: 4 }),
      instance({ sopInstanceUid: '9.1', imageType: ['ORIGINAL', 'PRIMARY', 'VOLUME', 'NONE'], totalWidthPx: 2220, totalHeightPx: 2967, numberOfFrames: 108, pixelSpacingMm: [0.000499, 0.000499] }),
      // ORIGINAL on a resampled level, as some converters write: size decides, not ImageType value 1.
      instance({ sopInstanceUid: '9.2', imageType: ['ORIGINAL', 'PRIMARY', 'VOLUME', 'NONE'], totalWidthPx: 555, totalHeightPx: 742, numberOfFrames: 9 }),
    ]);
    expect(slide.levels.map((l) => l.widthPx)).toEqual([2220, 555, 278]);
    expect(slide.levels[2]!.downsample).toBeCloseTo(2220 / 278, 12);
    expect(slide.levels[2]!.downsample).not.toBe(8);
    expect(slide.levels.map((l) => [l.gridCols, l.gridRows])).toEqual([[9, 12], [3, 3], [2, 2]]);
    // Levels without their own spacing inherit level 0's times the exact ratio.
    expect(slide.levels[2]!.mppX).toBeCloseTo(0.499 * (2220 / 278), 9);
  });

  it('maps TILED_FULL frames column fastest, then row', () => {
    const slide = computeSlide('1.2', '1.2.3', [instance({ sopInstanceUid: '9.1', totalWidthPx: 700, totalHeightPx: 300, numberOfFrames: 6 })]);
    const level = slide.levels[0]!;
    expect([level.gridCols, level.gridRows]).toEqual([3, 2]);
    expect(getTileFrame(level, 0, 0)?.frameNumber).toBe(1);
    expect(getTileFrame(level, 2, 0)?.frameNumber).toBe(3);
    expect(getTileFrame(level, 0, 1)?.frameNumber).toBe(4);
    expect(getTileFrame(level, 2, 1)?.frameNumber).toBe(6);
  });

  it('merges a concatenation into one level using ConcatenationFrameOffsetNumber', () => {
    const parts = [
      instance({ sopInstanceUid: '9.2', concatenationUid: '7.7', concatenationFrameOffset: 4, totalWidthPx: 768, totalHeightPx: 512, numberOfFrames: 2 }),
      instance({ sopInstanceUid: '9.1', concatenationUid: '7.7', concatenationFrameOffset: 0, totalWidthPx: 768, totalHeightPx: 512, numberOfFrames: 4 }),
    ];
    const slide = computeSlide('1.2', '1.2.3', parts);
    expect(slide.levels).toHaveLength(1);
    const level = slide.levels[0]!;
    const at = (c: number, r: number) => {
      const f = getTileFrame(level, c, r)!;
      return `${slide.instances[f.instanceIndex]!.sopInstanceUid}#${f.frameNumber}`;
    };
    expect(at(0, 0)).toBe('9.1#1');
    expect(at(0, 1)).toBe('9.1#4');
    expect(at(1, 1)).toBe('9.2#1');
    expect(at(2, 1)).toBe('9.2#2');
    expect(level.tileCount).toBe(6);
  });

  it('indexes TILED_SPARSE frames by position and leaves missing tiles empty', () => {
    const sparse = instance({
      sopInstanceUid: '9.1',
      dimensionOrganizationType: 'TILED_SPARSE',
      totalWidthPx: 600,
      totalHeightPx: 512,
      numberOfFrames: 3,
      framePositions: positions([[2, 1], [0, 0], [1, 1]]),
    });
    const level = computeSlide('1.2', '1.2.3', [sparse]).levels[0]!;
    expect(getTileFrame(level, 2, 1)?.frameNumber).toBe(1);
    expect(getTileFrame(level, 0, 0)?.frameNumber).toBe(2);
    expect(getTileFrame(level, 1, 1)?.frameNumber).toBe(3);
    expect(getTileFrame(level, 1, 0)).toBeUndefined();
    expect(level.tileCount).toBe(3);
  });

  it('uses the first focal plane and optical path and says so', () => {
    const stack = instance({
      sopInstanceUid: '9.1',
      dimensionOrganizationType: 'TILED_SPARSE',
      numberOfFrames: 4,
      framePositions: positions([[0, 0], [0, 0], [0, 0], [0, 0]], 256, [0, 1.5, 0, 1.5], ['A', 'A', 'B', 'B']),
    });
    const slide = computeSlide('1.2', '1.2.3', [stack]);
    expect(getTileFrame(slide.levels[0]!, 0, 0)?.frameNumber).toBe(1);
    expect(slide.notes).toContain('2 focal planes; showing the first');
    expect(slide.notes).toContain('2 optical paths; showing the first');
  });

  it('keeps label and overview apart from the pyramid', () => {
    const slide = computeSlide('1.2', '1.2.3', [
      instance({ sopInstanceUid: '9.1', totalWidthPx: 512, totalHeightPx: 512, numberOfFrames: 4 }),
      instance({ sopInstanceUid: '9.8', imageType: ['ORIGINAL', 'PRIMARY', 'LABEL', 'NONE'], frameWidthPx: 387, frameHeightPx: 463, totalWidthPx: 387, totalHeightPx: 463 }),
      instance({ sopInstanceUid: '9.9', imageType: ['ORIGINAL', 'PRIMARY', 'OVERVIEW', 'NONE'], frameWidthPx: 1280, frameHeightPx: 431, totalWidthPx: 1280, totalHeightPx: 431 }),
    ]);
    expect(slide.levels).toHaveLength(1);
    expect(slide.label?.widthPx).toBe(387);
    expect(slide.overview?.widthPx).toBe(1280);
  });

  it('takes mpp from the imaged volume when PixelSpacing is absent', () => {
    const slide = computeSlide('1.2', '1.2.3', [instance({ sopInstanceUid: '9.1', totalWidthPx: 1000, totalHeightPx: 500, numberOfFrames: 8, imagedVolumeWidthMm: 0.5, imagedVolumeHeightMm: 0.25 })]);
    expect(slide.levels[0]!.mppX).toBeCloseTo(0.5, 12);
    expect(slide.levels[0]!.mppY).toBeCloseTo(0.5, 12);
  });

  it('names the attributes a main-tags-only PACS left out', () => {
    const partial = instance({ sopInstanceUid: '9.1', missing: ['Rows', 'Columns', 'TotalPixelMatrixColumns'] });
    expect(() => computeSlide('1.2', '1.2.3', [partial])).toThrow(InvalidMetadataError);
    expect(() => computeSlide('1.2', '1.2.3', [partial])).toThrow(/Rows, Columns, TotalPixelMatrixColumns/);
  });

  it('refuses a series with no whole-slide volume', () => {
    expect(() => computeSlide('1.2', '1.2.3', [])).toThrow(NotASlideError);
    expect(() => computeSlide('1.2', '1.2.3', [instance({ sopInstanceUid: '9.1', sopClassUid: '1.2.840.10008.5.1.4.1.1.2' })])).toThrow(NotASlideError);
    const labelOnly = instance({ sopInstanceUid: '9.1', imageType: ['ORIGINAL', 'PRIMARY', 'LABEL'] });
    expect(() => computeSlide('1.2', '1.2.3', [labelOnly])).toThrow(/only label or overview/);
  });
});
