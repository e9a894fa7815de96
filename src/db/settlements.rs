//! Settlements: the period's totals, the record and its outbox operation, written in one
//! transaction next to the ledger they close.

use crate::db::CachedExt;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use serde_json::json;

use super::meta;
use super::users::{audit, Actor};
use crate::domain::money::{format_cents, ser_cents};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::model::Pagination;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SettlementView {
    pub id: String,
    pub settlement_no: String,
    pub mode: String,
    pub period_start: String,
    pub period_end: String,
    pub payment_count: i64,
    #[schema(value_type = f64)]
    #[serde(serialize_with = "ser_cents")]
    pub payment_amount: i64,
    pub refund_count: i64,
    #[schema(value_type = f64)]
    #[serde(serialize_with = "ser_cents")]
    pub refund_amount: i64,
    #[schema(value_type = f64)]
    #[serde(serialize_with = "ser_cents")]
    pub total_amount: i64,
    pub tx_count: i64,
    pub status: String,
    pub created_at: String,
    pub created_by: Option<String>,
}

const SETTLEMENT_COLUMNS: &str = "id, settlement_no, mode, period_start, period_end, payment_count, payment_amount_cents, \
    refund_count, refund_amount_cents, total_amount_cents, tx_count, status, created_at, created_by";

fn settlement_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SettlementView> {
    Ok(SettlementView {
        id: r.get(0)?,
        settlement_no: r.get(1)?,
        mode: r.get(2)?,
        period_start: r.get(3)?,
        period_end: r.get(4)?,
        payment_count: r.get(5)?,
        payment_amount: r.get(6)?,
        refund_count: r.get(7)?,
        refund_amount: r.get(8)?,
        total_amount: r.get(9)?,
        tx_count: r.get(10)?,
        status: r.get(11)?,
        created_at: r.get(12)?,
        created_by: r.get(13)?,
    })
}

pub struct SettlementCmd {
    pub mode: String,
    pub start_unix: i64,
    pub end_unix: i64,
    pub site_code: String,
    pub actor: Actor,
}

fn rfc3339(t: i64) -> String {
    super::unix_to_rfc3339(t).unwrap_or_default()
}

/// Computes and stores a settlement over [start, end), with its outbox operation and
/// audit row, in the caller's (writer) transaction. An overlap with an earlier
/// settlement's period is refused, naming it.
pub fn create_settlement(conn: &Connection, cmd: &SettlementCmd) -> AppResult<SettlementView> {
    let overlap: Option<(String, String, String)> = conn
        .query_row(
            "SELECT settlement_no, period_start, period_end FROM settlements
             WHERE period_start_unix < ?2 AND ?1 < period_end_unix ORDER BY period_start_unix LIMIT 1",
            params![cmd.start_unix, cmd.end_unix],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    if let Some((no, start, end)) = overlap {
        return Err(AppError::msg(
            ErrorCode::SettlementOverlap,
            format!("The period overlaps settlement {no} ({start} – {end})."),
        )
        .with_details(json!({"settlement_no": no, "period_start": start, "period_end": end})));
    }
    let (pay_count, pay_cents, ref_count, ref_cents): (i64, i64, i64, i64) = conn.row_cached(
        "SELECT COALESCE(SUM(tx_type = 'payment'), 0),
                COALESCE(SUM(CASE WHEN tx_type = 'payment' THEN final_amount_cents END), 0),
                COALESCE(SUM(tx_type = 'refund'), 0),
                COALESCE(SUM(CASE WHEN tx_type = 'refund' THEN final_amount_cents END), 0)
         FROM transactions
         WHERE created_unix >= ?1 AND created_unix < ?2 AND status IN ('completed', 'refunded')",
        params![cmd.start_unix, cmd.end_unix],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    let id = super::new_id();
    let seq = meta::next(conn, "settlement_seq")?;
    let no = format!("STL-{}-{seq:06}", cmd.site_code);
    let now = super::now_rfc3339();
    let (start, end) = (rfc3339(cmd.start_unix), rfc3339(cmd.end_unix));
    let total = pay_cents - ref_cents;
    conn.exec_cached(
        "INSERT INTO settlements(id, settlement_no, mode, period_start, period_end, period_start_unix, period_end_unix,
            payment_count, payment_amount_cents, refund_count, refund_amount_cents, total_amount_cents, tx_count,
            created_at, created_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        params![
            id, no, cmd.mode, start, end, cmd.start_unix, cmd.end_unix, pay_count, pay_cents, ref_count,
            ref_cents, total, pay_count + ref_count, now, cmd.actor.username
        ],
    )?;
    let op_id = super::new_id();
    let payload = json!({
        "op_id": op_id,
        "op_type": "settlement",
        "settlement_id": id,
        "settlement_no": no,
        "mode": cmd.mode,
        "period_start": start,
        "period_end": end,
        "payment_count": pay_count,
        "payment_amount": format_cents(pay_cents),
        "refund_count": ref_count,
        "refund_amount": format_cents(ref_cents),
        "total_amount": format_cents(total),
        "tx_count": pay_count + ref_count,
        "created_at": now,
        "operator": cmd.actor.username,
    });
    conn.exec_cached(
        "INSERT INTO outbox(op_id, op_type, payload, created_at, created_unix) VALUES (?1, 'settlement', ?2, ?3, ?4)",
        params![op_id, payload.to_string(), now, super::now_unix()],
    )?;
    audit(
        conn,
        &cmd.actor,
        "settlement.create",
        Some(("settlement", &no)),
        json!({"mode": cmd.mode, "period_start": start, "period_end": end, "total_amount": format_cents(total),
               "tx_count": pay_count + ref_count}),
    )?;
    settlement(conn, &id)?.ok_or_else(|| AppError::internal("settlement vanished"))
}

pub fn settlement(conn: &Connection, id_or_no: &str) -> AppResult<Option<SettlementView>> {
    Ok(conn
        .query_row(
            &format!(
                "SELECT {SETTLEMENT_COLUMNS} FROM settlements WHERE id = ?1 OR settlement_no = ?1"
            ),
            [id_or_no],
            settlement_from_row,
        )
        .optional()?)
}

pub fn list_settlements(
    conn: &Connection,
    limit: i64,
    offset: i64,
) -> AppResult<(Vec<SettlementView>, Pagination)> {
    let total: i64 = conn.row_cached("SELECT COUNT(*) FROM settlements", [], |r| r.get(0))?;
    let mut stmt = conn.prepare(&format!(
        "SELECT {SETTLEMENT_COLUMNS} FROM settlements ORDER BY period_start_unix DESC, id DESC LIMIT ?1 OFFSET ?2"
    ))?;
    let rows = stmt
        .query_map(params![limit, offset], settlement_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok((rows, Pagination::new(limit, offset, total)))
}
