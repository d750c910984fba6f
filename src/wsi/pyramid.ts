/**
 * A series' instances → a slide: pyramid levels, label and overview. Pure: metadata in, plain data out.
 */
import { InvalidMetadataError, GatewayError } from '../errors.js';
import { VL_WSI_SOP_CLASS, type WsiInstance } from './instance.js';
import { computeTileIndex, type IndexedInstance } from './tile-index.js';
import type { AssociatedImage, Level, Slide, SlideInstance } from './types.js';

/** The series holds no VL Whole Slide Microscopy volume image (an annotation series, a CT, ...). */
export class NotASlideError extends GatewayError {
  constructor(message: string) {
    super('NOT_A_SLIDE', 400, message);
  }
}

type Flavor = 'VOLUME' | 'LABEL' | 'OVERVIEW';

/**
 * ImageType value 3 says what an image is (PS3.3 C.8.12.4.1.1). We trust it for LABEL and OVERVIEW,
 * but never value 1 (ORIGINAL/DERIVED): some converters write ORIGINAL on every level, so level 0 is
 * the largest image, not the ORIGINAL one. THUMBNAIL images are small pyramid levels. A missing or
 * unknown flavor (no ImageType at all, seen in real converter output) is taken as VOLUME.
 */
function flavorOf(instance: WsiInstance): Flavor {
  const flavor = instance.imageType[2];
  if (flavor === 'LABEL' || flavor === 'OVERVIEW') return flavor;
  return 'VOLUME';
}

function toSlideInstance(instance: WsiInstance): SlideInstance {
  return {
    sopInstanceUid: instance.sopInstanceUid,
    transferSyntaxUid: instance.transferSyntaxUid,
    numberOfFrames: instance.numberOfFrames,
    frameWidthPx: instance.frameWidthPx,
    frameHeightPx: instance.frameHeightPx,
    samplesPerPixel: instance.samplesPerPixel,
    photometricInterpretation: instance.photometricInterpretation,
    bitsAllocated: instance.bitsAllocated,
    bitsStored: instance.bitsStored,
    pixelRepresentation: instance.pixelRepresentation,
    planarConfiguration: instance.planarConfiguration,
  };
}

/** µm per pixel from PixelSpacing, else from the imaged volume; undefined when neither is there. */
function computeMpp(instance: WsiInstance): { mppX: number | undefined; mppY: number | undefined } {
  if (instance.pixelSpacingMm) {
    // PixelSpacing is [row spacing (between rows: y), column spacing (between columns: x)], in mm.
    return { mppX: instance.pixelSpacingMm[1] * 1000, mppY: instance.pixelSpacingMm[0] * 1000 };
  }
  const { imagedVolumeWidthMm: w, imagedVolumeHeightMm: h } = instance;
  if (w && h && w > 0 && h > 0) return { mppX: (w * 1000) / instance.totalWidthPx, mppY: (h * 1000) / instance.totalHeightPx };
  return { mppX: undefined, mppY: undefined };
}

function groupBySize(members: IndexedInstance[]): IndexedInstance[][] {
  const groups = new Map<string, IndexedInstance[]>();
  for (const m of members) {
    const key = `${m.instance.totalWidthPx}x${m.instance.totalHeightPx}`;
    const group = groups.get(key);
    if (group) group.push(m);
    else groups.set(key, [m]);
  }
  return [...groups.values()];
}

function checkTileSizes(group: IndexedInstance[]): void {
  const first = group[0]!.instance;
  for (const { instance } of group) {
    if (instance.frameWidthPx !== first.frameWidthPx || instance.frameHeightPx !== first.frameHeightPx) {
      throw new InvalidMetadataError(
        `Instances of one ${first.totalWidthPx}x${first.totalHeightPx} image have different tile sizes ` +
          `(${first.frameWidthPx}x${first.frameHeightPx} and ${instance.frameWidthPx}x${instance.frameHeightPx})`,
      );
    }
  }
}

function computeAssociated(kind: 'label' | 'overview', members: IndexedInstance[]): AssociatedImage | undefined {
  // Several labels (rare): take the largest, the most legible one.
  const sorted = groupBySize(members).sort((a, b) => b[0]!.instance.totalWidthPx - a[0]!.instance.totalWidthPx);
  const group = sorted[0];
  if (!group) return undefined;
  checkTileSizes(group);
  const { image } = computeTileIndex(group);
  return { ...image, kind, sopInstanceUids: group.map((m) => m.instance.sopInstanceUid) };
}

/**
 * Groups a series' instances into a slide. Throws NotASlideError when there is no VL WSI volume
 * image, and InvalidMetadataError naming the attributes when metadata lacks what geometry needs.
 */
export function computeSlide(studyUid: string, seriesUid: string, allInstances: readonly WsiInstance[]): Slide {
  const instances = allInstances.filter((i) => i.sopClassUid === undefined || i.sopClassUid === VL_WSI_SOP_CLASS);
  if (instances.length === 0) {
    throw new NotASlideError('The series holds no VL Whole Slide Microscopy image');
  }
  const missing = [...new Set(instances.flatMap((i) => i.missing))];
  if (missing.length > 0) {
    throw new InvalidMetadataError(
      `The PACS's metadata for this series lacks ${missing.join(', ')}. ` +
        'If the PACS is Orthanc, set the DICOMweb plugin\'s "SeriesMetadata" to "Full".',
    );
  }
  for (const i of instances) {
    if (i.frameWidthPx <= 0 || i.frameHeightPx <= 0 || i.totalWidthPx <= 0 || i.totalHeightPx <= 0) {
      throw new InvalidMetadataError('An instance of this series has a zero image or frame size');
    }
  }

  const indexed: IndexedInstance[] = instances.map((instance, instanceIndex) => ({ instance, instanceIndex }));
  const byFlavor = (f: Flavor): IndexedInstance[] => indexed.filter((m) => flavorOf(m.instance) === f);
  const volumeGroups = groupBySize(byFlavor('VOLUME')).sort(
    (a, b) => b[0]!.instance.totalWidthPx * b[0]!.instance.totalHeightPx - a[0]!.instance.totalWidthPx * a[0]!.instance.totalHeightPx,
  );
  if (volumeGroups.length === 0) {
    throw new NotASlideError('The series holds only label or overview images, no pyramid');
  }

  const notes: string[] = [];
  let maxPlanes = 1;
  let maxPaths = 1;
  const base = volumeGroups[0]![0]!.instance;
  const baseMpp = computeMpp(base);
  const levels: Level[] = volumeGroups.map((group, index) => {
    checkTileSizes(group);
    const { image, focalPlaneCount, opticalPathCount } = computeTileIndex(group);
    maxPlanes = Math.max(maxPlanes, focalPlaneCount);
    maxPaths = Math.max(maxPaths, opticalPathCount);
    const downsample = base.totalWidthPx / image.widthPx;
    const downsampleY = base.totalHeightPx / image.heightPx;
    const own = computeMpp(group[0]!.instance);
    return {
      ...image,
      index,
      downsample,
      downsampleY,
      // A level without its own spacing inherits level 0's, scaled by the exact ratio.
      mppX: own.mppX ?? (baseMpp.mppX === undefined ? undefined : baseMpp.mppX * downsample),
      mppY: own.mppY ?? (baseMpp.mppY === undefined ? undefined : baseMpp.mppY * downsampleY),
      sopInstanceUids: group.map((m) => m.instance.sopInstanceUid),
    };
  });
  if (maxPlanes > 1) notes.push(`${maxPlanes} focal planes; showing the first`);
  if (maxPaths > 1) notes.push(`${maxPaths} optical paths; showing the first`);
  if (levels[0]!.mppX === undefined) notes.push('No pixel spacing in the metadata: physical sizes are unknown');

  return {
    studyUid,
    seriesUid,
    studyDescription: base.studyDescription,
    seriesDescription: base.seriesDescription,
    levels,
    label: computeAssociated('label', byFlavor('LABEL')),
    overview: computeAssociated('overview', byFlavor('OVERVIEW')),
    instances: instances.map(toSlideInstance),
    notes,
  };
}
