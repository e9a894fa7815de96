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
    include_str!("migrations/0010_topups.sql"),
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

    /// Migrates a version-9 database holding a payment and its refund (which refers to
    /// it) through 0010's rebuild of transactions under foreign_keys = ON, as the server
    /// opens it: rows survive, the refund still refers to its payment, the reference now
    /// names the rebuilt table, and a recharge can be stored.
    #[test]
    fn the_transactions_rebuild_keeps_rows_and_the_refund_link() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Connection::open(dir.path().join("t.db")).unwrap();
        c.execute_batch("PRAGMA foreign_keys = ON").unwrap();
        for (i, sql) in MIGRATIONS.iter().enumerate().take(9) {
            c.execute_batch(sql).unwrap();
            c.pragma_update(None, "user_version", i as i64 + 1).unwrap();
        }
        c.execute_batch(
            "INSERT INTO cards(id, card_no, card_type, status, snapshot_balance_cents, snapshot_updated_at)
                 VALUES ('c1', 'STD1', 'standard', 'active', 100, 'x');
             INSERT INTO transactions(id, tx_no, tx_type, card_id, merchant_id, raw_amount_cents, discount_milli,
                 final_amount_cents, status, refunded_cents, created_at, created_unix, balance_after_cents)
                 VALUES ('p1', 'PAY-S-1', 'payment', 'c1', 'm', 500, 1000, 500, 'completed', 200, 'x', 1, 0);
             INSERT INTO transactions(id, tx_no, tx_type, card_id, merchant_id, raw_amount_cents, discount_milli,
                 final_amount_cents, status, original_tx_id, original_tx_no, created_at, created_unix)
                 VALUES ('r1', 'REF-S-2', 'refund', 'c1', 'm', 200, 1000, 200, 'completed', 'p1', 'PAY-S-1', 'x', 2);",
        )
        .unwrap();
        let recharge = "INSERT INTO transactions(id, tx_no, tx_type, card_id, merchant_id, raw_amount_cents,
                 discount_milli, final_amount_cents, status, payment_method, created_at, created_unix)
                 VALUES ('g1', 'RCG-S-3', 'recharge', 'c1', 'm', 900, 1000, 900, 'completed', 'cash', 'x', 3)";
        assert!(c.execute(recharge, []).is_err(), "refused before 0010");
        migrate(&mut c).unwrap();
        c.execute(recharge, []).unwrap();
        let rows: Vec<(String, Option<String>, i64, Option<i64>)> = c
            .prepare("SELECT id, original_tx_id, refunded_cents, balance_after_cents FROM transactions ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            rows,
            vec![
                ("g1".into(), None, 0, None),
                ("p1".into(), None, 200, Some(0)),
                ("r1".into(), Some("p1".into()), 0, None),
            ]
        );
        let target: String = c
            .query_row(
                "SELECT \"table\" FROM pragma_foreign_key_list('transactions') WHERE \"from\" = 'original_tx_id'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(target, "transactions");
        let broken: i64 = c
            .query_row("SELECT COUNT(*) FROM pragma_foreign_key_check", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(broken, 0);
        // the link is enforced on the rebuilt table
        assert!(c
            .execute(
                "UPDATE transactions SET original_tx_id = 'nope' WHERE id = 'r1'",
                []
            )
            .is_err());
        c.execute(
            "INSERT INTO outbox(op_id, op_type, payload, created_at, created_unix) VALUES ('g', 'recharge', '{}', 'x', 0)",
            [],
        )
        .unwrap();
    }
}
