// Cards at the counter (issue 14, items 4 and 5): a manager looks a card up, freezes a
// lost one with a reason (the card is refused at once), and lifts the freeze; a card head
// office froze shows why it cannot be lifted here; bad card numbers are refused before
// sending. A counter top-up: checked as typed, a dialog naming exactly what is sent and
// starting on Cancel, the balance up by exactly that, its receipt, listed as a top-up; a
// card that cannot be loaded and a store limit explained in the server's words.
// Both languages, desktop and phone widths. Run by scripts/browser-test.sh.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import {
  URL, api, bearer, demoQr, newPage, signIn, pageAs, shot, launch, closeBrowser, assertNoProblems, noHorizontalScroll, watch, PHONE, DESKTOP, createUser,
} from './lib.mjs';

const MANAGER = ['card-manager', 'card-manager-password-1'];

let ownerToken;

const page = (locale, viewport, label) => pageAs(MANAGER, locale, viewport, label);

before(async () => {
  ({ ownerToken } = await launch());
  await createUser(MANAGER, 'manager');
});

after(closeBrowser);

const TEXT = {
  'zh-Hant': {
    badNo: '卡號須為 1 至 32 個半形字元，不可包含空格。',
    noCard: '找不到這張卡片。',
    reason: /原因須在 500 個字元以內/,
    active: '正常',
    frozen: '已凍結',
    frozenDone: /已凍結會員卡/,
    liftedDone: /已解除會員卡/,
    central: /總部或其他門市凍結/,
  },
  en: {
    badNo: 'The card number must be 1–32 ASCII characters, without spaces.',
    noCard: 'No such card.',
    reason: /reason may have at most 500 characters/,
    active: 'Active',
    frozen: 'Frozen',
    frozenDone: /Card .* frozen\./,
    liftedDone: /freeze on card .* was lifted/,
    central: /frozen by head office or another store/,
  },
};

let round = 0;
for (const locale of ['zh-Hant', 'en']) {
  for (const viewport of [DESKTOP, PHONE]) {
    const size = `${viewport.width}x${viewport.height}`;
    test(`cards ${locale} ${size}: look up, freeze a lost card with a reason, refused at once, lift the freeze`, async () => {
      round += 1;
      const cardNo = `STD0000001${round}`;
      const m = TEXT[locale];
      const p = await page(locale, viewport, `cards-${locale}-${size}`);
      const posts = [];
      p.on('request', (req) => { if (req.url().includes('/api/v1/merchant/cards/')) posts.push(`${req.method()} ${req.url()}`); });
      try {
        await p.goto(`${URL}/console/cards`);
        await p.waitForSelector('#card-form');
        // a card number the server would refuse: said before sending
        await p.fill('#card-no', 'a b');
        await p.click('#card-find');
        assert.equal(await p.textContent('#card-message'), m.badNo);
        assert.equal(await p.evaluate(() => document.activeElement?.id), 'card-no');
        assert.deepEqual(posts, []);
        await p.fill('#card-no', 'STD99999999');
        await p.click('#card-find');
        await p.waitForFunction((t) => document.querySelector('#card-message')?.textContent === t, m.noCard);

        await p.fill('#card-no', cardNo);
        await p.click('#card-find');
        await p.waitForSelector(`#card-info[data-card="${cardNo}"]`);
        assert.equal(await p.textContent('#card-status'), m.active);
        assert.equal(new globalThis.URL(p.url()).searchParams.get('card_no'), cardNo);
        await noHorizontalScroll(p, 'card');
        await shot(p, `cards-${locale}-${size}`);

        // freeze: a reason is required
        await p.click('#card-freeze-btn');
        await p.waitForSelector('#prompt-dialog');
        await p.click('#dlg-confirm');
        await p.waitForSelector('#dlg-problem:not([hidden])');
        assert.match(await p.textContent('#dlg-problem'), m.reason);
        await p.fill('#dlg-input', '會員報失 lost');
        await p.click('#dlg-confirm');
        await p.waitForFunction((t) => document.querySelector('#card-status')?.textContent === t, m.frozen);
        assert.match(await p.textContent('#card-message'), m.frozenDone);
        assert.match(await p.textContent('#card-freeze'), /會員報失 lost/);
        assert.match(await p.textContent('#card-freeze'), new RegExp(MANAGER[0]));
        await noHorizontalScroll(p, 'frozen card');
        await shot(p, `cards-frozen-${locale}-${size}`);
        // refused at the till at once
        const charge = await api('POST', '/merchant/charge', {
          token: ownerToken, body: { qr_plain: demoQr(cardNo), amount: '1.00', idempotency_key: `c-${randomUUID()}` },
        });
        assert.equal(charge.status, 422, charge.text);
        assert.equal(charge.json.error.code, 'CARD_NOT_ACTIVE');

        // lift it: the card pays again
        await p.click('#card-unfreeze-btn');
        await p.fill('#dlg-input', 'found');
        await p.click('#dlg-confirm');
        await p.waitForFunction((t) => document.querySelector('#card-status')?.textContent === t, m.active);
        assert.match(await p.textContent('#card-message'), m.liftedDone);
        const again = await api('POST', '/merchant/charge', {
          token: ownerToken, body: { qr_plain: demoQr(cardNo), amount: '1.00', idempotency_key: `c-${randomUUID()}` },
        });
        assert.equal(again.status, 200, again.text);

        // a card head office froze: no button, and why
        await p.goto(`${URL}/console/cards?card_no=STD00000023`);
        await p.waitForSelector('#card-info[data-card="STD00000023"]');
        assert.match(await p.textContent('#card-central-note'), m.central);
        assert.equal(await p.locator('#card-unfreeze-btn').count(), 0);
        assert.equal(await p.locator('#card-freeze-btn').count(), 0);
      } finally {
        await p.context().close();
      }
    });
  }
}

// The top-up tests' cards (no other test file uses them): one per language.
const TOPUP_CARD = { 'zh-Hant': 'STD00000015', en: 'STD00000016' };

const TOPUP_TEXT = {
  'zh-Hant': {
    malformed: '「金額」須為大於 0 的數字，最多兩位小數，且不超過 9,999,999,999.99。',
    zero: '儲值金額必須大於 0。',
    unsupported: '只有標準會員卡可以儲值。',
    perTopup: (limit) => `金額超過本店單筆儲值上限，已被拒絕。上限為 ${limit}。`,
    type: '儲值',
    notSales: '不計入銷售',
    receipt: '儲值收據',
    methods: { cash: '現金', wechat: '微信支付', alipay: '支付寶' },
  },
  en: {
    malformed: '“Amount” must be above 0, with at most 2 decimals, up to 9,999,999,999.99.',
    zero: 'The top-up amount must be greater than zero.',
    unsupported: 'Only standard member cards can be topped up.',
    perTopup: (limit) => `The amount is above this store’s largest single top-up; refused. The limit is ${limit}.`,
    type: 'Top-up',
    notSales: 'not sales',
    receipt: 'TOP-UP RECEIPT',
    methods: { cash: 'Cash', wechat: 'WeChat Pay', alipay: 'Alipay' },
  },
};

/** A card's available balance in cents, as the API gives it. */
async function balanceCents(cardNo) {
  const r = await api('GET', `/merchant/cards/${cardNo}`, { token: ownerToken });
  assert.equal(r.status, 200, r.text);
  return Math.round(Number(r.json.balance) * 100);
}

for (const locale of ['zh-Hant', 'en']) {
  for (const viewport of [DESKTOP, PHONE]) {
    const size = `${viewport.width}x${viewport.height}`;
    test(`top-up ${locale} ${size}: checked as typed, confirmed with the exact amount, balance up by exactly that, listed as a top-up`, async () => {
      const m = TOPUP_TEXT[locale];
      const cardNo = TOPUP_CARD[locale];
      const how = viewport === PHONE ? 'alipay' : 'wechat';
      const p = await page(locale, viewport, `topup-${locale}-${size}`);
      const sent = [];
      p.on('request', (req) => {
        if (req.method() === 'POST' && req.url().endsWith('/api/v1/merchant/topup')) sent.push(JSON.parse(req.postData()));
      });
      try {
        const before = await balanceCents(cardNo);
        await p.goto(`${URL}/console/cards?card_no=${cardNo}`);
        await p.waitForSelector('#topup-form');
        assert.equal(await p.isDisabled('#topup-submit'), true, 'nothing to send yet');

        // amounts the server would refuse: its own words, as typed, and nothing sent
        for (const [value, message] of [['12.345', m.malformed], ['abc', m.malformed], ['0', m.zero], ['-5', m.zero], ['0.00', m.zero]]) {
          await p.fill('#topup-amount', value);
          assert.equal(await p.textContent('#topup-check'), message, value);
          assert.equal(await p.getAttribute('#topup-amount', 'aria-invalid'), 'true', value);
          assert.equal(await p.isDisabled('#topup-submit'), true, value);
          await p.press('#topup-amount', 'Enter');
        }
        assert.equal(await p.locator('#confirm-dialog').count(), 0);
        if (viewport === PHONE) await shot(p, `topup-refused-${locale}-${size}`);

        await p.fill('#topup-amount', '123.4');
        assert.equal(await p.getAttribute('#topup-amount', 'aria-invalid'), null);
        assert.match(await p.textContent('#topup-check'), /123\.40/);
        await p.selectOption('#topup-method', how);
        await noHorizontalScroll(p, 'top-up form');
        await shot(p, `topup-form-${locale}-${size}`);

        // the dialog names the exact amount, the card and the method, and starts on Cancel
        await p.click('#topup-submit');
        await p.waitForSelector('#confirm-dialog');
        const dialog = await p.textContent('#confirm-dialog');
        assert.match(dialog, /123\.40/);
        assert.ok(dialog.includes(cardNo) && dialog.includes(m.methods[how]), dialog);
        assert.equal(await p.evaluate(() => document.activeElement?.id), 'dlg-cancel');
        await noHorizontalScroll(p, 'top-up dialog');
        await shot(p, `topup-dialog-${locale}-${size}`);
        await p.keyboard.press('Enter');
        await p.waitForSelector('#confirm-dialog', { state: 'detached' });
        assert.deepEqual(sent, [], 'cancelled: nothing sent');
        assert.equal(await balanceCents(cardNo), before);

        await p.click('#topup-submit');
        await p.click('#dlg-confirm');
        await p.waitForSelector('#topup-result');
        assert.equal(sent.length, 1);
        assert.equal(sent[0].amount, '123.4');
        assert.equal(sent[0].payment_method, how);
        assert.equal(sent[0].card_no, cardNo);
        assert.match(sent[0].idempotency_key, /^console-/);
        const after = await balanceCents(cardNo);
        assert.equal(after, before + 12340, 'the balance rose by exactly the amount');
        const newBalance = new Intl.NumberFormat(locale === 'en' ? 'en-US' : 'zh-TW', { minimumFractionDigits: 2 }).format(after / 100);
        assert.ok((await p.textContent('#topup-done')).includes(newBalance), await p.textContent('#topup-done'));
        assert.equal(await p.textContent('#card-balance'), newBalance);
        assert.equal(await p.inputValue('#topup-amount'), '', 'the form is empty again');
        assert.equal(await p.evaluate(() => document.activeElement?.id), 'topup-receipt');
        await noHorizontalScroll(p, 'top-up done');
        await shot(p, `topup-done-${locale}-${size}`);

        // its receipt prints as a top-up, in this language
        const txNo = (await p.textContent('#topup-tx')).match(/RCG-\S+/)[0];
        const [popup] = await Promise.all([p.waitForEvent('popup'), p.click('#topup-receipt')]);
        watch(popup, `topup-receipt-${locale}-${size}`);
        await popup.waitForLoadState();
        assert.equal(await popup.textContent('h2'), m.receipt);
        assert.match(await popup.textContent('body'), new RegExp(txNo));
        assert.ok((await popup.textContent('body')).includes(m.methods[how]));
        await popup.close();

        // the transaction list shows it as a top-up, and filters on it
        await p.goto(`${URL}/console/transactions?type=recharge`);
        await p.waitForSelector(`#tx-list tr[data-tx="${txNo}"]`);
        const row = p.locator(`#tx-list tr[data-tx="${txNo}"]`);
        assert.equal(await row.getAttribute('class'), 'row-recharge');
        assert.equal(await row.locator('.tag.recharge').textContent(), m.type);
        assert.match(await row.textContent(), /123\.40/);
        assert.equal(await p.inputValue('#tx-filters select[name="type"]'), 'recharge');
        assert.equal(await p.locator('#tx-list tbody tr:not(.row-recharge)').count(), 0, 'only top-ups');
        // the footer counts them apart from sales, with their amount (other test files
        // top up too, so the figure itself is not pinned here; tests/topups.rs does)
        const footer = await p.textContent('#tx-totals');
        assert.ok(footer.includes(m.notSales), footer);
        assert.match(footer, /\d\.\d{2}/, footer);
        await noHorizontalScroll(p, 'top-up in the list');
        await shot(p, `topup-list-${locale}-${size}`);

        // its detail: the amount and how it was paid, no refund, a receipt
        await p.click(`#tx-list tr[data-tx="${txNo}"] a.tx-link`);
        await p.waitForSelector('#tx-info[data-type="recharge"]');
        assert.match(await p.textContent('#tx-final'), /123\.40/);
        assert.equal(await p.textContent('#tx-method'), m.methods[how]);
        assert.equal(await p.textContent('#tx-type'), m.type);
        assert.equal(await p.locator('#refund-form').count(), 0);
        assert.equal(await p.locator('#refund-panel').count(), 0);
        assert.match(await p.getAttribute('#tx-receipt', 'href'), new RegExp(`/transactions/${txNo}/receipt\\?format=html`));
        await noHorizontalScroll(p, 'top-up detail');
      } finally {
        await p.context().close();
      }
    });

    test(`top-up ${locale} ${size}: a card that cannot be loaded, and a store limit, in the server's words`, async () => {
      const m = TOPUP_TEXT[locale];
      const cardNo = TOPUP_CARD[locale];
      const p = await page(locale, viewport, `topup-refused-${locale}-${size}`);
      try {
        // a corporate card: central loads standard cards only; no form to fill in vain
        await p.goto(`${URL}/console/cards?card_no=COR00000022`);
        await p.waitForSelector('#card-info[data-card="COR00000022"]');
        assert.equal(await p.textContent('#topup-unavailable'), m.unsupported);
        assert.equal(await p.locator('#topup-form').count(), 0);
        // …and the server says the same
        const r = await api('POST', '/merchant/topup', { token: ownerToken, body: { card_no: 'COR00000022', amount: '10.00' } });
        assert.equal(r.status, 422, r.text);
        assert.equal(r.json.error.code, 'UNSUPPORTED_CARD_TYPE_FOR_RECHARGE');
        await noHorizontalScroll(p, 'corporate card');

        // above the store's largest single top-up: refused by the server, the limit named
        const limits = (await api('GET', '/console/settings', { token: ownerToken })).json.settings.limits;
        const limitCents = Math.round(Number(limits.max_topup_amount) * 100);
        const over = ((limitCents + 1) / 100).toFixed(2);
        const before = await balanceCents(cardNo);
        await p.goto(`${URL}/console/cards?card_no=${cardNo}`);
        await p.waitForSelector('#topup-form');
        await p.fill('#topup-amount', over);
        await p.click('#topup-submit');
        await p.click('#dlg-confirm');
        await p.waitForFunction(() => document.querySelector('#topup-message')?.textContent);
        const limitText = new Intl.NumberFormat(locale === 'en' ? 'en-US' : 'zh-TW', { minimumFractionDigits: 2 }).format(limitCents / 100);
        assert.equal(await p.textContent('#topup-message'), m.perTopup(limitText));
        assert.equal(await p.isDisabled('#topup-submit'), false, 'another amount may be tried');
        assert.equal(await balanceCents(cardNo), before, 'nothing loaded');
        await noHorizontalScroll(p, 'top-up limit');
        await shot(p, `topup-limit-${locale}-${size}`);
      } finally {
        await p.context().close();
      }
    });
  }
}

test('top-up: sent again after no answer, the same key: loaded once', async () => {
  const cardNo = TOPUP_CARD.en;
  // "unreachable…": the lost answer logs a network error on purpose (lib.mjs's watch)
  const p = await page('en', DESKTOP, 'unreachable-topup-retry');
  const keys = [];
  try {
    const before = await balanceCents(cardNo);
    await p.goto(`${URL}/console/cards?card_no=${cardNo}`);
    await p.waitForSelector('#topup-form');
    // the first answer is lost on the way back (the top-up itself went through)
    let first = true;
    await p.route('**/api/v1/merchant/topup', async (route) => {
      keys.push(JSON.parse(route.request().postData()).idempotency_key);
      if (first) {
        first = false;
        await route.fetch();
        await route.abort('connectionreset');
      } else {
        await route.continue();
      }
    });
    await p.fill('#topup-amount', '7.25');
    await p.click('#topup-submit');
    await p.click('#dlg-confirm');
    await p.waitForFunction(() => document.querySelector('#topup-message')?.textContent);
    assert.match(await p.textContent('#topup-message'), /cannot be reached/);
    await p.click('#topup-submit');
    await p.click('#dlg-confirm');
    await p.waitForSelector('#topup-result');
    assert.equal(keys.length, 2);
    assert.equal(keys[0], keys[1], 'the retry carries the same key');
    assert.equal(await balanceCents(cardNo), before + 725, 'loaded once');
    // a new top-up afterwards: a new key
    await p.evaluate(() => document.querySelector('#topup-result').remove());
    await p.fill('#topup-amount', '1.00');
    await p.click('#topup-submit');
    await p.click('#dlg-confirm');
    await p.waitForSelector('#topup-result');
    assert.equal(keys.length, 3);
    assert.notEqual(keys[2], keys[0]);
    assert.equal(await balanceCents(cardNo), before + 825);
  } finally {
    await p.context().close();
  }
});

test('cards: a cashier is not offered the page', async () => {
  await api('POST', '/console/users', {
    token: ownerToken, body: { username: 'card-clerk', password: 'card-clerk-password-1', role: 'cashier' },
  });
  const p = await newPage('cards-cashier');
  try {
    await signIn(p, 'card-clerk', 'card-clerk-password-1');
    assert.equal(await p.locator('#nav-cards').count(), 0);
    await p.goto(`${URL}/console/cards`);
    await p.waitForSelector('#refused');
  } finally {
    await p.context().close();
  }
});

test('no console errors or page errors in the card tests', assertNoProblems);
