/** Driving the slide viewer page in tests: open at a view, line up pixels, compare with tiles. */
import type { Page } from 'playwright-core';
import { waitForTiles, type PageWindow } from './browser.js';
import { decodeWithSharp, type Pixels } from './reference.js';

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

export interface LevelGeometry {
  widthPx: number;
  heightPx: number;
  tileWidthPx: number;
  tileHeightPx: number;
}

/**
 * A region of one pyramid level as the gateway's tiles hold it: each tile decoded (sharp) and copied
 * into place, padding dropped. The reference a screenshot at that level's own zoom must equal.
 */
export async function readLevelRegion(baseUrl: string, slideId: string, levelIndex: number, level: LevelGeometry, region: { x: number; y: number; width: number; height: number }): Promise<Pixels> {
  const out = Buffer.alloc(region.width * region.height * 3);
  const [c0, c1] = [Math.floor(region.x / level.tileWidthPx), Math.floor((region.x + region.width - 1) / level.tileWidthPx)];
  const [r0, r1] = [Math.floor(region.y / level.tileHeightPx), Math.floor((region.y + region.height - 1) / level.tileHeightPx)];
  for (let row = r0; row <= r1; row++) {
    for (let col = c0; col <= c1; col++) {
      const response = await fetch(`${baseUrl}/api/slides/${slideId}/tiles/${levelIndex}/${col}/${row}.jpg`);
      if (!response.ok) throw new Error(`tile ${levelIndex}/${col}/${row}: ${response.status}`);
      const tile = await decodeWithSharp(Buffer.from(await response.arrayBuffer()));
      for (let y = 0; y < tile.heightPx; y++) {
        const ry = row * level.tileHeightPx + y - region.y;
        if (ry < 0 || ry >= region.height) continue;
        for (let x = 0; x < tile.widthPx; x++) {
          const rx = col * level.tileWidthPx + x - region.x;
          if (rx < 0 || rx >= region.width) continue;
          tile.data.copy(out, (ry * region.width + rx) * 3, (y * tile.widthPx + x) * 3, (y * tile.widthPx + x) * 3 + 3);
        }
      }
    }
  }
  return { data: out, widthPx: region.width, heightPx: region.height };
}
