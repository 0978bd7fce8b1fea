// The job page's hyperparameter-importance panel over GET /v1/jobs/{id}/importance (schemas/
// api.md): a bar per parameter, longest first, for its importance and one for the share of the
// objective's variance it explains alone; "computing..." while the API answers 202 (the page asks
// again at its next poll), the API's message when it refuses (409: too few completed trials), and
// "not available" when the coordinator has no such route (404).

import { ApiError, AuthError, get } from './api.js';
import { h, num, pct, when } from './format.js';

// What the API said, as a state the panel draws: {state: 'ready', body} | {state: 'computing',
// trials} | {state: 'waiting' | 'refused', message} | {state: 'unavailable'} | {state: 'failed', message}.
export async function fetchImportance(jobId) {
  try {
    const body = await get(`/v1/jobs/${jobId}/importance`);
    if (body?.status === 'computing') return { state: 'computing', trials: body.trials };
    return { state: 'ready', body };
  } catch (e) {
    if (e instanceof AuthError) throw e;
    if (e instanceof ApiError && e.status === 404) return { state: 'unavailable' };
    if (e instanceof ApiError && e.status === 409)
      return { state: 'refused', message: e.body?.error ?? e.message };
    return { state: 'failed', message: String(e.message ?? e) };
  }
}

function bar(cls, fraction) {
  const w = Math.max(0, Math.min(100, 100 * (fraction ?? 0)));
  return h('span', { class: `bar ${cls}` }, h('i', { style: `width:${w}%` }));
}

// Replaces el's content by the panel for state; el.dataset.state names the state.
export function drawImportance(el, s) {
  el.dataset.state = s.state;
  if (s.state === 'computing') {
    el.replaceChildren(h('p', { class: 'muted', text: `computing... (over ${s.trials} trials)` }));
    return;
  }
  if (s.state === 'unavailable') {
    el.replaceChildren(h('p', { class: 'muted', text: 'not available: this coordinator does not compute importance' }));
    return;
  }
  if (s.state === 'waiting' || s.state === 'refused' || s.state === 'failed') {
    el.replaceChildren(h('p', { class: 'muted', text: s.message }));
    return;
  }
  const b = s.body;
  const params = [...b.parameters].sort((x, y) => y.importance - x.importance);
  el.replaceChildren(
    h('table', { id: 'importance-table' },
      h('thead', {}, h('tr', {}, ['parameter', 'scale', 'importance', 'explains alone']
        .map(t => h('th', { text: t })))),
      h('tbody', {}, params.map(p => h('tr', { dataset: { param: p.name } },
        h('td', { text: p.name }), h('td', { text: p.scale }),
        h('td', { class: 'importance' }, bar('importance', p.importance), ' ',
          h('span', { class: 'num', text: num(p.importance, 3) })),
        h('td', { class: 'fraction' }, bar('fraction', p.fraction), ' ',
          h('span', { class: 'num', text: pct(p.fraction) })))))),
    h('p', { class: 'muted', id: 'importance-note',
             text: `interactions explain ${pct(b.interactions)} of the variance; over ${b.trials} ` +
                   `completed trials, computed ${when(b.computed_at)}` }));
}
