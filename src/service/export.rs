//! The transactions CSV export (UTF-8 with BOM, the current filter).

use crate::db::queries::{self, TxFilter};
use crate::domain::money::{format_cents, format_milli};
use crate::domain::perm;
use crate::error::AppResult;
use crate::service::auth::AuthUser;
use crate::state::AppState;

/// The CSV export's cap.
pub const EXPORT_MAX_ROWS: i64 = 100_000;

const CSV_HEADER: [&str; 19] = [
    "tx_no",
    "type",
    "status",
    "created_at",
    "local_time",
    "card_no",
    "raw_amount",
    "discount",
    "final_amount",
    "refunded_amount",
    "remaining_refundable",
    "points_earned",
    "original_tx_no",
    "reason",
    "operator",
    "device_id",
    "external_order_id",
    "sync_state",
    "tx_id",
];

/// One CSV field: quoted when needed, and text that a spreadsheet would run as a
/// formula is prefixed with an apostrophe.
fn csv_field(out: &mut String, text: &str, is_text: bool) {
    let guarded;
    let text = if is_text && text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        guarded = format!("'{text}");
        guarded.as_str()
    } else {
        text
    };
    if text.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&text.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(text);
    }
}

fn csv_row(out: &mut String, fields: &[(&str, bool)]) {
    for (i, (f, is_text)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_field(out, f, *is_text);
    }
    out.push_str("\r\n");
}

/// The filtered transactions as UTF-8 CSV with a BOM (so spreadsheet programs read
/// Chinese text correctly), newest first, at most [`EXPORT_MAX_ROWS`] rows.
pub async fn export_csv(state: &AppState, user: &AuthUser, filter: TxFilter) -> AppResult<String> {
    user.require(perm::READ_TRANSACTIONS)?;
    let tz = state.cfg.timezone();
    state
        .db
        .read(move |c| {
            // One read transaction: pages see one consistent snapshot.
            let tx = c.unchecked_transaction()?;
            let mut out = String::from("\u{feff}");
            csv_row(
                &mut out,
                &CSV_HEADER.iter().map(|h| (*h, false)).collect::<Vec<_>>(),
            );
            let page = 2_000;
            let mut offset = 0;
            while offset < EXPORT_MAX_ROWS {
                let list = queries::list_transactions(
                    &tx,
                    &filter,
                    page.min(EXPORT_MAX_ROWS - offset),
                    offset,
                )?;
                for t in &list.transactions {
                    let local = chrono::DateTime::parse_from_rfc3339(&t.created_at)
                        .map(|d| d.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S").to_string())
                        .unwrap_or_default();
                    let opt_cents = |v: Option<i64>| v.map(format_cents).unwrap_or_default();
                    let (raw, disc, fin) = (
                        format_cents(t.raw_amount),
                        format_milli(t.discount_applied),
                        format_cents(t.final_amount),
                    );
                    let (refunded, remaining, points) = (
                        opt_cents(t.refunded_amount),
                        opt_cents(t.remaining_refundable),
                        t.points_earned.to_string(),
                    );
                    let s = |v: &Option<String>| v.clone().unwrap_or_default();
                    let (card, orig, reason, op, dev, ext) = (
                        s(&t.card_no),
                        s(&t.original_tx_no),
                        s(&t.reason),
                        s(&t.operator),
                        s(&t.device_id),
                        s(&t.external_order_id),
                    );
                    csv_row(
                        &mut out,
                        &[
                            (&t.tx_no, true),
                            (&t.tx_type, true),
                            (&t.status, true),
                            (&t.created_at, false),
                            (&local, false),
                            (&card, true),
                            (&raw, false),
                            (&disc, false),
                            (&fin, false),
                            (&refunded, false),
                            (&remaining, false),
                            (&points, false),
                            (&orig, true),
                            (&reason, true),
                            (&op, true),
                            (&dev, true),
                            (&ext, true),
                            (&t.sync_state, true),
                            (&t.id, true),
                        ],
                    );
                }
                let n = list.transactions.len() as i64;
                offset += n;
                if n < page || !list.pagination.has_next {
                    break;
                }
            }
            drop(tx);
            Ok(out)
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quoting_and_formula_guard() {
        let mut out = String::new();
        csv_row(
            &mut out,
            &[
                ("a,b", true),
                ("say \"hi\"", true),
                ("=SUM(A1)", true),
                ("-1.00", false),
                ("退款", true),
            ],
        );
        assert_eq!(out, "\"a,b\",\"say \"\"hi\"\"\",'=SUM(A1),-1.00,退款\r\n");
    }
}
