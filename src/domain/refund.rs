//! Deciding a refund. Mirrors central's `merchant_refund_tx` steps 6–10, but refunds are
//! serialised through the single writer, so concurrent refunds can never over-refund
//! (central's defect, contract §3.9).

use super::money::format_cents;
use crate::error::{AppError, AppResult, ErrorCode};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginalPayment {
    pub tx_type: String,
    pub status: String,
    pub final_cents: i64,
    /// Sum of refunds already made against it.
    pub refunded_cents: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundPlan {
    pub amount_cents: i64,
    pub remaining_after_cents: i64,
    /// The original becomes `refunded` once nothing remains.
    pub fully_refunded: bool,
}

pub fn remaining_refundable(orig: &OriginalPayment) -> i64 {
    (orig.final_cents - orig.refunded_cents).max(0)
}

pub fn plan_refund(orig: &OriginalPayment, amount_cents: i64) -> AppResult<RefundPlan> {
    if amount_cents <= 0 {
        return Err(ErrorCode::InvalidRefundAmount.into());
    }
    if orig.tx_type != "payment" || !(orig.status == "completed" || orig.status == "refunded") {
        return Err(ErrorCode::OnlyCompletedPaymentRefundable.into());
    }
    let remaining = remaining_refundable(orig);
    if amount_cents > remaining {
        return Err(
            AppError::new(ErrorCode::RefundExceedsRemaining).with_details(serde_json::json!({
                "remaining_refundable": format_cents(remaining),
                "requested": format_cents(amount_cents),
            })),
        );
    }
    let remaining_after_cents = remaining - amount_cents;
    Ok(RefundPlan {
        amount_cents,
        remaining_after_cents,
        fully_refunded: remaining_after_cents == 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pay(final_cents: i64, refunded: i64) -> OriginalPayment {
        OriginalPayment {
            tx_type: "payment".into(),
            status: if refunded >= final_cents {
                "refunded"
            } else {
                "completed"
            }
            .into(),
            final_cents,
            refunded_cents: refunded,
        }
    }

    #[test]
    fn central_sequence() {
        // Contract §3.9 full sequence: 80.00 paid; 30 ok; 60 too much; 50 ok → refunded; 0.01 too much.
        let mut o = pay(8000, 0);
        let r = plan_refund(&o, 3000).unwrap();
        assert!(!r.fully_refunded);
        o = pay(8000, 3000);
        assert_eq!(
            plan_refund(&o, 6000).unwrap_err().code(),
            ErrorCode::RefundExceedsRemaining
        );
        let r = plan_refund(&o, 5000).unwrap();
        assert!(r.fully_refunded);
        o = pay(8000, 8000);
        assert_eq!(
            plan_refund(&o, 1).unwrap_err().code(),
            ErrorCode::RefundExceedsRemaining
        );
        let refund = OriginalPayment {
            tx_type: "refund".into(),
            ..pay(100, 0)
        };
        assert_eq!(
            plan_refund(&refund, 1).unwrap_err().code(),
            ErrorCode::OnlyCompletedPaymentRefundable
        );
        let proc = OriginalPayment {
            status: "processing".into(),
            ..pay(100, 0)
        };
        assert_eq!(
            plan_refund(&proc, 1).unwrap_err().code(),
            ErrorCode::OnlyCompletedPaymentRefundable
        );
        assert_eq!(
            plan_refund(&pay(100, 0), 0).unwrap_err().code(),
            ErrorCode::InvalidRefundAmount
        );
    }

    proptest! {
        /// However refund requests arrive, applied one after another they never sum past
        /// the payment's final amount, every request that fits is granted in full (so a
        /// rule that refuses too much fails too), and the original is `refunded` exactly
        /// when none remains.
        #[test]
        fn never_over_refunds(final_cents in 1i64..1_000_000, asks in prop::collection::vec(1i64..500_000, 0..30)) {
            let mut refunded = 0;
            for ask in asks {
                let o = pay(final_cents, refunded);
                let fits = ask <= final_cents - refunded;
                match plan_refund(&o, ask) {
                    Ok(plan) => {
                        prop_assert!(fits, "granted {} with {} remaining", ask, final_cents - refunded);
                        prop_assert_eq!(plan.amount_cents, ask);
                        refunded += plan.amount_cents;
                        prop_assert_eq!(plan.remaining_after_cents, final_cents - refunded);
                        prop_assert_eq!(plan.fully_refunded, refunded == final_cents);
                    }
                    Err(e) => {
                        prop_assert!(!fits, "refused {} with {} remaining", ask, final_cents - refunded);
                        prop_assert_eq!(e.code(), ErrorCode::RefundExceedsRemaining);
                    }
                }
                prop_assert!(refunded <= final_cents);
            }
        }

        /// The last cent can be refunded: asking for exactly what remains is granted and
        /// marks the original refunded.
        #[test]
        fn exact_remainder_is_granted(final_cents in 1i64..1_000_000, done in 0i64..1_000_000) {
            let done = done % final_cents;
            let plan = plan_refund(&pay(final_cents, done), final_cents - done);
            prop_assert!(plan.is_ok_and(|p| p.fully_refunded && p.remaining_after_cents == 0));
        }
    }
}
