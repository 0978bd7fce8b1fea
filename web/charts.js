// Charts over uPlot (window.uPlot, loaded by index.html from /vendor/uplot/): a scatter with an
// optional best-so-far line, a scatter of one parameter against the objective on the
// parameter's own scale, and aligned line charts. Every chart's container records in
// data-points how many points its last draw held, so that tests can read what was drawn.

import { h, num } from './format.js';

const COLORS = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#4d7c0f'];
export const color = i => COLORS[i % COLORS.length];

// A titled chart box; returns { box, plotEl }.
export function chartBox(id, title) {
  const plotEl = h('div', { class: 'plot' });
  const box = h('div', { class: 'chart', id }, h('h3', { text: title }), plotEl);
  return { box, plotEl };
}

function countPoints(u, seriesIdx) {
  let n = 0;
  for (const i of seriesIdx) for (const v of u.data[i]) if (v !== null && v !== undefined) n++;
  return n;
}

// Records in the box's data-points the points drawn by the series listed in pointSeries.
function drawHook(box, pointSeries) {
  return u => {
    box.dataset.points = String(countPoints(u, pointSeries));
    box.dataset.drawn = String(performance.now());
  };
}

const dots = (fill, size = 3) => ({ show: true, size, fill, stroke: fill, width: 0 });

// A uPlot chart of data (aligned arrays, x first). series: [{label, color, dots?, step?}];
// x: {label, log (10 or 2), categories}; the series drawn as dots count as points.
export function makeChart(box, plotEl, data, { x = {}, y = {}, series, width = 560, height = 260 }) {
  const pointSeries = [];
  const uSeries = [{ label: x.label ?? 'x' }];
  const size = data[0].length > 2000 ? 2.5 : 6; // dots shrink when there are many
  series.forEach((s, i) => {
    if (s.dots) {
      pointSeries.push(i + 1);
      uSeries.push({ label: s.label, stroke: s.color, paths: () => null,
                     points: dots(s.color, size) });
    } else {
      if (s.countPoints) pointSeries.push(i + 1);
      uSeries.push({
        label: s.label, stroke: s.color, width: 1.5, spanGaps: true,
        paths: s.step ? uPlot.paths.stepped({ align: 1 }) : undefined,
        points: { show: false },
      });
    }
  });
  const xScale = { time: false };
  if (x.log) Object.assign(xScale, { distr: 3, log: x.log });
  if (x.categories) {
    xScale.range = () => [-0.5, x.categories.length - 0.5];
  }
  const yScale = { auto: true };
  if (y.log) Object.assign(yScale, { distr: 3, log: 10 });
  const xAxis = { label: x.label };
  if (x.categories) {
    xAxis.splits = () => x.categories.map((_, i) => i);
    xAxis.values = (u, splits) => splits.map(v => x.categories[v] ?? '');
  } else if (x.log) {
    // Label the powers of the base only; the other splits are minor ticks.
    const isPower = v => Math.abs(Math.log(v) / Math.log(x.log) -
                                  Math.round(Math.log(v) / Math.log(x.log))) < 1e-6;
    xAxis.values = (u, splits) => splits.map(v => (isPower(v) ? num(v, 3) : ''));
  } else {
    xAxis.values = (u, splits) => splits.map(v => num(v, 3));
  }
  const opts = {
    width, height, series: uSeries,
    scales: { x: xScale, y: yScale },
    axes: [xAxis, { label: y.label, size: 60, values: (u, s) => s.map(v => num(v, 3)) }],
    legend: { show: true, live: false },
    cursor: { drag: { x: true, y: true } },
    hooks: { draw: [drawHook(box, pointSeries)] },
  };
  return new uPlot(opts, data, plotEl);
}

// Sorts the parallel columns by the first one, returning new plain arrays.
export function sortedBy(xs, ...cols) {
  const idx = new Uint32Array(xs.length);
  for (let i = 0; i < idx.length; i++) idx[i] = i;
  idx.sort((a, b) => xs[a] - xs[b]);
  return [Array.from(idx, i => xs[i]), ...cols.map(c => Array.from(idx, i => c[i]))];
}
