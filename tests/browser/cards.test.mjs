// Cards at the counter (issue 14, item 5): a manager looks a card up, freezes a lost one
// with a reason (the card is refused at once), and lifts the freeze; a card head office
// froze shows why it cannot be lifted here; bad card numbers are refused before sending.
// Both languages, desktop and phone widths. Run by scripts/browser-test.sh.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import {
  URL, api, bearer, demoQr, newPage, signIn, pageAs, shot, launch, closeBrowser, assertNoProblems, noHorizontalScroll,
} from './lib.mjs';

const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 800 };
const MANAGER = ['card-manager', 'card-manager-password-1'];

let ownerToken;

const page = (locale, viewport, label) => pageAs(MANAGER, locale, viewport, label);

before(async () => {
  ({ ownerToken } = await launch());
  const r = await api('POST', '/console/users', {
    token: ownerToken, body: { username: MANAGER[0], password: MANAGER[1], role: 'manager' },
  });
  assert.equal(r.status, 200, r.text);
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
