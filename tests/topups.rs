//! Counter top-ups (issue 14, item 4): value loaded onto a member's standard card at the
//! till, as central's `user_recharge_card` would (a `recharge` transaction, no points),
//! queued once for central, bounded by the store's top-up limits, shown on its receipt
//! and in shift reports. Every refusal writes nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use mps_edge::config::CashierTopups;
use mps_edge::domain::money::Money;
use mps_edge::domain::Role;
use reqwest::Method;
use serde_json::{json, Value};
use support::server::{cents, Resp, TestServer, API};

async fn topup(srv: &TestServer, token: &str, body: Value) -> Resp {
    srv.post(&format!("{API}/merchant/topup"), Some(token), &body)
        .await
}

async fn topup_keyed(srv: &TestServer, token: &str, body: Value, key: &str) -> Resp {
    srv.send(
        Method::POST,
        &format!("{API}/merchant/topup"),
        Some(token),
        &[("Idempotency-Key", key)],
        Some(&body),
    )
    .await
}

/// (recharge transactions, recharge outbox ops, 'topup' audit rows)
async fn written(srv: &TestServer) -> (i64, i64, i64) {
    (
        srv.count("SELECT COUNT(*) FROM transactions WHERE tx_type = 'recharge'")
            .await,
        srv.count("SELECT COUNT(*) FROM outbox WHERE op_type = 'recharge'")
            .await,
        srv.count("SELECT COUNT(*) FROM audit_log WHERE action = 'topup'")
            .await,
    )
}

fn money(s: &str) -> Money {
    s.parse::<Money>().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cashier_tops_up_a_card_and_it_is_queued_once() {
    let srv = TestServer::start().await;
    let cashier = srv.cashier_token().await;
    let owner = srv.owner_token().await;
    let before = srv.available("STD00000005").await;

    let r = topup_keyed(
        &srv,
        &cashier,
        json!({"card_no": "STD00000005", "amount": "500.00"}),
        "tu-1",
    )
    .await;
    let body = r.assert_ok().clone();
    assert!(!r.replayed());
    let t = &body["topup"];
    let tx_no = t["tx_no"].as_str().unwrap().to_string();
    assert!(tx_no.starts_with("RCG-"), "{tx_no}");
    assert_eq!(cents(&t["amount"]), 50_000);
    assert_eq!(t["payment_method"], "cash", "cash unless told");
    assert_eq!(t["sync_state"], "pending");
    assert!(t["approved_by"].is_null());
    assert_eq!(
        t["receipt_url"],
        format!("/api/v1/transactions/{tx_no}/receipt")
    );
    assert_eq!(body["card"]["card_no"], "STD00000005");
    assert_eq!(cents(&body["card"]["balance_after"]), before + 50_000);
    assert_eq!(srv.available("STD00000005").await, before + 50_000);
    assert_eq!(written(&srv).await, (1, 1, 1));

    // the transaction and the op, as central's recharge writes them
    let (tx_type, reason, method, discount, points, raw, fin): (
        String,
        String,
        String,
        i64,
        i64,
        i64,
        i64,
    ) = srv
        .read(|c| {
            c.query_row(
                "SELECT tx_type, reason, payment_method, discount_milli, points_earned, raw_amount_cents,
                        final_amount_cents FROM transactions WHERE tx_type = 'recharge'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)),
            )
        })
        .await;
    assert_eq!(
        (tx_type.as_str(), reason.as_str(), method.as_str()),
        ("recharge", "recharge", "cash")
    );
    assert_eq!((discount, points, raw, fin), (1000, 0, 50_000, 50_000));
    let (delta, payload): (i64, String) = srv
        .read(|c| {
            c.query_row(
                "SELECT delta_cents, payload FROM outbox WHERE op_type = 'recharge'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
        })
        .await;
    assert_eq!(delta, 50_000);
    let op: Value = serde_json::from_str(&payload).unwrap();
    assert_eq!(op["op_type"], "recharge");
    assert_eq!(op["tx_no"], tx_no.as_str());
    assert_eq!(op["final_amount"], "500.00");
    assert_eq!(op["raw_amount"], "500.00");
    assert_eq!(op["discount"], "1.000");
    assert_eq!(op["points_earned"], 0);
    assert_eq!(op["payment_method"], "cash");
    assert_eq!(op["operator"], "cashier1");

    // a retry with the key gets the first answer and writes nothing more
    let again = topup_keyed(
        &srv,
        &cashier,
        json!({"card_no": "STD00000005", "amount": "500.00"}),
        "tu-1",
    )
    .await;
    assert!(again.replayed());
    assert_eq!(again.assert_ok()["topup"]["tx_no"], tx_no.as_str());
    topup_keyed(
        &srv,
        &cashier,
        json!({"card_no": "STD00000005", "amount": "501.00"}),
        "tu-1",
    )
    .await
    .assert_error(409, "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(written(&srv).await, (1, 1, 1));

    // the member can spend it at once: more than the card held before
    let paid = srv
        .charge_card(&owner, "STD00000005", &fmt(before + 10_000))
        .await;
    let debit = cents(&paid["transaction"]["final_amount"]);
    assert!(debit > before, "{paid}");
    assert_eq!(
        cents(&paid["customer_info"]["balance_after"]),
        before + 50_000 - debit
    );

    // its receipt, in both languages
    let r = srv
        .get(
            &format!("{API}/transactions/{tx_no}/receipt?format=json"),
            Some(&cashier),
        )
        .await;
    let receipt = r.assert_ok();
    assert_eq!(receipt["tx_type"], "recharge");
    assert_eq!(receipt["payment_method"], "cash");
    assert_eq!(cents(&receipt["final_amount"]), 50_000);
    assert!(receipt["pending_sync"].as_bool().unwrap());
    for (lang, title) in [("en", "TOP-UP RECEIPT"), ("zh-Hant", "儲值收據")] {
        let r = srv
            .get(
                &format!("{API}/transactions/{tx_no}/receipt?format=text&lang={lang}"),
                Some(&cashier),
            )
            .await;
        assert_eq!(r.status, 200);
        assert!(r.text.contains(title), "{}", r.text);
    }

    // a top-up is not a payment: it cannot be refunded, as at central
    srv.refund(&owner, &tx_no, "1.00")
        .await
        .assert_error(404, "ORIGINAL_TX_NOT_FOUND");

    // the list finds it by type; "sales" (what a settlement covers) leaves it out
    let list = |ty: &'static str| {
        let srv = &srv;
        let owner = owner.clone();
        async move {
            let r = srv
                .get(
                    &format!("{API}/merchant/transactions?type={ty}"),
                    Some(&owner),
                )
                .await;
            r.assert_ok()["transactions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["tx_type"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(list("recharge").await, vec!["recharge"]);
    let all = srv
        .get(&format!("{API}/merchant/transactions"), Some(&owner))
        .await;
    let totals = &all.assert_ok()["totals"];
    assert_eq!(
        (totals["count"].as_i64(), totals["topup_count"].as_i64()),
        (Some(2), Some(1))
    );
    assert_eq!(cents(&totals["topup_amount"]), 50_000);
    assert_eq!(
        cents(&totals["net_amount"]),
        cents(&totals["payment_amount"]),
        "a top-up is not in the sales net"
    );
    assert_eq!(list("sales").await, vec!["payment"]);
    // the day's sales figures do not count it
    let day = srv
        .get(&format!("{API}/merchant/daily-summary"), Some(&owner))
        .await;
    let day = day.assert_ok();
    assert_eq!(day["summary"]["refund_count"], 0, "{day}");
    assert_eq!(day["summary"]["total_count"], 1, "{day}");
}

fn fmt(c: i64) -> String {
    support::server::fmt_cents(c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refusals_mirror_central_and_write_nothing() {
    let srv = TestServer::start_with(|c| {
        c.limits.max_topup_amount = money("1000.00");
    })
    .await;
    let cashier = srv.cashier_token().await;
    let ok = json!({"card_no": "STD00000006", "amount": "10.00"});
    for (body, status, code) in [
        (
            json!({"card_no": "STD00000099", "amount": "10.00"}),
            404,
            "CARD_NOT_FOUND",
        ),
        (
            json!({"card_no": "STD00000023", "amount": "10.00"}),
            422,
            "CARD_NOT_ACTIVE",
        ),
        (
            json!({"card_no": "COR00000022", "amount": "10.00"}),
            422,
            "UNSUPPORTED_CARD_TYPE_FOR_RECHARGE",
        ),
        (
            json!({"card_no": "VCH00000024", "amount": "10.00"}),
            422,
            "UNSUPPORTED_CARD_TYPE_FOR_RECHARGE",
        ),
        (
            json!({"card_no": "STD00000006", "amount": "1000.01"}),
            422,
            "OFFLINE_LIMIT_EXCEEDED",
        ),
        (
            json!({"card_no": "STD00000006", "amount": "0"}),
            400,
            "INVALID_RECHARGE_AMOUNT",
        ),
        (
            json!({"card_no": "STD00000006", "amount": "0.00"}),
            400,
            "INVALID_RECHARGE_AMOUNT",
        ),
        (
            json!({"card_no": "STD00000006", "amount": "-5"}),
            400,
            "INVALID_RECHARGE_AMOUNT",
        ),
        (
            json!({"card_no": "STD00000006", "amount": "1.234"}),
            400,
            "INVALID_AMOUNT",
        ),
        (
            json!({"card_no": "STD00000006", "amount": "abc"}),
            400,
            "INVALID_AMOUNT",
        ),
        (
            json!({"card_no": "STD00000006", "amount": "10.00", "payment_method": "balance"}),
            400,
            "VALIDATION_ERROR",
        ),
        (
            json!({"card_no": "STD00000006", "amount": "10.00", "payment_method": "bank"}),
            400,
            "VALIDATION_ERROR",
        ),
        (
            json!({"card_no": "", "amount": "10.00"}),
            400,
            "VALIDATION_ERROR",
        ),
        (
            json!({"card_no": "STD 06", "amount": "10.00"}),
            400,
            "VALIDATION_ERROR",
        ),
        (json!({"amount": "10.00"}), 400, "INVALID_JSON"),
        (json!({"card_no": "STD00000006"}), 400, "INVALID_JSON"),
        (
            json!({"card_no": "STD00000006", "amount": "10.00", "points": 5}),
            400,
            "INVALID_JSON",
        ),
    ] {
        let r = topup(&srv, &cashier, body.clone()).await;
        let code_seen = r.json["error"]["code"].as_str().unwrap_or("").to_string();
        assert_eq!(
            (r.status.as_u16(), code_seen.as_str()),
            (status, code),
            "{body}"
        );
        assert_eq!(written(&srv).await, (0, 0, 0), "{body}");
    }
    // the limit names itself
    let r = topup(
        &srv,
        &cashier,
        json!({"card_no": "STD00000006", "amount": "1000.01"}),
    )
    .await;
    let d = r.assert_error(422, "OFFLINE_LIMIT_EXCEEDED");
    assert_eq!(d["limit"], "per_topup");
    assert_eq!(d["limit_amount"], "1000.00");
    // and the same card is fine with a good request
    topup(&srv, &cashier, ok).await.assert_ok();
    assert_eq!(written(&srv).await, (1, 1, 1));
    // without a token: nothing
    srv.post(
        &format!("{API}/merchant/topup"),
        None,
        &json!({"card_no": "STD00000006", "amount": "10.00"}),
    )
    .await
    .assert_error(401, "NOT_AUTHENTICATED");
    assert_eq!(written(&srv).await, (1, 1, 1));
}

/// What central has not confirmed is bounded per card and for the site, and what one
/// person takes in per business day, which a new shift does not reset.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_limits_bound_each_card_each_shift_and_the_site() {
    let srv = TestServer::start_with(|c| {
        c.limits.max_topup_amount = money("100.00");
        c.limits.max_card_unsynced_topup = money("150.00");
        c.limits.max_shift_topup = money("250.00");
        c.limits.max_site_unsynced_topup = money("300.00");
    })
    .await;
    let cashier = srv.cashier_token().await;
    srv.create_user("cashier2", "cashier-password-2", Role::Cashier)
        .await;
    let other = srv.login("cashier2", "cashier-password-2").await;
    let go = |t: &str, card: &str, amount: &str| {
        let (srv, t, body) = (
            &srv,
            t.to_string(),
            json!({"card_no": card, "amount": amount}),
        );
        async move { topup(srv, &t, body).await }
    };
    let limit_of = |r: &Resp| r.assert_error(422, "OFFLINE_LIMIT_EXCEEDED")["limit"].clone();

    go(&cashier, "STD00000007", "100.00").await.assert_ok();
    go(&cashier, "STD00000007", "50.00").await.assert_ok();
    let r = go(&cashier, "STD00000007", "0.01").await;
    assert_eq!(limit_of(&r), "per_card_unsynced_topup");
    go(&cashier, "STD00000008", "100.00").await.assert_ok();
    // cashier1 has taken 250.00 today
    let r = go(&cashier, "STD00000009", "0.01").await;
    assert_eq!(limit_of(&r), "per_shift_topup");
    // another person still may, up to the site's 300.00
    go(&other, "STD00000009", "50.00").await.assert_ok();
    let r = go(&other, "STD00000009", "0.01").await;
    assert_eq!(limit_of(&r), "site_unsynced_topup");
    assert_eq!(written(&srv).await.0, 4);

    // central confirms everything: the card and site totals start again, the person's
    // day does not
    srv.write(|c| {
        c.execute(
            "UPDATE outbox SET state = 'applied' WHERE op_type = 'recharge'",
            [],
        )
    })
    .await;
    go(&cashier, "STD00000007", "100.00")
        .await
        .assert_error(422, "OFFLINE_LIMIT_EXCEEDED");
    go(&other, "STD00000007", "100.00").await.assert_ok();
    // closing a shift and opening another does not start the person's count again
    let shift = srv
        .post(&format!("{API}/shifts/open"), Some(&cashier), &json!({}))
        .await;
    let id = shift.assert_ok()["shift_id"].as_str().unwrap().to_string();
    go(&cashier, "STD00000008", "100.00")
        .await
        .assert_error(422, "OFFLINE_LIMIT_EXCEEDED");
    srv.post(
        &format!("{API}/shifts/{id}/close"),
        Some(&cashier),
        &json!({}),
    )
    .await
    .assert_ok();
    srv.post(&format!("{API}/shifts/open"), Some(&cashier), &json!({}))
        .await
        .assert_ok();
    let r = go(&cashier, "STD00000008", "0.01").await;
    assert_eq!(limit_of(&r), "per_shift_topup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_store_may_ask_a_managers_pin_for_a_cashiers_topup_or_forbid_it() {
    let srv = TestServer::start_with(|c| c.approval.cashier_topups = CashierTopups::Approval).await;
    let boss = srv
        .manager_with_pin("boss", "boss-password-1", "2468")
        .await;
    let cashier = srv.cashier_token().await;
    let body = json!({"card_no": "STD00000010", "amount": "20.00", "payment_method": "wechat"});

    let d = topup(&srv, &cashier, body.clone())
        .await
        .assert_error(403, "APPROVAL_REQUIRED")
        .clone();
    assert_eq!(d["reason"], "cashier_topup");
    let mut wrong = body.clone();
    wrong["approval"] = json!({"username": "boss", "pin": "1111"});
    topup(&srv, &cashier, wrong)
        .await
        .assert_error(403, "APPROVAL_INVALID");
    assert_eq!(written(&srv).await, (0, 0, 0));

    let mut approved = body.clone();
    approved["approval"] = json!({"username": "boss", "pin": "2468"});
    let r = topup(&srv, &cashier, approved).await;
    assert_eq!(r.assert_ok()["topup"]["approved_by"], "boss");
    assert_eq!(r.json["topup"]["payment_method"], "wechat");
    let (actor, approver): (String, String) = srv
        .read(|c| {
            c.query_row(
                "SELECT actor, json_extract(details, '$.approved_by') FROM audit_log WHERE action = 'topup'",
                [],
                |r| Ok((r.get(0)?, r.get::<_, Option<String>>(1)?.unwrap_or_default())),
            )
        })
        .await;
    assert_eq!(actor, "cashier1");
    assert_eq!(approver, "boss");
    // a manager needs nobody
    topup(&srv, &boss, body).await.assert_ok();

    let never = TestServer::start_with(|c| c.approval.cashier_topups = CashierTopups::Never).await;
    let cashier = never.cashier_token().await;
    let d = topup(
        &never,
        &cashier,
        json!({"card_no": "STD00000010", "amount": "20.00"}),
    )
    .await
    .assert_error(403, "PERMISSION_DENIED")
    .clone();
    assert_eq!(d["reason"], "cashier_topups_off");
    assert_eq!(written(&never).await, (0, 0, 0));
    let owner = never.owner_token().await;
    topup(
        &never,
        &owner,
        json!({"card_no": "STD00000010", "amount": "20.00"}),
    )
    .await
    .assert_ok();
}

/// The shift report counts top-ups apart from sales, and the cash the drawer should
/// hold (cash top-ups only).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shift_reports_show_topups_and_the_cash_expected() {
    let srv = TestServer::start().await;
    let cashier = srv.cashier_token().await;
    srv.post(&format!("{API}/shifts/open"), Some(&cashier), &json!({}))
        .await
        .assert_ok();
    topup(
        &srv,
        &cashier,
        json!({"card_no": "STD00000012", "amount": "300.00"}),
    )
    .await
    .assert_ok();
    topup(
        &srv,
        &cashier,
        json!({"card_no": "STD00000012", "amount": "200.00", "payment_method": "alipay"}),
    )
    .await
    .assert_ok();
    srv.charge_card(&cashier, "STD00000012", "10.00").await;

    let x = srv
        .get(&format!("{API}/shifts/current"), Some(&cashier))
        .await;
    let f = &x.assert_ok()["figures"];
    assert_eq!(f["topups"]["count"], 2);
    assert_eq!(cents(&f["topups"]["amount"]), 50_000);
    assert_eq!(cents(&f["cash_expected"]), 30_000);
    assert_eq!(f["payments"]["count"], 1);
    assert_eq!(cents(&f["net_amount"]), 1_000, "top-ups are not sales");
    assert_eq!(f["unsynced"]["count"], 3);
    let id = x.json["shift_id"].as_str().unwrap().to_string();

    let csv = srv
        .get(
            &format!("{API}/reports/shift/{id}?format=csv"),
            Some(&cashier),
        )
        .await;
    assert_eq!(csv.status, 200);
    let mut lines = csv.text.trim_start_matches('\u{feff}').lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let row: Vec<String> = lines
        .next()
        .unwrap()
        .split(',')
        .map(|c| c.trim_matches('"').to_string())
        .collect();
    let cell = |name: &str| row[header.iter().position(|h| *h == name).unwrap()].clone();
    assert_eq!(cell("topup_count"), "2");
    assert_eq!(cell("topup_amount"), "500.00");
    assert_eq!(cell("cash_expected"), "300.00");

    for (lang, label) in [("en", "Cash expected"), ("zh-Hant", "應有現金")] {
        let text = srv
            .get(
                &format!("{API}/reports/shift/{id}?format=text&lang={lang}"),
                Some(&cashier),
            )
            .await;
        assert!(
            text.text
                .lines()
                .any(|l| l.starts_with(label) && l.ends_with("300.00")),
            "{}",
            text.text
        );
    }
}

/// A shift that began before today's business day (overnight) counts the person's
/// top-ups from its own start; without one, yesterday's top-ups do not count.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_overnight_shift_counts_from_its_start() {
    let srv = TestServer::start_with(|c| {
        c.limits.max_topup_amount = money("100.00");
        c.limits.max_shift_topup = money("150.00");
    })
    .await;
    let cashier = srv.cashier_token().await;
    let go = |amount: &str| {
        let (srv, t, body) = (
            &srv,
            cashier.clone(),
            json!({"card_no": "STD00000013", "amount": amount}),
        );
        async move { topup(srv, &t, body).await }
    };
    go("100.00").await.assert_ok();
    // that top-up was taken "yesterday": today's count is empty again
    srv.write(|c| {
        c.execute(
            "UPDATE transactions SET created_at = '2000-01-01T23:00:00.000000Z' WHERE tx_type = 'recharge'",
            [],
        )
    })
    .await;
    go("100.00").await.assert_ok();
    // a shift open since before it: both count
    srv.post(&format!("{API}/shifts/open"), Some(&cashier), &json!({}))
        .await
        .assert_ok();
    srv.write(|c| {
        c.execute(
            "UPDATE shifts SET opened_at = '2000-01-01T20:00:00.000000Z' WHERE closed_at IS NULL",
            [],
        )
    })
    .await;
    let r = go("0.01").await;
    let d = r.assert_error(422, "OFFLINE_LIMIT_EXCEEDED");
    assert_eq!(d["limit"], "per_shift_topup");
    assert_eq!(d["attempted_amount"], "200.01");
}
