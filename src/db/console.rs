//! Storage for the web console: cookie sessions, staff administration, enrolled devices,
//! settings overrides, settlements and the audit log query.

use crate::db::CachedExt;
use rusqlite::types::ToSql;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use serde_json::json;

use super::meta;
use super::users::{audit, Actor};
use crate::domain::money::{format_cents, ser_cents};
use crate::domain::Role;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::model::Pagination;

// ---------------------------------------------------------------------------------------
// Sessions
// ---------------------------------------------------------------------------------------

pub struct NewSession<'a> {
    pub token_hash: &'a str,
    pub user_id: &'a str,
    pub family_id: &'a str,
    pub token_epoch: i64,
    pub csrf_token: &'a str,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub expires_unix: i64,
}

pub fn insert_session(conn: &Connection, s: &NewSession<'_>) -> AppResult<String> {
    let id = super::new_id();
    conn.exec_cached(
        "INSERT INTO console_sessions(id, token_hash, user_id, family_id, token_epoch, csrf_token, ip, user_agent,
             created_at, expires_unix) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            id, s.token_hash, s.user_id, s.family_id, s.token_epoch, s.csrf_token, s.ip, s.user_agent,
            super::now_rfc3339(), s.expires_unix
        ],
    )?;
    // Old, ended sessions are of no use; keep the table small.
    conn.exec_cached(
        "DELETE FROM console_sessions WHERE expires_unix < ?1 OR revoked_at IS NOT NULL AND created_at < ?2",
        params![
            super::now_unix() - 86_400,
            (chrono::Utc::now() - chrono::Duration::days(7))
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        ],
    )?;
    Ok(id)
}

#[derive(Debug, Clone)]
pub struct SessionRow {
    pub id: String,
    pub user_id: String,
    pub family_id: String,
    pub token_epoch: i64,
    pub csrf_token: String,
    pub expires_unix: i64,
    pub revoked: bool,
}

pub fn find_session(conn: &Connection, token_hash: &str) -> AppResult<Option<SessionRow>> {
    Ok(conn
        .query_row(
            "SELECT id, user_id, family_id, token_epoch, csrf_token, expires_unix, revoked_at IS NOT NULL
             FROM console_sessions WHERE token_hash = ?1",
            [token_hash],
            |r| {
                Ok(SessionRow {
                    id: r.get(0)?,
                    user_id: r.get(1)?,
                    family_id: r.get(2)?,
                    token_epoch: r.get(3)?,
                    csrf_token: r.get(4)?,
                    expires_unix: r.get(5)?,
                    revoked: r.get(6)?,
                })
            },
        )
        .optional()?)
}

pub fn revoke_session(conn: &Connection, id: &str) -> AppResult<()> {
    conn.exec_cached(
        "UPDATE console_sessions SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
        params![id, super::now_rfc3339()],
    )?;
    Ok(())
}

/// Ends every console session and bearer token of a user at once.
pub fn end_all_sessions(conn: &Connection, user_id: &str) -> AppResult<()> {
    let now = super::now_rfc3339();
    conn.exec_cached(
        "UPDATE users SET token_epoch = token_epoch + 1, updated_at = ?2 WHERE id = ?1",
        params![user_id, now],
    )?;
    conn.exec_cached(
        "UPDATE console_sessions SET revoked_at = ?2 WHERE user_id = ?1 AND revoked_at IS NULL",
        params![user_id, now],
    )?;
    conn.exec_cached(
        "UPDATE refresh_tokens SET revoked_at = ?2 WHERE user_id = ?1 AND revoked_at IS NULL",
        params![user_id, now],
    )?;
    Ok(())
}

pub fn user_locale(conn: &Connection, user_id: &str) -> AppResult<Option<String>> {
    Ok(conn
        .query_row("SELECT locale FROM users WHERE id = ?1", [user_id], |r| {
            r.get(0)
        })
        .optional()?
        .flatten())
}

pub fn set_locale(conn: &Connection, user_id: &str, locale: &str) -> AppResult<()> {
    conn.exec_cached(
        "UPDATE users SET locale = ?2, updated_at = ?3 WHERE id = ?1",
        params![user_id, locale, super::now_rfc3339()],
    )?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Staff
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize)]
pub struct StaffView {
    pub id: String,
    pub username: String,
    pub role: String,
    pub disabled: bool,
    pub locked_until: Option<String>,
    pub locale: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

fn unix_to_rfc3339(t: i64) -> Option<String> {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

pub fn list_staff(conn: &Connection) -> AppResult<Vec<StaffView>> {
    let now = super::now_unix();
    let mut stmt = conn.prepare(
        "SELECT id, username, role, disabled, locked_until, locale, created_at, updated_at FROM users
         ORDER BY CASE role WHEN 'owner' THEN 0 WHEN 'manager' THEN 1 ELSE 2 END, username",
    )?;
    let rows = stmt.query_map([], |r| {
        let locked: Option<i64> = r.get(4)?;
        Ok(StaffView {
            id: r.get(0)?,
            username: r.get(1)?,
            role: r.get(2)?,
            disabled: r.get::<_, i64>(3)? != 0,
            locked_until: locked.filter(|t| *t > now).and_then(unix_to_rfc3339),
            locale: r.get(5)?,
            created_at: r.get(6)?,
            updated_at: r.get(7)?,
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

pub fn staff_by_id(conn: &Connection, id: &str) -> AppResult<StaffView> {
    list_staff(conn)?
        .into_iter()
        .find(|s| s.id == id)
        .ok_or_else(|| AppError::new(ErrorCode::UserNotFound))
}

pub fn enabled_owners(conn: &Connection) -> AppResult<i64> {
    Ok(conn.row_cached(
        "SELECT COUNT(*) FROM users WHERE role = 'owner' AND disabled = 0",
        [],
        |r| r.get(0),
    )?)
}

pub fn set_disabled(conn: &Connection, id: &str, disabled: bool) -> AppResult<()> {
    conn.exec_cached(
        "UPDATE users SET disabled = ?2, updated_at = ?3 WHERE id = ?1",
        params![id, disabled, super::now_rfc3339()],
    )?;
    if disabled {
        end_all_sessions(conn, id)?;
    }
    Ok(())
}

/// New password; also lifts a lockout and ends the user's sessions.
pub fn reset_password(conn: &Connection, id: &str, password_hash: &str) -> AppResult<()> {
    conn.exec_cached(
        "UPDATE users SET password_hash = ?2, failed_logins = 0, locked_until = NULL, updated_at = ?3 WHERE id = ?1",
        params![id, password_hash, super::now_rfc3339()],
    )?;
    end_all_sessions(conn, id)
}

pub fn role_of(conn: &Connection, id: &str) -> AppResult<Option<(Role, bool)>> {
    let row: Option<(String, i64)> = conn
        .query_row(
            "SELECT role, disabled FROM users WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    Ok(row.and_then(|(role, d)| Role::parse(&role).map(|r| (r, d != 0))))
}

// ---------------------------------------------------------------------------------------
// Devices
// ---------------------------------------------------------------------------------------

pub fn insert_enrollment_code(
    conn: &Connection,
    code_hash: &str,
    name: &str,
    expires_unix: i64,
    actor: &Actor,
) -> AppResult<()> {
    conn.exec_cached(
        "INSERT INTO enrollment_codes(code_hash, name, created_at, created_by, expires_unix) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![code_hash, name, super::now_rfc3339(), actor.username, expires_unix],
    )?;
    audit(
        conn,
        actor,
        "device.enrollment_code.create",
        Some(("enrollment_code", name)),
        json!({"name": name, "expires_at": unix_to_rfc3339(expires_unix)}),
    )
}

#[derive(Debug, Clone, Serialize)]
pub struct EnrolledDevice {
    pub device_id: String,
    pub name: String,
}

/// Exchanges a code for a new device; `None` when the code is wrong, used or expired.
pub fn redeem_code(
    conn: &Connection,
    code_hash: &str,
    secret_hash: &str,
    ip: Option<String>,
) -> AppResult<Option<EnrolledDevice>> {
    let now = super::now_unix();
    let row: Option<(String, String)> = conn
        .query_row(
            "SELECT name, COALESCE(created_by, '') FROM enrollment_codes
             WHERE code_hash = ?1 AND used_at IS NULL AND expires_unix > ?2",
            params![code_hash, now],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((name, created_by)) = row else {
        return Ok(None);
    };
    let id = super::new_id();
    let at = super::now_rfc3339();
    conn.exec_cached(
        "INSERT INTO devices(id, name, secret_hash, created_at, created_by) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![id, name, secret_hash, at, created_by],
    )?;
    conn.exec_cached(
        "UPDATE enrollment_codes SET used_at = ?2, device_id = ?3 WHERE code_hash = ?1",
        params![code_hash, at, id],
    )?;
    audit(
        conn,
        &Actor {
            ip,
            device_id: Some(id.clone()),
            username: Some(format!("device:{name}")),
            ..Actor::default()
        },
        "device.enroll",
        Some(("device", &id)),
        json!({"name": name}),
    )?;
    Ok(Some(EnrolledDevice {
        device_id: id,
        name,
    }))
}

/// (secret hash, revoked) of a device.
pub fn device_secret(conn: &Connection, id: &str) -> AppResult<Option<(String, bool)>> {
    Ok(conn
        .query_row(
            "SELECT secret_hash, revoked_at IS NOT NULL FROM devices WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?)
}

/// True when the device is unknown or revoked: its tokens must not work.
pub fn device_revoked(conn: &Connection, id: &str) -> AppResult<bool> {
    Ok(device_secret(conn, id)?.is_none_or(|(_, revoked)| revoked))
}

pub fn revoke_device(conn: &Connection, id: &str, actor: &Actor) -> AppResult<()> {
    let now = super::now_rfc3339();
    let n = conn.exec_cached(
        "UPDATE devices SET revoked_at = ?2, revoked_by = ?3 WHERE id = ?1 AND revoked_at IS NULL",
        params![id, now, actor.username],
    )?;
    if n == 0 {
        return match device_secret(conn, id)? {
            None => Err(AppError::msg(ErrorCode::NotFound, "No such device.")),
            Some(_) => Err(AppError::msg(
                ErrorCode::Conflict,
                "This device is already revoked.",
            )),
        };
    }
    conn.exec_cached(
        "UPDATE refresh_tokens SET revoked_at = ?2 WHERE device_id = ?1 AND revoked_at IS NULL",
        params![id, now],
    )?;
    audit(
        conn,
        actor,
        "device.revoke",
        Some(("device", id)),
        json!({}),
    )
}

#[derive(Debug, Clone, Serialize)]
pub struct DeviceView {
    pub id: String,
    pub name: String,
    pub created_at: String,
    pub created_by: Option<String>,
    pub revoked_at: Option<String>,
    pub revoked_by: Option<String>,
    pub last_login_at: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PendingCode {
    pub name: String,
    pub created_at: String,
    pub created_by: Option<String>,
    pub expires_at: Option<String>,
}

pub fn list_devices(conn: &Connection) -> AppResult<(Vec<DeviceView>, Vec<PendingCode>)> {
    let mut stmt = conn.prepare(
        "SELECT d.id, d.name, d.created_at, d.created_by, d.revoked_at, d.revoked_by,
                (SELECT MAX(created_at) FROM refresh_tokens r WHERE r.device_id = d.id)
         FROM devices d ORDER BY d.revoked_at IS NOT NULL, d.created_at DESC LIMIT 1000",
    )?;
    let devices = stmt
        .query_map([], |r| {
            Ok(DeviceView {
                id: r.get(0)?,
                name: r.get(1)?,
                created_at: r.get(2)?,
                created_by: r.get(3)?,
                revoked_at: r.get(4)?,
                revoked_by: r.get(5)?,
                last_login_at: r.get(6)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut stmt = conn.prepare(
        "SELECT name, created_at, created_by, expires_unix FROM enrollment_codes
         WHERE used_at IS NULL AND expires_unix > ?1 ORDER BY created_at DESC LIMIT 100",
    )?;
    let codes = stmt
        .query_map([super::now_unix()], |r| {
            Ok(PendingCode {
                name: r.get(0)?,
                created_at: r.get(1)?,
                created_by: r.get(2)?,
                expires_at: unix_to_rfc3339(r.get(3)?),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok((devices, codes))
}

// ---------------------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------------------

pub fn load_settings(conn: &Connection) -> AppResult<Vec<(String, String)>> {
    let mut stmt = conn.prepare("SELECT key, value FROM settings ORDER BY key")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

pub fn save_settings(
    conn: &Connection,
    values: &[(String, String)],
    changes: serde_json::Value,
    actor: &Actor,
) -> AppResult<()> {
    let now = super::now_rfc3339();
    for (k, v) in values {
        conn.exec_cached(
            "INSERT INTO settings(key, value, updated_at, updated_by) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at,
                 updated_by = excluded.updated_by",
            params![k, v, now, actor.username],
        )?;
    }
    audit(
        conn,
        actor,
        "settings.update",
        Some(("settings", "console")),
        changes,
    )
}

// ---------------------------------------------------------------------------------------
// Settlements
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize)]
pub struct SettlementView {
    pub id: String,
    pub settlement_no: String,
    pub mode: String,
    pub period_start: String,
    pub period_end: String,
    pub payment_count: i64,
    #[serde(serialize_with = "ser_cents")]
    pub payment_amount: i64,
    pub refund_count: i64,
    #[serde(serialize_with = "ser_cents")]
    pub refund_amount: i64,
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
    unix_to_rfc3339(t).unwrap_or_default()
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

// ---------------------------------------------------------------------------------------
// Audit log
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Exact action, or a prefix when it ends with '.' or '*' ("user." / "device.*").
    pub action: Option<String>,
    /// Username (case-insensitive) or user id.
    pub actor: Option<String>,
    /// RFC 3339 UTC bounds, [from, to).
    pub from: Option<String>,
    pub to: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AuditView {
    pub id: i64,
    pub at: String,
    pub actor_user_id: Option<String>,
    pub actor: Option<String>,
    pub action: String,
    pub object_type: Option<String>,
    pub object_id: Option<String>,
    pub ip: Option<String>,
    pub device_id: Option<String>,
    pub details: serde_json::Value,
}

pub fn list_audit(
    conn: &Connection,
    f: &AuditFilter,
    limit: i64,
    offset: i64,
) -> AppResult<(Vec<AuditView>, Pagination)> {
    let mut clauses: Vec<&str> = Vec::new();
    let mut args: Vec<Box<dyn ToSql>> = Vec::new();
    if let Some(a) = &f.action {
        if let Some(prefix) = a
            .strip_suffix('*')
            .or_else(|| a.ends_with('.').then_some(a))
        {
            clauses.push("substr(action, 1, length(?)) = ?");
            args.push(Box::new(prefix.to_string()));
            args.push(Box::new(prefix.to_string()));
        } else {
            clauses.push("action = ?");
            args.push(Box::new(a.clone()));
        }
    }
    if let Some(a) = &f.actor {
        clauses.push("(actor = ? COLLATE NOCASE OR actor_user_id = ?)");
        args.push(Box::new(a.clone()));
        args.push(Box::new(a.clone()));
    }
    if let Some(t) = &f.from {
        clauses.push("at >= ?");
        args.push(Box::new(t.clone()));
    }
    if let Some(t) = &f.to {
        clauses.push("at < ?");
        args.push(Box::new(t.clone()));
    }
    let where_sql = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    let total: i64 = conn.row_cached(
        &format!("SELECT COUNT(*) FROM audit_log {where_sql}"),
        rusqlite::params_from_iter(args.iter().map(|a| a.as_ref())),
        |r| r.get(0),
    )?;
    args.push(Box::new(limit));
    args.push(Box::new(offset));
    let mut stmt = conn.prepare(&format!(
        "SELECT id, at, actor_user_id, actor, action, object_type, object_id, ip, device_id, details
         FROM audit_log {where_sql} ORDER BY id DESC LIMIT ? OFFSET ?"
    ))?;
    let rows = stmt
        .query_map(
            rusqlite::params_from_iter(args.iter().map(|a| a.as_ref())),
            |r| {
                let details: String = r.get(9)?;
                Ok(AuditView {
                    id: r.get(0)?,
                    at: r.get(1)?,
                    actor_user_id: r.get(2)?,
                    actor: r.get(3)?,
                    action: r.get(4)?,
                    object_type: r.get(5)?,
                    object_id: r.get(6)?,
                    ip: r.get(7)?,
                    device_id: r.get(8)?,
                    details: serde_json::from_str(&details).unwrap_or(serde_json::Value::Null),
                })
            },
        )?
        .collect::<Result<Vec<_>, _>>()?;
    Ok((rows, Pagination::new(limit, offset, total)))
}
