// Shared helpers of the console's browser tests (tests/browser/*.test.mjs).
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

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const URL = process.env.MPS_URL;
export const OWNER_PW = process.env.MPS_OWNER_PASSWORD;
export const BIN = process.env.MPS_BIN;
export const DATA = process.env.MPS_DATA_DIR;
if (!URL || !OWNER_PW || !BIN || !DATA) throw new Error('run through scripts/browser-test.sh');

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const SHOTS = path.join(ROOT, 'target', 'console-screenshots');
mkdirSync(SHOTS, { recursive: true });

export const DESKTOP = { width: 1280, height: 800 };
export const TABLET = { width: 768, height: 1024 };
export const PHONE = { width: 390, height: 844 };

let browser;
let ownerToken;

/** Creates a console account `[username, password]` with `role`, as the owner. */
export async function createUser([username, password], role, token = ownerToken) {
  const r = await api('POST', '/console/users', { token, body: { username, password, role } });
  assert.equal(r.status, 200, r.text);
}

/** Starts headless Chromium and signs the owner in over the API; call in `before`. */
export async function launch() {
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  ownerToken = await bearer('owner', OWNER_PW);
  return { browser, ownerToken };
}

export async function closeBrowser() {
  if (browser) await browser.close();
}

/** The owner's bearer token (after `launch`). */
export function ownerBearer() {
  return ownerToken;
}

/** Fails the file if any page logged an error (call last in each file). */
export function assertNoProblems() {
  if (tolerated.length) console.log(`tolerated (expected API refusals):\n  ${tolerated.join('\n  ')}`);
  assert.deepEqual(problems, []);
}
export const problems = [];
export const tolerated = [];

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

export async function api(method, p, { token, body, base = URL } = {}) {
  const headers = { accept: 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${base}/api/v1${p}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, json, text };
}

export async function bearer(username, password, extra = {}, base = URL) {
  const r = await api('POST', '/auth/login', { base, body: { username, password, ...extra } });
  assert.equal(r.status, 200, r.text);
  return r.json.access_token;
}

/** A live QR token, issued exactly as central would, by the CLI. */
export function demoQr(card) {
  const args = ['--data-dir', DATA, 'demo', 'qr', '--json', ...(card ? ['--card', card] : [])];
  const out = execFileSync(BIN, args, { encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').pop()).qr_plain;
}

/** A charge through the POS API with a bearer token (on the first demo card, or `card`). */
export async function posCharge(amount, card) {
  const r = await api('POST', '/merchant/charge', {
    token: ownerToken, body: { qr_plain: demoQr(card), amount, idempotency_key: `e2e-${randomUUID()}` },
  });
  assert.equal(r.status, 200, r.text);
  return r.json.transaction;
}

export function watch(page, label) {
  page.on('console', (m) => {
    if (m.type() !== 'error' && m.type() !== 'warning') return;
    const text = m.text();
    const loc = m.location()?.url || '';
    const status = Number((/status of (\d{3})/.exec(text) || [])[1]);
    // Pages labelled "unreachable…" cut the network on purpose.
    const expected = (text.startsWith('Failed to load resource') && status >= 400 && status < 500)
      || (label.startsWith('unreachable') && /net::ERR_/.test(text));
    if (expected) tolerated.push(`${label}: ${text} ${loc}`);
    else if (m.type() === 'error') problems.push(`${label} console error: ${text} ${loc}`);
  });
  page.on('pageerror', (e) => problems.push(`${label} page error: ${e.message}`));
  return page;
}

export async function newPage(label, viewport = DESKTOP) {
  const context = await browser.newContext({ viewport, acceptDownloads: true, locale: 'zh-TW' });
  return watch(await context.newPage(), label);
}

/** A new page (at `viewport`) with `who` = [username, password] signed in, in `locale`
 *  (stored as the person's preference first, as the console keeps it). */
export async function pageAs(who, locale, viewport, label) {
  const token = await bearer(...who);
  const r = await api('PUT', '/console/me', { token, body: { locale } });
  assert.equal(r.status, 200, r.text);
  const p = await newPage(label, viewport);
  await signIn(p, ...who);
  return p;
}

export async function signIn(page, username, password, base = URL) {
  await page.goto(`${base}/console/`);
  await page.waitForSelector('#login-form');
  await page.fill('#username', username);
  await page.fill('#password', password);
  await page.click('#login-submit');
  await page.waitForSelector('#main');
}

/** Clicks "sign in" and waits for the answer to be shown. */
export async function submitLogin(page) {
  await Promise.all([
    page.waitForResponse((r) => r.url().endsWith('/api/v1/console/login')),
    page.click('#login-submit'),
  ]);
  await page.waitForFunction(() => document.querySelector('#login-submit')?.disabled === false);
}

export async function shot(page, name) {
  await page.waitForTimeout(150);
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: false });
}

export const READY = {
  dashboard: '#sum-payment_amount',
  transactions: '#tx-list table',
  settlements: '#stl-list table',
  cards: '#card-form',
  shifts: '#shift-list table',
  sync: '#sync-status dl',
  staff: '#staff-list table',
  devices: '#dev-list table',
  audit: '#audit-list table',
  settings: '#settings-form',
};

export async function open(page, where) {
  await page.goto(`${URL}/console/${where}`);
  const key = where.split('/')[0].split('?')[0];
  await page.waitForSelector(READY[key] || '#main h1');
}


/** Fails when the page is wider than its window (it would scroll sideways), naming the
 *  first elements that stick out. */
export async function noHorizontalScroll(p, where = '') {
  const [scroll, width, wide] = await p.evaluate(() => [
    document.documentElement.scrollWidth, window.innerWidth,
    [...document.querySelectorAll('body *')].filter((e) => e.getBoundingClientRect().right > window.innerWidth + 0.5)
      .slice(0, 5).map((e) => `${e.tagName}#${e.id}.${e.className}`),
  ]);
  assert.ok(scroll <= width, `${where} ${scroll}px wide in a ${width}px window: ${wide.join(', ')}`);
}
