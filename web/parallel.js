// Parallel coordinates of a job's trials, drawn on a canvas: one vertical axis per searched
// parameter on its own scale (log10 for `log`, log2 for `power_of_two`, log10(1 − β) for
// `one_minus_log`, categories evenly spaced) spanning the space's bounds, and one axis for the
// objective; each trial with an objective value is a polyline coloured by that value (in BUCKETS
// colours), the best darkest. Many trials are gathered into a bounded number of segments (see
// drawParallel): a path of 100,000 polylines takes the browser's rasterizer seconds, and
// rasterizing them in JavaScript a second or more. The box records in data-lines the trials
// drawn and in data-axes the axes.

import { num } from './format.js';

const BUCKETS = 16;
const EXACT_MAX = 2000; // trials drawn line by line; more are gathered (see drawParallel)
const LEVELS = 64; // positions on an axis that gathered segments snap to
const ALPHAS = [0.15, 0.3, 0.55, 0.85]; // opacities of segments drawn for 1, 2+, 8+, 64+ trials
const level = p => Math.round(Math.min(1, Math.max(0, p)) * (LEVELS - 1));
// Colours from the best objective value (first) to the worst (last).
const STOPS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];

// The [r, g, b] of colour bucket b.
function bucketColor(b) {
  const t = b / (BUCKETS - 1) * (STOPS.length - 1), i = Math.min(STOPS.length - 2, Math.floor(t));
  const f = t - i;
  return STOPS[i].map((v, k) => Math.round(v + f * (STOPS[i + 1][k] - v)));
}

// An axis of a parameter: pos(v) in [0, 1] (NaN when v cannot be drawn) and its end labels.
function paramAxis(name, def, values) {
  const scale = def?.scale ?? 'linear';
  if (def?.type === 'categorical' || values.some(v => typeof v === 'string' || typeof v === 'boolean')) {
    const cats = (def?.values ?? [...new Set(values)]).map(String);
    const at = new Map(cats.map((c, i) => [c, cats.length > 1 ? i / (cats.length - 1) : 0.5]));
    return { label: name, pos: v => at.get(String(v)) ?? NaN, low: cats[0], high: cats[cats.length - 1] };
  }
  let f = v => v, label = name, lo = def?.min, hi = def?.max;
  if (scale === 'log') [f, label] = [Math.log10, `${name} (log)`];
  if (scale === 'power_of_two') [f, label] = [Math.log2, `${name} (log₂)`];
  if (scale === 'one_minus_log') // bounds and end labels in 1 − β
    return axisOver(`1 − ${name} (log)`, v => Math.log10(1 - v), values,
                    hi === undefined ? undefined : 1 - hi, lo === undefined ? undefined : 1 - lo,
                    Math.log10);
  return axisOver(label, f, values, lo, hi, f);
}

// An axis over f(v) from f(lo) to f(hi) in the bounds' own space (fb maps a bound), or over the
// values' range when a bound is missing.
function axisOver(label, f, values, lo, hi, fb) {
  let a = lo === undefined ? NaN : fb(lo), z = hi === undefined ? NaN : fb(hi);
  if (!Number.isFinite(a) || !Number.isFinite(z)) {
    a = Infinity;
    z = -Infinity;
    for (const v of values) {
      const x = f(v);
      if (Number.isFinite(x)) [a, z] = [Math.min(a, x), Math.max(z, x)];
    }
  }
  const span = z > a ? z - a : 1;
  return { label, pos: v => (f(v) - a) / span, low: num(lo ?? a, 3), high: num(hi ?? z, 3) };
}

// Draws the trials on the canvas (CSS size width × height). params: {name: column}; values: the
// objective column (null: not drawn).
export function drawParallel(box, canvas, { names, space, params, values, objective,
                                            width = 900, height = 300 }) {
  const dpr = devicePixelRatio;
  canvas.width = Math.round(width * dpr);
  canvas.height = Math.round(height * dpr);
  canvas.style.width = `${width}px`;
  canvas.style.height = `${height}px`;
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, width, height);

  const rows = [];
  let vmin = Infinity, vmax = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v === null || v === undefined || !Number.isFinite(v)) continue;
    rows.push(i);
    vmin = Math.min(vmin, v);
    vmax = Math.max(vmax, v);
  }
  const axes = names.map(n => paramAxis(n, space[n], params[n]));
  axes.push({ label: objective, pos: v => (vmax > vmin ? (v - vmin) / (vmax - vmin) : 0.5),
              low: num(vmin, 3), high: num(vmax, 3) });
  const cols = axes.map((_, k) => (k === axes.length - 1 ? values : params[names[k]]));
  const pad = { left: 50, right: 50, top: 34, bottom: 24 };
  const xAt = k => pad.left + (axes.length > 1 ? k * (width - pad.left - pad.right) / (axes.length - 1) : 0);
  const plotH = height - pad.top - pad.bottom;
  const yAt = p => pad.top + (1 - Math.min(1, Math.max(0, p))) * plotH;

  // A few trials are drawn line by line. Beyond EXACT_MAX, each segment between two axes is
  // snapped to LEVELS positions on each axis, so that the trials through the same pair of
  // positions are drawn as one segment in the colour of the best of them, its opacity growing
  // with their number: at most LEVELS² segments per pair of axes, whatever the trials.
  const exact = rows.length <= EXACT_MAX;
  const xs = axes.map((_, k) => xAt(k));
  const paths = Array.from({ length: BUCKETS }, () => ALPHAS.map(() => new Path2D()));
  const bucketOf = i => (vmax > vmin
    ? Math.min(BUCKETS - 1, Math.floor((values[i] - vmin) / (vmax - vmin) * BUCKETS)) : 0);
  const P = new Float64Array(axes.length);
  const cells = exact ? null : axes.slice(1).map(() => ({
    count: new Uint32Array(LEVELS * LEVELS), best: new Uint8Array(LEVELS * LEVELS).fill(255) }));
  for (const i of rows) {
    const b = bucketOf(i);
    for (let k = 0; k < axes.length; k++) P[k] = axes[k].pos(cols[k][i]);
    for (let k = 0; k + 1 < axes.length; k++) {
      if (!Number.isFinite(P[k]) || !Number.isFinite(P[k + 1])) continue;
      if (exact) {
        const path = paths[b][rows.length > 500 ? 1 : ALPHAS.length - 1];
        path.moveTo(xs[k], yAt(P[k]));
        path.lineTo(xs[k + 1], yAt(P[k + 1]));
        continue;
      }
      const at = level(P[k]) * LEVELS + level(P[k + 1]), cell = cells[k];
      cell.count[at]++;
      if (b < cell.best[at]) cell.best[at] = b;
    }
  }
  cells?.forEach((cell, k) => {
    for (let at = 0; at < LEVELS * LEVELS; at++) {
      const n = cell.count[at];
      if (!n) continue;
      const path = paths[cell.best[at]][n >= 64 ? 3 : n >= 8 ? 2 : n >= 2 ? 1 : 0];
      path.moveTo(xs[k], yAt(Math.floor(at / LEVELS) / (LEVELS - 1)));
      path.lineTo(xs[k + 1], yAt((at % LEVELS) / (LEVELS - 1)));
    }
  });
  ctx.lineWidth = 1;
  for (let b = BUCKETS - 1; b >= 0; b--) { // the worst first, so that the best lie on top
    ctx.strokeStyle = `rgb(${bucketColor(b).join(',')})`;
    ALPHAS.forEach((a, l) => {
      ctx.globalAlpha = a;
      ctx.stroke(paths[b][l]);
    });
  }
  ctx.globalAlpha = 1;
  ctx.strokeStyle = '#333';
  ctx.fillStyle = '#222';
  ctx.font = '11px sans-serif';
  ctx.textAlign = 'center';
  axes.forEach((a, k) => {
    ctx.beginPath();
    ctx.moveTo(xs[k], pad.top);
    ctx.lineTo(xs[k], pad.top + plotH);
    ctx.stroke();
    ctx.fillText(a.label, xs[k], 12);
    ctx.fillText(String(a.high), xs[k], pad.top - 6);
    ctx.fillText(String(a.low), xs[k], pad.top + plotH + 14);
  });
  box.dataset.lines = String(rows.length);
  box.dataset.axes = String(axes.length);
}
