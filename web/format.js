// Small formatting and DOM helpers shared by the pages.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function num(v, digits = 4) {
  if (v === null || v === undefined || Number.isNaN(v)) return '–';
  if (typeof v !== 'number') return String(v);
  if (Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(digits - 1) : v.toPrecision(digits);
}

export function pct(v) {
  return v === null || v === undefined ? '–' : `${(100 * v).toFixed(1)}%`;
}

export function when(t) {
  return t ? new Date(t * 1000).toLocaleString() : '–';
}

export function statusCell(status) {
  return h('td', { class: `status-${status}`, text: status });
}

// A table whose header cells carry data-key for sorting; rows built by the caller.
export function table(id, columns) {
  return h('table', { id },
    h('thead', {}, h('tr', {}, columns.map(c => h('th', { 'data-key': c.key, text: c.label })))),
    h('tbody'));
}
