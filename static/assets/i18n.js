// Texts in Traditional Chinese (default) and English, and locale-aware formatting with
// the Intl APIs in the store's time zone.

const zh = {
  app_title: 'mps-edge 主控台',
  lang_switch: 'English',
  lang_switch_label: '切換語言',
  sign_in: '登入', username: '帳號', password: '密碼', signing_in: '登入中…',
  sign_out: '登出', sign_out_all: '登出所有裝置',
  sign_out_all_confirm: '這會結束您在所有裝置上的主控台與 POS 登入。確定嗎？',
  nav_dashboard: '總覽', nav_transactions: '交易', nav_settlements: '結算', nav_sync: '同步',
  nav_staff: '人員', nav_devices: '裝置', nav_audit: '稽核紀錄', nav_settings: '設定',
  role_owner: '店主', role_manager: '主管', role_cashier: '收銀員',
  banner_standalone: '單機示範模式 — 未連線中央',
  banner_online: '已與中央連線',
  banner_offline: '離線 — 目前無法連線中央，交易照常進行並排隊等候同步',
  banner_unknown: '尚未與中央同步',
  banner_problem: '同步需要處理 — 交易照常進行，但作業無法送達中央或資料無法更新',
  banner_waiting: '{n} 筆作業等候同步',
  banner_oldest: '最舊的已等候 {age}',
  banner_none_waiting: '沒有等候同步的作業',
  refused_title: '需要主管權限',
  refused_body: '您的角色（{role}）無法開啟此頁面。',
  not_found: '找不到此頁面。',
  loading: '載入中…',
  dash_title: '今日總覽', dash_sales: '今日銷售', dash_refunds: '退款', dash_net: '淨額',
  dash_count: '交易筆數', dash_cards: '不重複卡片', dash_avg: '平均客單', dash_exceptions: '未處理例外',
  dash_by_hour: '每小時銷售', dash_live: '即時更新中', dash_date: '日期 {date}（{tz}）',
  chart_sales: '銷售', chart_refunds: '退款',
  tx_title: '交易', tx_start: '開始日期', tx_end: '結束日期', tx_type: '類型', tx_status: '狀態',
  tx_card: '卡號', tx_min: '最低金額', tx_max: '最高金額', tx_sync: '同步狀態', any: '全部',
  type_payment: '付款', type_refund: '退款', status_completed: '完成', status_refunded: '已退款',
  sync_pending: '待同步', sync_applied: '已同步', sync_exception: '例外',
  apply: '套用', reset: '清除', export_csv: '匯出 CSV',
  col_tx_no: '交易編號', col_time: '時間', col_type: '類型', col_card: '卡號', col_amount: '金額',
  col_status: '狀態', col_sync: '同步', col_operator: '操作人員', col_raw: '原價', col_discount: '折扣',
  col_final: '實付', col_points: '點數', col_refunded: '已退', col_remaining: '可退餘額',
  col_reason: '原因', col_original: '原交易', col_device: '裝置',
  page_of: '第 {page} / {pages} 頁，共 {total} 筆', prev: '上一頁', next: '下一頁', no_rows: '沒有資料。',
  detail_title: '交易 {tx}', back: '返回', refunds_of: '退款紀錄',
  refund_title: '退款', refund_amount: '退款金額', refund_reason: '原因（選填）', refund_submit: '退款…',
  refund_confirm_title: '確認退款', refund_confirm: '確定要從 {tx} 退款 {amount} 嗎？此動作無法復原。',
  confirm: '確定', cancel: '取消', refund_done: '已退款 {amount}（{tx}）。',
  not_refundable: '此交易已無可退金額。',
  stl_title: '結算', stl_mode: '模式', mode_realtime: '即時', mode_t_plus_1: 'T+1', mode_monthly: '月結',
  stl_start: '期間開始', stl_end: '期間結束（含當日）', stl_generate: '產生結算',
  stl_done: '已產生結算 {no}。', col_stl_no: '結算編號', col_period: '期間', col_payments: '付款',
  col_refunds: '退款', col_total: '結算金額', col_count: '筆數', col_created: '建立時間',
  sync_title: '同步', sync_now: '立即同步', sync_done: '同步完成。', sync_status: '狀態',
  sync_mode: '模式', sync_queue: '等候作業', sync_oldest: '最舊等候', sync_last_push: '上次上傳',
  sync_last_pull: '上次下載', sync_last_error: '最近錯誤', sync_exceptions: '同步例外',
  sync_replica_age: '資料更新於', sync_heartbeat: '總部最後收到回報', sync_clock_skew: '時鐘偏差 {s} 秒',
  sync_no_exceptions: '沒有未處理的例外。', col_reason_central: '原因', resolve_note: '處理說明',
  resolve: '標記已處理', resolved: '已處理。', never: '從未', mode_standalone: '單機', mode_central: '中央',
  staff_title: '人員', staff_create: '新增人員', role: '角色', create: '新增', col_username: '帳號',
  col_role: '角色', col_state: '狀態', state_active: '啟用', state_disabled: '停用', state_locked: '鎖定至 {t}',
  disable: '停用', enable: '啟用', unlock: '解除鎖定', reset_password: '重設密碼', new_password: '新密碼',
  staff_created: '已新增 {u}。', staff_updated: '已更新 {u}。', you: '（您）',
  dev_title: '裝置', dev_name: '裝置名稱', dev_code_create: '產生註冊碼', dev_code: '註冊碼',
  dev_code_hint: '在 POS 上輸入此註冊碼，{t} 前有效，只能使用一次。', dev_revoke: '撤銷',
  dev_revoke_confirm: '撤銷「{name}」後，此裝置的所有登入立即失效。確定嗎？', dev_revoked: '已撤銷',
  dev_active: '使用中', col_last_login: '最近登入', dev_pending: '尚未使用的註冊碼', col_expires: '到期',
  audit_title: '稽核紀錄', audit_action: '動作', audit_actor: '操作者', audit_from: '從', audit_to: '到',
  col_at: '時間', col_action: '動作', col_actor: '操作者', col_object: '對象', col_from: '來源', col_details: '內容',
  settings_title: '設定', set_store_name: '店名', set_single_use: 'QR 碼僅能使用一次',
  set_max_tx: '單筆上限（輸入金額，折扣前）', set_max_card: '每卡未同步上限', set_max_site: '全店未同步上限',
  set_stale_after: '資料過舊門檻（秒）', set_stale_max: '資料過舊時單筆上限', save: '儲存', saved: '已儲存。',
  set_overridden: '主控台已覆寫：{keys}',
  set_owner_only: '限額與「QR 碼僅能使用一次」只有店主能變更。',
  set_ceilings: '限額不能高於安裝設定檔 [limit_ceilings] 的上限（未設定時即為設定檔中的限額）。',
  set_timezone: '日期與時間以門市時區 {tz} 顯示（時區在設定檔中設定）。',
  live_tx: '新交易 {tx}：{amount}', live_refund: '新退款 {tx}：{amount}',
  csrf_refused: '請求被拒絕（CSRF）。',
  secs: '{n} 秒', mins: '{n} 分鐘', hours: '{n} 小時', days: '{n} 天',
  err_LOGIN_LOCKED: '此裝置登入失敗次數過多，請於 {minutes} 分鐘後再試，或請店主解除鎖定。',
  err_INVALID_CREDENTIALS: '帳號或密碼錯誤。',
  err_PERMISSION_DENIED: '您的角色沒有權限執行此動作。',
  err_CSRF_TOKEN_INVALID: '請求缺少有效的 CSRF 權杖，已被拒絕。',
  err_SETTLEMENT_OVERLAP: '期間與既有結算 {no} 重疊，無法產生。',
  err_REFUND_EXCEEDS_REMAINING: '退款金額超過可退餘額。',
  err_NOT_AUTHENTICATED: '請重新登入。',
  err_SERVICE_UNAVAILABLE: '服務暫時無法使用：{message}',
  err_NO_CENTRAL: '此門市以獨立模式執行，未設定中央系統，無法同步。',
  err_QR_CHAIN_REVOKED: '會員的離線付款碼已停用（手機遺失？），請會員連線後重新產生付款碼。',
  err_QR_CLOCK_SKEW: '離線付款碼的時間與本店時鐘不符，請檢查手機與本店的時間設定。',
  err_network: '無法連線伺服器，請稍後再試。',
};

const en = {
  app_title: 'mps-edge console',
  lang_switch: '中文',
  lang_switch_label: 'Switch language',
  sign_in: 'Sign in', username: 'Username', password: 'Password', signing_in: 'Signing in…',
  sign_out: 'Sign out', sign_out_all: 'Sign out everywhere',
  sign_out_all_confirm: 'This ends your console and POS sessions on every device. Continue?',
  nav_dashboard: 'Dashboard', nav_transactions: 'Transactions', nav_settlements: 'Settlements', nav_sync: 'Sync',
  nav_staff: 'Staff', nav_devices: 'Devices', nav_audit: 'Audit log', nav_settings: 'Settings',
  role_owner: 'Owner', role_manager: 'Manager', role_cashier: 'Cashier',
  banner_standalone: 'Standalone demo mode — no central',
  banner_online: 'Online with central',
  banner_offline: 'Offline — central cannot be reached; sales continue and queue for sync',
  banner_unknown: 'Not yet synced with central',
  banner_problem: 'Sync needs attention — sales continue, but operations cannot reach central or data cannot be refreshed',
  banner_waiting: '{n} operation(s) waiting to sync',
  banner_oldest: 'oldest waiting {age}',
  banner_none_waiting: 'nothing waiting to sync',
  refused_title: 'Manager access required',
  refused_body: 'Your role ({role}) cannot open this page.',
  not_found: 'This page does not exist.',
  loading: 'Loading…',
  dash_title: 'Today', dash_sales: 'Sales today', dash_refunds: 'Refunds', dash_net: 'Net',
  dash_count: 'Transactions', dash_cards: 'Unique cards', dash_avg: 'Average ticket', dash_exceptions: 'Open exceptions',
  dash_by_hour: 'Sales by hour', dash_live: 'Live', dash_date: 'Date {date} ({tz})',
  chart_sales: 'Sales', chart_refunds: 'Refunds',
  tx_title: 'Transactions', tx_start: 'From date', tx_end: 'To date', tx_type: 'Type', tx_status: 'Status',
  tx_card: 'Card number', tx_min: 'Min amount', tx_max: 'Max amount', tx_sync: 'Sync state', any: 'Any',
  type_payment: 'Payment', type_refund: 'Refund', status_completed: 'Completed', status_refunded: 'Refunded',
  sync_pending: 'Pending', sync_applied: 'Synced', sync_exception: 'Exception',
  apply: 'Apply', reset: 'Clear', export_csv: 'Export CSV',
  col_tx_no: 'Transaction', col_time: 'Time', col_type: 'Type', col_card: 'Card', col_amount: 'Amount',
  col_status: 'Status', col_sync: 'Sync', col_operator: 'Operator', col_raw: 'Price', col_discount: 'Discount',
  col_final: 'Paid', col_points: 'Points', col_refunded: 'Refunded', col_remaining: 'Refundable',
  col_reason: 'Reason', col_original: 'Original', col_device: 'Device',
  page_of: 'Page {page} of {pages}, {total} in all', prev: 'Previous', next: 'Next', no_rows: 'Nothing here.',
  detail_title: 'Transaction {tx}', back: 'Back', refunds_of: 'Refunds',
  refund_title: 'Refund', refund_amount: 'Refund amount', refund_reason: 'Reason (optional)', refund_submit: 'Refund…',
  refund_confirm_title: 'Confirm refund', refund_confirm: 'Refund {amount} from {tx}? This cannot be undone.',
  confirm: 'Confirm', cancel: 'Cancel', refund_done: 'Refunded {amount} ({tx}).',
  not_refundable: 'Nothing remains refundable on this transaction.',
  stl_title: 'Settlements', stl_mode: 'Mode', mode_realtime: 'Real-time', mode_t_plus_1: 'T+1', mode_monthly: 'Monthly',
  stl_start: 'Period start', stl_end: 'Period end (inclusive)', stl_generate: 'Generate settlement',
  stl_done: 'Settlement {no} generated.', col_stl_no: 'Settlement', col_period: 'Period', col_payments: 'Payments',
  col_refunds: 'Refunds', col_total: 'Total', col_count: 'Count', col_created: 'Created',
  sync_title: 'Sync', sync_now: 'Sync now', sync_done: 'Sync finished.', sync_status: 'Status',
  sync_mode: 'Mode', sync_queue: 'Waiting operations', sync_oldest: 'Oldest waiting', sync_last_push: 'Last push',
  sync_last_pull: 'Last pull', sync_last_error: 'Last error', sync_exceptions: 'Sync exceptions',
  sync_replica_age: 'Replica age', sync_heartbeat: 'Last report to head office', sync_clock_skew: 'clock skew {s} s',
  sync_no_exceptions: 'No open exceptions.', col_reason_central: 'Reason', resolve_note: 'Resolution note',
  resolve: 'Mark resolved', resolved: 'Resolved.', never: 'never', mode_standalone: 'standalone', mode_central: 'central',
  staff_title: 'Staff', staff_create: 'Add staff', role: 'Role', create: 'Add', col_username: 'Username',
  col_role: 'Role', col_state: 'State', state_active: 'Active', state_disabled: 'Disabled', state_locked: 'Locked until {t}',
  disable: 'Disable', enable: 'Enable', unlock: 'Unlock', reset_password: 'Reset password', new_password: 'New password',
  staff_created: '{u} added.', staff_updated: '{u} updated.', you: ' (you)',
  dev_title: 'Devices', dev_name: 'Device name', dev_code_create: 'Create enrollment code', dev_code: 'Enrollment code',
  dev_code_hint: 'Enter this code on the POS before {t}; it works once.', dev_revoke: 'Revoke',
  dev_revoke_confirm: 'Revoke “{name}”? Every sign-in of this device ends at once.', dev_revoked: 'Revoked',
  dev_active: 'Active', col_last_login: 'Last sign-in', dev_pending: 'Unused enrollment codes', col_expires: 'Expires',
  audit_title: 'Audit log', audit_action: 'Action', audit_actor: 'Actor', audit_from: 'From', audit_to: 'To',
  col_at: 'Time', col_action: 'Action', col_actor: 'Actor', col_object: 'Object', col_from: 'From', col_details: 'Details',
  settings_title: 'Settings', set_store_name: 'Store name', set_single_use: 'QR codes are single-use',
  set_max_tx: 'Largest single charge (amount entered, before discount)', set_max_card: 'Unsynced limit per card', set_max_site: 'Unsynced limit for the store',
  set_stale_after: 'Replica stale after (seconds)', set_stale_max: 'Largest charge while stale', save: 'Save', saved: 'Saved.',
  set_overridden: 'Overridden in the console: {keys}',
  set_owner_only: 'Only the owner may change the limits and the single-use rule.',
  set_ceilings: 'Limits cannot go above the ceilings in the installation config file ([limit_ceilings]; unset = the file’s own limits).',
  set_timezone: 'Dates and times are shown in the store time zone {tz} (set in the config file).',
  live_tx: 'New payment {tx}: {amount}', live_refund: 'New refund {tx}: {amount}',
  csrf_refused: 'Request refused (CSRF).',
  secs: '{n} s', mins: '{n} min', hours: '{n} h', days: '{n} d',
  err_LOGIN_LOCKED: 'Too many failed sign-ins from this device. Try again in {minutes} minute(s), or ask the owner to unlock the account.',
  err_INVALID_CREDENTIALS: 'Wrong username or password.',
  err_PERMISSION_DENIED: 'Your role does not allow this.',
  err_CSRF_TOKEN_INVALID: 'The request had no valid CSRF token and was refused.',
  err_SETTLEMENT_OVERLAP: 'The period overlaps settlement {no}; not generated.',
  err_REFUND_EXCEEDS_REMAINING: 'The refund exceeds what remains refundable.',
  err_NOT_AUTHENTICATED: 'Please sign in again.',
  err_SERVICE_UNAVAILABLE: 'Service unavailable: {message}',
  err_NO_CENTRAL: 'This store runs standalone: no central is configured, so there is nothing to sync with.',
  err_QR_CHAIN_REVOKED: "The member's offline payment codes were revoked (a lost phone?); ask for a code from the app while online.",
  err_QR_CLOCK_SKEW: 'The offline payment code is not for the current minute: check the clock of the phone and of this store.',
  err_network: 'The server cannot be reached; try again shortly.',
};

const dictionaries = { 'zh-Hant': zh, en };
export const LOCALES = Object.keys(dictionaries);

let locale = 'zh-Hant';
let timeZone = 'UTC';

export function setLocale(l) {
  locale = dictionaries[l] ? l : 'zh-Hant';
  document.documentElement.lang = locale;
  localStorage.setItem('mps.locale', locale);
}
export function getLocale() { return locale; }
export function setTimeZone(tz) { timeZone = tz || 'UTC'; }
export function getTimeZone() { return timeZone; }

/** The locale remembered on this browser before sign-in. */
export function storedLocale() {
  const l = localStorage.getItem('mps.locale');
  return dictionaries[l] ? l : 'zh-Hant';
}

export function t(key, params = {}) {
  const text = dictionaries[locale][key] ?? dictionaries.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, k) => (params[k] ?? `{${k}}`));
}

const intlLocale = () => (locale === 'zh-Hant' ? 'zh-TW' : 'en-US');

/** An amount from the API (a JSON number with 2 decimals) for display. */
export function money(v) {
  const n = typeof v === 'string' ? Number(v) : v;
  if (n === null || n === undefined || Number.isNaN(n)) return '—';
  return new Intl.NumberFormat(intlLocale(), { minimumFractionDigits: 2, maximumFractionDigits: 2 }).format(n);
}

export function count(n) {
  return new Intl.NumberFormat(intlLocale()).format(n ?? 0);
}

export function dateTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return new Intl.DateTimeFormat(intlLocale(), {
    timeZone, year: 'numeric', month: '2-digit', day: '2-digit',
    hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false,
  }).format(d);
}

export function dateOnly(iso) {
  if (!iso) return '—';
  return new Intl.DateTimeFormat(intlLocale(), { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' })
    .format(new Date(iso));
}

/** Today's date (YYYY-MM-DD) in the store's time zone, for date inputs. */
export function todayInStore(offsetDays = 0) {
  const d = new Date(Date.now() + offsetDays * 86400000);
  const parts = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).formatToParts(d);
  const get = (type) => parts.find((p) => p.type === type).value;
  return `${get('year')}-${get('month')}-${get('day')}`;
}

export function duration(secs) {
  if (secs === null || secs === undefined) return '—';
  if (secs < 60) return t('secs', { n: count(secs) });
  if (secs < 3600) return t('mins', { n: count(Math.floor(secs / 60)) });
  if (secs < 86400) return t('hours', { n: count(Math.floor(secs / 3600)) });
  return t('days', { n: count(Math.floor(secs / 86400)) });
}

/** A user-facing message for an API error. */
export function errorText(err) {
  if (!err || !err.code) return t('err_network');
  const d = err.details || {};
  const key = `err_${err.code}`;
  const have = dictionaries[locale][key];
  if (!have) return err.message || err.code;
  return t(key, {
    minutes: Math.max(1, Math.ceil((d.retry_after_secs || 60) / 60)),
    no: d.settlement_no || '',
    message: err.message || '',
  });
}
