/**
 * The source interface and the records it returns. Instances are parsed into `WsiInstance` (defined by
 * the slide model in wsi/, which depends on nothing); hex tags stop at the source.
 */
import type { WsiInstance } from '../wsi/instance.js';

export type { FramePositions, WsiInstance } from '../wsi/instance.js';

/** One series found in the source, as a QIDO-RS search (or a folder scan) describes it. */
export interface SeriesSummary {
  studyUid: string;
  seriesUid: string;
  modality: string | undefined;
  studyDescription: string | undefined;
  seriesDescription: string | undefined;
  studyDate: string | undefined;
  seriesNumber: number | undefined;
  instanceCount: number | undefined;
  /** Patient data: shown only when the operator sets GATEWAY_SHOW_PATIENT_DATA; never logged. */
  patientName: string | undefined;
  patientId: string | undefined;
}

/** One frame as the source returned it. */
export interface Frame {
  /** 1-based, as in DICOM (PS3.18 frame lists). */
  frameNumber: number;
  /** The frame's bytes in `transferSyntaxUid`. */
  data: Buffer;
  transferSyntaxUid: string;
}

/** Addresses one instance of a series. */
export interface InstanceRef {
  studyUid: string;
  seriesUid: string;
  sopInstanceUid: string;
}

export interface ListSeriesOptions {
  /** Index of the first series to return. @default 0 */
  offset?: number;
  /** Most series to return. @default 100 */
  limit?: number;
  signal?: AbortSignal;
}

/**
 * The only way in for images. A DICOMweb PACS and a local folder of Part 10 files implement it; the rest
 * of the gateway does not know which one it talks to.
 */
export interface SlideSource {
  readonly kind: 'dicomweb' | 'folder';
  /** A description for logs (the PACS base URL without credentials, or the folder path). */
  readonly description: string;
  /** Series whose modality is SM. */
  listSeries(options?: ListSeriesOptions): Promise<SeriesSummary[]>;
  /**
   * Every instance of the series, with the attributes a slide needs. Implementations fetch per-instance
   * metadata when the series metadata is incomplete. Throws NotFoundError for an unknown series.
   */
  readSeries(studyUid: string, seriesUid: string, signal?: AbortSignal): Promise<WsiInstance[]>;
  /**
   * Frames of one instance, in the order asked, as stored (or in `transferSyntaxUid` when given and the
   * source can transcode). Many frames per call: the request count, not the bytes, sets a PACS's speed.
   */
  readFrames(ref: InstanceRef, frameNumbers: readonly number[], options?: ReadFramesOptions): Promise<Frame[]>;
  /**
   * Every frame of one instance in a single request (WADO-RS retrieve instance, as stored). Orthanc
   * parses the whole file for every frame request, so for a PACS this is by far the cheapest way to
   * read most of an instance: measured 23,000-42,000 frames/s against 1,725 for 50-frame requests.
   * The frames may be views into one buffer holding the instance: keep them, or drop them, together.
   */
  readAllFrames(ref: InstanceRef, layout: InstanceLayout, signal?: AbortSignal): Promise<Frame[]>;
  /** Whether the source answers at all (for /readyz). */
  ping(signal?: AbortSignal): Promise<void>;
  close(): Promise<void>;
}

/**
 * One request to the PACS as it ended, for whoever watches the source (metrics). `seconds` runs until the
 * response headers arrived (or the request failed); the body streams on after it.
 */
export interface UpstreamRequestEvent {
  /** What the request was for: 'series search', 'series metadata', 'instance metadata', 'frames', 'instance'. */
  operation: string;
  /** 'aborted' when the caller's own signal stopped it (a cancelled job): not the PACS's fault. */
  outcome: 'ok' | 'error' | 'aborted';
  /** Why it failed, when it did. */
  errorKind: 'timeout' | 'http_4xx' | 'http_5xx' | 'network' | undefined;
  seconds: number;
}

/** Called once per PACS request as it ends; must not throw. */
export type UpstreamRequestObserver = (event: UpstreamRequestEvent) => void;

export interface ReadFramesOptions {
  /** The transfer syntax the instance is stored in, when known: asked for explicitly. */
  transferSyntaxUid?: string;
  signal?: AbortSignal;
}

/** What reading a whole instance's frames needs to know. */
export interface InstanceLayout {
  numberOfFrames: number;
  /** Bytes of one native (uncompressed) frame: rows x columns x samples x bytes per sample. */
  frameBytes: number;
}
