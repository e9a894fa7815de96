//! `mps-edge pos` (issue 14, item 7): the real binary against a real server on
//! 127.0.0.1:0: sign in (session file 0600), charge, validate, tx, refund, receipt, a
//! shift from open to close; `--json` for scripts; exit codes by kind of failure.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::process::Command;

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
