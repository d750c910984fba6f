// The part of dcmjs's API the gateway uses (dcmjs ships no type declarations).
declare module 'dcmjs' {
  interface DicomJsonElement {
    vr?: string;
    Value?: unknown[];
  }
  interface DicomDict {
    meta: Record<string, DicomJsonElement>;
    dict: Record<string, DicomJsonElement>;
    write(options?: Record<string, unknown>): ArrayBuffer;
  }
  interface ReadOptions {
    ignoreErrors?: boolean;
    untilTag?: string | null;
    includeUntilTagValue?: boolean;
    noCopy?: boolean;
  }
  /** A dictionary entry: tag as '(GGGG,EEEE)' and its VR. */
  interface DictionaryEntry {
    tag: string;
    vr: string;
  }
  const dcmjs: {
    data: {
      DicomMessage: {
        readFile(buffer: ArrayBuffer, options?: ReadOptions): DicomDict;
      };
      DicomDict: new (meta: Record<string, DicomJsonElement>) => DicomDict;
      DicomMetaDictionary: {
        /** Keyword → entry, e.g. nameMap.PatientName. */
        nameMap: Record<string, DictionaryEntry | undefined>;
        /** A dataset keyed by keyword (sequences as arrays of such datasets) → DICOM JSON keyed by tag. */
        denaturalizeDataset(dataset: Record<string, unknown>): Record<string, DicomJsonElement>;
      };
    };
  };
  export default dcmjs;
}
