// Offline payment codes (mq2) for members' apps: the reference generator.
//
// Dependency-free ES module; needs only Web Crypto (browsers, Node 20+, Deno,
// React Native with a crypto.subtle polyfill). See README.md beside it.
//
//   const chain = await enrol({ slotSecs: 60, slots: 10080 });   // 7 days of 1-minute codes
//   // send chain.anchor, chain.slotSecs, chain.epoch, chain.slots to central
//   // (edge_enroll_offline_qr); keep chain.seed on the phone, never send it.
//   const text = await code(chain, cardId);                       // the QR text for now
//
// Format: mq2.<card id, 32 hex>.<chain id, 16 hex>.<slot j>.<v_j, base64url>, where
// v_j = SHA-256^(slots - j)(seed), the anchor = SHA-256^slots(seed), the chain id is
// the anchor's first 8 bytes in hex, and slot j starts at epoch + (j - 1) * slotSecs.

const subtle = globalThis.crypto && globalThis.crypto.subtle;

async function sha256(bytes) {
  return new Uint8Array(await subtle.digest('SHA-256', bytes));
}

async function hashN(bytes, n) {
  let v = bytes;
  for (let i = 0; i < n; i += 1) v = await sha256(v);
  return v;
}

export function toBase64Url(bytes) {
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export function fromBase64Url(text) {
  const bin = atob(text.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (text.length % 4)) % 4));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * A new chain. `seed` (32 bytes, base64url) only for tests: by default a fresh random
 * one. `epoch` defaults to now, rounded down to the slot.
 * Returns { seed, anchor, chainId, slotSecs, slots, epoch } — epoch as an ISO string.
 */
export async function enrol({ slotSecs = 60, slots = 10080, epochMs, seed } = {}) {
  if (!Number.isInteger(slotSecs) || slotSecs < 15 || slotSecs > 600) throw new RangeError('slotSecs: 15..600');
  if (!Number.isInteger(slots) || slots < 1 || slots * slotSecs > 14 * 86400) throw new RangeError('slots: at most 14 days');
  const s = seed ? fromBase64Url(seed) : globalThis.crypto.getRandomValues(new Uint8Array(32));
  if (s.length !== 32) throw new RangeError('seed: 32 bytes');
  const start = epochMs ?? Math.floor(Date.now() / (slotSecs * 1000)) * slotSecs * 1000;
  const anchor = await hashN(s, slots);
  return {
    seed: toBase64Url(s),
    anchor: toBase64Url(anchor),
    chainId: hex(anchor.subarray(0, 8)),
    slotSecs,
    slots,
    epoch: new Date(start).toISOString(),
  };
}

/** The slot of an instant (1 during the first slotSecs after the epoch). */
export function slotAt(chain, nowMs = Date.now()) {
  return Math.floor((nowMs - Date.parse(chain.epoch)) / (chain.slotSecs * 1000)) + 1;
}

/**
 * The QR text for `cardId` (a uuid) at `nowMs`. Throws when the chain has not started
 * or has run out (enrol a new one before that: `validUntil(chain)`).
 */
export async function code(chain, cardId, nowMs = Date.now()) {
  const j = slotAt(chain, nowMs);
  if (j < 1 || j > chain.slots) throw new RangeError('the chain does not cover this time; enrol a new one');
  const card = String(cardId).replace(/-/g, '').toLowerCase();
  if (!/^[0-9a-f]{32}$/.test(card)) throw new RangeError('cardId: a uuid');
  const v = await hashN(fromBase64Url(chain.seed), chain.slots - j);
  return `mq2.${card}.${chain.chainId}.${j}.${toBase64Url(v)}`;
}

/** When the chain's last slot ends. */
export function validUntil(chain) {
  return new Date(Date.parse(chain.epoch) + chain.slots * chain.slotSecs * 1000);
}
