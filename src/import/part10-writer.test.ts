import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { computeEncapsulatedFrames, locatePixelData, readTransferSyntax } from '../source/part10.js';
import { TransferSyntax } from '../tiles/codecs/transfer-syntax.js';
import { VL_WSI_SOP_CLASS } from '../wsi/instance.js';
import { encodePart10Header, writeEncapsulatedPart10 } from './part10-writer.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'part10-writer-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const meta = { sopClassUid: VL_WSI_SOP_CLASS, sopInstanceUid: '2.25.1', transferSyntaxUid: TransferSyntax.jpegBaseline };
const header = () => encodePart10Header(meta, { SOPClassUID: VL_WSI_SOP_CLASS, SOPInstanceUID: '2.25.1', Modality: 'SM' });

async function* framesOf(...frames: Buffer[]): AsyncGenerator<Buffer> {
  yield* frames;
}

describe('writeEncapsulatedPart10', () => {
  it('pads odd frames to even items, and the reader finds each frame', async () => {
    const path = join(dir, 'x.dcm');
    const frames = [Buffer.from([0xff, 0xd8, 1, 0xff, 0xd9]), Buffer.from([0xff, 0xd8, 2, 3, 0xff, 0xd9])];
    const stats = await writeEncapsulatedPart10(path, framesOf(...frames), header);
    expect(stats).toMatchObject({ frameCount: 2, frameBytes: 11 });
    const bytes = await readFile(path);
    expect(bytes.length).toBe(stats.fileBytes);
    expect(readTransferSyntax(bytes)).toBe(TransferSyntax.jpegBaseline);
    const location = locatePixelData(bytes, TransferSyntax.jpegBaseline)!;
    const ranges = computeEncapsulatedFrames(bytes.subarray(location.valueOffset), location.valueOffset, 2);
    // One fragment per frame; the odd one carries its zero pad byte.
    expect(ranges.map((parts) => parts.map(([offset, length]) => bytes.subarray(offset, offset + length)))).toEqual([
      [Buffer.concat([frames[0]!, Buffer.alloc(1)])],
      [frames[1]],
    ]);
  });

  it('leaves nothing behind when the frames fail', async () => {
    async function* failing(): AsyncGenerator<Buffer> {
      yield Buffer.from([0xff, 0xd8]);
      throw new Error('encoder failed');
    }
    await expect(writeEncapsulatedPart10(join(dir, 'x.dcm'), failing(), header)).rejects.toThrow('encoder failed');
    expect(await readdir(dir)).toEqual([]);
  });

  it('refuses an unknown keyword instead of dropping it', () => {
    expect(() => encodePart10Header(meta, { Modality: 'SM', PixelSpacingTypo: [1, 1] })).toThrow('PixelSpacingTypo');
  });
});
