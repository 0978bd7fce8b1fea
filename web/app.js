// caviar's dashboard: the page table, the hash router, the token prompt and the live poll.
// Each page (pages/*.js) exports { route, nav, mount(el, match) } where mount returns
// { poll(), destroy() }: poll fetches only what changed and redraws; it runs every POLL_MS
// while the page is shown.

import { AuthError, setToken } from './api.js';
import jobs from './pages/jobs.js';
import job from './pages/job.js';
import trial from './pages/trial.js';
import workers from './pages/workers.js';

const PAGES = [jobs, job, trial, workers];
const POLL_MS = 2000;

const main = document.getElementById('main');
const errorEl = document.getElementById('error');
const tokenForm = document.getElementById('token-form');
const liveEl = document.getElementById('live');

let current = null;  // { page, view } of the page shown
let timer = null;
let generation = 0;  // bumped on every navigation: late answers of an old page are dropped

function showError(e) {
  if (e instanceof AuthError) {
    clearTimeout(timer);
    main.replaceChildren(); // nothing is shown without the token
    tokenForm.hidden = false;
    document.getElementById('token-reason').textContent =
      `The API answered 401 (${e.message}): give its token (caviard's --token-file or CAVIAR_TOKEN).`;
    document.getElementById('token-input').focus();
    return;
  }
  errorEl.hidden = false;
  errorEl.textContent = String(e.message ?? e);
  liveEl.classList.add('stale');
}

function clearError() {
  errorEl.hidden = true;
  liveEl.classList.remove('stale');
}

async function tick(gen) {
  if (gen !== generation || !current?.view) return;
  try {
    await current.view.poll();
    if (gen === generation) clearError();
  } catch (e) {
    if (gen === generation) showError(e);
  }
  if (gen === generation) timer = setTimeout(() => tick(gen), POLL_MS);
}

async function route() {
  const gen = ++generation;
  clearTimeout(timer);
  current?.view?.destroy?.();
  current = null;
  main.replaceChildren();
  clearError();
  const hash = location.hash || '#/jobs';
  for (const page of PAGES) {
    const match = hash.match(page.route);
    if (!match) continue;
    for (const a of document.querySelectorAll('header nav a'))
      a.classList.toggle('active', a.dataset.nav === page.nav);
    const el = document.createElement('section');
    main.append(el);
    current = { page };
    try {
      const view = await page.mount(el, match);
      if (gen !== generation) {
        view?.destroy?.();
        return;
      }
      current.view = view;
      tokenForm.hidden = true;
      timer = setTimeout(() => tick(gen), POLL_MS);
    } catch (e) {
      if (gen === generation) showError(e);
    }
    return;
  }
  showError(new Error(`no page ${hash}`));
}

tokenForm.addEventListener('submit', ev => {
  ev.preventDefault();
  setToken(document.getElementById('token-input').value.trim());
  tokenForm.hidden = true;
  route();
});

window.addEventListener('hashchange', route);
route();
