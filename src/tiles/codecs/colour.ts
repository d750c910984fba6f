import { CodecError } from '../../errors.js';
import type { DecodedSamples, RgbImage } from './types.js';

/**
 * What the (8-bit) samples a codec handed back mean:
 * - `rgb`: already R, G, B;
 * - `ybr-full`: Y, Cb, Cr, full range (PS3.3 C.7.6.3.1.2), to be converted;
 * - `monochrome1`/`monochrome2`: one grey sample, 0 = white / 0 = black.
 */
export type ColourModel = 'rgb' | 'ybr-full' | 'monochrome1' | 'monochrome2';

/**
 * Converts decoded samples of any supported depth and layout to 8-bit interleaved RGB. Samples that
 * already are 8-bit interleaved RGB are handed on without a copy (a 256 px tile is 192 KiB, and an
 * embedding job decodes thousands a second): the image then shares their memory, so treat it as read-only.
 */
export function computeRgbImage(samples: DecodedSamples, colour: ColourModel): RgbImage {
  const { widthPx, heightPx, samplesPerPixel } = samples;
  const isMonochrome = colour === 'monochrome1' || colour === 'monochrome2';
  if (isMonochrome !== (samplesPerPixel === 1)) {
    throw new CodecError(`${samplesPerPixel} samples per pixel cannot be ${colour}`);
  }
  const bytes = computeInterleaved8Bit(samples);
  const pixelCount = widthPx * heightPx;
  if (colour === 'rgb') {
    const view = bytes.subarray(0, pixelCount * 3);
    return { data: Buffer.from(view.buffer, view.byteOffset, view.byteLength), widthPx, heightPx, channels: 3 };
  }
  const rgb = Buffer.allocUnsafe(pixelCount * 3);
  if (isMonochrome) {
    const inversion = colour === 'monochrome1' ? 0xff : 0;
    for (let pixel = 0; pixel < pixelCount; pixel++) {
      const grey = (bytes[pixel] ?? 0) ^ inversion;
      rgb[pixel * 3] = grey;
      rgb[pixel * 3 + 1] = grey;
      rgb[pixel * 3 + 2] = grey;
    }
  } else {
    convertYbrFullToRgb(bytes, rgb, pixelCount);
  }
  return { data: rgb, widthPx, heightPx, channels: 3 };
}

/**
 * Y, Cb, Cr → R, G, B with the inverse of the BT.601 full-range matrix PS3.3 C.7.6.3.1.2 gives
 * for YBR_FULL (the same as JFIF's), rounded and clamped to 0-255.
 */
function convertYbrFullToRgb(ybr: Uint8Array, rgb: Buffer, pixelCount: number): void {
  for (let pixel = 0; pixel < pixelCount; pixel++) {
    const i = pixel * 3;
    const y = ybr[i] ?? 0;
    const cb = (ybr[i + 1] ?? 0) - 128;
    const cr = (ybr[i + 2] ?? 0) - 128;
    rgb[i] = clampByte(y + 1.402 * cr);
    rgb[i + 1] = clampByte(y - 0.344136 * cb - 0.714136 * cr);
    rgb[i + 2] = clampByte(y + 1.772 * cb);
  }
}

function clampByte(value: number): number {
  return value <= 0 ? 0 : value >= 255 ? 255 : Math.round(value);
}

/**
 * One byte per sample, pixel-interleaved. Deeper or signed samples are scaled linearly from their
 * full stored range (bitsStored) to 0-255: whole-slide images carry no VOI LUT to window with.
 * Returns a view of the input when it already is 8-bit unsigned interleaved (the caller copies).
 */
function computeInterleaved8Bit(samples: DecodedSamples): Uint8Array {
  const { data, widthPx, heightPx, samplesPerPixel, bytesPerSample, bitsStored, isSigned } = samples;
  const sampleCount = widthPx * heightPx * samplesPerPixel;
  if (data.byteLength < sampleCount * bytesPerSample) {
    throw new CodecError(
      `Frame has ${data.byteLength} bytes, ${sampleCount * bytesPerSample} needed for ` +
        `${widthPx}x${heightPx} pixels of ${samplesPerPixel} x ${bytesPerSample * 8}-bit samples`,
    );
  }
  const isPlanar = samples.isPlanar && samplesPerPixel > 1;
  const isIdentity = bytesPerSample === 1 && bitsStored === 8 && !isSigned;
  if (isIdentity && !isPlanar) return data;

  const lut = computeTo8BitLut(bitsStored, isSigned);
  const mask = (1 << bitsStored) - 1;
  const out = new Uint8Array(sampleCount);
  const planeSamples = widthPx * heightPx;
  for (let sample = 0; sample < sampleCount; sample++) {
    // Source index: planar data holds sample s of pixel p at s * planeSamples + p.
    const source = isPlanar
      ? (sample % samplesPerPixel) * planeSamples + Math.floor(sample / samplesPerPixel)
      : sample;
    let value: number;
    if (bytesPerSample === 1) {
      value = data[source] ?? 0;
    } else {
      const low = data[source * 2] ?? 0;
      const high = data[source * 2 + 1] ?? 0;
      value = samples.isBigEndian ? (low << 8) | high : (high << 8) | low;
    }
    out[sample] = lut[value & mask] ?? 0;
  }
  return out;
}

/**
 * Maps every stored value (masked to bitsStored) to 0-255. Two's complement samples are first moved
 * to offset binary by flipping the sign bit, so the most negative value becomes 0.
 */
function computeTo8BitLut(bitsStored: number, isSigned: boolean): Uint8Array {
  const valueCount = 1 << bitsStored;
  const maxValue = valueCount - 1;
  const signBit = isSigned ? 1 << (bitsStored - 1) : 0;
  const lut = new Uint8Array(valueCount);
  for (let stored = 0; stored < valueCount; stored++) {
    lut[stored] = Math.round(((stored ^ signBit) * 255) / maxValue);
  }
  return lut;
}
