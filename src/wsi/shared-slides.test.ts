/**
 * The slide model on every file in ../shared/wsi: levels, grids, frame index and mpp against the facts
 * PROVENANCE.md states (test/support/wsi-data.ts is the one fixtures file), read through the folder source.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { createFolderSource } from '../source/index.js';
import { listDicomSamples, readDicomFileFacts, sharedWsiDir, type WsiSample } from '../../test/support/wsi-data.js';
import { computeSlide, NotASlideError } from './pyramid.js';
import { getTileFrame } from './tile-index.js';

const source = createFolderSource({ dir: sharedWsiDir });
afterAll(() => source.close());

async function readSample(sample: WsiSample) {
  const facts = await readDicomFileFacts(sample.paths[0]!);
  const instances = await source.readSeries(facts.studyInstanceUid, facts.seriesInstanceUid);
  return { facts, instances };
}

const samples = listDicomSamples();

describe.each(samples.filter((s) => s.kind === 'slide'))('slide $id', (sample) => {
  it('has the levels, grids, tile size and associated images PROVENANCE.md describes', async () => {
    const { facts, instances } = await readSample(sample);
    const slide = computeSlide(facts.studyInstanceUid, facts.seriesInstanceUid, instances);
    expect(slide.levels.map((l) => ({ widthPx: l.widthPx, heightPx: l.heightPx, frameCount: l.tileCount }))).toEqual(sample.levels);
    for (const level of slide.levels) {
      expect(level.tileWidthPx).toBe(sample.tileSizePx);
      expect(level.gridCols).toBe(Math.ceil(level.widthPx / sample.tileSizePx!));
      expect(level.gridRows).toBe(Math.ceil(level.heightPx / sample.tileSizePx!));
      expect(level.downsample).toBe(sample.levels[0]!.widthPx / level.widthPx);
    }
    if (sample.mpp !== undefined) expect(slide.levels[0]!.mppX).toBeCloseTo(sample.mpp, 2);
    expect(slide.label && { widthPx: slide.label.widthPx, heightPx: slide.label.heightPx }).toEqual(sample.label);
    expect(slide.overview && { widthPx: slide.overview.widthPx, heightPx: slide.overview.heightPx }).toEqual(sample.overview);
  });

  it('maps every tile to a frame whose stored position (or TILED_FULL order) is that tile', async () => {
    const { facts, instances } = await readSample(sample);
    const slide = computeSlide(facts.studyInstanceUid, facts.seriesInstanceUid, instances);
    for (const level of slide.levels) {
      const seen = new Set<string>();
      for (let row = 0; row < level.gridRows; row++) {
        for (let col = 0; col < level.gridCols; col++) {
          const frame = getTileFrame(level, col, row);
          expect(frame, `level ${level.index} tile ${col},${row}`).toBeDefined();
          const instance = instances.find((i) => i.sopInstanceUid === slide.instances[frame!.instanceIndex]!.sopInstanceUid)!;
          const key = `${instance.sopInstanceUid}#${frame!.frameNumber}`;
          expect(seen.has(key)).toBe(false);
          seen.add(key);
          const positions = instance.framePositions;
          if (positions) {
            expect(positions.columnPx[frame!.frameNumber - 1]).toBe(col * level.tileWidthPx + 1);
            expect(positions.rowPx[frame!.frameNumber - 1]).toBe(row * level.tileHeightPx + 1);
          } else {
            expect(instance.concatenationFrameOffset + frame!.frameNumber - 1).toBe(row * level.gridCols + col);
          }
        }
      }
    }
  });
});

describe('series that are not slides', () => {
  it('a series holding only a label is refused as not a slide', async () => {
    const { facts, instances } = await readSample(samples.find((s) => s.kind === 'label')!);
    expect(() => computeSlide(facts.studyInstanceUid, facts.seriesInstanceUid, instances)).toThrow(NotASlideError);
  });

  it('the annotation object is not listed (no SM modality)', async () => {
    const annotation = samples.find((s) => s.kind === 'annotation')!;
    const facts = await readDicomFileFacts(annotation.paths[0]!);
    const listed = await source.listSeries({ limit: 1000 });
    expect(listed.map((s) => s.seriesUid)).not.toContain(facts.seriesInstanceUid);
    expect(listed).toHaveLength(samples.filter((s) => s.kind === 'slide' || s.kind === 'label').length);
  });
});
