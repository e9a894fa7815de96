// The console's entry point: session, layout, routing, the status banner and the live feed.

import { api, get, post, put, setCsrf, onSessionEnded } from './api.js';
import { h, clear, field, messageBox, showMessage, confirmDialog, skeleton } from './dom.js';
import { t, setLocale, getLocale, setTimeZone, storedLocale, errorText, duration, money } from './i18n.js';
import * as mainPages from './pages-main.js';
import * as adminPages from './pages-admin.js';

const root = document.getElementById('app');
const BASE = '/console/';

const state = { session: null, page: null, ws: null, wsRetry: 0, wsTimer: null, stopped: false };

const ROUTES = [
  { path: 'dashboard', nav: 'nav_dashboard', manager: true, render: mainPages.dashboard },
  { path: 'transactions', nav: 'nav_transactions', manager: false, render: mainPages.transactions },
  { path: 'transactions/', manager: false, render: mainPages.transactionDetail, prefix: true },
  { path: 'settlements', nav: 'nav_settlements', manager: true, render: mainPages.settlements },
  { path: 'settlements/', manager: true, render: mainPages.settlementDetail, prefix: true },
  { path: 'shifts', nav: 'nav_shifts', manager: true, render: mainPages.shifts },
  { path: 'cards', nav: 'nav_cards', manager: true, render: mainPages.cards },
  { path: 'sync', nav: 'nav_sync', manager: true, render: mainPages.sync },
  { path: 'staff', nav: 'nav_staff', manager: true, render: adminPages.staff },
  { path: 'devices', nav: 'nav_devices', manager: true, render: adminPages.devices },
  { path: 'audit', nav: 'nav_audit', manager: true, render: adminPages.audit },
  { path: 'settings', nav: 'nav_settings', manager: true, render: adminPages.settings },
];

const isManager = () => ['owner', 'manager'].includes(state.session?.user?.role);

function currentPath() {
  const p = location.pathname.startsWith(BASE) ? location.pathname.slice(BASE.length) : '';
  return decodeURIComponent(p.replace(/\/+$/, ''));
}

export function navigate(path, replace = false) {
  const url = BASE + path;
  if (replace) history.replaceState({}, '', url); else history.pushState({}, '', url);
  route();
}

// Links inside the console navigate without a reload.
document.addEventListener('click', (e) => {
  const a = e.target.closest('a[data-link]');
  if (!a || e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
  e.preventDefault();
  navigate(a.getAttribute('href').slice(BASE.length));
});
window.addEventListener('popstate', () => route());

onSessionEnded(() => {
  if (state.session) signedOut('expired');
});

/** Where to go back to after signing in again: this page with its filters. */
let returnTo = null;
/** The language chosen on the sign-in page (kept at sign-in, not overridden). */
let chosenLocale = null;

function signedOut(reason = null) {
  state.session = null;
  localStorage.removeItem('mps.signedIn');
  setCsrf(null);
  closeLive();
  clearInterval(state.bannerTimer);
  if (reason === 'expired') {
    const here = currentPath();
    if (here && here !== 'login') returnTo = here + location.search;
  }
  loginPage(reason === 'expired' ? 'session_expired' : null);
}

// ---------------------------------------------------------------------------------------
// Sign-in
// ---------------------------------------------------------------------------------------

/** The sign-in page; `notice` is the key of a message to show (in the language chosen). */
function loginPage(notice = null) {
  document.title = `${t('sign_in')} · ${t('app_title')}`;
  const msg = messageBox('login-message');
  if (notice) showMessage(msg, t(notice), 'info');
  const user = h('input', { name: 'username', id: 'username', autocomplete: 'username', required: true });
  const pass = h('input', { name: 'password', id: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const submit = h('button', { type: 'submit', id: 'login-submit' }, t('sign_in'));
  const form = h('form', { id: 'login-form', novalidate: true },
    field(t('username'), user), field(t('password'), pass), submit, msg);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    submit.disabled = true;
    submit.textContent = t('signing_in');
    try {
      const body = await post('/console/login', { username: user.value.trim(), password: pass.value });
      if (chosenLocale && chosenLocale !== body.locale) {
        // The language picked here wins over the one stored for the account.
        body.locale = chosenLocale;
        setCsrf(body.csrf_token);
        put('/console/me', { locale: chosenLocale }).catch(() => {});
      }
      startSession(body);
      const back = returnTo;
      returnTo = null;
      if (back) {
        history.replaceState({}, '', BASE + back);
        route();
      } else {
        navigate(isManager() ? 'dashboard' : 'transactions', true);
      }
    } catch (err) {
      showMessage(msg, errorText(err));
      pass.value = '';
      pass.focus();
    } finally {
      submit.disabled = false;
      submit.textContent = t('sign_in');
    }
  });
  clear(root, h('div', { class: 'login panel' },
    h('div', { class: 'lang' }, h('button', {
      type: 'button', class: 'secondary', id: 'lang-toggle', 'aria-label': t('lang_switch_label'),
      onclick: () => {
        chosenLocale = getLocale() === 'en' ? 'zh-Hant' : 'en';
        setLocale(chosenLocale);
        loginPage(notice);
      },
    }, t('lang_switch'))),
    h('h1', { text: t('app_title') }), form));
  user.focus();
}

function startSession(body) {
  state.session = body;
  localStorage.setItem('mps.signedIn', '1');
  setCsrf(body.csrf_token);
  setTimeZone(body.store.timezone);
  setLocale(body.locale);
  openLive();
}

// ---------------------------------------------------------------------------------------
// Layout
// ---------------------------------------------------------------------------------------

let els = {};

function layout() {
  const s = state.session;
  const navItems = ROUTES.filter((r) => r.nav && (!r.manager || isManager()));
  els.banner = h('div', { class: 'banner', id: 'status-banner', role: 'status', 'aria-live': 'polite', hidden: !isManager() });
  els.main = h('main', { id: 'main', tabindex: '-1' });
  els.toast = h('div', { class: 'toast', id: 'toast', role: 'status', 'aria-live': 'polite', hidden: true });
  els.nav = h('nav', { class: 'main', 'aria-label': t('nav_label') }, h('ul', {}, navItems.map((r) =>
    h('li', {}, h('a', { href: BASE + r.path, 'data-link': true, 'data-path': r.path, id: `nav-${r.path}` }, t(r.nav))))));
  clear(root,
    topbar(s),
    els.nav, els.banner, els.main, els.toast);
  refreshBanner();
}

/** The header: the store's name, and who is signed in with the secondary actions
 *  (language, sign out) — inline on a wide screen, behind a "more" button on a phone
 *  so the header stays one line. */
function topbar(s) {
  const account = h('div', { class: 'account', id: 'account-menu' },
    h('span', { class: 'who', id: 'who' }, `${s.user.username} · ${t(`role_${s.user.role}`)}`),
    h('button', { type: 'button', id: 'lang-toggle', 'aria-label': t('lang_switch_label'), onclick: switchLanguage }, t('lang_switch')),
    h('button', { type: 'button', id: 'sign-out', onclick: signOut }, t('sign_out')),
    h('button', { type: 'button', id: 'sign-out-all', onclick: signOutEverywhere }, t('sign_out_all')));
  const bar = h('header', { class: 'topbar' });
  const toggle = h('button', {
    type: 'button', class: 'menu-toggle', id: 'menu-toggle', 'aria-expanded': 'false', 'aria-controls': 'account-menu',
    onclick: () => {
      const open = !bar.classList.contains('open');
      bar.classList.toggle('open', open);
      toggle.setAttribute('aria-expanded', String(open));
    },
  }, t('menu_more'));
  bar.append(h('span', { class: 'store', id: 'store-name' }, s.store.name), toggle, account);
  return bar;
}

async function switchLanguage() {
  const next = getLocale() === 'en' ? 'zh-Hant' : 'en';
  try {
    await put('/console/me', { locale: next });
    state.session.locale = next;
    setLocale(next);
    els = {};
    route();
  } catch (err) {
    toast(errorText(err));
  }
}

async function signOut() {
  try { await post('/console/logout'); } catch { /* the session may be gone already */ }
  signedOut();
  history.replaceState({}, '', BASE);
}

async function signOutEverywhere() {
  const ok = await confirmDialog(t('sign_out_all'), t('sign_out_all_confirm'), t('confirm'), t('cancel'), true);
  if (!ok) return;
  try { await post('/console/sign-out-everywhere'); } catch { /* already ended */ }
  signedOut();
  history.replaceState({}, '', BASE);
}

export function toast(text) {
  if (!els.toast) return;
  els.toast.textContent = text;
  els.toast.hidden = false;
  clearTimeout(els.toastTimer);
  els.toastTimer = setTimeout(() => { els.toast.hidden = true; }, 5000);
}

/** The online/offline banner from GET /sync/status (managers only). */
async function refreshBanner(status) {
  if (!isManager() || !els.banner) return;
  try {
    const s = status && status.queue_depth !== undefined ? status : await get('/sync/status');
    renderBanner(s);
  } catch (err) {
    // The edge itself does not answer: say so, instead of the last status it gave.
    if (!err.code && els.banner) renderUnreachable();
  }
}

function renderUnreachable() {
  els.banner.className = 'banner problem';
  els.banner.dataset.mode = 'unreachable';
  clear(els.banner, h('span', { id: 'banner-text' }, t('banner_unreachable')));
  clearInterval(state.bannerTimer);
}

function renderBanner(s) {
  let kind; let text;
  if (!s.central_configured) { kind = 'standalone'; text = t('banner_standalone'); }
  else if (s.online === true) { kind = 'online'; text = t('banner_online'); }
  else if (s.online === false) { kind = 'offline'; text = t('banner_offline'); }
  else { kind = 'offline'; text = t('banner_unknown'); }
  // A stopped pipeline, or one failing past central.alert_after_secs, outranks the rest:
  // sales go on, but someone has to act (the server's text names cause and fix).
  const problems = Array.isArray(s.problems) ? s.problems : [];
  if (s.central_configured && problems.length) { kind = 'problem'; text = t('banner_problem'); }
  // The oldest operation's wait goes on growing between updates: tick it every second.
  const since = Date.now();
  const waitingText = () => (s.queue_depth > 0
    ? `${t('banner_waiting', { n: s.queue_depth })} · ${t('banner_oldest', { age: duration((s.oldest_pending_age_secs || 0) + Math.floor((Date.now() - since) / 1000)) })}`
    : t('banner_none_waiting'));
  const waiting = waitingText();
  clearInterval(state.bannerTimer);
  if (s.queue_depth > 0) {
    state.bannerTimer = setInterval(() => {
      const q = document.getElementById('banner-queue');
      if (q) q.textContent = waitingText(); else clearInterval(state.bannerTimer);
    }, 1000);
  }
  els.banner.className = `banner ${kind}`;
  els.banner.dataset.mode = kind;
  els.banner.dataset.queue = s.queue_depth;
  clear(els.banner, h('span', { id: 'banner-text' }, text), h('span', { class: 'sub', id: 'banner-queue' }, waiting),
    ...(kind === 'problem'
      ? [h('ul', { class: 'problems', id: 'banner-problems', lang: 'en' }, ...problems.map((p) => h('li', {}, p)))]
      : []));
}

// ---------------------------------------------------------------------------------------
// Routing
// ---------------------------------------------------------------------------------------

async function route() {
  if (!state.session) {
    // Only ask the server when this browser signed in before (saves a 401 per visit).
    if (!localStorage.getItem('mps.signedIn')) {
      loginPage();
      return;
    }
    try {
      startSession(await get('/console/session'));
    } catch {
      loginPage();
      return;
    }
  }
  if (!els.main || !root.contains(els.main)) layout();
  const path = currentPath();
  if (path === '' || path === 'login') {
    navigate(isManager() ? 'dashboard' : 'transactions', true);
    return;
  }
  const r = ROUTES.find((x) => (x.prefix ? path.startsWith(x.path) : path === x.path));
  for (const a of els.nav.querySelectorAll('a')) {
    const active = r && (path === a.dataset.path || (r.prefix && a.dataset.path === 'transactions'));
    if (active) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  state.page = null;
  // A loading state while the page fetches its data; the page replaces it.
  els.main.setAttribute('aria-busy', 'true');
  clear(els.main, skeleton('page-loading', t('loading')));
  if (!r) {
    clear(els.main, h('h1', { text: t('not_found') }));
    settle(t('not_found'));
    return;
  }
  if (r.manager && !isManager()) {
    clear(els.main, h('section', { class: 'panel', id: 'refused' },
      h('h1', { text: t('refused_title') }),
      h('p', { text: t('refused_body', { role: t(`role_${state.session.user.role}`) }) })));
    settle(t('refused_title'));
    return;
  }
  const ctx = {
    main: els.main, session: state.session, isManager: isManager(), navigate, toast,
    param: r.prefix ? path.slice(r.path.length) : null, refreshBanner,
  };
  const page = { onEvent: null };
  state.page = page;
  try {
    const handlers = await r.render(ctx);
    if (state.page === page && handlers) page.onEvent = handlers.onEvent || null;
  } catch (err) {
    if (state.page === page) {
      document.getElementById('page-loading')?.remove();
      const box = messageBox('page-error');
      showMessage(box, errorText(err));
      els.main.append(box, h('button', { type: 'button', id: 'page-retry', onclick: () => route() }, t('retry')));
      if (!err.code) renderUnreachable();
    }
  }
  if (state.page === page) settle(r.nav ? t(r.nav) : (els.main.querySelector('h1')?.textContent || ''));
}

/** After a page is shown: its title in the tab, focus on its heading (screen readers
 *  announce the new page), and the loading state gone. */
function settle(title) {
  els.main.removeAttribute('aria-busy');
  document.getElementById('page-loading')?.remove();
  document.title = `${title} · ${state.session?.store?.name || t('app_title')}`;
  const h1 = els.main.querySelector('h1');
  if (h1) {
    h1.setAttribute('tabindex', '-1');
    h1.focus({ preventScroll: true });
  }
}

// ---------------------------------------------------------------------------------------
// Live feed: reconnects with backoff and survives server restarts.
// ---------------------------------------------------------------------------------------

function openLive() {
  if (state.ws || !state.session) return;
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/api/v1/console/ws`;
  const ws = new WebSocket(url);
  state.ws = ws;
  ws.addEventListener('open', () => { state.wsRetry = 0; document.body.dataset.live = 'open'; });
  ws.addEventListener('message', (m) => {
    let ev;
    try { ev = JSON.parse(m.data); } catch { return; }
    onLiveEvent(ev);
  });
  ws.addEventListener('close', (e) => {
    document.body.dataset.live = 'closed';
    if (state.ws === ws) state.ws = null;
    if (!state.session || state.stopped) return;
    if (e.code === 4401) {
      // The session ended elsewhere; check it (a 401 leads to the sign-in page).
      get('/console/session').catch(() => {});
      return;
    }
    const delay = Math.min(30000, 1000 * 2 ** state.wsRetry) + Math.random() * 500;
    state.wsRetry += 1;
    state.wsTimer = setTimeout(() => { state.wsTimer = null; openLive(); }, delay);
  });
}

function closeLive() {
  clearTimeout(state.wsTimer);
  state.wsTimer = null;
  const ws = state.ws;
  state.ws = null;
  if (ws) ws.close();
}

function onLiveEvent(ev) {
  if (ev.type === 'transaction' && ev.data?.transaction) {
    toast(t('live_tx', { tx: ev.data.transaction.tx_no, amount: money(ev.data.transaction.final_amount) }));
  } else if (ev.type === 'refund' && ev.data?.refund) {
    toast(t('live_refund', { tx: ev.data.refund.refund_tx_no, amount: money(ev.data.refund.refunded_amount) }));
  } else if (ev.type === 'topup' && ev.data?.topup) {
    toast(t('live_topup', { tx: ev.data.topup.tx_no, amount: money(ev.data.topup.amount) }));
  }
  if (ev.type === 'sync' && ev.data && ev.data.queue_depth !== undefined) renderBanner(ev.data);
  else if (ev.type !== 'sync') refreshBanner();
  if (state.page?.onEvent) state.page.onEvent(ev);
}

window.addEventListener('pagehide', () => { state.stopped = true; closeLive(); });

// ---------------------------------------------------------------------------------------

setLocale(storedLocale());
route();

export { api };
