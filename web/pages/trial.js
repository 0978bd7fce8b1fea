// One trial: its learning curves (train/dev cost and error, learning rate per epoch), its
// parameters, the bias/variance diagnosis with the course's remedy, and its attempts.

import { get } from '../api.js';
import { chartBox, color, makeChart } from '../charts.js';
import { h, num, pct, statusCell, when } from '../format.js';

// The remedies the worker gives with each verdict (worker/diagnosis.c), for the trial page.
const REMEDIES = {
  fine: 'training and dev errors are both close to the target; score the test set once to confirm',
  high_bias: 'bigger network (more hidden units or layers), train longer, or a better optimizer ' +
    '(momentum, RMSprop, Adam) or architecture',
  high_variance: 'more data, regularization (L2, dropout, augmentation), or early stopping',
  high_bias_and_variance: 'reduce the larger gap first: for avoidable bias a bigger network, ' +
    'longer training or a better optimizer; for variance more data or regularization',
  learning_rate_too_high: 'lower the learning rate: try it 3 to 10 times smaller (search it on a ' +
    'log scale), or add learning-rate decay',
  collapsed: 'lower the learning rate: try it 3 to 10 times smaller (search it on a log scale); ' +
    'if the network still predicts at chance, check the input normalization and the ' +
    'initialization (He for relu, Xavier for tanh)',
};

const CHARTS = [
  { id: 'curve-cost', title: 'cost per epoch', keys: ['train_cost', 'dev_cost'] },
  { id: 'curve-error', title: 'error per epoch', keys: ['train_error', 'dev_error'] },
  { id: 'curve-lr', title: 'learning rate per epoch', keys: ['learning_rate'], log: true },
];

export default {
  route: /^#\/trials\/(\d+)$/,
  nav: 'jobs',
  async mount(el, match) {
    const id = Number(match[1]);
    const title = h('h1');
    const cards = h('div', { class: 'cards' });
    const charts = h('div', { class: 'charts' });
    const diagnosis = h('div', { id: 'diagnosis' });
    const params = h('tbody');
    const attempts = h('tbody');
    el.append(title, cards, charts, h('h2', { text: 'Diagnosis' }), diagnosis,
      h('h2', { text: 'Parameters' }), h('table', { id: 'params' }, params),
      h('h2', { text: 'Attempts' }), h('table', { id: 'attempts' },
        h('thead', {}, h('tr', {}, ['attempt', 'worker', 'started', 'ended', 'outcome', 'error']
          .map(t => h('th', { text: t })))), attempts));
    const plots = new Map();
    let lastEpochs = -1, lastStatus = null;

    function drawCurves(curve) {
      const epochs = curve.map(p => p.epoch);
      for (const c of CHARTS) {
        const data = [epochs, ...c.keys.map(k => curve.map(p => p[k]))];
        let plot = plots.get(c.id);
        if (plot) {
          plot.setData(data);
          continue;
        }
        const { box, plotEl } = chartBox(c.id, c.title);
        charts.append(box);
        plot = makeChart(box, plotEl, data, {
          x: { label: 'epoch' }, y: { label: c.keys.length > 1 ? c.title.split(' ')[0] : 'rate',
                                      log: c.log },
          series: c.keys.map((k, i) => ({ label: k, color: color(i), countPoints: true })),
          width: 420, height: 220,
        });
        plots.set(c.id, plot);
      }
    }

    async function poll() {
      if (lastStatus && lastStatus !== 'running' && lastStatus !== 'queued') return;
      const t = await get(`/v1/trials/${id}`);
      title.replaceChildren(`Trial ${t.id} `, h('span', { class: 'muted' }, `(number ${t.number} of `,
        h('a', { href: `#/jobs/${t.job_id}`, text: `job ${t.job_id}` }), ')'));
      cards.replaceChildren(
        h('div', {}, h('span', { text: 'status' }), h('b', { id: 'trial-status', class: `status-${t.status}`, text: t.status })),
        h('div', {}, h('span', { text: 'dev error' }), pct(t.dev_error)),
        h('div', {}, h('span', { text: 'dev cost' }), num(t.dev_cost)),
        h('div', {}, h('span', { text: 'train error' }), pct(t.train_error)),
        h('div', {}, h('span', { text: 'best epoch' }), t.best_epoch ?? '–'),
        h('div', {}, h('span', { text: 'epochs run' }), t.epochs_run ?? t.curve.length),
        h('div', {}, h('span', { text: 'round' }), t.round),
        h('div', {}, h('span', { text: 'worker' }), t.worker_id ?? '–'),
        h('div', {}, h('span', { text: 'examples/s' }), num(t.examples_per_second, 3)));
      if (t.curve.length !== lastEpochs) drawCurves(t.curve);
      lastEpochs = t.curve.length;
      diagnosis.replaceChildren(t.diagnosis
        ? h('p', {}, h('b', { class: 'verdict', text: t.diagnosis.replaceAll('_', ' ') }), ': ',
            h('span', { class: 'remedy', text: REMEDIES[t.diagnosis] ?? '' }))
        : h('p', { class: 'muted', text: 'no diagnosis until the trial ends' }),
        ...(t.error ? [h('p', { class: 'status-failed', text: t.error })] : []));
      params.replaceChildren(...Object.entries(t.params).map(([k, v]) =>
        h('tr', {}, h('th', { text: k }), h('td', { class: 'num', text: num(v, 6) }))));
      attempts.replaceChildren(...t.attempts_history.map(a => h('tr', {},
        h('td', { class: 'num', text: a.attempt }), h('td', { text: a.worker_id ?? '–' }),
        h('td', { text: when(a.started_at) }), h('td', { text: when(a.ended_at) }),
        statusCell(a.outcome), h('td', { text: a.error ?? '' }))));
      lastStatus = t.status;
    }
    await poll();
    return { poll, destroy: () => plots.forEach(p => p.destroy()) };
  },
};
