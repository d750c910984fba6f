/** The viewer's entry point: the address says which page to show (see url-state.ts). */
import { showBrowser } from './browser.js';
import { showSlide } from './slide-view.js';
import { watchForSignIn } from './sign-in.js';
import { parseRoute } from './url-state.js';

const root = document.getElementById('app');
if (root) {
  watchForSignIn(root);
  const route = parseRoute(location.search);
  if (route.page === 'slide') void showSlide(root, route.slideId, route.view);
  else showBrowser(root, { query: route.query, page1: route.page1 });
}
