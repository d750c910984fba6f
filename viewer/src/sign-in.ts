/**
 * The sign-in form, for a gateway with GATEWAY_AUTH=token: the token is exchanged for an HttpOnly
 * session cookie (POST /api/session), which tiles (<img>) and job events (EventSource) send by
 * themselves; the page then reloads. The token itself is never stored by the page.
 */
import { AUTH_REQUIRED_EVENT, readApiError } from './api.js';
import { errorBox, h } from './dom.js';

/** Shows the form over the page the first time an API call answers 401 AUTH_REQUIRED. */
export function watchForSignIn(root: HTMLElement): void {
  // On the next task: the failed call's caller first shows its own error, which the form then replaces.
  addEventListener(AUTH_REQUIRED_EVENT, () => setTimeout(() => showSignIn(root)), { once: true });
}

export function showSignIn(root: HTMLElement): void {
  const input = h('input', { type: 'password', name: 'token', autocomplete: 'current-password', required: true, size: 40 });
  const status = h('div', { 'aria-live': 'polite' });
  const button = h('button', { type: 'submit' }, 'Sign in');
  const form = h(
    'form',
    { class: 'sign-in' },
    h('p', {}, 'This gateway needs an API token. Ask whoever runs it for one.'),
    h('label', {}, 'API token ', input),
    ' ',
    button,
    status,
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    button.disabled = true;
    void signIn(input.value)
      .then((problem) => {
        if (problem === undefined) location.reload();
        else status.replaceChildren(errorBox(problem));
      })
      .finally(() => (button.disabled = false));
  });
  root.replaceChildren(h('header', {}, h('h1', {}, 'Sign in')), h('main', { class: 'message' }, form));
  input.focus();
}

/** Undefined when signed in, else what to tell the user. */
async function signIn(token: string): Promise<string | undefined> {
  let response: Response;
  try {
    response = await fetch('/api/session', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: token.trim() }) });
  } catch (error) {
    return `The gateway cannot be reached (${error instanceof Error ? error.message : String(error)}).`;
  }
  if (response.ok) return undefined;
  if (response.status === 401) return 'That token is not valid.';
  return (await readApiError(response)).describe();
}
