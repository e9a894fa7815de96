//! The sign-in throttle's counters (`domain::signin` decides; this keeps the states).
//! Every function runs inside one writer job, so a reservation is atomic: parallel
//! attempts see each other's counts.

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::json;

use crate::db::users::{audit, Actor};
use crate::db::CachedExt;
use crate::domain::signin::{self, AccountState, PairState, Policy, Verdict};
use crate::error::AppResult;

fn load_pair(c: &Connection, username: &str, ip: &str) -> AppResult<Option<PairState>> {
    Ok(c.prepare_cached(
        "SELECT failures, last_unix, lock_logged FROM signin_failures WHERE username = ?1 AND ip = ?2",
    )?
    .query_row(params![username, ip], |r| {
        Ok(PairState {
            failures: r.get(0)?,
            last_unix: r.get(1)?,
            lock_logged: r.get(2)?,
        })
    })
    .optional()?)
}

fn load_account(c: &Connection, username: &str) -> AppResult<Option<AccountState>> {
    Ok(c.prepare_cached(
        "SELECT failures, first_unix, locked_until, next_check_ms, lock_logged FROM signin_accounts
         WHERE username = ?1",
    )?
    .query_row([username], |r| {
        Ok(AccountState {
            failures: r.get(0)?,
            first_unix: r.get(1)?,
            locked_until: r.get(2)?,
            next_check_ms: r.get(3)?,
            lock_logged: r.get(4)?,
        })
    })
    .optional()?)
}

fn save_pair(c: &Connection, username: &str, ip: &str, s: &PairState) -> AppResult<()> {
    if s.failures <= 0 {
        c.exec_cached(
            "DELETE FROM signin_failures WHERE username = ?1 AND ip = ?2",
            params![username, ip],
        )?;
        return Ok(());
    }
    c.exec_cached(
        "INSERT INTO signin_failures(username, ip, failures, last_unix, lock_logged) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(username, ip) DO UPDATE SET failures = ?3, last_unix = ?4, lock_logged = ?5",
        params![username, ip, s.failures, s.last_unix, s.lock_logged],
    )?;
    Ok(())
}

fn save_account(c: &Connection, username: &str, s: &AccountState) -> AppResult<()> {
    c.exec_cached(
        "INSERT INTO signin_accounts(username, failures, first_unix, locked_until, next_check_ms, lock_logged)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT(username) DO UPDATE SET failures = ?2, first_unix = ?3, locked_until = ?4,
             next_check_ms = ?5, lock_logged = ?6",
        params![
            username,
            s.failures,
            s.first_unix,
            s.locked_until,
            s.next_check_ms,
            s.lock_logged
        ],
    )?;
    Ok(())
}

/// Reserves a check for this attempt (counting it as failed) or refuses it. Also drops
/// counters idle past the window, so unknown usernames cannot fill the table.
pub fn reserve(
    c: &Connection,
    p: &Policy,
    username: &str,
    ip: &str,
    now_ms: i64,
) -> AppResult<Verdict> {
    let now = now_ms.div_euclid(1000);
    c.exec_cached(
        "DELETE FROM signin_failures WHERE last_unix < ?1",
        [now - p.forget_after_secs],
    )?;
    c.exec_cached(
        "DELETE FROM signin_accounts WHERE first_unix < ?1 AND (locked_until IS NULL OR locked_until <= ?2)",
        params![now - p.forget_after_secs, now],
    )?;
    let verdict = signin::reserve(
        p,
        now_ms,
        load_pair(c, username, ip)?,
        load_account(c, username)?,
    );
    if let Verdict::Check { pair, account, .. } = &verdict {
        save_pair(c, username, ip, pair)?;
        save_account(c, username, account)?;
    }
    Ok(verdict)
}

/// What became of a reserved attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
    /// Never checked (the password pool was full): the reservation is given back.
    Abandoned,
}

/// Settles a reserved attempt; on a failure, writes one audit entry per new lock.
pub fn settle(
    c: &Connection,
    p: &Policy,
    username: &str,
    ip: &str,
    outcome: Outcome,
    now_unix: i64,
    actor: &Actor,
) -> AppResult<()> {
    let (pair, account) = signin::current(
        p,
        now_unix,
        load_pair(c, username, ip)?,
        load_account(c, username)?,
    );
    match outcome {
        Outcome::Success => {
            save_pair(c, username, ip, &PairState::default())?;
            save_account(c, username, &signin::on_success(p, account))?;
        }
        Outcome::Abandoned => {
            let (pair, account) = signin::on_abandon(pair, account);
            save_pair(c, username, ip, &pair)?;
            save_account(c, username, &account)?;
        }
        Outcome::Failure => {
            let (pair_lock, account_lock) = signin::unlogged_locks(p, now_unix, &pair, &account);
            if pair_lock {
                audit(
                    c,
                    actor,
                    "login.locked",
                    Some(("username", username)),
                    json!({"scope": "address", "ip": actor.ip, "failures": pair.failures,
                           "retry_after_secs": signin::backoff_secs(p, pair.failures)}),
                )?;
                save_pair(
                    c,
                    username,
                    ip,
                    &PairState {
                        lock_logged: true,
                        ..pair
                    },
                )?;
            }
            if account_lock {
                audit(
                    c,
                    actor,
                    "login.locked",
                    Some(("username", username)),
                    json!({"scope": "account", "failures": account.failures,
                           "locked_until": account.locked_until}),
                )?;
                save_account(
                    c,
                    username,
                    &AccountState {
                        lock_logged: true,
                        ..account
                    },
                )?;
            }
        }
    }
    Ok(())
}

/// Lifts every lock and forgets every failure of a username; true if there was any.
pub fn unlock(c: &Connection, username: &str) -> AppResult<bool> {
    let pairs = c.exec_cached(
        "DELETE FROM signin_failures WHERE username = ?1",
        [username],
    )?;
    let accounts = c.exec_cached(
        "DELETE FROM signin_accounts WHERE username = ?1",
        [username],
    )?;
    Ok(pairs + accounts > 0)
}

/// Until when (unix seconds) the account is locked, if it is.
pub fn locked_until(c: &Connection, username: &str, now_unix: i64) -> AppResult<Option<i64>> {
    Ok(load_account(c, username)?.and_then(|a| a.locked_until.filter(|u| *u > now_unix)))
}
