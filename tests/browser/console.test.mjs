// End-to-end tests of the web console in a real headless Chromium (Debian's), driven by
// playwright-core. Run by scripts/browser-test.sh, which starts a real `mps-edge serve`
// in standalone demo mode and passes its URL, owner password, binary and data dir. One
// test starts a second server of its own, configured with a stub central that refuses
// the service key, to show the console's sync-problem banner.
//
// Every page is screenshotted (both languages; the dashboard also at tablet size) into
// target/console-screenshots/. Console errors and uncaught page errors fail the run; the
// only console lines tolerated are Chromium's "Failed to load resource" notes for API
// answers the tests provoke on purpose (4xx, such as 409 NO_CENTRAL from "sync now" in standalone mode).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import {
  URL, OWNER_PW, BIN, TABLET, api, bearer, demoQr, posCharge, newPage, signIn, submitLogin, shot, open,
  launch, closeBrowser, assertNoProblems,
} from './lib.mjs';

let ownerToken;

// ---------------------------------------------------------------------------------------

let owner; // the owner's page, signed in, used through the tests

before(async () => {
  ({ ownerToken } = await launch());
});

after(closeBrowser);

test('sign-in, and a wait for this address after 5 bad passwords with a clear message', async () => {
  const created = await api('POST', '/console/users', {
    token: ownerToken, body: { username: 'clerk2', password: 'clerk2-password', role: 'cashier' },
  });
  assert.equal(created.status, 200, created.text);

  const page = await newPage('lockout');
  await page.goto(`${URL}/console/`);
  await page.waitForSelector('#login-form');
  assert.equal(await page.getAttribute('html', 'lang'), 'zh-Hant');
  assert.equal(await page.textContent('#login-submit'), '登入');
  await shot(page, 'login-zh-Hant');
  // Five wrong passwords are checked; the sixth try from this address has to wait.
  for (let i = 1; i <= 6; i += 1) {
    await page.fill('#username', 'clerk2');
    await page.fill('#password', `wrong-password-${i}`);
    await submitLogin(page);
    const msg = await page.textContent('#login-message');
    if (i <= 5) assert.match(msg, /帳號或密碼錯誤/);
    else assert.match(msg, /此裝置登入失敗次數過多，請於 1 分鐘後再試，或請店主解除鎖定。/);
  }
  // Even the right password waits at this address, with the same clear message.
  await page.fill('#username', 'clerk2');
  await page.fill('#password', 'clerk2-password');
  await submitLogin(page);
  assert.match(await page.textContent('#login-message'), /鎖定/);
  await shot(page, 'login-locked-zh-Hant');
  await page.context().close();

  owner = await newPage('owner');
  await signIn(owner, 'owner', OWNER_PW);
  await owner.waitForSelector('#sum-payment_amount');
  assert.equal(new globalThis.URL(owner.url()).pathname, '/console/dashboard');
});

test('dashboard figures equal the API, and the status banner says standalone', async () => {
  await posCharge('120.00');
  await posCharge('35.50');
  await open(owner, 'dashboard');
  const api1 = await api('GET', '/merchant/daily-summary', { token: ownerToken });
  const sync = await api('GET', '/sync/status', { token: ownerToken });
  const s = api1.json.summary;
  for (const k of ['payment_amount', 'refund_amount', 'net_amount', 'payment_count', 'unique_cards', 'average_ticket']) {
    assert.equal(Number(await owner.getAttribute(`#sum-${k}`, 'data-value')), Number(s[k]), k);
  }
  assert.equal(Number(await owner.getAttribute('#sum-open_exceptions', 'data-value')), sync.json.open_exceptions);
  // Shown formatted for the locale: 155.50 → "155.50" with grouping where needed.
  assert.match(await owner.textContent('#sum-payment_amount .value'), /155\.50/);
  await owner.waitForSelector('#banner-text');
  assert.equal(await owner.textContent('#banner-text'), '單機示範模式 — 未連線中央');
  assert.match(await owner.textContent('#banner-queue'), /2 筆作業等候同步/);
  assert.equal(await owner.locator('#hour-chart svg rect.bar').count(), 24);
});

test('a charge made through the POS API appears live on the dashboard without reload', async () => {
  await open(owner, 'dashboard');
  await owner.waitForFunction(() => document.body.dataset.live === 'open');
  await owner.evaluate(() => { window.__noReload = 'still here'; });
  const before = Number(await owner.getAttribute('#sum-payment_count', 'data-value'));
  const tx = await posCharge('42.00');
  await owner.waitForFunction((n) => Number(document.querySelector('#sum-payment_count')?.dataset.value) === n, before + 1, { timeout: 10000 });
  assert.equal(await owner.evaluate(() => window.__noReload), 'still here');
  const summary = (await api('GET', '/merchant/daily-summary', { token: ownerToken })).json.summary;
  assert.equal(Number(await owner.getAttribute('#sum-payment_amount', 'data-value')), Number(summary.payment_amount));
  await owner.waitForSelector('#toast:not([hidden])');
  assert.match(await owner.textContent('#toast'), new RegExp(tx.tx_no));
  await shot(owner, 'dashboard-zh-Hant-1280x800');
});

test('refund from the transaction detail view (manager), with confirmation', async () => {
  const tx = await posCharge('60.00');
  await open(owner, 'transactions');
  await owner.click(`tr[data-tx="${tx.tx_no}"] a.tx-link`);
  await owner.waitForSelector('#refund-form');
  assert.equal(Number(await owner.getAttribute('#tx-remaining', 'data-value')), Number(tx.final_amount));
  await owner.fill('#refund-amount', '10.00');
  await owner.fill('#refund-reason', '顧客退貨，尺寸不合');
  await owner.click('#refund-submit');
  await owner.waitForSelector('#confirm-dialog[open]');
  await shot(owner, 'refund-confirm-zh-Hant');
  await owner.click('#dlg-confirm');
  await owner.waitForFunction(() => /已退款/.test(document.querySelector('#tx-detail-message')?.textContent || ''));
  const d = (await api('GET', `/common/transactions/${tx.tx_no}`, { token: ownerToken })).json;
  assert.equal(d.refunds.length, 1);
  assert.equal(Number(d.refunds[0].final_amount), 10);
  assert.equal(d.refunds[0].reason, '顧客退貨，尺寸不合');
  assert.equal(Number(await owner.getAttribute('#tx-remaining', 'data-value')), Number(d.transaction.remaining_refundable));
  await shot(owner, 'transaction-detail-zh-Hant');
});

test('CSV export of the current filter: BOM, header, rows, Chinese intact', async () => {
  await open(owner, 'transactions');
  const all = await api('GET', '/merchant/transactions?limit=200', { token: ownerToken });
  const [download] = await Promise.all([owner.waitForEvent('download'), owner.click('#tx-export')]);
  const file = readFileSync(await download.path());
  assert.deepEqual([...file.subarray(0, 3)], [0xef, 0xbb, 0xbf]);
  const text = file.subarray(3).toString('utf8');
  const lines = text.split('\r\n').filter(Boolean);
  assert.match(lines[0], /^tx_no,type,status,created_at,local_time,card_no,raw_amount/);
  assert.equal(lines.length - 1, all.json.pagination.total_count);
  assert.match(text, /顧客退貨，尺寸不合/);
  assert.match(download.suggestedFilename(), /^transactions-DEMO-\d{8}\.csv$/);

  // With a filter: only refunds.
  await owner.selectOption('#tx-filters select[name="type"]', 'refund');
  await owner.click('#tx-apply');
  await owner.waitForFunction(() => document.querySelector('#tx-export').getAttribute('href').includes('type=refund'));
  const [d2] = await Promise.all([owner.waitForEvent('download'), owner.click('#tx-export')]);
  const rows = readFileSync(await d2.path()).subarray(3).toString('utf8').split('\r\n').filter(Boolean);
  assert.equal(rows.length, 2);
  assert.match(rows[1], /^REF-DEMO-/);
});

test('create a cashier; the cashier is refused a manager page', async () => {
  await open(owner, 'staff');
  await owner.fill('#new-username', 'till1');
  await owner.fill('#new-password', 'till1-password');
  await owner.selectOption('#new-role', 'cashier');
  await owner.click('#staff-create');
  await owner.waitForSelector('tr[data-user="till1"]');
  await shot(owner, 'staff-zh-Hant');

  const cashier = await newPage('cashier');
  await signIn(cashier, 'till1', 'till1-password');
  await cashier.waitForSelector('#tx-list table');
  assert.equal(new globalThis.URL(cashier.url()).pathname, '/console/transactions');
  assert.equal(await cashier.locator('#nav-settlements').count(), 0);
  assert.equal(await cashier.locator('#nav-dashboard').count(), 0);
  for (const p of ['settlements', 'dashboard', 'staff']) {
    await cashier.goto(`${URL}/console/${p}`);
    await cashier.waitForSelector('#refused');
    assert.equal(await cashier.textContent('#refused h1'), '需要主管權限');
  }
  await shot(cashier, 'cashier-refused-zh-Hant');
  // A cashier sees no refund form.
  const tx = (await api('GET', '/merchant/transactions?type=payment&limit=1', { token: ownerToken })).json.transactions[0];
  await cashier.goto(`${URL}/console/transactions/${tx.tx_no}`);
  await cashier.waitForSelector('#tx-info');
  assert.equal(await cashier.locator('#refund-form').count(), 0);
  await cashier.context().close();
});

test('enroll a POS device by code, sign in bound to it, revoke it', async () => {
  await open(owner, 'devices');
  await owner.fill('#dev-name', '櫃台一號');
  await owner.click('#dev-create');
  await owner.waitForSelector('#dev-code');
  const code = (await owner.textContent('#dev-code')).trim();
  assert.match(code, /^[A-Z2-9]{10}$/);
  await shot(owner, 'devices-code-zh-Hant');
  const enrolled = await api('POST', '/devices/enroll', { body: { code } });
  assert.equal(enrolled.status, 200, enrolled.text);
  const { device_id: id, device_secret: secret } = enrolled.json;
  const token = await bearer('owner', OWNER_PW, { device_id: id, device_secret: secret });
  assert.equal((await api('GET', '/auth/me', { token })).json.session.device_id, id);

  await open(owner, 'devices');
  await owner.click(`tr[data-device-id="${id}"] button[data-action="revoke"]`);
  await owner.waitForSelector('#confirm-dialog[open]');
  await owner.click('#dlg-confirm');
  await owner.waitForSelector(`tr[data-device-id="${id}"] .tag.revoked`);
  assert.equal((await api('GET', '/auth/me', { token })).status, 401);
  assert.equal((await api('POST', '/auth/login', { body: { username: 'owner', password: OWNER_PW, device_id: id, device_secret: secret } })).status, 401);
});

test('settlement: open and empty days refused, a past period settled, its detail, CSV, print view and a void', async () => {
  await open(owner, 'settlements');
  const today = (await api('GET', '/merchant/daily-summary', { token: ownerToken })).json.date;
  const message = () => owner.textContent('#stl-message');
  // today is still open: the form says so before sending
  await owner.fill('#stl-start', today);
  await owner.fill('#stl-end', today);
  await owner.click('#stl-generate');
  await owner.waitForFunction(() => /尚未結束/.test(document.querySelector('#stl-message')?.textContent || ''));
  // a past day with nothing in it: the server says there is nothing to settle
  await owner.fill('#stl-start', '2001-01-01');
  await owner.fill('#stl-end', '2001-01-01');
  await owner.click('#stl-generate');
  await owner.waitForFunction(() => /沒有任何付款或退款/.test(document.querySelector('#stl-message')?.textContent || ''));
  assert.doesNotMatch(await message(), /[A-Za-z]{4,}/);
  assert.equal((await api('GET', '/merchant/settlements', { token: ownerToken })).json.settlements.length, 0);

  // today's sales so far, settled as a period that has just ended (POS back office via the API)
  const end = new Date(Date.now() - 1000).toISOString().replace(/\.\d+Z$/, 'Z');
  const made = await api('POST', '/merchant/settlements', {
    token: ownerToken, body: { mode: 'realtime', period_start: new Date(Date.now() - 86400000).toISOString().replace(/\.\d+Z$/, 'Z'), period_end: end },
  });
  assert.equal(made.status, 200, made.text);
  const s = made.json.settlement;
  assert.ok(s.tx_count > 0, made.text);
  await open(owner, 'settlements');
  await owner.click(`tr[data-settlement="${s.settlement_no}"] a.stl-link`);
  await owner.waitForSelector('#stl-info');
  assert.match(await owner.textContent('#stl-status'), /已結算/);
  assert.equal(await owner.locator('#stl-detail tbody tr[data-tx]').count(), s.tx_count);
  assert.match(await owner.getAttribute('#stl-csv', 'href'), /export\.csv\?.*start_date=/);
  const csv = await owner.evaluate(async (href) => (await fetch(href)).text(), await owner.getAttribute('#stl-csv', 'href'));
  assert.equal(csv.trim().split('\n').length, s.tx_count + 1, 'a header and one line per transaction');
  // the print view keeps the figures and drops menus and buttons
  await owner.emulateMedia({ media: 'print' });
  assert.equal(await owner.isVisible('header.topbar'), false);
  assert.equal(await owner.isVisible('#stl-void'), false);
  assert.equal(await owner.isVisible('#stl-info'), true);
  await shot(owner, 'settlement-print-zh-Hant');
  await owner.emulateMedia({ media: 'screen' });

  // the owner voids it: a reason is required, then it reads voided and can be settled again
  await owner.click('#stl-void');
  await owner.waitForSelector('#prompt-dialog');
  assert.equal(await owner.evaluate(() => document.activeElement?.id), 'dlg-input');
  await owner.click('#dlg-confirm');
  await owner.waitForSelector('#dlg-problem:not([hidden])');
  assert.match(await owner.textContent('#dlg-problem'), /原因/);
  await owner.fill('#dlg-input', '日期選錯');
  await owner.click('#dlg-confirm');
  await owner.waitForFunction(() => /已作廢/.test(document.querySelector('#stl-status')?.textContent || ''));
  assert.equal(await owner.textContent('#stl-void-reason'), '日期選錯');
  assert.equal(await owner.locator('#stl-void').count(), 0);
  const after = (await api('GET', `/merchant/settlements/${s.settlement_no}`, { token: ownerToken })).json.settlement;
  assert.equal(after.status, 'voided');
  const again = await api('POST', '/merchant/settlements', {
    token: ownerToken, body: { mode: 'realtime', period_start: s.period_start, period_end: s.period_end },
  });
  assert.equal(again.status, 200, again.text);
  await shot(owner, 'settlement-voided-zh-Hant');
});

test('settings: a bad limit is refused with the rule, a good one saved and applied', async () => {
  await open(owner, 'settings');
  await owner.fill('#set-max_tx_amount', '1.234');
  await owner.click('#settings-save');
  // The rule, in Chinese, for the field by its label (not the server's English message).
  await owner.waitForFunction(() => /「單筆上限」須為大於 0 的金額，最多兩位小數/.test(document.querySelector('#settings-message')?.textContent || ''));
  await owner.fill('#set-max_tx_amount', '50.00');
  await owner.fill('#set-store_name', '信義示範店');
  await owner.click('#settings-save');
  await owner.waitForFunction(() => document.querySelector('#settings-message')?.textContent === '已儲存。');
  assert.equal(await owner.textContent('#store-name'), '信義示範店');
  const s = (await api('GET', '/console/settings', { token: ownerToken })).json;
  assert.equal(Number(s.settings.limits.max_tx_amount), 50);
  const big = await api('POST', '/merchant/charge', { token: ownerToken, body: { qr_plain: demoQr(), amount: '60.00' } });
  assert.equal(big.status, 422, big.text);
  assert.equal(big.json.error.details.limit, 'per_transaction', big.text);
  const back = await api('PUT', '/console/settings', { token: ownerToken, body: { limits: { max_tx_amount: '2000.00' } } });
  assert.equal(back.status, 200, back.text);
});

test('CSRF: a state-changing request from the page without the token is refused', async () => {
  await open(owner, 'dashboard');
  const r = await owner.evaluate(async () => {
    const res = await fetch('/api/v1/console/devices/enrollment-codes', {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'csrf' }),
    });
    return { status: res.status, body: await res.json() };
  });
  assert.equal(r.status, 403);
  assert.equal(r.body.error.code, 'CSRF_TOKEN_INVALID');
  const ok = await owner.evaluate(async () => (await fetch('/api/v1/console/devices')).status);
  assert.equal(ok, 200, 'reads need no token');
});

test('language switch zh-Hant ↔ en, remembered after reload; screenshots of every page', async () => {
  const pages = ['dashboard', 'transactions', 'settlements', 'sync', 'staff', 'devices', 'audit', 'settings'];
  for (const p of pages) {
    await open(owner, p);
    await shot(owner, `${p}-zh-Hant-1280x800`);
  }
  await open(owner, 'dashboard');
  await owner.click('#lang-toggle');
  await owner.waitForFunction(() => document.documentElement.lang === 'en' && document.querySelector('#nav-dashboard')?.textContent === 'Dashboard');
  await owner.reload();
  await owner.waitForSelector('#sum-payment_amount');
  assert.equal(await owner.textContent('#nav-transactions'), 'Transactions');
  assert.equal(await owner.textContent('#banner-text'), 'Standalone demo mode — no central');
  assert.equal((await api('GET', '/console/users', { token: ownerToken })).json.users.find((u) => u.username === 'owner').locale, 'en');
  for (const p of pages) {
    await open(owner, p);
    await shot(owner, `${p}-en-1280x800`);
  }
  const tx = (await api('GET', '/merchant/transactions?type=payment&limit=1', { token: ownerToken })).json.transactions[0];
  await owner.goto(`${URL}/console/transactions/${tx.tx_no}`);
  await owner.waitForSelector('#tx-info');
  await shot(owner, 'transaction-detail-en-1280x800');

  // Tablet size, both languages.
  const tablet = await newPage('tablet', TABLET);
  await signIn(tablet, 'owner', OWNER_PW);
  await tablet.waitForSelector('#sum-payment_amount');
  assert.equal(await tablet.textContent('#nav-dashboard'), 'Dashboard', 'the locale follows the user');
  await shot(tablet, 'dashboard-en-768x1024');
  await open(tablet, 'transactions');
  await shot(tablet, 'transactions-en-768x1024');
  await open(tablet, 'dashboard');
  await tablet.click('#lang-toggle');
  await tablet.waitForFunction(() => document.querySelector('#nav-dashboard')?.textContent === '總覽');
  await tablet.waitForSelector('#sum-payment_amount');
  await shot(tablet, 'dashboard-zh-Hant-768x1024');
  await open(tablet, 'transactions');
  await shot(tablet, 'transactions-zh-Hant-768x1024');
  const noHScroll = await tablet.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1);
  assert.ok(noHScroll, 'no horizontal scrolling at 768 px');
  await tablet.context().close();

  await owner.reload();
  await owner.waitForSelector('#nav-dashboard');
  assert.equal(await owner.textContent('#nav-dashboard'), '總覽', 'switched back on the other screen, remembered');
});

test('keyboard: sign-in works with the keyboard alone and focus is visible', async () => {
  const page = await newPage('keyboard');
  await page.goto(`${URL}/console/`);
  await page.waitForSelector('#login-form');
  await page.keyboard.type('owner');
  await page.keyboard.press('Tab');
  await page.keyboard.type(OWNER_PW);
  await page.keyboard.press('Enter');
  await page.waitForSelector('#main h1');
  // Focus moves to the new page's heading (a screen reader announces it) ...
  await page.waitForFunction(() => document.activeElement?.tagName === 'H1');
  assert.match(await page.title(), /總覽/);
  // ... and the next Tab reaches the page's first control.
  await page.keyboard.press('Tab');
  const focused = await page.evaluate(() => document.activeElement?.tagName);
  assert.ok(['A', 'BUTTON', 'INPUT'].includes(focused), `focus on ${focused}`);
  await page.context().close();
});

/** A stand-in for a central that refuses the service key: 401 PGRST301 on every path. */
async function refusingCentral() {
  const body = JSON.stringify({ code: 'PGRST301', message: 'JWSError', details: null, hint: null });
  const server = createServer((req, res) => {
    req.resume();
    res.writeHead(401, { 'content-type': 'application/json' });
    res.end(body);
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  return { url: `http://127.0.0.1:${server.address().port}`, server };
}

/** Starts `BIN --config cfg serve`; resolves with the child and its URL (from stdout). */
async function serveWithConfig(cfg) {
  const child = spawn(BIN, ['--config', cfg, 'serve'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr.on('data', (d) => { err += d; });
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no URL from the server within 20 s:\n${out}\n${err}`)), 20000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = /listening on (http:\/\/[0-9.:]+)/.exec(out);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`the server exited (${code}):\n${out}\n${err}`)); });
  });
  return { child, url, logs: () => `${out}\n${err}` };
}

async function stopChild(child) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

test('a stopped sync pipeline turns the banner red with cause and fix', async () => {
  const central = await refusingCentral();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mps-stop-'));
  let served;
  let page;
  try {
    const cfg = path.join(dir, 'config.toml');
    writeFileSync(cfg, [
      `data_dir = ${JSON.stringify(path.join(dir, 'data'))}`,
      '',
      '[server]',
      'listen = "127.0.0.1:0"',
      '',
      '[site]',
      'code = "S9"',
      'name = "Stop Test"',
      '',
      '[central]',
      `url = ${JSON.stringify(central.url)}`,
      'service_key = "some-key"',
      'merchant_code = "M1"',
      '',
    ].join('\n'));
    const password = 'boss-password-9';
    execFileSync(BIN, ['--config', cfg, 'admin', 'create-user', '--username', 'boss', '--role', 'owner', '--password-stdin'],
      { input: `${password}\n`, encoding: 'utf8' });
    served = await serveWithConfig(cfg);
    const base = served.url;
    const token = await bearer('boss', password, {}, base);

    // The bootstrap pull is refused (401): the pull pipeline stops at once.
    let status;
    const deadline = Date.now() + 20000;
    for (;;) {
      status = await api('GET', '/sync/status', { token, base });
      assert.equal(status.status, 200, status.text);
      if (status.json.problems?.length) break;
      assert.ok(Date.now() < deadline, `no problem reported within 20 s: ${status.text}\n${served.logs()}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    const s = status.json;
    assert.equal(s.central_configured, true);
    assert.equal(s.pull.state, 'stopped', status.text);
    assert.ok(s.pull.error, status.text);
    const problem = s.problems.find((p) => p.startsWith('pull from central'));
    assert.ok(problem, status.text);
    assert.match(problem, /central refused the key.*check central\.anon_key and central\.site_key/);
    assert.match(problem, /stopped/);
    assert.match(problem, /mps-edge sync now/);

    const ready = await fetch(`${base}/ready`);
    const readyText = await ready.text();
    assert.equal(ready.status, 503, readyText);
    assert.ok(JSON.parse(readyText).reasons.includes(problem), readyText);

    page = await newPage('stopped-sync');
    await signIn(page, 'boss', password, base);
    await page.waitForSelector('#status-banner.problem');
    assert.equal(await page.getAttribute('#status-banner', 'data-mode'), 'problem');
    assert.equal(await page.isVisible('#status-banner'), true);
    assert.equal(await page.textContent('#banner-text'), '同步需要處理 — 交易照常進行，但作業無法送達中央或資料無法更新');
    const items = await page.locator('#banner-problems li').allTextContents();
    assert.ok(items.length >= 1, 'one <li> per problem');
    assert.ok(items.some((t) => t.includes('stopped') && t.includes('mps-edge sync now')), JSON.stringify(items));
    assert.ok(items.includes(problem), JSON.stringify(items));
    await shot(page, 'banner-problem-zh-Hant-1280x800');
  } finally {
    if (page) await page.context().close();
    if (served) await stopChild(served.child);
    central.server.closeAllConnections();
    await new Promise((r) => central.server.close(r));
    rmSync(dir, { recursive: true, force: true });
  }
});

test('no console errors or page errors anywhere', assertNoProblems);
