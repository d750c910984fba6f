import { CodecError } from '../../errors.js';
import type { ColourModel } from './colour.js';
import type { SlideInstance } from '../../wsi/index.js';
import type { FramePixelFormat } from './types.js';

/** The pixel description of an instance's frames, as the decoders take it. */
export function computeFramePixelFormat(instance: SlideInstance): FramePixelFormat {
  return {
    rows: instance.frameHeightPx,
    columns: instance.frameWidthPx,
    samplesPerPixel: instance.samplesPerPixel,
    bitsAllocated: instance.bitsAllocated,
    bitsStored: instance.bitsStored,
    pixelRepresentation: instance.pixelRepresentation,
    photometricInterpretation: instance.photometricInterpretation,
    planarConfiguration: instance.planarConfiguration,
  };
}

const SUPPORTED_PHOTOMETRICS: ReadonlySet<string> = new Set([
  'RGB',
  'YBR_FULL',
  'YBR_FULL_422',
  'YBR_ICT',
  'YBR_RCT',
  'MONOCHROME1',
  'MONOCHROME2',
]);

/**
 * Rejects pixel descriptions this module cannot decode, up front and with the reason, rather than
 * producing garbage pixels. The values come from the PACS's metadata, so this is a data problem.
 */
export function checkPixelFormat(format: FramePixelFormat): void {
  const { rows, columns, samplesPerPixel, bitsAllocated, bitsStored, pixelRepresentation } = format;
  const photometric = format.photometricInterpretation;
  const problems: string[] = [];
  if (!isPositiveInteger(rows) || !isPositiveInteger(columns)) {
    problems.push(`frame size ${columns}x${rows} is not positive whole pixels`);
  }
  if (samplesPerPixel !== 1 && samplesPerPixel !== 3) {
    problems.push(`${samplesPerPixel} samples per pixel (1 or 3 supported)`);
  }
  if (bitsAllocated !== 8 && bitsAllocated !== 16) {
    problems.push(`BitsAllocated ${bitsAllocated} (8 or 16 supported)`);
  }
  if (!Number.isInteger(bitsStored) || bitsStored < 1 || bitsStored > bitsAllocated) {
    problems.push(`BitsStored ${bitsStored} with BitsAllocated ${bitsAllocated}`);
  }
  if (pixelRepresentation !== 0 && pixelRepresentation !== 1) {
    problems.push(`PixelRepresentation ${pixelRepresentation}`);
  }
  if (!SUPPORTED_PHOTOMETRICS.has(photometric)) {
    problems.push(`PhotometricInterpretation ${JSON.stringify(photometric)}`);
  } else if (photometric.startsWith('MONOCHROME') !== (samplesPerPixel === 1)) {
    problems.push(`${photometric} with ${samplesPerPixel} samples per pixel`);
  }
  if (problems.length > 0) {
    throw new CodecError(`Unsupported frame pixel format: ${problems.join('; ')}`);
  }
}

/**
 * What the samples a decoder returns mean. `isDecoderOutputRgb` is true when the codec itself has
 * already produced RGB whatever the photometric says: libjpeg converts YCbCr, and OpenJPEG inverts
 * the multiple component transform. YBR_ICT/YBR_RCT only exist for JPEG 2000 with that transform
 * (PS3.3 C.7.6.3.1.2), so their decoded samples are RGB too.
 */
export function computeColourModel(format: FramePixelFormat, isDecoderOutputRgb: boolean): ColourModel {
  switch (format.photometricInterpretation) {
    case 'MONOCHROME1':
      return 'monochrome1';
    case 'MONOCHROME2':
      return 'monochrome2';
    case 'YBR_FULL':
    case 'YBR_FULL_422':
      return isDecoderOutputRgb ? 'rgb' : 'ybr-full';
    default:
      return 'rgb';
  }
}

function isPositiveInteger(value: number): boolean {
  return Number.isInteger(value) && value > 0;
}
