//! Staff accounts as the console lists and changes them.

use crate::db::CachedExt;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use crate::domain::Role;
use crate::error::{AppError, AppResult, ErrorCode};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StaffView {
    pub id: String,
    pub username: String,
    pub role: String,
    pub disabled: bool,
    pub locked_until: Option<String>,
    pub locale: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// The last successful sign-in (console or POS), if any.
    pub last_login_at: Option<String>,
}

pub fn list_staff(conn: &Connection) -> AppResult<Vec<StaffView>> {
    let now = super::now_unix();
    let mut stmt = conn.prepare(
        "SELECT id, username, role, disabled,
             (SELECT locked_until FROM signin_accounts s WHERE s.username = users.username),
             locale, created_at, updated_at, last_login_at FROM users
         ORDER BY CASE role WHEN 'owner' THEN 0 WHEN 'manager' THEN 1 ELSE 2 END, username",
    )?;
    let rows = stmt.query_map([], |r| {
        let locked: Option<i64> = r.get(4)?;
        Ok(StaffView {
            id: r.get(0)?,
            username: r.get(1)?,
            role: r.get(2)?,
            disabled: r.get::<_, i64>(3)? != 0,
            locked_until: locked.filter(|t| *t > now).and_then(super::unix_to_rfc3339),
            locale: r.get(5)?,
            created_at: r.get(6)?,
            updated_at: r.get(7)?,
            last_login_at: r.get(8)?,
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
        super::sessions::end_all_sessions(conn, id)?;
    }
    Ok(())
}

/// New password; also lifts a lockout and ends the user's sessions.
pub fn reset_password(conn: &Connection, id: &str, password_hash: &str) -> AppResult<()> {
    conn.exec_cached(
        "UPDATE users SET password_hash = ?2, failed_logins = 0, locked_until = NULL, updated_at = ?3 WHERE id = ?1",
        params![id, password_hash, super::now_rfc3339()],
    )?;
    if let Some(username) = username_of(conn, id)? {
        super::signin::unlock(conn, &username)?;
    }
    super::sessions::end_all_sessions(conn, id)
}

pub fn username_of(conn: &Connection, id: &str) -> AppResult<Option<String>> {
    Ok(conn
        .query_row("SELECT username FROM users WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .optional()?)
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
