//! Cards at the counter (issue 14, item 5): a manager freezes a lost card (refused here
//! at once, one `card_freeze` operation queued for central, audited) and lifts that
//! freeze; a card head office froze stays frozen; cashiers cannot; bad input writes
//! nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use mps_edge::domain::Role;
use serde_json::{json, Value};
use support::server::{Resp, TestServer, API};

async fn manager(srv: &TestServer) -> String {
    srv.create_user("mgr1", "manager-password-1", Role::Manager)
        .await;
    srv.login("mgr1", "manager-password-1").await
}

async fn freeze(srv: &TestServer, t: &str, card: &str, action: &str, body: Value) -> Resp {
    srv.post(
        &format!("{API}/merchant/cards/{card}/{action}"),
        Some(t),
        &body,
    )
    .await
}

async fn card_ops(srv: &TestServer) -> Vec<(String, String)> {
    srv.read(|c| {
        let mut s = c.prepare(
            "SELECT op_type, json_extract(payload, '$.card_no') FROM outbox
             WHERE op_type IN ('card_freeze', 'card_unfreeze') ORDER BY seq",
        )?;
        let rows = s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_manager_freezes_a_lost_card_and_lifts_the_freeze() {
    let srv = TestServer::start().await;
    let m = manager(&srv).await;
    let owner = srv.owner_token().await;

    let r = srv
        .get(&format!("{API}/merchant/cards/STD00000002"), Some(&m))
        .await;
    let card = r.assert_ok();
    assert_eq!(card["status"], "active");
    assert!(card["freeze"].is_null());
    assert_eq!(card["level"]["level"], 0);

    let r = freeze(
        &srv,
        &m,
        "STD00000002",
        "freeze",
        json!({"reason": "  會員報失  "}),
    )
    .await;
    let card = r.assert_ok();
    assert_eq!(card["status"], "inactive");
    assert_eq!(card["freeze"]["reason"], "會員報失", "trimmed");
    assert_eq!(card["freeze"]["frozen_by"], "mgr1");
    assert_eq!(card["pending_ops"], 1);

    // refused at once, at this edge
    let qr = srv.qr("STD00000002").await;
    let d = srv
        .charge(&owner, &qr, "1.00")
        .await
        .assert_error(422, "CARD_NOT_ACTIVE")
        .clone();
    assert_eq!(d["status"], "inactive");

    // a second freeze is refused and queues nothing
    freeze(
        &srv,
        &m,
        "STD00000002",
        "freeze",
        json!({"reason": "again"}),
    )
    .await
    .assert_error(409, "CARD_ALREADY_FROZEN");
    assert_eq!(
        card_ops(&srv).await,
        vec![("card_freeze".into(), "STD00000002".into())]
    );

    // audited with the reason and the change
    let audit = srv
        .get(&format!("{API}/console/audit?family=cards"), Some(&owner))
        .await;
    let entries = audit.assert_ok()["entries"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["action"], "card.freeze");
    assert_eq!(entries[0]["actor"], "mgr1");
    assert_eq!(entries[0]["details"]["status"]["new"], "inactive");

    // lifted: the card pays again
    let r = freeze(
        &srv,
        &m,
        "STD00000002",
        "unfreeze",
        json!({"reason": "found it"}),
    )
    .await;
    assert_eq!(r.assert_ok()["status"], "active");
    assert!(r.assert_ok()["freeze"].is_null());
    srv.charge_card(&owner, "STD00000002", "1.00").await;
    freeze(
        &srv,
        &m,
        "STD00000002",
        "unfreeze",
        json!({"reason": "again"}),
    )
    .await
    .assert_error(409, "CARD_NOT_FROZEN");
    assert_eq!(
        card_ops(&srv).await,
        vec![
            ("card_freeze".into(), "STD00000002".into()),
            ("card_unfreeze".into(), "STD00000002".into())
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_card_head_office_froze_stays_frozen_and_lost_cards_are_not_frozen() {
    let srv = TestServer::start().await;
    let m = manager(&srv).await;
    // STD00000023 arrives frozen from central (the demo's frozen card)
    let r = srv
        .get(&format!("{API}/merchant/cards/STD00000023"), Some(&m))
        .await;
    assert_eq!(r.assert_ok()["status"], "inactive");
    assert!(r.assert_ok()["freeze"].is_null(), "not frozen here");
    freeze(
        &srv,
        &m,
        "STD00000023",
        "unfreeze",
        json!({"reason": "member asked"}),
    )
    .await
    .assert_error(409, "CARD_FROZEN_CENTRALLY");
    freeze(&srv, &m, "STD00000023", "freeze", json!({"reason": "lost"}))
        .await
        .assert_error(409, "CARD_ALREADY_FROZEN");
    // a lost card: refused, stays lost
    srv.write(|c| {
        c.execute(
            "UPDATE cards SET status = 'lost' WHERE card_no = 'STD00000004'",
            [],
        )
    })
    .await;
    let d = freeze(&srv, &m, "STD00000004", "freeze", json!({"reason": "lost"}))
        .await
        .assert_error(422, "CARD_NOT_ACTIVE")
        .clone();
    assert_eq!(d["status"], "lost");
    assert!(card_ops(&srv).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cashiers_cannot_and_bad_input_writes_nothing() {
    let srv = TestServer::start().await;
    let m = manager(&srv).await;
    let cashier = srv.cashier_token().await;
    srv.get(&format!("{API}/merchant/cards/STD00000002"), Some(&cashier))
        .await
        .assert_error(403, "PERMISSION_DENIED");
    freeze(
        &srv,
        &cashier,
        "STD00000002",
        "freeze",
        json!({"reason": "lost"}),
    )
    .await
    .assert_error(403, "PERMISSION_DENIED");
    srv.get(&format!("{API}/merchant/cards/STD00000002"), None)
        .await
        .assert_error(401, "NOT_AUTHENTICATED");

    let long = "x".repeat(501);
    let cases: &[(&str, Value, u16, &str)] = &[
        ("STD00000002", json!({}), 400, "INVALID_JSON"),
        (
            "STD00000002",
            json!({"reason": ""}),
            400,
            "VALIDATION_ERROR",
        ),
        (
            "STD00000002",
            json!({"reason": "   "}),
            400,
            "VALIDATION_ERROR",
        ),
        (
            "STD00000002",
            json!({"reason": long}),
            400,
            "VALIDATION_ERROR",
        ),
        (
            "STD00000002",
            json!({"reason": "a\u{7}b"}),
            400,
            "VALIDATION_ERROR",
        ),
        ("STD00000002", json!({"reason": 5}), 400, "INVALID_JSON"),
        (
            "STD00000002",
            json!({"reason": "lost", "extra": 1}),
            400,
            "INVALID_JSON",
        ),
        (
            "bad card no",
            json!({"reason": "lost"}),
            400,
            "VALIDATION_ERROR",
        ),
        (
            "NO-SUCH-CARD",
            json!({"reason": "lost"}),
            404,
            "CARD_NOT_FOUND",
        ),
    ];
    for (card, body, status, code) in cases {
        freeze(&srv, &m, card, "freeze", body.clone())
            .await
            .assert_error(*status, code);
    }
    assert!(card_ops(&srv).await.is_empty(), "nothing queued");
    let n = srv
        .count("SELECT COUNT(*) FROM cards WHERE status = 'inactive'")
        .await;
    assert_eq!(n, 1, "only the demo's frozen card");
}
