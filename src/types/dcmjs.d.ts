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
  const dcmjs: {
    data: {
      DicomMessage: {
        readFile(buffer: ArrayBuffer, options?: ReadOptions): DicomDict;
      };
    };
  };
  export default dcmjs;
}
