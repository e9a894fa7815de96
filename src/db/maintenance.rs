//! The database seen from the operator commands (`doctor`, `backup`, `restore`): files
//! opened by path, without the writer thread or the reader pool, so the commands work
//! beside a running server and never migrate anything. Every connection they use is
//! opened here, with the same busy timeout as the server's.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::migrate::{current_version, SCHEMA_VERSION};
use crate::error::{AppError, AppResult};

/// Backups and checkpoints wait this long for the server's writer to let go.
const OPERATOR_BUSY: Duration = Duration::from_secs(30);

fn open(path: &Path, flags: OpenFlags) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(OPERATOR_BUSY)?;
    Ok(conn)
}

fn read_only(path: &Path) -> rusqlite::Result<Connection> {
    open(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
}

/// What `doctor` reports about a database file; each part fails on its own.
pub struct Health {
    /// `PRAGMA quick_check`: "ok", or SQLite's first complaint.
    pub quick_check: Result<String, String>,
    pub schema_version: Result<i64, String>,
}

/// Opens the file read-only and runs the quick integrity check and the version read.
pub fn health(path: &Path) -> Result<Health, String> {
    let conn = read_only(path).map_err(|e| e.to_string())?;
    Ok(Health {
        quick_check: conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(|e| e.to_string()),
        schema_version: current_version(&conn).map_err(|e| e.to_string()),
    })
}

/// Runs `f` on the file opened read-only (what the running, or last, server left).
pub fn read<T>(path: &Path, f: impl FnOnce(&Connection) -> AppResult<T>) -> AppResult<T> {
    let conn = read_only(path).map_err(|e| AppError::internal(e.to_string()))?;
    f(&conn)
}

/// `VACUUM INTO dest`: one consistent snapshot of `src`, safe while the server writes.
/// `dest` must not exist or be an empty file (its mode is kept).
pub fn vacuum_into(src: &Path, dest: &Path) -> anyhow::Result<()> {
    let conn = open(src, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
    conn.execute("VACUUM INTO ?1", [dest.to_string_lossy()])?;
    Ok(())
}

/// The full integrity check and a schema this binary can open; the schema version.
pub fn verify(path: &Path) -> anyhow::Result<i64> {
    let conn = read_only(path)?;
    let result: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    if result != "ok" {
        anyhow::bail!("{} fails the integrity check: {result}", path.display());
    }
    let version = current_version(&conn)?;
    if version > SCHEMA_VERSION {
        anyhow::bail!(
            "{} has schema version {version}, newer than this mps-edge ({SCHEMA_VERSION})",
            path.display()
        );
    }
    Ok(version)
}

/// How many transactions a (backup) file holds.
pub fn transaction_count(path: &Path) -> anyhow::Result<i64> {
    let conn = read_only(path)?;
    Ok(conn.query_row("SELECT COUNT(*) FROM transactions", [], |r| r.get(0))?)
}

/// Folds the WAL into the main file, so the file is complete on its own (before it is
/// moved aside by a restore).
pub fn checkpoint_truncate(path: &Path) -> anyhow::Result<()> {
    let conn = open(path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_fresh_database_is_healthy_verifies_and_backs_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("edge.db");
        let db = crate::db::open(&path).unwrap();
        db.shutdown();
        let h = health(&path).unwrap();
        assert_eq!(h.quick_check.unwrap(), "ok");
        assert_eq!(h.schema_version.unwrap(), SCHEMA_VERSION);
        assert_eq!(verify(&path).unwrap(), SCHEMA_VERSION);
        let copy = dir.path().join("copy.db");
        vacuum_into(&path, &copy).unwrap();
        assert_eq!(verify(&copy).unwrap(), SCHEMA_VERSION);
        assert_eq!(transaction_count(&copy).unwrap(), 0);
        checkpoint_truncate(&path).unwrap();
    }

    #[test]
    fn garbage_is_not_a_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("junk.db");
        std::fs::write(&path, vec![0x5a; 8192]).unwrap();
        assert!(verify(&path).is_err());
        let h = health(&path);
        assert!(h.is_err() || h.unwrap().quick_check.is_err());
    }
}
