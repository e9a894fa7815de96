// The console's shell (issue 13, items 5-8 and 12): every page fits a phone in both
// languages; titles, focus and ARIA labels follow navigation; the dashboard has a date,
// comparisons, a legend, an empty state, a live indicator and a table under its chart;
// an expired session says so and comes back to the same page with its filters and the
// language chosen at sign-in; an unreachable server is said plainly, with a retry.
// Run by scripts/browser-test.sh.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  URL, api, bearer, posCharge, newPage, signIn, pageAs, shot, launch, closeBrowser, assertNoProblems, noHorizontalScroll, PHONE, DESKTOP, createUser,
} from './lib.mjs';

const OWNER = ['shell-owner', 'shell-owner-password-1'];
// The shell tests' sales go on a card of their own (5,250.00): the first demo card's
// 500.00 is for the other files.
const SHELL_CARD = 'STD00000020';
const PAGES = ['dashboard', 'transactions', 'settlements', 'shifts', 'cards', 'sync', 'staff', 'devices', 'audit', 'settings'];
const NAV = {
  'zh-Hant': { dashboard: '總覽', transactions: '交易', settings: '設定', navLabel: '主選單' },
  en: { dashboard: 'Dashboard', transactions: 'Transactions', settings: 'Settings', navLabel: 'Main menu' },
};

let ownerToken;
let settlementNo;

const page = (locale, viewport, label) => pageAs(OWNER, locale, viewport, label);


const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });
const wholeSecond = () => new Date(Math.floor(Date.now() / 1000) * 1000).toISOString().replace(/\.\d+Z$/, 'Z');

/** A settlement of one new sale alone: a period (whole seconds, as the API takes them)
 *  that starts after anything earlier tests sold and has just ended. A counter top-up in
 *  the same period is no sale: the settlement and its detail page leave it out. */
async function settledSale(amount) {
  await sleep(1100);
  const start = wholeSecond();
  await posCharge(amount, SHELL_CARD);
  const topup = await api('POST', '/merchant/topup', {
    token: ownerToken, body: { card_no: SHELL_CARD, amount: '30.00', idempotency_key: `shell-${Date.now()}` },
  });
  assert.equal(topup.status, 200, topup.text);
  await sleep(1100);
  const made = await api('POST', '/merchant/settlements', {
    token: ownerToken, body: { mode: 'realtime', period_start: start, period_end: wholeSecond() },
  });
  assert.equal(made.status, 200, made.text);
  assert.equal(made.json.settlement.tx_count, 1, made.text);
  return made.json.settlement;
}

before(async () => {
  ({ ownerToken } = await launch());
  await createUser(OWNER, 'owner');
  settlementNo = (await settledSale('12.00')).settlement_no;
});

after(closeBrowser);

for (const locale of ['zh-Hant', 'en']) {
  for (const viewport of [PHONE, DESKTOP]) {
    const size = `${viewport.width}x${viewport.height}`;
    test(`every page ${locale} ${size}: no page scrolls sideways; titles, focus and the menu's label follow`, async () => {
      const p = await page(locale, viewport, `pages-${locale}-${size}`);
      try {
        assert.equal(await p.getAttribute('nav.main', 'aria-label'), NAV[locale].navLabel);
        if (viewport === PHONE) {
          // A compact header: one line, the account actions behind a button, one nav row.
          const header = await p.locator('header.topbar').boundingBox();
          const nav = await p.locator('nav.main').boundingBox();
          assert.ok(header.height <= 64, `header ${header.height}px`);
          assert.ok(nav.height <= 56, `nav ${nav.height}px`);
          assert.equal(await p.isVisible('#sign-out'), false);
          assert.equal(await p.getAttribute('#menu-toggle', 'aria-expanded'), 'false');
          await p.click('#menu-toggle');
          assert.equal(await p.isVisible('#sign-out'), true);
          assert.equal(await p.isVisible('#lang-toggle'), true);
          assert.equal(await p.getAttribute('#menu-toggle', 'aria-expanded'), 'true');
          await noHorizontalScroll(p, 'account menu');
          await shot(p, `account-menu-${locale}-390x844`);
          await p.click('#menu-toggle');
          assert.equal(await p.isVisible('#sign-out'), false);
        }
        for (const where of PAGES) {
          await p.click(`#nav-${where}`);
          await p.waitForFunction((w) => location.pathname === `/console/${w}` && !document.querySelector('#page-loading')
            && document.activeElement?.tagName === 'H1', where);
          await p.waitForTimeout(100);
          await noHorizontalScroll(p, where);
          if (NAV[locale][where]) assert.ok((await p.title()).startsWith(NAV[locale][where]), `${where}: ${await p.title()}`);
          await shot(p, `${where}-${locale}-${size}`);
        }
        // a settlement's detail page on a phone: figures, its transactions as cards, actions
        await p.click('#nav-settlements');
        await p.click(`tr[data-settlement="${settlementNo}"] a.stl-link`);
        await p.waitForSelector('#stl-info');
        assert.equal(await p.locator('#stl-detail tbody tr[data-tx]').count(), 1, 'the sale, not the top-up');
        assert.equal(await p.locator('#stl-detail tbody tr.row-recharge').count(), 0);
        assert.match(await p.getAttribute('#stl-csv', 'href'), /[?&]type=sales(&|$)/);
        assert.equal(await p.isVisible('#stl-void'), true);
        await noHorizontalScroll(p, 'settlement detail');
        await shot(p, `settlement-detail-${locale}-${size}`);
      } finally {
        await p.context().close();
      }
    });
  }
}

for (const locale of ['zh-Hant', 'en']) {
  for (const viewport of [DESKTOP, PHONE]) {
    const size = `${viewport.width}x${viewport.height}`;
    test(`dashboard ${locale} ${size}: date, comparisons, legend, live state, a table under the chart, an empty day`, async () => {
      const p = await page(locale, viewport, `dash-${locale}-${size}`);
      try {
        await p.goto(`${URL}/console/dashboard`);
        await p.waitForSelector('#sum-payment_amount');
        const api1 = (await api('GET', '/merchant/daily-summary', { token: ownerToken })).json;
        assert.equal(Number(await p.getAttribute('#sum-payment_count', 'data-value')), api1.summary.payment_count);
        assert.match(await p.textContent('#sum-payment_amount .value'), /^NT\$ /);
        assert.ok((await p.textContent('#sum-payment_amount .delta')).length > 0, 'a comparison');
        assert.equal(await p.isVisible('#chart-legend'), true);
        await p.waitForFunction(() => document.querySelector('#live-indicator')?.classList.contains('on'));
        await p.click('#hour-table-details summary');
        assert.ok(await p.locator('#hour-table tbody tr').count() >= 1);
        // Round axis ticks: every label is a whole multiple of the step.
        const ticks = await p.locator('#hour-chart svg text[text-anchor="end"]').allTextContents();
        const nums = ticks.map((x) => Number(x.replace(/,/g, '')));
        assert.ok(nums.every((n) => Number.isFinite(n)), ticks.join('|'));
        const step = nums[1] - nums[0];
        assert.ok(/^(1|2|5)0*$|^0\.(0*)(1|2|5)$/.test(String(step)), `step ${step}`);
        await noHorizontalScroll(p, 'dashboard');
        // a wide screen shows the account actions inline, with no menu button
        if (viewport === DESKTOP) {
          assert.equal(await p.isVisible('#sign-out'), true);
          assert.equal(await p.isVisible('#menu-toggle'), false);
        }
        await shot(p, `dashboard-${locale}-${size}`);

        // An empty day: said in words, no blank chart.
        await p.fill('#dash-date-input', '2020-01-01');
        await p.dispatchEvent('#dash-date-input', 'change');
        await p.waitForSelector('#dash-empty');
        assert.match(await p.textContent('#dash-empty'), /2020-01-01/);
        assert.equal(new globalThis.URL(p.url()).searchParams.get('date'), '2020-01-01');
      } finally {
        await p.context().close();
      }
    });
  }
}

for (const locale of ['zh-Hant', 'en']) {
  for (const viewport of [DESKTOP, PHONE]) {
    const size = `${viewport.width}x${viewport.height}`;
    test(`session expiry ${locale} ${size}: a message, back to the same page and filters, the language kept`, async () => {
      const p = await page('zh-Hant', viewport, `expiry-${locale}-${size}`);
      try {
        await p.goto(`${URL}/console/transactions?type=payment&min_amount=1`);
        await p.waitForSelector('#tx-list table');
        // The session ends elsewhere (sign out everywhere from another device).
        const token = await bearer(...OWNER);
        const r = await api('POST', '/console/sign-out-everywhere', { token });
        assert.ok([200, 204].includes(r.status), r.text);
        await p.click('#tx-apply');
        await p.waitForSelector('#login-form');
        const expected = { 'zh-Hant': /登入已逾時/, en: /sign-in expired/ };
        assert.match(await p.textContent('#login-message'), expected['zh-Hant']);
        if (locale === 'en') {
          await p.click('#lang-toggle');
          assert.match(await p.textContent('#login-message'), expected.en);
        }
        await p.fill('#username', OWNER[0]);
        await p.fill('#password', OWNER[1]);
        await p.click('#login-submit');
        await p.waitForSelector('#tx-list table');
        const url = new globalThis.URL(p.url());
        assert.equal(url.pathname, '/console/transactions');
        assert.equal(url.searchParams.get('type'), 'payment');
        assert.equal(url.searchParams.get('min_amount'), '1');
        assert.equal(await p.inputValue('#f-min_amount'), '1');
        assert.equal(await p.getAttribute('html', 'lang'), locale);
        assert.equal(await p.textContent('#nav-transactions'), NAV[locale].transactions);
        await noHorizontalScroll(p, 'after sign-in');
        await shot(p, `session-return-${locale}-${size}`);
      } finally {
        await p.context().close();
      }
    });
  }
}

const WORDS = {
  'zh-Hant': {
    unreachable: /無法連線本店伺服器/,
    standalone: /單機模式執行，未設定中央系統/,
    notEnded: /此期間尚未結束/,
    reason: /原因須在 500 個字元以內/,
    voided: /已作廢/,
    settled: /已結算/,
    loading: '載入中…',
  },
  en: {
    unreachable: /The store server is not answering/,
    standalone: /runs standalone: no central is configured/,
    notEnded: /This period is not over yet/,
    reason: /reason/i,
    voided: /Voided/,
    settled: /Settled/,
    loading: 'Loading…',
  },
};

for (const locale of ['zh-Hant', 'en']) {
  for (const viewport of [DESKTOP, PHONE]) {
    const size = `${viewport.width}x${viewport.height}`;
    test(`unreachable ${locale} ${size}: the banner says so and a page offers a retry that works`, async () => {
      const p = await page(locale, viewport, `unreachable-${locale}-${size}`);
      try {
        await p.goto(`${URL}/console/dashboard`);
        await p.waitForSelector('#sum-payment_amount');
        await p.route('**/api/v1/**', (route) => route.abort('connectionrefused'));
        await p.click('#nav-settings');
        await p.waitForSelector('#page-retry');
        assert.match(await p.textContent('#banner-text'), WORDS[locale].unreachable);
        await noHorizontalScroll(p, 'unreachable');
        await shot(p, `unreachable-${locale}-${size}`);
        await p.unroute('**/api/v1/**');
        await p.click('#page-retry');
        await p.waitForSelector('#settings-form');
      } finally {
        await p.context().close();
      }
    });

    test(`loading ${locale} ${size}: skeletons while a page and a list load, Apply disabled while a search runs`, async () => {
      const p = await page(locale, viewport, `loading-${locale}-${size}`);
      let release = () => {};
      let held;
      const hold = async (route) => { await held; await route.continue(); };
      const path = (u) => new globalThis.URL(u).pathname;
      try {
        await p.goto(`${URL}/console/dashboard`);
        await p.waitForSelector('#sum-payment_amount');
        // A page that needs its data first: a skeleton in its place until the answer.
        held = new Promise((resolve) => { release = resolve; });
        await p.route((u) => path(u) === '/api/v1/console/settings', hold);
        await p.click('#nav-settings');
        await p.waitForSelector('#page-loading');
        assert.equal(await p.getAttribute('#main', 'aria-busy'), 'true');
        assert.equal(await p.textContent('#page-loading'), WORDS[locale].loading);
        await noHorizontalScroll(p, 'loading');
        await shot(p, `loading-${locale}-${size}`);
        release();
        await p.waitForSelector('#settings-form');
        assert.equal(await p.getAttribute('#main', 'aria-busy'), null);

        // The transactions page: its frame at once, a skeleton where the list will be.
        held = new Promise((resolve) => { release = resolve; });
        await p.route((u) => path(u) === '/api/v1/merchant/transactions', hold);
        await p.click('#nav-transactions');
        await p.waitForSelector('#tx-loading');
        assert.equal(await p.getAttribute('#tx-list', 'aria-busy'), 'true');
        assert.equal(await p.isDisabled('#tx-apply'), true);
        release();
        await p.waitForSelector('#tx-list table');
        assert.equal(await p.getAttribute('#tx-list', 'aria-busy'), null);
        assert.equal(await p.isDisabled('#tx-apply'), false);

        // A new search keeps the rows, marks the list busy and disables Apply meanwhile.
        held = new Promise((resolve) => { release = resolve; });
        await p.click('#tx-apply');
        await p.waitForFunction(() => document.querySelector('#tx-apply')?.disabled === true);
        assert.equal(await p.getAttribute('#tx-list', 'aria-busy'), 'true');
        assert.ok(await p.isVisible('#tx-list table'), 'the old rows stay');
        release();
        await p.waitForFunction(() => document.querySelector('#tx-apply')?.disabled === false);
      } finally {
        release();
        await p.context().close();
      }
    });

    test(`sync page ${locale} ${size}: standalone offers no "sync now", says why, and the queue follows new sales`, async () => {
      const p = await page(locale, viewport, `sync-${locale}-${size}`);
      try {
        await p.goto(`${URL}/console/sync`);
        await p.waitForSelector('#sync-standalone:not([hidden])');
        assert.equal(await p.isVisible('#sync-now'), false);
        assert.match(await p.textContent('#sync-standalone'), WORDS[locale].standalone);
        const queued = () => p.evaluate(() => Number((document.querySelector('#sync-queue')?.textContent || '').replace(/[^0-9]/g, '')));
        const before = await queued();
        await posCharge('1.00', SHELL_CARD);
        await p.waitForFunction((n) => Number((document.querySelector('#sync-queue')?.textContent || '').replace(/[^0-9]/g, '')) === n + 1, before);
        await noHorizontalScroll(p, 'sync');
        await shot(p, `sync-standalone-${locale}-${size}`);
        // The server still refuses the call itself.
        const refused = await api('POST', '/sync/now', { token: ownerToken, body: {} });
        assert.equal(refused.status, 409);
        assert.equal(refused.json.error.code, 'NO_CENTRAL');
      } finally {
        await p.context().close();
      }
    });

    test(`settlement ${locale} ${size}: today refused before sending, a detail page, a print view and a void with a required reason`, async () => {
      const w = WORDS[locale];
      const no = (await settledSale('7.00')).settlement_no;
      const p = await page(locale, viewport, `settlement-${locale}-${size}`);
      const posts = [];
      p.on('request', (req) => { if (req.method() === 'POST' && req.url().endsWith('/merchant/settlements')) posts.push(req.url()); });
      try {
        await p.goto(`${URL}/console/settlements`);
        await p.waitForSelector('#stl-list table');
        const today = (await api('GET', '/merchant/daily-summary', { token: ownerToken })).json.date;
        await p.fill('#stl-start', today);
        await p.fill('#stl-end', today);
        await p.click('#stl-generate');
        assert.match(await p.textContent('#stl-message'), w.notEnded);
        assert.deepEqual(posts, [], 'the open day was refused before sending');
        await noHorizontalScroll(p, 'settlements');

        await p.click(`tr[data-settlement="${no}"] a.stl-link`);
        await p.waitForSelector('#stl-info');
        assert.match(await p.textContent('#stl-status'), w.settled);
        assert.equal(await p.locator('#stl-detail tbody tr[data-tx]').count(), 1);
        await p.emulateMedia({ media: 'print' });
        assert.equal(await p.isVisible('header.topbar'), false);
        assert.equal(await p.isVisible('#stl-void'), false);
        assert.equal(await p.isVisible('#stl-info'), true);
        await shot(p, `settlement-print-${locale}-${size}`);
        await p.emulateMedia({ media: 'screen' });

        await p.click('#stl-void');
        await p.waitForSelector('#prompt-dialog');
        assert.equal(await p.evaluate(() => document.activeElement?.id), 'dlg-input');
        await p.fill('#dlg-input', '   ');
        await p.click('#dlg-confirm');
        await p.waitForSelector('#dlg-problem:not([hidden])');
        assert.match(await p.textContent('#dlg-problem'), w.reason);
        await noHorizontalScroll(p, 'void dialog');
        await shot(p, `settlement-void-${locale}-${size}`);
        await p.fill('#dlg-input', 'wrong period');
        await p.click('#dlg-confirm');
        await p.waitForFunction((re) => new RegExp(re).test(document.querySelector('#stl-status')?.textContent || ''), w.voided.source);
        assert.equal(await p.textContent('#stl-void-reason'), 'wrong period');
        assert.equal(await p.locator('#stl-void').count(), 0);
        const after = (await api('GET', `/merchant/settlements/${no}`, { token: ownerToken })).json.settlement;
        assert.equal(after.status, 'voided');
        assert.equal(after.void_reason, 'wrong period');
        await noHorizontalScroll(p, 'voided settlement');
      } finally {
        await p.context().close();
      }
    });
  }
}

test('no console errors or page errors in the shell tests', () => {
  // The unreachable test aborts requests on purpose; those console lines are expected.
  assertNoProblems();
});
