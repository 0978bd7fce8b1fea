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

// Records in the box's data-points the points drawn by the series listed in pointSeries, and
// in data-x-min and data-x-max the x scale's range.
function drawHook(box, pointSeries) {
  return u => {
    box.dataset.points = String(countPoints(u, pointSeries));
    box.dataset.xMin = String(u.scales.x.min);
    box.dataset.xMax = String(u.scales.x.max);
    box.dataset.drawn = String(performance.now());
  };
}

// Draws the points of the "dots" series itself, after uPlot drew the axes and lines: each point
// a square of size CSS pixels set in one ImageData of the plotting area, laid over the canvas
// with one drawImage. 100,000 points cost a pass over them and one blit, where a path of
// 100,000 shapes (uPlot's points) takes the rasterizer seconds.
function drawDots(u, dotSeries, size) {
  const { left, top, width, height } = u.bbox;
  const w = Math.max(1, Math.round(width)), hgt = Math.max(1, Math.round(height));
  const img = new ImageData(w, hgt);
  const px = new Uint32Array(img.data.buffer);
  const d = Math.max(1, Math.round(size * devicePixelRatio)), r = d >> 1;
  const xs = u.data[0];
  for (const { idx, rgba } of dotSeries) {
    if (!u.series[idx].show) continue;
    const ys = u.data[idx], scale = u.series[idx].scale;
    const i0 = u.series[0].idxs?.[0] ?? 0, i1 = u.series[0].idxs?.[1] ?? xs.length - 1;
    for (let i = i0; i <= i1; i++) {
      const y = ys[i];
      if (y === null || y === undefined) continue;
      const cx = Math.round(u.valToPos(xs[i], 'x', true) - left) - r;
      const cy = Math.round(u.valToPos(y, scale, true) - top) - r;
      for (let dy = 0; dy < d; dy++) {
        const row = cy + dy;
        if (row < 0 || row >= hgt) continue;
        for (let dx = 0; dx < d; dx++) {
          const col = cx + dx;
          if (col >= 0 && col < w) px[row * w + col] = rgba;
        }
      }
    }
  }
  const layer = document.createElement('canvas');
  layer.width = w;
  layer.height = hgt;
  layer.getContext('2d').putImageData(img, 0, 0);
  u.ctx.drawImage(layer, left, top);
}

// Draws the bands under the series, after uPlot cleared the canvas: each band a translucent
// strip of the plotting area over each of its x intervals (clipped to the plot), labelled with
// its label at the top of its first strip.
function drawBands(u, bands) {
  const { left, top, width, height } = u.bbox;
  const ctx = u.ctx;
  ctx.save();
  ctx.font = `${Math.round(10 * devicePixelRatio)}px sans-serif`;
  ctx.textBaseline = 'top';
  bands.forEach((band, b) => {
    ctx.fillStyle = band.color;
    band.intervals.forEach(([x0, x1], k) => {
      const p0 = u.valToPos(x0, 'x', true), p1 = u.valToPos(x1, 'x', true);
      const a = Math.max(left, Math.min(p0, p1)), z = Math.min(left + width, Math.max(p0, p1));
      if (!(z > a)) return;
      ctx.globalAlpha = 0.12;
      ctx.fillRect(a, top, Math.max(z - a, devicePixelRatio), height);
      if (k === 0) {
        ctx.globalAlpha = 0.9;
        ctx.fillText(band.label, a + 2 * devicePixelRatio, top + (2 + 11 * b) * devicePixelRatio);
      }
    });
  });
  ctx.restore();
}

// The range of xs (nulls left out, and values <= 0 on a log scale), padded by 2% of its span
// (of its span in logs on a log scale). uPlot ranges x from the first and the last value, which
// only spans unsorted x by chance.
function extent(xs, log) {
  let lo = Infinity, hi = -Infinity;
  for (const v of xs) {
    if (v === null || v === undefined || !Number.isFinite(v) || (log && v <= 0)) continue;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (lo > hi) return log ? [1, 10] : [0, 1];
  if (log) {
    const f = lo === hi ? 2 : (hi / lo) ** 0.02;
    return [lo / f, hi * f];
  }
  const pad = lo === hi ? Math.abs(lo) * 0.1 || 1 : (hi - lo) * 0.02;
  return [lo - pad, hi + pad];
}

// "#rrggbb" as the little-endian RGBA word of an ImageData pixel, opaque.
function rgbaWord(hex) {
  const v = parseInt(hex.slice(1), 16);
  return (0xff << 24 | (v & 0xff) << 16 | (v >> 8 & 0xff) << 8 | v >> 16) >>> 0;
}

// A uPlot chart of data (aligned arrays, x first). series: [{label, color, dots?, step?}];
// x: {label, log (10 or 2), categories}; the series drawn as dots count as points. A chart of
// dots only needs no sorted x (drawDots draws every point inside the plot, zoomed or not); one
// with lines does (x.range, [min, max], fixes the x scale's range; else a chart of dots is ranged
// over its x values, a chart with lines from its first x to its last). bands: [{label, color, intervals: [[x0, x1], ...]}] shaded under the series;
// the box records their number in data-bands.
export function makeChart(box, plotEl, data,
                          { x = {}, y = {}, series, bands = [], width = 560, height = 260 }) {
  const pointSeries = [];
  const uSeries = [{ label: x.label ?? 'x' }];
  const size = data[0].length > 2000 ? 2 : 5; // dots shrink when there are many
  const dotSeries = [];
  series.forEach((s, i) => {
    if (s.dots) {
      pointSeries.push(i + 1);
      dotSeries.push({ idx: i + 1, rgba: rgbaWord(s.color) });
      uSeries.push({ label: s.label, stroke: s.color, fill: s.color, width: 0,
                     paths: () => null, points: { show: false } });
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
  } else if (x.range) {
    xScale.range = () => x.range;
  } else if (series.every(s => s.dots)) {
    xScale.range = u => extent(u.data[0], x.log);
  }
  const yScale = { auto: true };
  if (y.log) Object.assign(yScale, { distr: 3, log: 10 });
  const isPower = (v, base) => Math.abs(Math.log(v) / Math.log(base) -
                                        Math.round(Math.log(v) / Math.log(base))) < 1e-6;
  const xAxis = { label: x.label };
  if (x.categories) {
    xAxis.splits = () => x.categories.map((_, i) => i);
    xAxis.values = (u, splits) => splits.map(v => x.categories[v] ?? '');
  } else if (x.log) {
    // Label the powers of the base only; the other splits are minor ticks.
    xAxis.values = (u, splits) => splits.map(v => (isPower(v, x.log) ? num(v, 3) : ''));
  } else {
    xAxis.values = (u, splits) => splits.map(v => num(v, 3));
  }
  const opts = {
    width, height, series: uSeries,
    scales: { x: xScale, y: yScale },
    axes: [xAxis, { label: y.label, size: 60, values: (u, s) => s.map(v =>
      (y.log && !isPower(v, 10) ? '' : num(v, 3))) }],
    legend: { show: true, live: false },
    cursor: { drag: { x: true, y: true } },
    hooks: { drawClear: [u => drawBands(u, bands)],
             draw: [u => drawDots(u, dotSeries, size), drawHook(box, pointSeries)] },
  };
  box.dataset.bands = String(bands.length);
  return new uPlot(opts, data, plotEl);
}

// Sorts the parallel columns by the first one, returning new plain arrays. Trial numbers, dense
// and distinct, are placed directly; anything else is sorted.
export function sortedBy(xs, ...cols) {
  const n = xs.length;
  let dense = true;
  const slot = new Int32Array(n).fill(-1);
  for (let i = 0; i < n && dense; i++) {
    const x = xs[i];
    if (!Number.isInteger(x) || x < 0 || x >= n || slot[x] !== -1) dense = false;
    else slot[x] = i;
  }
  let idx;
  if (dense) {
    idx = slot;
  } else {
    idx = new Uint32Array(n);
    for (let i = 0; i < n; i++) idx[i] = i;
    idx.sort((a, b) => xs[a] - xs[b]);
  }
  return [Array.from(idx, i => xs[i]), ...cols.map(c => Array.from(idx, i => c[i]))];
}
