//! The web console's services: cookie sessions with CSRF tokens, staff administration,
//! device enrollment, runtime settings, settlements, the audit log and the CSV export.

use std::net::IpAddr;

use rand::Rng;
use serde::Serialize;
use serde_json::{json, Value};

use crate::auth::{check_password_policy, hash_password, random_token, sha256_hex};
use crate::config::Config;
use crate::db::console::{self as store, AuditFilter, NewSession, SessionRow, SettlementCmd};
use crate::db::queries::{self, TxFilter};
use crate::db::users::{self, audit, Actor};
use crate::domain::limits::Limits;
use crate::domain::money::{format_cents, format_milli, parse_cents, ser_cents};
use crate::domain::{perm, Role};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::model::{Pagination, UserInfo};
use crate::service::auth::{self as auth_service, AuthUser};
use crate::state::AppState;

/// The console's session cookie.
pub const SESSION_COOKIE: &str = "mps_session";
/// A console sign-in lasts a working day.
pub const SESSION_TTL_SECS: i64 = 12 * 3600;
/// Enrollment codes are short-lived and single use.
pub const ENROLLMENT_TTL_SECS: i64 = 15 * 60;
/// The CSV export's cap.
pub const EXPORT_MAX_ROWS: i64 = 100_000;
pub const LOCALES: [&str; 2] = ["zh-Hant", "en"];

// ---------------------------------------------------------------------------------------
// Sessions
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize)]
pub struct StoreInfo {
    pub name: String,
    pub site_code: String,
    pub timezone: String,
    /// `standalone` (no central) or `central`.
    pub mode: &'static str,
    pub demo: bool,
}

/// What the console needs after sign-in or a page reload.
#[derive(Debug, Clone, Serialize)]
pub struct SessionPayload {
    pub csrf_token: String,
    pub user: UserInfo,
    pub locale: String,
    pub store: StoreInfo,
    pub expires_at: String,
}

async fn payload(
    state: &AppState,
    user: UserInfo,
    csrf_token: String,
    expires_unix: i64,
) -> AppResult<SessionPayload> {
    let uid = user.id.clone();
    let (locale, demo) = state
        .db
        .read(move |c| Ok((store::user_locale(c, &uid)?, crate::db::demo::is_loaded(c)?)))
        .await?;
    Ok(SessionPayload {
        csrf_token,
        user,
        locale: locale
            .filter(|l| LOCALES.contains(&l.as_str()))
            .unwrap_or_else(|| LOCALES[0].to_string()),
        store: StoreInfo {
            name: state.settings.read().settings.store_name.clone(),
            site_code: state.cfg.site.code.clone(),
            timezone: state.cfg.timezone().name().to_string(),
            mode: if state.cfg.standalone() {
                "standalone"
            } else {
                "central"
            },
            demo,
        },
        expires_at: chrono::DateTime::from_timestamp(expires_unix, 0)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default(),
    })
}

/// Signs in with the POS sign-in rules (lockout, per-address throttle, audit) and opens a
/// console session. Returns the cookie token (given to the browser only) and the payload.
pub async fn login(
    state: &AppState,
    username: String,
    password: String,
    ip: Option<IpAddr>,
    user_agent: Option<String>,
) -> AppResult<(String, SessionPayload)> {
    let pair = auth_service::login(state, username, password, ip).await?;
    // The console session joins the sign-in family just created (its refresh token is
    // never handed out), so bearer logout, token epochs and family revocation apply.
    let claims = state
        .keys
        .verify(&pair.access_token)
        .map_err(|_| AppError::internal("a token just issued does not verify"))?;
    let token = random_token();
    let csrf = random_token();
    let expires = chrono::Utc::now().timestamp() + SESSION_TTL_SECS;
    let (token_hash, csrf2, ip_text) =
        (sha256_hex(&token), csrf.clone(), ip.map(|i| i.to_string()));
    let user = pair.user.clone();
    let actor = Actor {
        user_id: Some(user.id.clone()),
        username: Some(user.username.clone()),
        ip: ip_text.clone(),
        device_id: None,
    };
    let ua: Option<String> = user_agent.map(|u| u.chars().take(300).collect());
    state
        .db
        .write(move |c| {
            let id = store::insert_session(
                c,
                &NewSession {
                    token_hash: &token_hash,
                    user_id: &claims.sub,
                    family_id: &claims.fam,
                    token_epoch: claims.epoch,
                    csrf_token: &csrf2,
                    ip: ip_text.as_deref(),
                    user_agent: ua.as_deref(),
                    expires_unix: expires,
                },
            )?;
            audit(
                c,
                &actor,
                "console.login",
                Some(("console_session", &id)),
                json!({"user_agent": ua}),
            )
        })
        .await?;
    let body = payload(state, user, csrf, expires).await?;
    Ok((token, body))
}

/// Whether a request must prove it came from the console page.
pub enum Csrf<'a> {
    NotNeeded,
    Header(Option<&'a str>),
}

/// Checks a console cookie: the session exists, is neither expired nor revoked, its user
/// is enabled with the same token epoch, its family is not revoked; then the CSRF token.
pub async fn authenticate_session(
    state: &AppState,
    token: &str,
    csrf: Csrf<'_>,
    ip: Option<IpAddr>,
) -> AppResult<(AuthUser, SessionRow)> {
    let hash = sha256_hex(token);
    let found = state
        .db
        .read(move |c| {
            let Some(s) = store::find_session(c, &hash)? else {
                return Ok(None);
            };
            let user = users::find_by_id(c, &s.user_id)?;
            let family_revoked = users::family_revoked(c, &s.family_id)?;
            Ok(Some((s, user, family_revoked)))
        })
        .await?;
    let expired = || {
        AppError::msg(
            ErrorCode::NotAuthenticated,
            "Your console session has ended; sign in again.",
        )
    };
    let Some((session, Some(user), family_revoked)) = found else {
        return Err(expired());
    };
    let now = chrono::Utc::now().timestamp();
    if session.revoked
        || session.expires_unix <= now
        || family_revoked
        || user.disabled
        || user.token_epoch != session.token_epoch
    {
        return Err(expired());
    }
    if let Csrf::Header(given) = csrf {
        let ok = given.is_some_and(|g| {
            // Compare digests so the comparison time says nothing about the token.
            sha256_hex(g) == sha256_hex(&session.csrf_token)
        });
        if !ok {
            return Err(AppError::msg(
                ErrorCode::CsrfTokenInvalid,
                "This request needs the X-CSRF-Token header of your console session.",
            ));
        }
    }
    Ok((
        AuthUser {
            id: user.id,
            username: user.username,
            role: user.role,
            family: session.family_id.clone(),
            device_id: None,
            ip,
        },
        session,
    ))
}

pub async fn session_payload(
    state: &AppState,
    user: &AuthUser,
    session: &SessionRow,
) -> AppResult<SessionPayload> {
    payload(
        state,
        user.info(),
        session.csrf_token.clone(),
        session.expires_unix,
    )
    .await
}

pub async fn logout(state: &AppState, user: &AuthUser, session_id: String) -> AppResult<()> {
    let actor = user.actor();
    let family = user.family.clone();
    state
        .db
        .write(move |c| {
            store::revoke_session(c, &session_id)?;
            users::revoke_family(c, &family)?;
            audit(
                c,
                &actor,
                "console.logout",
                Some(("console_session", &session_id)),
                json!({}),
            )
        })
        .await
}

/// Ends every console session and bearer token of the caller.
pub async fn logout_everywhere(state: &AppState, user: &AuthUser) -> AppResult<()> {
    let actor = user.actor();
    let id = user.id.clone();
    state
        .db
        .write(move |c| {
            store::end_all_sessions(c, &id)?;
            audit(
                c,
                &actor,
                "user.sign_out_everywhere",
                Some(("user", &id)),
                json!({}),
            )
        })
        .await
}

pub async fn set_locale(state: &AppState, user: &AuthUser, locale: String) -> AppResult<()> {
    if !LOCALES.contains(&locale.as_str()) {
        return Err(AppError::validation(
            "locale",
            format!("locale must be one of: {}.", LOCALES.join(", ")),
        ));
    }
    let id = user.id.clone();
    state
        .db
        .write(move |c| store::set_locale(c, &id, &locale))
        .await
}

// ---------------------------------------------------------------------------------------
// Staff
// ---------------------------------------------------------------------------------------

/// Owners manage everyone; managers manage cashiers; cashiers manage nobody.
pub fn may_manage(actor: Role, target: Role) -> bool {
    match actor {
        Role::Owner => true,
        Role::Manager => target == Role::Cashier,
        Role::Cashier => false,
    }
}

fn refuse_role(actor: Role, target: Role) -> AppError {
    AppError::msg(
        ErrorCode::PermissionDenied,
        match actor {
            Role::Manager => "A manager may manage cashier accounts only; ask the owner.",
            _ => "Only the owner may manage owner and manager accounts.",
        },
    )
    .with_details(json!({"role": actor.as_str(), "target_role": target.as_str()}))
}

pub async fn list_staff(state: &AppState, user: &AuthUser) -> AppResult<Vec<store::StaffView>> {
    user.require_manager()?;
    state.db.read(store::list_staff).await
}

pub async fn create_staff(
    state: &AppState,
    user: &AuthUser,
    username: String,
    password: String,
    role: Role,
) -> AppResult<store::StaffView> {
    user.require_manager()?;
    if !may_manage(user.role, role) {
        return Err(refuse_role(user.role, role));
    }
    check_password_policy(&password).map_err(|m| AppError::validation("password", m))?;
    let hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| AppError::internal(e.to_string()))??;
    let actor = user.actor();
    state
        .db
        .write(move |c| {
            let id = users::upsert_user(c, &username, &hash, role, false, &actor)?;
            store::staff_by_id(c, &id)
        })
        .await
}

/// Checks, inside the writer, that `user` may change account `id`.
fn check_target(conn: &rusqlite::Connection, user: &AuthUser, id: &str) -> AppResult<Role> {
    let (role, _) = store::role_of(conn, id)?.ok_or(ErrorCode::UserNotFound)?;
    if !may_manage(user.role, role) {
        return Err(refuse_role(user.role, role));
    }
    Ok(role)
}

pub async fn set_disabled(
    state: &AppState,
    user: &AuthUser,
    id: String,
    disabled: bool,
) -> AppResult<store::StaffView> {
    user.require_manager()?;
    let me = user.clone();
    state
        .db
        .write(move |c| {
            if disabled && id == me.id {
                return Err(AppError::msg(
                    ErrorCode::Conflict,
                    "You cannot disable your own account.",
                ));
            }
            let role = check_target(c, &me, &id)?;
            if disabled && role == Role::Owner && store::enabled_owners(c)? <= 1 {
                return Err(AppError::msg(
                    ErrorCode::Conflict,
                    "This is the last enabled owner account; it cannot be disabled.",
                ));
            }
            store::set_disabled(c, &id, disabled)?;
            let view = store::staff_by_id(c, &id)?;
            audit(
                c,
                &me.actor(),
                if disabled {
                    "user.disable"
                } else {
                    "user.enable"
                },
                Some(("user", &id)),
                json!({"username": view.username, "role": view.role}),
            )?;
            Ok(view)
        })
        .await
}

pub async fn reset_password(
    state: &AppState,
    user: &AuthUser,
    id: String,
    password: String,
) -> AppResult<store::StaffView> {
    user.require_manager()?;
    check_password_policy(&password).map_err(|m| AppError::validation("password", m))?;
    let hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| AppError::internal(e.to_string()))??;
    let me = user.clone();
    state
        .db
        .write(move |c| {
            check_target(c, &me, &id)?;
            store::reset_password(c, &id, &hash)?;
            let view = store::staff_by_id(c, &id)?;
            // Never the password itself.
            audit(
                c,
                &me.actor(),
                "user.reset_password",
                Some(("user", &id)),
                json!({"username": view.username}),
            )?;
            Ok(view)
        })
        .await
}

// ---------------------------------------------------------------------------------------
// Devices
// ---------------------------------------------------------------------------------------

/// No look-alike characters: codes are read off one screen and typed on another.
const CODE_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
const CODE_LEN: usize = 10;

fn new_code() -> String {
    let mut rng = rand::thread_rng();
    (0..CODE_LEN)
        .map(|_| CODE_ALPHABET[rng.gen_range(0..CODE_ALPHABET.len())] as char)
        .collect()
}

/// Codes may be typed with spaces, dashes or in lower case.
pub fn normalize_code(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

#[derive(Debug, Clone, Serialize)]
pub struct EnrollmentCode {
    pub code: String,
    pub name: String,
    pub expires_at: String,
}

pub async fn create_enrollment_code(
    state: &AppState,
    user: &AuthUser,
    name: String,
) -> AppResult<EnrollmentCode> {
    user.require_manager()?;
    let code = new_code();
    let expires = chrono::Utc::now().timestamp() + ENROLLMENT_TTL_SECS;
    let (hash, name2, actor) = (sha256_hex(&code), name.clone(), user.actor());
    state
        .db
        .write(move |c| store::insert_enrollment_code(c, &hash, &name2, expires, &actor))
        .await?;
    Ok(EnrollmentCode {
        code,
        name,
        expires_at: chrono::DateTime::from_timestamp(expires, 0)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default(),
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct Enrollment {
    pub device_id: String,
    pub device_secret: String,
    pub name: String,
}

/// Exchanges a one-time code for a device id and secret (throttled per address).
pub async fn enroll(state: &AppState, code: &str, ip: Option<IpAddr>) -> AppResult<Enrollment> {
    let now = chrono::Utc::now().timestamp();
    state.throttle.check(ip, now)?;
    let code = normalize_code(code);
    let secret = random_token();
    let (code_hash, secret_hash, ip_text) = (
        sha256_hex(&code),
        sha256_hex(&secret),
        ip.map(|i| i.to_string()),
    );
    let device = state
        .db
        .write(move |c| store::redeem_code(c, &code_hash, &secret_hash, ip_text))
        .await?;
    match device {
        Some(d) => Ok(Enrollment {
            device_id: d.device_id,
            device_secret: secret,
            name: d.name,
        }),
        None => {
            state.throttle.fail(ip, now);
            Err(ErrorCode::EnrollmentCodeInvalid.into())
        }
    }
}

/// A device presented at sign-in must be enrolled, not revoked, with its secret.
pub async fn verify_device(
    state: &AppState,
    device_id: &str,
    secret: &str,
    ip: Option<IpAddr>,
) -> AppResult<()> {
    let now = chrono::Utc::now().timestamp();
    state.throttle.check(ip, now)?;
    let id = device_id.to_string();
    let row = state.db.read(move |c| store::device_secret(c, &id)).await?;
    let given = sha256_hex(secret);
    match row {
        Some((hash, false)) if hash == given => Ok(()),
        _ => {
            state.throttle.fail(ip, now);
            Err(AppError::msg(
                ErrorCode::InvalidCredentials,
                "This device is not enrolled or was revoked; enroll it again with a new code.",
            ))
        }
    }
}

pub async fn revoke_device(state: &AppState, user: &AuthUser, id: String) -> AppResult<()> {
    user.require_manager()?;
    let actor = user.actor();
    state
        .db
        .write(move |c| store::revoke_device(c, &id, &actor))
        .await
}

pub async fn list_devices(state: &AppState, user: &AuthUser) -> AppResult<Value> {
    user.require_manager()?;
    let (devices, codes) = state.db.read(store::list_devices).await?;
    Ok(json!({"devices": devices, "pending_codes": codes}))
}

// ---------------------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LimitSettings {
    #[serde(serialize_with = "ser_cents")]
    pub max_tx_amount: i64,
    #[serde(serialize_with = "ser_cents")]
    pub max_card_unsynced: i64,
    #[serde(serialize_with = "ser_cents")]
    pub max_site_unsynced: i64,
    pub stale_after_secs: i64,
    #[serde(serialize_with = "ser_cents")]
    pub stale_max_tx_amount: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ConsoleSettings {
    pub store_name: String,
    pub qr_single_use: bool,
    pub limits: LimitSettings,
}

/// The settings in force: the config file's values with the console's overrides on top,
/// and the limits the charge path applies.
#[derive(Debug, Clone)]
pub struct Effective {
    pub settings: ConsoleSettings,
    pub limits: Limits,
    /// Keys overridden in the console (the rest come from the config file).
    pub overridden: Vec<String>,
}

/// The keys the console may override, as config paths.
const SETTING_KEYS: [&str; 7] = [
    "site.name",
    "qr.single_use",
    "limits.max_tx_amount",
    "limits.max_card_unsynced",
    "limits.max_site_unsynced",
    "limits.stale_after_secs",
    "limits.stale_max_tx_amount",
];

fn apply_override(cfg: &mut Config, key: &str, value: &str) -> Result<(), String> {
    match key {
        "site.name" => cfg.site.name = value.to_string(),
        "qr.single_use" => {
            cfg.qr.single_use = value
                .parse()
                .map_err(|_| format!("{key}: must be true or false"))?;
        }
        "limits.max_tx_amount" => cfg.limits.max_tx_amount = value.to_string(),
        "limits.max_card_unsynced" => cfg.limits.max_card_unsynced = value.to_string(),
        "limits.max_site_unsynced" => cfg.limits.max_site_unsynced = value.to_string(),
        "limits.stale_after_secs" => {
            cfg.limits.stale_after_secs = value
                .parse()
                .map_err(|_| format!("{key}: must be a whole number of seconds"))?;
        }
        "limits.stale_max_tx_amount" => cfg.limits.stale_max_tx_amount = value.to_string(),
        _ => return Err(format!("{key}: not a console setting")),
    }
    Ok(())
}

impl Effective {
    /// Applies stored overrides to the config; a stored value that no longer validates is
    /// skipped (with a warning) so a store always starts.
    pub fn build(cfg: &Config, overrides: &[(String, String)]) -> Effective {
        let mut merged = cfg.clone();
        let mut overridden = Vec::new();
        for (k, v) in overrides {
            let mut trial = merged.clone();
            match apply_override(&mut trial, k, v)
                .and_then(|()| setting_errors(&trial).map_or(Ok(()), |e| Err(e.join("; "))))
            {
                Ok(()) => {
                    merged = trial;
                    overridden.push(k.clone());
                }
                Err(e) => tracing::warn!(key = %k, error = %e, "ignoring a stored console setting"),
            }
        }
        let cents = |s: &str| parse_cents(s).unwrap_or(0);
        Effective {
            settings: ConsoleSettings {
                store_name: merged.site.name.clone(),
                qr_single_use: merged.qr.single_use,
                limits: LimitSettings {
                    max_tx_amount: cents(&merged.limits.max_tx_amount),
                    max_card_unsynced: cents(&merged.limits.max_card_unsynced),
                    max_site_unsynced: cents(&merged.limits.max_site_unsynced),
                    stale_after_secs: merged.limits.stale_after_secs,
                    stale_max_tx_amount: cents(&merged.limits.stale_max_tx_amount),
                },
            },
            limits: merged.limits(),
            overridden,
        }
    }

    /// At startup: the config plus what the console stored.
    pub fn load(cfg: &Config, db: &crate::db::Db) -> Effective {
        match db.read_blocking(store::load_settings) {
            Ok(rows) => Effective::build(cfg, &rows),
            Err(e) => {
                tracing::warn!(error = %e, "could not read console settings; using the config file");
                Effective::build(cfg, &[])
            }
        }
    }
}

/// The config validation's messages about console-settable keys.
fn setting_errors(cfg: &Config) -> Option<Vec<String>> {
    let errs: Vec<String> = cfg
        .validate()
        .err()?
        .into_iter()
        .filter(|e| SETTING_KEYS.iter().any(|k| e.starts_with(k)))
        .collect();
    (!errs.is_empty()).then_some(errs)
}

/// The per-charge limits and the QR rule in force.
pub fn current_limits(state: &AppState) -> Limits {
    state.settings.read().limits.clone()
}

pub fn qr_single_use(state: &AppState) -> bool {
    state.settings.read().settings.qr_single_use
}

pub fn settings_view(state: &AppState) -> Value {
    let e = state.settings.read();
    json!({
        "settings": e.settings,
        "overridden": e.overridden,
        "timezone": state.cfg.timezone().name(),
    })
}

/// A partial update; amounts as JSON numbers or strings.
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsUpdate {
    pub store_name: Option<String>,
    pub qr_single_use: Option<bool>,
    pub limits: Option<LimitsUpdate>,
}

#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsUpdate {
    #[schema(value_type = Option<String>)]
    pub max_tx_amount: Option<Value>,
    #[schema(value_type = Option<String>)]
    pub max_card_unsynced: Option<Value>,
    #[schema(value_type = Option<String>)]
    pub max_site_unsynced: Option<Value>,
    pub stale_after_secs: Option<i64>,
    #[schema(value_type = Option<String>)]
    pub stale_max_tx_amount: Option<Value>,
}

fn amount_text(v: &Value, field: &str) -> AppResult<String> {
    let text = match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => {
            return Err(AppError::validation(
                field,
                format!("{field} must be an amount."),
            ))
        }
    };
    // Stored normalised ("2000" → "2000.00"); config validation judges the raw text first.
    Ok(parse_cents(&text).map_or(text, format_cents))
}

/// Validates with the config's own rules, stores, audits, then applies at once.
pub async fn update_settings(
    state: &AppState,
    user: &AuthUser,
    update: SettingsUpdate,
) -> AppResult<Value> {
    user.require_manager()?;
    let mut values: Vec<(String, String)> = Vec::new();
    if let Some(n) = &update.store_name {
        if n.chars().count() > 100 || n.chars().any(char::is_control) {
            return Err(AppError::validation(
                "site.name",
                "The store name may have at most 100 characters, without control characters.",
            ));
        }
        values.push(("site.name".into(), n.trim().to_string()));
    }
    if let Some(b) = update.qr_single_use {
        values.push(("qr.single_use".into(), b.to_string()));
    }
    if let Some(l) = &update.limits {
        for (key, v) in [
            ("limits.max_tx_amount", &l.max_tx_amount),
            ("limits.max_card_unsynced", &l.max_card_unsynced),
            ("limits.max_site_unsynced", &l.max_site_unsynced),
            ("limits.stale_max_tx_amount", &l.stale_max_tx_amount),
        ] {
            if let Some(v) = v {
                values.push((key.into(), amount_text(v, key)?));
            }
        }
        if let Some(s) = l.stale_after_secs {
            values.push(("limits.stale_after_secs".into(), s.to_string()));
        }
    }
    // Judge the result as a whole, exactly as a config file would be judged.
    let stored = state.db.read(store::load_settings).await?;
    let mut trial = state.cfg.as_ref().clone();
    for (k, v) in stored.iter().chain(values.iter()) {
        apply_override(&mut trial, k, v).map_err(|m| AppError::validation(k, m))?;
    }
    if let Some(errs) = setting_errors(&trial) {
        let first = errs.first().cloned().unwrap_or_default();
        let field = SETTING_KEYS
            .iter()
            .find(|k| first.starts_with(*k))
            .copied()
            .unwrap_or("settings");
        return Err(
            AppError::msg(ErrorCode::ValidationError, first).with_details(json!({
                "field": field,
                "errors": errs,
            })),
        );
    }
    let before = state.settings.read().settings.clone();
    let mut all = stored;
    for (k, v) in &values {
        all.retain(|(key, _)| key != k);
        all.push((k.clone(), v.clone()));
    }
    let after = Effective::build(&state.cfg, &all);
    let changes = json!({
        "before": before,
        "after": after.settings,
    });
    let actor = user.actor();
    state
        .db
        .write(move |c| store::save_settings(c, &values, changes, &actor))
        .await?;
    *state.settings.write() = after;
    Ok(settings_view(state))
}

// ---------------------------------------------------------------------------------------
// Settlements
// ---------------------------------------------------------------------------------------

pub const SETTLEMENT_MODES: [&str; 3] = ["realtime", "t_plus_1", "monthly"];

pub async fn create_settlement(
    state: &AppState,
    user: &AuthUser,
    mode: String,
    start_unix: i64,
    end_unix: i64,
) -> AppResult<store::SettlementView> {
    user.require(perm::GENERATE_SETTLEMENT)?;
    if !SETTLEMENT_MODES.contains(&mode.as_str()) {
        return Err(AppError::validation(
            "mode",
            format!("mode must be one of: {}.", SETTLEMENT_MODES.join(", ")),
        ));
    }
    if start_unix >= end_unix {
        return Err(AppError::validation(
            "period_end",
            "period_start must be before period_end.",
        ));
    }
    let cmd = SettlementCmd {
        mode,
        start_unix,
        end_unix,
        site_code: state.cfg.site.code.clone(),
        actor: user.actor(),
    };
    state
        .db
        .write(move |c| store::create_settlement(c, &cmd))
        .await
}

pub async fn list_settlements(
    state: &AppState,
    user: &AuthUser,
    limit: i64,
    offset: i64,
) -> AppResult<(Vec<store::SettlementView>, Pagination)> {
    user.require(perm::READ_SETTLEMENTS)?;
    state
        .db
        .read(move |c| store::list_settlements(c, limit, offset))
        .await
}

pub async fn settlement(
    state: &AppState,
    user: &AuthUser,
    id: String,
) -> AppResult<store::SettlementView> {
    user.require(perm::READ_SETTLEMENTS)?;
    state
        .db
        .read(move |c| store::settlement(c, &id))
        .await?
        .ok_or_else(|| AppError::msg(ErrorCode::NotFound, "No such settlement."))
}

// ---------------------------------------------------------------------------------------
// Audit log
// ---------------------------------------------------------------------------------------

pub async fn audit_log(
    state: &AppState,
    user: &AuthUser,
    filter: AuditFilter,
    limit: i64,
    offset: i64,
) -> AppResult<(Vec<store::AuditView>, Pagination)> {
    user.require_manager()?;
    state
        .db
        .read(move |c| store::list_audit(c, &filter, limit, offset))
        .await
}

// ---------------------------------------------------------------------------------------
// CSV export
// ---------------------------------------------------------------------------------------

const CSV_HEADER: [&str; 19] = [
    "tx_no",
    "type",
    "status",
    "created_at",
    "local_time",
    "card_no",
    "raw_amount",
    "discount",
    "final_amount",
    "refunded_amount",
    "remaining_refundable",
    "points_earned",
    "original_tx_no",
    "reason",
    "operator",
    "device_id",
    "external_order_id",
    "sync_state",
    "tx_id",
];

/// One CSV field: quoted when needed, and text that a spreadsheet would run as a
/// formula is prefixed with an apostrophe.
fn csv_field(out: &mut String, text: &str, is_text: bool) {
    let guarded;
    let text = if is_text && text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        guarded = format!("'{text}");
        guarded.as_str()
    } else {
        text
    };
    if text.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&text.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(text);
    }
}

fn csv_row(out: &mut String, fields: &[(&str, bool)]) {
    for (i, (f, is_text)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_field(out, f, *is_text);
    }
    out.push_str("\r\n");
}

/// The filtered transactions as UTF-8 CSV with a BOM (so spreadsheet programs read
/// Chinese text correctly), newest first, at most [`EXPORT_MAX_ROWS`] rows.
pub async fn export_csv(state: &AppState, user: &AuthUser, filter: TxFilter) -> AppResult<String> {
    user.require(perm::READ_TRANSACTIONS)?;
    let tz = state.cfg.timezone();
    state
        .db
        .read(move |c| {
            // One read transaction: pages see one consistent snapshot.
            let tx = c.unchecked_transaction()?;
            let mut out = String::from("\u{feff}");
            csv_row(
                &mut out,
                &CSV_HEADER.iter().map(|h| (*h, false)).collect::<Vec<_>>(),
            );
            let page = 2_000;
            let mut offset = 0;
            while offset < EXPORT_MAX_ROWS {
                let list = queries::list_transactions(
                    &tx,
                    &filter,
                    page.min(EXPORT_MAX_ROWS - offset),
                    offset,
                )?;
                for t in &list.transactions {
                    let local = chrono::DateTime::parse_from_rfc3339(&t.created_at)
                        .map(|d| d.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S").to_string())
                        .unwrap_or_default();
                    let opt_cents = |v: Option<i64>| v.map(format_cents).unwrap_or_default();
                    let (raw, disc, fin) = (
                        format_cents(t.raw_amount),
                        format_milli(t.discount_applied),
                        format_cents(t.final_amount),
                    );
                    let (refunded, remaining, points) = (
                        opt_cents(t.refunded_amount),
                        opt_cents(t.remaining_refundable),
                        t.points_earned.to_string(),
                    );
                    let s = |v: &Option<String>| v.clone().unwrap_or_default();
                    let (card, orig, reason, op, dev, ext) = (
                        s(&t.card_no),
                        s(&t.original_tx_no),
                        s(&t.reason),
                        s(&t.operator),
                        s(&t.device_id),
                        s(&t.external_order_id),
                    );
                    csv_row(
                        &mut out,
                        &[
                            (&t.tx_no, true),
                            (&t.tx_type, true),
                            (&t.status, true),
                            (&t.created_at, false),
                            (&local, false),
                            (&card, true),
                            (&raw, false),
                            (&disc, false),
                            (&fin, false),
                            (&refunded, false),
                            (&remaining, false),
                            (&points, false),
                            (&orig, true),
                            (&reason, true),
                            (&op, true),
                            (&dev, true),
                            (&ext, true),
                            (&t.sync_state, true),
                            (&t.id, true),
                        ],
                    );
                }
                let n = list.transactions.len() as i64;
                offset += n;
                if n < page || !list.pagination.has_next {
                    break;
                }
            }
            drop(tx);
            Ok(out)
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staff_rules() {
        assert!(may_manage(Role::Owner, Role::Owner));
        assert!(may_manage(Role::Owner, Role::Manager));
        assert!(may_manage(Role::Manager, Role::Cashier));
        assert!(!may_manage(Role::Manager, Role::Manager));
        assert!(!may_manage(Role::Manager, Role::Owner));
        assert!(!may_manage(Role::Cashier, Role::Cashier));
    }

    #[test]
    fn codes() {
        let c = new_code();
        assert_eq!(c.len(), CODE_LEN);
        assert!(c.bytes().all(|b| CODE_ALPHABET.contains(&b)));
        assert_eq!(normalize_code(" abcd-efgh 23 "), "ABCDEFGH23");
    }

    #[test]
    fn csv_quoting_and_formula_guard() {
        let mut out = String::new();
        csv_row(
            &mut out,
            &[
                ("a,b", true),
                ("say \"hi\"", true),
                ("=SUM(A1)", true),
                ("-1.00", false),
                ("退款", true),
            ],
        );
        assert_eq!(out, "\"a,b\",\"say \"\"hi\"\"\",'=SUM(A1),-1.00,退款\r\n");
    }

    #[test]
    fn settings_follow_config_rules() {
        let cfg = Config::default();
        let e = Effective::build(
            &cfg,
            &[
                ("limits.max_tx_amount".into(), "150.50".into()),
                ("limits.max_card_unsynced".into(), "1.234".into()),
                ("site.name".into(), "Shop".into()),
            ],
        );
        assert_eq!(e.limits.max_tx_cents, 15_050);
        assert_eq!(e.settings.limits.max_card_unsynced, 500_000);
        assert_eq!(e.settings.store_name, "Shop");
        assert_eq!(e.overridden, vec!["limits.max_tx_amount", "site.name"]);
    }
}
