import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import {
  CodecError,
  TransferSyntax,
  decodeFrame,
  encodeJpeg,
  isJpegBaselineSyntax,
  isSupportedSyntax,
  transcodeFrameToJpeg,
  type FramePixelFormat,
} from './codecs/index.js';
import { hasMultipleComponentTransform } from './codecs/j2k-header.js';
import { charLs, libJpegTurbo, openJpeg } from './codecs/wasm-codecs.js';
import { runWasmDecode } from './codecs/wasm-run.js';

// Real frames from ../shared/wsi (see PROVENANCE.md), checked against independent decoders: libvips
// (OpenJPEG), dcmtk, OpenJPH. Tests needing a missing tool are skipped, named after it.
const WSI = resolve(import.meta.dirname, '../../../shared/wsi');
const workDir = mkdtempSync(join(tmpdir(), 'codecs-test-'));
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

const hasTool = (name: string): boolean => spawnSync(name, ['--version']).error === undefined;
const hasVips = hasTool('vips');
const hasDcmtk = hasTool('dcmj2pnm') && hasTool('dcmdjpls') && hasTool('dcmcjpls');
const hasOpjCompress = hasTool('opj_compress');
const hasOpenJph = hasTool('ojph_compress') && hasTool('ojph_expand');

interface DicomFile {
  transferSyntaxUid: string;
  format: FramePixelFormat;
  frames: Uint8Array[];
}

/** dcmjs ships no typings; this is the little of it the tests use. */
interface DcmjsElement {
  Value?: unknown[];
}
interface Dcmjs {
  data: {
    DicomMessage: {
      readFile(buffer: ArrayBuffer): { meta: Record<string, DcmjsElement>; dict: Record<string, DcmjsElement> };
    };
  };
}
const dcmjs: Dcmjs = createRequire(import.meta.url)('dcmjs');

/** Reads a DICOM file: a path relative to ../shared/wsi, or absolute. */
function readDicom(path: string): DicomFile {
  const bytes = readFileSync(resolve(WSI, path));
  const { meta, dict } = dcmjs.data.DicomMessage.readFile(
    bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength),
  );
  const value = (tag: string): unknown => dict[tag]?.Value?.[0];
  const format: FramePixelFormat = {
    rows: Number(value('00280010')),
    columns: Number(value('00280011')),
    samplesPerPixel: Number(value('00280002')),
    bitsAllocated: Number(value('00280100')),
    bitsStored: Number(value('00280101')),
    pixelRepresentation: Number(value('00280103')),
    photometricInterpretation: String(value('00280004')),
    planarConfiguration: Number(value('00280006') ?? 0),
  };
  const transferSyntaxUid = String(meta['00020010']?.Value?.[0]);
  const fragments = (dict['7FE00010']?.Value ?? []).map((v) => new Uint8Array(v as ArrayBuffer));
  if (transferSyntaxUid.startsWith('1.2.840.10008.1.2.4')) {
    return { transferSyntaxUid, format, frames: fragments };
  }
  // Native pixel data is one value holding every frame back to back.
  const all = fragments[0] ?? new Uint8Array();
  const frameBytes = format.rows * format.columns * format.samplesPerPixel * (format.bitsAllocated / 8);
  const frameCount = Number(value('00280008') ?? 1);
  const frames = Array.from({ length: frameCount }, (_, i) => all.subarray(i * frameBytes, (i + 1) * frameBytes));
  return { transferSyntaxUid, format, frames };
}

function run(command: string, args: string[]): void {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`${command} failed: ${result.stderr}`);
}

/** Pixels of a binary PGM/PPM (P5/P6, maxval 255, '#' comments), as vips, dcmtk and OpenJPH write. */
function readPnm(path: string): Buffer {
  const bytes = readFileSync(path);
  const gap = String.raw`(?:\s|#[^\n]*\n)+`; // whitespace and comment lines
  const header = new RegExp(`^P[56]${gap}\\d+${gap}\\d+${gap}255\\s`).exec(bytes.toString('latin1', 0, 256));
  if (!header) throw new Error(`${path} is not an 8-bit binary PNM`);
  return bytes.subarray(header[0].length);
}

function writeTemp(name: string, data: Uint8Array): string {
  const path = join(workDir, name);
  writeFileSync(path, data);
  return path;
}

/** Writes 8-bit RGB pixels as a binary PPM, the input format of opj_compress and ojph_compress. */
function writePpm(name: string, rgb: Uint8Array, widthPx = 256, heightPx = 256): string {
  return writeTemp(name, Buffer.concat([Buffer.from(`P6\n${widthPx} ${heightPx}\n255\n`), rgb]));
}

/** A JPEG 2000 codestream or JP2 file decoded by libvips (its own OpenJPEG, native code). */
function decodeWithVips(data: Uint8Array, name = 'in.j2k'): Buffer {
  const output = join(workDir, `${name}.ppm`);
  run('vips', ['copy', writeTemp(name, data), output]);
  return readPnm(output);
}

function diffStats(actual: Uint8Array, expected: Uint8Array): { maxDiff: number; meanDiff: number } {
  expect(actual.byteLength).toBe(expected.byteLength);
  let maxDiff = 0;
  let sum = 0;
  for (let i = 0; i < expected.byteLength; i++) {
    const diff = Math.abs((actual[i] ?? 0) - (expected[i] ?? 0));
    maxDiff = Math.max(maxDiff, diff);
    sum += diff;
  }
  return { maxDiff, meanDiff: sum / expected.byteLength };
}

function meanRgb(rgb: Uint8Array): [number, number, number] {
  const sums: [number, number, number] = [0, 0, 0];
  for (let i = 0; i < rgb.byteLength; i++) sums[i % 3 as 0 | 1 | 2] += rgb[i] ?? 0;
  const pixels = rgb.byteLength / 3;
  return [sums[0] / pixels, sums[1] / pixels, sums[2] / pixels];
}

/** BT.601 luma of each RGB pixel. */
function computeLuma(rgb: Uint8Array): Uint8Array {
  const luma = new Uint8Array(rgb.byteLength / 3);
  for (let i = 0; i < luma.length; i++) {
    luma[i] = Math.round(0.299 * (rgb[i * 3] ?? 0) + 0.587 * (rgb[i * 3 + 1] ?? 0) + 0.114 * (rgb[i * 3 + 2] ?? 0));
  }
  return luma;
}

/** Y, Cb, Cr of an RGB pixel by the forward matrix of PS3.3 C.7.6.3.1.2 (YBR_FULL), rounded. */
function rgbToYbrFull([r, g, b]: readonly number[]): [number, number, number] {
  const clamp = (v: number): number => Math.min(255, Math.max(0, Math.round(v)));
  const [R = 0, G = 0, B = 0] = [r, g, b];
  return [
    clamp(0.299 * R + 0.587 * G + 0.114 * B),
    clamp(-0.1687 * R - 0.3313 * G + 0.5 * B + 128),
    clamp(0.5 * R - 0.4187 * G - 0.0813 * B + 128),
  ];
}

const rgb8 = (rows: number, columns: number, photometricInterpretation = 'RGB'): FramePixelFormat => ({
  rows,
  columns,
  samplesPerPixel: 3,
  bitsAllocated: 8,
  bitsStored: 8,
  pixelRepresentation: 0,
  photometricInterpretation,
  planarConfiguration: 0,
});

const j2kFiles = [
  'public/google-wsi2dcm/jpeg2000.dicom',
  'cmu1-t256-j2k/wsi-000000.dcm',
  'public/google-medical-imaging/multi_frame_jpeg2000_camelyon_challenge_image.dcm',
];

describe('transfer syntaxes', () => {
  it('passes only JPEG baseline through and supports the syntaxes it decodes', () => {
    expect(isJpegBaselineSyntax(TransferSyntax.jpegBaseline)).toBe(true);
    expect(isJpegBaselineSyntax(TransferSyntax.jpegExtended)).toBe(false);
    for (const uid of Object.values(TransferSyntax)) expect(isSupportedSyntax(uid)).toBe(true);
    expect(isSupportedSyntax('1.2.840.10008.1.2.5')).toBe(false); // RLE
    expect(isSupportedSyntax('1.2.840.10008.1.2.4.70')).toBe(false); // JPEG lossless
  });
});

describe.skipIf(!hasVips)('JPEG 2000 against libvips (needs vips)', () => {
  it.each(j2kFiles)('decodes %s like vips jp2kload', async (path) => {
    const { transferSyntaxUid, format, frames } = readDicom(path);
    for (const index of [0, Math.floor(frames.length / 2), frames.length - 1]) {
      const frame = frames[index] ?? new Uint8Array();
      const image = await decodeFrame(frame, transferSyntaxUid, format);
      expect([image.widthPx, image.heightPx, image.channels]).toEqual([format.columns, format.rows, 3]);
      expect(diffStats(image.data, decodeWithVips(frame)).maxDiff).toBeLessThanOrEqual(2);
    }
  });

  it('decodes a genuine YBR_FULL_422 codestream (half-width chroma, in a JP2 file) like vips', async () => {
    const reference = decodeWithVips(readDicom(j2kFiles[0] ?? '').frames[3] ?? new Uint8Array());
    const source = writePpm('rgb.ppm', reference);
    const subsampled = join(workDir, 'subsampled.jp2');
    run('vips', ['jp2ksave', source, subsampled, '--subsample-mode', 'on', '--Q', '95']);
    const bytes = readFileSync(subsampled);
    const image = await decodeFrame(bytes, TransferSyntax.jpeg2000, rgb8(256, 256, 'YBR_FULL_422'));
    expect(diffStats(image.data, decodeWithVips(bytes, 'subsampled.jp2')).maxDiff).toBeLessThanOrEqual(2);
    // OpenJPEG converted the subsampled YCbCr and said so (sRGB): no second conversion for YBR_FULL.
    const asYbrFull = await decodeFrame(bytes, TransferSyntax.jpeg2000, rgb8(256, 256, 'YBR_FULL'));
    expect(asYbrFull.data.equals(image.data)).toBe(true);
  });

  it.skipIf(!hasOpjCompress)('converts MCT-free YBR_FULL, leaves it when labelled RGB (needs opj_compress)', async () => {
    const rgb = decodeWithVips(readDicom(j2kFiles[0] ?? '').frames[3] ?? new Uint8Array());
    const ybr = Buffer.alloc(rgb.byteLength);
    for (let i = 0; i < rgb.byteLength; i += 3) ybr.set(rgbToYbrFull([...rgb.subarray(i, i + 3)]), i);
    const source = writePpm('ybr.ppm', ybr);
    const codestreamPath = join(workDir, 'ybr-mct0.j2k');
    run('opj_compress', ['-i', source, '-o', codestreamPath, '-mct', '0']);
    const codestream = readFileSync(codestreamPath);
    expect(hasMultipleComponentTransform(codestream)).toBe(false);
    const converted = await decodeFrame(codestream, TransferSyntax.jpeg2000Lossless, rgb8(256, 256, 'YBR_FULL'));
    expect(diffStats(converted.data, rgb).maxDiff).toBeLessThanOrEqual(2);
    const asLabelled = await decodeFrame(codestream, TransferSyntax.jpeg2000Lossless, rgb8(256, 256));
    expect(diffStats(asLabelled.data, ybr).maxDiff).toBe(0);
  });

  it.skipIf(!hasOpenJph)('decodes HTJ2K, lossless and lossy with MCT (needs ojph_compress, ojph_expand)', async () => {
    const rgb = decodeWithVips(readDicom(j2kFiles[0] ?? '').frames[5] ?? new Uint8Array());
    const source = writePpm('ht-source.ppm', rgb);
    const lossless = join(workDir, 'lossless.j2c');
    run('ojph_compress', ['-i', source, '-o', lossless, '-reversible', 'true']);
    const losslessImage = await decodeFrame(readFileSync(lossless), TransferSyntax.htj2kLossless, rgb8(256, 256));
    expect(diffStats(losslessImage.data, rgb).maxDiff).toBe(0);
    const lossy = join(workDir, 'lossy.j2c');
    run('ojph_compress', ['-i', source, '-o', lossy, '-qstep', '0.01', '-colour_trans', 'true']);
    expect(hasMultipleComponentTransform(readFileSync(lossy))).toBe(true);
    run('ojph_expand', ['-i', lossy, '-o', join(workDir, 'lossy.ppm')]);
    const lossyImage = await decodeFrame(readFileSync(lossy), TransferSyntax.htj2k, rgb8(256, 256, 'YBR_ICT'));
    expect(diffStats(lossyImage.data, readPnm(join(workDir, 'lossy.ppm'))).maxDiff).toBeLessThanOrEqual(2);
  });

  it('transcodes a JPEG 2000 frame to a baseline JPEG close to the reference decode', async () => {
    const { transferSyntaxUid, format, frames } = readDicom(j2kFiles[1] ?? '');
    const frame = frames[23] ?? new Uint8Array();
    const jpeg = await transcodeFrameToJpeg(frame, transferSyntaxUid, format);
    expect([...jpeg.subarray(0, 2)]).toEqual([0xff, 0xd8]);
    expect(jpeg.includes(Buffer.from([0xff, 0xc0]))).toBe(true); // SOF0: baseline
    expect(jpeg.includes(Buffer.from([0xff, 0xc2]))).toBe(false); // SOF2: progressive
    const decoded = await sharp(jpeg).raw().toBuffer();
    const reference = decodeWithVips(frame);
    // sharp subsamples chroma 4:2:0, which costs this tissue tile a mean of ~5 per RGB sample
    // (~1.5 at 4:4:4); luminance, which subsampling leaves alone, must be much closer.
    expect(diffStats(decoded, reference).meanDiff).toBeLessThan(6);
    expect(diffStats(computeLuma(decoded), computeLuma(reference)).meanDiff).toBeLessThan(2);
  });
});

describe('JPEG 2000 colour and depth', () => {
  it.skipIf(!hasOpjCompress)('scales 12-bit grey JPEG 2000 by its precision (needs opj_compress)', async () => {
    const [widthPx, heightPx] = [64, 32];
    const stored = Array.from({ length: widthPx * heightPx }, (_, i) => (i * 37) % 4096);
    const body = Buffer.alloc(stored.length * 2);
    stored.forEach((value, i) => body.writeUInt16BE(value, i * 2)); // PGM samples are big endian
    const source = writeTemp('grey12.pgm', Buffer.concat([Buffer.from(`P5\n${widthPx} ${heightPx}\n4095\n`), body]));
    run('opj_compress', ['-i', source, '-o', join(workDir, 'grey12.j2k')]);
    const format = { ...rgb8(heightPx, widthPx, 'MONOCHROME2'), samplesPerPixel: 1, bitsAllocated: 16, bitsStored: 12 };
    const image = await decodeFrame(readFileSync(join(workDir, 'grey12.j2k')), TransferSyntax.jpeg2000Lossless, format);
    const expected = stored.flatMap((value) => Array<number>(3).fill(Math.round((value * 255) / 4095)));
    expect(image.data.equals(Buffer.from(expected))).toBe(true);
  });

  it.each([j2kFiles[1] ?? '', j2kFiles[2] ?? ''])('gives H&E colours (mean red above green) for %s', async (path) => {
    const { transferSyntaxUid, format, frames } = readDicom(path);
    const images = await Promise.all(frames.map((frame) => decodeFrame(frame, transferSyntaxUid, format)));
    const [red, green] = meanRgb(Buffer.concat(images.map((image) => image.data)));
    expect(red).toBeGreaterThan(green);
  });

  it('regression: MCT-free RGB labelled YBR_FULL_422 (OrthancWSIDicomizer 1.1) is not YBR-converted', async () => {
    const { transferSyntaxUid, format, frames } = readDicom(j2kFiles[1] ?? '');
    const frame = frames[1] ?? new Uint8Array();
    expect(format.photometricInterpretation).toBe('YBR_FULL_422');
    expect(hasMultipleComponentTransform(frame)).toBe(false);
    const labelled = await decodeFrame(frame, transferSyntaxUid, format);
    const asRgb = await decodeFrame(frame, transferSyntaxUid, { ...format, photometricInterpretation: 'RGB' });
    expect(labelled.data.equals(asRgb.data)).toBe(true);
    expect(meanRgb(labelled.data).every((channel) => channel > 200)).toBe(true); // white glass, not magenta
  });

  it('reads the MCT flag from raw codestreams and JP2 files, and rejects other bytes', () => {
    const codestream = readDicom(j2kFiles[0] ?? '').frames[0] ?? new Uint8Array();
    const box = (type: string, body: Uint8Array): Buffer => {
      const header = Buffer.alloc(8);
      header.writeUInt32BE(8 + body.byteLength, 0);
      header.write(type, 4, 'latin1');
      return Buffer.concat([header, body]);
    };
    const signature = box('jP  ', Buffer.from([0x0d, 0x0a, 0x87, 0x0a]));
    const withMct = Buffer.from(codestream);
    // COD: marker(2) Lcod(2) Scod(1) progression order(1) layers(2) MCT(1).
    withMct[withMct.indexOf(Buffer.from([0xff, 0x52])) + 8] = 1;
    expect(hasMultipleComponentTransform(codestream)).toBe(false);
    expect(hasMultipleComponentTransform(withMct)).toBe(true);
    expect(hasMultipleComponentTransform(Buffer.concat([signature, box('jp2c', withMct)]))).toBe(true);
    expect(() => hasMultipleComponentTransform(Buffer.from('not a codestream'))).toThrow(CodecError);
    expect(() => hasMultipleComponentTransform(codestream.subarray(0, 45))).toThrow(/COD/);
  });
});

describe.skipIf(!hasDcmtk)('against dcmtk (needs dcmj2pnm, dcmdjpls, dcmcjpls)', () => {
  it.each(['public/google-wsi2dcm/raw.dicom', 'public/highdicom/sm_image.dcm'])(
    'decodes %s exactly like dcmj2pnm',
    async (path) => {
      const { transferSyntaxUid, format, frames } = readDicom(path);
      for (const frameNumber of [1, Math.ceil(frames.length / 2), frames.length]) {
        const output = join(workDir, `native-${frameNumber}.ppm`);
        run('dcmj2pnm', ['+F', String(frameNumber), join(WSI, path), output]);
        // frameNumber is 1-based as DICOM (and dcmj2pnm) counts frames.
        const image = await decodeFrame(frames[frameNumber - 1] ?? new Uint8Array(), transferSyntaxUid, format);
        expect(image.data.equals(readPnm(output))).toBe(true);
      }
    },
  );

  it('decodes JPEG-LS like dcmtk (dcmdjpls, then dcmj2pnm)', async () => {
    const path = 'public/highdicom/sm_image_jpegls.dcm';
    const decompressed = join(workDir, 'jpegls-decompressed.dcm');
    run('dcmdjpls', [join(WSI, path), decompressed]);
    const { transferSyntaxUid, format, frames } = readDicom(path);
    for (const frameNumber of [1, 13, 25]) {
      const output = join(workDir, `jpegls-${frameNumber}.ppm`);
      run('dcmj2pnm', ['+F', String(frameNumber), decompressed, output]);
      const image = await decodeFrame(frames[frameNumber - 1] ?? new Uint8Array(), transferSyntaxUid, format);
      expect(image.data.equals(readPnm(output))).toBe(true);
    }
  });

  it.each([
    ['+il', 'line'],
    ['+is', 'sample'],
    ['+in', 'no'],
  ])('decodes JPEG-LS written by dcmcjpls %s (%s interleave) to the original frames', async (interleave) => {
    const native = readDicom('public/google-wsi2dcm/raw.dicom');
    const encoded = join(workDir, `jpegls${interleave}.dcm`);
    run('dcmcjpls', [interleave, join(WSI, 'public/google-wsi2dcm/raw.dicom'), encoded]);
    const lossless = readDicom(encoded);
    expect(lossless.transferSyntaxUid).toBe(TransferSyntax.jpegLsLossless);
    for (const [index, frame] of lossless.frames.entries()) {
      const image = await decodeFrame(frame, lossless.transferSyntaxUid, lossless.format);
      expect(image.data.equals(native.frames[index] ?? new Uint8Array())).toBe(true);
    }
  });

  it('does not grow CharLS memory over hundreds of 256x256 JPEG-LS decodes', async () => {
    const encoded = join(workDir, 'jpegls-memory.dcm');
    run('dcmcjpls', [join(WSI, 'public/google-wsi2dcm/raw.dicom'), encoded]);
    const { transferSyntaxUid, format, frames } = readDicom(encoded);
    const decodeMany = async (count: number): Promise<void> => {
      for (let i = 0; i < count; i++) {
        await decodeFrame(frames[i % frames.length] ?? new Uint8Array(), transferSyntaxUid, format);
      }
    };
    await decodeMany(12);
    const before = (await charLs.readMemoryBytes());
    // Leaking a frame's buffers (~300 KB) per decode would outgrow the heap many times over.
    await decodeMany(240);
    expect((await charLs.readMemoryBytes())).toBe(before);
  }, 30_000);

  it('does not grow libjpeg-turbo memory over hundreds of JPEG decodes, corrupt ones among them', async () => {
    const { transferSyntaxUid, format, frames } = readDicom('public/google-wsi2dcm/jpeg.dicom');
    const decodeMany = async (count: number): Promise<void> => {
      for (let i = 0; i < count; i++) {
        const frame = frames[i % frames.length] ?? new Uint8Array();
        // Every tenth frame truncated: libjpeg's error exit must not strand the decoder's buffers.
        const data = i % 10 === 9 ? frame.subarray(0, 400) : frame;
        await decodeFrame(data, transferSyntaxUid, format, runWasmDecode, true).catch((error: unknown) => {
          if (!(error instanceof CodecError)) throw error;
        });
      }
    };
    await decodeMany(20);
    const before = (await libJpegTurbo.readMemoryBytes());
    await decodeMany(400);
    expect((await libJpegTurbo.readMemoryBytes())).toBe(before);
  }, 30_000);

  it.each([
    ['public/google-wsi2dcm/jpeg.dicom', 4], // YBR_FULL_422
    ['cmu1-default/wsi-000000.dcm', 41], // RGB with an Adobe APP14 marker
  ])('decodes JPEG baseline %s like dcmtk within JPEG decoder tolerance', async (path, frameNumber) => {
    const { transferSyntaxUid, format, frames } = readDicom(path);
    const output = join(workDir, `jpeg-${frameNumber}.ppm`);
    run('dcmj2pnm', ['+F', String(frameNumber), join(WSI, path), output]);
    const image = await decodeFrame(frames[frameNumber - 1] ?? new Uint8Array(), transferSyntaxUid, format);
    expect(diffStats(image.data, readPnm(output)).meanDiff).toBeLessThan(1.5);
  });
});

describe('JPEG-LS and JPEG', () => {
  it('decodes every JPEG-LS frame of highdicom sm_image_jpegls.dcm to the uncompressed sm_image.dcm', async () => {
    const lossless = readDicom('public/highdicom/sm_image_jpegls.dcm');
    const native = readDicom('public/highdicom/sm_image.dcm');
    expect(lossless.frames).toHaveLength(native.frames.length);
    for (const [index, frame] of lossless.frames.entries()) {
      const image = await decodeFrame(frame, lossless.transferSyntaxUid, lossless.format);
      const expected = await decodeFrame(native.frames[index] ?? frame, native.transferSyntaxUid, native.format);
      expect(image.data.equals(expected.data)).toBe(true);
    }
  });

  it('returns JPEG baseline frames unchanged, without copying', async () => {
    const { transferSyntaxUid, format, frames } = readDicom('cmu1-t256-q90/wsi-000000.dcm');
    const frame = frames[0] ?? new Uint8Array();
    const jpeg = await transcodeFrameToJpeg(frame, transferSyntaxUid, format);
    expect(jpeg.equals(frame)).toBe(true);
    expect(jpeg.buffer).toBe(frame.buffer);
    const asBuffer = Buffer.from(frame);
    expect(await transcodeFrameToJpeg(asBuffer, transferSyntaxUid, format)).toBe(asBuffer);
  });

  it('encodes baseline JPEGs at the asked quality, 90 by default', async () => {
    const { transferSyntaxUid, format, frames } = readDicom('cmu1-t256-q90/wsi-000000.dcm');
    const image = await decodeFrame(frames[20] ?? new Uint8Array(), transferSyntaxUid, format);
    const [byDefault, at90, at50] = await Promise.all([
      encodeJpeg(image),
      encodeJpeg(image, { quality: 90 }),
      encodeJpeg(image, { quality: 50 }),
    ]);
    expect(byDefault.equals(at90)).toBe(true);
    expect(at50.byteLength).toBeLessThan(at90.byteLength);
    await expect(encodeJpeg(image, { quality: 0 })).rejects.toThrow(RangeError);
  });
});

describe('colour and depth conversion of native frames (synthetic)', () => {
  // H&E pink and purple, primaries, white, black, mid grey: known RGB values to round-trip.
  const palette = [
    [233, 150, 190], [120, 60, 160], [255, 0, 0], [0, 255, 0],
    [0, 0, 255], [255, 255, 255], [0, 0, 0], [128, 128, 128],
  ];
  const expectedRgb = Buffer.from(palette.flatMap((colour) => [...colour, ...colour])); // 4x4 px

  it('converts YBR_FULL, interleaved and planar, to the original RGB', async () => {
    const ybrPixels = palette.flatMap((colour) => [rgbToYbrFull(colour), rgbToYbrFull(colour)]);
    const interleaved = Uint8Array.from(ybrPixels.flat());
    const planar = Uint8Array.from([0, 1, 2].flatMap((sample) => ybrPixels.map((ybr) => ybr[sample] ?? 0)));
    const format = rgb8(4, 4, 'YBR_FULL');
    const fromInterleaved = await decodeFrame(interleaved, TransferSyntax.explicitVrLittleEndian, format);
    const fromPlanar = await decodeFrame(planar, TransferSyntax.explicitVrLittleEndian, {
      ...format,
      planarConfiguration: 1,
    });
    expect(diffStats(fromInterleaved.data, expectedRgb).maxDiff).toBeLessThanOrEqual(2);
    expect(fromPlanar.data.equals(fromInterleaved.data)).toBe(true);
  });

  it('converts YBR_FULL_422 (Y1 Y2 Cb Cr per pixel pair) to the original RGB', async () => {
    // Each pixel pair has one colour, so half-rate chroma loses nothing.
    const pairs = palette.flatMap((colour) => {
      const [y, cb, cr] = rgbToYbrFull(colour);
      return [y, y, cb, cr];
    });
    const image = await decodeFrame(Uint8Array.from(pairs), TransferSyntax.implicitVrLittleEndian, rgb8(4, 4, 'YBR_FULL_422'));
    expect(diffStats(image.data, expectedRgb).maxDiff).toBeLessThanOrEqual(2);
  });

  it('scales 16-bit samples by BitsStored in either byte order, signed or not', async () => {
    const levels = [0, 1, 77, 128, 200, 254, 255];
    const grey = Buffer.from(levels.flatMap((level) => [level, level, level]));
    const format = { ...rgb8(1, levels.length, 'MONOCHROME2'), samplesPerPixel: 1, bitsAllocated: 16, bitsStored: 12 };
    const stored12 = levels.map((level) => Math.round((level * 4095) / 255));
    const little = Buffer.alloc(levels.length * 2);
    const big = Buffer.alloc(levels.length * 2);
    const signed = Buffer.alloc(levels.length * 2);
    stored12.forEach((value, i) => {
      little.writeUInt16LE(value, i * 2);
      big.writeUInt16BE(value, i * 2);
      signed.writeInt16LE(value - 2048, i * 2);
    });
    const decode = (data: Buffer, syntax: string, overrides: Partial<FramePixelFormat> = {}) =>
      decodeFrame(data, syntax, { ...format, ...overrides }).then((image) => image.data);
    expect(await decode(little, TransferSyntax.explicitVrLittleEndian)).toEqual(grey);
    expect(await decode(big, TransferSyntax.explicitVrBigEndian)).toEqual(grey);
    expect(await decode(signed, TransferSyntax.explicitVrLittleEndian, { pixelRepresentation: 1 })).toEqual(grey);
    const inverted = await decode(little, TransferSyntax.explicitVrLittleEndian, { photometricInterpretation: 'MONOCHROME1' });
    expect(inverted).toEqual(Buffer.from(grey.map((level) => 255 - level)));
  });
});

describe('errors', () => {
  const format = rgb8(256, 256);

  it('rejects unsupported syntaxes and pixel formats, naming every problem', async () => {
    await expect(decodeFrame(new Uint8Array(8), '1.2.840.10008.1.2.5', format)).rejects.toMatchObject({
      code: 'CODEC_FAILED',
    });
    const bad = { ...format, bitsAllocated: 32, photometricInterpretation: 'PALETTE COLOR' };
    await expect(decodeFrame(new Uint8Array(8), TransferSyntax.explicitVrLittleEndian, bad)).rejects.toThrow(
      /BitsAllocated 32.*PALETTE COLOR/,
    );
    await expect(decodeFrame(new Uint8Array(100), TransferSyntax.explicitVrLittleEndian, format)).rejects.toThrow(
      CodecError,
    );
    await expect(
      decodeFrame(new Uint8Array(256 * 256 * 3), TransferSyntax.explicitVrLittleEndian, { ...format, photometricInterpretation: 'YBR_RCT' }),
    ).rejects.toThrow(/only valid for JPEG 2000/);
  });

  it('rejects corrupt or mismatched JPEG 2000 frames and then still decodes good ones', async () => {
    const { transferSyntaxUid, format: j2kFormat, frames } = readDicom(j2kFiles[0] ?? '');
    const good = frames[2] ?? new Uint8Array();
    const expected = await decodeFrame(good, transferSyntaxUid, j2kFormat);
    const truncated = good.subarray(0, 200);
    await expect(decodeFrame(truncated, transferSyntaxUid, j2kFormat)).rejects.toThrow(CodecError);
    await expect(decodeFrame(good, transferSyntaxUid, { ...j2kFormat, rows: 240 })).rejects.toThrow(/256x256/);
    expect((await decodeFrame(good, transferSyntaxUid, j2kFormat)).data.equals(expected.data)).toBe(true);
  });

  it('rejects a corrupt JPEG-LS frame with CharLS\'s reason', async () => {
    const { transferSyntaxUid, format: lsFormat, frames } = readDicom('public/highdicom/sm_image_jpegls.dcm');
    const corrupt = Uint8Array.from([0xff, 0xd8, ...(frames[0] ?? new Uint8Array()).subarray(2, 20)]);
    await expect(decodeFrame(corrupt, transferSyntaxUid, lsFormat)).rejects.toThrow(/Frame could not be decoded: ./);
  });
});

describe('WASM memory', () => {
  it('does not grow OpenJPEG memory over hundreds of decodes (decoders and buffers are freed)', async () => {
    const { transferSyntaxUid, format, frames } = readDicom(j2kFiles[0] ?? '');
    const decodeMany = async (count: number): Promise<void> => {
      for (let i = 0; i < count; i++) {
        await decodeFrame(frames[i % frames.length] ?? new Uint8Array(), transferSyntaxUid, format);
      }
    };
    await decodeMany(12);
    const before = (await openJpeg.readMemoryBytes());
    // Leaking a frame's buffers (~280 KB) per decode would outgrow the 50 MB initial heap.
    await decodeMany(240);
    expect((await openJpeg.readMemoryBytes())).toBe(before);
  }, 30_000);
});
