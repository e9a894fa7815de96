//! Settings a manager saved in the console (key/value overrides of the config file).

use crate::db::CachedExt;
use rusqlite::{params, Connection};

use super::users::{audit, Actor};
use crate::error::AppResult;

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
