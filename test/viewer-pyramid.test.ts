/**
 * A pyramid that does not halve (downsamples 1, 3 and 10.5, tiles of 256, 200 and 128 px), written at
 * test time by the project's own DICOM writer and served from a folder: at each level's own zoom the
 * screen equals that level's tiles pixel for pixel, and at zooms between levels nothing shows through.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeInBrowser, hideChrome, launchChromium, screenshotPixels, startGatewayServer, openTestPage, type GatewayServer, type PageProblems } from './support/browser.js';
import { meanAbsDiff, worstLineDiff, type Pixels } from './support/reference.js';
import { writeNonPowerOfTwoSlide, type SyntheticSlide } from './support/synthetic-slide.js';
import { alignToScreenPixels, levelZeroToPage, openSlide, readLevelRegion, setView } from './support/viewer-page.js';

/** The stage's background in these tests: a colour the test pattern never comes near, so gaps show. */
const GAP_RGB = [0, 255, 0] as const;

describeInBrowser('non-power-of-2 pyramid in the viewer', () => {
  let dir: string;
  let slide: SyntheticSlide;
  let slideId: string;
  let gateway: GatewayServer;
  let browser: Browser;
  let page: Page;
  let problems: PageProblems;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'npot-'));
    slide = await writeNonPowerOfTwoSlide(dir);
    slideId = `${slide.studyUid}/${slide.seriesUid}`;
    [gateway, browser] = await Promise.all([startGatewayServer({ DICOM_DIR: dir }), launchChromium()]);
    ({ page, problems } = await openTestPage(browser));
    // WebGL, OpenSeadragon's default drawer: it draws frames 1:1 (see viewer-slide.test.ts).
    await openSlide(page, gateway.url, slideId, undefined, 'webgl');
    await hideChrome(page);
    await page.addStyleTag({ content: `.osd { background: rgb(${GAP_RGB.join(',')}) !important; }` });
  });
  afterAll(async () => {
    await browser?.close();
    await gateway?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** The part of the slide on screen, in page pixels, inset by `insetPx`, and inside the stage. */
  async function visibleSlideRect(insetPx: number) {
    const stage = (await page.locator('.osd').boundingBox())!;
    const topLeft = await levelZeroToPage(page, 0, 0);
    const bottomRight = await levelZeroToPage(page, slide.widthPx, slide.heightPx);
    const x0 = Math.ceil(Math.max(topLeft.x, stage.x)) + insetPx;
    const y0 = Math.ceil(Math.max(topLeft.y, stage.y)) + insetPx;
    const x1 = Math.floor(Math.min(bottomRight.x, stage.x + stage.width)) - insetPx;
    const y1 = Math.floor(Math.min(bottomRight.y, stage.y + stage.height)) - insetPx;
    return { x: x0, y: y0, width: x1 - x0, height: y1 - y0 };
  }

  function countGapPixels(shot: Pixels): number {
    let gaps = 0;
    for (let i = 0; i < shot.data.length; i += 3) {
      if (Math.abs(shot.data[i]! - GAP_RGB[0]) < 16 && Math.abs(shot.data[i + 1]! - GAP_RGB[1]) < 16 && Math.abs(shot.data[i + 2]! - GAP_RGB[2]) < 16) gaps++;
    }
    return gaps;
  }

  it('is described with its exact levels and tile sizes', async () => {
    const descriptor = (await (await fetch(`${gateway.url}/api/slides/${slideId}`)).json()) as { levels: Array<{ widthPx: number; tileWidthPx: number; downsample: number }> };
    expect(descriptor.levels.map((l) => [l.widthPx, l.tileWidthPx])).toEqual([[3000, 256], [1000, 200], [286, 128]]);
    expect(descriptor.levels[2]!.downsample).toBe(3000 / 286);
  });

  for (const levelIndex of [0, 1, 2]) {
    it(`shows level ${levelIndex} pixel for pixel at its own zoom`, async () => {
      const level = slide.levels[levelIndex]!;
      const zoom = level.widthPx / slide.widthPx;
      // Centre on a point away from the middle of a tile, so that several tiles and their seams show.
      await setView(page, { x: slide.widthPx * 0.45, y: slide.heightPx * 0.55, zoom });
      await alignToScreenPixels(page);
      const rect = await visibleSlideRect(1);
      const shot = await screenshotPixels(page, rect);
      // The same rectangle in this level's pixels.
      const origin = await levelZeroToPage(page, 0, 0);
      const region = { x: Math.round((rect.x - origin.x)), y: Math.round((rect.y - origin.y)), width: rect.width, height: rect.height };
      const expected = await readLevelRegion(gateway.url, slideId, levelIndex, level, region);
      expect(meanAbsDiff(shot, expected)).toBeLessThan(1.5);
      const worst = worstLineDiff(shot, expected);
      expect(worst.diff, `worst line: ${worst.where}`).toBeLessThan(8);
      expect(countGapPixels(shot)).toBe(0);
    });
  }

  it('leaves no gap at zooms between levels, wherever the view is', async () => {
    for (const [zoom, fx, fy] of [[0.6, 0.3, 0.7], [0.2, 0.5, 0.5], [0.075, 0.5, 0.5], [1.7, 0.91, 0.13], [0.41, 0.999, 0.999]] as const) {
      await setView(page, { x: slide.widthPx * fx + 0.37, y: slide.heightPx * fy + 0.61, zoom });
      const shot = await screenshotPixels(page, await visibleSlideRect(1));
      expect(countGapPixels(shot), `zoom ${zoom}`).toBe(0);
    }
    expect(problems).toEqual({ consoleErrors: [], failedRequests: [], badResponses: [] });
  });
});
