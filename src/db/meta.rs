//! Installation facts and counters.

use crate::db::CachedExt;
use rusqlite::{params, Connection, OptionalExtension};

use crate::error::AppResult;

pub const MODE: &str = "mode";
pub const DEMO_LOADED: &str = "demo_loaded";
pub const MERCHANT_ID: &str = "merchant_id";
/// Unix seconds of the last successful refresh of the replica from central.
pub const REPLICA_REFRESHED_UNIX: &str = "replica_refreshed_unix";

pub fn get(conn: &Connection, key: &str) -> AppResult<Option<String>> {
    Ok(conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()?)
}

pub fn set(conn: &Connection, key: &str, value: &str) -> AppResult<()> {
    conn.exec_cached(
        "INSERT INTO meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}

/// Increments a named counter and returns its new value (inside the caller's transaction).
pub fn next(conn: &Connection, name: &str) -> AppResult<i64> {
    Ok(conn.row_cached(
        "INSERT INTO counters(name, value) VALUES (?1, 1)
         ON CONFLICT(name) DO UPDATE SET value = value + 1 RETURNING value",
        [name],
        |r| r.get(0),
    )?)
}

pub fn add(conn: &Connection, name: &str, delta: i64) -> AppResult<i64> {
    Ok(conn.row_cached(
        "INSERT INTO counters(name, value) VALUES (?1, ?2)
         ON CONFLICT(name) DO UPDATE SET value = value + excluded.value RETURNING value",
        params![name, delta],
        |r| r.get(0),
    )?)
}

pub fn counter(conn: &Connection, name: &str) -> AppResult<i64> {
    Ok(conn
        .query_row("SELECT value FROM counters WHERE name = ?1", [name], |r| {
            r.get(0)
        })
        .optional()?
        .unwrap_or(0))
}

pub const TX_SEQ: &str = "tx_seq";
pub const QR_ISSUE_SEQ: &str = "qr_issue_seq";
/// Sum of final amounts of charges not yet reflected centrally (site limit).
pub const SITE_UNSYNCED_DEBIT: &str = "site_unsynced_debit_cents";
