//! Manager PINs: setting one, and the wrong-guess counter that rests a PIN (kept apart
//! from sign-in throttling, so guesses at a PIN never lock the manager out).

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::json;

use super::users::{audit, Actor};
use crate::domain::approval::lock_until;
use crate::domain::Role;
use crate::error::AppResult;

/// Someone named as the approver: what the check needs.
#[derive(Debug, Clone)]
pub struct Approver {
    pub id: String,
    pub username: String,
    pub role: Option<Role>,
    pub disabled: bool,
    pub pin_hash: Option<String>,
    /// Unix time until which the PIN rests after wrong guesses.
    pub locked_until: Option<i64>,
}

pub fn approver(conn: &Connection, username: &str) -> AppResult<Option<Approver>> {
    Ok(conn
        .query_row(
            "SELECT u.id, u.username, u.role, u.disabled, u.pin_hash, f.locked_until
             FROM users u LEFT JOIN pin_failures f ON f.user_id = u.id
             WHERE u.username = ?1",
            [username],
            |r| {
                let role: String = r.get(2)?;
                Ok(Approver {
                    id: r.get(0)?,
                    username: r.get(1)?,
                    role: Role::parse(&role),
                    disabled: r.get::<_, i64>(3)? != 0,
                    pin_hash: r.get(4)?,
                    locked_until: r.get(5)?,
                })
            },
        )
        .optional()?)
}

/// Counts a wrong PIN (resting the PIN at the limit) or clears the count after a right
/// one.
pub fn record_pin(conn: &Connection, user_id: &str, ok: bool, now: i64) -> AppResult<()> {
    if ok {
        conn.execute("DELETE FROM pin_failures WHERE user_id = ?1", [user_id])?;
        return Ok(());
    }
    let failures: i64 = conn.query_row(
        "INSERT INTO pin_failures(user_id, failures) VALUES (?1, 1)
         ON CONFLICT(user_id) DO UPDATE SET failures = failures + 1
         RETURNING failures",
        [user_id],
        |r| r.get(0),
    )?;
    if let Some(until) = lock_until(failures, now) {
        // The count starts again after the rest: five more tries, then another rest.
        conn.execute(
            "UPDATE pin_failures SET failures = 0, locked_until = ?2 WHERE user_id = ?1",
            params![user_id, until],
        )?;
    }
    Ok(())
}

/// Stores the user's new PIN hash, clears any rest, audited (never the PIN).
pub fn set_pin(conn: &Connection, user_id: &str, hash: &str, actor: &Actor) -> AppResult<()> {
    conn.execute(
        "UPDATE users SET pin_hash = ?2 WHERE id = ?1",
        params![user_id, hash],
    )?;
    conn.execute("DELETE FROM pin_failures WHERE user_id = ?1", [user_id])?;
    audit(
        conn,
        actor,
        "user.pin_set",
        Some(("user", user_id)),
        json!({}),
    )
}
