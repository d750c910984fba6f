import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { abortable } from './slide-catalog.js';

describe('abortable', () => {
  // Issue 7 (fuzz): the slide list added an abort listener per slide to the request's signal and never
  // removed one, past Node's MaxListenersExceededWarning on a page of 11 slides.
  it('leaves no listener on the signal once the promise has settled', async () => {
    const controller = new AbortController();
    await Promise.all(Array.from({ length: 20 }, (_, i) => abortable(Promise.resolve(i), controller.signal)));
    await abortable(Promise.reject(new Error('failed')), controller.signal).catch(() => undefined);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  it('rejects with the reason as soon as the signal aborts, and at once when it already has', async () => {
    const controller = new AbortController();
    const pending = abortable(new Promise(() => {}), controller.signal);
    controller.abort(new Error('gone'));
    await expect(pending).rejects.toThrow('gone');
    await expect(abortable(Promise.resolve(1), controller.signal)).rejects.toThrow('gone');
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });
});
