/** The slide browser: every slide the gateway sees, with thumbnail, label and size; filter and pages. */
import { ApiError, listSlides, slideUrl, type SlideSummary } from './api.js';
import { errorBox, h } from './dom.js';
import { formatDicomDate, formatMagnification, formatSize, magnificationOf } from './units.js';
import { formatRoute } from './url-state.js';

const PAGE_SIZE = 24;

export function showBrowser(root: HTMLElement, initial: { query: string; page1: number }): void {
  let query = initial.query;
  let page1 = initial.page1;
  let pending: AbortController | undefined;

  const filter = h('input', { type: 'search', placeholder: 'Filter by description, date or UID', 'aria-label': 'Filter slides', value: query });
  const status = h('p', { class: 'status', 'aria-live': 'polite' });
  const grid = h('ul', { class: 'slide-grid' });
  const prev = h('button', { type: 'button' }, '← Previous');
  const next = h('button', { type: 'button' }, 'Next →');
  root.replaceChildren(
    h('header', {}, h('h1', {}, 'Slides'), filter),
    h('main', { class: 'browser' }, status, grid, h('nav', { class: 'pager', 'aria-label': 'Pages' }, prev, next)),
  );

  async function load(): Promise<void> {
    pending?.abort();
    const controller = (pending = new AbortController());
    history.replaceState(null, '', `/${formatRoute({ page: 'browser', query, page1 })}`);
    status.textContent = 'Loading…';
    try {
      const list = await listSlides({ offset: (page1 - 1) * PAGE_SIZE, limit: PAGE_SIZE, query }, controller.signal);
      if (controller.signal.aborted) return;
      const first = list.total === 0 ? 0 : list.offset + 1;
      const last = Math.min(list.total, list.offset + list.limit);
      status.textContent = list.total === 0 ? (query ? `No slide matches “${query}”.` : 'No slides yet.') : `Slides ${first}–${last} of ${list.total}`;
      grid.replaceChildren(...list.slides.map(slideCard));
      prev.disabled = page1 <= 1;
      next.disabled = last >= list.total;
    } catch (error) {
      if (controller.signal.aborted) return;
      status.replaceChildren(errorBox(error instanceof ApiError ? error.describe() : String(error)));
      grid.replaceChildren();
    }
  }

  let debounce: ReturnType<typeof setTimeout> | undefined;
  filter.addEventListener('input', () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => {
      query = filter.value.trim();
      page1 = 1;
      void load();
    }, 250);
  });
  prev.addEventListener('click', () => {
    page1 = Math.max(1, page1 - 1);
    void load();
  });
  next.addEventListener('click', () => {
    page1 += 1;
    void load();
  });
  void load();
}

function slideCard(slide: SlideSummary): HTMLElement {
  const title = slide.seriesDescription ?? slide.studyDescription ?? 'Untitled slide';
  const href = `/${formatRoute({ page: 'slide', slideId: slide.id, view: undefined })}`;
  const facts: string[] = [];
  if (slide.widthPx && slide.heightPx) facts.push(formatSize(slide.widthPx, slide.heightPx));
  if (slide.mpp) facts.push(`${formatMagnification(magnificationOf(slide.mpp.x))} (${slide.mpp.x.toPrecision(3)} µm/px)`);
  if (slide.levelCount) facts.push(`${slide.levelCount} level${slide.levelCount > 1 ? 's' : ''}`);
  const patient = slide.patientName || slide.patientId ? [slide.patientName, slide.patientId].filter(Boolean).join(' · ') : undefined;
  return h(
    'li',
    { class: 'slide-card', 'data-slide-id': slide.id },
    h(
      'a',
      { href, class: 'images' },
      slide.error ? h('span', { class: 'no-thumbnail' }, 'Unreadable') : h('img', { src: slideUrl(slide.id, '/thumbnail.jpg?size=256'), alt: `Thumbnail of ${title}`, loading: 'lazy', class: 'thumbnail' }),
      slide.hasLabel && h('img', { src: slideUrl(slide.id, '/label.jpg?size=160'), alt: 'Slide label', loading: 'lazy', class: 'label' }),
    ),
    h('a', { href, class: 'title' }, title),
    slide.studyDescription && slide.seriesDescription && h('p', { class: 'study' }, slide.studyDescription),
    patient && h('p', { class: 'patient' }, patient),
    h('p', { class: 'facts' }, [...facts, formatDicomDate(slide.studyDate)].filter(Boolean).join(' · ')),
    slide.error && errorBox(`${slide.error.message} (${slide.error.code})`),
  );
}
