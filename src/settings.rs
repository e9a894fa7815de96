//! The settings in force: the config file's values with what a manager saved in the
//! console on top, validated by the config's own rules, and the limits the charge path
//! applies. `AppState` holds one `Effective`; `service::settings` reads and changes it.

use serde::Serialize;

use crate::config::Config;
use crate::db::settings as store;
use crate::domain::limits::Limits;
use crate::domain::money::{parse_cents, ser_cents};

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
pub(crate) const SETTING_KEYS: [&str; 7] = [
    "site.name",
    "qr.single_use",
    "limits.max_tx_amount",
    "limits.max_card_unsynced",
    "limits.max_site_unsynced",
    "limits.stale_after_secs",
    "limits.stale_max_tx_amount",
];

pub(crate) fn apply_override(cfg: &mut Config, key: &str, value: &str) -> Result<(), String> {
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
pub(crate) fn setting_errors(cfg: &Config) -> Option<Vec<String>> {
    let errs: Vec<String> = cfg
        .validate()
        .err()?
        .into_iter()
        .filter(|e| SETTING_KEYS.iter().any(|k| e.starts_with(k)))
        .collect();
    (!errs.is_empty()).then_some(errs)
}

#[cfg(test)]
mod tests {
    use super::*;

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
