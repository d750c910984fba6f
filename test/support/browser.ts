/**
 * Browser tests: Debian's Chromium driven by playwright-core (no browser download), a gateway on a real
 * socket (a page needs a URL), and a record of everything that went wrong in a page.
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type Page } from 'playwright-core';
import { pino } from 'pino';
import sharp from 'sharp';
import { describe, test } from 'vitest';
import { createServices, type Services } from '../../src/app.js';
import { loadConfig } from '../../src/config/index.js';
import { serveGateway } from '../../src/server.js';
import type { Pixels } from './reference.js';
import { orthanc, type OrthancUrls } from './skip.js';

export const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const hasChromium = existsSync(chromiumPath);

/** A `describe` that needs the shared Orthanc and Chromium; skipped with the reason when either is missing. */
export function describeInBrowser(name: string, factory: (urls: OrthancUrls) => void): void {
  const urls = orthanc;
  if (urls === undefined || !hasChromium) {
    describe.skip(name, () => {
      test(`needs ${urls ? '' : 'Orthanc (apt-get install orthanc orthanc-dicomweb orthanc-wsi) and '}Chromium at ${chromiumPath} (apt-get install chromium)`, () => {});
    });
    return;
  }
  describe(name, () => factory(urls));
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}

export interface GatewayServer {
  /** `http://127.0.0.1:PORT` */
  url: string;
  services: Services;
  close(): Promise<void>;
}

/** The real app on a free loopback port, configured from an env record like production. */
export async function startGatewayServer(env: Record<string, string>): Promise<GatewayServer> {
  const services = createServices(loadConfig({ LOG_LEVEL: 'silent', ...env }), { logger: pino({ level: 'silent' }) });
  const server = await new Promise<ReturnType<typeof serveGateway>>((resolve) => {
    const s = serveGateway(services, { port: 0, hostname: '127.0.0.1' }, () => resolve(s));
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    services,
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await services.close();
    },
  };
}

/** A page at the size every browser test uses (CSS px = device px), watched for problems. */
export async function openTestPage(browser: Browser): Promise<{ page: Page; problems: PageProblems }> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1 });
  return { page, problems: watchPage(page) };
}

/** What went wrong in a page since it was opened: console errors, page errors, failed or 4xx/5xx requests. */
export interface PageProblems {
  consoleErrors: string[];
  failedRequests: string[];
  badResponses: string[];
}

export function watchPage(page: Page): PageProblems {
  const problems: PageProblems = { consoleErrors: [], failedRequests: [], badResponses: [] };
  page.on('console', (m) => {
    if (m.type() === 'error') problems.consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => problems.consoleErrors.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => {
    // A lazy thumbnail cancelled by navigating away is not a failure.
    if (r.failure()?.errorText !== 'net::ERR_ABORTED') problems.failedRequests.push(`${r.url()}: ${r.failure()?.errorText}`);
  });
  page.on('response', (r) => {
    if (r.status() >= 400) problems.badResponses.push(`${r.status()} ${r.url()}`);
  });
  return problems;
}

/**
 * The parts of the page's `window` the tests call. These files compile for Node (no DOM types), and a
 * function given to page.evaluate runs in the page, so each one casts `globalThis` to this itself.
 */
export interface PageWindow {
  wsiViewer?: {
    slide: { id: string; widthPx: number; heightPx: number; levels: Array<{ widthPx: number; heightPx: number }> };
    getView(): { x: number; y: number; zoom: number };
    setView(view: { x: number; y: number; zoom: number }): void;
    isFullyLoaded(): boolean;
    levelZeroToPage(xPx: number, yPx: number): { x: number; y: number };
    failedTiles: string[];
    /** OpenSeadragon's viewer, typed only as far as the tests use it. */
    viewer: {
      drawer: { getType(): string };
    };
    overlays: {
      add(o: { id: string; url: string; boundsPx?: { x: number; y: number; width: number; height: number }; opacity?: number }): Promise<void>;
      remove(id: string): boolean;
      setOpacity(id: string, v: number): void;
      setVisible(id: string, v: boolean): void;
      list(): Array<{ id: string; opacity: number; visible: boolean }>;
    };
    analysis: {
      state(): { mode: string; model?: string; runId?: string; k: number; isolated: number | null; counts: number[]; patches: number; queryRow: number | null; busy: boolean; message: string | null };
      patchAt(xPx: number, yPx: number): { row: number; cluster: number | null; score: number | null } | null;
      layer: { setOpacity(v: number): void; draw(): void; getState(): { visible: boolean; opacity: number; patches: number } };
      idle(): Promise<void>;
    };
  };
  requestAnimationFrame(callback: () => void): number;
}

/** Waits until the slide viewer has drawn every tile its view needs. */
export async function waitForTiles(page: Page, timeoutMs = 30_000): Promise<void> {
  await page.waitForFunction(() => (globalThis as unknown as PageWindow).wsiViewer?.isFullyLoaded() === true, null, { timeout: timeoutMs, polling: 100 });
  // Two more frames so the drawer has painted what it loaded.
  await page.evaluate(() => {
    const w = globalThis as unknown as PageWindow;
    return new Promise<void>((resolve) => w.requestAnimationFrame(() => w.requestAnimationFrame(resolve)));
  });
}

/**
 * A region of the page as RGB pixels (CSS px = device px: the tests run at deviceScaleFactor 1), once
 * the page has stopped changing there: two screenshots in a row must agree, because a software-WebGL
 * drawer may still be painting what it has loaded.
 */
export async function screenshotPixels(page: Page, clip: { x: number; y: number; width: number; height: number }): Promise<Pixels> {
  let png = await page.screenshot({ clip, type: 'png' });
  for (let attempt = 0; attempt < 20; attempt++) {
    await page.waitForTimeout(100);
    const again = await page.screenshot({ clip, type: 'png' });
    if (again.equals(png)) break;
    png = again;
  }
  const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data, widthPx: info.width, heightPx: info.height };
}

/** Hides everything drawn over the slide (navigator, buttons, scale bar), so screenshots hold only tiles. */
export async function hideChrome(page: Page): Promise<void> {
  await page.addStyleTag({ content: '.scale-bar, .navigator, .openseadragon-container > div:not(.openseadragon-canvas) { display: none !important; }' });
}

/** With DOCS_SCREENSHOTS=1, saves the page as docs/screenshots/NAME.jpg (README shows them). */
export async function saveDocsScreenshot(page: Page, name: string): Promise<void> {
  if (process.env.DOCS_SCREENSHOTS !== '1') return;
  await mkdir('docs/screenshots', { recursive: true });
  await page.screenshot({ path: `docs/screenshots/${name}.jpg`, type: 'jpeg', quality: 80 });
}
