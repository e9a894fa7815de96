// Staff, devices, audit log and settings.

import { get, post, put, query } from './api.js';
import { h, clear, field, select, messageBox, showMessage, table, confirmDialog } from './dom.js';
import { t, count, money, duration, dateTime, errorText, setTimeZone } from './i18n.js';
import { checkAmount, checkText, checkWhole, checkPassword, cents, problem, refuse } from './rules.js';
import { describeAudit, AUDIT_FAMILIES } from './audit-text.js';

// ---------------------------------------------------------------------------------------
// Staff
// ---------------------------------------------------------------------------------------

export async function staff(ctx) {
  const me = ctx.session.user;
  const msg = messageBox('staff-message');
  const roles = me.role === 'owner' ? ['cashier', 'manager', 'owner'] : ['cashier'];
  const username = h('input', { name: 'username', id: 'new-username', required: true, autocomplete: 'off', maxlength: 64 });
  const password = h('input', { name: 'password', id: 'new-password', type: 'password', required: true, autocomplete: 'new-password', minlength: 8 });
  const role = select('role', roles.map((r) => [r, t(`role_${r}`)]), 'cashier');
  role.id = 'new-role';
  const form = h('form', { class: 'form-grid panel', id: 'staff-form', novalidate: true },
    field(t('username'), username), field(t('password'), password), field(t('role'), role),
    h('div', { class: 'actions' }, h('button', { type: 'submit', id: 'staff-create' }, t('create'))));
  const list = h('div', { id: 'staff-list' });
  clear(ctx.main, h('h1', { text: t('staff_title') }), h('h2', { text: t('staff_create') }), form, msg, list, pinForm());

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    for (const c of form.querySelectorAll('[aria-invalid]')) c.removeAttribute('aria-invalid');
    const bad = [[username, checkText(username.value, 64, 'username')], [password, checkPassword(password.value)]]
      .find(([, err]) => err);
    if (bad) { refuse(msg, bad[0], bad[1], showMessage, errorText); return; }
    try {
      const r = await post('/console/users', { username: username.value.trim(), password: password.value, role: role.value });
      showMessage(msg, t('staff_created', { u: r.user.username }), 'ok');
      form.reset();
      await load();
    } catch (err) {
      showMessage(msg, errorText(err));
    }
  });

  const canManage = (target) => me.role === 'owner' || (me.role === 'manager' && target === 'cashier');

  async function setDisabled(u, disabled) {
    // Disabling ends the person's sign-ins at once: ask first. Enabling is harmless.
    if (disabled) {
      const ok = await confirmDialog(t('staff_disable_title'), t('staff_disable_confirm', { u: u.username }), t('disable'), t('cancel'), true);
      if (!ok) return;
    }
    try {
      await post(`/console/users/${encodeURIComponent(u.id)}/disable`, { disabled });
      showMessage(msg, t('staff_updated', { u: u.username }), 'ok');
      await load();
    } catch (err) {
      showMessage(msg, errorText(err));
    }
  }

  async function unlock(u) {
    try {
      await post(`/console/users/${encodeURIComponent(u.id)}/unlock`, {});
      showMessage(msg, t('staff_updated', { u: u.username }), 'ok');
      await load();
    } catch (err) {
      showMessage(msg, errorText(err));
    }
  }

  function resetDialog(u) {
    const pw = h('input', { type: 'password', id: 'reset-password-input', autocomplete: 'new-password', minlength: 8, required: true });
    const err = messageBox('reset-message');
    const dlg = h('dialog', { 'aria-labelledby': 'reset-title', id: 'reset-dialog' },
      h('h2', { id: 'reset-title' }, `${t('reset_password')}: ${u.username}`));
    const f = h('form', { method: 'dialog', novalidate: true }, field(t('new_password'), pw), err,
      h('div', { class: 'actions' },
        h('button', { type: 'submit', id: 'reset-confirm' }, t('save')),
        h('button', { type: 'button', class: 'secondary', onclick: () => { dlg.close(); dlg.remove(); } }, t('cancel'))));
    f.addEventListener('submit', async (e) => {
      e.preventDefault();
      const bad = checkPassword(pw.value);
      if (bad) { refuse(err, pw, bad, showMessage, errorText); return; }
      try {
        await post(`/console/users/${encodeURIComponent(u.id)}/reset-password`, { password: pw.value });
        dlg.close();
        dlg.remove();
        showMessage(msg, t('staff_updated', { u: u.username }), 'ok');
        await load();
      } catch (e2) {
        showMessage(err, errorText(e2));
      }
    });
    dlg.append(f);
    document.body.append(dlg);
    dlg.showModal();
  }

  async function load() {
    const d = await get('/console/users');
    clear(list, table([
      { label: t('col_username'), cell: (u) => `${u.username}${u.id === me.id ? t('you') : ''}` },
      { label: t('col_role'), cell: (u) => t(`role_${u.role}`) },
      {
        label: t('col_state'),
        cell: (u) => (u.disabled ? h('span', { class: 'tag disabled' }, t('state_disabled'))
          : u.locked_until ? h('span', { class: 'tag pending' }, t('state_locked', { t: dateTime(u.locked_until) }))
            : h('span', { class: 'tag completed' }, t('state_active'))),
      },
      { label: t('col_last_signin'), cell: (u) => (u.last_login_at ? dateTime(u.last_login_at) : t('never')) },
      { label: t('col_created'), cell: (u) => dateTime(u.created_at) },
      {
        label: '',
        cell: (u) => {
          // A lock can be lifted on one's own account too (the owner, locked by guesses
          // from elsewhere, still signs in from a clean address).
          const unlockButton = u.locked_until && canManage(u.role)
            ? h('button', { type: 'button', class: 'secondary', 'data-action': 'unlock', onclick: () => unlock(u) }, t('unlock'))
            : '';
          if (!canManage(u.role) || u.id === me.id) return h('div', { class: 'actions' }, unlockButton);
          return h('div', { class: 'actions' },
            unlockButton,
            h('button', { type: 'button', class: 'secondary', 'data-action': u.disabled ? 'enable' : 'disable', onclick: () => setDisabled(u, !u.disabled) }, u.disabled ? t('enable') : t('disable')),
            h('button', { type: 'button', class: 'secondary', 'data-action': 'reset', onclick: () => resetDialog(u) }, t('reset_password')));
        },
      },
    ], d.users.map((u) => ({ data: u, attrs: { 'data-user': u.username } })), t('no_rows')));
  }
  await load();
  return null;
}

/** The signed-in manager's or owner's own approval PIN (typed at a cashier's till). */
function pinForm() {
  const msg = messageBox('pin-message');
  const password = h('input', { type: 'password', id: 'pin-password', autocomplete: 'current-password' });
  const pin = h('input', { type: 'password', id: 'pin-new', inputmode: 'numeric', autocomplete: 'off', maxlength: 8 });
  const save = h('button', { type: 'submit', id: 'pin-save' }, t('save'));
  const form = h('form', { class: 'form-grid panel', id: 'pin-form', novalidate: true },
    h('p', { class: 'help wide' }, t('pin_help')),
    field(t('pin_password'), password), field(t('pin_new'), pin), h('div', { class: 'actions' }, save));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    for (const c of form.querySelectorAll('[aria-invalid]')) c.removeAttribute('aria-invalid');
    const bad = [[password, password.value ? null : problem('VALIDATION_ERROR', 'password')],
      [pin, /^[0-9]{4,8}$/.test(pin.value) ? null : problem('VALIDATION_ERROR', 'pin')]].find(([, err]) => err);
    if (bad) { refuse(msg, bad[0], bad[1], showMessage, errorText); return; }
    save.disabled = true;
    try {
      await put('/auth/pin', { password: password.value, pin: pin.value });
      form.reset();
      showMessage(msg, t('pin_saved'), 'ok');
    } catch (err) {
      showMessage(msg, errorText(err));
    } finally {
      save.disabled = false;
    }
  });
  return h('section', { id: 'pin-section' }, h('h2', { text: t('pin_title') }), form, msg);
}

// ---------------------------------------------------------------------------------------
// Devices
// ---------------------------------------------------------------------------------------

export async function devices(ctx) {
  const msg = messageBox('dev-message');
  const name = h('input', { name: 'name', id: 'dev-name', required: true, maxlength: 64 });
  const codeBox = h('div', { id: 'dev-code-box', 'aria-live': 'polite' });
  const form = h('form', { class: 'form-grid panel', id: 'dev-form', novalidate: true },
    field(t('dev_name'), name), h('div', { class: 'actions' }, h('button', { type: 'submit', id: 'dev-create' }, t('dev_code_create'))));
  const list = h('div', { id: 'dev-list' });
  const pending = h('div', { id: 'dev-pending' });
  clear(ctx.main, h('h1', { text: t('dev_title') }), form, codeBox, msg, list, h('h2', { text: t('dev_pending') }), pending);

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    name.removeAttribute('aria-invalid');
    const bad = checkText(name.value, 64, 'name');
    if (bad) { refuse(msg, name, bad, showMessage, errorText); return; }
    try {
      const r = await post('/console/devices/enrollment-codes', { name: name.value.trim() });
      clear(codeBox, h('section', { class: 'panel code-panel' },
        h('div', { class: 'muted' }, `${t('dev_code')} · ${r.name}`),
        h('img', {
          id: 'dev-code-qr', class: 'qr', width: 180, height: 180, alt: t('dev_code_qr_alt', { code: r.code }),
          src: `data:image/svg+xml;charset=utf-8,${encodeURIComponent(r.qr_svg)}`,
        }),
        h('div', { class: 'code-big', id: 'dev-code' }, r.code),
        h('p', { class: 'muted' }, t('dev_code_hint', { t: dateTime(r.expires_at) }))));
      form.reset();
      await load();
    } catch (err) {
      showMessage(msg, errorText(err));
    }
  });

  async function revoke(d) {
    const ok = await confirmDialog(t('dev_revoke'), t('dev_revoke_confirm', { name: d.name }), t('dev_revoke'), t('cancel'), true);
    if (!ok) return;
    try {
      await post(`/console/devices/${encodeURIComponent(d.id)}/revoke`);
      await load();
    } catch (err) {
      showMessage(msg, errorText(err));
    }
  }

  async function cancelCode(x) {
    const ok = await confirmDialog(t('dev_code_cancel'), t('dev_code_cancel_confirm', { name: x.name }), t('dev_code_cancel'), t('cancel'), true);
    if (!ok) return;
    try {
      await post(`/console/devices/enrollment-codes/${x.id}/cancel`);
      showMessage(msg, t('dev_code_cancelled', { name: x.name }), 'ok');
      clear(codeBox);
      await load();
    } catch (err) {
      showMessage(msg, errorText(err));
    }
  }

  async function load() {
    const d = await get('/console/devices');
    clear(list, table([
      { label: t('dev_name'), cell: (x) => x.name },
      { label: t('col_state'), cell: (x) => (x.revoked_at ? h('span', { class: 'tag revoked' }, t('dev_revoked')) : h('span', { class: 'tag completed' }, t('dev_active'))) },
      { label: t('col_created'), cell: (x) => `${dateTime(x.created_at)} · ${x.created_by || ''}` },
      { label: t('col_last_login'), cell: (x) => dateTime(x.last_login_at) },
      { label: t('col_device_id'), cell: (x) => h('code', {}, x.id) },
      { label: '', cell: (x) => (x.revoked_at ? '' : h('button', { type: 'button', class: 'danger', 'data-action': 'revoke', onclick: () => revoke(x) }, t('dev_revoke'))) },
    ], d.devices.map((x) => ({ data: x, attrs: { 'data-device': x.name, 'data-device-id': x.id } })), t('no_rows')));
    clear(pending, table([
      { label: t('dev_name'), cell: (x) => x.name },
      { label: t('col_created'), cell: (x) => `${dateTime(x.created_at)} · ${x.created_by || ''}` },
      { label: t('col_expires'), cell: (x) => dateTime(x.expires_at) },
      { label: '', cell: (x) => h('button', { type: 'button', class: 'secondary', 'data-action': 'cancel-code', onclick: () => cancelCode(x) }, t('dev_code_cancel')) },
    ], d.pending_codes.map((x) => ({ data: x, attrs: { 'data-code': x.name } })), t('no_rows')));
  }
  await load();
  return null;
}

// ---------------------------------------------------------------------------------------
// Audit log
// ---------------------------------------------------------------------------------------

export async function audit(ctx) {
  const msg = messageBox('audit-message');
  const params = new URLSearchParams(location.search);
  const family = select('family', [['', t('any')], ...AUDIT_FAMILIES.map((f) => [f, t(`family_${f}`)])], params.get('family') || '');
  family.id = 'audit-family';
  const f = {
    family,
    actor: h('input', { name: 'actor', id: 'audit-actor', value: params.get('actor') || '', autocomplete: 'off' }),
    from: h('input', { name: 'from', id: 'audit-from', type: 'date', value: params.get('from') || '' }),
    to: h('input', { name: 'to', id: 'audit-to', type: 'date', value: params.get('to') || '' }),
  };
  let offset = 0;
  const limit = 50;
  const apply = h('button', { type: 'submit', id: 'audit-apply' }, t('apply'));
  const form = h('form', { class: 'filters panel', id: 'audit-filters', novalidate: true },
    field(t('audit_family'), f.family), field(t('audit_actor'), f.actor), field(t('audit_from'), f.from), field(t('audit_to'), f.to),
    h('div', { class: 'actions' }, apply));
  const list = h('div', { id: 'audit-list' });
  const pager = h('div', { class: 'pager' });
  clear(ctx.main, h('h1', { text: t('audit_title') }), form, msg, list, pager);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    if (f.from.value && f.to.value && f.to.value < f.from.value) {
      showMessage(msg, errorText(problem('PERIOD_INVALID', 'end_date')));
      f.to.focus();
      return;
    }
    offset = 0;
    load();
  });

  async function load() {
    const filters = { family: f.family.value, actor: f.actor.value.trim(), from: f.from.value, to: f.to.value };
    history.replaceState({}, '', `/console/audit${query(filters)}`);
    apply.disabled = true;
    try {
      const d = await get(`/console/audit${query({ ...filters, limit, offset })}`);
      showMessage(msg, '', 'ok');
      clear(list, table([
        { label: t('col_at'), cell: (r) => dateTime(r.at) },
        { label: t('col_event'), cell: (r) => h('span', { class: 'event' }, describeAudit(r)) },
        { label: t('col_from'), cell: (r) => [r.ip, r.device_id ? t('audit_terminal') : null].filter(Boolean).join(' · ') || '—' },
        { label: t('audit_raw'), cell: (r) => h('details', {}, h('summary', {}, h('code', {}, r.action)), h('pre', {}, JSON.stringify({ object: r.object_type ? `${r.object_type} ${r.object_id || ''}` : null, ...r.details }, null, 1))) },
      ], d.entries.map((r) => ({ data: r, attrs: { 'data-action': r.action } })), t('no_rows')));
      const p = d.pagination;
      clear(pager,
        h('button', { type: 'button', class: 'secondary', disabled: !p.has_prev, onclick: () => { offset = Math.max(0, offset - limit); load(); } }, t('prev')),
        h('span', { class: 'muted' }, t('page_of', { page: p.current_page, pages: Math.max(1, p.total_pages), total: count(p.total_count) })),
        h('button', { type: 'button', class: 'secondary', disabled: !p.has_next, onclick: () => { offset += limit; load(); } }, t('next')));
    } catch (err) {
      showMessage(msg, errorText(err));
    } finally {
      apply.disabled = false;
    }
  }
  await load();
  return null;
}

// ---------------------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------------------

/** The counter top-up limits (the `limits` keys of their own fieldset). */
const TOPUP_LIMIT_KEYS = ['max_topup_amount', 'max_card_unsynced_topup', 'max_shift_topup', 'max_site_unsynced_topup'];
const LIMIT_KEYS = ['max_tx_amount', 'max_card_unsynced', 'max_site_unsynced', 'stale_max_tx_amount', ...TOPUP_LIMIT_KEYS];
/** The form control of a settings key the server names in an error. */
const CONTROL_OF = {
  'site.name': 'store_name', 'site.currency': 'currency', 'site.timezone': 'timezone',
  'qr.single_use': 'qr_single_use', 'limits.stale_after_secs': 'stale_after',
};
const UNIT_SECS = { seconds: 1, minutes: 60, hours: 3600 };

/** The stale threshold in the largest whole unit (seconds only when nothing else is exact). */
function staleUnit(secs) {
  if (secs >= 3600 && secs % 3600 === 0) return 'hours';
  if (secs % 60 === 0) return 'minutes';
  return 'seconds';
}

/** A control with its label and help text (aria-describedby), as one grid cell. */
function helped(id, label, control, help, input = control) {
  input.setAttribute('aria-describedby', `${id}-help`);
  return h('div', { class: 'field' },
    h('label', { for: input.id }, label),
    control,
    h('p', { class: 'help', id: `${id}-help` }, help));
}

export async function settings(ctx) {
  const msg = messageBox('settings-message');
  const d = await get('/console/settings');
  const s = d.settings;
  const cur = () => ctx.session.store.currency || s.currency;
  const amount = (name, v) => h('input', { name, id: `set-${name}`, inputmode: 'decimal', required: true, autocomplete: 'off', value: Number(v).toFixed(2) });
  const unit = staleUnit(s.limits.stale_after_secs);
  const zones = typeof Intl.supportedValuesOf === 'function' ? Intl.supportedValuesOf('timeZone') : [];
  if (!zones.includes(s.timezone)) zones.unshift(s.timezone);
  const f = {
    store_name: h('input', { name: 'store_name', id: 'set-store_name', required: true, maxlength: 100, value: s.store_name }),
    currency: h('input', { name: 'currency', id: 'set-currency', required: true, maxlength: 8, size: 8, value: s.currency }),
    timezone: h('select', { name: 'timezone', id: 'set-timezone' }, zones.map((z) => h('option', { value: z, selected: z === s.timezone }, z))),
    qr_single_use: h('input', { type: 'checkbox', name: 'qr_single_use', id: 'set-qr_single_use', checked: s.qr_single_use }),
    max_tx_amount: amount('max_tx_amount', s.limits.max_tx_amount),
    max_card_unsynced: amount('max_card_unsynced', s.limits.max_card_unsynced),
    max_site_unsynced: amount('max_site_unsynced', s.limits.max_site_unsynced),
    stale_after: h('input', { name: 'stale_after', id: 'set-stale_after', inputmode: 'numeric', required: true, autocomplete: 'off', value: String(s.limits.stale_after_secs / UNIT_SECS[unit]) }),
    stale_unit: h('select', { name: 'stale_unit', id: 'set-stale_unit', 'aria-label': t('set_stale_unit') },
      Object.keys(UNIT_SECS).map((u) => h('option', { value: u, selected: u === unit }, t(`unit_${u}`)))),
    stale_max_tx_amount: amount('stale_max_tx_amount', s.limits.stale_max_tx_amount),
    ...Object.fromEntries(TOPUP_LIMIT_KEYS.map((k) => [k, amount(k, s.limits[k])])),
  };
  // The limits, the single-use rule and the time zone are the owner's (the server
  // refuses a manager's change with 403); a manager sees them, disabled.
  const ownerOnly = ctx.session.user.role !== 'owner';
  if (ownerOnly) {
    for (const k of ['timezone', 'qr_single_use', ...LIMIT_KEYS, 'stale_after', 'stale_unit']) f[k].disabled = true;
  }
  const ceil = d.ceilings;
  const limitHelp = (key) => t(`help_${key}`, { max: `${cur()} ${money(ceil[key])}` });
  const staleHelp = ceil.stale_after_secs > 0
    ? t('help_stale_after_max', { max: duration(ceil.stale_after_secs) }) : t('help_stale_after');
  const store = h('fieldset', { class: 'form-grid panel' },
    h('legend', { text: t('set_store_section') }),
    helped('set-store_name', t('set_store_name'), f.store_name, t('help_store_name')),
    helped('set-currency', t('set_currency'), f.currency, t('help_currency')),
    helped('set-timezone', t('set_timezone_label'), f.timezone, t('help_timezone')));
  const limits = h('fieldset', { class: 'form-grid panel' },
    h('legend', { text: t('set_limits_section', { currency: cur() }) }),
    h('p', { class: 'muted wide', id: 'settings-owner-only' }, t(ownerOnly ? 'set_owner_only' : 'set_ceilings')),
    helped('set-max_tx_amount', t('set_max_tx'), f.max_tx_amount, limitHelp('max_tx_amount')),
    helped('set-max_card_unsynced', t('set_max_card'), f.max_card_unsynced, limitHelp('max_card_unsynced')),
    helped('set-max_site_unsynced', t('set_max_site'), f.max_site_unsynced, limitHelp('max_site_unsynced')),
    helped('set-stale_after', t('set_stale_after'), h('span', { class: 'with-unit' }, f.stale_after, f.stale_unit), staleHelp, f.stale_after),
    helped('set-stale_max_tx_amount', t('set_stale_max'), f.stale_max_tx_amount, limitHelp('stale_max_tx_amount')),
    h('div', { class: 'field wide' },
      h('label', { class: 'inline' }, f.qr_single_use, t('set_single_use')),
      h('p', { class: 'help' }, t('help_single_use'))));
  const topupLabels = {
    max_topup_amount: 'set_max_topup', max_card_unsynced_topup: 'set_max_card_topup',
    max_shift_topup: 'set_max_shift_topup', max_site_unsynced_topup: 'set_max_site_topup',
  };
  const topups = h('fieldset', { class: 'form-grid panel', id: 'settings-topup-limits' },
    h('legend', { text: t('set_topup_section', { currency: cur() }) }),
    TOPUP_LIMIT_KEYS.map((k) => helped(`set-${k}`, t(topupLabels[k]), f[k], limitHelp(k))));
  const save = h('button', { type: 'submit', id: 'settings-save' }, t('save'));
  const form = h('form', { id: 'settings-form', novalidate: true }, store, limits, topups, h('div', { class: 'actions' }, save));
  const overriddenText = (keys) => (keys.length
    ? t('set_overridden', { keys: keys.map((k) => t(`field_${k}`)).join('、') }) : '');
  const note = h('p', { class: 'muted', id: 'settings-overridden' }, overriddenText(d.overridden));
  clear(ctx.main, h('h1', { text: t('settings_title') }), form, msg, note);

  /** The form's values as the server wants them, or the first problem (same rules). */
  function collect() {
    const secs = Number(f.stale_after.value.trim()) * UNIT_SECS[f.stale_unit.value];
    const checks = [
      [f.store_name, checkText(f.store_name.value, 100, 'site.name')],
      [f.currency, checkText(f.currency.value, 8, 'site.currency')],
      ...LIMIT_KEYS.map((k) => [f[k], checkAmount(f[k].value, `limits.${k}`)
        || (cents(f[k].value) > cents(ceil[k]) ? problem('LIMIT_ABOVE_CEILING', `limits.${k}`) : null)]),
      [f.stale_after, checkWhole(f.stale_after.value, 0, 1e9, 'limits.stale_after_secs')
        || (ceil.stale_after_secs > 0 && (secs === 0 || secs > ceil.stale_after_secs)
          ? problem('LIMIT_ABOVE_CEILING', 'limits.stale_after_secs') : null)],
    ];
    for (const [control, err] of checks) {
      if (err && !control.disabled) return { control, err };
    }
    // Only what changed: a value sent is a value the console overrides from then on.
    const body = {};
    const changed = (key, value, was) => { if (value !== was) body[key] = value; };
    changed('store_name', f.store_name.value.trim(), s.store_name);
    changed('currency', f.currency.value.trim(), s.currency);
    if (!ownerOnly) {
      changed('timezone', f.timezone.value, s.timezone);
      changed('qr_single_use', f.qr_single_use.checked, s.qr_single_use);
      const limits = {};
      for (const k of LIMIT_KEYS) {
        if (cents(f[k].value) !== cents(s.limits[k])) limits[k] = f[k].value.trim();
      }
      if (secs !== s.limits.stale_after_secs) limits.stale_after_secs = secs;
      if (Object.keys(limits).length) body.limits = limits;
    }
    return { body };
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const { control, err, body } = collect();
    if (err) {
      showMessage(msg, errorText(err));
      control.setAttribute('aria-invalid', 'true');
      control.focus();
      return;
    }
    for (const c of form.querySelectorAll('[aria-invalid]')) c.removeAttribute('aria-invalid');
    if (!Object.keys(body).length) {
      showMessage(msg, t('set_nothing_changed'), 'ok');
      return;
    }
    save.disabled = true;
    try {
      const r = await put('/console/settings', body);
      Object.assign(s, r.settings);
      showMessage(msg, t('saved'), 'ok');
      Object.assign(ctx.session.store, { name: r.settings.store_name, currency: r.settings.currency, timezone: r.settings.timezone });
      setTimeZone(r.settings.timezone);
      const name = document.getElementById('store-name');
      if (name) name.textContent = r.settings.store_name;
      note.textContent = overriddenText(r.overridden);
    } catch (err2) {
      showMessage(msg, errorText(err2));
      const field = err2.details?.field || '';
      const control = f[CONTROL_OF[field] || field.split('.').pop()];
      if (control && !control.disabled) control.focus();
    } finally {
      save.disabled = false;
    }
  });
  return null;
}
