//! Read models: transaction lists, details and daily figures.

use crate::db::CachedExt;
use rusqlite::types::ToSql;
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::domain::refund::remaining_refundable;
use crate::error::AppResult;
use crate::model::{HourStat, ListTotals, SummaryTotals, TransactionView};

const TX_COLUMNS: &str = "t.id, t.tx_no, t.tx_type, t.card_id, c.card_no, t.merchant_id, t.raw_amount_cents, \
    t.discount_milli, t.final_amount_cents, t.points_earned, t.status, t.refunded_cents, t.original_tx_no, \
    t.reason, t.payment_method, t.external_order_id, t.tag, t.operator_username, t.device_id, t.sync_state, t.created_at";

fn tx_from_row(r: &Row<'_>) -> rusqlite::Result<TransactionView> {
    let tx_type: String = r.get(2)?;
    let final_amount: i64 = r.get(8)?;
    let refunded: i64 = r.get(11)?;
    let status: String = r.get(10)?;
    let tag: String = r.get(16)?;
    let is_payment = tx_type == "payment";
    Ok(TransactionView {
        id: r.get(0)?,
        tx_no: r.get(1)?,
        card_id: r.get(3)?,
        card_no: r.get(4)?,
        merchant_id: r.get(5)?,
        raw_amount: r.get(6)?,
        discount_applied: r.get(7)?,
        final_amount,
        points_earned: r.get(9)?,
        refunded_amount: is_payment.then_some(refunded),
        remaining_refundable: is_payment.then(|| {
            remaining_refundable(&crate::domain::refund::OriginalPayment {
                tx_type: tx_type.clone(),
                status: status.clone(),
                final_cents: final_amount,
                refunded_cents: refunded,
            })
        }),
        tx_type,
        status,
        original_tx_no: r.get(12)?,
        reason: r.get(13)?,
        payment_method: r.get(14)?,
        external_order_id: r.get(15)?,
        tag: serde_json::from_str(&tag).unwrap_or(serde_json::Value::Null),
        operator: r.get(17)?,
        device_id: r.get(18)?,
        sync_state: r.get(19)?,
        created_at: r.get(20)?,
    })
}

/// The order of a transaction list; ties go newest first, then by id, so pages are stable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TxSort {
    #[default]
    TimeDesc,
    TimeAsc,
    AmountDesc,
    AmountAsc,
}

impl TxSort {
    pub const NAMES: [&'static str; 4] = ["time_desc", "time_asc", "amount_desc", "amount_asc"];

    pub fn parse(name: &str) -> Option<TxSort> {
        Some(match name {
            "time_desc" => TxSort::TimeDesc,
            "time_asc" => TxSort::TimeAsc,
            "amount_desc" => TxSort::AmountDesc,
            "amount_asc" => TxSort::AmountAsc,
            _ => return None,
        })
    }

    fn order_sql(self) -> &'static str {
        match self {
            TxSort::TimeDesc => "t.created_unix DESC, t.id DESC",
            TxSort::TimeAsc => "t.created_unix ASC, t.id ASC",
            TxSort::AmountDesc => "t.final_amount_cents DESC, t.created_unix DESC, t.id DESC",
            TxSort::AmountAsc => "t.final_amount_cents ASC, t.created_unix DESC, t.id DESC",
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct TxFilter {
    pub from_unix: Option<i64>,
    pub to_unix: Option<i64>,
    pub tx_type: Option<String>,
    pub status: Option<String>,
    pub card_no: Option<String>,
    /// Part of a card number or a transaction number, any case.
    pub search: Option<String>,
    pub min_cents: Option<i64>,
    pub max_cents: Option<i64>,
    pub sync_state: Option<String>,
    pub sort: TxSort,
}

const TX_FROM: &str = "FROM transactions t LEFT JOIN cards c ON c.id = t.card_id";

/// The WHERE clause of `f` and its arguments, in order.
fn filter_sql(f: &TxFilter) -> (String, Vec<Box<dyn ToSql>>) {
    let mut clauses: Vec<&str> = Vec::new();
    let mut args: Vec<Box<dyn ToSql>> = Vec::new();
    if let Some(v) = f.from_unix {
        clauses.push("t.created_unix >= ?");
        args.push(Box::new(v));
    }
    if let Some(v) = f.to_unix {
        clauses.push("t.created_unix < ?");
        args.push(Box::new(v));
    }
    match f.tx_type.as_deref() {
        // Payments and refunds: what a settlement covers (a top-up is no sale).
        Some("sales") => clauses.push("t.tx_type IN ('payment', 'refund')"),
        Some(v) => {
            clauses.push("t.tx_type = ?");
            args.push(Box::new(v.to_string()));
        }
        None => {}
    }
    if let Some(v) = &f.status {
        clauses.push("t.status = ?");
        args.push(Box::new(v.clone()));
    }
    if let Some(v) = &f.card_no {
        clauses.push("c.card_no = ?");
        args.push(Box::new(v.clone()));
    }
    if let Some(v) = &f.search {
        // instr, not LIKE: the text is matched as typed, `%` and `_` included. A scan of
        // the period's rows, which the date bounds keep to a store's volume.
        clauses.push("(instr(upper(c.card_no), ?) > 0 OR instr(upper(t.tx_no), ?) > 0)");
        args.push(Box::new(v.to_uppercase()));
        args.push(Box::new(v.to_uppercase()));
    }
    if let Some(v) = f.min_cents {
        clauses.push("t.final_amount_cents >= ?");
        args.push(Box::new(v));
    }
    if let Some(v) = f.max_cents {
        clauses.push("t.final_amount_cents <= ?");
        args.push(Box::new(v));
    }
    if let Some(v) = &f.sync_state {
        clauses.push("t.sync_state = ?");
        args.push(Box::new(v.clone()));
    }
    let sql = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    (sql, args)
}

/// One page of the rows `f` matches, in its order. The count of all of them comes from
/// [`transaction_totals`] (one scan for the count and the sums, not two).
pub fn transaction_page(
    conn: &Connection,
    f: &TxFilter,
    limit: i64,
    offset: i64,
) -> AppResult<Vec<TransactionView>> {
    let (where_sql, mut args) = filter_sql(f);
    args.push(Box::new(limit));
    args.push(Box::new(offset));
    let order = f.sort.order_sql();
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {TX_COLUMNS} {TX_FROM} {where_sql} ORDER BY {order} LIMIT ? OFFSET ?"
    ))?;
    let rows = stmt.query_map(
        rusqlite::params_from_iter(args.iter().map(|a| a.as_ref())),
        tx_from_row,
    )?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Counts and sums of every row `f` matches (not one page): what the list's footer shows.
pub fn transaction_totals(conn: &Connection, f: &TxFilter) -> AppResult<ListTotals> {
    let (where_sql, args) = filter_sql(f);
    Ok(conn.row_cached(
        &format!(
            "SELECT COUNT(*),
                    COALESCE(SUM(t.tx_type = 'payment'), 0),
                    COALESCE(SUM(CASE WHEN t.tx_type = 'payment' THEN t.final_amount_cents END), 0),
                    COALESCE(SUM(t.tx_type = 'refund'), 0),
                    COALESCE(SUM(CASE WHEN t.tx_type = 'refund' THEN t.final_amount_cents END), 0),
                    COALESCE(SUM(t.tx_type = 'recharge'), 0),
                    COALESCE(SUM(CASE WHEN t.tx_type = 'recharge' THEN t.final_amount_cents END), 0)
             {TX_FROM} {where_sql}"
        ),
        rusqlite::params_from_iter(args.iter().map(|a| a.as_ref())),
        |r| {
            let payment_amount: i64 = r.get(2)?;
            let refund_amount: i64 = r.get(4)?;
            Ok(ListTotals {
                count: r.get(0)?,
                payment_count: r.get(1)?,
                payment_amount,
                refund_count: r.get(3)?,
                refund_amount,
                net_amount: payment_amount - refund_amount,
                topup_count: r.get(5)?,
                topup_amount: r.get(6)?,
            })
        },
    )?)
}

pub fn transaction_by_no(conn: &Connection, tx_no: &str) -> AppResult<Option<TransactionView>> {
    Ok(conn
        .query_row(
            &format!("SELECT {TX_COLUMNS} FROM transactions t LEFT JOIN cards c ON c.id = t.card_id WHERE t.tx_no = ?1"),
            [tx_no],
            tx_from_row,
        )
        .optional()?)
}

/// What a receipt shows beyond the transaction view: the card's balance and points right
/// after it (NULL before migration 0008), and the name of the terminal it came from.
pub fn receipt_extras(
    conn: &Connection,
    tx_id: &str,
) -> AppResult<(Option<i64>, Option<i64>, Option<String>)> {
    Ok(conn.query_row(
        "SELECT t.balance_after_cents, t.points_after, d.name
           FROM transactions t LEFT JOIN devices d ON d.id = t.device_id WHERE t.id = ?1",
        [tx_id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?)
}

pub fn refunds_of(conn: &Connection, original_tx_no: &str) -> AppResult<Vec<TransactionView>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {TX_COLUMNS} FROM transactions t LEFT JOIN cards c ON c.id = t.card_id
         WHERE t.original_tx_no = ?1 AND t.tx_type = 'refund' ORDER BY t.created_unix, t.id"
    ))?;
    let rows = stmt.query_map(params![original_tx_no], tx_from_row)?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Figures for one local day [from, to): payments (including ones later refunded),
/// refunds, net, unique cards, average ticket and per-hour figures in the store's zone.
pub fn day_summary(
    conn: &Connection,
    from_unix: i64,
    to_unix: i64,
    hour_of: &dyn Fn(i64) -> u32,
) -> AppResult<(SummaryTotals, Vec<HourStat>)> {
    let mut stmt = conn.prepare_cached(
        // Sales only: a counter top-up is money in, not a sale (the shift reports count it).
        "SELECT tx_type, final_amount_cents, card_id, created_unix FROM transactions
         WHERE created_unix >= ?1 AND created_unix < ?2 AND tx_type IN ('payment', 'refund')",
    )?;
    let mut totals = SummaryTotals::default();
    let mut hours: Vec<HourStat> = (0..24)
        .map(|h| HourStat {
            hour: h,
            count: 0,
            amount: 0,
            refund_amount: 0,
        })
        .collect();
    let mut cards = std::collections::HashSet::new();
    let rows = stmt.query_map(params![from_unix, to_unix], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, i64>(3)?,
        ))
    })?;
    for row in rows {
        let (tx_type, amount, card_id, at) = row?;
        let h = (hour_of(at) as usize).min(23);
        totals.total_count += 1;
        if tx_type == "payment" {
            totals.payment_count += 1;
            totals.payment_amount += amount;
            hours[h].count += 1;
            hours[h].amount += amount;
            cards.insert(card_id);
        } else {
            totals.refund_count += 1;
            totals.refund_amount += amount;
            hours[h].refund_amount += amount;
        }
    }
    totals.net_amount = totals.payment_amount - totals.refund_amount;
    totals.unique_cards = cards.len() as i64;
    if totals.payment_count > 0 {
        // Half away from zero, like every other rounding here.
        totals.average_ticket =
            (2 * totals.payment_amount + totals.payment_count) / (2 * totals.payment_count);
    }
    Ok((totals, hours))
}
