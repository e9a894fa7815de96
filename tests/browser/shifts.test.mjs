// Shifts in the console (issue 14, item 2): a manager sees the day by cashier and by
// terminal, the tills' shifts with their figures (top-ups and the cash the drawer should
// hold apart from sales), closes an open shift after a confirmation, and opens the X or Z
// report to print. Both languages, desktop and phone
// widths. Run by scripts/browser-test.sh.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import {
  URL, api, bearer, demoQr, newPage, signIn, pageAs, shot, launch, closeBrowser, assertNoProblems, noHorizontalScroll, watch, PHONE, DESKTOP, createUser,
} from './lib.mjs';

const MANAGER = ['shift-manager', 'shift-manager-password-1'];
// The shift tests' sales go on a card of their own.
const CARD = 'STD00000019';

let ownerToken;

const page = (locale, viewport, label) => pageAs(MANAGER, locale, viewport, label);

before(async () => {
  ({ ownerToken } = await launch());
  await createUser(MANAGER, 'manager');
});

after(closeBrowser);

const TEXT = {
  'zh-Hant': {
    open: '進行中', closeText: /結束 .* 的班別（淨額 .*，應有現金 20\.00）/, closed: /已結班/, x: '班別報表（X，未結班）', z: '結班報表（Z）', total: '合計',
    topups: '儲值', cash: '應有現金', xCash: /應有現金.*20\.00/,
  },
  en: {
    open: 'Open', closeText: /Ends .*’s shift \(net .*, cash expected 20\.00\)/, closed: /Shift .* closed\./, x: 'SHIFT REPORT (X, OPEN)', z: 'END OF SHIFT (Z)', total: 'Total',
    topups: 'Top-ups', cash: 'Cash expected', xCash: /Cash expected.*20\.00/,
  },
};

let round = 0;
for (const locale of ['zh-Hant', 'en']) {
  for (const viewport of [DESKTOP, PHONE]) {
    const size = `${viewport.width}x${viewport.height}`;
    test(`shifts ${locale} ${size}: the day by cashier, a shift's X report, closed with a confirmation, its Z report`, async () => {
      round += 1;
      const m = TEXT[locale];
      // a cashier opens a shift at the till and sells twice
      const clerk = [`shift-clerk-${round}`, `shift-clerk-password-${round}`];
      const made = await api('POST', '/console/users', { token: ownerToken, body: { username: clerk[0], password: clerk[1], role: 'cashier' } });
      assert.equal(made.status, 200, made.text);
      const token = await bearer(...clerk);
      const opened = await api('POST', '/shifts/open', { token, body: {} });
      assert.equal(opened.status, 200, opened.text);
      const shiftNo = opened.json.shift_no;
      let cents = 0;
      for (const amount of ['3.00', '4.50']) {
        const r = await api('POST', '/merchant/charge', {
          token, body: { qr_plain: demoQr(CARD), amount, idempotency_key: `s-${randomUUID()}` },
        });
        assert.equal(r.status, 200, r.text);
        cents += Math.round(Number(r.json.transaction.final_amount) * 100);
      }
      // what the member paid after the level discount
      const paid = (cents / 100).toFixed(2).replace('.', '\\.');
      // two top-ups at the till: cash goes in the drawer, a wallet payment does not
      for (const [amount, method] of [['20.00', 'cash'], ['5.00', 'wechat']]) {
        const r = await api('POST', '/merchant/topup', {
          token, body: { card_no: CARD, amount, payment_method: method, idempotency_key: `s-${randomUUID()}` },
        });
        assert.equal(r.status, 200, r.text);
      }

      const p = await page(locale, viewport, `shifts-${locale}-${size}`);
      try {
        await p.goto(`${URL}/console/shifts`);
        await p.waitForSelector(`#shift-list tr[data-shift="${shiftNo}"]`);
        const row = `#shift-list tr[data-shift="${shiftNo}"]`;
        assert.equal(await p.getAttribute(row, 'data-kind'), 'X');
        assert.match(await p.textContent(row), new RegExp(m.open));
        assert.match(await p.textContent(row), new RegExp(paid));
        assert.equal(await p.textContent(`${row} td[data-label="${m.topups}"]`), '25.00 (2)');
        assert.equal(await p.textContent(`${row} td[data-label="${m.cash}"]`), '20.00');
        // the daily report has the cashier's row and a total
        assert.match(await p.textContent(`#daily-list tr[data-row="${clerk[0]}"]`), new RegExp(`${paid} \\(2\\)`));
        assert.equal(await p.textContent(`#daily-list tr[data-row="${clerk[0]}"] td[data-label="${m.cash}"]`), '20.00');
        assert.match(await p.textContent('#daily-list tr[data-row="total"]'), new RegExp(m.total));
        assert.match(await p.getAttribute('#daily-csv', 'href'), /format=csv/);
        await noHorizontalScroll(p, 'shifts');
        await shot(p, `shifts-${locale}-${size}`);

        // the X report opens to print
        const [x] = await Promise.all([p.waitForEvent('popup'), p.click(`${row} a[data-action="report"]`)]);
        watch(x, `shift-x-${locale}-${size}`);
        await x.waitForLoadState();
        assert.match(await x.textContent('body'), new RegExp(m.x.replace(/[()（）]/g, '.')));
        assert.match(await x.textContent('body'), m.xCash);
        await x.close();

        // closing asks first; cancel keeps it open
        await p.click(`${row} button[data-action="close"]`);
        await p.waitForSelector('#confirm-dialog');
        assert.match(await p.textContent('#confirm-dialog'), m.closeText);
        assert.equal(await p.evaluate(() => document.activeElement?.id), 'dlg-cancel');
        await p.click('#dlg-cancel');
        assert.equal((await api('GET', '/shifts/current', { token })).status, 200, 'still open');
        await p.click(`${row} button[data-action="close"]`);
        await p.click('#dlg-confirm');
        await p.waitForFunction((sel) => document.querySelector(sel)?.dataset.kind === 'Z', row);
        assert.match(await p.textContent('#shift-message'), m.closed);
        assert.equal(await p.locator(`${row} button[data-action="close"]`).count(), 0);
        assert.equal((await api('GET', '/shifts/current', { token })).status, 404, 'closed');
        const [z] = await Promise.all([p.waitForEvent('popup'), p.click(`${row} a[data-action="report"]`)]);
        watch(z, `shift-z-${locale}-${size}`);
        await z.waitForLoadState();
        assert.match(await z.textContent('body'), new RegExp(m.z.replace(/[()（）]/g, '.')));
        await z.close();
        await shot(p, `shifts-closed-${locale}-${size}`);
      } finally {
        await p.context().close();
      }
    });
  }
}

test('no console errors or page errors in the shift tests', assertNoProblems);
