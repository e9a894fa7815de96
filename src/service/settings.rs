//! Runtime settings: the limits and switches in force (config file overlaid with what a
//! manager saved in the console), validated as a whole before they are saved.

use serde_json::{json, Value};

use crate::db::settings as store;
use crate::domain::limits::Limits;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::service::auth::AuthUser;
use crate::service::state::AppState;
use crate::settings::{may_change, setting_keys, ConsoleSettings, Effective};

/// The per-charge limits and the QR rule in force.
pub fn current_limits(state: &AppState) -> Limits {
    state.settings.read().limits.clone()
}

/// The store's timezone: what "today", a business day and receipt times mean. Every
/// caller asks here, so the zone can come from the console's settings as well as the file.
pub fn store_timezone(state: &AppState) -> chrono_tz::Tz {
    // Validated before it was saved; the file's zone if it somehow is not one.
    state
        .settings
        .read()
        .settings
        .timezone
        .parse()
        .unwrap_or_else(|_| state.cfg.timezone())
}

/// The label shown with amounts ("NT$").
pub fn store_currency(state: &AppState) -> String {
    state.settings.read().settings.currency.clone()
}

pub fn qr_single_use(state: &AppState) -> bool {
    state.settings.read().settings.qr_single_use
}

/// The settings in force, which keys the console overrides, and the store's timezone.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct SettingsView {
    pub settings: ConsoleSettings,
    /// Keys saved in the console; the rest come from the config file.
    pub overridden: Vec<String>,
    pub timezone: String,
    /// The most the console may set each limit to (the installation's config file). For
    /// `stale_after_secs` the longest allowed, 0 = any (switching the rule off included).
    pub ceilings: crate::config::LimitSettings,
}

pub fn settings_view(state: &AppState) -> SettingsView {
    let e = state.settings.read();
    SettingsView {
        settings: e.settings.clone(),
        overridden: e.overridden.clone(),
        timezone: store_timezone(state).name().to_string(),
        ceilings: state.cfg.limit_ceilings.effective(&state.cfg.limits),
    }
}

/// A partial update. `limits` holds any of `LimitSettings`' fields, each judged by that
/// field's type (amounts as JSON numbers or strings), so a new limit needs nothing here.
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsUpdate {
    #[schema(value_type = Option<crate::api_schema::StoreName>)]
    pub store_name: Option<String>,
    /// An IANA time zone such as Asia/Taipei (owner only).
    #[schema(value_type = Option<crate::api_schema::TimeZoneName>)]
    pub timezone: Option<String>,
    /// 1-8 characters, such as NT$.
    #[schema(value_type = Option<crate::api_schema::CurrencyLabel>)]
    pub currency: Option<String>,
    pub qr_single_use: Option<bool>,
    #[schema(value_type = Option<crate::api_schema::LimitsInput>)]
    pub limits: Option<serde_json::Map<String, Value>>,
}

/// A settings error: the first message, the key as `field`, and every message.
fn settings_error(field: &str, errs: Vec<String>) -> AppError {
    settings_error_as(ErrorCode::ValidationError, field, errs)
}

fn settings_error_as(code: ErrorCode, field: &str, errs: Vec<String>) -> AppError {
    let first = errs.first().cloned().unwrap_or_default();
    AppError::msg(code, first).with_details(json!({
        "field": field,
        "errors": errs,
    }))
}

/// Validates with the config's own rules, stores, audits, then applies at once.
pub async fn update_settings(
    state: &AppState,
    user: &AuthUser,
    update: SettingsUpdate,
) -> AppResult<SettingsView> {
    user.require_manager()?;
    let mut changes: Vec<(String, Value)> = Vec::new();
    if let Some(n) = &update.store_name {
        if n.chars().count() > 100 || n.chars().any(char::is_control) {
            return Err(AppError::validation(
                "site.name",
                "The store name may have at most 100 characters, without control characters.",
            ));
        }
        changes.push(("site.name".into(), Value::String(n.trim().to_string())));
    }
    if let Some(z) = &update.timezone {
        changes.push(("site.timezone".into(), Value::String(z.trim().to_string())));
    }
    if let Some(c) = &update.currency {
        changes.push(("site.currency".into(), Value::String(c.trim().to_string())));
    }
    if let Some(b) = update.qr_single_use {
        changes.push(("qr.single_use".into(), Value::Bool(b)));
    }
    let keys = setting_keys();
    for (field, v) in update.limits.unwrap_or_default() {
        let key = format!("limits.{field}");
        if !keys.contains(&key) {
            // As serde's deny_unknown_fields reported it when the limits were a struct.
            return Err(AppError::msg(
                ErrorCode::InvalidJson,
                format!("Invalid request body: unknown field `{field}` in limits"),
            ));
        }
        changes.push((key, v));
    }
    // A risk setting sent unchanged is not a change: the console's form sends every
    // field, and a manager may still rename the store with it. Such a value is dropped,
    // not stored, so it does not pin the limit in the console.
    let current = state.settings.read().settings.clone();
    let mut allowed = Vec::with_capacity(changes.len());
    for (key, value) in changes {
        if may_change(user.role, &key) {
            allowed.push((key, value));
            continue;
        }
        let mut proposed = current.clone();
        let unchanged = proposed.set(&key, value).is_ok() && proposed == current;
        if !unchanged {
            return Err(AppError::msg(
                ErrorCode::PermissionDenied,
                format!(
                    "Only the owner may change {key}: it is one of the store's payment safeguards."
                ),
            )
            .with_details(
                json!({"field": key, "role": user.role.as_str(), "reason": "owner_only"}),
            ));
        }
    }
    let changes = allowed;
    // Judge the result as a whole, exactly as a config file would be judged.
    let stored = state.db.read(store::load_settings).await?;
    let mut trial = ConsoleSettings::from_config(&state.cfg);
    for (k, v) in &stored {
        trial
            .set_text(k, v)
            .map_err(|m| settings_error(k, vec![m]))?;
    }
    for (k, v) in &changes {
        trial
            .set(k, v.clone())
            .map_err(|m| settings_error(k, vec![m]))?;
    }
    let errs = trial.problems(&state.cfg);
    if !errs.is_empty() {
        let field = keys
            .iter()
            .find(|k| errs.first().is_some_and(|e| e.starts_with(k.as_str())))
            .map_or("settings", String::as_str);
        // Above a ceiling is a rule of this installation, not a malformed value: 422.
        let above = state
            .cfg
            .limit_ceilings
            .problems(&trial.limits, &state.cfg.limits);
        let code = if errs.iter().all(|e| above.contains(e)) {
            ErrorCode::LimitAboveCeiling
        } else {
            ErrorCode::ValidationError
        };
        return Err(settings_error_as(code, field, errs));
    }
    // Stored as text, amounts normalised ("2000" → "2000.00"), as always.
    let mut values: Vec<(String, String)> = Vec::with_capacity(changes.len());
    for (k, _) in &changes {
        let text = trial.text(k).map_err(|m| settings_error(k, vec![m]))?;
        values.push((k.clone(), text));
    }
    let before = state.settings.read().settings.clone();
    let mut all = stored;
    for (k, v) in &values {
        all.retain(|(key, _)| key != k);
        all.push((k.clone(), v.clone()));
    }
    let after = Effective::build(&state.cfg, &all);
    // Per key, the value before and after, so the audit log answers "who raised the
    // limit, from what" without diffing the two snapshots.
    let changed: Vec<Value> = values
        .iter()
        .map(|(k, new)| json!({"key": k, "old": before.text(k).ok(), "new": new}))
        .collect();
    let changes = json!({
        "before": before,
        "after": after.settings,
        "changed": changed,
    });
    let actor = user.actor();
    state
        .db
        .write(move |c| store::save_settings(c, &values, changes, &actor))
        .await?;
    *state.settings.write() = after;
    Ok(settings_view(state))
}
