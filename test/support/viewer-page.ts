/** Driving the slide viewer page in tests: open at a view, line up pixels, compare with tiles. */
import type { Page } from 'playwright-core';
import { waitForTiles, type PageWindow } from './browser.js';

export interface View {
  x: number;
  y: number;
  zoom: number;
}

/**
 * Opens a slide at a view (through the address, as a shared link would) and waits for its tiles. The
 * canvas drawer by default: Chromium without a GPU runs WebGL in software, ten times slower here; the
 * WebGL drawer (OpenSeadragon's default, what users get) has its own pixel test.
 */
export async function openSlide(page: Page, baseUrl: string, slideId: string, view?: View, drawer: 'webgl' | 'canvas' = 'canvas'): Promise<void> {
  const params = new URLSearchParams({ slide: slideId });
  if (view) for (const [k, v] of Object.entries(view)) params.set(k, String(v));
  params.set('drawer', drawer);
  await page.goto(`${baseUrl}/?${params.toString().replaceAll('%2F', '/')}`);
  await waitForTiles(page);
}

export const getView = (page: Page): Promise<View> => page.evaluate(() => (globalThis as unknown as PageWindow).wsiViewer!.getView());

export async function setView(page: Page, view: View): Promise<void> {
  await page.evaluate((v) => (globalThis as unknown as PageWindow).wsiViewer!.setView(v), view);
  await waitForTiles(page);
}

/** Page coordinates (CSS px) of a level-0 pixel's top-left corner. */
export const levelZeroToPage = (page: Page, xPx: number, yPx: number): Promise<{ x: number; y: number }> =>
  page.evaluate(([x, y]) => (globalThis as unknown as PageWindow).wsiViewer!.levelZeroToPage(x!, y!), [xPx, yPx]);

/**
 * Nudges the view by less than a screen pixel so that pixel edges fall on screen pixel edges: then a
 * screenshot can be compared with the tiles without resampling in between.
 */
export async function alignToScreenPixels(page: Page): Promise<void> {
  const origin = await levelZeroToPage(page, 0, 0);
  const fx = origin.x - Math.round(origin.x);
  const fy = origin.y - Math.round(origin.y);
  if (Math.abs(fx) < 1e-3 && Math.abs(fy) < 1e-3) return;
  const view = await getView(page);
  await setView(page, { x: view.x + fx / view.zoom, y: view.y + fy / view.zoom, zoom: view.zoom });
}
