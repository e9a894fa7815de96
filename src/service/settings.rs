//! Runtime settings: the limits and switches in force (config file overlaid with what a
//! manager saved in the console), validated as a whole before they are saved.

use serde_json::{json, Value};

use crate::db::settings as store;
use crate::domain::limits::Limits;
use crate::domain::money::{format_cents, parse_cents};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::service::auth::AuthUser;
use crate::settings::{apply_override, setting_errors, Effective, SETTING_KEYS};
use crate::state::AppState;

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
