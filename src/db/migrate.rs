//! Schema migrations by `PRAGMA user_version`: migration N brings the database from
//! version N-1 to N in one transaction. Shipped migrations are never edited.

use rusqlite::Connection;

/// Index 0 is schema.sql (version 1). Append new migrations; never change old ones.
const MIGRATIONS: &[&str] = &[
    include_str!("../../schema.sql"),
    include_str!("migrations/0002_signin.sql"),
    include_str!("migrations/0003_qr_chains.sql"),
    include_str!("migrations/0004_last_login.sql"),
    include_str!("migrations/0005_manager_pin.sql"),
];

pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

pub fn current_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

/// Applies every missing migration; refuses a database newer than this binary.
pub fn migrate(conn: &mut Connection) -> anyhow::Result<()> {
    let version = current_version(conn)?;
    if version > SCHEMA_VERSION {
        anyhow::bail!(
            "the database is at schema version {version}, newer than this mps-edge (which knows up to {SCHEMA_VERSION}); run a newer mps-edge or restore a backup"
        );
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let target = i as i64 + 1;
        let tx = conn.transaction()?;
        tx.execute_batch(sql)
            .map_err(|e| anyhow::anyhow!("migration to schema version {target} failed: {e}"))?;
        tx.pragma_update(None, "user_version", target)?;
        tx.commit()?;
        tracing::info!(version = target, "applied schema migration");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applies_once_and_refuses_newer() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Connection::open(dir.path().join("t.db")).unwrap();
        migrate(&mut c).unwrap();
        assert_eq!(current_version(&c).unwrap(), SCHEMA_VERSION);
        migrate(&mut c).unwrap();
        c.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        let err = migrate(&mut c).unwrap_err().to_string();
        assert!(err.contains("newer"), "{err}");
    }
}
