import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readDicomFileFacts, sharedWsiDir } from '../../../test/support/wsi-data.js';
import { createFolderSource } from './folder-source.js';

const dir = mkdtempSync(path.join(tmpdir(), 'wsigw-folder-source-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A 50x50 uncompressed slide (25 frames) copied into its own folder. */
async function folderWithSlide(name: string) {
  const root = path.join(dir, name);
  const file = path.join(root, 'slide.dcm');
  rmSync(root, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });
  copyFileSync(path.join(sharedWsiDir, 'public/highdicom/sm_image.dcm'), file);
  const facts = await readDicomFileFacts(file);
  return { root, file, facts, source: createFolderSource({ dir: root, rescanIntervalMs: 0 }) };
}

describe('folder source', () => {
  // Issue 7 (fuzz): a file deleted after the scan made readFrames throw a raw ENOENT, a 500.
  it('answers 404 SERIES_NOT_FOUND for a file gone since the scan, and forgets it', async () => {
    const { file, facts, source } = await folderWithSlide('gone');
    const [instance] = await source.readSeries(facts.studyInstanceUid, facts.seriesInstanceUid);
    const ref = { studyUid: facts.studyInstanceUid, seriesUid: facts.seriesInstanceUid, sopInstanceUid: instance!.sopInstanceUid };
    expect((await source.readFrames(ref, [1]))[0]!.data.length).toBeGreaterThan(0);
    rmSync(file);
    await expect(source.readFrames(ref, [2])).rejects.toMatchObject({ status: 404, code: 'SERIES_NOT_FOUND' });
    await expect(source.readSeries(ref.studyUid, ref.seriesUid)).rejects.toMatchObject({ code: 'SERIES_NOT_FOUND' });
  });

  it('never opens a path named by a request, and does not follow links out of the folder', async () => {
    const { root, facts, source } = await folderWithSlide('links');
    const outside = path.join(dir, 'outside.dcm');
    copyFileSync(path.join(sharedWsiDir, 'public/highdicom/sm_image_jpegls.dcm'), outside);
    symlinkSync(outside, path.join(root, 'link.dcm'));
    writeFileSync(path.join(root, 'notes.txt'), 'not DICOM');
    expect((await source.listSeries()).map((s) => s.seriesUid)).toEqual([facts.seriesInstanceUid]);
    const outsideFacts = await readDicomFileFacts(outside);
    await expect(source.readSeries(outsideFacts.studyInstanceUid, outsideFacts.seriesInstanceUid)).rejects.toMatchObject({ code: 'SERIES_NOT_FOUND' });
    for (const name of ['..', '../outside.dcm', outside, 'link.dcm', '%2e%2e']) {
      await expect(source.readSeries(name, name)).rejects.toMatchObject({ code: 'SERIES_NOT_FOUND' });
      await expect(source.readFrames({ studyUid: facts.studyInstanceUid, seriesUid: facts.seriesInstanceUid, sopInstanceUid: name }, [1])).rejects.toMatchObject({ status: 404 });
    }
  });
});
