/**
 * vitest globalSetup of the `integration` project: one Orthanc for the whole run, loaded with every
 * DICOM file in ../shared/wsi — the annotation object too, because a real PACS holds such things and
 * the gateway must ignore series that are not slides. Tests reach it through `inject('dicomwebUrl')`
 * (see skip.ts); without Orthanc installed they are skipped, never failed.
 */
import { execFileSync } from 'node:child_process';
import type { TestProject } from 'vitest/node';
import { findOrthancBinary, startOrthanc } from './orthanc.js';
import { listDicomFiles, sharedWsiDir } from './wsi-data.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Orthanc's REST root (`http://127.0.0.1:PORT`), or undefined when Orthanc is not installed. */
    orthancUrl: string | undefined;
    /** Orthanc's DICOMweb root (`orthancUrl + '/dicom-web'`), or undefined when Orthanc is not installed. */
    dicomwebUrl: string | undefined;
  }
}

export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  // The browser tests open the built viewer: build it from the sources under test (under a second).
  execFileSync(process.execPath, ['scripts/build-viewer.mjs'], { stdio: 'ignore' });
  if (findOrthancBinary() === undefined) {
    console.warn(
      'Orthanc not found: integration tests are skipped (apt-get install orthanc orthanc-dicomweb orthanc-wsi)',
    );
    project.provide('orthancUrl', undefined);
    project.provide('dicomwebUrl', undefined);
    return undefined;
  }
  const orthanc = await startOrthanc({ metadataMode: 'Full' });
  try {
    await orthanc.upload(await listDicomFiles(sharedWsiDir));
  } catch (error) {
    await orthanc.stop();
    throw error;
  }
  project.provide('orthancUrl', orthanc.baseUrl);
  project.provide('dicomwebUrl', orthanc.dicomwebUrl);
  return async function stopOrthanc() {
    await orthanc.stop();
  };
}
