/**
 * One slide in OpenSeadragon: the DICOM-grid tile source, navigator, scale bar, magnification, keyboard,
 * the view in the address bar, errors shown where the user looks, and the overlay layers.
 */
import OpenSeadragon from 'openseadragon';
import { ApiError, getSlide, readApiError, slideUrl, type SlideDescriptor } from './api.js';
import { createDicomTileSource } from './dicom-tile-source.js';
import { errorBox, h } from './dom.js';
import { createAnalysisPanel, type AnalysisApi } from './analysis-panel.js';
import { OverlayLayers } from './overlays.js';
import { chooseScaleBar, formatDicomDate, formatMagnification, formatSize, magnificationOf } from './units.js';
import { formatRoute, type ViewState } from './url-state.js';

/** What the page offers to scripts (the cluster view next, and the browser tests). */
export interface SlideViewApi {
  slide: SlideDescriptor;
  viewer: OpenSeadragon.Viewer;
  overlays: OverlayLayers;
  /** Clusters and similarity over the slide. */
  analysis: AnalysisApi;
  getView(): ViewState;
  /** Moves at once (no animation). */
  setView(view: ViewState): void;
  /** Where a level-0 pixel's top-left corner is on the page, in CSS pixels. */
  levelZeroToPage(xPx: number, yPx: number): { x: number; y: number };
  /** True when every tile the current view needs has been drawn. */
  isFullyLoaded(): boolean;
  /** Tile URLs that failed to load, oldest first. */
  failedTiles: string[];
}

declare global {
  interface Window {
    wsiViewer?: SlideViewApi;
  }
}

export async function showSlide(root: HTMLElement, slideId: string, initialView: ViewState | undefined): Promise<void> {
  const back = h('a', { href: '/', class: 'back' }, '← Slides');
  root.replaceChildren(h('header', {}, back, h('h1', {}, 'Loading slide…')));
  let slide: SlideDescriptor;
  try {
    slide = await getSlide(slideId);
  } catch (error) {
    root.replaceChildren(
      h('header', {}, back, h('h1', {}, 'Slide unavailable')),
      h('main', { class: 'message' }, errorBox(error instanceof ApiError ? error.describe() : String(error))),
    );
    return;
  }

  const title = slide.seriesDescription ?? slide.studyDescription ?? 'Untitled slide';
  document.title = `${title} · wsi-gateway`;
  const mppUm = slide.levels[0]!.mppX ?? undefined;
  const osdElement = h('div', { id: 'osd', class: 'osd' });
  const banner = h('div', { class: 'banner', role: 'alert', hidden: true });
  const magnification = h('span', { class: 'magnification', 'aria-live': 'off' });
  const side = sidePanel(slide, mppUm);
  const scaleBar = h('div', { class: 'scale-bar', hidden: mppUm === undefined }, h('span', {}));
  root.replaceChildren(
    h('header', {}, back, h('h1', {}, title), magnification),
    h('main', { class: 'slide' }, h('div', { class: 'stage' }, osdElement, scaleBar, banner), side),
  );

  const tileSource = createDicomTileSource(slide);
  const drawer = new URLSearchParams(location.search).get('drawer');
  const viewer = OpenSeadragon({
    element: osdElement,
    prefixUrl: '/osd-images/',
    tileSources: tileSource,
    showNavigator: true,
    navigatorPosition: 'TOP_RIGHT',
    navigatorAutoFade: false,
    showRotationControl: false,
    // Up to 4 screen pixels per scanned pixel: enough to see a nucleus's edge, not so far as to get lost.
    maxZoomPixelRatio: 4,
    visibilityRatio: 0.2,
    timeout: 60_000,
    // A click picks a patch for similarity; a double click zooms.
    gestureSettingsMouse: { clickToZoom: false, dblClickToZoom: true },
    ...(drawer === 'canvas' || drawer === 'webgl' ? { drawer } : {}),
  } as OpenSeadragon.Options);

  const failedTiles: string[] = [];
  const analysis = createAnalysisPanel(slide.id, viewer, () => viewer.world.getItemAt(0));
  // Right under the label, above the facts: the legend is what a user looks at while browsing clusters.
  side.insertBefore(analysis.element, side.querySelector('dl'));
  // The slide is world item 0; overlays are items too, so coordinates go through the slide's own item
  // (the viewport's conversions are ambiguous, and say so on the console, once there are several).
  const slideItem = (): OpenSeadragon.TiledImage => viewer.world.getItemAt(0);
  const getView = (): ViewState => {
    const item = slideItem();
    const centre = item.viewportToImageCoordinates(viewer.viewport.getCenter(true));
    return { x: centre.x, y: centre.y, zoom: item.viewportToImageZoom(viewer.viewport.getZoom(true)) };
  };
  const setView = (view: ViewState): void => {
    const item = slideItem();
    viewer.viewport.zoomTo(item.imageToViewportZoom(view.zoom), undefined, true);
    viewer.viewport.panTo(item.imageToViewportCoordinates(view.x, view.y), true);
  };

  viewer.addOnceHandler('open', () => {
    if (initialView) setView(initialView);
    // Keys work at once: arrows/WASD pan, +/- zoom, 0 goes home (OpenSeadragon's own bindings).
    (viewer.canvas as HTMLElement).focus();
  });
  viewer.addHandler('open-failed', (event) => showBanner(`The slide could not be opened: ${String((event as { message?: unknown }).message ?? 'unknown error')}`));

  viewer.addHandler('update-viewport', () => {
    const { zoom } = getView();
    magnification.textContent = mppUm === undefined ? `${Math.round(zoom * 100)}%` : `${formatMagnification(magnificationOf(mppUm) * zoom)} · ${Math.round(zoom * 100)}%`;
    if (mppUm !== undefined) {
      const bar = chooseScaleBar(mppUm / zoom, 160);
      (scaleBar.firstChild as HTMLElement).style.width = `${bar.widthPx.toFixed(1)}px`;
      (scaleBar.firstChild as HTMLElement).textContent = bar.label;
    }
  });
  let urlTimer: ReturnType<typeof setTimeout> | undefined;
  // Any move, animated or not, ends up in the address once the view has been still for a moment.
  viewer.addHandler('viewport-change', () => {
    clearTimeout(urlTimer);
    urlTimer = setTimeout(() => history.replaceState(null, '', `/${formatRoute({ page: 'slide', slideId: slide.id, view: getView() })}`), 250);
  });

  // A tile that fails is an image element's error: ask the gateway once what went wrong, and say so.
  let explaining = false;
  viewer.addHandler('tile-load-failed', (event) => {
    const url = String((event as { tile?: { getUrl?: () => string; url?: string } }).tile?.getUrl?.() ?? '');
    failedTiles.push(url);
    if (explaining) return;
    explaining = true;
    void explainFailure(url)
      .then(showBanner)
      .finally(() => setTimeout(() => (explaining = false), 5_000));
  });

  function showBanner(message: string): void {
    banner.textContent = message;
    banner.hidden = false;
  }

  window.wsiViewer = {
    slide,
    viewer,
    overlays: new OverlayLayers(viewer, slide.widthPx),
    analysis: analysis.api,
    getView,
    setView,
    levelZeroToPage: (xPx, yPx) => {
      const p = slideItem().imageToViewerElementCoordinates(new OpenSeadragon.Point(xPx, yPx));
      const box = viewer.element.getBoundingClientRect();
      return { x: box.left + p.x, y: box.top + p.y };
    },
    isFullyLoaded: () => {
      const item = slideItem();
      const viewport = viewer.viewport;
      const still = viewport.getZoom(true) === viewport.getZoom(false) && viewport.getCenter(true).equals(viewport.getCenter(false));
      return item !== undefined && item.getFullyLoaded() && still;
    },
    failedTiles,
  };
}

async function explainFailure(url: string): Promise<string> {
  try {
    const response = await fetch(url);
    if (!response.ok) return `Some tiles could not be loaded. ${(await readApiError(response)).describe()}`;
    return 'Some tiles could not be loaded; they load when retried, so the network or the PACS may be unsteady.';
  } catch (error) {
    return new ApiError(0, 'NETWORK', error instanceof Error ? error.message : String(error)).describe();
  }
}

function sidePanel(slide: SlideDescriptor, mppUm: number | undefined): HTMLElement {
  const facts: Array<[string, string]> = [
    ['Size', formatSize(slide.widthPx, slide.heightPx)],
    ['Resolution', mppUm === undefined ? 'unknown (no pixel spacing)' : `${mppUm.toPrecision(3)} µm/px ≈ ${formatMagnification(magnificationOf(mppUm))}`],
    ['Levels', slide.levels.map((l) => `${l.widthPx}×${l.heightPx}`).join(', ')],
  ];
  if (slide.studyDescription) facts.push(['Study', slide.studyDescription]);
  if (slide.studyDate) facts.push(['Date', formatDicomDate(slide.studyDate)]);
  return h(
    'aside',
    { class: 'side' },
    slide.label && h('img', { class: 'label', src: slideUrl(slide.id, '/label.jpg?size=400'), alt: 'Slide label' }),
    h('dl', {}, ...facts.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])),
    ...slide.notes.map((note) => h('p', { class: 'note' }, note)),
    h('p', { class: 'keys' }, 'Keys: arrows or W A S D pan, + and − zoom, 0 whole slide. Click the slide first. Double-click zooms in.'),
  );
}
