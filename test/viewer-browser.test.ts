/**
 * The slide browser in Chromium against a gateway on the shared Orthanc: every slide listed with its
 * thumbnail, filtering and paging, patient data hidden unless configured, and a clear message when the
 * PACS is down. Makes docs/screenshots/slide-browser.jpg when DOCS_SCREENSHOTS=1.
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { describeInBrowser, launchChromium, saveDocsScreenshot, startGatewayServer, openTestPage, type GatewayServer, type PageProblems } from './support/browser.js';
import { listDicomSamples, sampleSlideId } from './support/wsi-data.js';

/** Patient names and IDs written in ../shared/wsi (see `dcmdump +P 0010,0010`); none may reach the page. */
const PATIENT_DATA = ['Penelope', 'GenLast', 'PN-1-692-287-590-758-1', 'OPENSLIDE-CMU-1', 'OpenSlide^CMU', 'AA01'];

/** An <img> as the tests read it (these files compile without DOM types). */
interface Img {
  complete: boolean;
  naturalWidth: number;
  src: string;
}

describeInBrowser('slide browser', ({ dicomwebUrl }) => {
  let gateway: GatewayServer;
  let browser: Browser;
  let page: Page;
  let problems: PageProblems;
  /** The slides of ../shared/wsi as PROVENANCE.md lists them: what "every slide" means. */
  let expectedSlideIds: string[];

  beforeAll(async () => {
    [gateway, browser] = await Promise.all([startGatewayServer({ DICOMWEB_URL: dicomwebUrl }), launchChromium()]);
    expectedSlideIds = await Promise.all(listDicomSamples().filter((s) => s.kind === 'slide').map(sampleSlideId));
  });
  afterAll(async () => {
    await browser?.close();
    await gateway?.close();
  });
  beforeEach(async () => {
    ({ page, problems } = await openTestPage(browser));
  });

  const cardIds = () => page.locator('.slide-card').evaluateAll((cards) => cards.map((c) => c.getAttribute('data-slide-id')));

  it('lists every slide with a thumbnail, size and magnification, and no patient data', async () => {
    await page.goto(gateway.url);
    await page.waitForSelector('.slide-card');
    expect(expectedSlideIds.length).toBeGreaterThanOrEqual(8);
    expect((await cardIds()).sort()).toEqual([...expectedSlideIds].sort());
    // Every thumbnail (and label) actually decoded.
    const images = page.locator('.slide-card img');
    await expect.poll(() => images.evaluateAll((imgs) => imgs.every((i) => (i as unknown as Img).complete)), { timeout: 30_000 }).toBe(true);
    const broken = await images.evaluateAll((imgs) => imgs.filter((i) => (i as unknown as Img).naturalWidth === 0).map((i) => (i as unknown as Img).src));
    expect(broken).toEqual([]);
    expect(await page.locator('.slide-card img.label').count()).toBeGreaterThanOrEqual(1);
    const text = await page.locator('body').innerText();
    expect(text).toContain('2,220 × 2,967 px');
    expect(text).toContain('20× (0.499 µm/px)');
    for (const secret of PATIENT_DATA) expect(text).not.toContain(secret);
    expect(problems).toEqual({ consoleErrors: [], failedRequests: [], badResponses: [] });
    await saveDocsScreenshot(page, 'slide-browser');
  });

  it('filters by text and pages through the results, keeping both in the address', async () => {
    await page.goto(`${gateway.url}/?q=${encodeURIComponent('cmu-1 pyramid')}`);
    await page.waitForSelector('.slide-card');
    const titles = await page.locator('.slide-card .title').allInnerTexts();
    expect(titles.sort()).toEqual(['CMU-1 pyramid 256px JPEG 2000 lossless', 'CMU-1 pyramid 256px JPEG q90 + label + overview']);

    await page.fill('input[type=search]', 'no such slide anywhere');
    await page.waitForSelector('text=No slide matches');
    expect(await page.locator('.slide-card').count()).toBe(0);

    // Paging, through the API's own limit: 24 per page, so make the page small by asking the API directly.
    const api = await (await fetch(`${gateway.url}/api/slides?limit=3&offset=3`)).json() as { total: number; slides: unknown[] };
    expect(api.total).toBe(expectedSlideIds.length);
    expect(api.slides).toHaveLength(3);
    await page.fill('input[type=search]', '');
    await page.waitForSelector(`text=Slides 1–${expectedSlideIds.length} of ${expectedSlideIds.length}`);
    expect(await page.locator('.pager button:not([disabled])').count()).toBe(0);
    expect(page.url()).toBe(`${gateway.url}/`);
    expect(problems.consoleErrors).toEqual([]);
  });

  it('shows patient names and IDs only when the operator turns them on', async () => {
    const shown = await startGatewayServer({ DICOMWEB_URL: dicomwebUrl, GATEWAY_SHOW_PATIENT_DATA: 'true' });
    try {
      await page.goto(`${shown.url}/?q=penelope`);
      await page.waitForSelector('.slide-card .patient');
      expect(await page.locator('.slide-card .patient').first().innerText()).toBe('GenLast Penelope · PN-1-692-287-590-758-1');
      // Without the setting, the patient name does not even match the filter.
      await page.goto(`${gateway.url}/?q=penelope`);
      await page.waitForSelector('text=No slide matches');
    } finally {
      await shown.close();
    }
  });

  it('says the PACS failed when it cannot be reached', async () => {
    const broken = await startGatewayServer({ DICOMWEB_URL: 'http://127.0.0.1:9/dicom-web', DICOMWEB_TIMEOUT_MS: '2000' });
    try {
      await page.goto(broken.url);
      const message = await page.locator('[role=alert]').innerText();
      expect(message).toMatch(/^The PACS failed: .+ \(502 UPSTREAM_FAILED\)\.$/);
    } finally {
      await broken.close();
    }
  });
});
