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
  sync_standalone_note: '此門市以單機模式執行，未設定中央系統，因此沒有可同步的對象；交易只存在本機。',
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
  loading: '載入中…', retry: '重試', nav_label: '主選單',
  session_expired: '登入已逾時，請重新登入；登入後會回到剛才的頁面。',
  banner_unreachable: '無法連線本店伺服器 — 請確認伺服器是否開著、網路是否正常；恢復後會自動更新',
  chart_table: '以表格檢視', col_hour: '時段',
  dash_title: '營業總覽', dash_sales: '銷售', dash_refunds: '退款', dash_net: '淨額',
  dash_count: '交易筆數', dash_cards: '不重複卡片', dash_avg: '平均客單', dash_exceptions: '未處理例外',
  dash_payments: '付款筆數', dash_refund_count: '{n} 筆退款', dash_live_off: '即時更新中斷，重新連線中…',
  dash_vs_yesterday: '前一天', dash_vs_last_week: '上週同日', dash_up: '比{than}增加 {pct}%', dash_down: '比{than}減少 {pct}%',
  dash_same: '與{than}持平', dash_new: '{than}為 0', dash_empty: '{date} 沒有任何交易。',
  dash_by_hour: '每小時銷售', dash_live: '即時更新中', dash_date: '日期 {date}（{tz}）',
  chart_sales: '銷售', chart_refunds: '退款',
  tx_title: '交易', tx_start: '開始日期', tx_end: '結束日期', tx_type: '類型', tx_status: '狀態',
  tx_search: '卡號或交易編號', tx_search_help: '輸入部分即可，例如卡號末四碼', tx_sort: '排序',
  sort_time_desc: '時間（新到舊）', sort_time_asc: '時間（舊到新）', sort_amount_desc: '金額（高到低）', sort_amount_asc: '金額（低到高）',
  tx_totals: '符合 {count} 筆：付款 {pay_n} 筆 {pay}，退款 {ref_n} 筆 {ref}，淨額 {net}',
  tx_card: '卡號', tx_min: '最低金額', tx_max: '最高金額', tx_sync: '同步狀態', any: '全部',
  type_payment: '付款', type_refund: '退款', status_completed: '完成', status_refunded: '已退款', status_partial: '部分退款',
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
  refund_up_to: '最多可退 {amount}。', refund_will: '將退款 {amount}，之後可退餘額 {left}。', refund_full: '全額 {amount}',
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
  audit_family: '類別', family_signin: '登入與登出', family_staff: '人員帳號', family_devices: '終端機',
  family_payments: '收款與退款', family_settlements: '結算', family_settings: '設定', family_sync: '同步',
  pin_title: '我的核准 PIN', pin_help: '收銀員退款或大額收款時，在收銀機上輸入您的帳號與此 PIN 即可當場核准。PIN 為 4 至 8 位數字。',
  pin_password: '目前的密碼', pin_new: '新 PIN', pin_saved: '已設定核准 PIN。',
  staff_disable_title: '停用帳號', staff_disable_confirm: '停用 {u} 後，此帳號在所有裝置上的登入會立即結束，且無法再登入。確定嗎？',
  col_last_signin: '最後登入', col_device_id: '裝置識別碼',
  dev_code_qr_alt: '註冊碼 {code} 的 QR 碼', dev_code_cancel: '取消註冊碼',
  dev_code_cancel_confirm: '取消「{name}」的註冊碼後，這組碼就不能再用來註冊終端機。確定嗎？', dev_code_cancelled: '已取消「{name}」的註冊碼。',
  col_event: '事件', audit_terminal: '終端機', audit_raw: '原始資料', audit_system: '系統', audit_change: '{field}：{old} → {new}', list_sep: '；',
  yes: '是', no: '否',
  audit_login: '{who} 登入（POS／API）', audit_login_failed: '{who} 登入失敗（帳號或密碼錯誤）',
  audit_login_locked: '{username} 登入失敗次數過多，暫停登入', audit_logout: '{who} 登出（POS／API）',
  audit_console_login: '{who} 登入主控台', audit_console_logout: '{who} 登出主控台',
  audit_refresh_reuse_detected: '偵測到已用過的登入憑證被再次使用，已結束該帳號的登入',
  audit_user_create: '{who} 新增帳號 {username}（{role}）', audit_user_reset: '{who} 重設帳號 {username}（{role}）',
  audit_user_disable: '{who} 停用帳號 {username}', audit_user_enable: '{who} 啟用帳號 {username}',
  audit_user_reset_password: '{who} 重設 {username} 的密碼', audit_user_unlock: '{who} 解除 {username} 的登入鎖定',
  audit_user_sign_out_everywhere: '{who} 登出所有裝置',
  audit_device_enroll: '終端機「{name}」完成註冊', audit_device_revoke: '{who} 撤銷一台終端機',
  audit_device_enrollment_code_create: '{who} 產生終端機註冊碼（{name}）',
  audit_charge: '{who} 向卡片 {card} 收款 {amount}', audit_refund: '{who} 退款 {amount}（原交易 {original}）',
  audit_settlement_create: '{who} 產生結算 {object}：{total}，共 {count} 筆', audit_settlement_void: '{who} 作廢結算 {object}',
  audit_settings_update: '{who} 變更設定：{changes}', audit_sync_exception_resolve: '{who} 處理同步例外：{note}',
  audit_unknown: '{who}：{action}',
  settings_title: '設定', set_store_name: '店名', set_single_use: 'QR 碼僅能使用一次',
  set_max_tx: '單筆上限（輸入金額，折扣前）', set_max_card: '每卡未同步上限', set_max_site: '全店未同步上限',
  set_stale_after: '資料過舊門檻', set_stale_max: '資料過舊時單筆上限', save: '儲存', saved: '已儲存。', set_nothing_changed: '沒有變更需要儲存。',
  set_store_section: '門市', set_limits_section: '離線風險限額（{currency}）', set_currency: '幣別符號',
  set_timezone_label: '門市時區', set_stale_unit: '時間單位', unit_seconds: '秒', unit_minutes: '分鐘', unit_hours: '小時',
  help_store_name: '顯示在主控台頁首與收據上，最多 100 個字元。',
  help_currency: '顯示在金額旁的符號，例如 NT$；只影響顯示，不會換算金額。最多 8 個字元。',
  help_timezone: '決定「今日」、營業日與結算期間的起訖。只有店主能變更；變更後，之後的結算以新時區計算。',
  help_max_tx_amount: '收銀員輸入的金額（折扣前）超過此值即拒絕。上限 {max}。',
  help_max_card_unsynced: '一張卡在本店尚未同步到中央的消費總額上限；離線時防止同一張卡被重複盜刷。上限 {max}。',
  help_max_site_unsynced: '全店尚未同步到中央的消費總額上限；達到後須等同步完成才能再收款。上限 {max}。',
  help_stale_max_tx_amount: '本店資料過舊時（見上一欄），單筆可收的最高金額。上限 {max}。',
  help_stale_after: '多久沒有從中央取得最新資料，就視為資料過舊，只允許小額交易。0 表示不啟用。',
  help_stale_after_max: '多久沒有從中央取得最新資料，就視為資料過舊，只允許小額交易。最長 {max}，且不能停用。',
  help_single_use: '建議開啟：同一個 QR 碼付款一次後即失效，防止截圖重複使用。',
  set_overridden: '主控台已覆寫：{keys}',
  set_owner_only: '限額與「QR 碼僅能使用一次」只有店主能變更。',
  set_ceilings: '限額不能高於安裝設定檔 [limit_ceilings] 的上限（未設定時即為設定檔中的限額）。',
  live_tx: '新交易 {tx}：{amount}', live_refund: '新退款 {tx}：{amount}',
  csrf_refused: '請求被拒絕（CSRF）。',
  secs: '{n} 秒', mins: '{n} 分鐘', hours: '{n} 小時', days: '{n} 天',
  // Error messages: `err_<CODE>` for every code the server returns (tests/console_i18n.rs
  // checks that none is missing), `err_<CODE>.<variant>` where errorText can tell more
  // from the details (the field the server names, see variantOf), and `field_<name>` for
  // the fields the server may name in `details.field`.
  err_VALIDATION_ERROR: '輸入的資料格式不正確，請檢查後再試。',
  'err_VALIDATION_ERROR.field': '「{field}」的內容不正確，請檢查後再試。',
  'err_VALIDATION_ERROR.username': '帳號須為 1 至 64 個字元，且不可包含控制字元。',
  'err_VALIDATION_ERROR.password': '密碼須為 8 至 256 個字元，且不可包含控制字元。',
  'err_VALIDATION_ERROR.name': '裝置名稱須為 1 至 64 個字元，且不可包含控制字元。',
  'err_VALIDATION_ERROR.note': '處理說明須為 1 至 1000 個字元，且不可包含控制字元。',
  'err_VALIDATION_ERROR.reason': '原因最多 500 個字元，且不可包含控制字元。',
  'err_VALIDATION_ERROR.card_no': '卡號須為 1 至 32 個半形字元，不可包含空格。',
  'err_VALIDATION_ERROR.q': '「卡號或交易編號」須為 1 至 32 個半形字元，不可包含空格。',
  'err_VALIDATION_ERROR.min_amount': '「最低金額」須為大於 0 的金額，最多兩位小數。',
  'err_VALIDATION_ERROR.max_amount': '「最高金額」須為大於 0 的金額，最多兩位小數。',
  'err_VALIDATION_ERROR.site.name': '店名最多 100 個字元，且不可包含控制字元。',
  'err_VALIDATION_ERROR.limits.max_tx_amount': '「單筆上限」須為大於 0 的金額，最多兩位小數。',
  'err_VALIDATION_ERROR.limits.max_card_unsynced': '「每卡未同步上限」須為大於 0 的金額，最多兩位小數。',
  'err_VALIDATION_ERROR.limits.max_site_unsynced': '「全店未同步上限」須為大於 0 的金額，最多兩位小數。',
  'err_VALIDATION_ERROR.limits.stale_max_tx_amount': '「資料過舊時單筆上限」須為大於 0 的金額，最多兩位小數。',
  'err_VALIDATION_ERROR.limits.stale_after_secs': '「資料過舊門檻」須為 0 或以上的整數，不可空白（0 表示不啟用）。',
  'err_VALIDATION_ERROR.pin': 'PIN 須為 4 至 8 位數字。',
  'err_VALIDATION_ERROR.site.timezone': '請從清單中選擇門市時區。',
  'err_VALIDATION_ERROR.site.currency': '幣別符號須為 1 至 8 個字元，不可空白或包含控制字元。',
  err_INVALID_JSON: '送出的資料格式不正確，請重新整理頁面後再試。',
  err_INVALID_AMOUNT: '金額須為大於 0 的數字，最多兩位小數，且不超過 9,999,999,999.99。',
  'err_INVALID_AMOUNT.field': '「{field}」須為大於 0 的數字，最多兩位小數，且不超過 9,999,999,999.99。',
  err_INVALID_PRICE: '收款金額必須大於 0。',
  err_INVALID_REFUND_AMOUNT: '退款金額必須大於 0。',
  err_INVALID_QR: '掃描到的內容不是付款 QR 碼。',
  err_PAYLOAD_TOO_LARGE: '送出的資料量過大。',
  err_BODY_ABORTED: '資料傳送中斷，請確認網路連線後再試。',
  err_UNSUPPORTED_MEDIA_TYPE: '伺服器不接受此資料格式，請重新整理頁面後再試。',
  err_NOT_AUTHENTICATED: '請重新登入。',
  err_INVALID_CREDENTIALS: '帳號或密碼錯誤。',
  err_TOKEN_EXPIRED: '登入已過期，請重新登入。',
  err_INVALID_TOKEN: '登入憑證無效或已被撤銷，請重新登入。',
  err_PERMISSION_DENIED: '您的角色沒有權限執行此動作。',
  'err_PERMISSION_DENIED.field': '只有店主能變更「{field}」，這是本店的付款安全設定。',
  err_CSRF_TOKEN_INVALID: '請求缺少有效的 CSRF 權杖，已被拒絕。',
  err_APPROVAL_REQUIRED: '這筆交易需要主管或店主在收銀機上輸入核准 PIN。',
  err_APPROVAL_INVALID: '核准的主管帳號或 PIN 不正確。',
  'err_PERMISSION_DENIED.password': '密碼不正確。',
  err_ENROLLMENT_CODE_INVALID: '註冊碼錯誤、已使用或已過期。',
  err_DAEMON_SIGNATURE_MISSING: '總部程式的請求沒有簽章。',
  err_DAEMON_SIGNATURE_MALFORMED: '總部程式請求的簽章格式不正確。',
  err_DAEMON_SIGNATURE_STALE: '總部程式請求的簽章時間與本店時鐘相差超過 5 分鐘，請檢查雙方的時鐘。',
  err_DAEMON_SIGNATURE_INVALID: '總部程式請求的簽章不符。',
  err_DAEMON_SIGNATURE_REPLAYED: '這個已簽章的請求先前已被接受過，每個請求都必須重新簽章。',
  err_NOT_FOUND: '找不到指定的資料，可能已被移除，請重新整理頁面。',
  err_TX_NOT_FOUND: '找不到這筆交易。',
  err_ORIGINAL_TX_NOT_FOUND: '找不到原交易；這裡只能退款在本店完成的付款。',
  err_CARD_NOT_FOUND: '找不到這張卡片。',
  err_USER_NOT_FOUND: '找不到這個帳號。',
  err_METHOD_NOT_ALLOWED: '伺服器不接受此操作，請重新整理頁面後再試。',
  err_IDEMPOTENCY_KEY_REUSED: '這個請求識別碼已用於另一筆不同的請求。',
  err_CONFLICT: '無法執行：與目前的狀態衝突（例如不能停用自己或最後一位店主的帳號，或此項目已處理過）。請重新整理頁面後再試。',
  err_USERNAME_TAKEN: '這個帳號名稱已有人使用。',
  err_SETTLEMENT_OVERLAP: '期間與既有結算 {no} 重疊，無法產生。',
  err_NO_CENTRAL: '此門市以獨立模式執行，未設定中央系統，無法同步。',
  err_QR_EXPIRED_OR_INVALID: 'QR 碼已過期、已停用或無法辨識，請會員重新產生。',
  err_QR_ALREADY_USED: '此 QR 碼已使用過，請會員重新產生。',
  err_QR_CHAIN_REVOKED: '會員的離線付款碼已停用（手機遺失？），請會員連線後重新產生付款碼。',
  err_QR_CLOCK_SKEW: '離線付款碼的時間與本店時鐘不符，請檢查手機與本店的時間設定。',
  err_CARD_NOT_ACTIVE: '此卡片未啟用。',
  err_CARD_EXPIRED: '此卡片已過期。',
  err_CORPORATE_CARD_CANNOT_PAY: '企業卡不能用於付款。',
  err_UNSUPPORTED_CARD_TYPE_FOR_PAYMENT: '此卡別不能用於付款。',
  err_INSUFFICIENT_BALANCE: '卡片可用餘額不足。',
  err_OFFLINE_LIMIT_EXCEEDED: '此筆交易超過離線風險限額，已被拒絕。',
  err_ONLY_COMPLETED_PAYMENT_REFUNDABLE: '只有已完成的付款可以退款。',
  err_REFUND_EXCEEDS_REMAINING: '退款金額超過可退餘額。',
  err_MERCHANT_NOT_FOUND_OR_INACTIVE: '找不到商店資料或商店已停用；門市可能尚未完成與中央的初次同步。',
  err_DEMO_MODE_ONLY: '此功能只能在獨立示範模式下使用。',
  err_IDEMPOTENCY_KEY_MISMATCH: '請求標頭與內容中的請求識別碼不一致。',
  err_INCONSISTENT_FIELDS: '必須一起填寫的欄位沒有一起送出。',
  err_PERIOD_INVALID: '期間結束不可早於期間開始。',
  'err_PERIOD_INVALID.end_date': '結束日期不可早於開始日期，否則不會有任何交易符合。',
  err_AMOUNT_RANGE_INVALID: '最低金額高於最高金額，不會有任何交易符合。',
  err_LIMIT_ABOVE_CEILING: '限額超過此安裝設定檔允許的上限，請輸入較低的數值。',
  'err_LIMIT_ABOVE_CEILING.field': '「{field}」超過此安裝設定檔允許的上限，請輸入較低的數值。',
  err_TOO_MANY_REQUESTS: '請求過於頻繁，請於 {minutes} 分鐘後再試。',
  err_LOGIN_LOCKED: '此裝置登入失敗次數過多，請於 {minutes} 分鐘後再試，或請店主解除鎖定。',
  err_SERVICE_UNAVAILABLE: '服務暫時無法使用，請稍後再試。若剛才送出退款，請先查看交易紀錄確認是否已完成，以免重複退款。',
  'err_SERVICE_UNAVAILABLE.sync': '無法與中央同步，請稍後再試；原因請見「最近錯誤」。',
  'err_SERVICE_UNAVAILABLE.busy': '目前同時登入的人數過多，請稍候幾秒再試。',
  err_INTERNAL_ERROR: '系統發生錯誤，請稍後再試；若持續發生請聯絡支援。',
  err_network: '無法連線伺服器，請稍後再試。',
  err_unknown: '無法完成此操作（錯誤代碼 {code}），請稍後再試。',
  field_username: '帳號', field_password: '密碼', field_role: '角色', field_name: '裝置名稱',
  field_note: '處理說明', field_amount: '金額', field_refund_amount: '退款金額', field_reason: '原因',
  field_mode: '結算模式', field_period_start: '期間開始', field_period_end: '期間結束',
  field_start_date: '開始日期', field_end_date: '結束日期', field_date: '日期', field_from: '起始日期', field_to: '結束日期',
  field_pin: 'PIN', field_card_no: '卡號', field_q: '卡號或交易編號', field_sort: '排序', field_min_amount: '最低金額', field_max_amount: '最高金額',
  field_type: '類型', field_status: '狀態', field_sync_state: '同步狀態', field_action: '動作', field_actor: '操作者',
  field_limit: '每頁筆數', field_offset: '頁碼', field_locale: '語言', field_settings: '設定',
  'field_site.name': '店名', 'field_qr.single_use': 'QR 碼僅能使用一次',
  'field_limits.max_tx_amount': '單筆上限', 'field_limits.max_card_unsynced': '每卡未同步上限',
  'field_limits.max_site_unsynced': '全店未同步上限', 'field_limits.stale_after_secs': '資料過舊門檻',
  'field_site.timezone': '門市時區', 'field_site.currency': '幣別符號',
  'field_limits.stale_max_tx_amount': '資料過舊時單筆上限',
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
  sync_standalone_note: 'This store runs standalone: no central is configured, so there is nothing to sync with; sales stay on this machine.',
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
  loading: 'Loading…', retry: 'Retry', nav_label: 'Main menu',
  session_expired: 'Your sign-in expired; sign in again to return to the page you were on.',
  banner_unreachable: 'The store server is not answering — check that it is running and the network is up; this updates by itself when it is back',
  chart_table: 'Show as a table', col_hour: 'Hour',
  dash_title: 'Overview', dash_sales: 'Sales', dash_refunds: 'Refunds', dash_net: 'Net',
  dash_count: 'Transactions', dash_cards: 'Unique cards', dash_avg: 'Average ticket', dash_exceptions: 'Open exceptions',
  dash_payments: 'Payments', dash_refund_count: '{n} refunds', dash_live_off: 'Live updates lost, reconnecting…',
  dash_vs_yesterday: 'the day before', dash_vs_last_week: 'the same day last week', dash_up: 'up {pct}% on {than}', dash_down: 'down {pct}% on {than}',
  dash_same: 'same as {than}', dash_new: 'none {than}', dash_empty: 'No transactions on {date}.',
  dash_by_hour: 'Sales by hour', dash_live: 'Live', dash_date: 'Date {date} ({tz})',
  chart_sales: 'Sales', chart_refunds: 'Refunds',
  tx_title: 'Transactions', tx_start: 'From date', tx_end: 'To date', tx_type: 'Type', tx_status: 'Status',
  tx_search: 'Card or transaction number', tx_search_help: 'Any part, such as the card’s last four digits', tx_sort: 'Sort',
  sort_time_desc: 'Time (newest first)', sort_time_asc: 'Time (oldest first)', sort_amount_desc: 'Amount (highest first)', sort_amount_asc: 'Amount (lowest first)',
  tx_totals: '{count} matching: {pay_n} payments {pay}, {ref_n} refunds {ref}, net {net}',
  tx_card: 'Card number', tx_min: 'Min amount', tx_max: 'Max amount', tx_sync: 'Sync state', any: 'Any',
  type_payment: 'Payment', type_refund: 'Refund', status_completed: 'Completed', status_refunded: 'Refunded', status_partial: 'Partly refunded',
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
  refund_up_to: 'Up to {amount} can be refunded.', refund_will: 'Will refund {amount}; {left} left to refund after.', refund_full: 'Full {amount}',
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
  audit_family: 'Kind', family_signin: 'Sign-in and sign-out', family_staff: 'Staff accounts', family_devices: 'Terminals',
  family_payments: 'Charges and refunds', family_settlements: 'Settlements', family_settings: 'Settings', family_sync: 'Sync',
  pin_title: 'My approval PIN', pin_help: 'When a cashier refunds or charges a large amount, type your username and this PIN at their till to approve it on the spot. 4 to 8 digits.',
  pin_password: 'Current password', pin_new: 'New PIN', pin_saved: 'Approval PIN set.',
  staff_disable_title: 'Disable account', staff_disable_confirm: 'Disabling {u} ends their sign-ins on every device at once, and they cannot sign in again. Continue?',
  col_last_signin: 'Last sign-in', col_device_id: 'Device ID',
  dev_code_qr_alt: 'QR code of enrolment code {code}', dev_code_cancel: 'Cancel code',
  dev_code_cancel_confirm: 'After cancelling the code for “{name}”, it can no longer enrol a terminal. Continue?', dev_code_cancelled: 'The code for “{name}” was cancelled.',
  col_event: 'Event', audit_terminal: 'terminal', audit_raw: 'Raw data', audit_system: 'System', audit_change: '{field}: {old} → {new}', list_sep: '; ',
  yes: 'yes', no: 'no',
  audit_login: '{who} signed in (POS/API)', audit_login_failed: '{who} failed to sign in (wrong username or password)',
  audit_login_locked: '{username} is paused from signing in after too many failures', audit_logout: '{who} signed out (POS/API)',
  audit_console_login: '{who} signed in to the console', audit_console_logout: '{who} signed out of the console',
  audit_refresh_reuse_detected: 'A used sign-in token was presented again; that account’s sign-ins were ended',
  audit_user_create: '{who} created account {username} ({role})', audit_user_reset: '{who} reset account {username} ({role})',
  audit_user_disable: '{who} disabled account {username}', audit_user_enable: '{who} enabled account {username}',
  audit_user_reset_password: '{who} reset the password of {username}', audit_user_unlock: '{who} unlocked sign-in for {username}',
  audit_user_sign_out_everywhere: '{who} signed out everywhere',
  audit_device_enroll: 'Terminal “{name}” enrolled', audit_device_revoke: '{who} revoked a terminal',
  audit_device_enrollment_code_create: '{who} created a terminal enrolment code ({name})',
  audit_charge: '{who} charged card {card} {amount}', audit_refund: '{who} refunded {amount} (of {original})',
  audit_settlement_create: '{who} settled {object}: {total}, {count} transactions', audit_settlement_void: '{who} voided settlement {object}',
  audit_settings_update: '{who} changed settings: {changes}', audit_sync_exception_resolve: '{who} resolved a sync exception: {note}',
  audit_unknown: '{who}: {action}',
  settings_title: 'Settings', set_store_name: 'Store name', set_single_use: 'QR codes are single-use',
  set_max_tx: 'Largest single charge (amount entered, before discount)', set_max_card: 'Unsynced limit per card', set_max_site: 'Unsynced limit for the store',
  set_stale_after: 'Replica stale after', set_stale_max: 'Largest charge while stale', save: 'Save', saved: 'Saved.', set_nothing_changed: 'Nothing changed.',
  set_store_section: 'Store', set_limits_section: 'Offline risk limits ({currency})', set_currency: 'Currency symbol',
  set_timezone_label: 'Store time zone', set_stale_unit: 'Time unit', unit_seconds: 'seconds', unit_minutes: 'minutes', unit_hours: 'hours',
  help_store_name: 'Shown in the console header and on receipts; up to 100 characters.',
  help_currency: 'The symbol shown next to amounts, such as NT$. Display only: nothing is converted. Up to 8 characters.',
  help_timezone: 'Decides what "today", a business day and a settlement period are. Owner only; later settlements use the new zone.',
  help_max_tx_amount: 'A charge whose entered amount (before discount) is above this is refused. At most {max}.',
  help_max_card_unsynced: 'The most one card may spend here before it reaches central; stops a copied card being drained offline. At most {max}.',
  help_max_site_unsynced: 'The most the whole store may take before sync catches up; then charges wait for sync. At most {max}.',
  help_stale_max_tx_amount: 'The largest single charge while the replica is stale (see above). At most {max}.',
  help_stale_after: 'How long without fresh data from central before only small charges pass. 0 = off.',
  help_stale_after_max: 'How long without fresh data from central before only small charges pass. At most {max}; cannot be switched off.',
  help_single_use: 'Recommended: a QR code stops working once it has paid, so a screenshot cannot pay twice.',
  set_overridden: 'Overridden in the console: {keys}',
  set_owner_only: 'Only the owner may change the limits and the single-use rule.',
  set_ceilings: 'Limits cannot go above the ceilings in the installation config file ([limit_ceilings]; unset = the file’s own limits).',
  live_tx: 'New payment {tx}: {amount}', live_refund: 'New refund {tx}: {amount}',
  csrf_refused: 'Request refused (CSRF).',
  secs: '{n} s', mins: '{n} min', hours: '{n} h', days: '{n} d',
  err_VALIDATION_ERROR: 'Something entered is not valid; check it and try again.',
  'err_VALIDATION_ERROR.field': '“{field}” is not valid; check it and try again.',
  'err_VALIDATION_ERROR.username': 'The username must be 1–64 characters, without control characters.',
  'err_VALIDATION_ERROR.password': 'The password must be 8–256 characters, without control characters.',
  'err_VALIDATION_ERROR.name': 'The device name must be 1–64 characters, without control characters.',
  'err_VALIDATION_ERROR.note': 'The resolution note must be 1–1000 characters, without control characters.',
  'err_VALIDATION_ERROR.reason': 'The reason may have at most 500 characters, without control characters.',
  'err_VALIDATION_ERROR.card_no': 'The card number must be 1–32 ASCII characters, without spaces.',
  'err_VALIDATION_ERROR.q': '“Card or transaction number” must be 1–32 ASCII characters, without spaces.',
  'err_VALIDATION_ERROR.min_amount': '“Min amount” must be an amount above 0 with at most 2 decimals.',
  'err_VALIDATION_ERROR.max_amount': '“Max amount” must be an amount above 0 with at most 2 decimals.',
  'err_VALIDATION_ERROR.site.name': 'The store name may have at most 100 characters, without control characters.',
  'err_VALIDATION_ERROR.limits.max_tx_amount': '“Largest single charge” must be an amount above 0 with at most 2 decimals.',
  'err_VALIDATION_ERROR.limits.max_card_unsynced': '“Unsynced limit per card” must be an amount above 0 with at most 2 decimals.',
  'err_VALIDATION_ERROR.limits.max_site_unsynced': '“Unsynced limit for the store” must be an amount above 0 with at most 2 decimals.',
  'err_VALIDATION_ERROR.limits.stale_max_tx_amount': '“Largest charge while stale” must be an amount above 0 with at most 2 decimals.',
  'err_VALIDATION_ERROR.limits.stale_after_secs': '“Replica stale after” must be a whole number, 0 or more, not blank (0 = off).',
  'err_VALIDATION_ERROR.pin': 'The PIN must be 4 to 8 digits.',
  'err_VALIDATION_ERROR.site.timezone': 'Choose the store time zone from the list.',
  'err_VALIDATION_ERROR.site.currency': 'The currency symbol must be 1-8 characters, not blank, without control characters.',
  err_INVALID_JSON: 'The request was malformed; reload the page and try again.',
  err_INVALID_AMOUNT: 'Amounts must be above 0, with at most 2 decimals, up to 9,999,999,999.99.',
  'err_INVALID_AMOUNT.field': '“{field}” must be above 0, with at most 2 decimals, up to 9,999,999,999.99.',
  err_INVALID_PRICE: 'The charge amount must be greater than zero.',
  err_INVALID_REFUND_AMOUNT: 'The refund amount must be greater than zero.',
  err_INVALID_QR: 'The scanned text is not a payment QR code.',
  err_PAYLOAD_TOO_LARGE: 'The request is too large.',
  err_BODY_ABORTED: 'The request was cut off on the way; check the connection and try again.',
  err_UNSUPPORTED_MEDIA_TYPE: 'The server does not accept this data format; reload the page and try again.',
  err_NOT_AUTHENTICATED: 'Please sign in again.',
  err_INVALID_CREDENTIALS: 'Wrong username or password.',
  err_TOKEN_EXPIRED: 'Your sign-in has expired; sign in again.',
  err_INVALID_TOKEN: 'Your sign-in is invalid or was revoked; sign in again.',
  err_PERMISSION_DENIED: 'Your role does not allow this.',
  'err_PERMISSION_DENIED.field': 'Only the owner may change “{field}”: it is one of the store’s payment safeguards.',
  err_CSRF_TOKEN_INVALID: 'The request had no valid CSRF token and was refused.',
  err_APPROVAL_REQUIRED: 'This needs a manager’s or owner’s approval PIN at the till.',
  err_APPROVAL_INVALID: 'The approving manager’s name or PIN is wrong.',
  'err_PERMISSION_DENIED.password': 'The password is wrong.',
  err_ENROLLMENT_CODE_INVALID: 'The enrollment code is wrong, already used or expired.',
  err_DAEMON_SIGNATURE_MISSING: 'The head-office request is not signed.',
  err_DAEMON_SIGNATURE_MALFORMED: 'The head-office request’s signature is malformed.',
  err_DAEMON_SIGNATURE_STALE: 'The head-office request was signed more than 5 minutes away from this store’s clock; check both clocks.',
  err_DAEMON_SIGNATURE_INVALID: 'The head-office request’s signature does not match.',
  err_DAEMON_SIGNATURE_REPLAYED: 'This signed request was already accepted; every request needs a fresh signature.',
  err_NOT_FOUND: 'Not found; it may have been removed. Reload the page.',
  err_TX_NOT_FOUND: 'No such transaction.',
  err_ORIGINAL_TX_NOT_FOUND: 'The original transaction was not found; only payments made at this store can be refunded here.',
  err_CARD_NOT_FOUND: 'No such card.',
  err_USER_NOT_FOUND: 'No such account.',
  err_METHOD_NOT_ALLOWED: 'The server does not accept this action; reload the page and try again.',
  err_IDEMPOTENCY_KEY_REUSED: 'This request key was already used for a different request.',
  err_CONFLICT: 'This conflicts with the current state (for example, your own account or the last owner cannot be disabled, or it was already done). Reload the page and try again.',
  err_USERNAME_TAKEN: 'That username is already taken.',
  err_SETTLEMENT_OVERLAP: 'The period overlaps settlement {no}; not generated.',
  err_NO_CENTRAL: 'This store runs standalone: no central is configured, so there is nothing to sync with.',
  err_QR_EXPIRED_OR_INVALID: 'The QR code is expired, revoked or unknown; ask the member for a fresh one.',
  err_QR_ALREADY_USED: 'This QR code has already been used; ask the member for a fresh one.',
  err_QR_CHAIN_REVOKED: "The member's offline payment codes were revoked (a lost phone?); ask for a code from the app while online.",
  err_QR_CLOCK_SKEW: 'The offline payment code is not for the current minute: check the clock of the phone and of this store.',
  err_CARD_NOT_ACTIVE: 'The card is not active.',
  err_CARD_EXPIRED: 'The card has expired.',
  err_CORPORATE_CARD_CANNOT_PAY: 'Corporate cards cannot pay.',
  err_UNSUPPORTED_CARD_TYPE_FOR_PAYMENT: 'This card type cannot pay.',
  err_INSUFFICIENT_BALANCE: 'The card’s available balance is too low.',
  err_OFFLINE_LIMIT_EXCEEDED: 'An offline risk limit declines this charge.',
  err_ONLY_COMPLETED_PAYMENT_REFUNDABLE: 'Only completed payments can be refunded.',
  err_REFUND_EXCEEDS_REMAINING: 'The refund exceeds what remains refundable.',
  err_MERCHANT_NOT_FOUND_OR_INACTIVE: 'The merchant is missing or inactive; the store may not have finished its first sync with central.',
  err_DEMO_MODE_ONLY: 'This is only available in standalone demo mode.',
  err_IDEMPOTENCY_KEY_MISMATCH: 'The request key in the header and in the body differ.',
  err_INCONSISTENT_FIELDS: 'Fields that go together were not sent together.',
  err_PERIOD_INVALID: 'The period cannot end before it starts.',
  'err_PERIOD_INVALID.end_date': 'The end date is before the start date, so no transaction can match.',
  err_AMOUNT_RANGE_INVALID: 'The lowest amount is above the highest, so no transaction can match.',
  err_LIMIT_ABOVE_CEILING: 'A limit is above the ceiling this installation’s config file allows; enter a lower value.',
  'err_LIMIT_ABOVE_CEILING.field': '“{field}” is above the ceiling this installation’s config file allows; enter a lower value.',
  err_TOO_MANY_REQUESTS: 'Too many requests; try again in {minutes} minute(s).',
  err_LOGIN_LOCKED: 'Too many failed sign-ins from this device. Try again in {minutes} minute(s), or ask the owner to unlock the account.',
  err_SERVICE_UNAVAILABLE: 'Service unavailable: {message}',
  'err_SERVICE_UNAVAILABLE.sync': '{message}',
  'err_SERVICE_UNAVAILABLE.busy': 'Too many sign-ins at once; try again in a few seconds.',
  err_INTERNAL_ERROR: 'Something went wrong on the server; try again later, and contact support if it keeps happening.',
  err_network: 'The server cannot be reached; try again shortly.',
  err_unknown: '{message} ({code})',
  field_username: 'Username', field_password: 'Password', field_role: 'Role', field_name: 'Device name',
  field_note: 'Resolution note', field_amount: 'Amount', field_refund_amount: 'Refund amount', field_reason: 'Reason',
  field_mode: 'Settlement mode', field_period_start: 'Period start', field_period_end: 'Period end',
  field_start_date: 'From date', field_end_date: 'To date', field_date: 'Date', field_from: 'From', field_to: 'To',
  field_pin: 'PIN', field_card_no: 'Card number', field_q: 'Card or transaction number', field_sort: 'Sort', field_min_amount: 'Min amount', field_max_amount: 'Max amount',
  field_type: 'Type', field_status: 'Status', field_sync_state: 'Sync state', field_action: 'Action', field_actor: 'Actor',
  field_limit: 'Page size', field_offset: 'Page', field_locale: 'Language', field_settings: 'Settings',
  'field_site.name': 'Store name', 'field_qr.single_use': 'QR codes are single-use',
  'field_limits.max_tx_amount': 'Largest single charge', 'field_limits.max_card_unsynced': 'Unsynced limit per card',
  'field_limits.max_site_unsynced': 'Unsynced limit for the store', 'field_limits.stale_after_secs': 'Replica stale after',
  'field_site.timezone': 'Store time zone', 'field_site.currency': 'Currency symbol',
  'field_limits.stale_max_tx_amount': 'Largest charge while stale',
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

/** Which variant of a code's message fits the error's details: the field the server
 *  names, or for SERVICE_UNAVAILABLE a failed sync (`transient`) or busy sign-ins. */
function variantOf(code, d) {
  if (code === 'SERVICE_UNAVAILABLE') {
    if ('transient' in d) return 'sync';
    if (d.retry_after_secs) return 'busy';
  }
  return typeof d.field === 'string' ? d.field : null;
}

/** A user-facing message for an API error: `err_<CODE>.<variant>` when the details
 *  tell one (a field-specific message), else `err_<CODE>.field` with the field's label
 *  when the console knows the field, else `err_<CODE>`; never the server's English
 *  message in place of a missing Chinese one. */
export function errorText(err) {
  if (!err || !err.code) return t('err_network');
  const d = err.details || {};
  const dict = dictionaries[locale];
  const key = `err_${err.code}`;
  const params = {
    minutes: Math.max(1, Math.ceil((d.retry_after_secs || 60) / 60)),
    no: d.settlement_no || '',
    message: err.message || '',
    code: err.code,
    field: (typeof d.field === 'string' && dict[`field_${d.field}`]) || '',
  };
  if (!dict[key]) return t('err_unknown', params);
  const variant = variantOf(err.code, d);
  if (variant && dict[`${key}.${variant}`]) return t(`${key}.${variant}`, params);
  if (params.field && dict[`${key}.field`]) return t(`${key}.field`, params);
  return t(key, params);
}
