//! The `[limits]` section: the offline risk limits. This one struct is also the console's
//! `settings.limits` object (GET and PUT /api/v1/console/settings) and the rows of the
//! settings table (`limits.<field>`, see `crate::settings`), so a new limit is a field
//! here, its default, a rule in `problems` unless its type already bounds it, and its use
//! in `in_force`.

use serde::{Deserialize, Serialize};

use crate::domain::limits::{Limits, TopupLimits};
use crate::domain::money::{format_cents, Money};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LimitSettings {
    /// Largest single charge: the amount the cashier enters, before the member discount.
    pub max_tx_amount: Money,
    /// Largest unsynced spend one card may accumulate at this edge.
    pub max_card_unsynced: Money,
    /// Largest unsynced spend the whole site may accumulate.
    pub max_site_unsynced: Money,
    /// Seconds without a successful pull after which only small charges pass; 0 = off.
    pub stale_after_secs: i64,
    /// The largest charge (as entered, before the discount) allowed while the replica is
    /// stale.
    pub stale_max_tx_amount: Money,
    /// Largest single counter top-up.
    pub max_topup_amount: Money,
    /// Largest total of top-ups one card may hold at this edge before central confirms
    /// them: a card frozen at central after the last pull is topped up here and refused
    /// there, and what the member spent of it here meanwhile is lost.
    pub max_card_unsynced_topup: Money,
    /// Largest total of top-ups one person may take in a business day (from their open
    /// shift's start when it began the day before). Closing a shift and opening another
    /// does not start the count again.
    pub max_shift_topup: Money,
    /// Largest total of top-ups the whole site may hold unconfirmed by central.
    pub max_site_unsynced_topup: Money,
}

/// The `[limit_ceilings]` section: how far the console may raise each `[limits]` value.
/// The console (owner only) may set a limit up to its ceiling; only this file raises a
/// ceiling. A ceiling left unset is the file's own `[limits]` value, so by default the
/// console can tighten a limit, or restore it, but never loosen it past what the
/// installation chose (issue 12: one console request had raised every limit to
/// 9,999,999,999.99).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitCeilingSettings {
    pub max_tx_amount: Option<Money>,
    pub max_card_unsynced: Option<Money>,
    pub max_site_unsynced: Option<Money>,
    pub stale_max_tx_amount: Option<Money>,
    pub max_topup_amount: Option<Money>,
    pub max_card_unsynced_topup: Option<Money>,
    pub max_shift_topup: Option<Money>,
    pub max_site_unsynced_topup: Option<Money>,
    /// Longest `stale_after_secs` the console may set; 0 lets it switch the rule off.
    pub stale_after_secs: Option<i64>,
}

impl LimitCeilingSettings {
    /// One "limits.<key>: …" line per value of `limits` above its ceiling. `file` is the
    /// config file's own `[limits]`: the ceiling of a key this section leaves unset.
    /// (Called with `limits == file` for the file itself: a ceiling set below the file's
    /// own limit is a mistake in the file.)
    /// The most the console may set each limit to: this section's value, else the file's
    /// own limit. For `stale_after_secs` the longest allowed; 0 = any, off included.
    pub fn effective(&self, file: &LimitSettings) -> LimitSettings {
        LimitSettings {
            max_tx_amount: self.max_tx_amount.unwrap_or(file.max_tx_amount),
            max_card_unsynced: self.max_card_unsynced.unwrap_or(file.max_card_unsynced),
            max_site_unsynced: self.max_site_unsynced.unwrap_or(file.max_site_unsynced),
            stale_after_secs: self.stale_after_secs.unwrap_or(file.stale_after_secs),
            stale_max_tx_amount: self.stale_max_tx_amount.unwrap_or(file.stale_max_tx_amount),
            max_topup_amount: self.max_topup_amount.unwrap_or(file.max_topup_amount),
            max_card_unsynced_topup: self
                .max_card_unsynced_topup
                .unwrap_or(file.max_card_unsynced_topup),
            max_shift_topup: self.max_shift_topup.unwrap_or(file.max_shift_topup),
            max_site_unsynced_topup: self
                .max_site_unsynced_topup
                .unwrap_or(file.max_site_unsynced_topup),
        }
    }

    pub fn problems(&self, limits: &LimitSettings, file: &LimitSettings) -> Vec<String> {
        let mut errs = Vec::new();
        let ceiling = self.effective(file);
        let amounts = [
            ("max_tx_amount", limits.max_tx_amount, ceiling.max_tx_amount),
            (
                "max_card_unsynced",
                limits.max_card_unsynced,
                ceiling.max_card_unsynced,
            ),
            (
                "max_site_unsynced",
                limits.max_site_unsynced,
                ceiling.max_site_unsynced,
            ),
            (
                "stale_max_tx_amount",
                limits.stale_max_tx_amount,
                ceiling.stale_max_tx_amount,
            ),
            (
                "max_topup_amount",
                limits.max_topup_amount,
                ceiling.max_topup_amount,
            ),
            (
                "max_card_unsynced_topup",
                limits.max_card_unsynced_topup,
                ceiling.max_card_unsynced_topup,
            ),
            (
                "max_shift_topup",
                limits.max_shift_topup,
                ceiling.max_shift_topup,
            ),
            (
                "max_site_unsynced_topup",
                limits.max_site_unsynced_topup,
                ceiling.max_site_unsynced_topup,
            ),
        ];
        for (key, value, ceiling) in amounts {
            if value > ceiling {
                errs.push(format!(
                    "limits.{key}: {} is above its ceiling {} (limit_ceilings.{key} in the installation's config file)",
                    format_cents(value.cents()),
                    format_cents(ceiling.cents())
                ));
            }
        }
        let stale_ceiling = ceiling.stale_after_secs;
        // 0 = the rule is off: the loosest value of all, allowed only under a ceiling of 0.
        let loosest = |secs: i64| if secs == 0 { i64::MAX } else { secs };
        if stale_ceiling >= 0 && loosest(limits.stale_after_secs) > loosest(stale_ceiling) {
            errs.push(format!(
                "limits.stale_after_secs: {} is above its ceiling {stale_ceiling} (0 = off; limit_ceilings.stale_after_secs in the installation's config file)",
                limits.stale_after_secs
            ));
        }
        if self.stale_after_secs.is_some_and(|s| s < 0) {
            errs.push("limit_ceilings.stale_after_secs: must be 0 (off allowed) or more".into());
        }
        errs
    }
}

/// Defaults are written as units × 100 cents and built in `const` blocks: a bad one stops
/// the build, so a `Money` default cannot fail at run time.
const fn money(cents: i64) -> Money {
    match Money::from_cents(cents) {
        Some(m) => m,
        // Only ever evaluated at compile time (see `Default` below).
        None => panic!("default limit out of range"),
    }
}

impl Default for LimitSettings {
    fn default() -> Self {
        LimitSettings {
            max_tx_amount: const { money(2_000 * 100) },
            max_card_unsynced: const { money(5_000 * 100) },
            max_site_unsynced: const { money(200_000 * 100) },
            stale_after_secs: 24 * 3600,
            stale_max_tx_amount: const { money(100 * 100) },
            max_topup_amount: const { money(5_000 * 100) },
            max_card_unsynced_topup: const { money(10_000 * 100) },
            max_shift_topup: const { money(50_000 * 100) },
            max_site_unsynced_topup: const { money(200_000 * 100) },
        }
    }
}

impl LimitSettings {
    /// The rules the field types do not already enforce (a `Money` is always a positive
    /// amount), one "limits.<key>: …" line each. The config file and the console share it.
    pub fn problems(&self) -> Vec<String> {
        let mut errs = Vec::new();
        if self.stale_after_secs < 0 {
            errs.push("limits.stale_after_secs: must be 0 (off) or more".into());
        }
        errs
    }

    /// What the charge rule applies: the only conversion from settings to
    /// `domain::limits::Limits`, which stays free of serde and configuration.
    pub fn in_force(&self, standalone: bool) -> Limits {
        Limits {
            max_tx_cents: self.max_tx_amount.cents(),
            max_card_unsynced_cents: self.max_card_unsynced.cents(),
            max_site_unsynced_cents: self.max_site_unsynced.cents(),
            // Standalone has no central to be stale against.
            stale_after_secs: (!standalone && self.stale_after_secs > 0)
                .then_some(self.stale_after_secs),
            stale_max_tx_cents: self.stale_max_tx_amount.cents(),
            topup: TopupLimits {
                max_topup_cents: self.max_topup_amount.cents(),
                max_card_unsynced_cents: self.max_card_unsynced_topup.cents(),
                max_shift_cents: self.max_shift_topup.cents(),
                max_site_unsynced_cents: self.max_site_unsynced_topup.cents(),
            },
        }
    }
}

/// The OpenAPI form of an amount as the API answers it: a JSON number written with
/// exactly two decimals (`json_amount`; inputs are `api_schema::AmountInput`). Here
/// rather than in `domain::money` so the domain does not depend on utoipa.
impl utoipa::PartialSchema for Money {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::Number)
            .minimum(Some(0.01))
            .maximum(Some(9_999_999_999.99))
            .description(Some(
                "A positive amount, written with exactly 2 decimals, e.g. 12.30",
            ))
            .into()
    }
}

impl utoipa::ToSchema for Money {}

/// The limits in display form, for startup output.
pub fn describe_limits(l: &Limits) -> String {
    format!(
        "per charge {}, per card unsynced {}, site unsynced {}",
        format_cents(l.max_tx_cents),
        format_cents(l.max_card_unsynced_cents),
        format_cents(l.max_site_unsynced_cents)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Overrides};

    /// Loads a config file holding `[limits]` + `line`. Inside a jail: the environment
    /// layer must not see another test's `MPS_EDGE_…` variables.
    #[allow(clippy::result_large_err)]
    fn load_limits(line: &str) -> Result<LimitSettings, String> {
        let mut out = Err("not run".to_string());
        figment::Jail::expect_with(|jail| {
            jail.create_file("c.toml", &format!("[limits]\n{line}\n"))?;
            out = Config::load(Some(std::path::Path::new("c.toml")), &Overrides::default())
                .map(|c| c.limits)
                .map_err(|e| e.to_string());
            Ok(())
        });
        out
    }

    #[test]
    fn money_fields_accept_what_the_file_always_accepted() {
        for field in [
            "max_tx_amount",
            "max_card_unsynced",
            "max_site_unsynced",
            "stale_max_tx_amount",
            "max_topup_amount",
            "max_card_unsynced_topup",
            "max_shift_topup",
            "max_site_unsynced_topup",
        ] {
            for (value, cents) in [
                ("\"500.00\"", 50_000),
                ("\"500\"", 50_000),
                ("\"0.01\"", 1),
                ("\"12.3\"", 1230),
                ("500", 50_000),
                ("12.5", 1250),
                ("\"9999999999.99\"", 999_999_999_999),
            ] {
                let l = load_limits(&format!("{field} = {value}"))
                    .unwrap_or_else(|e| panic!("{field} = {value}: {e}"));
                let got = serde_json::to_value(&l).unwrap()[field].to_string();
                assert_eq!(got, format_cents(cents), "{field} = {value}");
            }
        }
    }

    #[test]
    fn money_fields_refuse_bad_amounts_naming_the_key() {
        for (value, why) in [
            ("\"0\"", "positive amount"),
            ("\"0.00\"", "positive amount"),
            ("0", "positive amount"),
            ("\"1.234\"", "at most 2 decimals"),
            ("1.234", "at most 2 decimals"),
            ("\"-1\"", "positive amount"),
            ("-1", "positive amount"),
            ("\"abc\"", "positive amount"),
            ("\"\"", "positive amount"),
            ("\"10000000000\"", "positive amount"),
            ("1e20", "positive amount"),
            ("true", "must be an amount"),
        ] {
            let err = load_limits(&format!("max_site_unsynced = {value}")).expect_err(value);
            assert!(
                err.contains("limits.max_site_unsynced") && err.contains(why),
                "{value}: {err}"
            );
        }
    }

    #[test]
    #[allow(clippy::result_large_err)]
    fn env_overrides_money_as_number_or_text() {
        figment::Jail::expect_with(|jail| {
            for (value, cents) in [("150.50", 15_050), ("150", 15_000), ("\"7.05\"", 705)] {
                jail.set_env("MPS_EDGE_LIMITS__STALE_MAX_TX_AMOUNT", value);
                let c = Config::load(None, &Overrides::default()).map_err(|e| e.to_string())?;
                assert_eq!(c.limits.stale_max_tx_amount.cents(), cents, "{value}");
            }
            jail.set_env("MPS_EDGE_LIMITS__STALE_MAX_TX_AMOUNT", "1.234");
            let err = Config::load(None, &Overrides::default())
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            // figment names an environment key in capitals.
            assert!(
                err.to_ascii_lowercase()
                    .contains("limits.stale_max_tx_amount")
                    && err.contains("at most 2 decimals"),
                "{err}"
            );
            Ok(())
        });
    }

    #[test]
    fn in_force_limits_and_rules() {
        let l = LimitSettings::default();
        assert!(l.problems().is_empty());
        assert_eq!(l.in_force(true).stale_after_secs, None);
        assert_eq!(l.in_force(false).stale_after_secs, Some(86_400));
        assert_eq!(l.in_force(false).max_tx_cents, 200_000);
        let off = LimitSettings {
            stale_after_secs: 0,
            ..l.clone()
        };
        assert_eq!(off.in_force(false).stale_after_secs, None);
        let bad = LimitSettings {
            stale_after_secs: -1,
            ..l
        };
        assert_eq!(
            bad.problems(),
            vec!["limits.stale_after_secs: must be 0 (off) or more"]
        );
    }
}
