//! HTTP integration tests: the real server, a real SQLite database, real requests.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{BTreeMap, HashSet};

use mps_edge::config::Secret;
use mps_edge::domain::Role;
use reqwest::Method;
use serde_json::{json, Value};
use support::server::{amt, cents, concurrent_posts, fmt_cents, Resp, TestServer, API};

// ---------------------------------------------------------------------------------
// Basics
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn health_ready_and_unknown_routes() {
    let srv = TestServer::start().await;
    for path in ["/health", "/api/v1/health"] {
        let r = srv.get(path, None).await;
        assert_eq!(r.assert_ok()["status"], "ok", "{path}");
    }
    for path in ["/ready", "/api/v1/ready"] {
        let r = srv.get(path, None).await;
        let body = r.assert_ok();
        assert_eq!(body["status"], "ready", "{path}");
        assert_eq!(body["mode"], "standalone", "{path}");
    }
    // Every response carries a request id.
    let r = srv.get("/health", None).await;
    assert!(r.headers.get("x-request-id").is_some());

    for path in [
        "/nope",
        "/api/v1/nope",
        "/api/v2/merchant/charge",
        "/api/v1/merchant",
    ] {
        srv.get(path, None).await.assert_error(404, "NOT_FOUND");
    }
    let token = srv.owner_token().await;
    srv.get("/api/v1/merchant/charges", Some(&token))
        .await
        .assert_error(404, "NOT_FOUND");
}

// ---------------------------------------------------------------------------------
// Sign-in, sessions and lockout
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn login_me_refresh_rotation_and_logout() {
    let srv = TestServer::start().await;
    let (user, pw) = srv.owner.clone();
    let pair = srv.login_pair(&user, &pw).await;
    assert_eq!(pair["token_type"], "Bearer");
    assert_eq!(pair["expires_in"], 900);
    assert_eq!(pair["user"]["username"], "owner");
    assert_eq!(pair["user"]["role"], "owner");
    let access = pair["access_token"].as_str().unwrap().to_string();
    let refresh1 = pair["refresh_token"].as_str().unwrap().to_string();

    let me = srv.get(&format!("{API}/auth/me"), Some(&access)).await;
    let me = me.assert_ok();
    assert_eq!(me["user"]["username"], "owner");
    assert_eq!(me["user"]["role"], "owner");
    let perms: Vec<&str> = me["user"]["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(perms.contains(&"merchant:charge"));
    assert!(perms.contains(&"merchant:refund"));

    // Wrong password and unknown user look the same.
    srv.login_resp(&user, "wrong-password")
        .await
        .assert_error(401, "INVALID_CREDENTIALS");
    srv.login_resp("nobody", "whatever-password")
        .await
        .assert_error(401, "INVALID_CREDENTIALS");

    // Rotation: refresh1 → pair 2.
    let r = srv
        .post(
            &format!("{API}/auth/refresh"),
            None,
            &json!({ "refresh_token": refresh1 }),
        )
        .await;
    let pair2 = r.assert_ok().clone();
    let access2 = pair2["access_token"].as_str().unwrap().to_string();
    let refresh2 = pair2["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(refresh2, refresh1);
    assert_ne!(access2, access);
    srv.get(&format!("{API}/auth/me"), Some(&access2))
        .await
        .assert_ok();

    // The rotated refresh token again at once: a retry, the same pair.
    let retried = srv
        .post(
            &format!("{API}/auth/refresh"),
            None,
            &json!({ "refresh_token": refresh1 }),
        )
        .await;
    assert_eq!(retried.assert_ok()["refresh_token"], refresh2.as_str());
    // Past the grace window (moved back rather than waited for) it is a copy: refused,
    // and the whole family ends.
    srv.write(|c| {
        c.execute(
            "UPDATE refresh_tokens SET used_unix = used_unix - 60 WHERE used_unix IS NOT NULL",
            [],
        )
    })
    .await;
    srv.post(
        &format!("{API}/auth/refresh"),
        None,
        &json!({ "refresh_token": refresh1 }),
    )
    .await
    .assert_error(401, "INVALID_TOKEN");
    srv.post(
        &format!("{API}/auth/refresh"),
        None,
        &json!({ "refresh_token": refresh2 }),
    )
    .await
    .assert_error(401, "INVALID_TOKEN");
    for t in [&access, &access2] {
        srv.get(&format!("{API}/auth/me"), Some(t))
            .await
            .assert_error(401, "INVALID_TOKEN");
    }

    // Logout ends the access token at once, but not other sessions.
    let pair3 = srv.login_pair(&user, &pw).await;
    let access3 = pair3["access_token"].as_str().unwrap().to_string();
    let refresh3 = pair3["refresh_token"].as_str().unwrap().to_string();
    let other = srv.owner_token().await;
    srv.get(&format!("{API}/auth/me"), Some(&access3))
        .await
        .assert_ok();
    let r = srv
        .send(
            Method::POST,
            &format!("{API}/auth/logout"),
            Some(&access3),
            &[],
            None,
        )
        .await;
    assert_eq!(r.assert_ok()["success"], true);
    srv.get(&format!("{API}/auth/me"), Some(&access3))
        .await
        .assert_error(401, "INVALID_TOKEN");
    srv.post(
        &format!("{API}/auth/refresh"),
        None,
        &json!({ "refresh_token": refresh3 }),
    )
    .await
    .assert_error(401, "INVALID_TOKEN");
    srv.get(&format!("{API}/merchant/transactions"), Some(&access3))
        .await
        .assert_error(401, "INVALID_TOKEN");
    srv.get(&format!("{API}/auth/me"), Some(&other))
        .await
        .assert_ok();
    // Logging out twice with the dead token is refused, not a crash.
    srv.send(
        Method::POST,
        &format!("{API}/auth/logout"),
        Some(&access3),
        &[],
        None,
    )
    .await
    .assert_error(401, "INVALID_TOKEN");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn this_address_waits_after_five_failed_logins() {
    let srv = TestServer::start().await;
    srv.create_user("clerk", "clerk-password-1", Role::Manager)
        .await;
    // Four failures, then a success resets the count.
    for _ in 0..4 {
        srv.login_resp("clerk", "bad-password")
            .await
            .assert_error(401, "INVALID_CREDENTIALS");
    }
    srv.login_resp("clerk", "clerk-password-1")
        .await
        .assert_ok();
    // Five failures in a row are all checked...
    for _ in 0..5 {
        srv.login_resp("clerk", "bad-password")
            .await
            .assert_error(401, "INVALID_CREDENTIALS");
    }
    // ...then this address waits 15 s before its next try (doubling with each failure).
    let r = srv.login_resp("clerk", "bad-password").await;
    let details = r.assert_error(429, "LOGIN_LOCKED");
    let retry = details["retry_after_secs"].as_i64().unwrap();
    assert!(retry > 0 && retry <= 15, "{retry}");
    assert_eq!(
        r.headers["retry-after"].to_str().unwrap(),
        retry.to_string()
    );
    // Even the right password waits at this address.
    srv.login_resp("clerk", "clerk-password-1")
        .await
        .assert_error(429, "LOGIN_LOCKED");
    // Other accounts are not affected.
    srv.owner_token().await;
    let failures: i64 = srv
        .read(|c| {
            c.query_row(
                "SELECT failures FROM signin_failures WHERE username = 'clerk'",
                [],
                |r| r.get(0),
            )
        })
        .await;
    assert_eq!(failures, 5);
}

// ---------------------------------------------------------------------------------
// Charges
// ---------------------------------------------------------------------------------

#[track_caller]
fn assert_charge(body: &Value, raw: &str, discount: &str, fin: &str, points: i64) {
    let tx = &body["transaction"];
    assert_eq!(amt(&tx["raw_amount"]), raw, "raw: {body}");
    assert_eq!(amt(&tx["discount"]), discount, "discount: {body}");
    assert_eq!(amt(&tx["final_amount"]), fin, "final: {body}");
    assert_eq!(tx["points_earned"], points, "points: {body}");
    assert_eq!(tx["status"], "completed");
    assert_eq!(tx["sync_state"], "pending");
    assert!(tx["tx_no"].as_str().unwrap().starts_with("PAY-DEMO-"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn charge_figures_follow_the_money_rules() {
    let srv = TestServer::start().await;
    let t = srv.owner_token().await;

    // Contract §3.8 worked example: corporate discount 0.800, 10.01 → 8.01, 10 points.
    let b = srv.charge_card(&t, "STD00000021", "10.01").await;
    assert_charge(&b, "10.01", "0.800", "8.01", 10);
    assert_eq!(b["customer_info"]["card_no"], "STD00000021");
    assert_eq!(b["customer_info"]["card_type"], "standard");
    assert_eq!(amt(&b["customer_info"]["balance_after"]), "2991.99");
    assert_eq!(b["customer_info"]["points_after"], 110);
    assert_eq!(b["customer_info"]["member_level"], 0);

    // Level 1 (0.950): 12.30 → 11.685 → 11.69 (half away from zero).
    let b = srv.charge_card(&t, "STD00000004", "12.30").await;
    assert_charge(&b, "12.30", "0.950", "11.69", 12);
    assert_eq!(amt(&b["customer_info"]["balance_after"]), "1238.31");
    assert_eq!(b["customer_info"]["member_level"], 1);
    // 99.99 × 0.95 = 94.9905 → 94.99; points are the floor of the raw amount.
    let b = srv.charge_card(&t, "STD00000004", "99.99").await;
    assert_charge(&b, "99.99", "0.950", "94.99", 99);
    assert_eq!(amt(&b["customer_info"]["balance_after"]), "1143.32");

    // Level 3 (0.850), sent as a JSON number: 10.01 → 8.5085 → 8.51.
    let qr = srv.qr("STD00000010").await;
    let r = srv
        .charge_with(&t, &json!({"qr_plain": qr, "amount": 10.01}), &[])
        .await;
    assert_charge(r.assert_ok(), "10.01", "0.850", "8.51", 10);

    // Level 2 (0.900) vs corporate: none here, so 0.900. 0.05 × 0.9 = 0.045 → 0.05.
    let b = srv.charge_card(&t, "STD00000007", "0.05").await;
    assert_charge(&b, "0.05", "0.900", "0.05", 0);

    // Full price at level 0; integer amounts and one decimal are fine.
    let b = srv.charge_card(&t, "STD00000001", "7").await;
    assert_charge(&b, "7.00", "1.000", "7.00", 7);
    let b = srv.charge_card(&t, "STD00000001", "0.5").await;
    assert_charge(&b, "0.50", "1.000", "0.50", 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn level_up_takes_effect_from_the_next_charge() {
    let srv = TestServer::start().await;
    let t = srv.owner_token().await;
    // STD00000003: 990 points, level 0, balance 1000.00.
    let b = srv.charge_card(&t, "STD00000003", "20.00").await;
    assert_charge(&b, "20.00", "1.000", "20.00", 20);
    assert_eq!(b["customer_info"]["points_after"], 1010);
    assert_eq!(b["customer_info"]["member_level"], 1);
    assert_eq!(amt(&b["customer_info"]["balance_after"]), "980.00");
    // The till can tell the member: now 銀卡 at 0.950, 3,990 points to 金卡.
    let level = &b["customer_info"]["level"];
    assert_eq!(level["level"], 1);
    assert_eq!(level["name"], "銀卡會員");
    assert_eq!(amt(&level["discount"]), "0.950");
    assert_eq!(level["next_level"]["level"], 2);
    assert_eq!(level["next_level"]["name"], "金卡會員");
    assert_eq!(level["next_level"]["min_points"], 5000);
    assert_eq!(level["next_level"]["points_needed"], 3990);
    assert_eq!(amt(&level["next_level"]["discount"]), "0.900");

    let b = srv.charge_card(&t, "STD00000003", "20.00").await;
    assert_charge(&b, "20.00", "0.950", "19.00", 20);
    assert_eq!(b["customer_info"]["points_after"], 1030);
    assert_eq!(b["customer_info"]["member_level"], 1);
    assert_eq!(amt(&b["customer_info"]["balance_after"]), "961.00");

    // The QR check shows the new level and points.
    let qr = srv.qr("STD00000003").await;
    let v = srv.validate_qr(&t, &qr).await;
    let info = &v.assert_ok()["card_info"];
    assert_eq!(info["member_level"], 1);
    assert_eq!(info["points"], 1030);
    assert_eq!(amt(&info["balance"]), "961.00");
    assert_eq!(info["level"]["name"], "銀卡會員");
    assert_eq!(info["level"]["next_level"]["points_needed"], 3970);

    // The top level has no next one.
    let v = srv.validate_qr(&t, &srv.qr("STD00000010").await).await;
    let info = &v.assert_ok()["card_info"];
    assert_eq!(info["member_level"], 3);
    assert_eq!(info["level"]["name"], "鑽石會員");
    assert!(info["level"]["next_level"].is_null(), "{info}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn levels_are_listed_for_the_till() {
    let srv = TestServer::start().await;
    let t = srv.owner_token().await;
    let r = srv.get("/api/v1/levels", Some(&t)).await;
    let levels = r.assert_ok()["levels"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let rows: Vec<(i64, String, i64, Option<i64>, String)> = levels
        .iter()
        .map(|l| {
            (
                l["level"].as_i64().unwrap_or(-1),
                l["name"].as_str().unwrap_or("").to_string(),
                l["min_points"].as_i64().unwrap_or(-1),
                l["max_points"].as_i64(),
                amt(&l["discount"]),
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            (0, "普通會員".into(), 0, Some(999), "1.000".into()),
            (1, "銀卡會員".into(), 1000, Some(4999), "0.950".into()),
            (2, "金卡會員".into(), 5000, Some(9999), "0.900".into()),
            (3, "鑽石會員".into(), 10000, None, "0.850".into()),
        ]
    );
    // A cashier may read them (the till explains levels); no session, no levels.
    let cashier = srv.cashier_token().await;
    srv.get("/api/v1/levels", Some(&cashier)).await.assert_ok();
    assert_eq!(srv.get("/api/v1/levels", None).await.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn balance_after_decreases_exactly_and_insufficient_balance() {
    let srv = TestServer::start().await;
    let t = srv.owner_token().await;
    // STD00000020: 5250.00, 12000 points → level 3, 0.850.
    let mut balance = 525_000;
    for (raw, fin) in [
        ("10.01", "8.51"),
        ("0.01", "0.01"),
        ("0.03", "0.03"),
        ("123.45", "104.93"),
        ("1.10", "0.94"),
        ("1999.99", "1699.99"),
    ] {
        let b = srv.charge_card(&t, "STD00000020", raw).await;
        assert_eq!(amt(&b["transaction"]["final_amount"]), fin, "{raw}");
        balance -= cents(&b["transaction"]["final_amount"]);
        assert_eq!(
            amt(&b["customer_info"]["balance_after"]),
            fmt_cents(balance),
            "{raw}"
        );
    }
    assert_eq!(fmt_cents(balance), "3435.59");
    assert_eq!(srv.available("STD00000020").await, balance);

    // STD00000001: 500.00 at full price.
    let qr = srv.qr("STD00000001").await;
    let r = srv.charge(&t, &qr, "500.01").await;
    let d = r.assert_error(422, "INSUFFICIENT_BALANCE");
    assert_eq!(amt(&d["available_balance"]), "500.00");
    assert_eq!(amt(&d["required"]), "500.01");
    // A declined charge does not use up the QR; the exact balance passes.
    let r = srv.charge(&t, &qr, "500.00").await;
    assert_eq!(
        amt(&r.assert_ok()["customer_info"]["balance_after"]),
        "0.00"
    );
    let qr = srv.qr("STD00000001").await;
    srv.charge(&t, &qr, "0.01")
        .await
        .assert_error(422, "INSUFFICIENT_BALANCE");
    assert_eq!(srv.available("STD00000001").await, 0);
    let n = srv
        .count("SELECT COUNT(*) FROM transactions WHERE tx_type = 'payment'")
        .await;
    assert_eq!(n, 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn frozen_corporate_and_voucher_cards_cannot_pay() {
    let srv = TestServer::start().await;
    let t = srv.owner_token().await;
    for (card, code) in [
        ("STD00000023", "CARD_NOT_ACTIVE"),
        ("COR00000022", "CORPORATE_CARD_CANNOT_PAY"),
        ("VCH00000024", "UNSUPPORTED_CARD_TYPE_FOR_PAYMENT"),
    ] {
        let qr = srv.qr(card).await;
        let d = srv
            .charge(&t, &qr, "1.00")
            .await
            .assert_error(422, code)
            .clone();
        if code == "CARD_NOT_ACTIVE" {
            assert_eq!(d["status"], "inactive");
        }
        // The QR still resolves: validate shows the card.
        let v = srv.validate_qr(&t, &qr).await;
        assert_eq!(v.assert_ok()["card_info"]["card_no"], card);
    }
    assert_eq!(srv.count("SELECT COUNT(*) FROM transactions").await, 0);
    assert_eq!(srv.count("SELECT COUNT(*) FROM outbox").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn expired_and_rotated_qr_tokens_are_refused() {
    let srv = TestServer::start().await;
    let t = srv.owner_token().await;

    // Expired, never scanned before.
    let qr = srv.qr_ttl("STD00000002", 60).await;
    expire_qr(&srv, "STD00000002").await;
    srv.charge(&t, &qr, "1.00")
        .await
        .assert_error(422, "QR_EXPIRED_OR_INVALID");
    srv.validate_qr(&t, &qr)
        .await
        .assert_error(422, "QR_EXPIRED_OR_INVALID");

    // Expired after a successful validate (the resolver has seen it).
    let qr = srv.qr_ttl("STD00000005", 60).await;
    srv.validate_qr(&t, &qr).await.assert_ok();
    expire_qr(&srv, "STD00000005").await;
    srv.charge(&t, &qr, "1.00")
        .await
        .assert_error(422, "QR_EXPIRED_OR_INVALID");

    // Rotated: the old token, seen and unseen, fails after a new issue; the new one pays.
    let seen = srv.qr("STD00000006").await;
    srv.validate_qr(&t, &seen).await.assert_ok();
    let unseen = srv.qr("STD00000006").await;
    let current = srv.qr("STD00000006").await;
    for old in [&seen, &unseen] {
        srv.charge(&t, old, "1.00")
            .await
            .assert_error(422, "QR_EXPIRED_OR_INVALID");
    }
    srv.charge(&t, &current, "1.00").await.assert_ok();
    assert_eq!(srv.count("SELECT COUNT(*) FROM transactions").await, 1);
}

async fn expire_qr(srv: &TestServer, card_no: &str) {
    let card_no = card_no.to_string();
    let n = srv
        .write(move |c| {
            c.execute(
                "UPDATE card_qr_state SET expires_at_unix = strftime('%s','now') - 1
                 WHERE card_id = (SELECT id FROM cards WHERE card_no = ?1)",
                [card_no],
            )
        })
        .await;
    assert_eq!(n, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_qr_token_charges_once() {
    let srv = TestServer::start().await;
    let t = srv.owner_token().await;
    let qr = srv.qr("STD00000011").await;
    srv.charge(&t, &qr, "5.00").await.assert_ok();
    srv.charge(&t, &qr, "5.00")
        .await
        .assert_error(422, "QR_ALREADY_USED");
    srv.charge(&t, &qr, "6.00")
        .await
        .assert_error(422, "QR_ALREADY_USED");
    assert_eq!(srv.available("STD00000011").await, 300_000 - 500);
    // A fresh token pays again.
    srv.charge_card(&t, "STD00000011", "5.00").await;
    assert_eq!(srv.available("STD00000011").await, 300_000 - 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_qr_token_charges_again_when_single_use_is_off() {
    let srv = TestServer::start_with(|c| c.qr.single_use = false).await;
    let t = srv.owner_token().await;
    let qr = srv.qr("STD00000011").await;
    let a = srv.charge(&t, &qr, "5.00").await.assert_ok().clone();
    let b = srv.charge(&t, &qr, "5.00").await.assert_ok().clone();
    assert_ne!(a["transaction"]["tx_no"], b["transaction"]["tx_no"]);
    assert_eq!(amt(&b["customer_info"]["balance_after"]), "2990.00");
    assert_eq!(srv.count("SELECT COUNT(*) FROM transactions").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn qr_validate_shows_the_card_and_does_not_consume() {
    let srv = TestServer::start().await;
    let t = srv.owner_token().await;
    let qr = srv.qr("STD00000004").await;
    for _ in 0..2 {
        let r = srv.validate_qr(&t, &qr).await;
        let v = r.assert_ok();
        assert_eq!(v["valid"], true);
        assert!(v["card_id"].is_string());
        let info = &v["card_info"];
        assert_eq!(info["card_no"], "STD00000004");
        assert_eq!(info["card_type"], "standard");
        assert_eq!(info["status"], "active");
        assert_eq!(amt(&info["balance"]), "1250.00");
        assert_eq!(info["member_level"], 1);
        assert_eq!(info["points"], 1000);
    }
    let b = srv.charge(&t, &qr, "100.00").await;
    assert_eq!(
        amt(&b.assert_ok()["customer_info"]["balance_after"]),
        "1155.00"
    );
    // The balance shown reflects the unsynced charge.
    let qr = srv.qr("STD00000004").await;
    let r = srv.validate_qr(&t, &qr).await;
    assert_eq!(amt(&r.assert_ok()["card_info"]["balance"]), "1155.00");
    assert_eq!(r.json["card_info"]["points"], 1100);
    assert_eq!(srv.count("SELECT COUNT(*) FROM transactions").await, 1);
    // With single-use on, validating a token that already paid says so.
    let _ = srv.charge(&t, &qr, "1.00").await.assert_ok();
    srv.validate_qr(&t, &qr)
        .await
        .assert_error(422, "QR_ALREADY_USED");
}

// ---------------------------------------------------------------------------------
// Refunds
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refund_partial_full_over_and_detail() {
    let srv = TestServer::start().await;
    let t = srv.owner_token().await;
    // Contract §3.9 sequence on an 80.00 payment (STD00000011: 3000.00, level 0).
    let pay = srv.charge_card(&t, "STD00000011", "80.00").await;
    let pay_no = pay["transaction"]["tx_no"].as_str().unwrap().to_string();
    assert_eq!(srv.available("STD00000011").await, 292_000);

    let r = srv.refund(&t, &pay_no, "30.00").await;
    let b = r.assert_ok().clone();
    assert_eq!(amt(&b["refund"]["refunded_amount"]), "30.00");
    assert_eq!(amt(&b["remaining_refundable"]), "50.00");
    assert_eq!(b["refund"]["original_tx_no"], pay_no);
    assert_eq!(b["refund"]["status"], "completed");
    let ref1 = b["refund"]["refund_tx_no"].as_str().unwrap().to_string();
    assert!(ref1.starts_with("REF-DEMO-"), "{ref1}");
    assert_eq!(srv.available("STD00000011").await, 295_000);

    let d = srv
        .refund(&t, &pay_no, "60.00")
        .await
        .assert_error(422, "REFUND_EXCEEDS_REMAINING")
        .clone();
    assert_eq!(amt(&d["remaining_refundable"]), "50.00");
    assert_eq!(amt(&d["requested"]), "60.00");

    // Still completed while something remains.
    let detail = srv.tx_detail(&t, &pay_no).await;
    let tx = &detail.assert_ok()["transaction"];
    assert_eq!(tx["status"], "completed");
    assert_eq!(amt(&tx["refunded_amount"]), "30.00");
    assert_eq!(amt(&tx["remaining_refundable"]), "50.00");

    let b = srv.refund(&t, &pay_no, "50").await.assert_ok().clone();
    assert_eq!(amt(&b["remaining_refundable"]), "0.00");
    let ref2 = b["refund"]["refund_tx_no"].as_str().unwrap().to_string();
    srv.refund(&t, &pay_no, "0.01")
        .await
        .assert_error(422, "REFUND_EXCEEDS_REMAINING");
    assert_eq!(srv.available("STD00000011").await, 300_000);

    let r = srv.tx_detail(&t, &pay_no).await;
    let detail = r.assert_ok();
    let tx = &detail["transaction"];
    assert_eq!(tx["tx_type"], "payment");
    assert_eq!(tx["status"], "refunded");
    assert_eq!(amt(&tx["final_amount"]), "80.00");
    assert_eq!(amt(&tx["refunded_amount"]), "80.00");
    assert_eq!(amt(&tx["remaining_refundable"]), "0.00");
    assert_eq!(tx["card_no"], "STD00000011");
    let refunds = detail["refunds"].as_array().unwrap();
    let nos: Vec<&str> = refunds
        .iter()
        .map(|r| r["tx_no"].as_str().unwrap())
        .collect();
    assert_eq!(nos, vec![ref1.as_str(), ref2.as_str()]);
    assert_eq!(amt(&refunds[0]["final_amount"]), "30.00");
    assert_eq!(amt(&refunds[1]["final_amount"]), "50.00");
    for r in refunds {
        assert_eq!(r["tx_type"], "refund");
        assert_eq!(r["original_tx_no"], pay_no);
        assert_eq!(amt(&r["discount_applied"]), "1.000");
        assert_eq!(r["points_earned"], 0);
    }

    // A refund's own detail has no refunds and no refundable figures.
    let r = srv.tx_detail(&t, &ref1).await;
    let d = r.assert_ok();
    assert_eq!(d["transaction"]["tx_type"], "refund");
    assert!(d["transaction"]["remaining_refundable"].is_null());
    assert_eq!(d["refunds"], json!([]));

    // Refunding a refund; unknown originals; unknown detail.
    srv.refund(&t, &ref1, "1.00")
        .await
        .assert_error(422, "ONLY_COMPLETED_PAYMENT_REFUNDABLE");
    for no in ["PAY-DEMO-9999999999", "PAY0000000009", "nope"] {
        srv.refund(&t, no, "1.00")
            .await
            .assert_error(404, "ORIGINAL_TX_NOT_FOUND");
    }
    srv.tx_detail(&t, "PAY-DEMO-9999999999")
        .await
        .assert_error(404, "TX_NOT_FOUND");

    // Points earned on the payment are not reversed (central's rule).
    let pts: i64 = srv
        .read(|c| {
            c.query_row(
                "SELECT pending_points FROM cards WHERE card_no = 'STD00000011'",
                [],
                |r| r.get(0),
            )
        })
        .await;
    assert_eq!(pts, 80);
    assert_eq!(
        srv.count("SELECT COUNT(*) FROM outbox WHERE op_type = 'refund'")
            .await,
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_refunds_never_over_refund() {
    let srv = TestServer::start().await;
    let t = srv.owner_token().await;
    let pay = srv.charge_card(&t, "STD00000012", "50.00").await;
    let pay_no = pay["transaction"]["tx_no"].as_str().unwrap().to_string();
    let before = srv.available("STD00000012").await;

    let requests = (0..20)
        .map(|_| {
            (
                json!({"original_tx_no": pay_no, "refund_amount": "10.00"}),
                Vec::new(),
            )
        })
        .collect();
    let results = concurrent_posts(&srv, &format!("{API}/merchant/refund"), &t, requests).await;
    let ok: Vec<&Resp> = results.iter().filter(|r| r.status == 200).collect();
    assert_eq!(ok.len(), 5, "{results:#?}");
    for r in results.iter().filter(|r| r.status != 200) {
        r.assert_error(422, "REFUND_EXCEEDS_REMAINING");
    }
    let total: i64 = ok
        .iter()
        .map(|r| cents(&r.json["refund"]["refunded_amount"]))
        .sum();
    assert_eq!(total, 5000);
    // 40, 30, 20, 10 and 0 remain after the five, in some order.
    let mut remaining: Vec<String> = ok
        .iter()
        .map(|r| amt(&r.json["remaining_refundable"]))
        .collect();
    remaining.sort();
    assert_eq!(remaining, vec!["0.00", "10.00", "20.00", "30.00", "40.00"]);

    let sum: i64 = srv
        .read(move |c| {
            c.query_row(
                "SELECT COALESCE(SUM(final_amount_cents), 0) FROM transactions WHERE tx_type = 'refund'",
                [],
                |r| r.get(0),
            )
        })
        .await;
    assert_eq!(sum, 5000);
    let r = srv.tx_detail(&t, &pay_no).await;
    let d = r.assert_ok();
    assert_eq!(d["transaction"]["status"], "refunded");
    assert_eq!(amt(&d["transaction"]["refunded_amount"]), "50.00");
    assert_eq!(d["refunds"].as_array().unwrap().len(), 5);
    assert_eq!(srv.available("STD00000012").await, before + 5000);
}

// ---------------------------------------------------------------------------------
// Idempotency
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idempotent_charge_retries_replay_the_original() {
    let srv = TestServer::start().await;
    let t = srv.owner_token().await;
    let start = srv.available("STD00000013").await;

    // Header key.
    let qr = srv.qr("STD00000013").await;
    let body = json!({"qr_plain": qr, "amount": "12.34"});
    let first = srv
        .charge_with(&t, &body, &[("Idempotency-Key", "pos-1-0001")])
        .await;
    first.assert_ok();
    assert!(!first.replayed());
    let again = srv
        .charge_with(&t, &body, &[("Idempotency-Key", "pos-1-0001")])
        .await;
    again.assert_ok();
    assert!(again.replayed());
    assert_eq!(again.text, first.text);
    // The same request with the key in the body instead, and the amount as a number.
    let same = json!({"qr_plain": qr, "amount": 12.34, "idempotency_key": "pos-1-0001"});
    let r = srv.charge_with(&t, &same, &[]).await;
    assert!(r.replayed());
    assert_eq!(r.text, first.text);
    assert_eq!(srv.available("STD00000013").await, start - 1234);

    // Same key, different amount (or QR): a conflict, nothing charged.
    let other = json!({"qr_plain": qr, "amount": "12.35"});
    srv.charge_with(&t, &other, &[("Idempotency-Key", "pos-1-0001")])
        .await
        .assert_error(409, "IDEMPOTENCY_KEY_REUSED");
    let qr2 = srv.qr("STD00000013").await;
    srv.charge_with(
        &t,
        &json!({"qr_plain": qr2, "amount": "12.34"}),
        &[("Idempotency-Key", "pos-1-0001")],
    )
    .await
    .assert_error(409, "IDEMPOTENCY_KEY_REUSED");

    // The token was consumed and has since been rotated: the retry still gets its answer.
    let r = srv
        .charge_with(&t, &body, &[("Idempotency-Key", "pos-1-0001")])
        .await;
    assert!(r.replayed());
    assert_eq!(r.text, first.text);

    // Body key, then header key with the same value.
    let qr3 = srv.qr("STD00000012").await;
    let body3 = json!({"qr_plain": qr3, "amount": "1.00", "idempotency_key": "pos-1-0002"});
    let a = srv.charge_with(&t, &body3, &[]).await;
    a.assert_ok();
    assert!(!a.replayed());
    let b = srv
        .charge_with(&t, &body3, &[("Idempotency-Key", "pos-1-0002")])
        .await;
    assert!(b.replayed());
    assert_eq!(b.text, a.text);
    let c = srv
        .charge_with(
            &t,
            &json!({"qr_plain": qr3, "amount": "1.00"}),
            &[("Idempotency-Key", "pos-1-0002")],
        )
        .await;
    assert!(c.replayed());
    assert_eq!(c.text, a.text);

    // Keys are scoped to the user: another user's same key is a new request
    // (and here the token is already used).
    let cashier = srv.cashier_token().await;
    srv.charge_with(&cashier, &body3, &[])
        .await
        .assert_error(422, "QR_ALREADY_USED");

    // A replay after the payment was fully refunded still returns the stored answer.
    let tx_no = a.json["transaction"]["tx_no"].as_str().unwrap().to_string();
    srv.refund(&t, &tx_no, "1.00").await.assert_ok();
    let d = srv.charge_with(&t, &body3, &[]).await;
    assert!(d.replayed());
    assert_eq!(d.text, a.text);

    assert_eq!(
        srv.count("SELECT COUNT(*) FROM transactions WHERE tx_type = 'payment'")
            .await,
        2
    );
    assert_eq!(
        srv.count("SELECT COUNT(*) FROM outbox WHERE op_type = 'charge'")
            .await,
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idempotent_refund_retries_replay_the_original() {
    let srv = TestServer::start().await;
    let t = srv.owner_token().await;
    let pay = srv.charge_card(&t, "STD00000015", "40.00").await;
    let pay_no = pay["transaction"]["tx_no"].as_str().unwrap().to_string();
    let body = json!({"original_tx_no": pay_no, "refund_amount": "15.00", "reason": "damaged"});
    let a = srv
        .refund_with(&t, &body, &[("Idempotency-Key", "ref-1")])
        .await;
    a.assert_ok();
    let b = srv
        .refund_with(&t, &body, &[("Idempotency-Key", "ref-1")])
        .await;
    assert!(b.replayed());
    assert_eq!(b.text, a.text);
    let other = json!({"original_tx_no": pay_no, "refund_amount": "16.00", "reason": "damaged"});
    srv.refund_with(&t, &other, &[("Idempotency-Key", "ref-1")])
        .await
        .assert_error(409, "IDEMPOTENCY_KEY_REUSED");
    // A charge key and a refund key live in one namespace per user.
    let qr = srv.qr("STD00000015").await;
    srv.charge_with(
        &t,
        &json!({"qr_plain": qr, "amount": "1.00"}),
        &[("Idempotency-Key", "ref-1")],
    )
    .await
    .assert_error(409, "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(
        srv.count("SELECT COUNT(*) FROM transactions WHERE tx_type = 'refund'")
            .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_identical_key_charges_make_one_transaction() {
    let srv = TestServer::start().await;
    let t = srv.owner_token().await;
    let qr = srv.qr("STD00000016").await;
    let start = srv.available("STD00000016").await;
    let requests = (0..20)
        .map(|_| {
            (
                json!({"qr_plain": qr, "amount": "25.00"}),
                vec![("Idempotency-Key".to_string(), "burst-key-1".to_string())],
            )
        })
        .collect();
    let results = concurrent_posts(&srv, &format!("{API}/merchant/charge"), &t, requests).await;
    for r in &results {
        r.assert_ok();
    }
    let first = &results[0].text;
    assert!(results.iter().all(|r| &r.text == first), "{results:#?}");
    assert_eq!(results.iter().filter(|r| !r.replayed()).count(), 1);
    assert_eq!(srv.count("SELECT COUNT(*) FROM transactions").await, 1);
    assert_eq!(srv.count("SELECT COUNT(*) FROM outbox").await, 1);
    // STD00000016 is level 1: 25.00 × 0.950.
    assert_eq!(
        amt(&results[0].json["transaction"]["final_amount"]),
        "23.75"
    );
    assert_eq!(srv.available("STD00000016").await, start - 2375);
}

// ---------------------------------------------------------------------------------
// Roles
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cashier_can_charge_but_not_refund_alone() {
    let srv = TestServer::start().await;
    let cashier = srv.cashier_token().await;
    let me = srv.get(&format!("{API}/auth/me"), Some(&cashier)).await;
    assert_eq!(me.assert_ok()["user"]["role"], "cashier");

    let b = srv.charge_card(&cashier, "STD00000017", "10.00").await;
    let tx_no = b["transaction"]["tx_no"].as_str().unwrap().to_string();
    let d = srv
        .refund(&cashier, &tx_no, "1.00")
        .await
        .assert_error(403, "APPROVAL_REQUIRED")
        .clone();
    // Only with a manager's PIN (tests/approvals.rs).
    assert_eq!(d["reason"], "cashier_refund");
    srv.get(&format!("{API}/merchant/daily-summary"), Some(&cashier))
        .await
        .assert_error(403, "PERMISSION_DENIED");
    // Reading transactions is allowed.
    let r = srv
        .get(&format!("{API}/merchant/transactions"), Some(&cashier))
        .await;
    assert_eq!(r.assert_ok()["pagination"]["total_count"], 1);
    srv.tx_detail(&cashier, &tx_no).await.assert_ok();
    let qr = srv.qr("STD00000017").await;
    srv.validate_qr(&cashier, &qr).await.assert_ok();
    // The owner may refund the cashier's charge.
    let owner = srv.owner_token().await;
    srv.refund(&owner, &tx_no, "1.00").await.assert_ok();
    assert_eq!(
        srv.count("SELECT COUNT(*) FROM transactions WHERE tx_type = 'refund'")
            .await,
        1
    );
    // The charge names its operator.
    let r = srv.tx_detail(&owner, &tx_no).await;
    assert_eq!(r.assert_ok()["transaction"]["operator"], "cashier1");
}

// ---------------------------------------------------------------------------------
// Offline limits
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn offline_limit_per_transaction() {
    let srv = TestServer::start_with(|c| c.limits.max_tx_amount = "10.00".parse().unwrap()).await;
    let t = srv.owner_token().await;
    let qr = srv.qr("STD00000001").await;
    let d = srv
        .charge(&t, &qr, "10.01")
        .await
        .assert_error(422, "OFFLINE_LIMIT_EXCEEDED")
        .clone();
    assert_eq!(d["limit"], "per_transaction");
    assert_eq!(amt(&d["limit_amount"]), "10.00");
    assert_eq!(amt(&d["attempted_amount"]), "10.01");
    srv.charge(&t, &qr, "10.00").await.assert_ok();
    // The limit applies to the amount entered, not the discounted one (README, "largest
    // single charge"): on a 0.850 card 10.01 would debit only 8.51, and still declines.
    let discounted = srv.qr("STD00000010").await;
    let d = srv
        .charge(&t, &discounted, "10.01")
        .await
        .assert_error(422, "OFFLINE_LIMIT_EXCEEDED")
        .clone();
    assert_eq!(d["limit"], "per_transaction");
    assert_eq!(amt(&d["attempted_amount"]), "10.01");
    // At the boundary: 10.00 entered, 8.50 debited.
    let b = srv.charge_card(&t, "STD00000010", "10.00").await;
    assert_eq!(amt(&b["transaction"]["raw_amount"]), "10.00");
    assert_eq!(amt(&b["transaction"]["final_amount"]), "8.50");
    assert_eq!(srv.count("SELECT COUNT(*) FROM transactions").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn offline_limit_per_card_unsynced() {
    let srv =
        TestServer::start_with(|c| c.limits.max_card_unsynced = "30.00".parse().unwrap()).await;
    let t = srv.owner_token().await;
    srv.charge_card(&t, "STD00000011", "20.00").await;
    let qr = srv.qr("STD00000011").await;
    let d = srv
        .charge(&t, &qr, "15.00")
        .await
        .assert_error(422, "OFFLINE_LIMIT_EXCEEDED")
        .clone();
    assert_eq!(d["limit"], "per_card_unsynced");
    assert_eq!(amt(&d["limit_amount"]), "30.00");
    assert_eq!(amt(&d["attempted_amount"]), "35.00");
    srv.charge(&t, &qr, "10.00").await.assert_ok();
    // Another card has its own allowance.
    srv.charge_card(&t, "STD00000012", "30.00").await;
    // At the limit exactly: nothing more for this card.
    let qr = srv.qr("STD00000011").await;
    srv.charge(&t, &qr, "0.01")
        .await
        .assert_error(422, "OFFLINE_LIMIT_EXCEEDED");
    assert_eq!(srv.count("SELECT COUNT(*) FROM transactions").await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn offline_limit_site_unsynced() {
    let srv =
        TestServer::start_with(|c| c.limits.max_site_unsynced = "50.00".parse().unwrap()).await;
    let t = srv.owner_token().await;
    srv.charge_card(&t, "STD00000011", "30.00").await;
    srv.charge_card(&t, "STD00000012", "20.00").await;
    let qr = srv.qr("STD00000013").await;
    let d = srv
        .charge(&t, &qr, "0.01")
        .await
        .assert_error(422, "OFFLINE_LIMIT_EXCEEDED")
        .clone();
    assert_eq!(d["limit"], "site_unsynced");
    assert_eq!(amt(&d["limit_amount"]), "50.00");
    assert_eq!(amt(&d["attempted_amount"]), "50.01");
    assert_eq!(srv.count("SELECT COUNT(*) FROM transactions").await, 2);
}

/// The stale-replica rule needs a central in the configuration. No central is contacted
/// here: the URL points nowhere, the replica is the demo dataset loaded directly, and the
/// replica's freshness is set in `meta` by hand.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn offline_limit_stale_replica_with_a_configured_central() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = support::server::default_config();
    cfg.data_dir = dir.path().to_path_buf();
    cfg.central.url = "http://127.0.0.1:9".into();
    cfg.central.service_key = Secret::new("test-service-key");
    cfg.central.merchant_code = "DEMO".into();
    cfg.site.code = "S001".into();
    cfg.limits.stale_after_secs = 3600;
    cfg.limits.stale_max_tx_amount = "100.00".parse().unwrap();
    let open_cfg = cfg.clone();
    let db = tokio::task::spawn_blocking(move || {
        let opened = mps_edge::startup::open(&open_cfg, true).unwrap();
        assert!(opened.new_owner.is_none());
        assert!(!opened.demo);
        let db = opened.db;
        db.write_blocking(|c| mps_edge::db::demo::load(c).map(|_| ()))
            .unwrap();
        let hash = mps_edge::auth::hash_password("owner-password-1").unwrap();
        db.write_blocking(move |c| {
            mps_edge::db::users::upsert_user(
                c,
                "owner",
                &hash,
                Role::Owner,
                false,
                &mps_edge::db::users::Actor::system("test"),
            )
        })
        .unwrap();
        db
    })
    .await
    .unwrap();
    let srv = TestServer::serve(
        dir,
        cfg,
        db,
        ("owner".to_string(), "owner-password-1".to_string()),
    )
    .await;
    let t = srv.owner_token().await;

    // Never refreshed: only charges up to 100.00 pass.
    let qr = srv.qr("STD00000011").await;
    let d = srv
        .charge(&t, &qr, "100.01")
        .await
        .assert_error(422, "OFFLINE_LIMIT_EXCEEDED")
        .clone();
    assert_eq!(d["limit"], "stale_replica");
    assert_eq!(amt(&d["limit_amount"]), "100.00");
    let b = srv.charge(&t, &qr, "100.00").await;
    assert!(b.assert_ok()["transaction"]["tx_no"]
        .as_str()
        .unwrap()
        .starts_with("PAY-S001-"));

    // Fresh replica: the normal limits apply.
    set_refreshed(&srv, 0).await;
    srv.charge_card(&t, "STD00000011", "150.00").await;
    // Stale again (two hours old).
    set_refreshed(&srv, 7200).await;
    let qr = srv.qr("STD00000011").await;
    let d = srv
        .charge(&t, &qr, "100.01")
        .await
        .assert_error(422, "OFFLINE_LIMIT_EXCEEDED")
        .clone();
    assert_eq!(d["limit"], "stale_replica");
    assert_eq!(srv.count("SELECT COUNT(*) FROM transactions").await, 2);
}

async fn set_refreshed(srv: &TestServer, age_secs: i64) {
    let at = chrono::Utc::now().timestamp() - age_secs;
    srv.write(move |c| {
        c.execute(
            "INSERT INTO meta(key, value) VALUES ('replica_refreshed_unix', ?1)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [at.to_string()],
        )
    })
    .await;
}

// ---------------------------------------------------------------------------------
// Reading: lists, details, daily figures
// ---------------------------------------------------------------------------------

/// Makes 5 payments and 2 refunds; returns the tx_nos in creation order.
async fn seed_mixed(srv: &TestServer, t: &str) -> Vec<String> {
    let mut nos = Vec::new();
    for (card, amount) in [
        ("STD00000001", "10.00"),
        ("STD00000002", "20.00"),
        ("STD00000004", "30.00"), // 0.950 → 28.50
        ("STD00000011", "40.00"),
        ("STD00000001", "5.00"),
    ] {
        let b = srv.charge_card(t, card, amount).await;
        nos.push(b["transaction"]["tx_no"].as_str().unwrap().to_string());
    }
    for (orig, amount) in [(0usize, "10.00"), (3, "5.00")] {
        let r = srv.refund(t, &nos[orig], amount).await;
        let b = r.assert_ok();
        nos.push(b["refund"]["refund_tx_no"].as_str().unwrap().to_string());
    }
    nos
}

async fn list(srv: &TestServer, t: &str, query: &str) -> Value {
    let r = srv
        .get(&format!("{API}/merchant/transactions?{query}"), Some(t))
        .await;
    r.assert_ok().clone()
}

fn tx_nos(list: &Value) -> Vec<String> {
    list["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["tx_no"].as_str().unwrap().to_string())
        .collect()
}

/// Search by any part of a card or transaction number (any case, `%` and `_` as typed),
/// sort by time or amount with stable ties, totals of every matching row (not the page),
/// and ranges no row can fall in refused with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transactions_search_sort_totals_and_impossible_ranges() {
    let srv = TestServer::start().await;
    let t = srv.owner_token().await;
    let nos = seed_mixed(&srv, &t).await;
    let set = |q: Value| -> HashSet<String> { tx_nos(&q).into_iter().collect() };
    let want = |idx: &[usize]| -> HashSet<String> { idx.iter().map(|&i| nos[i].clone()).collect() };

    // Card numbers: STD00000001 (0, 4, refund 5), STD00000002, STD00000004, STD00000011 (3, refund 6).
    assert_eq!(set(list(&srv, &t, "q=00000001").await), want(&[0, 4, 5]));
    assert_eq!(set(list(&srv, &t, "q=std00000001").await), want(&[0, 4, 5]));
    assert_eq!(set(list(&srv, &t, "q=std0000001").await), want(&[3, 6]));
    assert_eq!(set(list(&srv, &t, "q=11").await), want(&[3, 6]));
    assert_eq!(set(list(&srv, &t, "q=%25").await), want(&[]));
    assert_eq!(set(list(&srv, &t, "q=_").await), want(&[]));
    // A transaction number, whole or in part, lower case too.
    assert_eq!(
        set(list(&srv, &t, &format!("q={}", nos[2])).await),
        want(&[2])
    );
    let tail = &nos[6][nos[6].len() - 6..];
    assert!(set(list(&srv, &t, &format!("q={}", tail.to_lowercase())).await).contains(&nos[6]));
    assert_eq!(set(list(&srv, &t, "q=REF").await), want(&[5, 6]));
    assert_eq!(
        set(list(&srv, &t, "q=00000001&type=refund").await),
        want(&[5])
    );

    // Sorting: amounts 10, 20, 28.50, 40, 5 (payments) and 10, 5 (refunds).
    let amounts = |l: &Value| -> Vec<String> {
        l["transactions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| amt(&r["final_amount"]))
            .collect()
    };
    let desc = list(&srv, &t, "sort=amount_desc").await;
    assert_eq!(
        amounts(&desc),
        ["40.00", "28.50", "20.00", "10.00", "10.00", "5.00", "5.00"]
    );
    // Equal amounts: newest first.
    assert_eq!(tx_nos(&desc)[3..5], [nos[5].clone(), nos[0].clone()]);
    let asc = list(&srv, &t, "sort=amount_asc&limit=3").await;
    assert_eq!(amounts(&asc), ["5.00", "5.00", "10.00"]);
    let oldest = list(&srv, &t, "sort=time_asc").await;
    assert_eq!(tx_nos(&oldest), nos);
    let newest = list(&srv, &t, "sort=time_desc").await;
    assert_eq!(
        tx_nos(&newest),
        nos.iter().rev().cloned().collect::<Vec<_>>()
    );
    // Pages of a sort cover every row once.
    let mut seen = Vec::new();
    for offset in [0, 3, 6] {
        seen.extend(tx_nos(
            &list(
                &srv,
                &t,
                &format!("sort=amount_desc&limit=3&offset={offset}"),
            )
            .await,
        ));
    }
    assert_eq!(seen, tx_nos(&desc));

    // Totals: every matching row, whatever the page.
    let page = list(&srv, &t, "limit=2").await;
    let s = &page["totals"];
    assert_eq!(s["count"], 7);
    assert_eq!(s["payment_count"], 5);
    assert_eq!(amt(&s["payment_amount"]), "103.50");
    assert_eq!(s["refund_count"], 2);
    assert_eq!(amt(&s["refund_amount"]), "15.00");
    assert_eq!(amt(&s["net_amount"]), "88.50");
    let s = &list(&srv, &t, "q=00000001").await["totals"];
    assert_eq!(
        (s["count"].clone(), amt(&s["net_amount"])),
        (json!(3), "5.00".to_string())
    );
    let none = list(&srv, &t, "q=NOPE").await;
    assert_eq!(none["totals"]["count"], 0);
    assert_eq!(amt(&none["totals"]["net_amount"]), "0.00");

    // Impossible ranges are explained, not answered with an empty list.
    let r = srv
        .get(
            &format!("{API}/merchant/transactions?start_date=2024-03-02&end_date=2024-03-01"),
            Some(&t),
        )
        .await;
    assert_eq!(r.assert_error(422, "PERIOD_INVALID")["field"], "end_date");
    let r = srv
        .get(
            &format!("{API}/merchant/transactions?min_amount=20&max_amount=19.99"),
            Some(&t),
        )
        .await;
    assert_eq!(
        r.assert_error(422, "AMOUNT_RANGE_INVALID")["field"],
        "max_amount"
    );
    // One day, and one exact amount, are ranges.
    assert_eq!(
        set(list(&srv, &t, "min_amount=20&max_amount=20").await),
        want(&[1])
    );

    // The CSV export follows the search and the order.
    let res = srv
        .client
        .get(format!(
            "{}{API}/merchant/transactions/export.csv?q=00000001&sort=amount_asc",
            srv.base
        ))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    let rows: Vec<&str> = text
        .split("\r\n")
        .skip(1)
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(rows.len(), 3, "{text}");
    assert!(rows[2].starts_with(&nos[0]), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transactions_list_paging_and_filters() {
    let srv = TestServer::start().await;
    let t = srv.owner_token().await;
    let empty = list(&srv, &t, "").await;
    assert_eq!(empty["transactions"], json!([]));
    assert_eq!(empty["pagination"]["total_count"], 0);

    let nos = seed_mixed(&srv, &t).await;
    let all = list(&srv, &t, "").await;
    assert_eq!(all["pagination"]["total_count"], 7);
    assert_eq!(all["pagination"]["limit"], 20);
    // Newest first.
    let mut expected = nos.clone();
    expected.reverse();
    assert_eq!(tx_nos(&all), expected);

    // Paging with limit 3: pages of 3, 3, 1 that cover everything once.
    let mut seen = Vec::new();
    for (page, offset) in [(1, 0), (2, 3), (3, 6)] {
        let l = list(&srv, &t, &format!("limit=3&offset={offset}")).await;
        let p = &l["pagination"];
        assert_eq!(p["current_page"], page);
        assert_eq!(p["total_pages"], 3);
        assert_eq!(p["total_count"], 7);
        assert_eq!(p["has_next"], page < 3);
        assert_eq!(p["has_prev"], page > 1);
        seen.extend(tx_nos(&l));
    }
    assert_eq!(seen, expected);
    let past = list(&srv, &t, "limit=3&offset=7").await;
    assert_eq!(past["transactions"], json!([]));
    assert_eq!(past["pagination"]["has_next"], false);

    let set = |q: Value| -> HashSet<String> { tx_nos(&q).into_iter().collect() };
    let want = |idx: &[usize]| -> HashSet<String> { idx.iter().map(|&i| nos[i].clone()).collect() };

    assert_eq!(
        set(list(&srv, &t, "type=payment").await),
        want(&[0, 1, 2, 3, 4])
    );
    assert_eq!(set(list(&srv, &t, "type=refund").await), want(&[5, 6]));
    assert_eq!(set(list(&srv, &t, "status=refunded").await), want(&[0]));
    assert_eq!(
        set(list(&srv, &t, "status=completed").await),
        want(&[1, 2, 3, 4, 5, 6])
    );
    assert_eq!(
        set(list(&srv, &t, "card_no=STD00000001").await),
        want(&[0, 4, 5])
    );
    assert_eq!(
        set(list(&srv, &t, "type=payment&card_no=STD00000001").await),
        want(&[0, 4])
    );
    assert_eq!(set(list(&srv, &t, "card_no=STD00000099").await), want(&[]));
    assert_eq!(
        set(list(&srv, &t, "min_amount=20.00").await),
        want(&[1, 2, 3])
    );
    assert_eq!(
        set(list(&srv, &t, "max_amount=10").await),
        want(&[0, 4, 5, 6])
    );
    assert_eq!(
        set(list(&srv, &t, "min_amount=10.00&max_amount=28.50").await),
        want(&[0, 1, 2, 5])
    );
    assert_eq!(
        set(list(&srv, &t, "min_amount=28.51&max_amount=39.99").await),
        want(&[])
    );
    assert_eq!(set(list(&srv, &t, "sync_state=pending").await).len(), 7);
    assert_eq!(set(list(&srv, &t, "sync_state=applied").await).len(), 0);
    assert_eq!(
        set(list(&srv, &t, "start_date=2000-01-01&end_date=2999-12-31").await).len(),
        7
    );
    assert_eq!(set(list(&srv, &t, "start_date=2999-01-01").await).len(), 0);
    assert_eq!(set(list(&srv, &t, "end_date=2000-01-01").await).len(), 0);
    assert_eq!(
        set(list(&srv, &t, "start_date=2000-01-01T00:00:00Z").await).len(),
        7
    );
    // Filtered totals page too.
    let l = list(&srv, &t, "type=payment&limit=2&offset=2").await;
    assert_eq!(l["pagination"]["total_count"], 5);
    assert_eq!(tx_nos(&l), vec![nos[2].clone(), nos[1].clone()]);

    // Row contents.
    let l = list(&srv, &t, "card_no=STD00000004").await;
    let row = &l["transactions"][0];
    assert_eq!(row["tx_type"], "payment");
    assert_eq!(amt(&row["raw_amount"]), "30.00");
    assert_eq!(amt(&row["discount_applied"]), "0.950");
    assert_eq!(amt(&row["final_amount"]), "28.50");
    assert_eq!(row["points_earned"], 30);
    assert_eq!(row["payment_method"], "balance");
    assert_eq!(row["operator"], "owner");
    assert_eq!(row["tag"], json!({}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn daily_summary_matches_the_charges_and_refunds() {
    let srv = TestServer::start().await;
    let t = srv.owner_token().await;
    let r = srv
        .get(
            &format!("{API}/merchant/daily-summary?date=2001-02-03"),
            Some(&t),
        )
        .await;
    let s = r.assert_ok();
    assert_eq!(s["date"], "2001-02-03");
    assert_eq!(s["timezone"], "UTC");
    assert_eq!(s["summary"]["total_count"], 0);
    assert_eq!(s["hourly_stats"].as_array().unwrap().len(), 24);

    seed_mixed(&srv, &t).await;
    // A few more, with odd cents, so the average ticket has to round.
    srv.charge_card(&t, "STD00000020", "0.01").await; // 0.850 → 0.01
    srv.charge_card(&t, "STD00000021", "10.01").await; // 0.800 → 8.01

    // Expected figures per day from the stored rows (a run across midnight UTC splits them).
    let rows: Vec<(String, String, i64, String)> = srv
        .read(|c| {
            let mut st = c.prepare(
                "SELECT substr(created_at, 1, 10), tx_type, final_amount_cents, card_id FROM transactions",
            )?;
            let rows = st
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await;
    assert_eq!(rows.len(), 9);
    let mut by_day: BTreeMap<String, Vec<(String, i64, String)>> = BTreeMap::new();
    for (day, ty, fin, card) in rows {
        by_day.entry(day).or_default().push((ty, fin, card));
    }
    let mut pay_total = 0;
    let mut ref_total = 0;
    for (day, txs) in &by_day {
        let r = srv
            .get(
                &format!("{API}/merchant/daily-summary?date={day}"),
                Some(&t),
            )
            .await;
        let s = r.assert_ok();
        let sum = &s["summary"];
        let pays: Vec<i64> = txs
            .iter()
            .filter(|t| t.0 == "payment")
            .map(|t| t.1)
            .collect();
        let refs: Vec<i64> = txs
            .iter()
            .filter(|t| t.0 == "refund")
            .map(|t| t.1)
            .collect();
        let cards: HashSet<&String> = txs
            .iter()
            .filter(|t| t.0 == "payment")
            .map(|t| &t.2)
            .collect();
        let pay_sum: i64 = pays.iter().sum();
        let ref_sum: i64 = refs.iter().sum();
        pay_total += pay_sum;
        ref_total += ref_sum;
        assert_eq!(sum["total_count"], txs.len() as i64);
        assert_eq!(sum["payment_count"], pays.len() as i64);
        assert_eq!(sum["refund_count"], refs.len() as i64);
        assert_eq!(cents(&sum["payment_amount"]), pay_sum);
        assert_eq!(amt(&sum["refund_amount"]), fmt_cents(ref_sum));
        assert_eq!(amt(&sum["net_amount"]), fmt_cents(pay_sum - ref_sum));
        assert_eq!(sum["unique_cards"], cards.len() as i64);
        if !pays.is_empty() {
            let n = pays.len() as i64;
            // Half away from zero.
            let avg = (2 * pay_sum + n) / (2 * n);
            assert_eq!(amt(&sum["average_ticket"]), fmt_cents(avg));
        }
        let hours = s["hourly_stats"].as_array().unwrap();
        let h_count: i64 = hours.iter().map(|h| h["count"].as_i64().unwrap()).sum();
        let h_amount: i64 = hours.iter().map(|h| cents_or_zero(&h["amount"])).sum();
        let h_refund: i64 = hours
            .iter()
            .map(|h| cents_or_zero(&h["refund_amount"]))
            .sum();
        assert_eq!(h_count, pays.len() as i64);
        assert_eq!(h_amount, pay_sum);
        assert_eq!(h_refund, ref_sum);
    }
    // The totals are the charges and refunds made: 10+20+28.50+40+5+0.01+8.01 and 10+5.
    assert_eq!(pay_total, 1000 + 2000 + 2850 + 4000 + 500 + 1 + 801);
    assert_eq!(ref_total, 1500);
    // Without a date: today in the store's zone (UTC here).
    let before = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let r = srv
        .get(&format!("{API}/merchant/daily-summary"), Some(&t))
        .await;
    let after = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let today = r.assert_ok()["date"].as_str().unwrap().to_string();
    assert!(today == before || today == after, "{today}");
}

fn cents_or_zero(v: &Value) -> i64 {
    let s = amt(v);
    if s == "0.00" {
        0
    } else {
        cents(v)
    }
}

// ---------------------------------------------------------------------------------
// The outbox
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_successful_charge_writes_exactly_one_outbox_row() {
    let srv = TestServer::start().await;
    let t = srv.owner_token().await;
    let mut made: Vec<(String, String, i64)> = Vec::new();
    for (card, amount) in [
        ("STD00000001", "10.00"),
        ("STD00000004", "12.30"),
        ("STD00000021", "10.01"),
        ("STD00000010", "3.33"),
    ] {
        let b = srv.charge_card(&t, card, amount).await;
        made.push((
            b["transaction"]["tx_id"].as_str().unwrap().to_string(),
            b["transaction"]["tx_no"].as_str().unwrap().to_string(),
            cents(&b["transaction"]["final_amount"]),
        ));
    }
    // Declines and replays write nothing.
    let qr = srv.qr("STD00000002").await;
    let body = json!({"qr_plain": qr, "amount": "1.00", "idempotency_key": "once"});
    let first = srv.charge_with(&t, &body, &[]).await;
    let b = first.assert_ok().clone();
    made.push((
        b["transaction"]["tx_id"].as_str().unwrap().to_string(),
        b["transaction"]["tx_no"].as_str().unwrap().to_string(),
        100,
    ));
    assert!(srv.charge_with(&t, &body, &[]).await.replayed());
    srv.charge(&t, &qr, "1.00")
        .await
        .assert_error(422, "QR_ALREADY_USED");
    let qr = srv.qr("STD00000001").await;
    srv.charge(&t, &qr, "999.00")
        .await
        .assert_error(422, "INSUFFICIENT_BALANCE");
    let qr = srv.qr("VCH00000024").await;
    srv.charge(&t, &qr, "1.00")
        .await
        .assert_error(422, "UNSUPPORTED_CARD_TYPE_FOR_PAYMENT");

    let rows: Vec<(String, String, String, i64, i64, String)> = srv
        .read(|c| {
            let mut st = c.prepare(
                "SELECT op_id, op_type, tx_id, delta_cents, points, payload FROM outbox ORDER BY seq",
            )?;
            let rows = st
                .query_map([], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await;
    assert_eq!(rows.len(), made.len());
    assert_eq!(
        srv.count("SELECT COUNT(*) FROM transactions WHERE tx_type = 'payment'")
            .await,
        made.len() as i64
    );
    let mut op_ids = HashSet::new();
    for ((op_id, op_type, tx_id, delta, _points, payload), (want_id, want_no, fin)) in
        rows.iter().zip(&made)
    {
        assert_eq!(op_type, "charge");
        assert_eq!(tx_id, want_id);
        assert_eq!(*delta, -fin);
        let u = uuid::Uuid::parse_str(op_id).unwrap();
        assert_eq!(u.get_version_num(), 7, "{op_id}");
        assert!(op_ids.insert(op_id.clone()));
        let p: Value = serde_json::from_str(payload).unwrap();
        assert_eq!(p["op_id"], op_id.as_str());
        assert_eq!(p["op_type"], "charge");
        assert_eq!(p["tx_id"], want_id.as_str());
        assert_eq!(p["tx_no"], want_no.as_str());
        assert_eq!(amt(&p["final_amount"]), fmt_cents(*fin));
        // The transaction ids are UUIDv7 too (kept when applied centrally).
        assert_eq!(uuid::Uuid::parse_str(tx_id).unwrap().get_version_num(), 7);
    }
    // op_ids are time-ordered like the outbox.
    let ids: Vec<&String> = rows.iter().map(|r| &r.0).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted);
}

// ---------------------------------------------------------------------------------
// Races, card states, sessions, external orders
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_charges_with_one_qr_charge_once() {
    let srv = TestServer::start().await;
    let t = srv.owner_token().await;
    let qr = srv.qr("STD00000002").await;
    let requests = (0..10)
        .map(|_| (json!({"qr_plain": qr, "amount": "1.00"}), Vec::new()))
        .collect();
    let results = concurrent_posts(&srv, &format!("{API}/merchant/charge"), &t, requests).await;
    assert_eq!(results.iter().filter(|r| r.status == 200).count(), 1);
    for r in results.iter().filter(|r| r.status != 200) {
        r.assert_error(422, "QR_ALREADY_USED");
    }
    assert_eq!(srv.count("SELECT COUNT(*) FROM transactions").await, 1);
    assert_eq!(srv.available("STD00000002").await, 75_000 - 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_charges_never_overdraw_a_card() {
    let srv = TestServer::start_with(|c| c.qr.single_use = false).await;
    let t = srv.owner_token().await;
    // STD00000001: 500.00 at full price; ten charges of 100.00 at once.
    let qr = srv.qr("STD00000001").await;
    let requests = (0..10)
        .map(|_| (json!({"qr_plain": qr, "amount": "100.00"}), Vec::new()))
        .collect();
    let results = concurrent_posts(&srv, &format!("{API}/merchant/charge"), &t, requests).await;
    let ok: Vec<&Resp> = results.iter().filter(|r| r.status == 200).collect();
    assert_eq!(ok.len(), 5, "{results:#?}");
    for r in results.iter().filter(|r| r.status != 200) {
        r.assert_error(422, "INSUFFICIENT_BALANCE");
    }
    let mut after: Vec<String> = ok
        .iter()
        .map(|r| amt(&r.json["customer_info"]["balance_after"]))
        .collect();
    after.sort();
    assert_eq!(after, vec!["0.00", "100.00", "200.00", "300.00", "400.00"]);
    assert_eq!(srv.available("STD00000001").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn expired_cards_cannot_pay_and_frozen_cards_can_be_refunded() {
    let srv = TestServer::start().await;
    let t = srv.owner_token().await;
    // A card whose expiry date has passed.
    srv.write(|c| {
        c.execute(
            "UPDATE cards SET expires_at_unix = strftime('%s','now') - 10 WHERE card_no = 'STD00000018'",
            [],
        )
    })
    .await;
    let qr = srv.qr("STD00000018").await;
    srv.charge(&t, &qr, "1.00")
        .await
        .assert_error(422, "CARD_EXPIRED");

    // Central refunds a frozen card's payment (contract §3.9 step 9); so does the edge.
    let pay = srv.charge_card(&t, "STD00000019", "10.00").await;
    let pay_no = pay["transaction"]["tx_no"].as_str().unwrap().to_string();
    srv.write(|c| {
        c.execute(
            "UPDATE cards SET status = 'inactive' WHERE card_no = 'STD00000019'",
            [],
        )
    })
    .await;
    let qr = srv.qr("STD00000019").await;
    srv.charge(&t, &qr, "1.00")
        .await
        .assert_error(422, "CARD_NOT_ACTIVE");
    // STD00000019 is level 2: 10.00 × 0.900 = 9.00 is what can be refunded.
    let fin = amt(&pay["transaction"]["final_amount"]);
    assert_eq!(fin, "9.00");
    srv.refund(&t, &pay_no, &fin).await.assert_ok();
    assert_eq!(srv.count("SELECT COUNT(*) FROM transactions").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sessions_follow_the_account_in_the_database() {
    let srv = TestServer::start().await;
    srv.create_user("mgr", "manager-password-1", Role::Manager)
        .await;
    let pair = srv.login_pair("mgr", "manager-password-1").await;
    let access = pair["access_token"].as_str().unwrap().to_string();
    let owner = srv.owner_token().await;
    let pay = srv.charge_card(&owner, "STD00000011", "10.00").await;
    let pay_no = pay["transaction"]["tx_no"].as_str().unwrap().to_string();

    // A role change applies to existing tokens at once.
    srv.write(|c| {
        c.execute(
            "UPDATE users SET role = 'cashier' WHERE username = 'mgr'",
            [],
        )
    })
    .await;
    // (a cashier refunds only with a manager's PIN)
    srv.refund(&access, &pay_no, "1.00")
        .await
        .assert_error(403, "APPROVAL_REQUIRED");
    let me = srv.get(&format!("{API}/auth/me"), Some(&access)).await;
    assert_eq!(me.assert_ok()["user"]["role"], "cashier");

    // A disabled account: its tokens stop working and it cannot sign in.
    srv.write(|c| c.execute("UPDATE users SET disabled = 1 WHERE username = 'mgr'", []))
        .await;
    srv.get(&format!("{API}/auth/me"), Some(&access))
        .await
        .assert_error(401, "INVALID_TOKEN");
    srv.login_resp("mgr", "manager-password-1")
        .await
        .assert_error(401, "INVALID_CREDENTIALS");
    srv.post(
        &format!("{API}/auth/refresh"),
        None,
        &json!({"refresh_token": pair["refresh_token"]}),
    )
    .await
    .assert_error(401, "INVALID_TOKEN");

    // An expired refresh token.
    let pair = srv
        .login_pair(&srv.owner.0.clone(), &srv.owner.1.clone())
        .await;
    srv.write(|c| {
        c.execute(
            "UPDATE refresh_tokens SET expires_unix = strftime('%s','now') - 1 WHERE used_at IS NULL AND revoked_at IS NULL",
            [],
        )
    })
    .await;
    srv.post(
        &format!("{API}/auth/refresh"),
        None,
        &json!({"refresh_token": pair["refresh_token"]}),
    )
    .await
    .assert_error(401, "TOKEN_EXPIRED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_external_order_is_charged_once() {
    let srv = TestServer::start().await;
    let t = srv.owner_token().await;
    let qr = srv.qr("STD00000011").await;
    let body = json!({"qr_plain": qr, "amount": "9.99", "external_order_id": "ORDER-1",
                      "tag": {"table": 7}, "idempotency_key": "ord-1"});
    let a = srv.charge_with(&t, &body, &[]).await;
    a.assert_ok();
    let tx_no = a.json["transaction"]["tx_no"].as_str().unwrap().to_string();
    // The same request retried: replayed.
    let b = srv.charge_with(&t, &body, &[]).await;
    assert!(b.replayed());
    assert_eq!(b.text, a.text);
    // The same order with a fresh QR and no key: a conflict naming the first charge.
    let qr2 = srv.qr("STD00000011").await;
    let d = srv
        .charge_with(
            &t,
            &json!({"qr_plain": qr2, "amount": "9.99", "external_order_id": "ORDER-1"}),
            &[],
        )
        .await
        .assert_error(409, "CONFLICT")
        .clone();
    assert_eq!(d["tx_no"], tx_no);
    assert_eq!(d["external_order_id"], "ORDER-1");
    // The tag and order are kept on the transaction.
    let r = srv.tx_detail(&t, &tx_no).await;
    let tx = &r.assert_ok()["transaction"];
    assert_eq!(tx["external_order_id"], "ORDER-1");
    assert_eq!(tx["tag"], json!({"table": 7}));
    assert_eq!(srv.count("SELECT COUNT(*) FROM transactions").await, 1);
}

#[tokio::test]
async fn one_address_flooding_the_server_is_slowed_with_429s_in_the_envelope() {
    let srv = TestServer::start_with(|c| {
        c.server.rate_limit_per_sec = 2;
        c.server.rate_limit_burst = 5;
    })
    .await;
    let mut codes = Vec::new();
    let mut refused = None;
    for _ in 0..20 {
        let res = srv
            .client
            .get(srv.url(&format!("{API}/health")))
            .send()
            .await
            .unwrap();
        codes.push(res.status().as_u16());
        if res.status() == 429 && refused.is_none() {
            refused = Some(res);
        }
    }
    let passed = codes.iter().filter(|c| **c == 200).count();
    assert!((5..=7).contains(&passed), "{codes:?}");
    let res = refused.expect("a 429");
    // Refused before any handler, but still with the hardening headers and a hint.
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    assert!(res.headers().contains_key("retry-after"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "TOO_MANY_REQUESTS", "{body}");
}

// ---------------------------------------------------------------------------------
// Head-office daemon API (signed, no staff sign-in)
// ---------------------------------------------------------------------------------

const DAEMON_SECRET: &str = "head-office-daemon-secret-0123456789abcdef";
const DAEMON_STATUS: &str = "/api/v1/daemon/status";
const DAEMON_SYNC: &str = "/api/v1/daemon/sync";

/// The signature as the README documents it, computed here with the HMAC crate directly
/// rather than with the server's own code: `ts \n METHOD \n path \n body`, lowercase hex.
fn daemon_sign(secret: &str, ts: &str, method: &str, path: &str, body: &[u8]) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{ts}\n{method}\n{path}\n").as_bytes());
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A request to the daemon API with exactly these headers (`None` = not sent).
async fn daemon_raw(
    srv: &TestServer,
    method: &str,
    path: &str,
    ts: Option<&str>,
    sign: Option<&str>,
    body: &[u8],
) -> Resp {
    let mut headers = Vec::new();
    if let Some(ts) = ts {
        headers.push(("x-ingest-ts".to_string(), ts.as_bytes().to_vec()));
    }
    if let Some(sign) = sign {
        headers.push(("x-ingest-sign".to_string(), sign.as_bytes().to_vec()));
    }
    support::server::raw_request(srv, method, path, &headers, Some(body.to_vec())).await
}

/// A request signed with the secret over exactly what is sent; returns the response
/// and the (ts, sign) pair, to replay. Each call signs with a later timestamp than the
/// one before (now, plus one second per earlier call, well inside the window), so two
/// calls for the same request within a second are two requests, not a replay.
async fn daemon_signed(
    srv: &TestServer,
    method: &str,
    path: &str,
    body: &[u8],
) -> (Resp, (String, String)) {
    static CALLS: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    assert!(call < 200, "daemon_signed would leave the window");
    let ts = (unix_now() + call).to_string();
    let signed_path = path.split('?').next().unwrap();
    let sign = daemon_sign(DAEMON_SECRET, &ts, method, signed_path, body);
    let r = daemon_raw(srv, method, path, Some(&ts), Some(&sign), body).await;
    (r, (ts, sign))
}

async fn daemon_server() -> TestServer {
    TestServer::start_with(|c| c.daemon.secret = Secret::new(DAEMON_SECRET)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn daemon_signed_status_reports_the_sync_state_and_sync_is_503_standalone() {
    let srv = daemon_server().await;
    let t = srv.owner_token().await;
    srv.charge_card(&t, "STD00000001", "12.30").await;

    let (r, _) = daemon_signed(&srv, "GET", DAEMON_STATUS, b"").await;
    let s = r.assert_ok();
    assert_eq!(s["site_code"], "DEMO");
    assert_eq!(s["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(s["mode"], "standalone-demo");
    assert_eq!(s["central_configured"], false);
    assert_eq!(s["queue_depth"], 1, "the charge waits in the outbox: {s}");
    assert!(s["oldest_pending_age_secs"].as_i64().unwrap() >= 0, "{s}");
    assert_eq!(amt(&s["unsynced_charges_amount"]), "12.30", "{s}");
    assert_eq!(s["open_exceptions"], 0);
    assert_eq!(s["push"]["state"], "ok");
    assert_eq!(s["pull"]["state"], "ok");
    assert!(s["last_push_ok_at"].is_null() && s["last_pull_ok_at"].is_null());
    assert!((s["server_time_unix"].as_i64().unwrap() - unix_now()).abs() <= 5);
    // The same figures as the console's sync status (one source).
    let console = srv.get(&format!("{API}/sync/status"), Some(&t)).await;
    let console = console.assert_ok();
    for key in [
        "mode",
        "queue_depth",
        "oldest_pending_at",
        "open_exceptions",
        "push",
        "pull",
    ] {
        assert_eq!(s[key], console[key], "{key}");
    }

    // The query string is not signed.
    let (r, _) = daemon_signed(&srv, "GET", &format!("{DAEMON_STATUS}?verbose=1"), b"").await;
    r.assert_ok();

    // Sync: signed and accepted, but there is no central to sync with (as /sync/now).
    let (r, _) = daemon_signed(&srv, "POST", DAEMON_SYNC, br#"{"reason":"fleet"}"#).await;
    r.assert_error(409, "NO_CENTRAL");
    let now = srv
        .post(&format!("{API}/sync/now"), Some(&t), &json!({}))
        .await;
    now.assert_error(409, "NO_CENTRAL");
    assert_eq!(r.json["error"]["message"], now.json["error"]["message"]);
    let (r, _) = daemon_signed(&srv, "POST", DAEMON_SYNC, b"").await;
    r.assert_error(409, "NO_CENTRAL");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn daemon_replayed_requests_are_refused() {
    let srv = daemon_server().await;
    let (first, (ts, sign)) = daemon_signed(&srv, "GET", DAEMON_STATUS, b"").await;
    first.assert_ok();
    daemon_raw(&srv, "GET", DAEMON_STATUS, Some(&ts), Some(&sign), b"")
        .await
        .assert_error(401, "DAEMON_SIGNATURE_REPLAYED");
    // Replays of a sync too, even though the first one got 409 (it was let in).
    let body = br#"{"n":1}"#;
    let (first, (ts, sign)) = daemon_signed(&srv, "POST", DAEMON_SYNC, body).await;
    first.assert_error(409, "NO_CENTRAL");
    daemon_raw(&srv, "POST", DAEMON_SYNC, Some(&ts), Some(&sign), body)
        .await
        .assert_error(401, "DAEMON_SIGNATURE_REPLAYED");
    // The same request signed afresh (another second, so another signature) passes.
    let later = (ts.parse::<i64>().unwrap() + 1).to_string();
    let sign = daemon_sign(DAEMON_SECRET, &later, "GET", DAEMON_STATUS, b"");
    daemon_raw(&srv, "GET", DAEMON_STATUS, Some(&later), Some(&sign), b"")
        .await
        .assert_ok();

    // One signature sent many times at once is let in once.
    // (An older timestamp than any above: another signature.)
    let ts = (unix_now() - 100).to_string();
    let sign = daemon_sign(DAEMON_SECRET, &ts, "GET", DAEMON_STATUS, b"");
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..12 {
        let req = srv
            .client
            .get(srv.url(DAEMON_STATUS))
            .header("x-ingest-ts", &ts)
            .header("x-ingest-sign", &sign);
        set.spawn(async move { req.send().await.unwrap().status().as_u16() });
    }
    let mut codes = Vec::new();
    while let Some(code) = set.join_next().await {
        codes.push(code.unwrap());
    }
    codes.sort_unstable();
    assert_eq!(codes, [&[200][..], &[401; 11][..]].concat(), "{codes:?}");
}

/// One bad daemon request: what is sent, and the 401 code it must get.
struct BadRequest {
    what: &'static str,
    method: &'static str,
    path: &'static str,
    ts: Option<String>,
    sign: Option<String>,
    body: Vec<u8>,
    code: &'static str,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn daemon_unsigned_malformed_stale_and_tampered_requests_get_401() {
    let srv = daemon_server().await;
    let now = unix_now();
    let ts = now.to_string();
    let body: &[u8] = br#"{"reason":"fleet"}"#;
    let good = daemon_sign(DAEMON_SECRET, &ts, "POST", DAEMON_SYNC, body);
    // A good signed sync, changed in one way per row.
    let bad = |what, code| BadRequest {
        what,
        method: "POST",
        path: DAEMON_SYNC,
        ts: Some(ts.clone()),
        sign: Some(good.clone()),
        body: body.to_vec(),
        code,
    };
    let signed_at = |at: i64| {
        let at = at.to_string();
        let sign = daemon_sign(DAEMON_SECRET, &at, "POST", DAEMON_SYNC, body);
        (Some(at), Some(sign))
    };
    let mut tampered = body.to_vec();
    tampered[3] ^= 1;
    let (old_ts, old_sign) = signed_at(now - 301);
    let (ahead_ts, ahead_sign) = signed_at(now + 301);
    let cases = vec![
        BadRequest {
            ts: None,
            sign: None,
            ..bad("unsigned", "DAEMON_SIGNATURE_MISSING")
        },
        BadRequest {
            method: "GET",
            path: DAEMON_STATUS,
            ts: None,
            sign: None,
            body: vec![],
            ..bad("unsigned GET", "DAEMON_SIGNATURE_MISSING")
        },
        BadRequest {
            ts: None,
            ..bad("no ts", "DAEMON_SIGNATURE_MISSING")
        },
        BadRequest {
            sign: None,
            ..bad("no sign", "DAEMON_SIGNATURE_MISSING")
        },
        BadRequest {
            ts: Some("yesterday".into()),
            ..bad("ts not a number", "DAEMON_SIGNATURE_MALFORMED")
        },
        BadRequest {
            sign: Some("x".repeat(64)),
            ..bad("sign not hex", "DAEMON_SIGNATURE_MALFORMED")
        },
        BadRequest {
            sign: Some(good.to_uppercase()),
            ..bad("sign in uppercase", "DAEMON_SIGNATURE_MALFORMED")
        },
        BadRequest {
            ts: old_ts,
            sign: old_sign,
            ..bad("ts 301 s old", "DAEMON_SIGNATURE_STALE")
        },
        BadRequest {
            ts: ahead_ts,
            sign: ahead_sign,
            ..bad("ts 301 s ahead", "DAEMON_SIGNATURE_STALE")
        },
        BadRequest {
            body: tampered,
            ..bad("body changed by one byte", "DAEMON_SIGNATURE_INVALID")
        },
        BadRequest {
            body: vec![],
            ..bad("body dropped", "DAEMON_SIGNATURE_INVALID")
        },
        BadRequest {
            ts: Some((now - 1).to_string()),
            ..bad("ts changed", "DAEMON_SIGNATURE_INVALID")
        },
        BadRequest {
            method: "GET",
            path: DAEMON_STATUS,
            sign: Some(daemon_sign(DAEMON_SECRET, &ts, "GET", DAEMON_SYNC, b"")),
            body: vec![],
            ..bad("signed for the other route", "DAEMON_SIGNATURE_INVALID")
        },
        BadRequest {
            method: "GET",
            path: DAEMON_STATUS,
            sign: Some(daemon_sign(DAEMON_SECRET, &ts, "POST", DAEMON_STATUS, b"")),
            body: vec![],
            ..bad("signed for another method", "DAEMON_SIGNATURE_INVALID")
        },
        BadRequest {
            sign: Some(daemon_sign(
                "another-site-daemon-secret-0123456789abcdef",
                &ts,
                "POST",
                DAEMON_SYNC,
                body,
            )),
            ..bad("another site's secret", "DAEMON_SIGNATURE_INVALID")
        },
    ];
    for case in cases {
        let what = case.what;
        let r = daemon_raw(
            &srv,
            case.method,
            case.path,
            case.ts.as_deref(),
            case.sign.as_deref(),
            &case.body,
        )
        .await;
        assert_eq!(
            (r.status.as_u16(), r.json["error"]["code"].as_str()),
            (401, Some(case.code)),
            "{what}: {}",
            r.text
        );
        r.assert_error(401, case.code);
        assert!(!r.text.contains(DAEMON_SECRET), "{what}");
        if case.code == "DAEMON_SIGNATURE_STALE" {
            let server_time = r.json["error"]["details"]["server_time_unix"]
                .as_i64()
                .unwrap();
            assert!((server_time - now).abs() <= 5, "{what}: {}", r.text);
        }
    }
    // None of those got in: the good signature is still unused.
    daemon_raw(&srv, "POST", DAEMON_SYNC, Some(&ts), Some(&good), body)
        .await
        .assert_error(409, "NO_CENTRAL");

    // A staff sign-in is no substitute for the signature.
    let t = srv.owner_token().await;
    srv.get(DAEMON_STATUS, Some(&t))
        .await
        .assert_error(401, "DAEMON_SIGNATURE_MISSING");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn daemon_api_is_404_without_a_secret() {
    let srv = TestServer::start().await;
    assert!(srv.cfg.daemon.secret.is_empty());
    for (method, path) in [("GET", DAEMON_STATUS), ("POST", DAEMON_SYNC)] {
        // Even correctly signed (with any secret), and unsigned alike.
        let (r, _) = daemon_signed(&srv, method, path, b"").await;
        r.assert_error(404, "NOT_FOUND");
        assert_ne!(r.json["error"]["message"], "No such route.");
        daemon_raw(&srv, method, path, None, None, b"")
            .await
            .assert_error(404, "NOT_FOUND");
    }
    // With a secret the same routes answer (401 unsigned), so the 404 is the switch.
    let on = daemon_server().await;
    daemon_raw(&on, "GET", DAEMON_STATUS, None, None, b"")
        .await
        .assert_error(401, "DAEMON_SIGNATURE_MISSING");
}

/// Every metric sample whose line contains all of `needles`, summed.
fn metric(text: &str, needles: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#') && needles.iter().all(|n| l.contains(n)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn daemon_verdicts_are_counted_in_metrics() {
    let srv = daemon_server().await;
    let scrape = || async { srv.get("/metrics", None).await.text };
    let counts = |text: &str| {
        let mut out = BTreeMap::new();
        out.insert(
            "accepted",
            metric(text, &["mps_edge_daemon_accepted_total"]),
        );
        for reason in ["missing", "malformed", "stale", "invalid", "replayed"] {
            let label = format!("reason=\"{reason}\"");
            out.insert(
                reason,
                metric(text, &["mps_edge_daemon_rejected_total", &label]),
            );
        }
        out
    };
    let before = counts(&scrape().await);

    let (r, (ts, sign)) = daemon_signed(&srv, "GET", DAEMON_STATUS, b"").await;
    r.assert_ok();
    daemon_raw(&srv, "GET", DAEMON_STATUS, Some(&ts), Some(&sign), b"")
        .await
        .assert_error(401, "DAEMON_SIGNATURE_REPLAYED");
    daemon_raw(&srv, "GET", DAEMON_STATUS, None, None, b"")
        .await
        .assert_error(401, "DAEMON_SIGNATURE_MISSING");
    daemon_raw(&srv, "GET", DAEMON_STATUS, Some("soon"), Some(&sign), b"")
        .await
        .assert_error(401, "DAEMON_SIGNATURE_MALFORMED");
    daemon_raw(&srv, "GET", DAEMON_STATUS, Some("1000"), Some(&sign), b"")
        .await
        .assert_error(401, "DAEMON_SIGNATURE_STALE");
    daemon_raw(&srv, "POST", DAEMON_SYNC, Some(&ts), Some(&sign), b"")
        .await
        .assert_error(401, "DAEMON_SIGNATURE_INVALID");

    let after = counts(&scrape().await);
    // The recorder is process-wide and other tests here use the daemon API at the same
    // time, so each count grows by at least what this test did.
    for (what, n) in [
        ("accepted", 1.0),
        ("replayed", 1.0),
        ("missing", 1.0),
        ("malformed", 1.0),
        ("stale", 1.0),
        ("invalid", 1.0),
    ] {
        assert!(
            after[what] - before[what] >= n,
            "{what}: {} → {}",
            before[what],
            after[what]
        );
    }
    // The metrics never show the secret or a signature.
    let text = scrape().await;
    assert!(!text.contains(DAEMON_SECRET) && !text.contains(&sign));
}

#[tokio::test]
async fn daemon_routes_are_under_the_per_address_rate_limit() {
    let srv = TestServer::start_with(|c| {
        c.daemon.secret = Secret::new(DAEMON_SECRET);
        c.server.rate_limit_per_sec = 2;
        c.server.rate_limit_burst = 3;
    })
    .await;
    let mut codes = Vec::new();
    for _ in 0..10 {
        codes.push(
            daemon_raw(&srv, "GET", DAEMON_STATUS, None, None, b"")
                .await
                .status
                .as_u16(),
        );
    }
    assert!(codes.contains(&401), "{codes:?}");
    assert!(codes.contains(&429), "{codes:?}");
}

// ---------------------------------------------------------------------------------
// Connections: slow heads, idle keep-alive, the connection cap, aborted bodies, /metrics
// ---------------------------------------------------------------------------------

use support::net::write_all;

/// Reads until the server closes the connection (EOF or reset); returns what it sent.
/// Panics if it stays open past `deadline` (generous: this is not a timing assertion).
async fn read_until_closed(s: &tokio::net::TcpStream, deadline: std::time::Duration) -> String {
    let closed = tokio::time::timeout(deadline, support::net::read_until_closed(s)).await;
    let Ok((got, _)) = closed else {
        panic!("the server kept the connection open");
    };
    String::from_utf8_lossy(&got).into_owned()
}

/// A metric's value summed over its label sets, from the loopback scrape. A client of
/// its own without a pool: these tests run with a 1 s header-read timeout, so a pooled
/// connection may be closed by the server just as it is reused.
async fn metric_sum(srv: &TestServer, name: &str, label: &str) -> f64 {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let text = client
        .get(srv.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with(name) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Issue 12 point 4: sockets that send half a request head are closed after
/// `header_read_timeout_secs` and counted, while /health and charges keep answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slow_header_flood_is_closed_and_counted_while_sales_go_on() {
    let srv = TestServer::start_with(|c| c.server.header_read_timeout_secs = 1).await;
    let token = srv.owner_token().await;
    let before = metric_sum(
        &srv,
        "mps_edge_http_connections_closed_total",
        "header_timeout",
    )
    .await;
    const FLOOD: usize = 300;
    let mut sockets = Vec::with_capacity(FLOOD);
    for _ in 0..FLOOD {
        let s = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
        write_all(&s, b"GET /health HTTP/1.1\r\nHost: edge\r\nX-Slow: ")
            .await
            .unwrap();
        sockets.push(s);
    }
    // During the flood: the API answers.
    let health = srv.get("/health", None).await;
    assert_eq!(health.assert_ok()["status"], "ok");
    let qr = srv.qr("STD00000001").await;
    srv.charge(&token, &qr, "1.00").await.assert_ok();
    // Every slow socket is closed by the server.
    let started = std::time::Instant::now();
    for s in &sockets {
        read_until_closed(s, std::time::Duration::from_secs(60)).await;
    }
    let closed_after = started.elapsed();
    let after = metric_sum(
        &srv,
        "mps_edge_http_connections_closed_total",
        "header_timeout",
    )
    .await;
    assert!(
        after - before >= FLOOD as f64,
        "{FLOOD} slow sockets, {} counted",
        after - before
    );
    println!("{FLOOD} slow-header sockets all closed {closed_after:?} after the last was opened (header_read_timeout_secs = 1)");
}

/// The same limit closes a keep-alive connection that has gone quiet after an answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed() {
    let srv = TestServer::start_with(|c| c.server.header_read_timeout_secs = 1).await;
    let s = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
    write_all(&s, b"GET /health HTTP/1.1\r\nHost: edge\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&s, std::time::Duration::from_secs(30)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// At `max_connections` the server stops accepting until a slot frees; a waiting client
/// is served once the idle ones are closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_connection_cap_holds_newcomers_until_a_slot_frees() {
    let srv = TestServer::start_with(|c| {
        c.server.header_read_timeout_secs = 1;
        c.server.max_connections = 16;
    })
    .await;
    let before = metric_sum(&srv, "mps_edge_http_connection_cap_reached_total", "").await;
    let mut idle = Vec::new();
    for _ in 0..16 {
        idle.push(tokio::net::TcpStream::connect(srv.addr).await.unwrap());
    }
    // A fresh client (the test client's pool may hold a connection already).
    let fresh = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .unwrap();
    let r = fresh.get(srv.url("/health")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(metric_sum(&srv, "mps_edge_http_connection_cap_reached_total", "").await > before);
    drop(idle);
}

/// A client that stops sending its body midway is counted as an aborted body, not as a
/// body over the limit (issue 12 point 9).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aborted_body_is_not_payload_too_large() {
    let srv = TestServer::start().await;
    let token = srv.owner_token().await;
    let before = metric_sum(&srv, "mps_edge_http_body_aborted_total", "").await;
    let s = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
    let head = format!(
        "POST /api/v1/merchant/charge HTTP/1.1\r\nHost: edge\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: 500\r\n\r\n{{\"qr_plain\":"
    );
    write_all(&s, head.as_bytes()).await.unwrap();
    // Half-close: the body ends 480 bytes early.
    let std = s.into_std().unwrap();
    std.shutdown(std::net::Shutdown::Write).unwrap();
    let s = tokio::net::TcpStream::from_std(std).unwrap();
    let answer = read_until_closed(&s, std::time::Duration::from_secs(30)).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("BODY_ABORTED"), "{answer}");
    assert!(metric_sum(&srv, "mps_edge_http_body_aborted_total", "").await > before);
    assert_eq!(srv.count("SELECT COUNT(*) FROM transactions").await, 0);
}

/// `/metrics` with a token: required from every address, loopback included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_with_a_token_need_it() {
    let srv = TestServer::start_with(|c| {
        c.metrics.token = Secret::new("scrape-token-0123456789");
    })
    .await;
    srv.get("/metrics", None)
        .await
        .assert_error(401, "NOT_AUTHENTICATED");
    srv.get("/metrics", Some("wrong-token-0123456789"))
        .await
        .assert_error(401, "NOT_AUTHENTICATED");
    let ok = srv.get("/metrics", Some("scrape-token-0123456789")).await;
    assert_eq!(ok.status, 200);
    assert!(ok.text.contains("mps_edge_uptime_seconds"), "{}", ok.text);
    // /ready: the status for anyone; loopback also gets the mode.
    assert_eq!(srv.get("/ready", None).await.json["mode"], "standalone");
}
