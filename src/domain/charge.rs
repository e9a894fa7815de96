//! Deciding a charge: the card's state, the amount and the offline limits in; a plan or a
//! decline out. Mirrors central's `merchant_charge_by_qr` steps 6, 9, 10 and 13.

use super::balance::{available_balance, Pending};
use super::levels::{level_for_points, Level};
use super::limits::{self, Exposure, Limits};
use super::money::{effective_discount, final_amount, format_cents, points_for, Milli};
use super::{CardType, CARD_STATUS_ACTIVE};
use crate::error::{AppError, AppResult, ErrorCode};

/// What the edge knows about a card at the moment of the charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardState {
    pub card_type: CardType,
    pub status: String,
    /// Unix seconds; `None` = never expires.
    pub expires_at: Option<i64>,
    pub snapshot_balance_cents: i64,
    pub pending: Pending,
    /// Points including unsynced local payments.
    pub points: i64,
    /// The card's level discount as it stands (central's `member_cards.discount`).
    pub level_discount: Milli,
    pub corporate_discount: Option<Milli>,
}

impl CardState {
    pub fn available_cents(&self) -> i64 {
        available_balance(self.snapshot_balance_cents, self.pending)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargePlan {
    pub raw_cents: i64,
    pub discount: Milli,
    pub final_cents: i64,
    pub points_earned: i64,
    pub points_after: i64,
    pub level_after: i64,
    pub level_discount_after: Milli,
    pub available_after_cents: i64,
}

pub fn plan_charge(
    card: &CardState,
    raw_cents: i64,
    levels: &[Level],
    limits: &Limits,
    exposure: Exposure,
    now_unix: i64,
) -> AppResult<ChargePlan> {
    if raw_cents <= 0 {
        return Err(ErrorCode::InvalidPrice.into());
    }
    if card.status != CARD_STATUS_ACTIVE {
        return Err(AppError::new(ErrorCode::CardNotActive)
            .with_details(serde_json::json!({ "status": card.status })));
    }
    if card.expires_at.is_some_and(|e| e < now_unix) {
        return Err(ErrorCode::CardExpired.into());
    }
    let discount = match card.card_type {
        CardType::Standard => effective_discount(card.level_discount, card.corporate_discount),
        CardType::Corporate => return Err(ErrorCode::CorporateCardCannotPay.into()),
        CardType::Voucher => return Err(ErrorCode::UnsupportedCardTypeForPayment.into()),
    };
    let final_cents = final_amount(raw_cents, discount);
    let available = card.available_cents();
    if available < final_cents {
        return Err(AppError::new(ErrorCode::InsufficientBalance).with_details(
            serde_json::json!({
                "available_balance": format_cents(available),
                "required": format_cents(final_cents),
            }),
        ));
    }
    if let Err(decline) = limits::check(limits, exposure, raw_cents, final_cents) {
        return Err(
            AppError::msg(ErrorCode::OfflineLimitExceeded, decline.message.clone())
                .with_details(decline.details()),
        );
    }
    let points_earned = points_for(raw_cents);
    let points_after = card.points + points_earned;
    let (level_after, level_discount_after) = level_for_points(levels, points_after);
    Ok(ChargePlan {
        raw_cents,
        discount,
        final_cents,
        points_earned,
        points_after,
        level_after,
        level_discount_after,
        available_after_cents: available - final_cents,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::levels::central_seed_levels;
    use proptest::prelude::*;

    fn limits() -> Limits {
        Limits {
            max_tx_cents: 1_000_000,
            max_card_unsynced_cents: 10_000_000,
            max_site_unsynced_cents: 100_000_000,
            stale_after_secs: None,
            stale_max_tx_cents: 0,
            topup: crate::domain::limits::TopupLimits::UNBOUNDED,
        }
    }

    fn card() -> CardState {
        CardState {
            card_type: CardType::Standard,
            status: "active".into(),
            expires_at: None,
            snapshot_balance_cents: 100_000,
            pending: Pending::default(),
            points: 900,
            level_discount: 1000,
            corporate_discount: None,
        }
    }

    fn code(r: AppResult<ChargePlan>) -> ErrorCode {
        r.unwrap_err().code()
    }

    #[test]
    fn level_up_takes_effect_on_the_next_payment() {
        let levels = central_seed_levels();
        let p = plan_charge(&card(), 20_000, &levels, &limits(), Exposure::default(), 0).unwrap();
        // Discount read before this payment's points: still full price.
        assert_eq!(p.discount, 1000);
        assert_eq!(p.final_cents, 20_000);
        assert_eq!(p.points_earned, 200);
        assert_eq!(
            (p.points_after, p.level_after, p.level_discount_after),
            (1100, 1, 950)
        );
        assert_eq!(p.available_after_cents, 80_000);
    }

    #[test]
    fn corporate_discount_wins_when_lower() {
        let c = CardState {
            corporate_discount: Some(800),
            ..card()
        };
        let p = plan_charge(
            &c,
            1001,
            &central_seed_levels(),
            &limits(),
            Exposure::default(),
            0,
        )
        .unwrap();
        assert_eq!((p.discount, p.final_cents, p.points_earned), (800, 801, 10));
    }

    #[test]
    fn declines() {
        let l = central_seed_levels();
        let lim = limits();
        let e = Exposure::default();
        let frozen = CardState {
            status: "inactive".into(),
            ..card()
        };
        assert_eq!(
            code(plan_charge(&frozen, 100, &l, &lim, e, 0)),
            ErrorCode::CardNotActive
        );
        let expired = CardState {
            expires_at: Some(10),
            ..card()
        };
        assert_eq!(
            code(plan_charge(&expired, 100, &l, &lim, e, 11)),
            ErrorCode::CardExpired
        );
        assert!(plan_charge(&expired, 100, &l, &lim, e, 10).is_ok());
        let corp = CardState {
            card_type: CardType::Corporate,
            ..card()
        };
        assert_eq!(
            code(plan_charge(&corp, 100, &l, &lim, e, 0)),
            ErrorCode::CorporateCardCannotPay
        );
        let voucher = CardState {
            card_type: CardType::Voucher,
            ..card()
        };
        assert_eq!(
            code(plan_charge(&voucher, 100, &l, &lim, e, 0)),
            ErrorCode::UnsupportedCardTypeForPayment
        );
        assert_eq!(
            code(plan_charge(&card(), 100_001, &l, &lim, e, 0)),
            ErrorCode::InsufficientBalance
        );
        assert!(plan_charge(&card(), 100_000, &l, &lim, e, 0).is_ok());
        assert_eq!(
            code(plan_charge(&card(), 0, &l, &lim, e, 0)),
            ErrorCode::InvalidPrice
        );
        let small = Limits {
            max_tx_cents: 50,
            ..limits()
        };
        assert_eq!(
            code(plan_charge(&card(), 51, &l, &small, e, 0)),
            ErrorCode::OfflineLimitExceeded
        );
    }

    #[test]
    fn insufficient_is_against_available_not_snapshot() {
        let c = CardState {
            pending: Pending {
                debit_cents: 90_000,
                credit_cents: 5_000,
                points: 0,
            },
            ..card()
        };
        assert_eq!(c.available_cents(), 15_000);
        let l = central_seed_levels();
        assert!(plan_charge(&c, 15_000, &l, &limits(), Exposure::default(), 0).is_ok());
        assert_eq!(
            code(plan_charge(
                &c,
                15_001,
                &l,
                &limits(),
                Exposure::default(),
                0
            )),
            ErrorCode::InsufficientBalance
        );
    }

    proptest! {
        /// An accepted charge never takes the available balance below zero, and the
        /// final amount never exceeds the raw amount.
        #[test]
        fn accepted_charges_never_overdraw(balance in 0i64..10_000_000, raw in 1i64..10_000_000,
                                           debit in 0i64..1_000_000, credit in 0i64..1_000_000,
                                           disc in 0i64..=1000, corp in proptest::option::of(0i64..=1000)) {
            let c = CardState {
                snapshot_balance_cents: balance,
                pending: Pending { debit_cents: debit, credit_cents: credit, points: 0 },
                level_discount: disc,
                corporate_discount: corp,
                ..card()
            };
            // The only reasons to refuse here: too little balance, then the per-transaction
            // limit, which applies to the amount entered.
            let f = final_amount(raw, effective_discount(disc, corp));
            let expected = if c.available_cents() < f {
                Some(ErrorCode::InsufficientBalance)
            } else if raw > limits().max_tx_cents {
                Some(ErrorCode::OfflineLimitExceeded)
            } else {
                None
            };
            match plan_charge(&c, raw, &central_seed_levels(), &limits(), Exposure::default(), 0) {
                Ok(p) => {
                    prop_assert_eq!(expected, None);
                    prop_assert!(p.available_after_cents >= 0);
                    prop_assert!(p.final_cents <= p.raw_cents);
                    prop_assert_eq!(p.final_cents, f);
                    prop_assert_eq!(p.available_after_cents, c.available_cents() - p.final_cents);
                }
                Err(e) => prop_assert_eq!(Some(e.code()), expected),
            }
        }
    }
}
