// A small SVG bar chart of sales (and refunds) by hour. SVG attributes only: no inline
// styles, so it works under the console's Content-Security-Policy.

const NS = 'http://www.w3.org/2000/svg';

function s(tag, attrs, text) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

/** hours: [{hour, amount, refund_amount, count}]; format: amount → text. */
export function hourChart(hours, { label, salesLabel, refundsLabel, format }) {
  const W = 720; const H = 220; const left = 48; const bottom = 24; const top = 10;
  const max = Math.max(1, ...hours.map((x) => Math.max(x.amount, x.refund_amount)));
  const slot = (W - left - 8) / 24;
  const y = (v) => top + (H - top - bottom) * (1 - v / max);
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': label });
  svg.append(s('title', {}, label));
  for (const frac of [0, 0.5, 1]) {
    const yy = y(max * frac);
    svg.append(s('line', { x1: left, x2: W, y1: yy, y2: yy, class: 'axis' }));
    svg.append(s('text', { x: left - 4, y: yy + 3, 'text-anchor': 'end' }, format(max * frac)));
  }
  for (const x of hours) {
    const x0 = left + x.hour * slot + 2;
    const w = Math.max(2, slot / 2 - 2);
    const bar = s('rect', { x: x0, y: y(x.amount), width: w, height: Math.max(0, H - bottom - y(x.amount)), class: 'bar' });
    bar.append(s('title', {}, `${String(x.hour).padStart(2, '0')}:00 ${salesLabel} ${format(x.amount)} (${x.count})`));
    svg.append(bar);
    if (x.refund_amount > 0) {
      const r = s('rect', { x: x0 + w + 1, y: y(x.refund_amount), width: w, height: Math.max(0, H - bottom - y(x.refund_amount)), class: 'bar-refund' });
      r.append(s('title', {}, `${String(x.hour).padStart(2, '0')}:00 ${refundsLabel} ${format(x.refund_amount)}`));
      svg.append(r);
    }
    if (x.hour % 3 === 0) svg.append(s('text', { x: x0, y: H - 8 }, String(x.hour).padStart(2, '0')));
  }
  return svg;
}
