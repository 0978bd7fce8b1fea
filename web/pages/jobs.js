// The jobs page: every job with its status, progress, best objective and strategy, all from
// one list request per poll (GET /v1/jobs carries each job's progress, best value and strategy).

import { getAll } from '../api.js';
import { h, num, statusCell, when } from '../format.js';

const SHOWN_MAX = 50; // the newest jobs shown

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
      const newest = list.slice(-SHOWN_MAX).reverse();
      body.replaceChildren(...newest.map(job => {
        const done = job.finished, max = job.max_trials;
        return h('tr', { dataset: { jobId: job.id, status: job.status } },
          h('td', {}, h('a', { href: `#/jobs/${job.id}`, text: job.id })),
          h('td', {}, h('a', { href: `#/jobs/${job.id}`, text: job.name })),
          statusCell(job.status),
          h('td', { class: 'progress' }, `${done}/${max} `,
            h('span', { class: 'bar' }, h('i', { style: `width:${max ? 100 * done / max : 0}%` }))),
          h('td', { class: 'num', text: job.running }),
          h('td', { class: 'num best', text: num(job.best_value) }),
          h('td', { text: job.objective }),
          h('td', { class: 'strategy',
                    text: job.sampler ? `${job.sampler} sampler, ${job.pruner} pruner` : '–' }),
          h('td', { class: 'num', text: `${job.round}/${job.rounds_planned ?? '?'}` }),
          h('td', { text: when(job.created_at) }));
      }));
      if (list.length > SHOWN_MAX)
        body.append(h('tr', {}, h('td', { colspan: 10, class: 'muted',
          text: `the ${SHOWN_MAX} newest of ${list.length} jobs` })));
    }
    await poll();
    return { poll };
  },
};
