// The workers page: every worker seen, whether it is connected, what it runs, its quarantine.

import { getAll } from '../api.js';
import { h, when } from '../format.js';

export default {
  route: /^#\/workers$/,
  nav: 'workers',
  async mount(el) {
    el.append(h('h1', { text: 'Workers' }));
    const summary = h('p', { id: 'workers-summary', class: 'muted' });
    const body = h('tbody');
    el.append(summary, h('table', { id: 'workers' },
      h('thead', {}, h('tr', {}, ['worker', 'state', 'connected', 'runs', 'host', 'threads',
        'version', 'trials done', 'failures in a row', 'quarantine', 'last seen']
        .map(t => h('th', { text: t })))), body));

    async function poll() {
      const rows = await getAll('/v1/workers', 'workers');
      const connected = rows.filter(w => w.connected).length;
      const busy = rows.filter(w => w.state === 'running').length;
      const quarantined = rows.filter(w => w.quarantined).length;
      summary.textContent = `${rows.length} workers seen, ${connected} connected, ${busy} busy, ` +
        `${quarantined} quarantined`;
      body.replaceChildren(...rows.map(w => h('tr', { dataset: { workerId: w.id, state: w.state } },
        h('td', { text: w.id }),
        h('td', { class: `status-${w.state}`, text: w.state }),
        h('td', { text: w.connected ? 'yes' : 'no' }),
        h('td', {}, w.trial_id
          ? h('a', { href: `#/trials/${w.trial_id}`, text: `trial ${w.trial_id}` }) : '–',
        w.job_id ? [' of ', h('a', { href: `#/jobs/${w.job_id}`, text: `job ${w.job_id}` })] : null),
        h('td', { text: w.host ?? '–' }),
        h('td', { class: 'num', text: w.threads ?? '–' }),
        h('td', { text: w.version ?? '–' }),
        h('td', { class: 'num', text: w.trials_done }),
        h('td', { class: 'num', text: w.consecutive_failures }),
        h('td', { class: 'quarantine', text: w.quarantined
          ? `${w.quarantine_reason ?? 'quarantined'}; until ${w.quarantined_until
            ? when(w.quarantined_until) : 'released'}` : 'no' }),
        h('td', { text: when(w.last_seen) }))));
    }
    await poll();
    return { poll };
  },
};
