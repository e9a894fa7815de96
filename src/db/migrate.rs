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
    include_str!("migrations/0006_settlement_void.sql"),
    include_str!("migrations/0007_card_freeze.sql"),
    include_str!("migrations/0008_receipts.sql"),
    include_str!("migrations/0009_shifts.sql"),
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

    /// Migrates a version-5 database holding outbox rows (the newest ones pruned)
    /// through the outbox rebuilds (0006, 0007): rows survive and seq never goes back.
    #[test]
    fn the_outbox_rebuild_keeps_rows_and_never_reuses_a_seq() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Connection::open(dir.path().join("t.db")).unwrap();
        for (i, sql) in MIGRATIONS.iter().enumerate().take(5) {
            c.execute_batch(sql).unwrap();
            c.pragma_update(None, "user_version", i as i64 + 1).unwrap();
        }
        for n in 1..=5 {
            c.execute(
                "INSERT INTO outbox(op_id, op_type, payload, created_at, created_unix) VALUES (?1, 'charge', '{}', 'x', 0)",
                [format!("op{n}")],
            )
            .unwrap();
        }
        c.execute("DELETE FROM outbox WHERE seq > 3", []).unwrap();
        migrate(&mut c).unwrap();
        let kept: i64 = c
            .query_row("SELECT COUNT(*) FROM outbox", [], |r| r.get(0))
            .unwrap();
        assert_eq!(kept, 3);
        c.execute(
            "INSERT INTO outbox(op_id, op_type, payload, created_at, created_unix) VALUES ('v', 'settlement_void', '{}', 'x', 0)",
            [],
        )
        .unwrap();
        let seq: i64 = c
            .query_row("SELECT seq FROM outbox WHERE op_id = 'v'", [], |r| r.get(0))
            .unwrap();
        assert_eq!(seq, 6, "seq 4 and 5 were used before the rebuild");
        c.execute(
            "INSERT INTO outbox(op_id, op_type, payload, created_at, created_unix) VALUES ('f', 'card_freeze', '{}', 'x', 0)",
            [],
        )
        .unwrap();
    }
}
