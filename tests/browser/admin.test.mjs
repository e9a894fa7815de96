// The owner's admin pages (issue 13, items 10 and 11): the audit log in words with a
// filter by kind of event; staff with a confirmation before disabling and the last
// sign-in; devices with the enrolment code as a QR on screen and a way to cancel a code.
// Both languages, desktop and phone widths. Run by scripts/browser-test.sh.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import {
  URL, api, bearer, posCharge, newPage, signIn, pageAs, shot, launch, closeBrowser, assertNoProblems, noHorizontalScroll, PHONE, DESKTOP, createUser,
} from './lib.mjs';

const OWNER = ['adm-owner', 'adm-owner-password-1'];

let ownerToken;

const page = (locale, viewport, label) => pageAs(OWNER, locale, viewport, label);


before(async () => {
  ({ ownerToken } = await launch());
  await createUser(OWNER, 'owner');
  // Something of every common kind in the log: a staff change and a settings change.
  const c = await api('POST', '/console/users', {
    token: ownerToken, body: { username: 'adm-clerk', password: 'adm-clerk-password-1', role: 'cashier' },
  });
  assert.equal(c.status, 200, c.text);
  const s = await api('PUT', '/console/settings', { token: ownerToken, body: { store_name: '稽核測試店' } });
  assert.equal(s.status, 200, s.text);
});

after(async () => {
  await api('PUT', '/console/settings', { token: ownerToken, body: { store_name: 'Demo Store' } });
  await closeBrowser();
});

const TEXT = {
  'zh-Hant': {
    created: /owner 新增帳號 adm-clerk（收銀員）/,
    settings: /變更設定：店名：.* → 稽核測試店/,
    never: '從未',
    disableConfirm: /停用 adm-clerk 後/,
    cancelled: '已取消「後台收銀機」的註冊碼。',
    idHeader: '裝置識別碼',
    locked: /^鎖定至 /,
    active: /^啟用$/,
  },
  en: {
    created: /owner created account adm-clerk \(Cashier\)/,
    settings: /changed settings: Store name: .* → 稽核測試店/,
    never: 'never',
    disableConfirm: /Disabling adm-clerk ends/,
    cancelled: 'The code for “後台收銀機” was cancelled.',
    idHeader: 'Device ID',
    locked: /^Locked until /,
    active: /^Active$/,
  },
};

for (const locale of ['zh-Hant', 'en']) {
  for (const viewport of [DESKTOP, PHONE]) {
    const size = `${viewport.width}x${viewport.height}`;
    test(`audit ${locale} ${size}: entries in words, filtered by kind of event`, async () => {
      const m = TEXT[locale];
      const p = await page(locale, viewport, `audit-${locale}-${size}`);
      try {
        await p.goto(`${URL}/console/audit?family=staff`);
        await p.waitForSelector('#audit-list table');
        assert.equal(await p.inputValue('#audit-family'), 'staff');
        const events = await p.locator('#audit-list td .event').allTextContents();
        assert.ok(events.some((e) => m.created.test(e)), events.join('\n'));
        const actions = await p.locator('#audit-list tbody tr').evaluateAll((rows) => rows.map((r) => r.dataset.action));
        assert.ok(actions.length > 0 && actions.every((a) => a.startsWith('user.')), actions.join(', '));
        // No raw codes or ids in the sentences.
        for (const e of events) assert.doesNotMatch(e, /user\.|[0-9a-f]{8}-[0-9a-f]{4}-/);
        await noHorizontalScroll(p);
        await shot(p, `audit-words-${locale}-${size}`);

        await p.selectOption('#audit-family', 'settings');
        await p.click('#audit-apply');
        await p.waitForFunction(() => [...document.querySelectorAll('#audit-list tbody tr')].every((r) => r.dataset.action === 'settings.update'));
        assert.match(await p.textContent('#audit-list'), m.settings);
        assert.equal(new globalThis.URL(p.url()).searchParams.get('family'), 'settings');
      } finally {
        await p.context().close();
      }
    });
  }
}

let clerkNeverSignedIn = true;
for (const locale of ['zh-Hant', 'en']) {
  for (const viewport of [DESKTOP, PHONE]) {
    const size = `${viewport.width}x${viewport.height}`;
    test(`staff ${locale} ${size}: disabling asks first, last sign-in shown`, async () => {
      const m = TEXT[locale];
      const p = await page(locale, viewport, `staff-${locale}-${size}`);
      try {
        await p.goto(`${URL}/console/staff`);
        await p.waitForSelector('#staff-list table');
        const row = p.locator('tr[data-user="adm-clerk"]');
        if (clerkNeverSignedIn) assert.match(await row.textContent(), new RegExp(m.never));
        clerkNeverSignedIn = false;
        await p.click('tr[data-user="adm-clerk"] button[data-action="disable"]');
        await p.waitForSelector('#confirm-dialog');
        assert.match(await p.textContent('#confirm-dialog'), m.disableConfirm);
        assert.equal(await p.evaluate(() => document.activeElement?.id), 'dlg-cancel');
        await p.click('#dlg-cancel');
        let users = (await api('GET', '/console/users', { token: ownerToken })).json.users;
        assert.equal(users.find((u) => u.username === 'adm-clerk').disabled, false, 'cancel keeps the account');
        await p.click('tr[data-user="adm-clerk"] button[data-action="disable"]');
        await p.click('#dlg-confirm');
        await p.waitForSelector('tr[data-user="adm-clerk"] button[data-action="enable"]');
        users = (await api('GET', '/console/users', { token: ownerToken })).json.users;
        assert.equal(users.find((u) => u.username === 'adm-clerk').disabled, true);
        // Enabling again needs no confirmation.
        await p.click('tr[data-user="adm-clerk"] button[data-action="enable"]');
        await p.waitForSelector('tr[data-user="adm-clerk"] button[data-action="disable"]');
        // A sign-in shows up as the last sign-in.
        await bearer('adm-clerk', 'adm-clerk-password-1');
        await p.reload();
        await p.waitForSelector('#staff-list table');
        assert.doesNotMatch(await p.locator('tr[data-user="adm-clerk"]').textContent(), new RegExp(m.never));
        await noHorizontalScroll(p, 'staff');
        await shot(p, `staff-${locale}-${size}`);
      } finally {
        await p.context().close();
      }
    });
  }
}

/** A sign-in attempt over HTTP from a chosen loopback address (127.0.0.x), as a till
 *  elsewhere in the store would make it; resolves to the status code. */
function loginFrom(localAddress, username, password) {
  const body = JSON.stringify({ username, password });
  const u = new globalThis.URL(`${URL}/api/v1/auth/login`);
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      host: u.hostname, port: u.port, path: u.pathname, method: 'POST', localAddress,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
    }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode)); });
    req.on('error', reject);
    req.end(body);
  });
}

let lockRound = 0;
for (const locale of ['zh-Hant', 'en']) {
  for (const viewport of [DESKTOP, PHONE]) {
    const size = `${viewport.width}x${viewport.height}`;
    test(`staff ${locale} ${size}: an account locked by guesses from several tills is shown locked and can be unlocked`, async () => {
      lockRound += 1;
      const who = `adm-lock-${lockRound}`;
      const made = await api('POST', '/console/users', {
        token: ownerToken, body: { username: who, password: 'adm-lock-password-1', role: 'cashier' },
      });
      assert.equal(made.status, 200, made.text);
      // 4 tills × 5 wrong passwords: each till stays under its own limit, the account
      // reaches its ceiling (20) and is locked.
      for (let till = 2; till <= 5; till += 1) {
        for (let i = 0; i < 5; i += 1) {
          assert.equal(await loginFrom(`127.0.0.${till}`, who, `wrong-${i}`), 401);
        }
      }
      const locked = (await api('GET', '/console/users', { token: ownerToken })).json.users.find((u) => u.username === who);
      assert.ok(locked.locked_until, JSON.stringify(locked));
      const p = await page(locale, viewport, `unlock-${locale}-${size}`);
      try {
        await p.goto(`${URL}/console/staff`);
        await p.waitForSelector(`tr[data-user="${who}"] button[data-action="unlock"]`);
        assert.match(await p.textContent(`tr[data-user="${who}"] .tag`), TEXT[locale].locked);
        await noHorizontalScroll(p, 'staff, locked');
        await shot(p, `staff-locked-${locale}-${size}`);
        await p.click(`tr[data-user="${who}"] button[data-action="unlock"]`);
        await p.waitForFunction((u) => !document.querySelector(`tr[data-user="${u}"] button[data-action="unlock"]`), who);
        assert.match(await p.textContent(`tr[data-user="${who}"] .tag`), TEXT[locale].active);
        const after = (await api('GET', '/console/users', { token: ownerToken })).json.users.find((u) => u.username === who);
        assert.equal(after.locked_until, null);
        // The cashier signs in again at once, even from a till that guessed.
        assert.equal(await loginFrom('127.0.0.6', who, 'adm-lock-password-1'), 200);
      } finally {
        await p.context().close();
      }
    });
  }
}

for (const locale of ['zh-Hant', 'en']) {
  for (const viewport of [DESKTOP, PHONE]) {
    const size = `${viewport.width}x${viewport.height}`;
    test(`devices ${locale} ${size}: the code as a QR on screen, and a code can be cancelled`, async () => {
      const m = TEXT[locale];
      const p = await page(locale, viewport, `devices-${locale}-${size}`);
      try {
        await p.goto(`${URL}/console/devices`);
        await p.waitForSelector('#dev-list table');
        await p.fill('#dev-name', '後台收銀機');
        await p.click('#dev-create');
        await p.waitForSelector('#dev-code-qr');
        const loaded = await p.$eval('#dev-code-qr', (img) => img.complete && img.naturalWidth > 0);
        assert.ok(loaded, 'the QR image rendered');
        const code = await p.textContent('#dev-code');
        assert.match(await p.getAttribute('#dev-code-qr', 'alt'), new RegExp(code));
        await noHorizontalScroll(p);
        await shot(p, `devices-qr-${locale}-${size}`);
        if (viewport === DESKTOP) {
          const headers = await p.locator('#dev-list th').allTextContents();
          assert.ok(headers.includes(m.idHeader), headers.join('|'));
          assert.ok(!headers.includes('ID'));
        }
        await p.click('tr[data-code="後台收銀機"] button[data-action="cancel-code"]');
        await p.click('#dlg-confirm');
        await p.waitForFunction((t) => document.querySelector('#dev-message')?.textContent === t, m.cancelled);
        await p.waitForFunction(() => !document.querySelector('tr[data-code="後台收銀機"]'));
        const r = await api('POST', '/devices/enroll', { body: { code } });
        assert.equal(r.status, 401, r.text);
      } finally {
        await p.context().close();
      }
    });
  }
}

for (const locale of ['zh-Hant', 'en']) {
  for (const viewport of [DESKTOP, PHONE]) {
    const size = `${viewport.width}x${viewport.height}`;
    test(`forms ${locale} ${size}: staff and device forms refuse what the server would, with its message, sending nothing`, async () => {
      const p = await page(locale, viewport, `forms-${locale}-${size}`);
      const posts = [];
      p.on('request', (req) => { if (req.method() === 'POST' && req.url().includes('/api/v1/console/')) posts.push(req.url()); });
      const msg = {
        'zh-Hant': { user: '帳號須為 1 至 64 個字元，且不可包含控制字元。', pw: '密碼須為 8 至 256 個字元，且不可包含控制字元。', dev: '裝置名稱須為 1 至 64 個字元，且不可包含控制字元。' },
        en: { user: 'The username must be 1–64 characters, without control characters.', pw: 'The password must be 8–256 characters, without control characters.', dev: 'The device name must be 1–64 characters, without control characters.' },
      }[locale];
      try {
        await p.goto(`${URL}/console/staff`);
        await p.waitForSelector('#staff-form');
        for (const [user, pw, text, focus] of [
          ['   ', 'long-enough-1', msg.user, 'new-username'],
          ['new-clerk', 'short', msg.pw, 'new-password'],
          ['new-clerk', 'p'.repeat(257), msg.pw, 'new-password'],
        ]) {
          await p.fill('#new-username', user);
          await p.fill('#new-password', pw);
          await p.click('#staff-create');
          assert.equal(await p.textContent('#staff-message'), text, `${user.length}/${pw.length}`);
          assert.equal(await p.evaluate(() => document.activeElement?.id), focus);
        }
        await p.goto(`${URL}/console/devices`);
        await p.waitForSelector('#dev-form');
        await p.fill('#dev-name', '  ');
        await p.click('#dev-create');
        assert.equal(await p.textContent('#dev-message'), msg.dev);
        assert.equal(await p.evaluate(() => document.activeElement?.id), 'dev-name');
        assert.deepEqual(posts, [], 'nothing was sent');
      } finally {
        await p.context().close();
      }
    });
  }
}

test('approval PIN: an owner sets it on the staff page, and a cashier refunds with it', async () => {
  const p = await page('zh-Hant', PHONE, 'pin');
  try {
    await p.goto(`${URL}/console/staff`);
    await p.waitForSelector('#pin-form');
    await p.fill('#pin-password', OWNER[1]);
    await p.fill('#pin-new', '12a4');
    await p.click('#pin-save');
    assert.equal(await p.textContent('#pin-message'), 'PIN 須為 4 至 8 位數字。');
    await p.fill('#pin-password', 'not-my-password');
    await p.fill('#pin-new', '8642');
    await p.click('#pin-save');
    await p.waitForFunction(() => document.querySelector('#pin-message')?.textContent === '密碼不正確。');
    assert.ok(await p.isVisible('#main'), 'a wrong password keeps the session');
    await p.fill('#pin-password', OWNER[1]);
    await p.fill('#pin-new', '8642');
    await p.click('#pin-save');
    await p.waitForFunction(() => document.querySelector('#pin-message')?.textContent === '已設定核准 PIN。');
    await noHorizontalScroll(p);
    await shot(p, 'staff-pin-zh-Hant-390x844');
  } finally {
    await p.context().close();
  }
  const clerk = await bearer('adm-clerk', 'adm-clerk-password-1');
  const tx = await posCharge('3.00');
  const body = { original_tx_no: tx.tx_no, refund_amount: '0.01' };
  assert.equal((await api('POST', '/merchant/refund', { token: clerk, body })).json.error.code, 'APPROVAL_REQUIRED');
  const ok = await api('POST', '/merchant/refund', { token: clerk, body: { ...body, approval: { username: OWNER[0], pin: '8642' } } });
  assert.equal(ok.status, 200, ok.text);
});

test('no console errors or page errors in the admin tests', assertNoProblems);
