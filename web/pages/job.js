// One job: optimization history with a best-so-far line, each searched parameter against the
// objective on its own scale with each round's region as a band, parallel coordinates of the
// trials, hyperparameter importance, learning curves of the best and the running trials (cost or
// error, train or dev), rungs and pruned trials, worker utilization, and the trial table
// (sortable, filterable, CSV).
//
// The trials come from GET /v1/jobs/{id}/history as columns: the whole history once, then,
// every poll, only the trials that finished after the cursor, appended to the columns.

import { get } from '../api.js';
import { chartBox, color, makeChart, sortedBy } from '../charts.js';
import { h, num, pct, statusCell } from '../format.js';
import { drawImportance, fetchImportance } from '../importance.js';
import { drawParallel } from '../parallel.js';

const TABLE_ROWS = 100;  // rows of the trial table shown at once
const CURVES_RUNNING = 4; // running trials whose learning curves are drawn beside the best's
const IMPORTANCE_EVERY_MS = 10000; // importance asked again at most this often as trials finish

// The columns of the history, grown by each poll.
function emptyColumns(names) {
  return { id: [], number: [], status: [], value: [], epochs_run: [], worker_id: [],
           params: Object.fromEntries(names.map(n => [n, []])) };
}

function append(cols, finished, names) {
  for (const k of ['id', 'number', 'status', 'value', 'epochs_run', 'worker_id'])
    for (const v of finished[k]) cols[k].push(v);
  for (const n of names) for (const v of finished.params[n]) cols.params[n].push(v);
}

// How a parameter of the job's space is drawn: x values and axis options (the x range is the
// space's bounds).
function paramAxis(name, def, values) {
  const scale = def?.scale ?? 'linear';
  if (def?.type === 'categorical' || values.some(v => typeof v === 'string' || typeof v === 'boolean')) {
    const categories = (def?.values ?? [...new Set(values)]).map(String);
    return { xs: values.map(v => categories.indexOf(String(v))), x: { label: name, categories } };
  }
  const bounded = typeof def?.min === 'number' && typeof def?.max === 'number' && def.max > def.min;
  if (scale === 'one_minus_log')
    return { xs: values.map(v => (v === null ? null : 1 - v)),
             x: { label: `1 − ${name} (log)`, log: 10,
                  range: bounded ? [1 - def.max, 1 - def.min] : undefined } };
  const range = bounded ? [def.min, def.max] : undefined;
  if (scale === 'log') return { xs: values, x: { label: `${name} (log)`, log: 10, range } };
  if (scale === 'power_of_two') return { xs: values, x: { label: `${name} (log₂)`, log: 2, range } };
  return { xs: values, x: { label: name, range } };
}

// Each round's region of a parameter as a band on its chart (x as paramAxis drew it): the
// numeric bounds (as 1 − β for one_minus_log), or the categories the round could draw.
function roundBands(name, def, x, rounds) {
  return rounds.map((r, i) => {
    const reg = r.region?.[name];
    let intervals = [];
    if (reg && typeof reg.min === 'number')
      intervals = def?.scale === 'one_minus_log' ? [[1 - reg.max, 1 - reg.min]] : [[reg.min, reg.max]];
    else if (reg?.weights && x.categories)
      intervals = x.categories.flatMap((c, k) => (reg.weights[c] > 0 ? [[k - 0.4, k + 0.4]] : []));
    return { label: `round ${r.round}`, color: color(i + 1), intervals };
  });
}

export default {
  route: /^#\/jobs\/(\d+)$/,
  nav: 'jobs',
  async mount(el, match) {
    const id = Number(match[1]);
    const [job, hist] = await Promise.all([get(`/v1/jobs/${id}`), get(`/v1/jobs/${id}/history`)]);
    document.body.dataset.jobFetchedMs = String(performance.now());
    const names = hist.params;
    const space = job.spec?.space ?? {};
    const cols = emptyColumns(names);
    append(cols, hist.finished, names);
    let cursor = hist.next_cursor;
    let running = hist.running;
    let jobNow = job;

    const title = h('h1', { text: `Job ${id}: ${job.name}` });
    const cards = h('div', { class: 'cards', id: 'job-cards' });
    const historyCharts = h('div', { class: 'charts' });
    const paramCharts = h('div', { class: 'charts', id: 'param-charts' });
    const parallelCanvas = h('canvas', { class: 'parallel' });
    const parallelBox = h('div', { class: 'chart', id: 'parallel' }, parallelCanvas);
    const importanceBox = h('div', { id: 'importance' });
    const curveMeasure = h('select', { id: 'curve-measure' },
      ['cost', 'error'].map(v => h('option', { value: v, text: v })));
    const curveSet = h('select', { id: 'curve-set' },
      ['dev', 'train'].map(v => h('option', { value: v, text: v })));
    const curveCharts = h('div', { class: 'charts' });
    const rungs = h('div', { id: 'rungs' });
    const pruneCharts = h('div', { class: 'charts' });
    const utilization = h('div', { id: 'utilization' });
    const tableBox = h('div', { id: 'trial-table' });
    el.append(title, cards,
      h('h2', { text: 'Optimization history' }), historyCharts,
      h('h2', { text: 'Parameters against the objective, each round\'s region a band' }), paramCharts,
      h('h2', { text: 'Parallel coordinates' }), parallelBox,
      h('h2', { text: 'Hyperparameter importance' }), importanceBox,
      h('h2', { text: 'Learning curves: the best and the running trials' }),
      h('div', { class: 'toolbar' }, 'show', curveSet, curveMeasure), curveCharts,
      h('h2', { text: 'Rungs and pruned trials' }), rungs, pruneCharts,
      h('h2', { text: 'Worker utilization' }), utilization,
      h('h2', { text: 'Trials' }), tableBox);

    const charts = new Map(); // id -> uPlot
    function chart(parent, id, title, data, opts) {
      const old = charts.get(id);
      if (old && old.series.length === data.length && old.caviarTitle === title &&
          Number(old.root.parentElement.parentElement.dataset.bands) === (opts.bands?.length ?? 0)) {
        old.setData(data);
        return;
      }
      old?.destroy();
      const existing = parent.querySelector(`#${id}`);
      const { box, plotEl } = chartBox(id, title);
      if (existing) existing.replaceWith(box);
      else parent.append(box);
      const u = makeChart(box, plotEl, data, opts);
      u.caviarTitle = title; // a title change (the curves' measure) draws a new chart
      charts.set(id, u);
    }

    function drawCards() {
      const j = jobNow;
      const counts = j.counts ?? {};
      const finished = cols.id.length;
      const best = j.best ? j.best[j.objective] : null;
      cards.replaceChildren(
        h('div', {}, h('span', { text: 'status' }), h('b', { id: 'job-status', class: `status-${j.status}`, text: j.status })),
        h('div', {}, h('span', { text: 'progress' }), h('b', { id: 'job-progress', text: `${finished}/${j.max_trials}` })),
        h('div', {}, h('span', { text: 'running' }), j.running),
        h('div', {}, h('span', { text: `best ${j.objective}` }),
          j.best ? h('a', { id: 'job-best', href: `#/trials/${j.best.id}`, text: num(best) }) : '–'),
        h('div', {}, h('span', { text: 'strategy' }), j.search ? `${j.search.sampler} sampler, ${j.search.pruner} pruner` : '–'),
        h('div', {}, h('span', { text: 'round' }), `${j.round}/${j.rounds_planned ?? '?'}`),
        h('div', {}, h('span', { text: 'pruned' }), counts.pruned ?? 0),
        h('div', {}, h('span', { text: 'failed' }), (counts.failed ?? 0) + (counts.diverged ?? 0)));
    }

    function drawHistory() {
      const completed = cols.status.map(s => s === 'completed');
      const [numbers, values, isDone] = sortedBy(cols.number, cols.value, completed);
      const bestSoFar = new Array(numbers.length);
      let best = null;
      for (let i = 0; i < numbers.length; i++) {
        if (isDone[i] && values[i] !== null && (best === null || values[i] < best)) best = values[i];
        bestSoFar[i] = best;
      }
      chart(historyCharts, 'history-chart', `${jobNow.objective} per trial`, [numbers, values, bestSoFar], {
        x: { label: 'trial number' }, y: { label: jobNow.objective },
        series: [{ label: jobNow.objective, color: color(0), dots: true },
                 { label: 'best so far', color: color(1), step: true }],
        width: 900, height: 320,
      });
    }

    function drawParams() {
      names.forEach((name, i) => {
        const { xs, x } = paramAxis(name, space[name], cols.params[name]);
        const keep = [], ys = [];
        xs.forEach((v, k) => {
          if (v !== null && v !== undefined && (!x.log || v > 0)) {
            keep.push(v);
            ys.push(cols.value[k]);
          }
        });
        const data = [keep, ys]; // dots only: unsorted is fine
        chart(paramCharts, `param-${i}`, `${name} (${space[name]?.scale ?? space[name]?.type ?? 'linear'})`,
          data, { x, y: { label: jobNow.objective },
                  series: [{ label: jobNow.objective, color: color(i), dots: true }],
                  bands: roundBands(name, space[name], x, jobNow.rounds ?? []),
                  width: 420, height: 240 });
        charts.get(`param-${i}`).root.parentElement.parentElement.dataset.param = name;
      });
    }

    function drawParallelCoords() {
      drawParallel(parallelBox, parallelCanvas, { names, space, params: cols.params,
                                                  values: cols.value, objective: jobNow.objective });
    }

    // Importance: asked once the job has 2 completed trials (fewer get a 409), again at each poll
    // while it is computed, and again at most every IMPORTANCE_EVERY_MS as trials complete.
    let importance = null, importanceAt = 0, importanceCompleted = -1;
    async function updateImportance() {
      const completed = jobNow.counts?.completed ?? 0;
      if (completed < 2) {
        drawImportance(importanceBox, { state: 'waiting',
          message: `importance needs 2 completed trials; the job has ${completed}` });
        return;
      }
      const due = !importance || importance.state === 'computing' ||
        (importance.state !== 'unavailable' && completed !== importanceCompleted &&
         performance.now() - importanceAt >= IMPORTANCE_EVERY_MS);
      if (!due) return;
      importanceAt = performance.now();
      importanceCompleted = completed;
      importance = await fetchImportance(id);
      drawImportance(importanceBox, importance);
    }

    let curveTrials = [];
    async function fetchCurves() {
      const ids = [];
      if (jobNow.best) ids.push(jobNow.best.id);
      for (const r of running.slice(0, CURVES_RUNNING)) if (!ids.includes(r.id)) ids.push(r.id);
      curveTrials = await Promise.all(ids.map(t => get(`/v1/trials/${t}`)));
      drawCurves();
    }

    // The curves of curveTrials, the measure the selects name (train or dev, cost or error).
    function drawCurves() {
      const trials = curveTrials, field = `${curveSet.value}_${curveMeasure.value}`;
      const what = `${curveSet.value} ${curveMeasure.value}`;
      const maxEpoch = Math.max(0, ...trials.map(t => t.curve.length ? t.curve[t.curve.length - 1].epoch : 0));
      const epochs = Array.from({ length: maxEpoch + 1 }, (_, i) => i);
      const series = trials.map(t => {
        const ys = new Array(epochs.length).fill(null);
        for (const p of t.curve) ys[p.epoch] = p[field] ?? null;
        return ys;
      });
      chart(curveCharts, 'curves-chart', `${what} per epoch`, [epochs, ...series], {
        x: { label: 'epoch' }, y: { label: what },
        series: trials.map((t, i) => ({
          label: `${t.id === jobNow.best?.id ? 'best ' : ''}trial ${t.id} (${t.status})`,
          color: color(i), countPoints: true })),
        width: 900, height: 280,
      });
    }

    function drawRungs() {
      const list = jobNow.rungs ?? [];
      rungs.replaceChildren(list.length
        ? h('table', { id: 'rungs-table' }, h('thead', {}, h('tr', {},
            ['epoch', 'trials judged', 'stopped', 'promoted (first 100)', 'stopped (first 100)']
              .map(t => h('th', { text: t })))),
          h('tbody', {}, list.map(r => h('tr', { dataset: { epoch: r.epoch } },
            h('td', { class: 'num', text: r.epoch }), h('td', { class: 'num', text: r.results }),
            h('td', { class: 'num', text: r.stopped }),
            h('td', { text: r.promoted_trials.join(' ') }), h('td', { text: r.stopped_trials.join(' ') })))))
        : h('p', { class: 'muted', text: `no rungs: the pruner is ${jobNow.search?.pruner ?? 'none'}` }));
      const epochs = cols.epochs_run, pruned = cols.status.map(s => s === 'pruned');
      chart(pruneCharts, 'epochs-chart', 'epochs trained per trial', [cols.number,
        epochs.map((e, i) => (pruned[i] ? null : e)), epochs.map((e, i) => (pruned[i] ? e : null))], {
        x: { label: 'trial number' }, y: { label: 'epochs' },
        series: [{ label: 'ran to the end', color: color(2), dots: true },
                 { label: 'pruned', color: color(4), dots: true }],
        width: 900, height: 220,
      });
    }

    function drawUtilization() {
      const u = jobNow.utilization;
      const perWorker = new Map();
      for (const w of cols.worker_id) if (w) perWorker.set(w, (perWorker.get(w) ?? 0) + 1);
      const busy = new Map(running.map(r => [r.worker_id, r.number]));
      utilization.replaceChildren(
        h('p', {}, u && u.fraction !== null
          ? [`busy ${num(u.busy_seconds, 3)} s of ${num(u.available_seconds, 3)} worker-seconds available: `,
             h('b', { id: 'utilization-fraction', text: pct(u.fraction) }), ' ',
             h('span', { class: 'bar' }, h('i', { style: `width:${Math.min(100, 100 * u.fraction)}%` }))]
          : 'no worker time counted yet'),
        h('table', { id: 'worker-trials' }, h('thead', {}, h('tr', {},
          ['worker', 'trials finished', 'running now'].map(t => h('th', { text: t })))),
        h('tbody', {}, [...new Set([...perWorker.keys(), ...busy.keys()])].sort().map(w =>
          h('tr', {}, h('td', { text: w ?? '–' }), h('td', { class: 'num', text: perWorker.get(w) ?? 0 }),
            h('td', { text: busy.has(w) ? `trial number ${busy.get(w)}` : '–' }))))));
    }

    // The trial table: sorted and filtered over the columns, the first TABLE_ROWS rows shown.
    const tableCols = [
      { key: 'number', label: '#' }, { key: 'status', label: 'status' },
      { key: 'value', label: job.objective }, { key: 'epochs_run', label: 'epochs' },
      { key: 'worker_id', label: 'worker' },
      ...names.map(n => ({ key: `param:${n}`, label: n })),
    ];
    const column = key => (key.startsWith('param:') ? cols.params[key.slice(6)] : cols[key]);
    let sortKey = 'number', sortDir = 1;
    const filterInput = h('input', { id: 'trial-filter', type: 'search', placeholder: 'filter: text in any column' });
    const statusSelect = h('select', { id: 'status-filter' },
      ['all', 'completed', 'pruned', 'failed', 'diverged', 'lost', 'cancelled'].map(s => h('option', { value: s, text: s })));
    const shown = h('span', { id: 'trial-count', class: 'muted' });
    const csvLink = h('a', { id: 'csv', href: '#', download: `job-${id}-trials.csv`, text: 'download CSV' });
    const thead = h('tr', {}, tableCols.map(c => h('th', { 'data-key': c.key, text: c.label })));
    const tbody = h('tbody');
    tableBox.append(h('div', { class: 'toolbar' }, statusSelect, filterInput, shown, csvLink),
      h('table', { id: 'trials' }, h('thead', {}, thead), tbody));

    function rowsInOrder() {
      const n = cols.id.length, text = filterInput.value.trim().toLowerCase(), st = statusSelect.value;
      const idx = [];
      for (let i = 0; i < n; i++) {
        if (st !== 'all' && cols.status[i] !== st) continue;
        if (text && !tableCols.some(c => String(column(c.key)[i] ?? '').toLowerCase().includes(text))) continue;
        idx.push(i);
      }
      const keyCol = column(sortKey);
      idx.sort((a, b) => {
        const x = keyCol[a], y = keyCol[b];
        if (x === y) return cols.number[a] - cols.number[b];
        if (x === null || x === undefined) return 1; // missing values last, whatever the order
        if (y === null || y === undefined) return -1;
        return (x < y ? -1 : 1) * sortDir;
      });
      return idx;
    }

    function drawTable() {
      const idx = rowsInOrder();
      for (const th of thead.children) {
        th.classList.toggle('sorted-asc', th.dataset.key === sortKey && sortDir > 0);
        th.classList.toggle('sorted-desc', th.dataset.key === sortKey && sortDir < 0);
      }
      shown.textContent = `${Math.min(TABLE_ROWS, idx.length)} of ${idx.length} trials shown`;
      tbody.replaceChildren(...idx.slice(0, TABLE_ROWS).map(i => h('tr', { dataset: { trialId: cols.id[i] } },
        tableCols.map(c => {
          const v = column(c.key)[i];
          if (c.key === 'number') return h('td', {}, h('a', { href: `#/trials/${cols.id[i]}`, text: v }));
          if (c.key === 'status') return statusCell(v);
          return h('td', { class: typeof v === 'number' ? 'num' : '', dataset: { key: c.key },
                           text: typeof v === 'number' ? num(v, 6) : v ?? '–' });
        }))));
    }

    thead.addEventListener('click', ev => {
      const key = ev.target.closest('th')?.dataset.key;
      if (!key) return;
      sortDir = key === sortKey ? -sortDir : 1;
      sortKey = key;
      drawTable();
    });
    filterInput.addEventListener('input', drawTable);
    statusSelect.addEventListener('change', drawTable);
    const csvCell = v => {
      const s = v === null || v === undefined ? '' : String(v);
      return /[",\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
    };
    csvLink.addEventListener('click', () => {
      const lines = [['id', ...tableCols.map(c => (c.key.startsWith('param:') ? c.key.slice(6) : c.key))].join(',')];
      for (const i of rowsInOrder())
        lines.push([cols.id[i], ...tableCols.map(c => column(c.key)[i])].map(csvCell).join(','));
      if (csvLink.href.startsWith('blob:')) URL.revokeObjectURL(csvLink.href);
      csvLink.href = URL.createObjectURL(new Blob([lines.join('\n') + '\n'], { type: 'text/csv' }));
    });

    function drawAll() {
      for (const draw of [drawCards, drawHistory, drawParams, drawParallelCoords, drawRungs,
                          drawUtilization, drawTable]) {
        const t0 = performance.now();
        draw();
        performance.measure(draw.name, { start: t0 });
      }
    }
    drawAll();
    // uPlot draws in a microtask: the mark is taken in the next frame, once every chart is on
    // its canvas (bench/dashboard_load.py reads it).
    await new Promise(resolve => requestAnimationFrame(() => setTimeout(resolve, 0)));
    document.body.dataset.jobDrawnMs = String(performance.now());
    curveSet.addEventListener('change', drawCurves);
    curveMeasure.addEventListener('change', drawCurves);
    await Promise.all([fetchCurves(), updateImportance()]);

    async function poll() {
      const [j, more] = await Promise.all([get(`/v1/jobs/${id}`),
        get(`/v1/jobs/${id}/history${cursor ? `?after=${cursor}` : ''}`)]);
      jobNow = j;
      const changed = more.count > 0 || running.length !== more.running.length ||
        running.some((r, i) => r.id !== more.running[i]?.id);
      if (more.count) append(cols, more.finished, names);
      cursor = more.next_cursor ?? cursor;
      running = more.running;
      drawCards();
      drawUtilization();
      if (changed) {
        drawHistory();
        drawParams();
        drawParallelCoords();
        drawRungs();
        drawTable();
      }
      await Promise.all([running.length || changed ? fetchCurves() : null, updateImportance()]);
    }
    return { poll, destroy: () => charts.forEach(c => c.destroy()) };
  },
};
