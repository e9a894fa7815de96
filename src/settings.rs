//! The settings in force: the config file's values with what a manager saved in the
//! console on top, validated by the config's own rules, and the limits the charge path
//! applies. `AppState` holds one `Effective`; `service::settings` reads and changes it.
//!
//! Every console setting is a field of `ConsoleSettings`; the limits are the config's own
//! `[limits]` struct (`config::LimitSettings`). Keys are config paths ("site.name",
//! "limits.max_tx_amount"), which is also how the settings table stores them. A stored
//! row, a console update and a config-file value all go through that struct's serde, so
//! the keys and their types are declared once.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::{Config, LimitSettings};
use crate::db::settings as store;
use crate::domain::limits::Limits;
use crate::domain::Role;

/// For a whole-number setting, a number written with a zero fraction ("3600.0", an
/// integer to JSON Schema and to JavaScript) as the integer it is; anything else as is.
fn whole_if_integer(slot: &Value, value: Value) -> Value {
    let (Value::Number(old), Value::Number(new)) = (slot, &value) else {
        return value;
    };
    let text = new.to_string();
    match text.split_once('.') {
        Some((int, frac))
            if old.is_i64() && !frac.is_empty() && frac.bytes().all(|b| b == b'0') =>
        {
            int.parse::<serde_json::Number>()
                .map_or(value, Value::Number)
        }
        _ => value,
    }
}

/// What the console shows and changes (GET/PUT /api/v1/console/settings `settings`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsoleSettings {
    pub store_name: String,
    /// IANA time zone of the store ("Asia/Taipei"): what "today" and a business day are.
    pub timezone: String,
    /// The label shown with amounts ("NT$").
    pub currency: String,
    pub qr_single_use: bool,
    pub limits: LimitSettings,
}

/// The console settings whose config key differs from their place in `ConsoleSettings`
/// (a JSON pointer). Every other key is `limits.<field>` ↔ `/limits/<field>`.
const RENAMED: [(&str, &str); 4] = [
    ("site.name", "/store_name"),
    ("site.timezone", "/timezone"),
    ("site.currency", "/currency"),
    ("qr.single_use", "/qr_single_use"),
];

/// Whether `role` may change `key` (the caller has already required a manager). The
/// risk settings — every offline limit and single-use QR — are the owner's: one
/// manager's request could otherwise switch the safeguards off (issue 12). The store
/// name stays a manager's.
pub fn may_change(role: Role, key: &str) -> bool {
    role == Role::Owner || !is_risk_setting(key)
}

/// A setting that bounds what a stolen or misused till can spend.
pub fn is_risk_setting(key: &str) -> bool {
    // The timezone moves business-day boundaries, so which sales a settlement covers.
    key == "qr.single_use" || key == "site.timezone" || key.starts_with("limits.")
}

/// The `LimitSettings` field names, read from the struct itself.
fn limit_fields() -> Vec<String> {
    match serde_json::to_value(LimitSettings::default()) {
        Ok(Value::Object(map)) => map.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

/// Every key the console may override, as config paths.
pub fn setting_keys() -> Vec<String> {
    let mut keys: Vec<String> = RENAMED.iter().map(|(k, _)| k.to_string()).collect();
    keys.extend(limit_fields().into_iter().map(|f| format!("limits.{f}")));
    keys
}

/// Where `key` lives inside `ConsoleSettings`' JSON, `None` for a key the console does
/// not own.
fn pointer(key: &str) -> Option<String> {
    if let Some((_, p)) = RENAMED.iter().find(|(k, _)| *k == key) {
        return Some((*p).to_string());
    }
    let field = key.strip_prefix("limits.")?;
    limit_fields()
        .iter()
        .any(|f| f == field)
        .then(|| format!("/limits/{field}"))
}

impl ConsoleSettings {
    pub fn from_config(cfg: &Config) -> ConsoleSettings {
        ConsoleSettings {
            store_name: cfg.site.name.clone(),
            timezone: cfg.site.timezone.clone(),
            currency: cfg.site.currency.clone(),
            qr_single_use: cfg.qr.single_use,
            limits: cfg.limits.clone(),
        }
    }

    /// Writes these settings into `cfg`, so the config's validation can judge them.
    fn apply_to(&self, cfg: &mut Config) {
        cfg.site.name = self.store_name.clone();
        cfg.site.timezone = self.timezone.clone();
        cfg.site.currency = self.currency.clone();
        cfg.qr.single_use = self.qr_single_use;
        cfg.limits = self.limits.clone();
    }

    fn to_json(&self, key: &str) -> Result<Value, String> {
        serde_json::to_value(self).map_err(|e| format!("{key}: {e}"))
    }

    /// Sets one key from a JSON value (the console's update), judged by the field's type:
    /// an amount must be a `Money`, a switch a bool, and so on.
    pub fn set(&mut self, key: &str, value: Value) -> Result<(), String> {
        let ptr = pointer(key).ok_or_else(|| format!("{key}: not a console setting"))?;
        let mut json = self.to_json(key)?;
        match json.pointer_mut(&ptr) {
            Some(slot) => *slot = whole_if_integer(slot, value),
            None => return Err(format!("{key}: not a console setting")),
        }
        *self = serde_json::from_value(json).map_err(|e| format!("{key}: {e}"))?;
        Ok(())
    }

    /// Sets one key from its text in the settings table ("Shop", "true", "2000.00",
    /// "3600"): the field's current JSON type says how to read the text.
    pub fn set_text(&mut self, key: &str, text: &str) -> Result<(), String> {
        let ptr = pointer(key).ok_or_else(|| format!("{key}: not a console setting"))?;
        let value = match self.to_json(key)?.pointer(&ptr) {
            Some(Value::Bool(_)) => Value::Bool(
                text.parse()
                    .map_err(|_| format!("{key}: must be true or false"))?,
            ),
            // Anything not a number is handed over as text, so an amount gets its own
            // message ("\"abc\" must be a positive amount…").
            Some(Value::Number(_)) => text
                .parse::<serde_json::Number>()
                .map_or_else(|_| Value::String(text.to_string()), Value::Number),
            _ => Value::String(text.to_string()),
        };
        self.set(key, value)
    }

    /// The text the settings table holds for `key`: the inverse of `set_text`, amounts
    /// normalised to two decimals.
    pub fn text(&self, key: &str) -> Result<String, String> {
        let ptr = pointer(key).ok_or_else(|| format!("{key}: not a console setting"))?;
        match self.to_json(key)?.pointer(&ptr) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(Value::Number(n)) => Ok(n.to_string()),
            Some(Value::Bool(b)) => Ok(b.to_string()),
            _ => Err(format!("{key}: not a console setting")),
        }
    }

    /// The config validation's messages about console keys, for these settings on top of
    /// `base`: the config file's rules are the console's rules.
    pub fn problems(&self, base: &Config) -> Vec<String> {
        let mut trial = base.clone();
        self.apply_to(&mut trial);
        let keys = setting_keys();
        let mut errs: Vec<String> = trial
            .validate()
            .err()
            .unwrap_or_default()
            .into_iter()
            .filter(|e| keys.iter().any(|k| e.starts_with(k.as_str())))
            .collect();
        // The ceilings are the file's, whatever the console holds.
        for e in base.limit_ceilings.problems(&self.limits, &base.limits) {
            if !errs.contains(&e) {
                errs.push(e);
            }
        }
        errs
    }
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

impl Effective {
    /// Applies stored overrides to the config; a stored value that no longer validates is
    /// skipped (with a warning) so a store always starts.
    pub fn build(cfg: &Config, overrides: &[(String, String)]) -> Effective {
        let mut merged = ConsoleSettings::from_config(cfg);
        let mut overridden = Vec::new();
        for (k, v) in overrides {
            let mut trial = merged.clone();
            let checked = trial.set_text(k, v).and_then(|()| {
                let errs = trial.problems(cfg);
                if errs.is_empty() {
                    Ok(())
                } else {
                    Err(errs.join("; "))
                }
            });
            match checked {
                Ok(()) => {
                    merged = trial;
                    overridden.push(k.clone());
                }
                Err(e) => tracing::warn!(key = %k, error = %e, "ignoring a stored console setting"),
            }
        }
        Effective {
            limits: merged.limits.in_force(cfg.standalone()),
            settings: merged,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::money::Money;
    use serde_json::json;

    /// A whole number written "3600.0" is 3600 (JSON Schema calls it an integer); a real
    /// fraction, or a zero fraction where an amount goes, stays as sent.
    #[test]
    fn whole_numbers_with_a_zero_fraction() {
        let mut s = ConsoleSettings::from_config(&Config::default());
        let n = |t: &str| Value::Number(t.parse().unwrap());
        s.set("limits.stale_after_secs", n("3600.0")).unwrap();
        assert_eq!(s.limits.stale_after_secs, 3600);
        s.set("limits.stale_after_secs", n("7200.000")).unwrap();
        assert_eq!(s.limits.stale_after_secs, 7200);
        assert!(s.set("limits.stale_after_secs", n("3600.5")).is_err());
        assert_eq!(s.limits.stale_after_secs, 7200);
        s.set("limits.max_tx_amount", n("150.0")).unwrap();
        assert_eq!(s.limits.max_tx_amount.cents(), 15_000);
    }

    #[test]
    fn settings_follow_config_rules() {
        let cfg = Config::default();
        let e = Effective::build(
            &cfg,
            &[
                ("limits.max_tx_amount".into(), "150.50".into()),
                ("limits.max_card_unsynced".into(), "1.234".into()),
                ("limits.stale_after_secs".into(), "-5".into()),
                ("qr.single_use".into(), "maybe".into()),
                ("limits.nope".into(), "1".into()),
                ("site.name".into(), "Shop".into()),
            ],
        );
        assert_eq!(e.limits.max_tx_cents, 15_050);
        assert_eq!(e.settings.limits.max_card_unsynced.cents(), 500_000);
        assert_eq!(e.settings.limits.stale_after_secs, 86_400);
        assert!(e.settings.qr_single_use);
        assert_eq!(e.settings.store_name, "Shop");
        assert_eq!(e.overridden, vec!["limits.max_tx_amount", "site.name"]);
    }

    /// The keys the console shows (GET) are exactly the keys it stores, and each is
    /// declared once: as a field of `ConsoleSettings` / `LimitSettings`.
    #[test]
    fn every_key_is_declared_once() {
        let keys = setting_keys();
        let mut unique = keys.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), keys.len(), "{keys:?}");
        assert_eq!(
            keys,
            [
                "site.name",
                "site.timezone",
                "site.currency",
                "qr.single_use",
                "limits.max_card_unsynced",
                "limits.max_card_unsynced_topup",
                "limits.max_shift_topup",
                "limits.max_site_unsynced",
                "limits.max_site_unsynced_topup",
                "limits.max_topup_amount",
                "limits.max_tx_amount",
                "limits.stale_after_secs",
                "limits.stale_max_tx_amount",
            ]
        );
        // The GET body's leaves are these keys, one to one.
        let shown = serde_json::to_value(ConsoleSettings::from_config(&Config::default())).unwrap();
        let mut leaves = Vec::new();
        for (k, v) in shown.as_object().unwrap() {
            match v.as_object() {
                Some(inner) => leaves.extend(inner.keys().map(|f| format!("{k}.{f}"))),
                None => leaves.push(k.clone()),
            }
        }
        assert_eq!(leaves.len(), keys.len(), "{leaves:?}");
        for key in &keys {
            assert!(pointer(key).is_some(), "{key}");
            assert!(ConsoleSettings::from_config(&Config::default())
                .text(key)
                .is_ok());
        }
        // Every `[limits]` key in the config file is a console key.
        for k in crate::config::known_keys() {
            if k.starts_with("limits.") {
                assert!(keys.contains(&k), "{k}");
            }
        }
    }

    #[test]
    fn overrides_round_trip_through_their_stored_text() {
        let base = ConsoleSettings::from_config(&Config::default());
        let mut changed = base.clone();
        changed.set("site.name", json!("台北信義店")).unwrap();
        changed.set("qr.single_use", json!(false)).unwrap();
        changed.set("limits.max_tx_amount", json!(10)).unwrap();
        changed
            .set("limits.max_card_unsynced", json!("30.5"))
            .unwrap();
        changed.set("limits.stale_after_secs", json!(0)).unwrap();
        let rows: Vec<(String, String)> = setting_keys()
            .into_iter()
            .map(|k| {
                let t = changed.text(&k).unwrap();
                (k, t)
            })
            .collect();
        // The on-disk form is what older versions wrote and read.
        assert!(rows.contains(&("limits.max_tx_amount".into(), "10.00".into())));
        assert!(rows.contains(&("limits.max_card_unsynced".into(), "30.50".into())));
        assert!(rows.contains(&("qr.single_use".into(), "false".into())));
        assert!(rows.contains(&("limits.stale_after_secs".into(), "0".into())));
        let mut back = base;
        for (k, t) in &rows {
            back.set_text(k, t).unwrap();
        }
        assert_eq!(back, changed);
        // A store name that looks like a number or a bool stays text.
        back.set_text("site.name", "123").unwrap();
        back.set_text("site.name", "true").unwrap();
        assert_eq!(back.store_name, "true");
    }

    #[test]
    fn bad_values_name_their_key() {
        let mut s = ConsoleSettings::from_config(&Config::default());
        for (key, value, msg) in [
            (
                "limits.max_tx_amount",
                json!("1.234"),
                "limits.max_tx_amount: \"1.234\" must be a positive amount with at most 2 decimals",
            ),
            (
                "limits.max_site_unsynced",
                json!("-5"),
                "limits.max_site_unsynced: \"-5\" must be a positive amount with at most 2 decimals",
            ),
            ("limits.nope", json!(1), "limits.nope: not a console setting"),
            ("site.code", json!("X"), "site.code: not a console setting"),
        ] {
            assert_eq!(s.set(key, value), Err(msg.to_string()));
        }
        assert!(s.set("limits.max_tx_amount", json!(true)).is_err());
        assert!(s.set("limits.stale_after_secs", json!("5")).is_err());
        assert!(s.set("qr.single_use", json!("no")).is_err());
        assert_eq!(s, ConsoleSettings::from_config(&Config::default()));
        s.set("limits.stale_after_secs", json!(-1)).unwrap();
        assert_eq!(
            s.problems(&Config::default()),
            vec!["limits.stale_after_secs: must be 0 (off) or more"]
        );
        s.set("site.name", json!("")).unwrap();
        assert_eq!(s.problems(&Config::default()).len(), 2);
    }

    #[test]
    fn only_the_owner_changes_risk_settings() {
        for key in setting_keys() {
            assert!(may_change(Role::Owner, &key), "{key}");
            let manager = may_change(Role::Manager, &key);
            assert_eq!(
                manager,
                key == "site.name" || key == "site.currency",
                "{key}"
            );
        }
    }

    #[test]
    fn console_limits_stay_under_the_file_ceilings() {
        let cfg = Config::default();
        let mut s = ConsoleSettings::from_config(&cfg);
        // Unset ceilings are the file's own values: lowering and restoring pass.
        s.set("limits.max_tx_amount", json!("10.00")).unwrap();
        assert!(s.problems(&cfg).is_empty());
        s.set("limits.max_tx_amount", json!("2000.00")).unwrap();
        assert!(s.problems(&cfg).is_empty());
        s.set("limits.max_tx_amount", json!("2000.01")).unwrap();
        assert_eq!(
            s.problems(&cfg),
            vec!["limits.max_tx_amount: 2000.01 is above its ceiling 2000.00 (limit_ceilings.max_tx_amount in the installation's config file)"]
        );
        // The file raises a ceiling.
        let mut raised = cfg.clone();
        raised.limit_ceilings.max_tx_amount = Money::from_cents(500_000);
        assert!(s.problems(&raised).is_empty());
        s.set("limits.max_tx_amount", json!("9999999999.99"))
            .unwrap();
        assert_eq!(s.problems(&raised).len(), 1);
        // Switching the staleness rule off is the loosest value of all.
        let mut s = ConsoleSettings::from_config(&cfg);
        s.set("limits.stale_after_secs", json!(0)).unwrap();
        assert!(s.problems(&cfg)[0].starts_with("limits.stale_after_secs"));
        s.set("limits.stale_after_secs", json!(3600)).unwrap();
        assert!(s.problems(&cfg).is_empty());
        raised.limit_ceilings.stale_after_secs = Some(0);
        s.set("limits.stale_after_secs", json!(0)).unwrap();
        assert!(s.problems(&raised).is_empty());
        // A stored value above a lowered ceiling is dropped at start.
        let mut lowered = cfg.clone();
        lowered.limit_ceilings.max_tx_amount = Money::from_cents(100_000);
        lowered.limits.max_tx_amount = Money::from_cents(100_000).unwrap();
        let e = Effective::build(
            &lowered,
            &[("limits.max_tx_amount".into(), "1500.00".into())],
        );
        assert_eq!(e.limits.max_tx_cents, 100_000);
        assert!(e.overridden.is_empty());
    }
}
