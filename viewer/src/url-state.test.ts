import { describe, expect, it } from 'vitest';
import { formatRoute, parseRoute } from './url-state.js';

describe('url state', () => {
  it('round-trips a slide and its view', () => {
    const route = { page: 'slide', slideId: '1.2.3/4.5.6', view: { x: 1200, y: 800, zoom: 0.5 } } as const;
    expect(formatRoute(route)).toBe('?slide=1.2.3/4.5.6&x=1200&y=800&zoom=0.5');
    expect(parseRoute(formatRoute(route))).toEqual(route);
  });

  it('round-trips the browser filter and page, and leaves defaults out', () => {
    expect(parseRoute('?q=lung%20h%26e&page=3')).toEqual({ page: 'browser', query: 'lung h&e', page1: 3 });
    expect(formatRoute({ page: 'browser', query: 'lung h&e', page1: 3 })).toBe('?q=lung+h%26e&page=3');
    expect(formatRoute({ page: 'browser', query: '', page1: 1 })).toBe('');
  });

  it('ignores what does not parse instead of failing', () => {
    expect(parseRoute('?slide=../../etc/passwd')).toEqual({ page: 'browser', query: '', page1: 1 });
    expect(parseRoute('?slide=1.2/3.4&x=1&y=2&zoom=-1')).toEqual({ page: 'slide', slideId: '1.2/3.4', view: undefined });
    expect(parseRoute('?slide=1.2/3.4&x=1&y=2')).toEqual({ page: 'slide', slideId: '1.2/3.4', view: undefined });
    expect(parseRoute('?page=0')).toEqual({ page: 'browser', query: '', page1: 1 });
  });
});
