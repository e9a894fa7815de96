// A small SVG bar chart of sales (and refunds) by hour. SVG attributes only: no inline
// styles, so it works under the console's Content-Security-Policy.

const NS = 'http://www.w3.org/2000/svg';

function s(tag, attrs, text) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

/** A round step for about `n` axis divisions of `max`: 1, 2 or 5 × 10^k. */
export function niceStep(max, n = 4) {
  const raw = Math.max(max, 1e-9) / n;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const f = raw / pow;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * pow;
}

/** hours: [{hour, amount, refund_amount, count}]; format: amount → text. On a narrow
 *  screen the drawing is narrower (so its text stays readable) with fewer hour labels. */
export function hourChart(hours, { label, salesLabel, refundsLabel, format }) {
  const narrow = window.innerWidth < 600;
  const W = narrow ? 360 : 720; const H = narrow ? 200 : 220; const left = narrow ? 52 : 60; const bottom = 24; const top = 10;
  const peak = Math.max(0, ...hours.map((x) => Math.max(x.amount, x.refund_amount)));
  const step = niceStep(peak || 1);
  const max = Math.max(step, Math.ceil(peak / step) * step);
  const slot = (W - left - 8) / 24;
  const y = (v) => top + (H - top - bottom) * (1 - v / max);
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': label });
  svg.append(s('title', {}, label));
  for (let v = 0; v <= max + step / 2; v += step) {
    const yy = y(v);
    svg.append(s('line', { x1: left, x2: W, y1: yy, y2: yy, class: 'axis' }));
    svg.append(s('text', { x: left - 4, y: yy + 4, 'text-anchor': 'end' }, format(v).replace(/\.00$/, '')));
  }
  for (const x of hours) {
    const x0 = left + x.hour * slot + 1;
    const w = Math.max(2, slot / 2 - 1);
    const bar = s('rect', { x: x0, y: y(x.amount), width: w, height: Math.max(0, H - bottom - y(x.amount)), class: 'bar' });
    bar.append(s('title', {}, `${String(x.hour).padStart(2, '0')}:00 ${salesLabel} ${format(x.amount)} (${x.count})`));
    svg.append(bar);
    if (x.refund_amount > 0) {
      const r = s('rect', { x: x0 + w + 1, y: y(x.refund_amount), width: w, height: Math.max(0, H - bottom - y(x.refund_amount)), class: 'bar-refund' });
      r.append(s('title', {}, `${String(x.hour).padStart(2, '0')}:00 ${refundsLabel} ${format(x.refund_amount)}`));
      svg.append(r);
    }
    if (x.hour % (narrow ? 6 : 3) === 0) svg.append(s('text', { x: x0, y: H - 8 }, String(x.hour).padStart(2, '0')));
  }
  return svg;
}
