//! Offline risk limits, as card-present offline payment systems apply them.

use serde::Serialize;

use super::money::format_cents;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Limits {
    /// Largest single charge as entered (before the member discount), in cents.
    pub max_tx_cents: i64,
    /// Largest unsynced spend one card may accumulate at this edge.
    pub max_card_unsynced_cents: i64,
    /// Largest unsynced spend the whole site may accumulate.
    pub max_site_unsynced_cents: i64,
    /// Replica age after which only small charges pass; `None` disables the rule
    /// (standalone mode has no central to be stale against).
    pub stale_after_secs: Option<i64>,
    /// The largest charge (as entered) allowed while the replica is stale.
    pub stale_max_tx_cents: i64,
    pub topup: TopupLimits,
}

/// The counter top-up limits (`domain::topup`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TopupLimits {
    pub max_topup_cents: i64,
    pub max_card_unsynced_cents: i64,
    pub max_shift_cents: i64,
    pub max_site_unsynced_cents: i64,
}

impl TopupLimits {
    /// No top-up limit binds (tests of other rules).
    pub const UNBOUNDED: TopupLimits = TopupLimits {
        max_topup_cents: i64::MAX / 4,
        max_card_unsynced_cents: i64::MAX / 4,
        max_shift_cents: i64::MAX / 4,
        max_site_unsynced_cents: i64::MAX / 4,
    };
}

/// What the limits need to know about the current exposure.
#[derive(Debug, Clone, Copy, Default)]
pub struct Exposure {
    pub card_unsynced_debit_cents: i64,
    pub site_unsynced_debit_cents: i64,
    /// Seconds since the replica was last refreshed from central; `None` = never/unknown.
    pub replica_age_secs: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitDecline {
    pub limit: &'static str,
    pub limit_cents: i64,
    pub attempted_cents: i64,
    pub message: String,
}

impl LimitDecline {
    pub fn details(&self) -> serde_json::Value {
        serde_json::json!({
            "limit": self.limit,
            "limit_amount": format_cents(self.limit_cents),
            "attempted_amount": format_cents(self.attempted_cents),
        })
    }
}

/// Checks a charge against every limit; the first one broken declines.
///
/// The per-charge limits (`max_tx`, `stale_max_tx`) apply to `raw_cents`, the amount the
/// cashier entered: that is what "largest single charge" means at a till, a mistyped
/// amount is caught whatever the member's discount, and as a discount only lowers the
/// amount this is never looser than limiting the discounted one. The unsynced totals add
/// `final_cents`, what the card is actually debited: they bound money at risk.
pub fn check(
    limits: &Limits,
    exposure: Exposure,
    raw_cents: i64,
    final_cents: i64,
) -> Result<(), LimitDecline> {
    if raw_cents > limits.max_tx_cents {
        return Err(LimitDecline {
            limit: "per_transaction",
            limit_cents: limits.max_tx_cents,
            attempted_cents: raw_cents,
            message: format!(
                "A single charge may be at most {} at this store.",
                format_cents(limits.max_tx_cents)
            ),
        });
    }
    if let Some(stale_after) = limits.stale_after_secs {
        let stale = exposure
            .replica_age_secs
            .is_none_or(|age| age > stale_after);
        if stale && raw_cents > limits.stale_max_tx_cents {
            return Err(LimitDecline {
                limit: "stale_replica",
                limit_cents: limits.stale_max_tx_cents,
                attempted_cents: raw_cents,
                message: format!(
                    "The card data has not been refreshed from central recently; only charges up to {} pass.",
                    format_cents(limits.stale_max_tx_cents)
                ),
            });
        }
    }
    let card_total = exposure
        .card_unsynced_debit_cents
        .saturating_add(final_cents);
    if card_total > limits.max_card_unsynced_cents {
        return Err(LimitDecline {
            limit: "per_card_unsynced",
            limit_cents: limits.max_card_unsynced_cents,
            attempted_cents: card_total,
            message: format!(
                "This card may spend at most {} here before the store syncs with central.",
                format_cents(limits.max_card_unsynced_cents)
            ),
        });
    }
    let site_total = exposure
        .site_unsynced_debit_cents
        .saturating_add(final_cents);
    if site_total > limits.max_site_unsynced_cents {
        return Err(LimitDecline {
            limit: "site_unsynced",
            limit_cents: limits.max_site_unsynced_cents,
            attempted_cents: site_total,
            message: format!(
                "The store may hold at most {} of unsynced charges.",
                format_cents(limits.max_site_unsynced_cents)
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_tx_cents: 100_000,
            max_card_unsynced_cents: 200_000,
            max_site_unsynced_cents: 1_000_000,
            stale_after_secs: Some(3600),
            stale_max_tx_cents: 5_000,
            topup: TopupLimits::UNBOUNDED,
        }
    }

    fn fresh() -> Exposure {
        Exposure {
            replica_age_secs: Some(10),
            ..Exposure::default()
        }
    }

    #[test]
    fn each_limit_declines_with_its_name() {
        let l = limits();
        assert_eq!(check(&l, fresh(), 100_000, 100_000), Ok(()));
        assert_eq!(
            check(&l, fresh(), 100_001, 100_001).unwrap_err().limit,
            "per_transaction"
        );
        let stale = Exposure {
            replica_age_secs: Some(3601),
            ..Exposure::default()
        };
        assert_eq!(check(&l, stale, 5_000, 5_000), Ok(()));
        assert_eq!(
            check(&l, stale, 5_001, 5_001).unwrap_err().limit,
            "stale_replica"
        );
        let never = Exposure::default();
        assert_eq!(
            check(&l, never, 5_001, 5_001).unwrap_err().limit,
            "stale_replica"
        );
        let card = Exposure {
            card_unsynced_debit_cents: 150_000,
            ..fresh()
        };
        assert_eq!(check(&l, card, 50_000, 50_000), Ok(()));
        assert_eq!(
            check(&l, card, 50_001, 50_001).unwrap_err().limit,
            "per_card_unsynced"
        );
        let site = Exposure {
            site_unsynced_debit_cents: 990_000,
            ..fresh()
        };
        assert_eq!(check(&l, site, 10_000, 10_000), Ok(()));
        let d = check(&l, site, 10_001, 10_001).unwrap_err();
        assert_eq!(d.limit, "site_unsynced");
        assert_eq!(d.details()["limit_amount"], "10000.00");
    }

    /// "Largest single charge" is the amount entered: a discounted charge whose entered
    /// amount is over the limit declines though its debit is under it.
    #[test]
    fn per_charge_limits_apply_to_the_entered_amount() {
        let l = limits();
        assert_eq!(check(&l, fresh(), 100_000, 95_000), Ok(()));
        let d = check(&l, fresh(), 100_001, 95_001).unwrap_err();
        assert_eq!((d.limit, d.attempted_cents), ("per_transaction", 100_001));
        let stale = Exposure::default();
        assert_eq!(check(&l, stale, 5_000, 4_750), Ok(()));
        assert_eq!(
            check(&l, stale, 5_001, 4_751).unwrap_err().limit,
            "stale_replica"
        );
        // The unsynced totals count what is debited.
        let card = Exposure {
            card_unsynced_debit_cents: 150_000,
            ..fresh()
        };
        assert_eq!(check(&l, card, 52_000, 50_000), Ok(()));
    }

    #[test]
    fn staleness_rule_can_be_off() {
        let l = Limits {
            stale_after_secs: None,
            ..limits()
        };
        assert_eq!(check(&l, Exposure::default(), 50_000, 50_000), Ok(()));
    }
}
