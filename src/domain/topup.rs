//! Deciding a counter top-up (a recharge taken at the till). Mirrors central's
//! `user_recharge_card` checks (contract §3.10: a positive amount, an active card, a
//! standard card) and adds the edge's own offline limits.
//!
//! Why top-ups are allowed offline, and bounded: central refuses a recharge only for a
//! card that is not active or not standard, and the edge knows both from its replica.
//! The one case it cannot see is a card frozen at central after the last pull: the
//! top-up is then refused at central while the member may already have spent it here.
//! That is the exposure of an offline refund credit, so it is bounded the same way, by
//! limits per top-up, per card and per site on what central has not yet confirmed, and
//! per shift on what one person takes in.

use super::charge::CardState;
use super::limits::TopupLimits;
use super::money::format_cents;
use super::{CardType, CARD_STATUS_ACTIVE};
use crate::error::{AppError, AppResult, ErrorCode};

/// The largest balance central can hold (`numeric(12,2)`): a top-up past it would fail
/// there with an overflow.
pub const MAX_BALANCE_CENTS: i64 = 999_999_999_999;

/// The payment methods a top-up may be paid with: upstream's `pay_method` values except
/// `balance` (a top-up paid from the card's own balance is no top-up).
pub const TOPUP_METHODS: [&str; 3] = ["cash", "wechat", "alipay"];

/// What the limits need to know about top-ups already taken and not yet confirmed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TopupExposure {
    /// This card's top-ups at this edge that central has not confirmed.
    pub card_unsynced_cents: i64,
    /// The operator's top-ups in the business day (or their shift, if it began earlier).
    pub shift_cents: i64,
    /// Every top-up at this edge that central has not confirmed.
    pub site_unsynced_cents: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopupPlan {
    pub amount_cents: i64,
    pub available_after_cents: i64,
}

pub fn plan_topup(
    card: &CardState,
    amount_cents: i64,
    limits: &TopupLimits,
    exposure: TopupExposure,
    now_unix: i64,
) -> AppResult<TopupPlan> {
    if amount_cents <= 0 {
        return Err(ErrorCode::InvalidRechargeAmount.into());
    }
    if card.status != CARD_STATUS_ACTIVE {
        return Err(AppError::new(ErrorCode::CardNotActive)
            .with_details(serde_json::json!({ "status": card.status })));
    }
    // Central would take it, but money loaded onto a card that can no longer pay is
    // money the member cannot use.
    if card.expires_at.is_some_and(|e| e < now_unix) {
        return Err(ErrorCode::CardExpired.into());
    }
    if card.card_type != CardType::Standard {
        return Err(AppError::new(ErrorCode::UnsupportedCardTypeForRecharge)
            .with_details(serde_json::json!({ "card_type": card.card_type.as_str() })));
    }
    let checks = [
        (
            "per_topup",
            limits.max_topup_cents,
            amount_cents,
            "A single top-up may be at most {} at this store.",
        ),
        (
            "per_card_unsynced_topup",
            limits.max_card_unsynced_cents,
            exposure.card_unsynced_cents.saturating_add(amount_cents),
            "This card may receive at most {} of top-ups here before the store syncs with central.",
        ),
        (
            "per_shift_topup",
            limits.max_shift_cents,
            exposure.shift_cents.saturating_add(amount_cents),
            "One person may take at most {} of top-ups in a shift.",
        ),
        (
            "site_unsynced_topup",
            limits.max_site_unsynced_cents,
            exposure.site_unsynced_cents.saturating_add(amount_cents),
            "The store may hold at most {} of top-ups not yet confirmed by central.",
        ),
    ];
    for (limit, limit_cents, attempted, message) in checks {
        if attempted > limit_cents {
            return Err(AppError::msg(
                ErrorCode::OfflineLimitExceeded,
                message.replace("{}", &format_cents(limit_cents)),
            )
            .with_details(serde_json::json!({
                "limit": limit,
                "limit_amount": format_cents(limit_cents),
                "attempted_amount": format_cents(attempted),
            })));
        }
    }
    let available_after_cents = card.available_cents().saturating_add(amount_cents);
    // Central's balance column is numeric(12,2); its snapshot plus every credit this
    // edge has queued must still fit.
    let central_after = card
        .snapshot_balance_cents
        .saturating_add(card.pending.credit_cents)
        .saturating_add(amount_cents);
    if central_after > MAX_BALANCE_CENTS {
        return Err(AppError::msg(
            ErrorCode::OfflineLimitExceeded,
            "The card's balance would exceed the largest balance central can hold.",
        )
        .with_details(serde_json::json!({
            "limit": "max_balance",
            "limit_amount": format_cents(MAX_BALANCE_CENTS),
            "attempted_amount": format_cents(central_after),
        })));
    }
    Ok(TopupPlan {
        amount_cents,
        available_after_cents,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::balance::Pending;
    use proptest::prelude::*;

    fn card(card_type: CardType, status: &str) -> CardState {
        CardState {
            card_type,
            status: status.into(),
            expires_at: None,
            snapshot_balance_cents: 10_000,
            pending: Pending {
                debit_cents: 2_000,
                credit_cents: 500,
                points: 0,
            },
            points: 0,
            level_discount: 1000,
            corporate_discount: None,
        }
    }

    const LIMITS: TopupLimits = TopupLimits {
        max_topup_cents: 50_000,
        max_card_unsynced_cents: 100_000,
        max_shift_cents: 200_000,
        max_site_unsynced_cents: 300_000,
    };

    fn code(r: AppResult<TopupPlan>) -> ErrorCode {
        r.unwrap_err().code()
    }

    fn limit(r: AppResult<TopupPlan>) -> String {
        let e = r.unwrap_err();
        assert_eq!(e.code(), ErrorCode::OfflineLimitExceeded);
        e.details()
            .and_then(|d| d["limit"].as_str())
            .unwrap_or_default()
            .to_string()
    }

    #[test]
    fn a_topup_adds_to_the_available_balance() {
        let c = card(CardType::Standard, "active");
        let p = plan_topup(&c, 50_000, &LIMITS, TopupExposure::default(), 0).unwrap();
        assert_eq!(p.available_after_cents, 10_000 - 2_000 + 500 + 50_000);
    }

    #[test]
    fn refusals_mirror_central_and_name_the_rule() {
        let ok = card(CardType::Standard, "active");
        let none = TopupExposure::default();
        for bad in [0, -1, i64::MIN] {
            assert_eq!(
                code(plan_topup(&ok, bad, &LIMITS, none, 0)),
                ErrorCode::InvalidRechargeAmount
            );
        }
        for status in ["inactive", "lost", "expired", "suspended", "closed"] {
            let c = card(CardType::Standard, status);
            assert_eq!(
                code(plan_topup(&c, 100, &LIMITS, none, 0)),
                ErrorCode::CardNotActive,
                "{status}"
            );
        }
        for t in [CardType::Corporate, CardType::Voucher] {
            assert_eq!(
                code(plan_topup(&card(t, "active"), 100, &LIMITS, none, 0)),
                ErrorCode::UnsupportedCardTypeForRecharge
            );
        }
        let mut expired = ok.clone();
        expired.expires_at = Some(99);
        assert_eq!(
            code(plan_topup(&expired, 100, &LIMITS, none, 100)),
            ErrorCode::CardExpired
        );
        assert!(plan_topup(&expired, 100, &LIMITS, none, 99).is_ok());
    }

    #[test]
    fn each_limit_declines_at_one_cent_over() {
        let c = card(CardType::Standard, "active");
        let none = TopupExposure::default();
        assert!(plan_topup(&c, 50_000, &LIMITS, none, 0).is_ok());
        assert_eq!(limit(plan_topup(&c, 50_001, &LIMITS, none, 0)), "per_topup");
        let card_exp = TopupExposure {
            card_unsynced_cents: 60_000,
            ..none
        };
        assert!(plan_topup(&c, 40_000, &LIMITS, card_exp, 0).is_ok());
        assert_eq!(
            limit(plan_topup(&c, 40_001, &LIMITS, card_exp, 0)),
            "per_card_unsynced_topup"
        );
        let shift = TopupExposure {
            shift_cents: 160_000,
            ..none
        };
        assert!(plan_topup(&c, 40_000, &LIMITS, shift, 0).is_ok());
        assert_eq!(
            limit(plan_topup(&c, 40_001, &LIMITS, shift, 0)),
            "per_shift_topup"
        );
        let site = TopupExposure {
            site_unsynced_cents: 260_000,
            ..none
        };
        assert!(plan_topup(&c, 40_000, &LIMITS, site, 0).is_ok());
        assert_eq!(
            limit(plan_topup(&c, 40_001, &LIMITS, site, 0)),
            "site_unsynced_topup"
        );
    }

    #[test]
    fn central_balance_ceiling() {
        let mut c = card(CardType::Standard, "active");
        c.snapshot_balance_cents = MAX_BALANCE_CENTS - 600;
        let wide = TopupLimits {
            max_topup_cents: i64::MAX,
            max_card_unsynced_cents: i64::MAX,
            max_shift_cents: i64::MAX,
            max_site_unsynced_cents: i64::MAX,
        };
        // 500 of credit already queued: 100 more fits, 101 does not
        assert!(plan_topup(&c, 100, &wide, TopupExposure::default(), 0).is_ok());
        assert_eq!(
            limit(plan_topup(&c, 101, &wide, TopupExposure::default(), 0)),
            "max_balance"
        );
    }

    proptest! {
        /// Whatever the exposure, an accepted top-up keeps every unsynced total within
        /// its limit, and adds exactly its amount to the available balance.
        #[test]
        fn accepted_topups_stay_within_every_limit(
            amount in -10i64..400_000,
            card_u in 0i64..200_000,
            shift in 0i64..300_000,
            site in 0i64..400_000,
        ) {
            let c = card(CardType::Standard, "active");
            let e = TopupExposure { card_unsynced_cents: card_u, shift_cents: shift, site_unsynced_cents: site };
            if let Ok(p) = plan_topup(&c, amount, &LIMITS, e, 0) {
                prop_assert!(amount > 0 && amount <= LIMITS.max_topup_cents);
                prop_assert!(card_u + amount <= LIMITS.max_card_unsynced_cents);
                prop_assert!(shift + amount <= LIMITS.max_shift_cents);
                prop_assert!(site + amount <= LIMITS.max_site_unsynced_cents);
                prop_assert_eq!(p.available_after_cents, c.available_cents() + amount);
            }
        }
    }
}
