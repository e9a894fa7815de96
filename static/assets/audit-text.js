// An audit entry in words: who did what to what, old → new. The sentence comes from the
// action's template in i18n.js (`audit_<action, dots as underscores>`); an action
// without one still reads "who: action", so a new server action never shows nothing.

import { t, money } from './i18n.js';

const FAMILIES = ['signin', 'staff', 'devices', 'payments', 'settlements', 'cards', 'shifts', 'settings', 'sync'];
export { FAMILIES as AUDIT_FAMILIES };

/** A settings value for people: amounts with two decimals, switches as yes/no. */
function settingValue(key, v) {
  if (v === null || v === undefined || v === '') return '—';
  if (key.startsWith('limits.') && key !== 'limits.stale_after_secs') return money(v);
  if (v === 'true' || v === true) return t('yes');
  if (v === 'false' || v === false) return t('no');
  return String(v);
}

function settingChanges(d) {
  const changed = Array.isArray(d.changed) ? d.changed : [];
  return changed.map((c) => t('audit_change', {
    field: t(`field_${c.key}`),
    old: settingValue(c.key, c.old),
    new: settingValue(c.key, c.new),
  })).join(t('list_sep'));
}

export function describeAudit(e) {
  const d = e.details && typeof e.details === 'object' ? e.details : {};
  const who = e.actor || t('audit_system');
  const key = `audit_${e.action.replace(/\./g, '_')}`;
  const params = {
    who,
    action: e.action,
    username: d.username || e.object_id || '—',
    role: d.role ? t(`role_${d.role}`) : '—',
    name: d.name || '—',
    card: d.card_no || '—',
    amount: d.final_amount !== undefined ? money(d.final_amount) : (d.amount !== undefined ? money(d.amount) : '—'),
    original: d.original_tx_no || '—',
    method: d.payment_method ? t(`topup_method_${d.payment_method}`) : '—',
    object: e.object_id || '—',
    total: d.total_amount !== undefined ? money(d.total_amount) : '—',
    count: d.tx_count ?? '—',
    note: d.note || d.reason || '—',
    changes: settingChanges(d),
  };
  const text = t(key, params);
  return text === key ? t('audit_unknown', params) : text;
}
