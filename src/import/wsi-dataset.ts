/**
 * The attributes of one VL Whole Slide Microscopy instance the writer produces (PS3.3 A.32.8), as a
 * dataset keyed by DICOM keyword for dcmjs. Pure: everything, clock and UIDs included, comes in.
 *
 * Only what the IOD requires, plus what viewers read: the modules are listed in order below. There is no
 * real specimen, so the Specimen Module (C.7.6.22, whose Specimen Description Sequence is Type 1) holds
 * one synthetic item named after the container, and type 2 attributes are written empty.
 */
import { randomUUID } from 'node:crypto';
import { VL_WSI_SOP_CLASS } from '../wsi/instance.js';

/** A dataset keyed by DICOM keyword; sequences are arrays of such datasets. */
export type Dataset = Record<string, unknown>;

/** What every instance of one written series shares. */
export interface SeriesAttributes {
  studyUid: string;
  seriesUid: string;
  frameOfReferenceUid: string;
  dimensionOrganizationUid: string;
  specimenUid: string;
  seriesNumber: number;
  patientName: string;
  patientId: string;
  studyDescription: string | undefined;
  seriesDescription: string | undefined;
  containerIdentifier: string;
  /** Study, series, content and acquisition date/time (written in UTC). */
  createdAt: Date;
  /** The sRGB ICC profile the pixels are in (Optical Path Module, C.8.12.5). */
  iccProfile: Buffer;
  /** Level 0's physical size in mm: the imaged volume, the same for every level. */
  imagedWidthMm: number;
  imagedHeightMm: number;
}

/** What differs between the instances of the series. */
export interface InstanceAttributes {
  sopInstanceUid: string;
  instanceNumber: number;
  /** ImageType value 3 (PS3.3 C.8.12.4.1.1). */
  flavor: 'VOLUME' | 'LABEL' | 'OVERVIEW';
  /** ORIGINAL (level 0, label, overview) or DERIVED (resampled levels). */
  isOriginal: boolean;
  widthPx: number;
  heightPx: number;
  tileWidthPx: number;
  tileHeightPx: number;
  frameCount: number;
  /** PixelSpacing in mm, [between rows (y), between columns (x)]; volume levels only. */
  pixelSpacingMm: readonly [number, number] | undefined;
  /** Uncompressed bytes / compressed bytes (LossyImageCompressionRatio). */
  compressionRatio: number;
}

/** Section thickness assumed for a synthetic slide: 1 µm (SliceThickness is in mm, ImagedVolumeDepth in µm). */
const SECTION_THICKNESS_MM = 0.001;

/** A new UID under the 2.25 root: a random UUID as one decimal integer (PS3.5 B.2). */
export function createUid(): string {
  return `2.25.${BigInt(`0x${randomUUID().replaceAll('-', '')}`).toString()}`;
}

/** A number that fits a DS value (16 characters at most, PS3.5 Table 6.2-1). */
export function roundForDs(value: number): number {
  for (let digits = 15; digits > 1; digits--) {
    const rounded = Number(value.toPrecision(digits));
    if (String(rounded).length <= 16) return rounded;
  }
  return Number(value.toPrecision(1));
}

function code(value: string, scheme: string, meaning: string): Dataset {
  return { CodeValue: value, CodingSchemeDesignator: scheme, CodeMeaning: meaning };
}

/** DA, TM and DT values of a moment, in UTC. */
function formatDateTime(at: Date): { date: string; time: string; dateTime: string } {
  const iso = at.toISOString(); // 2024-05-01T12:34:56.789Z
  const date = iso.slice(0, 10).replaceAll('-', '');
  const time = iso.slice(11, 19).replaceAll(':', '');
  return { date, time, dateTime: `${date}${time}+0000` };
}

/** The full dataset of one instance, file meta excepted (see part10-writer.ts). */
export function computeWsiDataset(series: SeriesAttributes, instance: InstanceAttributes): Dataset {
  const { date, time, dateTime } = formatDateTime(series.createdAt);
  const isVolume = instance.flavor === 'VOLUME';
  const imageType = [instance.isOriginal ? 'ORIGINAL' : 'DERIVED', 'PRIMARY', instance.flavor, instance.isOriginal ? 'NONE' : 'RESAMPLED'];
  // Labels and overviews may show handwriting or a barcode: flagged as burned-in, the safe answer.
  const showsLabel = isVolume ? 'NO' : 'YES';
  const sharedGroup: Dataset = {
    WholeSlideMicroscopyImageFrameTypeSequence: [{ FrameType: imageType }],
    OpticalPathIdentificationSequence: [{ OpticalPathIdentifier: '1' }],
  };
  if (instance.pixelSpacingMm) {
    sharedGroup.PixelMeasuresSequence = [
      { PixelSpacing: instance.pixelSpacingMm.map(roundForDs), SliceThickness: SECTION_THICKNESS_MM },
    ];
  }
  // Image Orientation (Slide) 0\-1\0\-1\0\0, the usual scanner value: along a row the slide's Y
  // decreases, down a column its X decreases. The origin (the top-left pixel, in mm) is put so that the
  // whole image lies at non-negative slide coordinates.
  const origin = {
    XOffsetInSlideCoordinateSystem: roundForDs(series.imagedHeightMm),
    YOffsetInSlideCoordinateSystem: roundForDs(series.imagedWidthMm),
  };

  return {
    // SOP Common (C.12.1); UTF-8 so that descriptions may hold any character.
    SpecificCharacterSet: 'ISO_IR 192',
    SOPClassUID: VL_WSI_SOP_CLASS,
    SOPInstanceUID: instance.sopInstanceUid,
    // Patient (C.7.1.1), General Study (C.7.2.1)
    PatientName: series.patientName,
    PatientID: series.patientId,
    PatientBirthDate: '',
    PatientSex: '',
    StudyInstanceUID: series.studyUid,
    StudyDate: date,
    StudyTime: time,
    ReferringPhysicianName: '',
    StudyID: '',
    AccessionNumber: '',
    ...(series.studyDescription === undefined ? {} : { StudyDescription: series.studyDescription }),
    // General Series (C.7.3.1), Frame of Reference (C.7.4.1)
    Modality: 'SM',
    SeriesInstanceUID: series.seriesUid,
    SeriesNumber: series.seriesNumber,
    SeriesDate: date,
    SeriesTime: time,
    ...(series.seriesDescription === undefined ? {} : { SeriesDescription: series.seriesDescription }),
    FrameOfReferenceUID: series.frameOfReferenceUid,
    PositionReferenceIndicator: 'SLIDE_CORNER',
    // General and Enhanced General Equipment (C.7.5.1, C.7.5.2)
    Manufacturer: 'wsi-gateway',
    ManufacturerModelName: 'wsi-gateway import',
    DeviceSerialNumber: 'NONE',
    SoftwareVersions: 'wsi-writer 1',
    // General Image (C.7.6.1), General Acquisition (C.7.10.1), Acquisition Context (C.7.6.14)
    InstanceNumber: instance.instanceNumber,
    ContentDate: date,
    ContentTime: time,
    AcquisitionDateTime: dateTime,
    TimezoneOffsetFromUTC: '+0000',
    AcquisitionContextSequence: [],
    // Whole Slide Microscopy Image (C.8.12.4) with Image Pixel (C.7.6.3)
    ImageType: imageType,
    ...(isVolume
      ? {
          ImagedVolumeWidth: series.imagedWidthMm,
          ImagedVolumeHeight: series.imagedHeightMm,
          ImagedVolumeDepth: SECTION_THICKNESS_MM * 1000,
        }
      : {}),
    TotalPixelMatrixColumns: instance.widthPx,
    TotalPixelMatrixRows: instance.heightPx,
    TotalPixelMatrixFocalPlanes: 1,
    TotalPixelMatrixOriginSequence: [origin],
    ImageOrientationSlide: [0, -1, 0, -1, 0, 0],
    SamplesPerPixel: 3,
    PhotometricInterpretation: 'YBR_FULL_422',
    PlanarConfiguration: 0,
    Rows: instance.tileHeightPx,
    Columns: instance.tileWidthPx,
    BitsAllocated: 8,
    BitsStored: 8,
    HighBit: 7,
    PixelRepresentation: 0,
    LossyImageCompression: '01',
    LossyImageCompressionRatio: roundForDs(instance.compressionRatio),
    LossyImageCompressionMethod: 'ISO_10918_1',
    AcquisitionDuration: 0,
    VolumetricProperties: 'VOLUME',
    SpecimenLabelInImage: showsLabel,
    BurnedInAnnotation: showsLabel,
    FocusMethod: 'AUTO',
    ExtendedDepthOfField: 'NO',
    // Multi-frame Functional Groups (C.7.6.16) and Dimension (C.7.6.17). TILED_FULL: frames fill the
    // total pixel matrix row by row, so neither per-frame positions nor a Dimension Index are needed.
    NumberOfFrames: instance.frameCount,
    SharedFunctionalGroupsSequence: [sharedGroup],
    DimensionOrganizationType: 'TILED_FULL',
    DimensionOrganizationSequence: [{ DimensionOrganizationUID: series.dimensionOrganizationUid }],
    // Specimen (C.7.6.22): one synthetic specimen on the container.
    ContainerIdentifier: series.containerIdentifier,
    IssuerOfTheContainerIdentifierSequence: [],
    ContainerTypeCodeSequence: [code('433466003', 'SCT', 'Microscope slide')],
    SpecimenDescriptionSequence: [
      {
        SpecimenIdentifier: series.containerIdentifier,
        SpecimenUID: series.specimenUid,
        IssuerOfTheSpecimenIdentifierSequence: [],
        SpecimenPreparationSequence: [],
      },
    ],
    // Optical Path (C.8.12.5): one brightfield path, pixels in sRGB.
    NumberOfOpticalPaths: 1,
    OpticalPathSequence: [
      {
        OpticalPathIdentifier: '1',
        IlluminationTypeCodeSequence: [code('111744', 'DCM', 'Brightfield illumination')],
        IlluminationColorCodeSequence: [code('414298005', 'SCT', 'Full Spectrum')],
        ICCProfile: toArrayBuffer(series.iccProfile),
        ColorSpace: 'SRGB',
      },
    ],
  };
}

function toArrayBuffer(bytes: Buffer): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}
