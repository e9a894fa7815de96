//! Receipts (issue 14, item 1): a transaction's figures gathered for the receipt, in the
//! store's time zone and currency; `domain::receipt` lays them out.

use chrono::TimeZone;

use crate::db::queries;
use crate::domain::perm;
use crate::domain::receipt::{mask_card_no, Receipt, ReceiptRefund};
use crate::error::{AppResult, ErrorCode};
use crate::service::auth::AuthUser;
use crate::service::state::AppState;

/// `created_at` (RFC 3339) as the store's wall clock.
fn local(created_at: &str, tz: chrono_tz::Tz) -> String {
    chrono::DateTime::parse_from_rfc3339(created_at)
        .map(|t| {
            tz.from_utc_datetime(&t.naive_utc())
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .unwrap_or_else(|_| created_at.to_string())
}

pub async fn receipt(state: &AppState, user: &AuthUser, tx_no: String) -> AppResult<Receipt> {
    user.require(perm::READ_TRANSACTIONS)?;
    let tz = crate::service::settings::store_timezone(state);
    let (store_name, currency) = {
        let s = state.settings.read();
        (s.settings.store_name.clone(), s.settings.currency.clone())
    };
    let site_code = state.cfg.site.code.clone();
    state
        .db
        .read(move |c| {
            let tx = queries::transaction_by_no(c, &tx_no)?.ok_or(ErrorCode::TxNotFound)?;
            let (balance_after, points_after, terminal) = queries::receipt_extras(c, &tx.id)?;
            let refunds = if tx.tx_type == "payment" {
                queries::refunds_of(c, &tx.tx_no)?
            } else {
                Vec::new()
            };
            let refunds = refunds
                .into_iter()
                .map(|f| ReceiptRefund {
                    time: local(&f.created_at, tz),
                    tx_no: f.tx_no,
                    amount: f.final_amount,
                })
                .collect();
            Ok(Receipt {
                store_name,
                site_code,
                terminal,
                cashier: tx.operator.clone(),
                time: local(&tx.created_at, tz),
                timezone: tz.name().to_string(),
                card_no: mask_card_no(tx.card_no.as_deref().unwrap_or("")),
                currency,
                raw_amount: tx.raw_amount,
                discount: tx.discount_applied,
                final_amount: tx.final_amount,
                points_earned: tx.points_earned,
                balance_after,
                points_after,
                refunds,
                remaining_refundable: tx.remaining_refundable,
                original_tx_no: tx.original_tx_no.clone(),
                reason: tx.reason.clone(),
                pending_sync: tx.sync_state == "pending",
                payment_method: tx.payment_method,
                tx_type: tx.tx_type,
                tx_no: tx.tx_no,
            })
        })
        .await
}
