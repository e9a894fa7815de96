//! Settlements: the period's totals, the record and its outbox operation, written in one
//! transaction next to the ledger they close.

use crate::db::CachedExt;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use serde_json::json;

use super::meta;
use super::users::{audit, Actor};
use crate::domain::money::{format_cents, ser_cents};
use crate::domain::settlement::period_days;
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
    /// pending (reported to central) or voided.
    pub status: String,
    pub created_at: String,
    pub created_by: Option<String>,
    /// The period's first and last calendar day in the store's time zone, both
    /// inclusive (YYYY-MM-DD), and whether it is made of whole days.
    pub first_day: String,
    pub last_day: String,
    pub whole_days: bool,
    pub voided_at: Option<String>,
    pub voided_by: Option<String>,
    pub void_reason: Option<String>,
}

const SETTLEMENT_COLUMNS: &str = "id, settlement_no, mode, period_start, period_end, payment_count, payment_amount_cents, \
    refund_count, refund_amount_cents, total_amount_cents, tx_count, status, created_at, created_by, \
    period_start_unix, period_end_unix, voided_at, voided_by, void_reason";

fn settlement_from_row(
    r: &rusqlite::Row<'_>,
    tz: chrono_tz::Tz,
) -> rusqlite::Result<SettlementView> {
    let days = period_days(r.get(14)?, r.get(15)?, tz);
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
        first_day: days
            .as_ref()
            .map(|d| d.first_day.to_string())
            .unwrap_or_default(),
        last_day: days
            .as_ref()
            .map(|d| d.last_day.to_string())
            .unwrap_or_default(),
        whole_days: days.is_some_and(|d| d.whole_days),
        voided_at: r.get(16)?,
        voided_by: r.get(17)?,
        void_reason: r.get(18)?,
    })
}

pub struct SettlementCmd {
    pub mode: String,
    pub start_unix: i64,
    pub end_unix: i64,
    pub site_code: String,
    pub actor: Actor,
    pub tz: chrono_tz::Tz,
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
             WHERE status <> 'voided' AND period_start_unix < ?2 AND ?1 < period_end_unix ORDER BY period_start_unix LIMIT 1",
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
    if pay_count + ref_count == 0 {
        return Err(AppError::new(ErrorCode::SettlementEmpty)
            .with_details(json!({"field": "period_start"})));
    }
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
    settlement(conn, &id, cmd.tz)?.ok_or_else(|| AppError::internal("settlement vanished"))
}

pub struct VoidCmd {
    pub id_or_no: String,
    pub reason: String,
    pub actor: Actor,
    pub tz: chrono_tz::Tz,
}

/// Voids a settlement in the caller's (writer) transaction: the record stays, marked
/// voided with who, when and why; its period may be settled again; and a
/// 'settlement_void' outbox operation tells central (after the settlement itself,
/// by seq). A second void is refused.
pub fn void_settlement(conn: &Connection, cmd: &VoidCmd) -> AppResult<Option<SettlementView>> {
    let Some(current) = settlement(conn, &cmd.id_or_no, cmd.tz)? else {
        return Ok(None);
    };
    if current.status == "voided" {
        return Err(
            AppError::new(ErrorCode::SettlementVoided).with_details(json!({
                "settlement_no": current.settlement_no,
                "voided_at": current.voided_at,
                "voided_by": current.voided_by,
            })),
        );
    }
    let now = super::now_rfc3339();
    conn.exec_cached(
        "UPDATE settlements SET status = 'voided', voided_at = ?2, voided_by = ?3, void_reason = ?4 WHERE id = ?1",
        params![current.id, now, cmd.actor.username, cmd.reason],
    )?;
    let op_id = super::new_id();
    let payload = json!({
        "op_id": op_id,
        "op_type": "settlement_void",
        "settlement_id": current.id,
        "settlement_no": current.settlement_no,
        "reason": cmd.reason,
        "voided_at": now,
        "operator": cmd.actor.username,
    });
    conn.exec_cached(
        "INSERT INTO outbox(op_id, op_type, payload, created_at, created_unix) VALUES (?1, 'settlement_void', ?2, ?3, ?4)",
        params![op_id, payload.to_string(), now, super::now_unix()],
    )?;
    audit(
        conn,
        &cmd.actor,
        "settlement.void",
        Some(("settlement", &current.settlement_no)),
        json!({"reason": cmd.reason, "period_start": current.period_start, "period_end": current.period_end,
               "total_amount": format_cents(current.total_amount), "status": {"old": "pending", "new": "voided"}}),
    )?;
    settlement(conn, &current.id, cmd.tz)
}

pub fn settlement(
    conn: &Connection,
    id_or_no: &str,
    tz: chrono_tz::Tz,
) -> AppResult<Option<SettlementView>> {
    Ok(conn
        .query_row(
            &format!(
                "SELECT {SETTLEMENT_COLUMNS} FROM settlements WHERE id = ?1 OR settlement_no = ?1"
            ),
            [id_or_no],
            |r| settlement_from_row(r, tz),
        )
        .optional()?)
}

pub fn list_settlements(
    conn: &Connection,
    limit: i64,
    offset: i64,
    tz: chrono_tz::Tz,
) -> AppResult<(Vec<SettlementView>, Pagination)> {
    let total: i64 = conn.row_cached("SELECT COUNT(*) FROM settlements", [], |r| r.get(0))?;
    let mut stmt = conn.prepare(&format!(
        "SELECT {SETTLEMENT_COLUMNS} FROM settlements ORDER BY period_start_unix DESC, id DESC LIMIT ?1 OFFSET ?2"
    ))?;
    let rows = stmt
        .query_map(params![limit, offset], |r| settlement_from_row(r, tz))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok((rows, Pagination::new(limit, offset, total)))
}
