//! Staff accounts, refresh tokens and the audit log.

use crate::db::CachedExt;
use rusqlite::{params, Connection, OptionalExtension};

use crate::domain::Role;
use crate::error::{AppError, AppResult, ErrorCode};

/// Who did something, and from where. Never holds a secret.
#[derive(Debug, Clone, Default)]
pub struct Actor {
    pub user_id: Option<String>,
    pub username: Option<String>,
    pub ip: Option<String>,
    pub device_id: Option<String>,
    /// The manager or owner whose PIN approved this act at the till (issue 14): every
    /// audit row written for it names them beside the actor.
    pub approved_by: Option<String>,
}

impl Actor {
    pub fn system(name: &str) -> Actor {
        Actor {
            username: Some(name.to_string()),
            ..Actor::default()
        }
    }
}

pub fn audit(
    conn: &Connection,
    actor: &Actor,
    action: &str,
    object: Option<(&str, &str)>,
    details: serde_json::Value,
) -> AppResult<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO audit_log(at, actor_user_id, actor, action, object_type, object_id, ip, device_id, details)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    stmt.execute(params![
        super::now_rfc3339(),
        actor.user_id,
        actor.username,
        action,
        object.map(|o| o.0),
        object.map(|o| o.1),
        actor.ip,
        actor.device_id,
        with_approver(details, actor).to_string()
    ])?;
    Ok(())
}

fn with_approver(mut details: serde_json::Value, actor: &Actor) -> serde_json::Value {
    if let (Some(by), Some(map)) = (&actor.approved_by, details.as_object_mut()) {
        map.insert("approved_by".into(), serde_json::Value::String(by.clone()));
    }
    details
}

#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: String,
    pub username: String,
    pub password_hash: String,
    pub role: Role,
    pub disabled: bool,
    pub failed_logins: i64,
    pub locked_until: Option<i64>,
    pub token_epoch: i64,
}

const USER_COLUMNS: &str =
    "id, username, password_hash, role, disabled, failed_logins, locked_until, token_epoch";

fn user_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<UserRow> {
    let role: String = r.get(3)?;
    Ok(UserRow {
        id: r.get(0)?,
        username: r.get(1)?,
        password_hash: r.get(2)?,
        role: Role::parse(&role).unwrap_or(Role::Cashier),
        disabled: r.get::<_, i64>(4)? != 0,
        failed_logins: r.get(5)?,
        locked_until: r.get(6)?,
        token_epoch: r.get(7)?,
    })
}

pub fn find_by_username(conn: &Connection, username: &str) -> AppResult<Option<UserRow>> {
    Ok(conn
        .query_row(
            &format!("SELECT {USER_COLUMNS} FROM users WHERE username = ?1"),
            [username],
            user_from_row,
        )
        .optional()?)
}

pub fn find_by_id(conn: &Connection, id: &str) -> AppResult<Option<UserRow>> {
    Ok(conn
        .query_row(
            &format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"),
            [id],
            user_from_row,
        )
        .optional()?)
}

pub fn count_users(conn: &Connection) -> AppResult<i64> {
    Ok(conn.row_cached("SELECT COUNT(*) FROM users", [], |r| r.get(0))?)
}

/// Creates a user, or resets the password and role of an existing one when `replace`.
pub fn upsert_user(
    conn: &Connection,
    username: &str,
    password_hash: &str,
    role: Role,
    replace: bool,
    actor: &Actor,
) -> AppResult<String> {
    let now = super::now_rfc3339();
    if let Some(existing) = find_by_username(conn, username)? {
        if !replace {
            return Err(ErrorCode::UsernameTaken.into());
        }
        conn.exec_cached(
            "UPDATE users SET password_hash = ?2, role = ?3, disabled = 0, failed_logins = 0, locked_until = NULL,
                 token_epoch = token_epoch + 1, updated_at = ?4 WHERE id = ?1",
            params![existing.id, password_hash, role.as_str(), now],
        )?;
        audit(
            conn,
            actor,
            "user.reset",
            Some(("user", &existing.id)),
            serde_json::json!({"username": username, "role": role.as_str()}),
        )?;
        return Ok(existing.id);
    }
    let id = super::new_id();
    conn.exec_cached(
        "INSERT INTO users(id, username, password_hash, role, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        params![id, username, password_hash, role.as_str(), now],
    )?;
    audit(
        conn,
        actor,
        "user.create",
        Some(("user", &id)),
        serde_json::json!({"username": username, "role": role.as_str()}),
    )?;
    Ok(id)
}

/// Replaces a hash with one of the same password made with today's parameters.
/// The user's password hash (None for an unknown id).
pub fn password_hash_of(conn: &Connection, user_id: &str) -> AppResult<Option<String>> {
    Ok(conn
        .query_row(
            "SELECT password_hash FROM users WHERE id = ?1 AND disabled = 0",
            [user_id],
            |r| r.get(0),
        )
        .optional()?)
}

pub fn set_password_hash(conn: &Connection, user_id: &str, password_hash: &str) -> AppResult<()> {
    conn.exec_cached(
        "UPDATE users SET password_hash = ?2 WHERE id = ?1",
        params![user_id, password_hash],
    )?;
    Ok(())
}

pub fn record_successful_login(conn: &Connection, user_id: &str) -> AppResult<()> {
    conn.exec_cached(
        "UPDATE users SET failed_logins = 0, locked_until = NULL, last_login_at = ?2 WHERE id = ?1",
        params![user_id, super::now_rfc3339()],
    )?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct RefreshRow {
    pub id: String,
    pub user_id: String,
    pub family_id: String,
    pub device_id: Option<String>,
    pub expires_unix: i64,
    pub used: bool,
    pub revoked: bool,
    /// When it was rotated, and the `jti`/`iat` of the access token handed out with its
    /// successor (a retry within the grace window gets that same pair again).
    pub used_unix: Option<i64>,
    pub next_jti: Option<String>,
    pub next_iat: Option<i64>,
}

pub fn insert_refresh(
    conn: &Connection,
    user_id: &str,
    family_id: &str,
    token_hash: &str,
    device_id: Option<&str>,
    expires_unix: i64,
) -> AppResult<()> {
    conn.exec_cached(
        "INSERT INTO refresh_tokens(id, user_id, family_id, token_hash, device_id, expires_unix, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![super::new_id(), user_id, family_id, token_hash, device_id, expires_unix, super::now_rfc3339()],
    )?;
    Ok(())
}

pub fn find_refresh(conn: &Connection, token_hash: &str) -> AppResult<Option<RefreshRow>> {
    Ok(conn
        .query_row(
            "SELECT id, user_id, family_id, device_id, expires_unix, used_at IS NOT NULL, revoked_at IS NOT NULL,
                    used_unix, next_jti, next_iat
             FROM refresh_tokens WHERE token_hash = ?1",
            [token_hash],
            |r| {
                Ok(RefreshRow {
                    id: r.get(0)?,
                    user_id: r.get(1)?,
                    family_id: r.get(2)?,
                    device_id: r.get(3)?,
                    expires_unix: r.get(4)?,
                    used: r.get(5)?,
                    revoked: r.get(6)?,
                    used_unix: r.get(7)?,
                    next_jti: r.get(8)?,
                    next_iat: r.get(9)?,
                })
            },
        )
        .optional()?)
}

/// Marks a refresh token rotated at `now_unix`, remembering the access token issued with
/// its successor.
pub fn mark_refresh_used(
    conn: &Connection,
    id: &str,
    now_unix: i64,
    next_jti: &str,
    next_iat: i64,
) -> AppResult<bool> {
    let n = conn.exec_cached(
        "UPDATE refresh_tokens SET used_at = ?2, used_unix = ?3, next_jti = ?4, next_iat = ?5
         WHERE id = ?1 AND used_at IS NULL AND revoked_at IS NULL",
        params![id, super::now_rfc3339(), now_unix, next_jti, next_iat],
    )?;
    Ok(n == 1)
}

pub fn revoke_family(conn: &Connection, family_id: &str) -> AppResult<()> {
    conn.exec_cached(
        "UPDATE refresh_tokens SET revoked_at = ?2 WHERE family_id = ?1 AND revoked_at IS NULL",
        params![family_id, super::now_rfc3339()],
    )?;
    Ok(())
}

/// `None` when no sign-in ever made this family (a token naming it was not issued
/// here, or its rows are gone), else whether it has been revoked.
pub fn family_revoked_or_unknown(conn: &Connection, family_id: &str) -> AppResult<Option<bool>> {
    let row: Option<i64> = conn.row_cached(
        "SELECT MAX(revoked_at IS NOT NULL) FROM refresh_tokens WHERE family_id = ?1",
        [family_id],
        |r| r.get(0),
    )?;
    Ok(row.map(|r| r != 0))
}

pub fn family_revoked(conn: &Connection, family_id: &str) -> AppResult<bool> {
    let revoked: Option<i64> = conn
        .query_row(
            "SELECT 1 FROM refresh_tokens WHERE family_id = ?1 AND revoked_at IS NOT NULL LIMIT 1",
            [family_id],
            |r| r.get(0),
        )
        .optional()?;
    Ok(revoked.is_some())
}

pub fn require_user(conn: &Connection, id: &str) -> AppResult<UserRow> {
    find_by_id(conn, id)?.ok_or_else(|| AppError::new(ErrorCode::InvalidToken))
}
