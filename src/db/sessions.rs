//! Console sessions: stored by token hash, revoked one by one or all of a user's; the
//! user's locale.

use crate::db::CachedExt;
use rusqlite::{params, Connection, OptionalExtension};

use crate::error::AppResult;

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
