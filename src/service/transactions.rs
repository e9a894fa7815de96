//! Reading the ledger for the POS: one transaction with its refunds, a filtered page,
//! one day's totals.

use chrono_tz::Tz;
use serde::Serialize;

use crate::db::queries::{self, TxFilter};
use crate::domain::perm;
use crate::error::{AppResult, ErrorCode};
use crate::model::{DailySummary, TransactionList, TransactionView};
use crate::service::auth::AuthUser;
use crate::service::state::AppState;

/// A transaction and, for a payment, the refunds made against it (oldest first).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TransactionDetail {
    pub refunds: Vec<TransactionView>,
    pub transaction: TransactionView,
}

pub async fn detail(
    state: &AppState,
    user: &AuthUser,
    tx_no: String,
) -> AppResult<TransactionDetail> {
    user.require(perm::READ_TRANSACTIONS)?;
    state
        .db
        .read(move |c| {
            let transaction =
                queries::transaction_by_no(c, &tx_no)?.ok_or(ErrorCode::TxNotFound)?;
            let refunds = if transaction.tx_type == "payment" {
                queries::refunds_of(c, &transaction.tx_no)?
            } else {
                Vec::new()
            };
            Ok(TransactionDetail {
                refunds,
                transaction,
            })
        })
        .await
}

pub async fn list(
    state: &AppState,
    user: &AuthUser,
    filter: TxFilter,
    limit: i64,
    offset: i64,
) -> AppResult<TransactionList> {
    user.require(perm::READ_TRANSACTIONS)?;
    state
        .db
        .read(move |c| {
            let totals = queries::transaction_totals(c, &filter)?;
            Ok(TransactionList {
                transactions: queries::transaction_page(c, &filter, limit, offset)?,
                pagination: crate::model::Pagination::new(limit, offset, totals.count),
                totals: Some(totals),
            })
        })
        .await
}

/// The totals of `[from_unix, to_unix)` with hourly figures in the store's zone `tz`;
/// `date` is the day as the caller named it.
pub async fn daily_summary(
    state: &AppState,
    user: &AuthUser,
    date: String,
    tz: Tz,
    from_unix: i64,
    to_unix: i64,
) -> AppResult<DailySummary> {
    user.require(perm::READ_SUMMARY)?;
    let (summary, hourly_stats) = state
        .db
        .read(move |c| {
            let hour_of = move |unix: i64| {
                use chrono::Timelike;
                chrono::DateTime::from_timestamp(unix, 0).map_or(0, |t| t.with_timezone(&tz).hour())
            };
            queries::day_summary(c, from_unix, to_unix, &hour_of)
        })
        .await?;
    Ok(DailySummary {
        date,
        timezone: tz.name().to_string(),
        summary,
        hourly_stats,
    })
}
