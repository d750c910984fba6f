/**
 * Clusters in the viewer, in Chromium: a slide with no embeddings offers "Embed this slide" with live
 * progress; then the cluster map appears, each patch's cell covering that patch's pixels within one
 * screen pixel at several zooms; the legend's counts add up to the patches; a legend click shows one
 * cluster alone; hovering names the cluster; clicking a patch maps similarity, brightest on itself.
 * Makes docs/screenshots/clusters.jpg and similarity.jpg when DOCS_SCREENSHOTS=1.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { computeSimilarityLut, parseHexColour } from '../src/analysis/palette.js';
import { parseNpyHeader } from '../src/embed/store/index.js';
import type { ClusterAnswer } from '../viewer/src/api.js';
import { describeInBrowser, launchChromium, openTestPage, saveDocsScreenshot, screenshotPixels, startGatewayServer, type GatewayServer, type PageProblems, type PageWindow } from './support/browser.js';
import { levelZeroToPage, openSlide, setView } from './support/viewer-page.js';
import { sampleSlideId, wsiSamples } from './support/wsi-data.js';

type AnalysisState = ReturnType<NonNullable<PageWindow['wsiViewer']>['analysis']['state']>;

describeInBrowser('clusters in the viewer', ({ dicomwebUrl }) => {
  let gateway: GatewayServer;
  let browser: Browser;
  let page: Page;
  let problems: PageProblems;
  let embedDir: string;
  let cmu1: string;

  beforeAll(async () => {
    embedDir = await mkdtemp(join(tmpdir(), 'viewer-analysis-'));
    [gateway, browser, cmu1] = await Promise.all([startGatewayServer({ DICOMWEB_URL: dicomwebUrl, EMBED_DIR: embedDir }), launchChromium(), sampleSlideId(wsiSamples.cmu1T256Q90)]);
    ({ page, problems } = await openTestPage(browser));
  });
  afterAll(async () => {
    await browser?.close();
    await gateway?.close();
    await rm(embedDir, { recursive: true, force: true });
  });

  const state = (): Promise<AnalysisState> => page.evaluate(() => (globalThis as unknown as PageWindow).wsiViewer!.analysis.state());
  const idle = () => page.evaluate(() => (globalThis as unknown as PageWindow).wsiViewer!.analysis.idle());

  /** RGB at a page point, from a screenshot of the composited page. */
  async function colourAt(x: number, y: number): Promise<number[]> {
    const shot = await screenshotPixels(page, { x: Math.floor(x), y: Math.floor(y), width: 1, height: 1 });
    return [...shot.data.subarray(0, 3)];
  }
  const near = (a: number[], b: readonly number[], tolerance = 3) => a.every((v, i) => Math.abs(v - b[i]!) <= tolerance);

  it('embeds the slide from the page, then shows crisp cluster cells that sit on their patches at every zoom', async () => {
    await openSlide(page, gateway.url, cmu1);
    const button = page.getByRole('button', { name: 'Embed this slide' });
    await button.waitFor({ timeout: 30_000 });
    await button.click();
    await page.locator('.analysis progress').waitFor();
    await expect.poll(async () => (await state()).mode, { timeout: 120_000, interval: 250 }).toBe('clusters');
    await idle();
    const s = await state();
    expect(s).toMatchObject({ model: 'stain-texture', k: 8, isolated: null, message: null });

    // The legend's counts add up to the patches, and to what the API says.
    const legendCounts = await page.locator('.legend-entry .count').allTextContents();
    const counts = legendCounts.map((t) => Number(t.split(' ')[0]!.replaceAll(',', '')));
    expect(counts.reduce((a, b) => a + b, 0)).toBe(s.patches);
    const answer = (await (await fetch(`${gateway.url}/api/slides/${cmu1}/clusters?model=stain-texture&k=8`)).json()) as ClusterAnswer;
    expect(counts).toEqual(answer.clusters.map((c) => c.count));
    expect(s.patches).toBe(answer.rows);
    const labels = Buffer.from(answer.labels, 'base64');
    const npy = Buffer.from(await (await fetch(`${gateway.url}${answer.links.coords}`)).arrayBuffer());
    const header = parseNpyHeader(npy);
    const coords = new Int32Array(npy.buffer.slice(npy.byteOffset + header.dataOffset, npy.byteOffset + npy.length));
    await saveDocsScreenshot(page, 'clusters');

    // One cluster alone, fully opaque: a patch of it whose right and lower neighbours are not in it.
    const side = answer.patch.widthPx;
    const member = (x: number, y: number) => {
      for (let r = 0; r < labels.length; r++) if (coords[2 * r] === x && coords[2 * r + 1] === y) return labels[r];
      return undefined;
    };
    let row = -1;
    for (let r = 0; r < labels.length && row < 0; r++) {
      if (member(coords[2 * r]! + side, coords[2 * r + 1]!) !== labels[r] && member(coords[2 * r]!, coords[2 * r + 1]! + side) !== labels[r]) row = r;
    }
    expect(row).toBeGreaterThanOrEqual(0);
    const cluster = labels[row]!;
    await page.locator(`.legend-entry[data-cluster="${cluster}"]`).click();
    expect((await state()).isolated).toBe(cluster);
    await expect.poll(() => page.locator(`.legend-entry[data-cluster="${cluster}"]`).getAttribute('aria-pressed')).toBe('true');
    await page.locator('input[aria-label="Overlay opacity"]').fill('100');
    const colour = parseHexColour(answer.clusters[cluster]!.colour);
    const [x0, y0] = [coords[2 * row]!, coords[2 * row + 1]!];

    for (const zoom of [0.1, 0.35, 1, 2.5]) {
      await setView(page, { x: x0 + side / 2, y: y0 + side / 2, zoom });
      await page.evaluate(() => (globalThis as unknown as PageWindow).wsiViewer!.analysis.layer.draw());
      const topLeft = await levelZeroToPage(page, x0, y0);
      const bottomRight = await levelZeroToPage(page, x0 + side, y0 + side);
      // Inside the cell, 1.5 screen pixels from each edge: the cluster's colour; just past the right and
      // lower edges (neighbours not in the cluster): not the colour. So the edges are within a pixel.
      const inside = [
        [topLeft.x + 1.5, (topLeft.y + bottomRight.y) / 2],
        [bottomRight.x - 1.5, (topLeft.y + bottomRight.y) / 2],
        [(topLeft.x + bottomRight.x) / 2, topLeft.y + 1.5],
        [(topLeft.x + bottomRight.x) / 2, bottomRight.y - 1.5],
      ];
      for (const [x, y] of inside) expect(near(await colourAt(x!, y!), colour), `zoom ${zoom} inside (${x}, ${y})`).toBe(true);
      for (const [x, y] of [[bottomRight.x + 1.5, (topLeft.y + bottomRight.y) / 2], [(topLeft.x + bottomRight.x) / 2, bottomRight.y + 1.5]]) {
        expect(near(await colourAt(x!, y!), colour, 20), `zoom ${zoom} outside (${x}, ${y})`).toBe(false);
      }
    }

    // Hovering names the cluster under the pointer.
    const centre = await levelZeroToPage(page, x0 + side / 2, y0 + side / 2);
    await page.mouse.move(centre.x, centre.y);
    await expect.poll(() => page.locator('.readout').textContent()).toBe(`Cluster ${cluster + 1} · patch at (${x0}, ${y0}) px`);
    // A second legend click shows every cluster again.
    await page.locator(`.legend-entry[data-cluster="${cluster}"]`).click();
    expect((await state()).isolated).toBeNull();
  });

  it('a click on a patch maps its similarity: brightest on the patch itself', async () => {
    const answer = (await (await fetch(`${gateway.url}/api/slides/${cmu1}/clusters?model=stain-texture&k=8`)).json()) as ClusterAnswer;
    const rep = answer.clusters.find((c) => c.count > 0)!.representative;
    const side = answer.patch.widthPx;
    await setView(page, { x: rep.xPx + side / 2, y: rep.yPx + side / 2, zoom: 0.5 });
    const centre = await levelZeroToPage(page, rep.xPx + side / 2, rep.yPx + side / 2);
    await page.mouse.click(centre.x, centre.y);
    await expect.poll(async () => (await state()).mode, { timeout: 30_000 }).toBe('similarity');
    await idle();
    expect((await state()).queryRow).toBe(rep.row);
    const hit = await page.evaluate(([x, y]) => (globalThis as unknown as PageWindow).wsiViewer!.analysis.patchAt(x!, y!), [rep.xPx + side / 2, rep.yPx + side / 2]);
    expect(hit?.score).toBeCloseTo(1, 5);
    // At full opacity the patch's cell has the top colour of the scale.
    await page.locator('input[aria-label="Overlay opacity"]').fill('100');
    await page.evaluate(() => (globalThis as unknown as PageWindow).wsiViewer!.analysis.layer.draw());
    const lut = computeSimilarityLut();
    expect(near(await colourAt(centre.x, centre.y), [lut[765]!, lut[766]!, lut[767]!])).toBe(true);
    await saveDocsScreenshot(page, 'similarity');
    await page.getByRole('button', { name: '← Back to clusters' }).click();
    await expect.poll(async () => (await state()).mode).toBe('clusters');
    expect(problems).toEqual({ consoleErrors: [], failedRequests: [], badResponses: [] });
  });
});
