//! What the sync engine remembers between runs (cursors, last success, last error) and
//! the status it shows; plus the local exception list.

use crate::db::CachedExt;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use utoipa::ToSchema;

use super::plan::{Cursor, PipelineState, PipelineStatus};
use crate::db::meta;
use crate::db::users::{audit, Actor};
use crate::domain::money::{ser_cents, ser_opt_cents};
use crate::error::{AppResult, ErrorCode};

pub const LAST_PUSH_OK: &str = "sync.last_push_ok";
pub const LAST_PULL_OK: &str = "sync.last_pull_ok";
pub const LAST_ERROR: &str = "sync.last_error";
pub const LAST_ERROR_AT: &str = "sync.last_error_at";
/// Written by versions before the push and pull pipelines were separate; read as a
/// push stop, cleared by `sync now`.
pub const LEGACY_BLOCKED: &str = "sync.blocked";
pub const ONLINE: &str = "sync.online";
/// When central last acknowledged this store's heartbeat, and the clock skew it measured.
pub const HEARTBEAT_AT: &str = "sync.heartbeat_at";
pub const CLOCK_SKEW_SECS: &str = "sync.clock_skew_secs";

/// The push (outbox → central) and pull (central → replica) pipelines run and fail
/// independently; each has its own stop and failure record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pipeline {
    Push,
    Pull,
}

impl Pipeline {
    pub const ALL: [Pipeline; 2] = [Pipeline::Push, Pipeline::Pull];

    pub fn name(self) -> &'static str {
        match self {
            Pipeline::Push => "push",
            Pipeline::Pull => "pull",
        }
    }
    /// Set while a permanent error stops the pipeline (the message); `sync now` clears it.
    pub fn blocked_key(self) -> &'static str {
        match self {
            Pipeline::Push => "sync.push_blocked",
            Pipeline::Pull => "sync.pull_blocked",
        }
    }
    /// Unix time of the first failure since the last success.
    pub fn failing_since_key(self) -> &'static str {
        match self {
            Pipeline::Push => "sync.push_failing_since",
            Pipeline::Pull => "sync.pull_failing_since",
        }
    }
    /// The latest error since the last success.
    pub fn error_key(self) -> &'static str {
        match self {
            Pipeline::Push => "sync.push_error",
            Pipeline::Pull => "sync.pull_error",
        }
    }
}

/// Records a failed step of `p`: the error, the start of the failure streak, and a stop
/// when `permanent`.
pub fn note_failure(conn: &Connection, p: Pipeline, msg: &str, permanent: bool) -> AppResult<()> {
    let now = crate::db::now_rfc3339();
    meta::set(conn, LAST_ERROR, msg)?;
    meta::set(conn, LAST_ERROR_AT, &now)?;
    meta::set(conn, p.error_key(), msg)?;
    if meta::get(conn, p.failing_since_key())?.is_none() {
        meta::set(
            conn,
            p.failing_since_key(),
            &chrono::Utc::now().timestamp().to_string(),
        )?;
    }
    if permanent {
        meta::set(conn, p.blocked_key(), msg)?;
    }
    Ok(())
}

/// Records a successful step of `p`: ends its failure streak. `contacted`: central
/// answered (a push with an empty outbox sends nothing, so it says nothing about the link).
pub fn note_success(
    conn: &Connection,
    p: Pipeline,
    ok_key: &str,
    contacted: bool,
) -> AppResult<()> {
    meta::set(conn, ok_key, &crate::db::now_rfc3339())?;
    if contacted {
        meta::set(conn, ONLINE, "1")?;
    }
    clear(conn, p.error_key())?;
    clear(conn, p.failing_since_key())
}

/// Clears the stops of both pipelines (what `sync now` does first).
pub fn clear_stops(conn: &Connection) -> AppResult<()> {
    for p in Pipeline::ALL {
        clear(conn, p.blocked_key())?;
    }
    clear(conn, LEGACY_BLOCKED)
}

pub fn cursor(conn: &Connection, kind: &str) -> AppResult<Option<Cursor>> {
    Ok(meta::get(conn, &format!("cursor.{kind}"))?.and_then(|t| serde_json::from_str(&t).ok()))
}

pub fn set_cursor(conn: &Connection, kind: &str, c: &Cursor) -> AppResult<()> {
    let text = serde_json::to_string(c).unwrap_or_default();
    meta::set(conn, &format!("cursor.{kind}"), &text)
}

pub fn clear(conn: &Connection, key: &str) -> AppResult<()> {
    conn.exec_cached("DELETE FROM meta WHERE key = ?1", [key])?;
    Ok(())
}

/// Pending operations (charges, refunds, settlements and their voids, card freezes and
/// unfreezes), oldest first: (seq, payload).
/// Strictly in seq order: a settlement follows the sales it covers.
pub fn pending_ops(conn: &Connection, limit: usize) -> AppResult<Vec<super::plan::PendingOp>> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, card_id, payload FROM outbox WHERE state = 'pending' AND op_type IN ('charge','refund','settlement','settlement_void','card_freeze','card_unfreeze','recharge') ORDER BY seq LIMIT ?1",
    )?;
    let rows = stmt.query_map([limit as i64], |r| {
        Ok(super::plan::PendingOp {
            seq: r.get(0)?,
            card_id: r.get(1)?,
            payload: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReplicaCounts {
    pub merchant: i64,
    pub levels: i64,
    pub members: i64,
    pub cards: i64,
    pub qr_states: i64,
    /// Offline-code chains (mq2) that are not revoked and have not ended.
    pub qr_chains: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SyncStatus {
    pub mode: String,
    pub central_configured: bool,
    pub online: Option<bool>,
    /// The push stop, else the pull stop (kept for older clients; see `push` and `pull`).
    pub blocked: Option<String>,
    pub push: PipelineStatus,
    pub pull: PipelineStatus,
    /// What makes this store unhealthy now (a stopped pipeline, or one failing for longer
    /// than `central.alert_after_secs`), each with its cause and fix. Empty = healthy.
    /// `/ready`, `doctor` and the console banner show these.
    pub problems: Vec<String>,
    pub queue_depth: i64,
    pub oldest_pending_at: Option<String>,
    pub oldest_pending_age_secs: Option<i64>,
    #[schema(value_type = f64)]
    #[serde(serialize_with = "ser_cents")]
    pub unsynced_charges_amount: i64,
    pub last_push_ok_at: Option<String>,
    pub last_pull_ok_at: Option<String>,
    pub replica_age_secs: Option<i64>,
    pub last_error: Option<String>,
    pub last_error_at: Option<String>,
    pub open_exceptions: i64,
    /// When central last took this store's heartbeat (`edge_report_status`), and the
    /// skew it measured: this store's clock minus central's, in seconds.
    pub last_heartbeat_at: Option<String>,
    pub clock_skew_secs: Option<f64>,
    pub replica: ReplicaCounts,
}

/// Why `p` is stopped, if it is. A push stop written by an older version (before the
/// pipelines were separate) still counts.
pub fn stop_reason(conn: &Connection, p: Pipeline) -> AppResult<Option<String>> {
    let mut blocked = meta::get(conn, p.blocked_key())?;
    if p == Pipeline::Push && blocked.is_none() {
        blocked = meta::get(conn, LEGACY_BLOCKED)?;
    }
    Ok(blocked)
}

fn pipeline_status(conn: &Connection, p: Pipeline, now: i64) -> AppResult<PipelineStatus> {
    let blocked = stop_reason(conn, p)?;
    let since: Option<i64> = meta::get(conn, p.failing_since_key())?.and_then(|v| v.parse().ok());
    let error = blocked.clone().or(meta::get(conn, p.error_key())?);
    let state = if blocked.is_some() {
        PipelineState::Stopped
    } else if since.is_some() {
        PipelineState::Failing
    } else {
        PipelineState::Ok
    };
    Ok(PipelineStatus {
        state,
        error,
        failing_since_unix: since,
        failing_secs: since.map(|t| (now - t).max(0)),
    })
}

/// `alert_after_secs`: `None` for a standalone store (no pipelines), else how long a
/// pipeline may fail before it counts as a problem.
pub fn status(conn: &Connection, alert_after_secs: Option<i64>) -> AppResult<SyncStatus> {
    let central_configured = alert_after_secs.is_some();
    let count = |sql: &str| -> AppResult<i64> { Ok(conn.row_cached(sql, [], |r| r.get(0))?) };
    let (depth, oldest_at, oldest_unix): (i64, Option<String>, Option<i64>) = conn.row_cached(
        "SELECT COUNT(*), MIN(created_at), MIN(created_unix) FROM outbox WHERE state = 'pending'",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let now = chrono::Utc::now().timestamp();
    let refreshed: Option<i64> =
        meta::get(conn, meta::REPLICA_REFRESHED_UNIX)?.and_then(|v| v.parse().ok());
    let push = pipeline_status(conn, Pipeline::Push, now)?;
    let pull = pipeline_status(conn, Pipeline::Pull, now)?;
    let problems = match alert_after_secs {
        Some(alert) => super::plan::problems(&push, &pull, alert),
        None => Vec::new(),
    };
    let blocked = [&push, &pull]
        .iter()
        .find(|p| p.state == PipelineState::Stopped)
        .and_then(|p| p.error.clone());
    Ok(SyncStatus {
        mode: meta::get(conn, meta::MODE)?.unwrap_or_else(|| "standalone".into()),
        central_configured,
        online: meta::get(conn, ONLINE)?.map(|v| v == "1"),
        blocked,
        push,
        pull,
        problems,
        queue_depth: depth,
        oldest_pending_at: oldest_at,
        oldest_pending_age_secs: oldest_unix.map(|t| (now - t).max(0)),
        unsynced_charges_amount: meta::counter(conn, meta::SITE_UNSYNCED_DEBIT)?,
        last_push_ok_at: meta::get(conn, LAST_PUSH_OK)?,
        last_pull_ok_at: meta::get(conn, LAST_PULL_OK)?,
        replica_age_secs: refreshed.map(|t| (now - t).max(0)),
        last_error: meta::get(conn, LAST_ERROR)?,
        last_error_at: meta::get(conn, LAST_ERROR_AT)?,
        open_exceptions: count("SELECT COUNT(*) FROM sync_exceptions WHERE resolved_at IS NULL")?,
        last_heartbeat_at: meta::get(conn, HEARTBEAT_AT)?,
        clock_skew_secs: meta::get(conn, CLOCK_SKEW_SECS)?.and_then(|v| v.parse().ok()),
        replica: ReplicaCounts {
            merchant: count("SELECT COUNT(*) FROM merchant")?,
            levels: count("SELECT COUNT(*) FROM membership_levels")?,
            members: count("SELECT COUNT(*) FROM members")?,
            cards: count("SELECT COUNT(*) FROM cards")?,
            qr_states: count("SELECT COUNT(*) FROM card_qr_state")?,
            qr_chains: conn.query_row(
                "SELECT COUNT(*) FROM qr_chains WHERE revoked_at_unix IS NULL AND ends_at_unix > ?1",
                [chrono::Utc::now().timestamp()],
                |r| r.get(0),
            )?,
        },
    })
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ExceptionView {
    pub id: String,
    pub op_id: String,
    pub op_type: String,
    pub tx_no: Option<String>,
    pub card_id: Option<String>,
    pub card_no: Option<String>,
    #[schema(value_type = Option<f64>)]
    #[serde(serialize_with = "ser_opt_cents")]
    pub amount: Option<i64>,
    pub reason: String,
    pub central_exception_id: Option<String>,
    pub created_at: String,
    pub resolved_at: Option<String>,
    pub resolved_by: Option<String>,
    pub resolution_note: Option<String>,
}

pub fn list_exceptions(conn: &Connection, open_only: bool) -> AppResult<Vec<ExceptionView>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT e.id, e.op_id, e.op_type, e.tx_no, e.card_id, c.card_no, e.amount_cents, e.reason,
                e.central_exception_id, e.created_at, e.resolved_at, e.resolved_by, e.resolution_note
         FROM sync_exceptions e LEFT JOIN cards c ON c.id = e.card_id {} ORDER BY e.created_at DESC LIMIT 500",
        if open_only { "WHERE e.resolved_at IS NULL" } else { "" }
    ))?;
    let rows = stmt.query_map([], |r| {
        Ok(ExceptionView {
            id: r.get(0)?,
            op_id: r.get(1)?,
            op_type: r.get(2)?,
            tx_no: r.get(3)?,
            card_id: r.get(4)?,
            card_no: r.get(5)?,
            amount: r.get(6)?,
            reason: r.get(7)?,
            central_exception_id: r.get(8)?,
            created_at: r.get(9)?,
            resolved_at: r.get(10)?,
            resolved_by: r.get(11)?,
            resolution_note: r.get(12)?,
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Marks an exception resolved with a note (audited). Returns the central exception id
/// so the caller can tell central too.
pub fn resolve_exception(
    conn: &Connection,
    id: &str,
    note: &str,
    actor: &Actor,
) -> AppResult<Option<String>> {
    let row: Option<(Option<String>, Option<String>)> = conn
        .query_row(
            "SELECT resolved_at, central_exception_id FROM sync_exceptions WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((resolved, central_id)) = row else {
        return Err(crate::error::AppError::msg(
            ErrorCode::NotFound,
            "No such exception.",
        ));
    };
    if resolved.is_some() {
        return Err(crate::error::AppError::msg(
            ErrorCode::Conflict,
            "This exception is already resolved.",
        ));
    }
    conn.exec_cached(
        "UPDATE sync_exceptions SET resolved_at = ?2, resolved_by = ?3, resolution_note = ?4 WHERE id = ?1",
        params![id, crate::db::now_rfc3339(), actor.username, note],
    )?;
    audit(
        conn,
        actor,
        "sync.exception.resolve",
        Some(("sync_exception", id)),
        serde_json::json!({"note": note}),
    )?;
    Ok(central_id)
}

pub fn mark_central_resolved(conn: &Connection, id: &str) -> AppResult<()> {
    conn.exec_cached(
        "UPDATE sync_exceptions SET central_resolved = 1 WHERE id = ?1",
        [id],
    )?;
    Ok(())
}

/// The heartbeat a store sends central (`edge_report_status`): its sync figures as they
/// stand, its clock (central measures the skew) and what it runs. The last error is cut
/// to 300 characters; central keeps no more than 500.
pub fn heartbeat(
    status: &super::state::SyncStatus,
    now: chrono::DateTime<chrono::Utc>,
) -> serde_json::Value {
    serde_json::json!({
        "edge_time": now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "version": env!("CARGO_PKG_VERSION"),
        "protocol": super::CENTRAL_SQL_VERSION,
        "queue_depth": status.queue_depth,
        "oldest_pending_age_secs": status.oldest_pending_age_secs,
        "open_exceptions": status.open_exceptions,
        "replica_age_secs": status.replica_age_secs,
        "last_error": status.last_error.as_deref().map(|e| e.chars().take(300).collect::<String>()),
    })
}
