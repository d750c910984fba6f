/** A few lines of DOM building, so pages read as structure rather than createElement calls. */

type Child = Node | string | null | undefined | false;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | number | boolean | undefined> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    el.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child);
  }
  return el;
}

/** An error message in the page, announced to screen readers. */
export function errorBox(message: string, ...extra: Child[]): HTMLElement {
  return h('div', { class: 'error', role: 'alert' }, message, ...extra);
}
