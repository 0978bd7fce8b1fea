// One trial: its learning curves (train/dev cost and error, learning rate per epoch, nudges
// marked), its parameters, the bias/variance diagnosis with the course's remedy, its attempts,
// and the panda control: nudge a running trial's hyperparameters (POST /v1/trials/{id}/nudge).

import { get, post } from '../api.js';
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

// "learning_rate=3e-4 keep_prob=0.9" as {learning_rate: 3e-4, keep_prob: 0.9}, as `caviar nudge`
// reads it: each word FIELD=VALUE, the value JSON when it parses, else a string. Throws an Error
// naming the word that is not.
export function parseNudge(text) {
  const values = {};
  const words = text.trim().split(/\s+/).filter(w => w);
  if (!words.length) throw new Error('write FIELD=VALUE, e.g. learning_rate=3e-4');
  for (const w of words) {
    const eq = w.indexOf('=');
    if (eq <= 0) throw new Error(`"${w}": expected FIELD=VALUE`);
    const name = w.slice(0, eq), raw = w.slice(eq + 1);
    if (!raw) throw new Error(`${name}: no value after =`);
    try {
      values[name] = JSON.parse(raw);
    } catch (e) {
      values[name] = raw;
    }
  }
  return values;
}

const CHARTS = [
  { id: 'curve-cost', title: 'cost per epoch', keys: ['train_cost', 'dev_cost'] },
  { id: 'curve-error', title: 'error per epoch', keys: ['train_error', 'dev_error'] },
  { id: 'curve-lr', title: 'learning rate per epoch', keys: ['learning_rate'], log: true,
    nudges: true },
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
    const nudges = h('tbody');
    const nudgeInput = h('input', { id: 'nudge-values', size: 40,
                                    placeholder: 'learning_rate=3e-4 keep_prob=0.9' });
    const nudgeMessage = h('span', { id: 'nudge-message', class: 'muted' });
    const nudgeForm = h('form', { id: 'nudge-form', onsubmit: e => { e.preventDefault(); nudge(); } },
      nudgeInput, ' ', h('button', { id: 'nudge-send', type: 'submit', text: 'Nudge' }), ' ',
      nudgeMessage);
    el.append(title, cards, charts, h('h2', { text: 'Nudges' }), nudgeForm,
      h('table', { id: 'nudges' },
        h('thead', {}, h('tr', {}, ['nudge', 'values', 'from epoch', 'made']
          .map(t => h('th', { text: t })))), nudges),
      h('h2', { text: 'Diagnosis' }), diagnosis,
      h('h2', { text: 'Parameters' }), h('table', { id: 'params' }, params),
      h('h2', { text: 'Attempts' }), h('table', { id: 'attempts' },
        h('thead', {}, h('tr', {}, ['attempt', 'worker', 'started', 'ended', 'outcome', 'error']
          .map(t => h('th', { text: t })))), attempts));
    const plots = new Map();
    let lastEpochs = -1, lastApplied = -1, lastStatus = null;

    // Sends the form's nudge and says what the API answered.
    async function nudge() {
      let values;
      try {
        values = parseNudge(nudgeInput.value);
      } catch (e) {
        nudgeMessage.textContent = e.message;
        return;
      }
      const { status, body } = await post(`/v1/trials/${id}/nudge`, values);
      nudgeMessage.textContent = status === 200
        ? `nudge ${body.seq} sent; the worker applies it at its next epoch`
        : body?.error ?? `HTTP ${status}`;
      if (status === 200) nudgeInput.value = '';
    }

    // The learning-rate chart marks each applied nudge: a dot at its first epoch.
    function drawCurves(curve, applied) {
      const epochs = curve.map(p => p.epoch);
      const at = new Set(applied.map(n => n.epoch));
      for (const c of CHARTS) {
        const data = [epochs, ...c.keys.map(k => curve.map(p => p[k]))];
        if (c.nudges) data.push(curve.map(p => (at.has(p.epoch) ? p.learning_rate : null)));
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
          series: [...c.keys.map((k, i) => ({ label: k, color: color(i), countPoints: true })),
                   ...(c.nudges ? [{ label: 'nudged', color: color(3), dots: true }] : [])],
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
      const applied = (t.nudges ?? []).filter(n => n.epoch !== null);
      if (t.curve.length !== lastEpochs || applied.length !== lastApplied) drawCurves(t.curve, applied);
      lastEpochs = t.curve.length;
      lastApplied = applied.length;
      nudgeForm.hidden = t.status !== 'running';
      nudges.replaceChildren(...(t.nudges ?? []).map(n => h('tr', { dataset: { seq: n.seq } },
        h('td', { class: 'num', text: n.seq }), h('td', { text: JSON.stringify(n.values) }),
        h('td', { class: 'num nudge-epoch', text: n.epoch ?? 'pending' }),
        h('td', { text: when(n.created_at) }))));
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
