// The transaction list and the refund form as a manager uses them (issue 13, items 4, 5
// and 9): partial search by card or transaction number, sorting, totals of the filtered
// rows, impossible ranges explained before sending, a refund dialog that names exactly
// what will be sent and starts on Cancel, partly refunded payments and refunds told
// apart, and rows as cards on a phone. Run by scripts/browser-test.sh.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import {
  URL, api, bearer, demoQr, newPage, signIn, pageAs, shot, launch, closeBrowser, assertNoProblems, noHorizontalScroll, watch, PHONE, DESKTOP, createUser,
} from './lib.mjs';

const MANAGER = ['tx-manager', 'tx-manager-password-1'];

let ownerToken;
let managerToken;
const charged = [];

async function charge(amount) {
  const r = await api('POST', '/merchant/charge', {
    token: ownerToken, body: { qr_plain: demoQr(), amount, idempotency_key: `tx-${randomUUID()}` },
  });
  assert.equal(r.status, 200, r.text);
  return r.json.transaction;
}

const page = (locale, viewport, label) => pageAs(MANAGER, locale, viewport, label);

async function listPage(p, query = '') {
  await p.goto(`${URL}/console/transactions${query}`);
  await p.waitForSelector('#tx-list table');
  await p.waitForFunction(() => document.querySelector('#tx-totals')?.textContent);
}

/** The GET requests the page makes to the list API from now on. */
function listCalls(p) {
  const calls = [];
  p.on('request', (req) => { if (req.url().includes('/api/v1/merchant/transactions?')) calls.push(req.url()); });
  return calls;
}


before(async () => {
  ({ ownerToken } = await launch());
  await createUser(MANAGER, 'manager');
  managerToken = await bearer(...MANAGER);
  for (const amount of ['11.11', '22.22', '33.33']) charged.push(await charge(amount));
});

after(closeBrowser);

const TEXT = {
  'zh-Hant': {
    endBeforeStart: '結束日期不可早於開始日期，否則不會有任何交易符合。',
    minAboveMax: '最低金額高於最高金額，不會有任何交易符合。',
    badRefund: '「退款金額」須為大於 0 的數字，最多兩位小數，且不超過 9,999,999,999.99。',
    exceeds: '退款金額超過可退餘額。',
    partial: '部分退款',
    totals: /符合 \d+ 筆：付款/,
    receipt: '付款收據',
    pending: '＊尚未同步至總部＊',
  },
  en: {
    endBeforeStart: 'The end date is before the start date, so no transaction can match.',
    minAboveMax: 'The lowest amount is above the highest, so no transaction can match.',
    badRefund: '“Refund amount” must be above 0, with at most 2 decimals, up to 9,999,999,999.99.',
    exceeds: 'The refund exceeds what remains refundable.',
    partial: 'Partly refunded',
    totals: /\d+ matching: \d+ payments/,
    receipt: 'PAYMENT RECEIPT',
    pending: '* PENDING SYNC WITH HEAD OFFICE *',
  },
};

for (const locale of ['zh-Hant', 'en']) {
  for (const viewport of [DESKTOP, PHONE]) {
    const size = `${viewport.width}x${viewport.height}`;
    test(`transactions ${locale} ${size}: partial search, totals, impossible ranges explained before sending`, async () => {
      const m = TEXT[locale];
      const p = await page(locale, viewport, `tx-${locale}-${size}`);
      try {
        const card = (await api('GET', `/common/transactions/${charged[0].tx_no}`, { token: ownerToken })).json.transaction.card_no;
        await listPage(p, `?q=${card.slice(-4)}`);
        const api1 = (await api('GET', `/merchant/transactions?q=${card.slice(-4)}`, { token: ownerToken })).json;
        assert.ok(api1.transactions.length >= 1);
        assert.equal(await p.locator('#tx-list tbody tr').count(), Math.min(20, api1.totals.count));
        assert.match(await p.textContent('#tx-totals'), m.totals);
        assert.ok((await p.textContent('#tx-totals')).includes(String(api1.totals.count)));
        await noHorizontalScroll(p);
        await shot(p, `transactions-search-${locale}-${size}`);

        // A part of a transaction number, in lower case.
        const no = charged[1].tx_no;
        await p.fill('#f-q', no.slice(-7).toLowerCase());
        await p.click('#tx-apply');
        await p.waitForFunction((n) => [...document.querySelectorAll('#tx-list tbody tr')].some((r) => r.dataset.tx === n), no);

        const calls = listCalls(p);
        await p.fill('#f-q', '');
        await p.fill('#f-start_date', '2026-03-02');
        await p.fill('#f-end_date', '2026-03-01');
        await p.click('#tx-apply');
        assert.equal(await p.textContent('#tx-message'), m.endBeforeStart);
        assert.equal(await p.evaluate(() => document.activeElement?.id), 'f-end_date');
        await p.fill('#f-end_date', '');
        await p.fill('#f-start_date', '');
        await p.fill('#f-min_amount', '20');
        await p.fill('#f-max_amount', '10');
        await p.click('#tx-apply');
        assert.equal(await p.textContent('#tx-message'), m.minAboveMax);
        assert.equal(await p.evaluate(() => document.activeElement?.id), 'f-max_amount');
        assert.deepEqual(calls, [], 'nothing was sent');
        if (viewport === PHONE) await shot(p, `transactions-refused-${locale}-${size}`);
      } finally {
        await p.context().close();
      }
    });
  }
}

test('transactions: sorting by amount from the column header, announced with aria-sort', async () => {
  const p = await page('zh-Hant', DESKTOP, 'tx-sort');
  try {
    await listPage(p);
    await p.click('th button.sort[data-sort="amount"]');
    await p.waitForFunction(() => new URLSearchParams(location.search).get('sort') === 'amount_desc');
    await p.waitForFunction(() => document.querySelectorAll('th')[4]?.getAttribute('aria-sort') === 'descending');
    const amounts = async () => (await p.locator('#tx-list tbody tr').evaluateAll((rows) => rows.map((r) => r.dataset.tx)));
    const api1 = (await api('GET', '/merchant/transactions?sort=amount_desc&limit=20', { token: ownerToken })).json;
    assert.deepEqual(await amounts(), api1.transactions.map((x) => x.tx_no));
    await p.click('th button.sort[data-sort="amount"]');
    await p.waitForFunction(() => document.querySelectorAll('th')[4]?.getAttribute('aria-sort') === 'ascending');
    assert.equal(await p.getAttribute('th:nth-child(2)', 'aria-sort'), 'none');
    const api2 = (await api('GET', '/merchant/transactions?sort=amount_asc&limit=20', { token: ownerToken })).json;
    assert.deepEqual(await amounts(), api2.transactions.map((x) => x.tx_no));
  } finally {
    await p.context().close();
  }
});

for (const locale of ['zh-Hant', 'en']) {
  for (const viewport of [DESKTOP, PHONE]) {
    const size = `${viewport.width}x${viewport.height}`;
    test(`refund ${locale} ${size}: checked as typed, the dialog names the exact amount and starts on Cancel`, async () => {
      const m = TEXT[locale];
      const tx = await charge('50.00');
      const p = await page(locale, viewport, `refund-${locale}-${size}`);
      try {
        await p.goto(`${URL}/console/transactions/${tx.tx_no}`);
        await p.waitForSelector('#refund-form');
        assert.equal(await p.inputValue('#refund-amount'), '', 'nothing pre-filled');
        assert.equal(await p.isDisabled('#refund-submit'), true);
        for (const [value, message] of [['12.345', m.badRefund], ['abc', m.badRefund], ['50.01', m.exceeds]]) {
          await p.fill('#refund-amount', value);
          assert.equal(await p.textContent('#refund-check'), message, value);
          assert.equal(await p.isDisabled('#refund-submit'), true, value);
        }
        await p.fill('#refund-amount', '12.3');
        assert.match(await p.textContent('#refund-check'), /12\.30.*37\.70/);
        await p.click('#refund-submit');
        await p.waitForSelector('#confirm-dialog');
        assert.match(await p.textContent('#confirm-dialog'), /12\.30/);
        assert.equal(await p.evaluate(() => document.activeElement?.id), 'dlg-cancel');
        await shot(p, `refund-dialog-${locale}-${size}`);
        // Enter on the focused Cancel: nothing is refunded.
        await p.keyboard.press('Enter');
        await p.waitForSelector('#confirm-dialog', { state: 'detached' });
        let d = (await api('GET', `/common/transactions/${tx.tx_no}`, { token: ownerToken })).json;
        assert.equal(d.refunds.length, 0);

        await p.click('#refund-submit');
        await p.click('#dlg-confirm');
        await p.waitForFunction(() => document.querySelector('#tx-detail-message')?.textContent);
        d = (await api('GET', `/common/transactions/${tx.tx_no}`, { token: ownerToken })).json;
        assert.equal(d.refunds.length, 1);
        assert.equal(Number(d.refunds[0].final_amount), 12.3);
        assert.equal(await p.textContent('#tx-status'), m.partial);

        // In the list: the payment reads partly refunded, the refund is negative.
        await listPage(p, `?q=${tx.tx_no.slice(-7)}`);
        const pay = p.locator(`tr[data-tx="${tx.tx_no}"]`);
        assert.match(await pay.textContent(), new RegExp(m.partial));
        await listPage(p, `?q=${d.refunds[0].tx_no}`);
        const ref = p.locator(`tr[data-tx="${d.refunds[0].tx_no}"]`);
        assert.equal(await ref.getAttribute('class'), 'row-refund');
        assert.match(await ref.textContent(), /−12\.30/);
        await noHorizontalScroll(p);
        await shot(p, `transactions-refund-row-${locale}-${size}`);
      } finally {
        await p.context().close();
      }
    });
  }
}

test('phone: transactions are cards with the amount and status first', async () => {
  const p = await page('zh-Hant', PHONE, 'tx-cards');
  try {
    await listPage(p);
    await noHorizontalScroll(p);
    const first = p.locator('#tx-list tbody tr').first();
    const order = await first.evaluate((tr) => [...tr.children]
      .sort((a, b) => a.getBoundingClientRect().top - b.getBoundingClientRect().top)
      .map((td) => td.dataset.label));
    assert.deepEqual(order.slice(0, 2), ['金額', '狀態']);
    await shot(p, 'transactions-cards-zh-Hant-390x844');
  } finally {
    await p.context().close();
  }
});

for (const locale of ['zh-Hant', 'en']) {
  for (const viewport of [DESKTOP, PHONE]) {
    const size = `${viewport.width}x${viewport.height}`;
    test(`receipt ${locale} ${size}: printed from the transaction, in this language, masked card, pending mark`, async () => {
      const tx = charged[0];
      const p = await page(locale, viewport, `receipt-${locale}-${size}`);
      try {
        await p.goto(`${URL}/console/transactions/${tx.tx_no}`);
        await p.waitForSelector('#tx-receipt');
        const [popup] = await Promise.all([p.waitForEvent('popup'), p.click('#tx-receipt')]);
        watch(popup, `receipt-popup-${locale}-${size}`);
        await popup.waitForLoadState();
        assert.equal(await popup.getAttribute('html', 'lang'), locale);
        assert.equal(await popup.textContent('h2'), TEXT[locale].receipt);
        const body = await popup.textContent('body');
        assert.match(body, new RegExp(tx.tx_no));
        assert.match(body, /STD\*{4}0001/);
        assert.equal(await popup.textContent('#pending-sync'), TEXT[locale].pending);
        // its own style applies (the policy allows that one style by hash, nothing else)
        assert.equal(await popup.$eval('#pending-sync', (e) => getComputedStyle(e).fontWeight), '600');
        await noHorizontalScroll(popup, 'receipt');
        await shot(popup, `receipt-${locale}-${size}`);
        await popup.close();
      } finally {
        await p.context().close();
      }
    });
  }
}

test('no console errors or page errors in the transaction tests', assertNoProblems);
