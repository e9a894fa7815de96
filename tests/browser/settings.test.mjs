// The settings page as an owner and a manager would use it (issue 13, item 3): typed
// fields with units and help text, the server's rules checked before sending (same
// message, nothing sent), the store's time zone and currency as settings, in both
// languages and at desktop and phone widths. Run by scripts/browser-test.sh.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  api, bearer, newPage, signIn, pageAs, shot, open, launch, closeBrowser, assertNoProblems, noHorizontalScroll, PHONE, DESKTOP, createUser,
} from './lib.mjs';

const OWNER = ['set-owner', 'set-owner-password-1'];
const MANAGER = ['set-manager', 'set-manager-password-1'];

let ownerToken;
let original;

/** Signs `who` in with `locale` chosen (the user's stored preference) at `viewport`. */
async function settingsPage(who, locale, viewport, label) {
  const page = await pageAs(who, locale, viewport, label);
  await open(page, 'settings');
  return page;
}

/** The PUTs a page sends to the settings API from now on. */
function putsOf(page) {
  const puts = [];
  page.on('request', (req) => {
    if (req.method() === 'PUT' && req.url().endsWith('/api/v1/console/settings')) puts.push(JSON.parse(req.postData()));
  });
  return puts;
}


async function saveAndRead(page) {
  await page.click('#settings-save');
  await page.waitForFunction(() => document.querySelector('#settings-message')?.textContent);
  return page.textContent('#settings-message');
}

before(async () => {
  ({ ownerToken } = await launch());
  await createUser(OWNER, 'owner');
  await createUser(MANAGER, 'manager');
  original = (await api('GET', '/console/settings', { token: ownerToken })).json.settings;
});

after(async () => {
  // Leave the shared server as the other files expect it.
  await api('PUT', '/console/settings', {
    token: ownerToken,
    body: {
      timezone: original.timezone,
      currency: original.currency,
      limits: { stale_after_secs: original.limits.stale_after_secs },
    },
  });
  await closeBrowser();
});

const TEXT = {
  'zh-Hant': {
    blankStale: '「資料過舊門檻」須為 0 或以上的整數，不可空白（0 表示不啟用）。',
    badAmount: '「單筆上限」須為大於 0 的金額，最多兩位小數。',
    ceiling: '「單筆上限」超過此安裝設定檔允許的上限，請輸入較低的數值。',
    saved: '已儲存。',
    help: /上限 NT\$ 2,000\.00/,
    minutes: '分鐘',
    badTopup: '「單筆儲值上限」須為大於 0 的金額，最多兩位小數。',
    topupCeiling: '「單筆儲值上限」超過此安裝設定檔允許的上限，請輸入較低的數值。',
    topupHelp: /一次儲值超過此金額即拒絕.*上限 NT\$ 5,000\.00/,
    topupLegend: '儲值限額（NT$）',
  },
  en: {
    blankStale: '“Replica stale after” must be a whole number, 0 or more, not blank (0 = off).',
    badAmount: /“Largest single charge”/,
    ceiling: '“Largest single charge” is above the ceiling this installation’s config file allows; enter a lower value.',
    saved: 'Saved.',
    help: /At most NT\$ 2,000\.00/,
    minutes: 'minutes',
    badTopup: '“Largest single top-up” must be an amount above 0 with at most 2 decimals.',
    topupCeiling: '“Largest single top-up” is above the ceiling this installation’s config file allows; enter a lower value.',
    topupHelp: /A single top-up above this is refused.*At most NT\$ 5,000\.00/,
    topupLegend: 'Top-up limits (NT$)',
  },
};

for (const locale of ['zh-Hant', 'en']) {
  for (const viewport of [DESKTOP, PHONE]) {
    const size = `${viewport.width}x${viewport.height}`;
    test(`settings ${locale} ${size}: help and units, bad values refused before sending with the server's message`, async () => {
      const m = TEXT[locale];
      const page = await settingsPage(OWNER, locale, viewport, `settings-${locale}-${size}`);
      try {
        assert.equal(await page.getAttribute('html', 'lang'), locale);
        await shot(page, `settings-form-${locale}-${size}`);
        await noHorizontalScroll(page);
        assert.match(await page.textContent('#set-max_tx_amount-help'), m.help);
        assert.equal(await page.getAttribute('#set-max_tx_amount', 'aria-describedby'), 'set-max_tx_amount-help');
        // the counter top-up limits: typed amounts of their own, with help and ceiling
        assert.equal(await page.textContent('#settings-topup-limits legend'), m.topupLegend);
        assert.match(await page.textContent('#set-max_topup_amount-help'), m.topupHelp);
        for (const k of ['max_topup_amount', 'max_card_unsynced_topup', 'max_shift_topup', 'max_site_unsynced_topup']) {
          assert.equal(await page.getAttribute(`#set-${k}`, 'inputmode'), 'decimal', k);
          assert.match(await page.inputValue(`#set-${k}`), /^\d+\.\d\d$/, k);
        }
        // 24 h reads as 24 hours, not 86400 seconds.
        assert.equal(await page.inputValue('#set-stale_after'), '24');
        assert.equal(await page.inputValue('#set-stale_unit'), 'hours');
        // No internal config keys on the page.
        assert.doesNotMatch(await page.textContent('#main'), /limits\.|site\.|stale_after_secs/);

        const puts = putsOf(page);
        for (const [control, value, message] of [
          ['#set-stale_after', '', m.blankStale],
          ['#set-stale_after', '1.5', m.blankStale],
          ['#set-max_tx_amount', '12.345', m.badAmount],
          ['#set-max_tx_amount', 'abc', m.badAmount],
          ['#set-max_tx_amount', '2000.01', m.ceiling],
          ['#set-max_topup_amount', '0', m.badTopup],
          ['#set-max_topup_amount', '12.345', m.badTopup],
          ['#set-max_topup_amount', '5000.01', m.topupCeiling],
        ]) {
          await page.fill(control, value);
          const text = await saveAndRead(page);
          if (message instanceof RegExp) assert.match(text, message);
          else assert.equal(text, message);
          assert.equal(await page.evaluate(() => document.activeElement?.id), control.slice(1), `${value}: focus on the field`);
          assert.equal(await page.getAttribute(control, 'aria-invalid'), 'true');
          await page.evaluate(() => { document.querySelector('#settings-message').textContent = ''; });
          await open(page, 'settings');
        }
        assert.deepEqual(puts, [], 'nothing was sent');
        if (locale === 'zh-Hant' && viewport === DESKTOP) await shot(page, 'settings-refused-zh-Hant');
      } finally {
        await page.context().close();
      }
    });
  }
}

test('settings: the stale threshold in minutes is stored in seconds; only changed values are sent', async () => {
  const page = await settingsPage(OWNER, 'zh-Hant', DESKTOP, 'settings-minutes');
  try {
    const puts = putsOf(page);
    await page.fill('#set-stale_after', '30');
    await page.selectOption('#set-stale_unit', 'minutes');
    assert.equal(await saveAndRead(page), TEXT['zh-Hant'].saved);
    assert.deepEqual(puts, [{ limits: { stale_after_secs: 1800 } }]);
    const s = (await api('GET', '/console/settings', { token: ownerToken })).json;
    assert.equal(s.settings.limits.stale_after_secs, 1800);
    assert.match(await page.textContent('#settings-overridden'), /資料過舊門檻/);
    await open(page, 'settings');
    assert.equal(await page.inputValue('#set-stale_after'), '30');
    assert.equal(await page.inputValue('#set-stale_unit'), 'minutes');
    // Saving again with nothing changed sends nothing.
    assert.equal(await saveAndRead(page), '沒有變更需要儲存。');
    assert.equal(puts.length, 1);
  } finally {
    await page.context().close();
  }
});

test('settings: the owner sets the store time zone and currency; dates and "today" follow', async () => {
  const page = await settingsPage(OWNER, 'en', DESKTOP, 'settings-zone');
  try {
    assert.equal(await page.inputValue('#set-timezone'), original.timezone);
    await page.selectOption('#set-timezone', 'America/Los_Angeles');
    await page.fill('#set-currency', 'HK$');
    assert.equal(await saveAndRead(page), 'Saved.');
    const session = await page.evaluate(async () => (await fetch('/api/v1/console/session')).json());
    assert.equal(session.store.timezone, 'America/Los_Angeles');
    assert.equal(session.store.currency, 'HK$');
    const day = (await api('GET', '/merchant/daily-summary', { token: ownerToken })).json;
    assert.equal(day.timezone, 'America/Los_Angeles');
    const la = new Intl.DateTimeFormat('en-CA', { timeZone: 'America/Los_Angeles' }).format(new Date());
    assert.equal(day.date, la);
    await open(page, 'settings');
    assert.match(await page.textContent('#set-max_tx_amount-help'), /HK\$ 2,000\.00/);
    await shot(page, 'settings-zone-en-1280x800');
  } finally {
    await page.context().close();
    const back = await api('PUT', '/console/settings', {
      token: ownerToken, body: { timezone: original.timezone, currency: original.currency },
    });
    assert.equal(back.status, 200, back.text);
  }
});

test('settings: the owner lowers the largest single top-up; only that is sent, and the till follows', async () => {
  const page = await settingsPage(OWNER, 'en', DESKTOP, 'settings-topup');
  try {
    const puts = putsOf(page);
    await page.fill('#set-max_topup_amount', '3000');
    assert.equal(await saveAndRead(page), 'Saved.');
    assert.deepEqual(puts, [{ limits: { max_topup_amount: '3000' } }]);
    const s = (await api('GET', '/console/settings', { token: ownerToken })).json;
    assert.equal(Number(s.settings.limits.max_topup_amount), 3000);
    assert.match(await page.textContent('#settings-overridden'), /Largest single top-up/);
    // a top-up above it is refused, naming the new limit (a refusal writes nothing)
    const r = await api('POST', '/merchant/topup', { token: ownerToken, body: { card_no: 'STD00000016', amount: '3000.01' } });
    assert.equal(r.status, 422, r.text);
    assert.equal(r.json.error.details.limit, 'per_topup');
    assert.equal(r.json.error.details.limit_amount, '3000.00');
    await open(page, 'settings');
    assert.equal(await page.inputValue('#set-max_topup_amount'), '3000.00');
  } finally {
    await page.context().close();
    const back = await api('PUT', '/console/settings', {
      token: ownerToken, body: { limits: { max_topup_amount: original.limits.max_topup_amount } },
    });
    assert.equal(back.status, 200, back.text);
  }
});

for (const viewport of [DESKTOP, PHONE]) {
  test(`settings: a manager (${viewport.width}px) sees the safeguards disabled and may change the currency`, async () => {
    const page = await settingsPage(MANAGER, 'zh-Hant', viewport, `settings-manager-${viewport.width}`);
    try {
      await noHorizontalScroll(page);
      for (const id of ['#set-timezone', '#set-max_tx_amount', '#set-max_topup_amount', '#set-max_shift_topup', '#set-stale_after', '#set-qr_single_use']) {
        assert.equal(await page.isDisabled(id), true, id);
      }
      assert.equal(await page.isDisabled('#set-currency'), false);
      const puts = putsOf(page);
      await page.fill('#set-currency', 'NT');
      assert.equal(await saveAndRead(page), '已儲存。');
      assert.deepEqual(puts, [{ currency: 'NT' }]);
      await shot(page, `settings-manager-zh-Hant-${viewport.width}x${viewport.height}`);
    } finally {
      await page.context().close();
      await api('PUT', '/console/settings', { token: ownerToken, body: { currency: original.currency } });
    }
  });
}

test('no console errors or page errors in the settings tests', assertNoProblems);
