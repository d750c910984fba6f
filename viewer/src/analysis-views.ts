/** The side panel's cluster and similarity views: controls, legend, colour bar, matches, exports. */
import type { ClusterAnswer, SimilarityAnswer } from './api.js';
import { h } from './dom.js';
import type { PatchLayer } from './patch-layer.js';
import { formatRoute } from './url-state.js';
import { computeSimilarityLut } from '../../src/analysis/palette.js';

/** Show/hide and opacity of the patch layer; they keep the layer's current settings. */
function overlayControls(layer: PatchLayer): HTMLElement {
  const { visible, opacity } = layer.getState();
  const show = h('input', { type: 'checkbox', checked: visible, 'aria-label': 'Show overlay' });
  show.addEventListener('change', () => layer.setVisible(show.checked));
  const slider = h('input', { type: 'range', min: 0, max: 100, value: Math.round(opacity * 100), 'aria-label': 'Overlay opacity' });
  slider.addEventListener('input', () => layer.setOpacity(Number(slider.value) / 100));
  return h('div', { class: 'overlay-controls' }, h('label', {}, show, ' Overlay'), h('label', {}, 'Opacity ', slider));
}

export function clusterPanel(
  answer: ClusterAnswer,
  slideId: string,
  actions: { layer: PatchLayer; onK(k: number): void; onIsolate(index: number): number | null },
): HTMLElement {
  const kSelect = h('select', { 'aria-label': 'Number of clusters (k)' });
  for (let k = 2; k <= 32; k++) kSelect.append(h('option', { value: k, selected: k === answer.k }, String(k)));
  kSelect.addEventListener('change', () => actions.onK(Number(kSelect.value)));

  const total = answer.clusters.reduce((sum, c) => sum + c.count, 0);
  const items = answer.clusters.map((cluster) => {
    const button = h(
      'button',
      { type: 'button', class: 'legend-entry', 'aria-pressed': 'false', title: 'Show this cluster alone (click again for all)', 'data-cluster': cluster.index },
      h('span', { class: 'swatch', style: `background:${cluster.colour}` }),
      h('span', { class: 'name' }, cluster.name),
      h('span', { class: 'count' }, `${cluster.count.toLocaleString()} (${((100 * cluster.count) / total).toFixed(1)} %)`),
      h('img', { src: cluster.representative.image, alt: `Typical patch of ${cluster.name}`, loading: 'lazy', class: 'patch-thumb' }),
    );
    button.addEventListener('click', () => {
      const isolated = actions.onIsolate(cluster.index);
      for (const [i, b] of items.entries()) {
        b.setAttribute('aria-pressed', String(isolated === i));
        b.classList.toggle('dimmed', isolated !== null && isolated !== i);
      }
    });
    return button;
  });

  const links = answer.links;
  const exportLink = (href: string, text: string) => h('a', { href, download: '' }, text);
  return h(
    'div',
    { class: 'cluster-view', 'data-slide-id': slideId },
    overlayControls(actions.layer),
    h('label', { class: 'row' }, 'k ', kSelect),
    h('p', { class: 'muted summary' }, `${total.toLocaleString()} patches · ${answer.iterations} iterations · ${answer.computeMs} ms`),
    h('ul', { class: 'legend' }, ...items.map((item) => h('li', {}, item))),
    h('p', { class: 'muted' }, 'Hover a patch for its cluster; click one to see where the tissue looks like it.'),
    h('p', { class: 'exports' }, 'Export: ', exportLink(links.geojson, 'GeoJSON'), ' · ', exportLink(links.geojsonMerged, 'GeoJSON merged'), ' · ', exportLink(links.csv, 'CSV'), ' · ', h('a', { href: links.overlay, target: '_blank' }, 'PNG')),
  );
}

/** The viridis scale as a CSS gradient, from the same table the cells use. */
function colourBar(): HTMLElement {
  const lut = computeSimilarityLut();
  const stops = [0, 32, 64, 96, 128, 160, 192, 224, 255].map((i) => `rgb(${lut[i * 3]},${lut[i * 3 + 1]},${lut[i * 3 + 2]}) ${((i / 255) * 100).toFixed(1)}%`);
  return h('div', { class: 'colour-bar', style: `background:linear-gradient(to right,${stops.join(',')})` });
}

export function similarityPanel(answer: SimilarityAnswer, actions: { layer: PatchLayer; onBack(): void }): HTMLElement {
  const back = h('button', { type: 'button' }, '← Back to clusters');
  back.addEventListener('click', actions.onBack);
  const matches = answer.matches.map((m) => {
    const view = { x: m.xPx + m.widthPx / 2, y: m.yPx + m.heightPx / 2, zoom: Math.min(4, 256 / m.widthPx) };
    return h(
      'li',
      {},
      h(
        'a',
        { href: `/${formatRoute({ page: 'slide', slideId: `${m.studyUid}/${m.seriesUid}`, view })}`, class: 'match' },
        h('img', { src: m.image, alt: 'Similar patch', loading: 'lazy', class: 'patch-thumb' }),
        h('span', {}, m.score.toFixed(3)),
      ),
    );
  });
  return h(
    'div',
    { class: 'similarity-view' },
    back,
    overlayControls(actions.layer),
    h('div', { class: 'query' }, h('img', { src: answer.query.image, alt: 'The chosen patch', class: 'patch-thumb' }), h('span', {}, `Patch at (${answer.query.xPx}, ${answer.query.yPx}) px, outlined in magenta`)),
    h('p', { class: 'muted' }, 'Cosine similarity of every patch with the chosen one:'),
    colourBar(),
    h('div', { class: 'colour-bar-labels' }, h('span', {}, answer.min.toFixed(2)), h('span', {}, answer.max.toFixed(2))),
    h('h3', {}, 'On other slides'),
    matches.length > 0 ? h('ul', { class: 'matches' }, ...matches) : h('p', { class: 'muted' }, 'No other slide has embeddings with this model yet.'),
  );
}
