/**
 * What the address bar holds, so that a view can be shared: the slide, and the viewport as the
 * level-0 pixel at its centre and the zoom (screen pixels per level-0 pixel). Pure.
 *
 *   /?q=lung&page=2                        the slide browser, filtered, on page 2
 *   /?slide=<study>/<series>&x=1200&y=800&zoom=0.5   a slide, centred on (1200, 800) at half resolution
 */

export interface ViewState {
  x: number;
  y: number;
  zoom: number;
}

export type Route =
  | { page: 'browser'; query: string; page1: number }
  | { page: 'slide'; slideId: string; view: ViewState | undefined };

const UID = /^[0-9.]{1,64}$/;

export function parseRoute(search: string): Route {
  const params = new URLSearchParams(search);
  const slide = params.get('slide');
  if (slide) {
    const [study, series, extra] = slide.split('/');
    if (study && series && extra === undefined && UID.test(study) && UID.test(series)) {
      return { page: 'slide', slideId: `${study}/${series}`, view: parseView(params) };
    }
  }
  const page = Number(params.get('page') ?? '1');
  return { page: 'browser', query: params.get('q') ?? '', page1: Number.isInteger(page) && page >= 1 ? page : 1 };
}

function parseView(params: URLSearchParams): ViewState | undefined {
  const x = Number(params.get('x'));
  const y = Number(params.get('y'));
  const zoom = Number(params.get('zoom'));
  if (!params.has('x') || !params.has('y') || !params.has('zoom')) return undefined;
  if (!Number.isFinite(x) || !Number.isFinite(y) || !(zoom > 0) || !Number.isFinite(zoom)) return undefined;
  return { x, y, zoom };
}

export function formatRoute(route: Route): string {
  const params = new URLSearchParams();
  if (route.page === 'slide') {
    params.set('slide', route.slideId);
    if (route.view) {
      params.set('x', String(Math.round(route.view.x)));
      params.set('y', String(Math.round(route.view.y)));
      params.set('zoom', String(Number(route.view.zoom.toPrecision(4))));
    }
  } else {
    if (route.query) params.set('q', route.query);
    if (route.page1 > 1) params.set('page', String(route.page1));
  }
  const text = params.toString().replaceAll('%2F', '/');
  return text ? `?${text}` : '';
}
