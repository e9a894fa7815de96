//! Enrollment codes and enrolled POS devices.

use crate::db::CachedExt;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use serde_json::json;

use super::users::{audit, Actor};
use crate::error::{AppError, AppResult, ErrorCode};

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
        json!({"name": name, "expires_at": super::unix_to_rfc3339(expires_unix)}),
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

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeviceView {
    pub id: String,
    pub name: String,
    pub created_at: String,
    pub created_by: Option<String>,
    pub revoked_at: Option<String>,
    pub revoked_by: Option<String>,
    pub last_login_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PendingCode {
    /// The code's row number: what "cancel" names (never the code or its hash).
    pub id: i64,
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
        "SELECT rowid, name, created_at, created_by, expires_unix FROM enrollment_codes
         WHERE used_at IS NULL AND expires_unix > ?1 ORDER BY created_at DESC LIMIT 100",
    )?;
    let codes = stmt
        .query_map([super::now_unix()], |r| {
            Ok(PendingCode {
                id: r.get(0)?,
                name: r.get(1)?,
                created_at: r.get(2)?,
                created_by: r.get(3)?,
                expires_at: super::unix_to_rfc3339(r.get(4)?),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok((devices, codes))
}

/// Cancels a code not yet redeemed (it expires now), audited. False when there is no
/// such pending code (unknown, used, expired or cancelled already).
pub fn cancel_enrollment_code(conn: &Connection, id: i64, actor: &Actor) -> AppResult<bool> {
    let now = super::now_unix();
    let name: Option<String> = conn
        .query_row(
            "UPDATE enrollment_codes SET expires_unix = ?2
             WHERE rowid = ?1 AND used_at IS NULL AND expires_unix > ?2 RETURNING name",
            params![id, now],
            |r| r.get(0),
        )
        .optional()?;
    let Some(name) = name else { return Ok(false) };
    audit(
        conn,
        actor,
        "device.enrollment_code.cancel",
        Some(("enrollment_code", &name)),
        json!({"name": name}),
    )?;
    Ok(true)
}
