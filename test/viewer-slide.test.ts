/**
 * One slide in the viewer, in Chromium, against a gateway on the shared Orthanc: every slide opens with
 * no failed request or console error; at full zoom the screen shows the tile's own pixels (both
 * OpenSeadragon drawers); the label shows; the view lives in the address; keys move it; overlays sit on
 * level-0 pixels. Makes docs/screenshots/viewer.jpg when DOCS_SCREENSHOTS=1.
 */
import type { Browser, Page } from 'playwright-core';
import sharp from 'sharp';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { describeInBrowser, hideChrome, saveDocsScreenshot, launchChromium, screenshotPixels, startGatewayServer, waitForTiles, openTestPage, type GatewayServer, type PageProblems, type PageWindow } from './support/browser.js';
import { computeJpegTolerance, cropPixels, decodeWithSharp, meanAbsDiff, type Pixels } from './support/reference.js';
import { alignToScreenPixels, getView, levelZeroToPage, openSlide, setView } from './support/viewer-page.js';
import { startOrthanc } from './support/orthanc.js';
import { listDicomSamples, sampleSlideId, sharedWsiDir, wsiSamples } from './support/wsi-data.js';

describeInBrowser('slide viewer', ({ dicomwebUrl }) => {
  let gateway: GatewayServer;
  let browser: Browser;
  let page: Page;
  let problems: PageProblems;
  let cmu1: string;

  beforeAll(async () => {
    [gateway, browser, cmu1] = await Promise.all([startGatewayServer({ DICOMWEB_URL: dicomwebUrl }), launchChromium(), sampleSlideId(wsiSamples.cmu1T256Q90)]);
  });
  afterAll(async () => {
    await browser?.close();
    await gateway?.close();
  });
  beforeEach(async () => {
    ({ page, problems } = await openTestPage(browser));
  });

  const tilePixels = async (slideId: string, level: number, col: number, row: number): Promise<Pixels> => {
    const response = await fetch(`${gateway.url}/api/slides/${slideId}/tiles/${level}/${col}/${row}.jpg`);
    expect(response.status).toBe(200);
    return decodeWithSharp(Buffer.from(await response.arrayBuffer()));
  };
  const failedTiles = () => page.evaluate(() => (globalThis as unknown as PageWindow).wsiViewer!.failedTiles);

  it('opens every slide, whole and at full resolution, with no failed request or console error', async () => {
    const slides = listDicomSamples().filter((s) => s.kind === 'slide');
    expect(slides.length).toBeGreaterThanOrEqual(8);
    for (const sample of slides) {
      const id = await sampleSlideId(sample);
      await openSlide(page, gateway.url, id);
      const level0 = sample.levels[0]!;
      await setView(page, { x: level0.widthPx / 2, y: level0.heightPx / 2, zoom: 1 });
      expect(await failedTiles(), sample.id).toEqual([]);
    }
    expect(problems).toEqual({ consoleErrors: [], failedRequests: [], badResponses: [] });
  });

  // WebGL only: OpenSeadragon's canvas drawer (its fallback without WebGL) deliberately draws each tile
  // one pixel larger to hide seams, so it resamples; the WebGL drawer, its default, draws frames 1:1.
  for (const drawer of ['webgl'] as const) {
    it(`shows the tile's own pixels at full zoom (${drawer} drawer)`, async () => {
      // Tile (4, 5) of level 0: tissue, well inside the slide. Centre it, line pixels up, compare.
      const [col, row, size] = [4, 5, 256];
      await openSlide(page, gateway.url, cmu1, { x: col * size + size / 2, y: row * size + size / 2, zoom: 1 }, drawer);
      expect(await page.evaluate(() => (globalThis as unknown as PageWindow).wsiViewer!.viewer.drawer.getType())).toBe(drawer);
      await hideChrome(page);
      await alignToScreenPixels(page);
      const margin = 8;
      const corner = await levelZeroToPage(page, col * size + margin, row * size + margin);
      const shot = await screenshotPixels(page, { x: Math.round(corner.x), y: Math.round(corner.y), width: size - 2 * margin, height: size - 2 * margin });
      const expected = cropPixels(await tilePixels(cmu1, 0, col, row), margin, margin, size - 2 * margin, size - 2 * margin);
      const diff = meanAbsDiff(shot, expected);
      expect(diff).toBeLessThan(await computeJpegTolerance(expected));
      // And a view one pixel off is clearly worse, so the comparison can see a misplaced tile.
      const shifted = await screenshotPixels(page, { x: Math.round(corner.x) + 1, y: Math.round(corner.y), width: size - 2 * margin, height: size - 2 * margin });
      expect(meanAbsDiff(shifted, expected)).toBeGreaterThan(diff * 2);
      expect(problems.consoleErrors).toEqual([]);
    });
  }

  it('shows the label beside the slide', async () => {
    await openSlide(page, gateway.url, cmu1);
    const label = page.locator('aside img.label');
    await expect.poll(() => label.evaluate((img) => (img as unknown as { naturalWidth: number }).naturalWidth)).toBeGreaterThan(0);
    const labelPixels = await decodeWithSharp(await label.screenshot());
    expect(labelPixels.widthPx).toBeGreaterThan(100);
    await setView(page, { x: 1000, y: 1300, zoom: 0.5 });
    await saveDocsScreenshot(page, 'viewer');
  });

  it('keeps the view in the address, so a copied link opens the same view', async () => {
    await openSlide(page, gateway.url, cmu1);
    await setView(page, { x: 700, y: 900, zoom: 0.75 });
    await expect.poll(() => new URL(page.url()).searchParams.get('zoom')).toBe('0.75');
    const shared = page.url();
    expect(shared).toContain('x=700&y=900');
    const other = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await other.goto(`${shared}&drawer=canvas`);
    await waitForTiles(other);
    const view = await getView(other);
    expect(view.x).toBeCloseTo(700, 0);
    expect(view.y).toBeCloseTo(900, 0);
    expect(view.zoom).toBeCloseTo(0.75, 3);
    await other.close();
  });

  it('moves with the keyboard: + zooms in, arrows pan', async () => {
    await openSlide(page, gateway.url, cmu1, { x: 1110, y: 1480, zoom: 0.25 });
    const before = await getView(page);
    await page.keyboard.press('+');
    // OpenSeadragon animates the zoom (1.2 s): a busy machine needs longer than poll's default second.
    await expect.poll(async () => (await getView(page)).zoom, { timeout: 10_000 }).toBeGreaterThan(before.zoom * 1.1);
    const zoomed = await getView(page);
    await page.keyboard.press('ArrowRight');
    await expect.poll(async () => (await getView(page)).x, { timeout: 10_000 }).toBeGreaterThan(zoomed.x + 10);
  });

  it('puts an overlay on level-0 pixels, with opacity and visibility', async () => {
    await openSlide(page, gateway.url, cmu1, { x: 1152, y: 1408, zoom: 1 });
    await hideChrome(page);
    await alignToScreenPixels(page);
    // A solid magenta 128 x 64 image over level-0 pixels (1100, 1350)-(1228, 1414).
    const png = await sharp({ create: { width: 128, height: 64, channels: 4, background: { r: 255, g: 0, b: 255, alpha: 1 } } }).png().toBuffer();
    const url = `data:image/png;base64,${png.toString('base64')}`;
    const bounds = { x: 1100, y: 1350, width: 128, height: 64 };
    await page.evaluate(([u, b]) => (globalThis as unknown as PageWindow).wsiViewer!.overlays.add({ id: 'test', url: u as string, boundsPx: b as typeof bounds, opacity: 1 }), [url, bounds] as const);
    await waitForTiles(page);
    const corner = await levelZeroToPage(page, bounds.x, bounds.y);
    const [left, top] = [Math.round(corner.x), Math.round(corner.y)];
    const inside = await screenshotPixels(page, { x: left + 1, y: top + 1, width: bounds.width - 2, height: bounds.height - 2 });
    expect(meanAbsDiff(inside, solid(inside, [255, 0, 255]))).toBeLessThan(2);
    // One pixel outside each edge is slide, not overlay.
    for (const edge of [{ x: left - 1, y: top, width: 1, height: bounds.height }, { x: left + bounds.width, y: top, width: 1, height: bounds.height }, { x: left, y: top - 1, width: bounds.width, height: 1 }, { x: left, y: top + bounds.height, width: bounds.width, height: 1 }]) {
      const strip = await screenshotPixels(page, edge);
      expect(meanAbsDiff(strip, solid(strip, [255, 0, 255]))).toBeGreaterThan(60);
    }
    await page.evaluate(() => (globalThis as unknown as PageWindow).wsiViewer!.overlays.setVisible('test', false));
    await waitForTiles(page);
    const hidden = await screenshotPixels(page, { x: left + 1, y: top + 1, width: bounds.width - 2, height: bounds.height - 2 });
    expect(meanAbsDiff(hidden, solid(hidden, [255, 0, 255]))).toBeGreaterThan(60);
    expect(await page.evaluate(() => (globalThis as unknown as PageWindow).wsiViewer!.overlays.list())).toEqual([{ id: 'test', opacity: 1, visible: false }]);
    expect(await page.evaluate(() => (globalThis as unknown as PageWindow).wsiViewer!.overlays.remove('test'))).toBe(true);
    expect(problems.consoleErrors).toEqual([]);
  });
});

describeInBrowser('slide viewer when things fail', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('says which slide is missing, and links back', async () => {
    const gateway = await startGatewayServer({ DICOM_DIR: sharedWsiDir });
    const page = await browser.newPage();
    try {
      await page.goto(`${gateway.url}/?slide=1.2.3/4.5.6`);
      await expect.poll(() => page.locator('[role=alert]').innerText()).toMatch(/\(404 SERIES_NOT_FOUND\)\.$/);
      expect(await page.locator('a.back').getAttribute('href')).toBe('/');
    } finally {
      await page.close();
      await gateway.close();
    }
  });

  it('says the PACS failed when tiles stop coming', async () => {
    // A PACS of our own, so that it can be stopped while a slide is open.
    const pacs = await startOrthanc({ metadataMode: 'Full' });
    // A cache too small to read level 0 (1.3 MB) ahead while the overview opens (a sixteenth of it),
    // so that zooming in after the PACS stopped needs the PACS.
    const gateway = await startGatewayServer({ DICOMWEB_URL: pacs.dicomwebUrl, DICOMWEB_TIMEOUT_MS: '3000', TILE_CACHE_BYTES: '8MiB' });
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    try {
      await pacs.upload([...wsiSamples.cmu1T256Q90.paths]);
      const id = await sampleSlideId(wsiSamples.cmu1T256Q90);
      await openSlide(page, gateway.url, id);
      await pacs.stop();
      await page.evaluate(() => (globalThis as unknown as PageWindow).wsiViewer!.setView({ x: 1100, y: 1500, zoom: 1 }));
      const banner = page.locator('.banner');
      // The banner shows the latest failure: once 10 requests in a row have failed, the circuit breaker
      // answers for the PACS (502 UPSTREAM_UNAVAILABLE, naming the last failure), and the viewer asks fast.
      await expect.poll(() => banner.innerText(), { timeout: 30_000 }).toMatch(/^Some tiles could not be loaded\. The PACS failed: .+ \(50[24] UPSTREAM_(FAILED|TIMEOUT|UNAVAILABLE)\)\.$/);
    } finally {
      await page.close();
      await gateway.close();
      await pacs.stop();
    }
  });
});

function solid(like: Pixels, rgb: [number, number, number]): Pixels {
  const data = Buffer.alloc(like.widthPx * like.heightPx * 3);
  for (let i = 0; i < data.length; i += 3) data.set(rgb, i);
  return { data, widthPx: like.widthPx, heightPx: like.heightPx };
}
