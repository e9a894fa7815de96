//! Model-based test of the balance invariant: random interleavings of local charges and
//! refunds, central applying (or rejecting) pushed operations, central-side spending,
//! and snapshots delivered late, twice or out of order. Local charges and refunds go
//! through the production `commit_charge` / `commit_refund`, so the test follows the
//! ledger's SQL rather than a copy of it.
#![allow(clippy::unwrap_used)]
use super::*;
use crate::db::ledger::{commit_charge, commit_refund, ChargeCmd, RefundCmd};
use crate::db::users::Actor;
use crate::domain::levels::central_seed_levels;
use crate::domain::limits::Limits;
use proptest::prelude::*;

const TOKEN: &str = "token-hash-1";

fn open_limits() -> Limits {
    Limits {
        max_tx_cents: i64::MAX / 4,
        max_card_unsynced_cents: i64::MAX / 4,
        max_site_unsynced_cents: i64::MAX / 4,
        stale_after_secs: None,
        stale_max_tx_cents: i64::MAX / 4,
        topup: crate::domain::limits::TopupLimits::UNBOUNDED,
    }
}

/// Runs one ledger call as the writer does: all of it commits, or none of it.
fn atomically(conn: &Connection, f: impl FnOnce(&Connection) -> AppResult<(String, bool)>) -> bool {
    let tx = conn.unchecked_transaction().unwrap();
    match f(&tx) {
        Ok(_) => {
            tx.commit().unwrap();
            true
        }
        Err(_) => false,
    }
}

/// The outbox entry the last ledger call wrote: (seq, op_id, delta, tx_no).
fn last_op(conn: &Connection) -> (i64, String, i64, String) {
    conn.query_row(
        "SELECT o.seq, o.op_id, o.delta_cents, t.tx_no FROM outbox o JOIN transactions t ON t.id = o.tx_id
         ORDER BY o.seq DESC LIMIT 1",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )
    .unwrap()
}

fn local_charge(conn: &Connection, card_id: &str, raw_cents: i64) -> bool {
    atomically(conn, |c| {
        commit_charge(
            c,
            ChargeCmd {
                card_id: card_id.into(),
                presented: crate::domain::qr::Presented::State {
                    token_hash: TOKEN.into(),
                },
                qr_plain: "test-token".into(),
                raw_cents,
                idem: None,
                external_order_id: None,
                tag: serde_json::json!({}),
                actor: Actor::default(),
                site_code: "T".into(),
                limits: open_limits(),
                single_use: false,
                now: chrono::Utc::now(),
            },
        )
    })
}

fn local_refund(conn: &Connection, tx_no: &str, amount_cents: i64) -> bool {
    atomically(conn, |c| {
        commit_refund(
            c,
            RefundCmd {
                original_tx_no: tx_no.into(),
                amount_cents,
                reason: None,
                idem: None,
                tag: serde_json::json!({}),
                actor: Actor::default(),
                site_code: "T".into(),
                now: chrono::Utc::now(),
            },
        )
    })
}

#[derive(Debug, Clone)]
enum Step {
    LocalCharge(i64),
    LocalRefund(i64),
    CentralApply,
    CentralSpend(i64),
    Deliver(usize),
    Ack,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (1i64..5_000).prop_map(Step::LocalCharge),
        (1i64..2_000).prop_map(Step::LocalRefund),
        Just(Step::CentralApply),
        (1i64..5_000).prop_map(Step::CentralSpend),
        (0usize..64).prop_map(Step::Deliver),
        Just(Step::Ack),
    ]
}

struct Central {
    balance: i64,
    version: i64,
    edge_seq: i64,
    applied: usize,
    history: Vec<Value>,
    results: Vec<Value>,
}

fn snapshot(c: &Central, card_id: &str) -> Value {
    serde_json::json!({
        "id": card_id, "card_no": "STD00000001", "card_type": "standard", "balance": crate::domain::money::format_cents(c.balance),
        "points": 0, "level": 0, "discount": "1.000", "status": "active", "updated_at": "2026-01-01T00:00:00Z",
        "version": c.version, "edge_seq": c.edge_seq
    })
}

/// Central applies the next pushed operation (or rejects it for want of balance) and
/// answers with the card's new snapshot.
fn central_apply(central: &mut Central, (seq, op_id, delta): &(i64, String, i64), card_id: &str) {
    let rejected = central.balance + delta < 0;
    if !rejected {
        central.balance += delta;
    }
    central.version += 1;
    central.edge_seq = *seq;
    central.applied += 1;
    central.history.push(snapshot(central, card_id));
    central.results.push(serde_json::json!({
        "op_id": op_id, "status": if rejected { "rejected" } else { "applied" },
        "reason": if rejected { Value::from("INSUFFICIENT_BALANCE") } else { Value::Null },
        "card": snapshot(central, card_id)
    }));
}

fn available(conn: &Connection, card_id: &str) -> i64 {
    conn.row_cached(
        "SELECT snapshot_balance_cents - pending_debit_cents + pending_credit_cents FROM cards WHERE id = ?1",
        [card_id],
        |r| r.get(0),
    )
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn snapshots_never_double_count_or_drop(steps in prop::collection::vec(step(), 1..60)) {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("t.db")).unwrap();
        conn.execute_batch("PRAGMA synchronous = OFF; PRAGMA journal_mode = MEMORY;").unwrap();
        crate::db::migrate::migrate(&mut conn).unwrap();
        // The demo data gives the ledger a merchant, levels and a standard card; the
        // card gets a live QR state that stays valid for the whole run.
        crate::db::demo::load(&conn).unwrap();
        let card: String = conn.query_row("SELECT id FROM cards WHERE card_no = 'STD00000001'", [], |r| r.get(0)).unwrap();
        crate::db::cards::put_qr_state(&conn, &card, TOKEN, chrono::Utc::now().timestamp() + 86_400, "2026-01-01T00:00:00Z", None).unwrap();
        let levels = central_seed_levels();
        let mut central = Central { balance: 100_000, version: 1, edge_seq: 0, applied: 0, history: vec![], results: vec![] };
        central.history.push(snapshot(&central, &card));
        merge_card(&conn, &CardSnapshot::from_json(&central.history[0]).unwrap(), &levels).unwrap();
        // Edge operations: (seq, op_id, delta); charges still refundable: (tx_no, cents).
        let mut ops: Vec<(i64, String, i64)> = Vec::new();
        let mut refundable: Vec<(String, i64)> = Vec::new();
        for s in steps {
            match s {
                Step::LocalCharge(a) => {
                    // The ledger refuses what the card cannot pay; the model checks that.
                    let could_pay = available(&conn, &card) >= a;
                    let done = local_charge(&conn, &card, a);
                    if done {
                        let (seq, op_id, delta, tx_no) = last_op(&conn);
                        prop_assert!(-delta <= a && delta < 0);
                        ops.push((seq, op_id, delta));
                        refundable.push((tx_no, -delta));
                    }
                    prop_assert!(done || !could_pay);
                }
                Step::LocalRefund(a) => {
                    if let Some(i) = refundable.iter().position(|(_, left)| *left > 0) {
                        let amount = a.min(refundable[i].1);
                        if local_refund(&conn, &refundable[i].0, amount) {
                            let (seq, op_id, delta, _) = last_op(&conn);
                            prop_assert_eq!(delta, amount);
                            ops.push((seq, op_id, delta));
                            refundable[i].1 -= amount;
                        }
                    }
                }
                Step::CentralApply => {
                    if let Some(op) = ops.get(central.applied) {
                        central_apply(&mut central, op, &card);
                    }
                }
                Step::CentralSpend(a) => {
                    if central.balance >= a {
                        central.balance -= a;
                        central.version += 1;
                        central.history.push(snapshot(&central, &card));
                    }
                }
                Step::Deliver(i) => {
                    let snap = central.history[i % central.history.len()].clone();
                    merge_card(&conn, &CardSnapshot::from_json(&snap).unwrap(), &levels).unwrap();
                }
                Step::Ack => {
                    let results: Vec<OpResult> = central.results.drain(..).map(|r| OpResult::from_json(&r).unwrap()).collect();
                    apply_push_results(&conn, &results).unwrap();
                }
            }
            // Invariant at every instant: the edge holds the newest snapshot it has seen, and
            // its pending sums are exactly the operations that snapshot does not reflect.
            let (version, reflected, snap_bal, debit, credit): (i64, i64, i64, i64, i64) = conn.row_cached(
                "SELECT snapshot_version, reflected_seq, snapshot_balance_cents, pending_debit_cents, pending_credit_cents FROM cards WHERE id = ?1",
                [&card], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))).unwrap();
            let delivered = central.history.iter().find(|h| h["version"] == version).unwrap();
            prop_assert_eq!(snap_bal, crate::domain::money::parse_decimal_cents(delivered["balance"].as_str().unwrap()).unwrap());
            prop_assert_eq!(reflected, delivered["edge_seq"].as_i64().unwrap());
            let exp_debit: i64 = ops.iter().filter(|o| o.0 > reflected && o.2 < 0).map(|o| -o.2).sum();
            let exp_credit: i64 = ops.iter().filter(|o| o.0 > reflected && o.2 > 0).map(|o| o.2).sum();
            prop_assert_eq!((debit, credit), (exp_debit, exp_credit));
        }
        // Quiescence: central applies everything, answers, and its latest snapshot arrives:
        // the edge's available balance equals central's balance exactly.
        while let Some(op) = ops.get(central.applied) {
            central_apply(&mut central, op, &card);
        }
        let results: Vec<OpResult> = central.results.drain(..).map(|r| OpResult::from_json(&r).unwrap()).collect();
        apply_push_results(&conn, &results).unwrap();
        let last = central.history.last().unwrap().clone();
        merge_card(&conn, &CardSnapshot::from_json(&last).unwrap(), &levels).unwrap();
        prop_assert_eq!(available(&conn, &card), central.balance);
    }
}

/// A freeze made here wins over a pulled status until central reflects it; then
/// central's status is the card's, whatever it is (head office may have lifted it).
#[test]
fn a_local_freeze_survives_pulls_until_central_reflects_it() {
    use crate::db::freezes::{set_frozen, FreezeCmd};
    let dir = tempfile::tempdir().unwrap();
    let mut conn = Connection::open(dir.path().join("t.db")).unwrap();
    crate::db::migrate::migrate(&mut conn).unwrap();
    crate::db::demo::load(&conn).unwrap();
    let card: String = conn
        .query_row(
            "SELECT id FROM cards WHERE card_no = 'STD00000001'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let levels = central_seed_levels();
    let status = |c: &Connection| -> String {
        c.query_row("SELECT status FROM cards WHERE id = ?1", [&card], |r| {
            r.get(0)
        })
        .unwrap()
    };
    let snap = |version: i64, edge_seq: i64, status: &str| {
        let c = Central {
            balance: 100_000,
            version,
            edge_seq,
            applied: 0,
            history: vec![],
            results: vec![],
        };
        let mut v = snapshot(&c, &card);
        v["status"] = Value::from(status);
        CardSnapshot::from_json(&v).unwrap()
    };
    let cmd = |freeze: bool| FreezeCmd {
        card_no: "STD00000001".into(),
        freeze,
        reason: "lost".into(),
        actor: Actor::system("test"),
    };
    merge_card(&conn, &snap(10, 0, "active"), &levels).unwrap();
    set_frozen(&conn, &cmd(true)).unwrap();
    let seq: i64 = conn
        .query_row(
            "SELECT MAX(seq) FROM outbox WHERE op_type = 'card_freeze'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    // a pull from before the freeze reached central: still frozen here
    merge_card(&conn, &snap(11, seq - 1, "active"), &levels).unwrap();
    assert_eq!(status(&conn), "inactive");
    // central has applied it: its status
    merge_card(&conn, &snap(12, seq, "inactive"), &levels).unwrap();
    assert_eq!(status(&conn), "inactive");
    // head office lifted it later: central's word
    merge_card(&conn, &snap(13, seq, "active"), &levels).unwrap();
    assert_eq!(status(&conn), "active");
    // an unfreeze pending over a pulled frozen status: active here
    conn.execute(
        "UPDATE cards SET status = 'inactive' WHERE id = ?1",
        [&card],
    )
    .unwrap();
    set_frozen(&conn, &cmd(false)).unwrap();
    merge_card(&conn, &snap(14, seq, "inactive"), &levels).unwrap();
    assert_eq!(status(&conn), "active");
}
