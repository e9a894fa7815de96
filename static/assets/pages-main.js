// Dashboard, transactions (list, detail, refund), settlements and sync.

import { get, post, query, requestKey } from './api.js';
import { h, clear, field, select, messageBox, showMessage, table, confirmDialog, promptDialog, skeleton } from './dom.js';
import { t, money, count, dateTime, duration, errorText, todayInStore, getLocale } from './i18n.js';
import { hourChart } from './chart.js';
import { checkAmount, checkKey, checkText, checkPositiveAmount, cents, problem, refuse } from './rules.js';

function tag(value, label) {
  return h('span', { class: `tag ${value}` }, label ?? value);
}

const typeLabel = (v) => t(`type_${v}`);
const statusLabel = (v) => t(`status_${v}`);
const syncLabel = (v) => t(`sync_${v}`);
/** How a top-up was paid, in words (the code itself for one this console does not know). */
const TOPUP_METHODS = ['cash', 'wechat', 'alipay'];
const methodLabel = (m) => { const k = `topup_method_${m}`; const v = t(k); return v === k ? m : v; };

/** Re-runs `fn` at most once per `ms` when live events arrive in bursts. */
function debounce(fn, ms = 300) {
  let timer = null;
  return () => { clearTimeout(timer); timer = setTimeout(fn, ms); };
}

// ---------------------------------------------------------------------------------------
// Dashboard
// ---------------------------------------------------------------------------------------

/** The change from `before` to `now` in words, or '' when there is nothing to compare. */
function change(now, before, label) {
  const a = Number(now); const b = Number(before);
  if (!Number.isFinite(a) || !Number.isFinite(b)) return '';
  if (b === 0) return a === 0 ? t('dash_same', { than: label }) : t('dash_new', { than: label });
  const pct = Math.round(((a - b) / Math.abs(b)) * 100);
  if (pct === 0) return t('dash_same', { than: label });
  return t(pct > 0 ? 'dash_up' : 'dash_down', { pct: Math.abs(pct), than: label });
}

/** YYYY-MM-DD `days` before `date`. */
function daysBefore(date, days) {
  const d = new Date(`${date}T12:00:00Z`);
  d.setUTCDate(d.getUTCDate() - days);
  return d.toISOString().slice(0, 10);
}

export async function dashboard(ctx) {
  const params = new URLSearchParams(location.search);
  const today = todayInStore();
  const picked = /^\d{4}-\d{2}-\d{2}$/.test(params.get('date') || '') ? params.get('date') : today;
  const cur = () => ctx.session.store.currency || '';
  const withCur = (v) => `${cur()} ${money(v)}`.trim();
  const dateInput = h('input', { type: 'date', id: 'dash-date-input', value: picked, max: today });
  const live = h('span', { class: 'live', id: 'live-indicator', role: 'status' });
  const cards = h('div', { class: 'cards', id: 'summary-cards' });
  const chart = h('div', { class: 'chart panel', id: 'hour-chart' });
  const subtitle = h('p', { class: 'muted', id: 'dash-date' });
  const legend = h('p', { class: 'legend', id: 'chart-legend' },
    h('span', { class: 'key sales' }), t('chart_sales'), ' ', h('span', { class: 'key refunds' }), t('chart_refunds'));
  const tableBox = h('div', { id: 'hour-table' });
  clear(ctx.main, h('h1', { text: t('dash_title') }),
    h('div', { class: 'dash-bar' }, field(t('field_date'), dateInput), live),
    subtitle, cards, h('h2', { text: t('dash_by_hour') }), chart, legend, tableBox);
  dateInput.addEventListener('change', () => {
    const v = dateInput.value || today;
    history.replaceState({}, '', `/console/dashboard${v === today ? '' : `?date=${v}`}`);
    load(v).catch(() => {});
  });

  const showLive = () => {
    const open = document.body.dataset.live === 'open';
    live.className = `live ${open ? 'on' : 'off'}`;
    live.textContent = open ? t('dash_live') : t('dash_live_off');
  };
  showLive();
  const liveObserver = new MutationObserver(showLive);
  liveObserver.observe(document.body, { attributes: true, attributeFilter: ['data-live'] });

  const card = (id, label, value, display, note = '', alert = false) => h('div', {
    class: `card${alert ? ' alert' : ''}`, id: `sum-${id}`, 'data-value': String(value),
  }, h('div', { class: 'label' }, label), h('div', { class: 'value' }, display), note ? h('div', { class: 'delta' }, note) : null);

  async function load(date) {
    const [d, prev, week, sync] = await Promise.all([
      get(`/merchant/daily-summary?date=${date}`),
      get(`/merchant/daily-summary?date=${daysBefore(date, 1)}`),
      get(`/merchant/daily-summary?date=${daysBefore(date, 7)}`),
      get('/sync/status'),
    ]);
    const s = d.summary; const p = prev.summary; const w = week.summary;
    const vs = (k) => [change(s[k], p[k], t('dash_vs_yesterday')), change(s[k], w[k], t('dash_vs_last_week'))].filter(Boolean).join(' · ');
    subtitle.textContent = t('dash_date', { date: d.date, tz: d.timezone });
    clear(cards,
      card('payment_amount', t('dash_sales'), s.payment_amount, withCur(s.payment_amount), vs('payment_amount')),
      card('refund_amount', t('dash_refunds'), s.refund_amount, withCur(s.refund_amount), t('dash_refund_count', { n: count(s.refund_count) })),
      card('net_amount', t('dash_net'), s.net_amount, withCur(s.net_amount), vs('net_amount')),
      card('payment_count', t('dash_payments'), s.payment_count, count(s.payment_count), vs('payment_count')),
      card('unique_cards', t('dash_cards'), s.unique_cards, count(s.unique_cards)),
      card('average_ticket', t('dash_avg'), s.average_ticket, withCur(s.average_ticket)),
      card('open_exceptions', t('dash_exceptions'), sync.open_exceptions, count(sync.open_exceptions), '', sync.open_exceptions > 0));
    // Kept for scripts and tests that read the total (payments and refunds).
    cards.dataset.totalCount = String(s.total_count);
    if (s.total_count === 0) {
      clear(chart, h('p', { class: 'empty', id: 'dash-empty' }, t('dash_empty', { date: d.date })));
      legend.hidden = true;
      clear(tableBox);
    } else {
      clear(chart, hourChart(d.hourly_stats, {
        label: t('dash_by_hour'), salesLabel: t('chart_sales'), refundsLabel: t('chart_refunds'), format: money,
      }));
      legend.hidden = false;
      clear(tableBox, h('details', { id: 'hour-table-details' }, h('summary', {}, t('chart_table')),
        table([
          { label: t('col_hour'), cell: (x) => `${String(x.hour).padStart(2, '0')}:00` },
          { label: t('chart_sales'), num: true, cell: (x) => withCur(x.amount) },
          { label: t('chart_refunds'), num: true, cell: (x) => withCur(x.refund_amount) },
          { label: t('col_count'), num: true, cell: (x) => count(x.count) },
        ], d.hourly_stats.filter((x) => x.count > 0 || x.refund_amount > 0), t('no_rows'))));
    }
    ctx.main.dataset.loadedAt = String(Date.now());
  }
  await load(picked);
  const reload = debounce(() => load(dateInput.value || today).catch(() => {}));
  return { onEvent: (ev) => { if (['transaction', 'refund', 'exception', 'sync'].includes(ev.type)) reload(); } };
}

// ---------------------------------------------------------------------------------------
// Transactions
// ---------------------------------------------------------------------------------------

const PAGE = 20;

const FILTERS = ['start_date', 'end_date', 'type', 'status', 'q', 'min_amount', 'max_amount', 'sync_state', 'sort'];
const SORTS = ['time_desc', 'time_asc', 'amount_desc', 'amount_asc'];

/** A payment's status as a person reads it: a partly refunded payment is not "completed". */
function paymentState(r) {
  if (r.tx_type === 'payment' && r.status === 'completed' && Number(r.refunded_amount) > 0) {
    return tag('partial', t('status_partial'));
  }
  return tag(r.status, statusLabel(r.status));
}

/** An amount as it moves the store's takings: refunds negative. */
function signedAmount(r) {
  return r.tx_type === 'refund'
    ? h('span', { class: 'neg' }, `−${money(r.final_amount)}`)
    : money(r.final_amount);
}

/** The filters' first problem by the server's rules (same message), or null. */
function filterProblem(f) {
  if (f.start_date && f.end_date && f.end_date < f.start_date) return problem('PERIOD_INVALID', 'end_date');
  if (f.q) {
    const p = checkKey(f.q, 32, 'q');
    if (p) return p;
  }
  for (const k of ['min_amount', 'max_amount']) {
    if (f[k]) {
      const p = checkAmount(f[k], k);
      if (p) return p;
    }
  }
  if (f.min_amount && f.max_amount && cents(f.min_amount) > cents(f.max_amount)) {
    return problem('AMOUNT_RANGE_INVALID', 'max_amount');
  }
  return null;
}

export async function transactions(ctx) {
  const params = new URLSearchParams(location.search);
  const filters = Object.fromEntries(FILTERS.map((k) => [k, params.get(k) || '']));
  // An old link's exact card number is a search for it.
  if (!filters.q && params.get('card_no')) filters.q = params.get('card_no');
  if (!SORTS.includes(filters.sort)) filters.sort = '';
  let offset = Number(params.get('offset') || 0);

  const input = (name, type = 'text', extra = {}) => h('input', { name, id: `f-${name}`, type, value: filters[name], ...extra });
  const search = input('q', 'search', { autocomplete: 'off', maxlength: 32, 'aria-describedby': 'f-q-help' });
  const sortSelect = select('sort', SORTS.map((v) => [v === 'time_desc' ? '' : v, t(`sort_${v}`)]), filters.sort);
  sortSelect.id = 'f-sort';
  const apply = h('button', { type: 'submit', id: 'tx-apply' }, t('apply'));
  const form = h('form', { class: 'filters panel', id: 'tx-filters', novalidate: true },
    h('div', { class: 'field' }, h('label', { for: 'f-q' }, t('tx_search')), search,
      h('p', { class: 'help', id: 'f-q-help' }, t('tx_search_help'))),
    field(t('tx_start'), input('start_date', 'date')),
    field(t('tx_end'), input('end_date', 'date')),
    field(t('tx_type'), select('type', [['', t('any')], ['payment', typeLabel('payment')], ['refund', typeLabel('refund')], ['recharge', typeLabel('recharge')]], filters.type)),
    field(t('tx_status'), select('status', [['', t('any')], ['completed', statusLabel('completed')], ['refunded', statusLabel('refunded')]], filters.status)),
    field(t('tx_min'), input('min_amount', 'text', { inputmode: 'decimal' })),
    field(t('tx_max'), input('max_amount', 'text', { inputmode: 'decimal' })),
    field(t('tx_sync'), select('sync_state', [['', t('any')], ['pending', syncLabel('pending')], ['applied', syncLabel('applied')], ['exception', syncLabel('exception')]], filters.sync_state)),
    field(t('tx_sort'), sortSelect),
    h('div', { class: 'actions' },
      apply,
      h('button', { type: 'button', class: 'secondary', id: 'tx-reset', onclick: () => { form.reset(); for (const k of Object.keys(filters)) filters[k] = ''; for (const el of form.elements) if (el.name) el.value = ''; offset = 0; load(); } }, t('reset'))));
  const exportLink = h('a', { class: 'button secondary', id: 'tx-export', download: true }, t('export_csv'));
  const msg = messageBox('tx-message');
  const totals = h('p', { class: 'totals', id: 'tx-totals', 'aria-live': 'polite' });
  const listBox = h('div', { id: 'tx-list' });
  const pager = h('div', { class: 'pager', id: 'tx-pager' });
  clear(ctx.main, h('h1', { text: t('tx_title') }), form,
    h('div', { class: 'actions' }, exportLink), msg, totals, listBox, pager);

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const next = {};
    for (const el of form.elements) if (el.name) next[el.name] = el.value.trim();
    const bad = filterProblem(next);
    for (const c of form.querySelectorAll('[aria-invalid]')) c.removeAttribute('aria-invalid');
    if (bad) {
      showMessage(msg, errorText(bad));
      const control = form.elements[bad.details.field];
      if (control) { control.setAttribute('aria-invalid', 'true'); control.focus(); }
      return;
    }
    Object.assign(filters, next);
    offset = 0;
    load();
  });

  /** A column header that sorts by `key` (time or amount), announcing the order. */
  function sortHeader(label, key) {
    const current = filters.sort || 'time_desc';
    const on = current.startsWith(key);
    const next = on && current.endsWith('_desc') ? `${key}_asc` : `${key}_desc`;
    return h('button', {
      type: 'button', class: 'sort', 'data-sort': key,
      onclick: () => { filters.sort = next === 'time_desc' ? '' : next; sortSelect.value = filters.sort; offset = 0; load(); },
    }, label, on ? (current.endsWith('_desc') ? ' ▼' : ' ▲') : '');
  }

  async function load() {
    const q = query({ ...filters });
    exportLink.setAttribute('href', `/api/v1/merchant/transactions/export.csv${q}`);
    history.replaceState({}, '', `/console/transactions${query({ ...filters, offset: offset || '' })}`);
    apply.disabled = true;
    // The first load shows where the list will be; later ones keep the old rows until
    // the new ones arrive (no flicker), marked busy.
    if (!listBox.firstChild) clear(listBox, skeleton('tx-loading', t('loading')));
    listBox.setAttribute('aria-busy', 'true');
    try {
      const data = await get(`/merchant/transactions${query({ ...filters, limit: PAGE, offset })}`);
      showMessage(msg, '', 'ok');
      const p = data.pagination;
      const s = data.totals;
      // Top-ups are counted but are no sales: said apart from payments and refunds.
      const topups = s ? s.topup_count : 0;
      if (!s) totals.textContent = '';
      else if (topups > 0 && topups === s.count) totals.textContent = t('tx_totals_only_topups', { count: count(topups), amount: money(s.topup_amount) });
      else {
        totals.textContent = t('tx_totals', {
          count: count(s.count), pay_n: count(s.payment_count), pay: money(s.payment_amount),
          ref_n: count(s.refund_count), ref: money(s.refund_amount), net: money(s.net_amount),
        }) + (topups > 0 ? t('tx_totals_topups', { n: count(topups), amount: money(s.topup_amount) }) : '');
      }
      const wrap = table([
        { label: t('col_tx_no'), cell: (r) => h('a', { href: `/console/transactions/${encodeURIComponent(r.tx_no)}`, 'data-link': true, class: 'tx-link' }, r.tx_no) },
        { label: sortHeader(t('col_time'), 'time'), cell: (r) => dateTime(r.created_at) },
        { label: t('col_type'), cell: (r) => tag(r.tx_type, typeLabel(r.tx_type)) },
        { label: t('col_card'), cell: (r) => r.card_no || '—' },
        { label: sortHeader(t('col_amount'), 'amount'), num: true, cell: signedAmount },
        { label: t('col_status'), cell: paymentState },
        { label: t('col_sync'), cell: (r) => tag(r.sync_state, syncLabel(r.sync_state)) },
        { label: t('col_operator'), cell: (r) => r.operator || '—' },
      ], data.transactions.map((r) => ({ data: r, attrs: { 'data-tx': r.tx_no, class: `row-${r.tx_type}` } })), t('no_rows'));
      const order = filters.sort || 'time_desc';
      const ths = wrap.querySelectorAll('th');
      ths[1].setAttribute('aria-sort', order.startsWith('time') ? (order.endsWith('_asc') ? 'ascending' : 'descending') : 'none');
      ths[4].setAttribute('aria-sort', order.startsWith('amount') ? (order.endsWith('_asc') ? 'ascending' : 'descending') : 'none');
      clear(listBox, wrap);
      clear(pager,
        h('button', { type: 'button', class: 'secondary', disabled: !p.has_prev, id: 'tx-prev', onclick: () => { offset = Math.max(0, offset - PAGE); load(); } }, t('prev')),
        h('span', { class: 'muted', id: 'tx-page' }, t('page_of', { page: p.current_page, pages: Math.max(1, p.total_pages), total: count(p.total_count) })),
        h('button', { type: 'button', class: 'secondary', disabled: !p.has_next, id: 'tx-next', onclick: () => { offset += PAGE; load(); } }, t('next')));
    } catch (err) {
      document.getElementById('tx-loading')?.remove();
      showMessage(msg, errorText(err));
    } finally {
      apply.disabled = false;
      listBox.removeAttribute('aria-busy');
    }
  }
  await load();
  const reload = debounce(() => { if (offset === 0) load(); });
  return { onEvent: (ev) => { if (['transaction', 'refund', 'topup'].includes(ev.type)) reload(); } };
}

export async function transactionDetail(ctx) {
  const txNo = ctx.param;
  const box = h('div', { id: 'tx-detail' });
  clear(ctx.main, h('p', {}, h('a', { href: '/console/transactions', 'data-link': true }, `← ${t('back')}`)),
    h('h1', { text: t('detail_title', { tx: txNo }) }), box);

  async function load(flash) {
    const d = await get(`/common/transactions/${encodeURIComponent(txNo)}`);
    const x = d.transaction;
    const topup = x.tx_type === 'recharge';
    // A top-up has no price, discount or points: its amount and how it was paid.
    const figures = topup ? [
      h('dt', {}, t('col_amount')), h('dd', { id: 'tx-final' }, money(x.final_amount)),
      h('dt', {}, t('col_method')), h('dd', { id: 'tx-method' }, methodLabel(x.payment_method)),
    ] : [
      h('dt', {}, t('col_raw')), h('dd', {}, money(x.raw_amount)),
      h('dt', {}, t('col_discount')), h('dd', {}, Number(x.discount_applied).toFixed(3)),
      h('dt', {}, t('col_final')), h('dd', { id: 'tx-final' }, money(x.final_amount)),
      h('dt', {}, t('col_points')), h('dd', {}, count(x.points_earned)),
    ];
    const info = h('dl', { class: 'grid panel', id: 'tx-info', 'data-type': x.tx_type },
      h('dt', {}, t('col_type')), h('dd', { id: 'tx-type' }, tag(x.tx_type, typeLabel(x.tx_type))),
      h('dt', {}, t('col_status')), h('dd', { id: 'tx-status' }, paymentState(x)),
      h('dt', {}, t('col_time')), h('dd', {}, dateTime(x.created_at)),
      h('dt', {}, t('col_card')), h('dd', {}, x.card_no || '—'),
      figures,
      topup ? [] : x.tx_type === 'payment' ? [
        h('dt', {}, t('col_refunded')), h('dd', { id: 'tx-refunded' }, money(x.refunded_amount)),
        h('dt', {}, t('col_remaining')), h('dd', { id: 'tx-remaining', 'data-value': String(x.remaining_refundable) }, money(x.remaining_refundable)),
      ] : [
        h('dt', {}, t('col_original')), h('dd', {}, x.original_tx_no ? h('a', { href: `/console/transactions/${encodeURIComponent(x.original_tx_no)}`, 'data-link': true }, x.original_tx_no) : '—'),
        h('dt', {}, t('col_reason')), h('dd', {}, x.reason || '—'),
      ],
      h('dt', {}, t('col_sync')), h('dd', {}, tag(x.sync_state, syncLabel(x.sync_state))),
      h('dt', {}, t('col_operator')), h('dd', {}, x.operator || '—'),
      h('dt', {}, t('col_device')), h('dd', {}, x.device_id || '—'));
    // The receipt opens as its own printable page (the API's HTML, in this language).
    const receipt = h('div', { class: 'actions' }, h('a', {
      class: 'button secondary', id: 'tx-receipt', target: '_blank', rel: 'noopener',
      href: `/api/v1/transactions/${encodeURIComponent(x.tx_no)}/receipt${query({ format: 'html', lang: getLocale() })}`,
    }, t('print_receipt')));
    const parts = [info, receipt];
    if (x.tx_type === 'payment') {
      parts.push(h('h2', { text: t('refunds_of') }), table([
        { label: t('col_tx_no'), cell: (r) => r.tx_no },
        { label: t('col_time'), cell: (r) => dateTime(r.created_at) },
        { label: t('col_amount'), num: true, cell: (r) => money(r.final_amount) },
        { label: t('col_reason'), cell: (r) => r.reason || '—' },
        { label: t('col_operator'), cell: (r) => r.operator || '—' },
      ], d.refunds, t('no_rows')));
      if (ctx.isManager) parts.push(refundForm(x, load));
    }
    const msg = messageBox('tx-detail-message');
    if (flash) showMessage(msg, flash, 'ok');
    clear(box, msg, parts);
  }
  await load();
  return { onEvent: () => {} };
}

/** The refund amount's first problem by the server's rules, or null: malformed, zero,
 *  or above what is left to refund. */
function refundProblem(text, remaining) {
  const v = text.trim();
  if (/^0*(\.0{0,2})?$/.test(v) && /\d/.test(v)) return problem('INVALID_REFUND_AMOUNT', 'refund_amount');
  const bad = checkAmount(v, 'refund_amount', 'INVALID_AMOUNT');
  if (bad) return bad;
  if (cents(v) > cents(remaining.toFixed(2))) return problem('REFUND_EXCEEDS_REMAINING', 'refund_amount');
  return null;
}

function refundForm(x, reload) {
  const msg = messageBox('refund-message');
  if (!(x.remaining_refundable > 0)) {
    return h('section', { class: 'panel', id: 'refund-panel' }, h('h2', { text: t('refund_title') }), h('p', { class: 'muted' }, t('not_refundable')));
  }
  const remaining = Number(x.remaining_refundable);
  // Empty on purpose: a pre-filled full amount made one Enter refund everything.
  const amount = h('input', {
    name: 'refund_amount', id: 'refund-amount', inputmode: 'decimal', required: true, autocomplete: 'off',
    placeholder: money(remaining), 'aria-describedby': 'refund-check',
  });
  const check = h('p', { class: 'help', id: 'refund-check', 'aria-live': 'polite' }, t('refund_up_to', { amount: money(remaining) }));
  const reason = h('input', { name: 'reason', id: 'refund-reason', maxlength: 500 });
  const submit = h('button', { type: 'submit', id: 'refund-submit', class: 'danger', disabled: true }, t('refund_submit'));
  const full = h('button', {
    type: 'button', class: 'secondary', id: 'refund-full',
    onclick: () => { amount.value = remaining.toFixed(2); update(); amount.focus(); },
  }, t('refund_full', { amount: money(remaining) }));
  /** Says, as the amount is typed, exactly what will be refunded or why it cannot be. */
  function update() {
    const v = amount.value.trim();
    const bad = v ? refundProblem(v, remaining) : null;
    check.className = bad ? 'help bad' : 'help';
    check.textContent = !v ? t('refund_up_to', { amount: money(remaining) })
      : bad ? errorText(bad) : t('refund_will', { amount: money(v), left: money((Number(cents(remaining.toFixed(2)) - cents(v)) / 100)) });
    if (bad) amount.setAttribute('aria-invalid', 'true'); else amount.removeAttribute('aria-invalid');
    submit.disabled = !v || Boolean(bad);
  }
  amount.addEventListener('input', update);
  const form = h('form', { class: 'form-grid', id: 'refund-form', novalidate: true },
    h('div', { class: 'field' }, h('label', { for: 'refund-amount' }, t('refund_amount')), amount, check),
    field(t('refund_reason'), reason), h('div', { class: 'actions' }, full, submit));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const value = amount.value.trim();
    const bad = refundProblem(value, remaining);
    if (bad) { update(); amount.focus(); return; }
    // The dialog names exactly the amount that will be sent.
    const ok = await confirmDialog(t('refund_confirm_title'), t('refund_confirm', { amount: money(value), tx: x.tx_no }), t('confirm'), t('cancel'), true);
    if (!ok) return;
    submit.disabled = true;
    try {
      const body = { original_tx_no: x.tx_no, refund_amount: value, idempotency_key: requestKey() };
      if (reason.value.trim()) body.reason = reason.value.trim();
      const r = await post('/merchant/refund', body);
      await reload(t('refund_done', { amount: money(r.refund.refunded_amount), tx: r.refund.refund_tx_no }));
    } catch (err) {
      showMessage(msg, errorText(err));
      submit.disabled = false;
    }
  });
  return h('section', { class: 'panel', id: 'refund-panel' }, h('h2', { text: t('refund_title') }), form, msg);
}

// ---------------------------------------------------------------------------------------
// Settlements
// ---------------------------------------------------------------------------------------

/** A settlement's period as a person reads it: inclusive calendar days in the store's
 *  time zone, or exact times when it does not start and end at midnight. */
function periodText(r) {
  if (!r.whole_days) return `${dateTime(r.period_start)} – ${dateTime(r.period_end)}`;
  return r.first_day === r.last_day ? r.first_day : `${r.first_day} – ${r.last_day}`;
}

const stlLink = (r) => h('a', { href: `/console/settlements/${encodeURIComponent(r.settlement_no)}`, 'data-link': true, class: 'stl-link' }, r.settlement_no);
const stlStatus = (r) => tag(r.status, t(`stl_status_${r.status}`));

export async function settlements(ctx) {
  const msg = messageBox('stl-message');
  const mode = select('mode', [['t_plus_1', t('mode_t_plus_1')], ['realtime', t('mode_realtime')], ['monthly', t('mode_monthly')]], 't_plus_1');
  mode.id = 'stl-mode';
  const start = h('input', { type: 'date', name: 'period_start', id: 'stl-start', required: true, value: todayInStore(-1), max: todayInStore(-1) });
  const end = h('input', { type: 'date', name: 'period_end', id: 'stl-end', required: true, value: todayInStore(-1), max: todayInStore(-1) });
  const submit = h('button', { type: 'submit', id: 'stl-generate' }, t('stl_generate'));
  const form = h('form', { class: 'form-grid panel', id: 'stl-form', novalidate: true },
    field(t('stl_mode'), mode), field(t('stl_start'), start), field(t('stl_end'), end),
    h('p', { class: 'help wide', id: 'stl-help' }, t('stl_help')), h('div', { class: 'actions' }, submit));
  const list = h('div', { id: 'stl-list' });
  clear(ctx.main, h('h1', { text: t('stl_title') }), form, msg, list);

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    // the server's rules, checked first: an order, and a day that is over in the store
    const wrong = !start.value || !end.value ? problem('VALIDATION_ERROR', 'period_start')
      : end.value < start.value ? problem('PERIOD_INVALID', 'period_end')
        : end.value >= todayInStore(0) ? problem('PERIOD_NOT_ENDED', 'period_end') : null;
    if (wrong) { showMessage(msg, errorText(wrong)); return; }
    submit.disabled = true;
    try {
      const r = await post('/merchant/settlements', { mode: mode.value, period_start: start.value, period_end: end.value });
      showMessage(msg, t('stl_done', { no: r.settlement.settlement_no }), 'ok');
      await load();
    } catch (err) {
      showMessage(msg, errorText(err));
    } finally {
      submit.disabled = false;
    }
  });

  async function load() {
    const d = await get('/merchant/settlements?limit=50');
    clear(list, table([
      { label: t('col_stl_no'), cell: stlLink },
      { label: t('col_status'), cell: stlStatus },
      { label: t('col_period'), cell: periodText },
      { label: t('col_total'), num: true, cell: (r) => money(r.total_amount) },
      { label: t('col_payments'), num: true, cell: (r) => `${money(r.payment_amount)} (${count(r.payment_count)})` },
      { label: t('col_refunds'), num: true, cell: (r) => `${money(r.refund_amount)} (${count(r.refund_count)})` },
      { label: t('stl_mode'), cell: (r) => t(`mode_${r.mode}`) },
      { label: t('col_created'), cell: (r) => `${dateTime(r.created_at)} · ${r.created_by || ''}` },
    ], d.settlements.map((r) => ({ data: r, attrs: { 'data-settlement': r.settlement_no, class: `row-${r.status}` } })), t('no_rows')));
  }
  await load();
  return null;
}

/** One settlement: its figures, its transactions (paged), CSV, a print view, and for
 *  the owner a void with a reason. */
export async function settlementDetail(ctx) {
  const no = ctx.param;
  const box = h('div', { id: 'stl-detail' });
  const msg = messageBox('stl-detail-message');
  clear(ctx.main, h('p', { class: 'no-print' }, h('a', { href: '/console/settlements', 'data-link': true }, `← ${t('back')}`)),
    h('h1', { text: t('stl_detail_title', { no }) }), msg, box);
  const PAGE = 100;
  let offset = 0;

  async function load() {
    const x = (await get(`/merchant/settlements/${encodeURIComponent(no)}`)).settlement;
    // What the settlement covers: payments and refunds, never top-ups.
    const bounds = { start_date: x.period_start, end_date: x.period_end, type: 'sales' };
    const info = h('dl', { class: 'grid panel', id: 'stl-info' },
      h('dt', {}, t('col_status')), h('dd', { id: 'stl-status' }, stlStatus(x)),
      h('dt', {}, t('col_period')), h('dd', { id: 'stl-period' }, periodText(x)),
      h('dt', {}, t('stl_mode')), h('dd', {}, t(`mode_${x.mode}`)),
      h('dt', {}, t('col_payments')), h('dd', {}, `${money(x.payment_amount)} (${count(x.payment_count)})`),
      h('dt', {}, t('col_refunds')), h('dd', {}, `${money(x.refund_amount)} (${count(x.refund_count)})`),
      h('dt', {}, t('col_total')), h('dd', { id: 'stl-total' }, money(x.total_amount)),
      h('dt', {}, t('col_count')), h('dd', {}, count(x.tx_count)),
      h('dt', {}, t('col_created')), h('dd', {}, `${dateTime(x.created_at)} · ${x.created_by || ''}`),
      x.status === 'voided' ? [
        h('dt', {}, t('stl_voided')), h('dd', { id: 'stl-voided' }, `${dateTime(x.voided_at)} · ${x.voided_by || ''}`),
        h('dt', {}, t('col_reason')), h('dd', { id: 'stl-void-reason' }, x.void_reason || ''),
      ] : []);
    const actions = h('div', { class: 'actions no-print', id: 'stl-actions' },
      h('a', { class: 'button secondary', id: 'stl-csv', href: `/api/v1/merchant/transactions/export.csv${query(bounds)}`, download: `${no}.csv` }, t('stl_csv')),
      h('button', { type: 'button', class: 'secondary', id: 'stl-print', onclick: () => window.print() }, t('stl_print')),
      ctx.session.user.role === 'owner' && x.status !== 'voided'
        ? h('button', { type: 'button', class: 'danger', id: 'stl-void', onclick: () => voidIt(x) }, t('stl_void')) : null);
    const rows = await get(`/merchant/transactions${query({ ...bounds, sort: 'time_asc', limit: PAGE, offset })}`);
    const p = rows.pagination;
    clear(box, info, actions, h('h2', { text: t('stl_transactions') }), table([
      { label: t('col_tx_no'), cell: (r) => h('a', { href: `/console/transactions/${encodeURIComponent(r.tx_no)}`, 'data-link': true }, r.tx_no) },
      { label: t('col_time'), cell: (r) => dateTime(r.created_at) },
      { label: t('col_type'), cell: (r) => tag(r.tx_type, typeLabel(r.tx_type)) },
      { label: t('col_card'), cell: (r) => r.card_no || '—' },
      { label: t('col_amount'), num: true, cell: signedAmount },
      { label: t('col_operator'), cell: (r) => r.operator || '—' },
    ], rows.transactions.map((r) => ({ data: r, attrs: { 'data-tx': r.tx_no, class: `row-${r.tx_type}` } })), t('no_rows')),
    p.total_pages > 1 ? h('div', { class: 'pager no-print' },
      h('button', { type: 'button', class: 'secondary', disabled: !p.has_prev, onclick: () => { offset = Math.max(0, offset - PAGE); load(); } }, t('prev')),
      h('span', { class: 'muted' }, t('page_of', { page: p.current_page, pages: p.total_pages, total: count(p.total_count) })),
      h('button', { type: 'button', class: 'secondary', disabled: !p.has_next, onclick: () => { offset += PAGE; load(); } }, t('next'))) : null);
  }

  async function voidIt(x) {
    const reason = await promptDialog(t('stl_void_title', { no }), t('stl_void_text', { total: money(x.total_amount), period: periodText(x) }),
      t('stl_void_reason'), t('stl_void'), t('cancel'), (v) => checkText(v, 500, 'reason'), errorText);
    if (reason === null) return;
    try {
      await post(`/merchant/settlements/${encodeURIComponent(no)}/void`, { reason });
      showMessage(msg, t('stl_void_done', { no }), 'ok');
      await load();
    } catch (err) {
      showMessage(msg, errorText(err));
    }
  }
  await load();
  return null;
}

// ---------------------------------------------------------------------------------------
// Shifts: the day by cashier or terminal, and the tills' shifts (close, Z report)
// ---------------------------------------------------------------------------------------

export async function shifts(ctx) {
  const params = new URLSearchParams(location.search);
  const msg = messageBox('shift-message');
  const date = h('input', { type: 'date', id: 'shift-date', name: 'date', value: params.get('date') || todayInStore(0), max: todayInStore(0) });
  const by = select('by', [['cashier', t('shift_by_cashier')], ['terminal', t('shift_by_terminal')]], params.get('by') === 'terminal' ? 'terminal' : 'cashier');
  by.id = 'shift-by';
  const show = h('button', { type: 'submit', id: 'shift-show' }, t('apply'));
  const form = h('form', { class: 'form-grid panel', id: 'shift-form', novalidate: true },
    field(t('shift_date'), date), field(t('shift_group'), by), h('p', { class: 'help wide' }, t('shift_help')),
    h('div', { class: 'actions' }, show));
  const daily = h('div', { id: 'daily-list' });
  const actions = h('div', { class: 'actions', id: 'daily-actions' });
  const list = h('div', { id: 'shift-list' });
  clear(ctx.main, h('h1', { text: t('shifts_title') }), form, msg,
    h('h2', { text: t('shift_daily') }), actions, daily, h('h2', { text: t('shift_list') }), list);

  const figures = (f) => [
    { label: t('col_payments'), num: true, cell: (r) => `${money(f(r).payments.amount)} (${count(f(r).payments.count)})` },
    { label: t('col_refunds'), num: true, cell: (r) => `${money(f(r).refunds.amount)} (${count(f(r).refunds.count)})` },
    { label: t('shift_net'), num: true, cell: (r) => money(f(r).net_amount) },
    { label: t('col_topups'), num: true, cell: (r) => `${money(f(r).topups?.amount ?? 0)} (${count(f(r).topups?.count ?? 0)})` },
    { label: t('shift_cash_expected'), num: true, cell: (r) => money(f(r).cash_expected ?? 0) },
    { label: t('shift_unsynced'), num: true, cell: (r) => count(f(r).unsynced.count) },
  ];

  async function load() {
    const q = { date: date.value, by: by.value };
    history.replaceState({}, '', `/console/shifts${query(q)}`);
    show.disabled = true;
    try {
      const [d, l] = await Promise.all([get(`/reports/daily${query(q)}`), get(`/shifts${query({ date: date.value })}`)]);
      const rows = [...d.rows, { name: t('shift_total'), figures: d.totals, total: true }];
      clear(daily, table([
        { label: by.value === 'terminal' ? t('shift_terminal') : t('shift_cashier'), cell: (r) => (r.total ? h('strong', {}, r.name) : r.name || t('shift_no_device')) },
        ...figures((r) => r.figures),
      ], rows.map((r) => ({ data: r, attrs: { 'data-row': r.total ? 'total' : (r.name || '') } })), t('no_rows')));
      clear(actions,
        h('a', { class: 'button secondary', id: 'daily-csv', href: `/api/v1/reports/daily${query({ ...q, format: 'csv' })}`, download: `daily-${q.by}-${q.date}.csv` }, t('export_csv')),
        h('a', { class: 'button secondary', id: 'daily-print', target: '_blank', rel: 'noopener', href: `/api/v1/reports/daily${query({ ...q, format: 'text', lang: getLocale() })}` }, t('shift_print')));
      clear(list, table([
        { label: t('shift_no'), cell: (r) => r.shift_no },
        { label: t('shift_cashier'), cell: (r) => r.cashier },
        { label: t('shift_terminal'), cell: (r) => r.terminal || t('shift_no_device') },
        { label: t('shift_opened'), cell: (r) => r.opened_at },
        { label: t('shift_closed'), cell: (r) => (r.closed_at ? `${r.closed_at} · ${r.closed_by || ''}` : tag('pending', t('shift_open_now'))) },
        ...figures((r) => r.figures),
        {
          label: '',
          cell: (r) => h('div', { class: 'actions' },
            r.kind === 'X' ? h('button', { type: 'button', class: 'danger', 'data-action': 'close', onclick: () => closeShift(r) }, t('shift_close')) : null,
            h('a', { class: 'button secondary', target: '_blank', rel: 'noopener', 'data-action': 'report', href: `/api/v1/reports/shift/${encodeURIComponent(r.shift_id)}${query({ format: 'text', lang: getLocale() })}` }, r.kind === 'Z' ? t('shift_z') : t('shift_x'))),
        },
      ], l.shifts.map((r) => ({ data: r, attrs: { 'data-shift': r.shift_no, 'data-kind': r.kind } })), t('shift_none')));
    } catch (err) {
      showMessage(msg, errorText(err));
    } finally {
      show.disabled = false;
    }
  }

  async function closeShift(r) {
    const ok = await confirmDialog(t('shift_close_title', { no: r.shift_no }),
      t('shift_close_text', { who: r.cashier, net: money(r.figures.net_amount), cash: money(r.figures.cash_expected ?? 0) }), t('shift_close'), t('cancel'), true);
    if (!ok) return;
    try {
      await post(`/shifts/${encodeURIComponent(r.shift_id)}/close`, {});
      showMessage(msg, t('shift_closed_done', { no: r.shift_no }), 'ok');
      await load();
    } catch (err) {
      showMessage(msg, errorText(err));
    }
  }

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    if (!date.value) { showMessage(msg, errorText(problem('VALIDATION_ERROR', 'date'))); return; }
    load();
  });
  await load();
  return null;
}

// ---------------------------------------------------------------------------------------
// Cards at the counter: look one up, top it up, freeze a lost one, lift the freeze
// ---------------------------------------------------------------------------------------

export async function cards(ctx) {
  const cur = () => ctx.session.store.currency || '';
  const withCur = (v) => `${cur()} ${money(v)}`.trim();
  // The top-up being sent and its idempotency key: the key stays while the same card,
  // amount and method are sent again (after no answer, or a second click), so the server
  // replays the first load instead of loading twice; anything else gets a new key.
  let attempt = null;
  const msg = messageBox('card-message');
  const number = h('input', { type: 'search', id: 'card-no', name: 'card_no', autocomplete: 'off', maxlength: 32, value: new URLSearchParams(location.search).get('card_no') || '', 'aria-describedby': 'card-help' });
  const find = h('button', { type: 'submit', id: 'card-find' }, t('cards_find'));
  const form = h('form', { class: 'form-grid panel', id: 'card-form', novalidate: true },
    field(t('field_card_no'), number), h('p', { class: 'help wide', id: 'card-help' }, t('cards_help')),
    h('div', { class: 'actions' }, find));
  const box = h('div', { id: 'card-box' });
  clear(ctx.main, h('h1', { text: t('cards_title') }), form, msg, box);

  function show(c, done = null) {
    const frozenHere = c.status === 'inactive' && c.freeze;
    const next = c.level.next_level;
    const info = h('dl', { class: 'grid panel', id: 'card-info', 'data-card': c.card_no },
      h('dt', {}, t('field_card_no')), h('dd', {}, c.card_no),
      h('dt', {}, t('col_status')), h('dd', { id: 'card-status' }, tag(c.status === 'active' ? 'completed' : 'disabled', t(`card_status_${c.status}`))),
      h('dt', {}, t('cards_balance')), h('dd', { id: 'card-balance' }, money(c.balance)),
      h('dt', {}, t('col_points')), h('dd', {}, count(c.points)),
      h('dt', {}, t('cards_level')), h('dd', { id: 'card-level' }, c.level.name || String(c.level.level)),
      h('dt', {}, t('cards_next')), h('dd', { id: 'card-next' }, next ? t('cards_next_text', { name: next.name, points: count(next.points_needed) }) : t('cards_top')),
      frozenHere ? [h('dt', {}, t('cards_frozen')), h('dd', { id: 'card-freeze' }, t('cards_frozen_text', { at: dateTime(c.freeze.frozen_at), by: c.freeze.frozen_by, reason: c.freeze.reason }))] : [],
      c.pending_ops ? [h('dt', {}, t('col_sync')), h('dd', { id: 'card-pending' }, t('cards_pending', { n: count(c.pending_ops) }))] : []);
    const actions = h('div', { class: 'actions', id: 'card-actions' },
      c.status === 'active' ? h('button', { type: 'button', class: 'danger', id: 'card-freeze-btn', onclick: () => change(c, true) }, t('cards_freeze')) : null,
      frozenHere ? h('button', { type: 'button', id: 'card-unfreeze-btn', onclick: () => change(c, false) }, t('cards_unfreeze')) : null,
      c.status === 'inactive' && !c.freeze ? h('p', { class: 'help', id: 'card-central-note' }, t('err_CARD_FROZEN_CENTRALLY')) : null);
    clear(box, info, actions, topupPanel(c, done));
  }

  /** The top-up form (an active standard card), what the last top-up did, or why this
   *  card cannot be topped up. */
  function topupPanel(c, done) {
    const result = done ? h('div', { class: 'msg ok topup-result', id: 'topup-result', role: 'status' },
      h('p', { id: 'topup-done' }, t('topup_done', {
        card: done.card.card_no, amount: withCur(done.topup.amount),
        method: methodLabel(done.topup.payment_method), balance: withCur(done.card.balance_after),
      })),
      h('div', { class: 'actions' },
        h('a', {
          class: 'button secondary', id: 'topup-receipt', target: '_blank', rel: 'noopener',
          href: `${done.topup.receipt_url}${query({ format: 'html', lang: getLocale() })}`,
        }, t('print_receipt')),
        h('a', { href: `/console/transactions/${encodeURIComponent(done.topup.tx_no)}`, 'data-link': true, id: 'topup-tx' },
          t('topup_view_tx', { tx: done.topup.tx_no })))) : null;
    const section = (...body) => h('section', { class: 'panel', id: 'topup-panel', 'aria-labelledby': 'topup-title' },
      h('h2', { id: 'topup-title', text: t('topup_title') }), result, ...body);
    if (c.card_type && c.card_type !== 'standard') {
      // Central loads standard cards only: the same words as its refusal, and no form.
      return section(h('p', { class: 'help', id: 'topup-unavailable' }, errorText({ code: 'UNSUPPORTED_CARD_TYPE_FOR_RECHARGE' })));
    }
    if (c.status !== 'active') {
      return section(h('p', { class: 'help', id: 'topup-unavailable' }, t('topup_not_active', { status: t(`card_status_${c.status}`) })));
    }
    const balance = cents(Number(c.balance).toFixed(2));
    const amount = h('input', {
      name: 'amount', id: 'topup-amount', inputmode: 'decimal', required: true, autocomplete: 'off',
      maxlength: 16, 'aria-describedby': 'topup-check',
    });
    const check = h('p', { class: 'help', id: 'topup-check', 'aria-live': 'polite' }, t('topup_hint'));
    const method = select('payment_method', TOPUP_METHODS.map((m) => [m, methodLabel(m)]), 'cash');
    method.id = 'topup-method';
    const submit = h('button', { type: 'submit', id: 'topup-submit', disabled: true }, t('topup_submit'));
    const problemBox = messageBox('topup-message');
    /** Says, as the amount is typed, what will be loaded and the balance after, or the
     *  server's own words for why it would be refused. */
    function update() {
      const v = amount.value.trim();
      const bad = v ? checkPositiveAmount(v, 'amount', 'INVALID_RECHARGE_AMOUNT') : null;
      check.className = bad ? 'help bad' : 'help';
      check.textContent = !v ? t('topup_hint')
        : bad ? errorText(bad) : t('topup_will', { amount: withCur(v), balance: withCur(Number(balance + cents(v)) / 100) });
      if (bad) amount.setAttribute('aria-invalid', 'true'); else amount.removeAttribute('aria-invalid');
      submit.disabled = !v || Boolean(bad);
    }
    amount.addEventListener('input', update);
    const form = h('form', { class: 'form-grid', id: 'topup-form', novalidate: true },
      h('p', { class: 'help wide', id: 'topup-help' }, t('topup_help')),
      h('div', { class: 'field' }, h('label', { for: 'topup-amount' }, t('topup_amount')), amount, check),
      h('div', { class: 'field' }, h('label', { for: 'topup-method' }, t('topup_method')), method),
      h('div', { class: 'actions wide' }, submit));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const value = amount.value.trim();
      if (!value || checkPositiveAmount(value, 'amount', 'INVALID_RECHARGE_AMOUNT')) { update(); amount.focus(); return; }
      const how = method.value;
      // The dialog names exactly what will be sent, and starts on Cancel.
      const ok = await confirmDialog(t('topup_confirm_title'),
        t('topup_confirm', { amount: withCur(value), card: c.card_no, method: methodLabel(how) }),
        t('topup_confirm_btn', { amount: withCur(value) }), t('cancel'), true);
      if (!ok) return;
      const sig = `${c.card_no}|${cents(value)}|${how}`;
      if (!attempt || attempt.sig !== sig) attempt = { sig, key: requestKey() };
      submit.disabled = true;
      showMessage(problemBox, '', 'ok');
      try {
        const r = await post('/merchant/topup', { card_no: c.card_no, amount: value, payment_method: how, idempotency_key: attempt.key });
        attempt = null;
        let fresh;
        try {
          fresh = await get(`/merchant/cards/${encodeURIComponent(c.card_no)}`);
        } catch {
          fresh = { ...c, balance: r.card.balance_after, points: r.card.points };
        }
        showMessage(msg, '', 'ok');
        show(fresh, r);
        document.getElementById('topup-receipt')?.focus();
      } catch (err) {
        // The server said no: that request is over, a new one gets a new key. No answer
        // (or a failing server) keeps the key, so sending again cannot load twice.
        if (err.code && err.status < 500) attempt = null;
        showMessage(problemBox, errorText(err));
        submit.disabled = false;
      }
    });
    return section(form, problemBox);
  }

  async function lookup() {
    const no = number.value.trim();
    const bad = checkKey(no, 32, 'card_no');
    if (bad) { refuse(msg, number, bad, showMessage, errorText); return; }
    number.removeAttribute('aria-invalid');
    history.replaceState({}, '', `/console/cards${query({ card_no: no })}`);
    find.disabled = true;
    try {
      show(await get(`/merchant/cards/${encodeURIComponent(no)}`));
      showMessage(msg, '', 'ok');
    } catch (err) {
      clear(box);
      showMessage(msg, errorText(err));
    } finally {
      find.disabled = false;
    }
  }

  async function change(c, freeze) {
    const verb = freeze ? 'freeze' : 'unfreeze';
    const reason = await promptDialog(t(`cards_${verb}_title`, { no: c.card_no }), t(`cards_${verb}_text`, { balance: money(c.balance) }),
      t('stl_void_reason'), t(`cards_${verb}`), t('cancel'), (v) => checkText(v, 500, 'reason'), errorText);
    if (reason === null) return;
    try {
      show(await post(`/merchant/cards/${encodeURIComponent(c.card_no)}/${verb}`, { reason }));
      showMessage(msg, t(`cards_${verb}_done`, { no: c.card_no }), 'ok');
    } catch (err) {
      showMessage(msg, errorText(err));
    }
  }

  form.addEventListener('submit', (e) => { e.preventDefault(); lookup(); });
  if (number.value) await lookup();
  return null;
}

// ---------------------------------------------------------------------------------------
// Sync
// ---------------------------------------------------------------------------------------

export async function sync(ctx) {
  const msg = messageBox('sync-message');
  const statusBox = h('div', { id: 'sync-status' });
  const exBox = h('div', { id: 'sync-exceptions' });
  const now = h('button', { type: 'button', id: 'sync-now', hidden: true }, t('sync_now'));
  // Standalone: nothing to sync with, so no button that can only fail; say so instead.
  const standaloneNote = h('p', { id: 'sync-standalone', class: 'muted', hidden: true }, t('sync_standalone_note'));
  clear(ctx.main, h('h1', { text: t('sync_title') }), h('div', { class: 'actions' }, now), standaloneNote, msg,
    h('h2', { text: t('sync_status') }), statusBox, h('h2', { text: t('sync_exceptions') }), exBox);

  now.addEventListener('click', async () => {
    now.disabled = true;
    try {
      await post('/sync/now');
      showMessage(msg, t('sync_done'), 'ok');
    } catch (err) {
      showMessage(msg, errorText(err));
    } finally {
      now.disabled = false;
      load().catch(() => {});
    }
  });

  async function load() {
    const [s, ex] = await Promise.all([get('/sync/status'), get('/sync/exceptions')]);
    ctx.refreshBanner(s);
    now.hidden = !s.central_configured;
    standaloneNote.hidden = s.central_configured;
    clear(statusBox, h('dl', { class: 'grid panel' },
      h('dt', {}, t('sync_mode')), h('dd', {}, s.central_configured ? t('mode_central') : t('mode_standalone')),
      h('dt', {}, t('sync_queue')), h('dd', { id: 'sync-queue' }, count(s.queue_depth)),
      h('dt', {}, t('sync_oldest')), h('dd', {}, s.oldest_pending_at ? `${dateTime(s.oldest_pending_at)} (${duration(s.oldest_pending_age_secs)})` : '—'),
      h('dt', {}, t('sync_last_push')), h('dd', {}, s.last_push_ok_at ? dateTime(s.last_push_ok_at) : t('never')),
      h('dt', {}, t('sync_last_pull')), h('dd', {}, s.last_pull_ok_at ? dateTime(s.last_pull_ok_at) : t('never')),
      h('dt', {}, t('sync_last_error')), h('dd', {}, s.last_error ? `${s.last_error} (${dateTime(s.last_error_at)})` : '—'),
      h('dt', {}, t('dash_exceptions')), h('dd', {}, count(s.open_exceptions)),
      h('dt', {}, t('sync_replica_age')), h('dd', {}, s.replica_age_secs == null ? '—' : duration(s.replica_age_secs)),
      h('dt', {}, t('sync_heartbeat')), h('dd', { id: 'sync-heartbeat' }, s.last_heartbeat_at
        ? `${dateTime(s.last_heartbeat_at)} (${t('sync_clock_skew', { s: Number(s.clock_skew_secs || 0).toFixed(1) })})`
        : t('never'))));
    clear(exBox, table([
      { label: t('col_time'), cell: (r) => dateTime(r.created_at) },
      // What was refused: a sale, a refund, a settlement or its void, a card freeze…
      { label: t('col_op'), cell: (r) => { const k = `op_${r.op_type}`; const v = t(k); return v === k ? r.op_type : v; } },
      { label: t('col_tx_no'), cell: (r) => r.tx_no || '—' },
      { label: t('col_card'), cell: (r) => r.card_no || '—' },
      { label: t('col_amount'), num: true, cell: (r) => money(r.amount) },
      { label: t('col_reason_central'), cell: (r) => r.reason },
      { label: t('resolve'), cell: (r) => resolveForm(r, msg, load) },
    ], ex.exceptions, t('sync_no_exceptions')));
  }
  await load();
  const reload = debounce(() => load().catch(() => {}), 500);
  // A sale or refund adds to the queue: the count follows it, as the banner does.
  const moves = ['sync', 'exception', 'transaction', 'refund', 'topup'];
  return { onEvent: (ev) => { if (moves.includes(ev.type)) reload(); } };
}

function resolveForm(r, msg, reload) {
  const note = h('input', { name: 'note', 'aria-label': t('resolve_note'), placeholder: t('resolve_note'), required: true });
  const form = h('form', { class: 'actions' }, note, h('button', { type: 'submit' }, t('resolve')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!note.value.trim()) { note.focus(); return; }
    try {
      await post(`/sync/exceptions/${encodeURIComponent(r.id)}/resolve`, { note: note.value.trim() });
      showMessage(msg, t('resolved'), 'ok');
      await reload();
    } catch (err) {
      showMessage(msg, errorText(err));
    }
  });
  return form;
}

