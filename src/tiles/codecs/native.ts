import { CodecError } from '../../errors.js';
import type { DecodedSamples, FramePixelFormat } from './types.js';

/**
 * Describes an uncompressed (native) frame's bytes as samples (PS3.5 8.1). 16-bit samples are read
 * in the transfer syntax's byte order; 8-bit ones have none. YBR_FULL_422 is expanded to one Cb/Cr
 * pair per pixel, so every result is full-resolution.
 */
export function readNativeSamples(
  data: Uint8Array,
  format: FramePixelFormat,
  isBigEndian: boolean,
): DecodedSamples {
  const { rows, columns, samplesPerPixel, bitsAllocated, bitsStored } = format;
  if (format.photometricInterpretation === 'YBR_FULL_422') {
    return expandYbrFull422(data, format);
  }
  const samples: DecodedSamples = {
    data,
    widthPx: columns,
    heightPx: rows,
    samplesPerPixel: samplesPerPixel === 1 ? 1 : 3,
    bytesPerSample: bitsAllocated === 16 ? 2 : 1,
    isBigEndian,
    bitsStored,
    isSigned: format.pixelRepresentation === 1,
    isPlanar: format.planarConfiguration === 1,
  };
  const neededBytes = rows * columns * samplesPerPixel * samples.bytesPerSample;
  if (data.byteLength < neededBytes) {
    throw new CodecError(`Native frame has ${data.byteLength} bytes, ${neededBytes} needed`);
  }
  return samples;
}

/**
 * Uncompressed YBR_FULL_422 stores two luminance samples per chrominance pair along a row:
 * Y1 Y2 Cb Cr, Y3 Y4 Cb Cr, ... (PS3.3 C.7.6.3.1.2), always interleaved (Planar Configuration 0).
 * Each pair's Cb and Cr serve both pixels, as the standard samples them, without interpolation.
 */
function expandYbrFull422(data: Uint8Array, format: FramePixelFormat): DecodedSamples {
  const { rows, columns } = format;
  if (format.bitsAllocated !== 8 || format.samplesPerPixel !== 3) {
    throw new CodecError('Uncompressed YBR_FULL_422 is supported with 3 samples of 8 bits only');
  }
  if (columns % 2 !== 0) {
    throw new CodecError(`Uncompressed YBR_FULL_422 needs an even number of columns, not ${columns}`);
  }
  const pixelCount = rows * columns;
  const neededBytes = pixelCount * 2;
  if (data.byteLength < neededBytes) {
    throw new CodecError(`YBR_FULL_422 frame has ${data.byteLength} bytes, ${neededBytes} needed`);
  }
  const ybr = new Uint8Array(pixelCount * 3);
  for (let pair = 0; pair < pixelCount / 2; pair++) {
    const source = pair * 4;
    const target = pair * 6;
    const cb = data[source + 2] ?? 0;
    const cr = data[source + 3] ?? 0;
    ybr[target] = data[source] ?? 0;
    ybr[target + 1] = cb;
    ybr[target + 2] = cr;
    ybr[target + 3] = data[source + 1] ?? 0;
    ybr[target + 4] = cb;
    ybr[target + 5] = cr;
  }
  return {
    data: ybr,
    widthPx: columns,
    heightPx: rows,
    samplesPerPixel: 3,
    bytesPerSample: 1,
    isBigEndian: false,
    bitsStored: 8,
    isSigned: false,
    isPlanar: false,
  };
}
