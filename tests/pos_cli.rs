//! `mps-edge pos` (issue 14, item 7): the real binary against a real server on
//! 127.0.0.1:0: sign in (session file 0600), charge, validate, tx, refund, receipt, a
//! shift from open to close, counter top-ups (with a manager's PIN where the store asks
//! one); `--json` for scripts; exit codes by kind of failure.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::process::Command;

use mps_edge::config::CashierTopups;
use mps_edge::domain::Role;
use serde_json::Value;
use support::server::TestServer;

struct Run {
    code: i32,
    out: String,
    err: String,
}

fn pos(srv_url: &str, session: &Path, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_mps-edge"))
        .args(["pos", "--url", srv_url, "--session"])
        .arg(session)
        .args(args)
        .env_remove("MPS_POS_PASSWORD")
        .output()
        .expect("run mps-edge pos");
    Run {
        code: out.status.code().unwrap_or(-1),
        out: String::from_utf8_lossy(&out.stdout).into_owned(),
        err: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn json(r: &Run) -> Value {
    serde_json::from_str(r.out.trim()).unwrap_or_else(|_| panic!("not JSON: {} / {}", r.out, r.err))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_support_session_from_login_to_the_end_of_the_shift() {
    let srv = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let session = dir.path().join("pos").join("session.json");
    let (user, password) = srv.owner.clone();
    let url = srv.base.clone();
    let qr = srv.qr("STD00000002").await;
    let qr2 = srv.qr("STD00000003").await;

    let steps = tokio::task::spawn_blocking(move || {
        // not signed in yet: exit 3
        let r = pos(&url, &session, &["tx", "PAY-X-1"]);
        assert_eq!(r.code, 3, "{} {}", r.out, r.err);
        // a wrong password: 3, and no session file
        let r = pos(
            &url,
            &session,
            &["login", &user, "--password", "wrong-password"],
        );
        assert_eq!(r.code, 3, "{}", r.err);
        assert!(r.err.contains("INVALID_CREDENTIALS"), "{}", r.err);
        assert!(!session.exists());

        let r = pos(
            &url,
            &session,
            &["--json", "login", &user, "--password", &password],
        );
        assert_eq!(r.code, 0, "{}", r.err);
        assert_eq!(json(&r)["signed_in"], user.as_str());
        assert!(
            !r.out.contains("access_token") && !r.out.contains("eyJ"),
            "tokens never printed: {}",
            r.out
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&session).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "the session file is the owner's alone");
        }

        let r = pos(&url, &session, &["shift", "open"]);
        assert_eq!(r.code, 0, "{}", r.err);
        assert!(r.out.contains("(X)"), "{}", r.out);

        let r = pos(&url, &session, &["validate", "--qr", &qr]);
        assert_eq!(r.code, 0, "{}", r.err);
        assert!(r.out.starts_with("card STD00000002"), "{}", r.out);

        // a sentence by default; --json gives the edge's answer
        let r = pos(
            &url,
            &session,
            &[
                "charge",
                "--qr",
                &qr,
                "--amount",
                "12.50",
                "--key",
                "cli-key-1",
            ],
        );
        assert_eq!(r.code, 0, "{}", r.err);
        assert!(
            r.out.contains("paid 12.50") && r.out.contains("[pending sync]"),
            "{}",
            r.out
        );
        let tx_no = r.out.split_whitespace().next().unwrap().to_string();
        // the same key again: the same sale, not a second one
        let r = pos(
            &url,
            &session,
            &[
                "--json",
                "charge",
                "--qr",
                &qr,
                "--amount",
                "12.50",
                "--key",
                "cli-key-1",
            ],
        );
        assert_eq!(r.code, 0, "{}", r.err);
        assert_eq!(json(&r)["transaction"]["tx_no"], tx_no.as_str());

        let r = pos(
            &url,
            &session,
            &[
                "--json",
                "refund",
                &tx_no,
                "--amount",
                "2.50",
                "--reason",
                "scratched",
            ],
        );
        assert_eq!(r.code, 0, "{}", r.err);
        assert_eq!(json(&r)["remaining_refundable"].to_string(), "10.00");
        let r = pos(&url, &session, &["tx", &tx_no]);
        assert_eq!(r.code, 0, "{}", r.err);
        assert!(r.out.contains("refund REF"), "{}", r.out);
        let r = pos(
            &url,
            &session,
            &["receipt", &tx_no, "--width", "48", "--lang", "en"],
        );
        assert_eq!(r.code, 0, "{}", r.err);
        assert!(r.out.contains("PAYMENT RECEIPT"), "{}", r.out);

        // refusals by kind
        let r = pos(&url, &session, &["refund", &tx_no, "--amount", "99.00"]);
        assert_eq!(r.code, 5, "over the remaining amount: {}", r.err);
        assert!(r.err.contains("REFUND_EXCEEDS_REMAINING"), "{}", r.err);
        let r = pos(
            &url,
            &session,
            &["charge", "--qr", &qr2, "--amount", "1.234"],
        );
        assert_eq!(r.code, 2, "a bad amount: {}", r.err);
        let r = pos(&url, &session, &["tx", "PAY-NOPE-1"]);
        assert_eq!(r.code, 4, "{}", r.err);
        let r = pos(
            &url,
            &session,
            &["charge", "--qr", &qr2, "--amount", "100000.00"],
        );
        assert_eq!(r.code, 5, "insufficient balance: {}", r.err);

        let r = pos(&url, &session, &["shift", "close"]);
        assert_eq!(r.code, 0, "{}", r.err);
        assert!(
            r.out.contains("(Z)") && r.out.contains("payments 1"),
            "{}",
            r.out
        );
        let shift_no = r.out.split_whitespace().next().unwrap().to_string();
        let r = pos(
            &url,
            &session,
            &["shift", "report", &shift_no, "--format", "csv"],
        );
        assert_eq!(r.code, 0, "{}", r.err);
        assert!(r.out.contains(&format!("Z,{shift_no},")), "{}", r.out);
        let r = pos(&url, &session, &["shift", "close", &shift_no]);
        assert_eq!(r.code, 5, "already closed: {}", r.err);

        let r = pos(&url, &session, &["logout"]);
        assert_eq!(r.code, 0, "{}", r.err);
        assert!(!session.exists());
        let r = pos(&url, &session, &["tx", &tx_no]);
        assert_eq!(r.code, 3, "signed out: {}", r.err);
        // an edge that is not there: 7
        let r = pos(
            "http://127.0.0.1:9",
            &session,
            &["login", "x", "--password", "y"],
        );
        assert_eq!(r.code, 7, "{}", r.err);
    });
    steps.await.unwrap();
}

/// `pos topup`: a sentence with the new balance and how to print the receipt, a retry
/// with the same key loads once, `--json`, refusals by kind (a corporate card 5, an
/// unknown card 4, a bad amount or method 2), and a retry hint with the key when the
/// edge gives no answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn counter_top_ups_from_the_command_line() {
    let srv = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let session = dir.path().join("session.json");
    let (user, password) = srv.owner.clone();
    let url = srv.base.clone();
    let before = srv.available("STD00000012").await;

    let (session2, url2) = (session.clone(), url.clone());
    let (tx_no, wallet_tx) = tokio::task::spawn_blocking(move || {
        let (session, url) = (session2, url2);
        // not signed in: 3, nothing sent
        let r = pos(&url, &session, &["topup", "STD00000012", "500.00"]);
        assert_eq!(r.code, 3, "{} {}", r.out, r.err);
        let r = pos(&url, &session, &["login", &user, "--password", &password]);
        assert_eq!(r.code, 0, "{}", r.err);

        let r = pos(
            &url,
            &session,
            &["topup", "STD00000012", "500.00", "--key", "cli-topup-1"],
        );
        assert_eq!(r.code, 0, "{}", r.err);
        let tx_no = r.out.split_whitespace().next().unwrap().to_string();
        assert!(tx_no.starts_with("RCG-"), "{}", r.out);
        assert!(
            r.out
                .contains("topped up 500.00 (cash) onto card STD00000012, balance ")
                && r.out.contains("[pending sync]"),
            "{}",
            r.out
        );
        assert!(
            r.out
                .contains(&format!("receipt: mps-edge pos receipt {tx_no}")),
            "{}",
            r.out
        );
        // the same key again (a retry): the same top-up, not a second one
        let r = pos(
            &url,
            &session,
            &[
                "--json",
                "topup",
                "STD00000012",
                "500.00",
                "--key",
                "cli-topup-1",
            ],
        );
        assert_eq!(r.code, 0, "{}", r.err);
        assert_eq!(json(&r)["topup"]["tx_no"], tx_no.as_str());
        // the key of another top-up: refused, nothing loaded
        let r = pos(
            &url,
            &session,
            &["topup", "STD00000012", "501.00", "--key", "cli-topup-1"],
        );
        assert_eq!(r.code, 5, "{}", r.err);
        assert!(r.err.contains("IDEMPOTENCY_KEY_REUSED"), "{}", r.err);

        // --json: the edge's answer as it came
        let r = pos(
            &url,
            &session,
            &["--json", "topup", "STD00000012", "20", "--method", "wechat"],
        );
        assert_eq!(r.code, 0, "{}", r.err);
        let v = json(&r);
        assert_eq!(v["topup"]["payment_method"], "wechat");
        assert_eq!(v["topup"]["amount"].to_string(), "20.00");
        assert_eq!(v["card"]["card_no"], "STD00000012");
        let wallet_tx = v["topup"]["tx_no"].as_str().unwrap().to_string();
        let r = pos(&url, &session, &["receipt", &wallet_tx, "--lang", "en"]);
        assert_eq!(r.code, 0, "{}", r.err);
        assert!(
            r.out.contains("TOP-UP RECEIPT") && r.out.contains("WeChat Pay"),
            "{}",
            r.out
        );
        let r = pos(&url, &session, &["tx", &tx_no]);
        assert_eq!(r.code, 0, "{}", r.err);
        assert!(
            r.out
                .contains(&format!("{tx_no} recharge completed 500.00")),
            "{}",
            r.out
        );

        // refusals by kind
        let r = pos(&url, &session, &["topup", "COR00000022", "10.00"]);
        assert_eq!(r.code, 5, "a corporate card: {}", r.err);
        assert!(
            r.err.contains("UNSUPPORTED_CARD_TYPE_FOR_RECHARGE"),
            "{}",
            r.err
        );
        let r = pos(&url, &session, &["--json", "topup", "COR00000022", "10.00"]);
        assert_eq!(r.code, 5, "{}", r.err);
        assert_eq!(
            json(&r)["error"]["code"],
            "UNSUPPORTED_CARD_TYPE_FOR_RECHARGE",
            "--json prints the error envelope"
        );
        let r = pos(&url, &session, &["topup", "STD00000099", "10.00"]);
        assert_eq!(r.code, 4, "an unknown card: {}", r.err);
        assert!(r.err.contains("CARD_NOT_FOUND"), "{}", r.err);
        let r = pos(&url, &session, &["topup", "STD00000012", "1.234"]);
        assert_eq!(r.code, 2, "a bad amount: {}", r.err);
        assert!(r.err.contains("INVALID_AMOUNT"), "{}", r.err);
        for zero in ["0", "-5"] {
            let r = pos(&url, &session, &["topup", "STD00000012", zero]);
            assert_eq!(r.code, 2, "{zero}: {}", r.err);
            assert!(r.err.contains("INVALID_RECHARGE_AMOUNT"), "{}", r.err);
        }
        let r = pos(
            &url,
            &session,
            &["topup", "STD00000012", "10.00", "--method", "balance"],
        );
        assert_eq!(r.code, 2, "not a top-up method: {}", r.err);
        let r = pos(&url, &session, &["topup", "STD00000012", "5000.01"]);
        assert_eq!(r.code, 5, "above the largest single top-up: {}", r.err);
        assert!(r.err.contains("OFFLINE_LIMIT_EXCEEDED"), "{}", r.err);

        // no answer from the edge: exit 7, and the key to retry with
        let r = pos(
            "http://127.0.0.1:9",
            &session,
            &["topup", "STD00000012", "10.00"],
        );
        assert_eq!(r.code, 7, "{}", r.err);
        assert!(
            r.err
                .contains("run the same command again with --key pos-cli-"),
            "{}",
            r.err
        );
        (tx_no, wallet_tx)
    })
    .await
    .unwrap();
    assert_ne!(tx_no, wallet_tx);
    assert_eq!(
        srv.available("STD00000012").await,
        before + 52_000,
        "500.00 once and 20.00: the replay and every refusal loaded nothing"
    );
}

/// A store that asks a manager's PIN for a cashier's top-up: without it 3
/// (APPROVAL_REQUIRED), a wrong PIN 3, with `--approve-user`/`--approve-pin` done.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cashiers_top_up_with_a_managers_pin() {
    let srv = TestServer::start_with(|c| c.approval.cashier_topups = CashierTopups::Approval).await;
    srv.manager_with_pin("boss", "boss-password-1", "2468")
        .await;
    srv.create_user("till1", "till-password-1", Role::Cashier)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let session = dir.path().join("session.json");
    let url = srv.base.clone();
    let before = srv.available("STD00000013").await;

    tokio::task::spawn_blocking(move || {
        let r = pos(
            &url,
            &session,
            &["login", "till1", "--password", "till-password-1"],
        );
        assert_eq!(r.code, 0, "{}", r.err);
        let r = pos(&url, &session, &["topup", "STD00000013", "30.00"]);
        assert_eq!(r.code, 3, "{}", r.err);
        assert!(r.err.contains("APPROVAL_REQUIRED"), "{}", r.err);
        let r = pos(
            &url,
            &session,
            &[
                "topup",
                "STD00000013",
                "30.00",
                "--approve-user",
                "boss",
                "--approve-pin",
                "1111",
            ],
        );
        assert_eq!(r.code, 3, "{}", r.err);
        assert!(r.err.contains("APPROVAL_INVALID"), "{}", r.err);
        // a name without a PIN is a mistake of the command line
        let r = pos(
            &url,
            &session,
            &["topup", "STD00000013", "30.00", "--approve-user", "boss"],
        );
        assert_eq!(r.code, 2, "{}", r.err);
        let r = pos(
            &url,
            &session,
            &[
                "topup",
                "STD00000013",
                "30.00",
                "--method",
                "alipay",
                "--approve-user",
                "boss",
                "--approve-pin",
                "2468",
            ],
        );
        assert_eq!(r.code, 0, "{}", r.err);
        assert!(
            r.out.contains("topped up 30.00 (alipay)") && r.out.contains("approved by boss"),
            "{}",
            r.out
        );
    })
    .await
    .unwrap();
    assert_eq!(srv.available("STD00000013").await, before + 3_000);
}
