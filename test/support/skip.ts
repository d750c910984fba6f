/**
 * How a test file reaches the shared Orthanc started by global-setup.ts, and skips cleanly without one:
 *
 * ```ts
 * describeWithOrthanc('DICOMweb source', ({ dicomwebUrl }) => {
 *   test('lists slides', async () => { ... fetch(`${dicomwebUrl}/series`) ... });
 * });
 * ```
 */
import { describe, inject, test } from 'vitest';

/** Where the shared Orthanc answers. */
export interface OrthancUrls {
  /** REST root, `http://127.0.0.1:PORT`. */
  readonly orthancUrl: string;
  /** DICOMweb root, `orthancUrl + '/dicom-web'`. */
  readonly dicomwebUrl: string;
}

function injectOrthanc(): OrthancUrls | undefined {
  const orthancUrl = inject('orthancUrl');
  const dicomwebUrl = inject('dicomwebUrl');
  return orthancUrl === undefined || dicomwebUrl === undefined ? undefined : { orthancUrl, dicomwebUrl };
}

/** The shared Orthanc, or undefined when it is not installed (for tests that branch themselves). */
export const orthanc: OrthancUrls | undefined = injectOrthanc();

/** True when the shared Orthanc is running. */
export const hasOrthanc = orthanc !== undefined;

/**
 * A `describe` whose body gets the shared Orthanc's URLs, typed as present. Without Orthanc the suite
 * holds one skipped test that says why, so the report shows the reason instead of silently passing.
 */
export function describeWithOrthanc(name: string, factory: (urls: OrthancUrls) => void): void {
  const urls = orthanc;
  if (urls === undefined) {
    describe.skip(name, () => {
      test('needs Orthanc: apt-get install orthanc orthanc-dicomweb orthanc-wsi', () => {});
    });
    return;
  }
  describe(name, () => factory(urls));
}
