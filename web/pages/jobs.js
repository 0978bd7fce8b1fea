// The jobs page: every job with its status, progress, best objective and strategy.

import { get, getAll } from '../api.js';
import { h, num, statusCell, when } from '../format.js';

const DETAILS_MAX = 50; // the newest jobs whose details (progress, best, strategy) are fetched

const FINISHED = ['completed', 'failed', 'diverged', 'lost', 'cancelled', 'pruned'];

function progress(job) {
  const counts = job.counts ?? {};
  const done = FINISHED.reduce((n, s) => n + (counts[s] ?? 0), 0);
  return { done, max: job.max_trials };
}

export default {
  route: /^#\/(jobs)?$/,
  nav: 'jobs',
  async mount(el) {
    el.append(h('h1', { text: 'Jobs' }));
    const body = h('tbody');
    el.append(h('table', { id: 'jobs' },
      h('thead', {}, h('tr', {}, ['job', 'name', 'status', 'progress', 'running', 'best',
        'objective', 'strategy', 'round', 'created'].map(t => h('th', { text: t })))), body));

    async function poll() {
      const list = await getAll('/v1/jobs', 'jobs');
      const newest = list.slice(-DETAILS_MAX).reverse();
      const details = await Promise.all(newest.map(j => get(`/v1/jobs/${j.id}`)));
      body.replaceChildren(...details.map(job => {
        const p = progress(job);
        const best = job.best ? job.best[job.objective] : null;
        return h('tr', { dataset: { jobId: job.id, status: job.status } },
          h('td', {}, h('a', { href: `#/jobs/${job.id}`, text: job.id })),
          h('td', {}, h('a', { href: `#/jobs/${job.id}`, text: job.name })),
          statusCell(job.status),
          h('td', { class: 'progress' }, `${p.done}/${p.max} `,
            h('span', { class: 'bar' }, h('i', { style: `width:${p.max ? 100 * p.done / p.max : 0}%` }))),
          h('td', { class: 'num', text: job.running }),
          h('td', { class: 'num best', text: num(best) }),
          h('td', { text: job.objective }),
          h('td', { class: 'strategy', text: job.search
            ? `${job.search.sampler} sampler, ${job.search.pruner} pruner` : '–' }),
          h('td', { class: 'num', text: `${job.round}/${job.rounds_planned ?? '?'}` }),
          h('td', { text: when(job.created_at) }));
      }));
      if (list.length > DETAILS_MAX)
        body.append(h('tr', {}, h('td', { colspan: 10, class: 'muted',
          text: `the ${DETAILS_MAX} newest of ${list.length} jobs` })));
    }
    await poll();
    return { poll };
  },
};
