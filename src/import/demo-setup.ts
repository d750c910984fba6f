/**
 * The first-run experience: with no PACS and an empty slide folder, `npm start` writes the demo slide
 * into DICOM_DIR/demo/ before serving, so a newcomer sees slides, tiles and clusters at once.
 */
import { readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { writeDemoSlide, type DemoSlideOptions } from './demo-slide.js';

export interface DemoSetupOptions extends DemoSlideOptions {
  dicomDir: string;
  /** GATEWAY_DEMO. */
  mode: 'auto' | 'true' | 'false';
  /** DICOMWEB_URL is set: the PACS is the source, a demo in the folder would never be seen. */
  servingPacs: boolean;
  logger: Pick<Logger, 'info'>;
}

/** True when `dir` holds at least one file (at any depth); false when it is empty or missing. */
async function hasAnyFile(dir: string): Promise<boolean> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [];
    throw error;
  });
  return entries.some((entry) => entry.isFile());
}

/**
 * Writes the demo slide when the mode allows and it is not there yet; returns what it did. `auto`:
 * only into an empty or missing DICOM_DIR (a second start finds the demo and leaves it; a folder
 * with the user's own slides is left alone). `true`: whenever DICOM_DIR/demo/ is empty. Written into a
 * scratch folder and renamed, so an interrupted start leaves no half pyramid that would count as done.
 */
export async function ensureDemoSlide(options: DemoSetupOptions): Promise<'written' | 'present' | 'skipped'> {
  const { dicomDir, mode, servingPacs, logger, ...slideOptions } = options;
  const demoDir = join(dicomDir, 'demo');
  if (mode === 'false' || servingPacs) return 'skipped';
  if (await hasAnyFile(demoDir)) return 'present';
  if (mode === 'auto' && (await hasAnyFile(dicomDir))) return 'skipped';
  const scratch = join(dicomDir, `.demo-${process.pid}.partial`);
  logger.info(`No slides in ${dicomDir}: generating a synthetic demo slide into ${demoDir} (set GATEWAY_DEMO=false to skip)`);
  const started = performance.now();
  try {
    const written = await writeDemoSlide(scratch, slideOptions);
    await rm(demoDir, { recursive: true, force: true });
    await rename(scratch, demoDir);
    const level0 = written.levels[0]!;
    logger.info(
      { durationMs: Math.round(performance.now() - started), widthPx: level0.widthPx, heightPx: level0.heightPx, levels: written.levels.length },
      `demo slide written in ${((performance.now() - started) / 1000).toFixed(1)} s`,
    );
    return 'written';
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
