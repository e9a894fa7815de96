// The console's shell (issue 13, items 5-8 and 12): every page fits a phone in both
// languages; titles, focus and ARIA labels follow navigation; the dashboard has a date,
// comparisons, a legend, an empty state, a live indicator and a table under its chart;
// an expired session says so and comes back to the same page with its filters and the
// language chosen at sign-in; an unreachable server is said plainly, with a retry.
// Run by scripts/browser-test.sh.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  URL, api, bearer, posCharge, newPage, signIn, shot, launch, closeBrowser, assertNoProblems, noHorizontalScroll,
} from './lib.mjs';

const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 800 };
const OWNER = ['shell-owner', 'shell-owner-password-1'];
const PAGES = ['dashboard', 'transactions', 'settlements', 'sync', 'staff', 'devices', 'audit', 'settings'];
const NAV = {
  'zh-Hant': { dashboard: '總覽', transactions: '交易', settings: '設定', navLabel: '主選單' },
  en: { dashboard: 'Dashboard', transactions: 'Transactions', settings: 'Settings', navLabel: 'Main menu' },
};

let ownerToken;
let settlementNo;

async function page(locale, viewport, label) {
  const token = await bearer(...OWNER);
  const r = await api('PUT', '/console/me', { token, body: { locale } });
  assert.equal(r.status, 200, r.text);
  const p = await newPage(label, viewport);
  await signIn(p, ...OWNER);
  return p;
}


before(async () => {
  ({ ownerToken } = await launch());
  const r = await api('POST', '/console/users', {
    token: ownerToken, body: { username: OWNER[0], password: OWNER[1], role: 'owner' },
  });
  assert.equal(r.status, 200, r.text);
  // A settlement of this sale alone (a period that has just ended), for its detail page;
  // it starts after any settlement the console tests made on the same server.
  const start = new Date(Date.now() - 1000).toISOString().replace(/\.\d+Z$/, 'Z');
  await posCharge('12.00');
  await new Promise((resolve) => { setTimeout(resolve, 1100); });
  const end = new Date(Date.now() - 100).toISOString().replace(/\.\d+Z$/, 'Z');
  const made = await api('POST', '/merchant/settlements', {
    token: ownerToken, body: { mode: 'realtime', period_start: start, period_end: end },
  });
  assert.equal(made.status, 200, made.text);
  settlementNo = made.json.settlement.settlement_no;
});

after(closeBrowser);

for (const locale of ['zh-Hant', 'en']) {
  test(`phone ${locale}: no page scrolls sideways; titles, focus and the menu's label follow`, async () => {
    const p = await page(locale, PHONE, `phone-${locale}`);
    try {
      assert.equal(await p.getAttribute('nav.main', 'aria-label'), NAV[locale].navLabel);
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
      for (const where of PAGES) {
        await p.click(`#nav-${where}`);
        await p.waitForFunction((w) => location.pathname === `/console/${w}` && !document.querySelector('#page-loading')
          && document.activeElement?.tagName === 'H1', where);
        await p.waitForTimeout(100);
        await noHorizontalScroll(p, where);
        if (NAV[locale][where]) assert.ok((await p.title()).startsWith(NAV[locale][where]), `${where}: ${await p.title()}`);
        await shot(p, `${where}-${locale}-390x844`);
      }
      // a settlement's detail page on a phone: figures, its transactions as cards, actions
      await p.click('#nav-settlements');
      await p.click(`tr[data-settlement="${settlementNo}"] a.stl-link`);
      await p.waitForSelector('#stl-info');
      assert.equal(await p.locator('#stl-detail tbody tr[data-tx]').count(), 1);
      assert.equal(await p.isVisible('#stl-void'), true);
      await noHorizontalScroll(p, 'settlement detail');
      await shot(p, `settlement-detail-${locale}-390x844`);
    } finally {
      await p.context().close();
    }
  });
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
  test(`session expiry ${locale}: a message, back to the same page and filters, the language kept`, async () => {
    const p = await page('zh-Hant', DESKTOP, `expiry-${locale}`);
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
      await shot(p, `session-return-${locale}`);
    } finally {
      await p.context().close();
    }
  });
}

test('unreachable server: the banner says so and a page offers a retry that works', async () => {
  const p = await page('zh-Hant', DESKTOP, 'unreachable');
  try {
    await p.goto(`${URL}/console/dashboard`);
    await p.waitForSelector('#sum-payment_amount');
    await p.route('**/api/v1/**', (route) => route.abort('connectionrefused'));
    await p.click('#nav-settings');
    await p.waitForSelector('#page-retry');
    assert.match(await p.textContent('#banner-text'), /無法連線本店伺服器/);
    await shot(p, 'unreachable-zh-Hant');
    await p.unroute('**/api/v1/**');
    await p.click('#page-retry');
    await p.waitForSelector('#settings-form');
  } finally {
    await p.context().close();
  }
});

test('no console errors or page errors in the shell tests', () => {
  // The unreachable test aborts requests on purpose; those console lines are expected.
  assertNoProblems();
});
