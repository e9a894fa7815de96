//! Manager approval at the till (issue 14, item 3): a cashier refunds, or charges above
//! `[approval] charge_above`, only with a manager's or owner's name and PIN typed on the
//! cashier's terminal. Wrong PINs are counted per approver and rest the PIN; every
//! refusal writes nothing; the audit log names both people.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use mps_edge::domain::money::Money;
use mps_edge::domain::Role;
use serde_json::{json, Value};
use support::server::{Resp, TestServer};

fn approval(username: &str, pin: &str) -> Value {
    json!({"username": username, "pin": pin})
}

async fn refund_approved(srv: &TestServer, token: &str, tx: &str, amount: &str, a: Value) -> Resp {
    srv.refund_with(
        token,
        &json!({"original_tx_no": tx, "refund_amount": amount, "approval": a}),
        &[],
    )
    .await
}

async fn refunds(srv: &TestServer) -> i64 {
    srv.count("SELECT COUNT(*) FROM transactions WHERE tx_type = 'refund'")
        .await
}

/// Starts a store where charges above 100.00 by a cashier need a manager, with a
/// manager `boss` (PIN 2468) and a cashier; returns (server, cashier token, boss token).
async fn store() -> (TestServer, String, String) {
    let srv = TestServer::start_with(|c| {
        c.approval.charge_above = Some("100.00".parse::<Money>().unwrap());
    })
    .await;
    let boss = srv
        .manager_with_pin("boss", "boss-password-1", "2468")
        .await;
    let cashier = srv.cashier_token().await;
    (srv, cashier, boss)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cashier_refunds_with_a_managers_pin_and_both_names_are_audited() {
    let (srv, cashier, _) = store().await;
    let tx = srv.charge_card(&cashier, "STD00000017", "30.00").await["transaction"]["tx_no"]
        .as_str()
        .unwrap()
        .to_string();

    // Refused without approval, with a wrong PIN, with a cashier or unknown approver.
    let d = srv.refund(&cashier, &tx, "5.00").await;
    assert_eq!(
        d.assert_error(403, "APPROVAL_REQUIRED")["reason"],
        "cashier_refund"
    );
    for a in [
        approval("boss", "1111"),
        approval("cashier1", "2468"),
        approval("nobody", "2468"),
        approval("owner", "2468"),
    ] {
        refund_approved(&srv, &cashier, &tx, "5.00", a.clone())
            .await
            .assert_error(403, "APPROVAL_INVALID");
    }
    assert_eq!(refunds(&srv).await, 0);

    // The right PIN (any case of the name): the refund goes through.
    let key = [("Idempotency-Key", "till-7-refund-1")];
    let body = json!({"original_tx_no": tx, "refund_amount": "5.00", "approval": approval("BOSS", "2468")});
    let r = srv.refund_with(&cashier, &body, &key).await;
    r.assert_ok();
    assert_eq!(refunds(&srv).await, 1);
    // The till's retry after a lost answer carries the key but not the PIN: it gets the
    // original answer, and nothing is refunded twice.
    let retry = srv
        .refund_with(
            &cashier,
            &json!({"original_tx_no": tx, "refund_amount": "5.00"}),
            &key,
        )
        .await;
    assert_eq!(retry.assert_ok(), &r.json);
    assert_eq!(refunds(&srv).await, 1);
    let row = srv
        .read(|c| {
            c.query_row(
                "SELECT actor, details FROM audit_log WHERE action = 'refund'",
                [],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
            )
        })
        .await;
    assert_eq!(row.0, "cashier1");
    let details: Value = serde_json::from_str(&row.1).unwrap();
    assert_eq!(details["approved_by"], "boss");
    // Failed approvals are audited with the cashier and the name typed.
    let failed = srv
        .count("SELECT COUNT(*) FROM audit_log WHERE action = 'approval.failed' AND actor = 'cashier1'")
        .await;
    assert_eq!(failed, 4);
    // The PIN itself is never stored or logged in the clear.
    let leaks = srv
        .count("SELECT COUNT(*) FROM audit_log WHERE details LIKE '%2468%'")
        .await
        + srv
            .count("SELECT COUNT(*) FROM users WHERE pin_hash = '2468'")
            .await;
    assert_eq!(leaks, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn large_charges_by_a_cashier_need_a_manager_and_managers_do_not() {
    let (srv, cashier, boss) = store().await;
    let qr = srv.qr("STD00000017").await;
    // At the amount: no approval needed.
    srv.charge(&cashier, &qr, "100.00").await.assert_ok();
    let qr = srv.qr("STD00000017").await;
    let r = srv.charge(&cashier, &qr, "100.01").await;
    assert_eq!(
        r.assert_error(403, "APPROVAL_REQUIRED")["reason"],
        "charge_above"
    );
    let before = srv.count("SELECT COUNT(*) FROM transactions").await;
    let r = srv
        .charge_with(
            &cashier,
            &json!({"qr_plain": qr, "amount": "100.01", "approval": approval("boss", "0000")}),
            &[],
        )
        .await;
    r.assert_error(403, "APPROVAL_INVALID");
    assert_eq!(srv.count("SELECT COUNT(*) FROM transactions").await, before);
    let r = srv
        .charge_with(
            &cashier,
            &json!({"qr_plain": qr, "amount": "100.01", "approval": approval("boss", "2468")}),
            &[],
        )
        .await;
    r.assert_ok();
    // A manager charges any amount alone; an approval sent anyway is ignored.
    let qr = srv.qr("STD00000017").await;
    srv.charge(&boss, &qr, "150.00").await.assert_ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_wrong_pins_rest_the_pin_but_not_the_managers_sign_in() {
    let (srv, cashier, _) = store().await;
    srv.create_user("cashier2", "cashier-password-2", Role::Cashier)
        .await;
    let cashier2 = srv.login("cashier2", "cashier-password-2").await;
    let tx = srv.charge_card(&cashier, "STD00000017", "30.00").await["transaction"]["tx_no"]
        .as_str()
        .unwrap()
        .to_string();
    let wrong = |who: &str, i: usize| {
        let (srv, who, tx) = (&srv, who.to_string(), tx.clone());
        async move {
            refund_approved(srv, &who, &tx, "1.00", approval("boss", &format!("000{i}"))).await
        }
    };
    // One cashier alone cannot rest the manager's PIN: after 3 wrong PINs it is their
    // own tries that wait, and those no longer count against the PIN.
    for i in 0..3 {
        wrong(&cashier, i)
            .await
            .assert_error(403, "APPROVAL_INVALID");
    }
    for pin in ["0003", "2468"] {
        let r = refund_approved(&srv, &cashier, &tx, "1.00", approval("boss", pin)).await;
        let d = r.assert_error(429, "TOO_MANY_REQUESTS");
        assert_eq!(d["reason"], "pin_asker_rest");
        assert!((1..=900).contains(&d["retry_after_secs"].as_i64().unwrap()));
    }
    // A mistyped approver's name is another budget: the cashier may still ask the owner.
    refund_approved(&srv, &cashier, &tx, "1.00", approval("owner", "2468"))
        .await
        .assert_error(403, "APPROVAL_INVALID");
    // Two more wrong PINs from another till make five: now the PIN rests for everyone,
    // even typed right, with how long to wait.
    for i in 3..5 {
        wrong(&cashier2, i)
            .await
            .assert_error(403, "APPROVAL_INVALID");
    }
    let r = refund_approved(&srv, &cashier2, &tx, "1.00", approval("boss", "2468")).await;
    let d = r.assert_error(429, "TOO_MANY_REQUESTS");
    assert_eq!(d["reason"], "pin_rest");
    let wait = d["retry_after_secs"].as_i64().unwrap();
    assert!((1..=900).contains(&wait), "{wait}");
    assert_eq!(refunds(&srv).await, 0);
    // The manager still signs in, and a new PIN ends the rest.
    let boss = srv.login("boss", "boss-password-1").await;
    srv.set_pin(&boss, "boss-password-1", "13579")
        .await
        .assert_ok();
    refund_approved(&srv, &cashier2, &tx, "1.00", approval("boss", "13579"))
        .await
        .assert_ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn setting_a_pin_needs_the_password_and_a_manager() {
    let (srv, cashier, boss) = store().await;
    let r = srv.set_pin(&cashier, "cashier-password-1", "1234").await;
    r.assert_error(403, "PERMISSION_DENIED");
    let r = srv.set_pin(&boss, "wrong-password", "1234").await;
    let d = r.assert_error(403, "PERMISSION_DENIED");
    assert_eq!(d["field"], "password");
    for bad in ["123", "123456789", "12a4", "", " 1234"] {
        srv.set_pin(&boss, "boss-password-1", bad)
            .await
            .assert_error(400, "VALIDATION_ERROR");
    }
    // The old PIN still works after the refusals.
    let tx = srv.charge_card(&cashier, "STD00000017", "30.00").await["transaction"]["tx_no"]
        .as_str()
        .unwrap()
        .to_string();
    refund_approved(&srv, &cashier, &tx, "1.00", approval("boss", "2468"))
        .await
        .assert_ok();
    let set = srv
        .count("SELECT COUNT(*) FROM audit_log WHERE action = 'user.pin_set'")
        .await;
    assert_eq!(set, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_store_can_keep_cashiers_from_refunding_at_all() {
    let srv = TestServer::start_with(|c| c.approval.cashier_refunds = false).await;
    let cashier = srv.cashier_token().await;
    let tx = srv.charge_card(&cashier, "STD00000017", "30.00").await["transaction"]["tx_no"]
        .as_str()
        .unwrap()
        .to_string();
    let r = refund_approved(&srv, &cashier, &tx, "1.00", approval("owner", "1234")).await;
    assert_eq!(
        r.assert_error(403, "PERMISSION_DENIED")["reason"],
        "cashier_refunds_off"
    );
    assert_eq!(refunds(&srv).await, 0);
}
