//! Sign-in under attack (issue 12): the password pool, the throttle counted before
//! hashing, lockout that does not lock the owner out, uniform failures, refresh retries
//! within the grace window, unknown session families, unlocking from the console API and
//! the CLI. Counts come from the audit log and the answers, never from timing.
//!
//! Different client addresses: the whole of 127.0.0.0/8 is loopback on Linux, so a
//! client bound to 127.0.0.2 reaches the server on 127.0.0.1 as another address.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use mps_edge::domain::Role;
use serde_json::{json, Value};
use support::server::{into_resp, Resp, TestServer, API};

const LOGIN: &str = "/api/v1/auth/login";
const REFRESH: &str = "/api/v1/auth/refresh";

fn client_from(last_octet: u8) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last_octet)))
        .build()
        .unwrap()
}

async fn login_from(srv: &TestServer, client: &reqwest::Client, user: &str, pw: &str) -> Resp {
    into_resp(
        client
            .post(srv.url(LOGIN))
            .json(&json!({"username": user, "password": pw}))
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// Sends the same sign-in `n` times at once from `client`.
async fn parallel_logins(
    srv: &TestServer,
    client: &reqwest::Client,
    bodies: Vec<Value>,
) -> Vec<Resp> {
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(bodies.len()));
    let mut set = tokio::task::JoinSet::new();
    for body in bodies {
        let (client, url, barrier) = (client.clone(), srv.url(LOGIN), barrier.clone());
        set.spawn(async move {
            barrier.wait().await;
            into_resp(client.post(url).json(&body).send().await.unwrap()).await
        });
    }
    let mut out = Vec::new();
    while let Some(r) = set.join_next().await {
        out.push(r.unwrap());
    }
    out
}

async fn audit_count(srv: &TestServer, action: &'static str, like: &'static str) -> i64 {
    srv.read(move |c| {
        c.query_row(
            "SELECT COUNT(*) FROM audit_log WHERE action = ?1 AND details LIKE ?2",
            [action, like],
            |r| r.get(0),
        )
    })
    .await
}

async fn failed_checks(srv: &TestServer, username: &'static str) -> i64 {
    srv.read(move |c| {
        c.query_row(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'login.failed' AND actor = ?1",
            [username],
            |r| r.get(0),
        )
    })
    .await
}

fn retry_after(r: &Resp) -> i64 {
    r.headers
        .get("retry-after")
        .unwrap_or_else(|| panic!("no Retry-After: {} {}", r.status, r.text))
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_parallel_wrong_guesses_check_at_most_the_allowed_number() {
    // A queue long enough that no guess is turned away by the pool: only the throttle.
    let srv = TestServer::start_with(|c| c.auth.password_queue = 64).await;
    srv.create_user("clerk", "clerk-password-1", Role::Manager)
        .await;
    let from = client_from(1);
    let bodies = (0..30)
        .map(|i| json!({"username": "clerk", "password": format!("guess-{i}")}))
        .collect();
    let answers = parallel_logins(&srv, &from, bodies).await;
    let refused: Vec<&Resp> = answers.iter().filter(|r| r.status == 429).collect();
    let checked = answers.iter().filter(|r| r.status == 401).count();
    assert_eq!(checked + refused.len(), 30, "only 401 and 429 expected");
    // max_failed_logins = 5: the count is reserved before hashing, so exactly 5 checks.
    assert_eq!(checked, 5);
    assert_eq!(failed_checks(&srv, "clerk").await, 5);
    for r in &refused {
        r.assert_error(429, "LOGIN_LOCKED");
        assert!(retry_after(r) >= 1);
    }
    // One lock of this address, logged once.
    assert_eq!(
        audit_count(&srv, "login.locked", "%\"scope\":\"address\"%").await,
        1
    );
    // Even the right password waits at this address; another address is not affected.
    login_from(&srv, &from, "clerk", "clerk-password-1")
        .await
        .assert_error(429, "LOGIN_LOCKED");
    login_from(&srv, &client_from(2), "clerk", "clerk-password-1")
        .await
        .assert_ok();
    // Nor is another account at the first address (a NAT'ed till LAN).
    let (owner, pw) = srv.owner.clone();
    login_from(&srv, &from, &owner, &pw).await.assert_ok();
}

/// A server where one address's five failures also lock the account.
async fn small_ceiling() -> TestServer {
    TestServer::start_with(|c| {
        c.auth.account_max_failed_logins = 5;
        c.auth.locked_check_interval_ms = 100;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_owner_gets_in_from_another_address_after_someone_locked_the_account() {
    let srv = small_ceiling().await;
    let (owner, pw) = srv.owner.clone();
    let attacker = client_from(2);
    for i in 0..5 {
        login_from(&srv, &attacker, &owner, &format!("guess-{i}"))
            .await
            .assert_error(401, "INVALID_CREDENTIALS");
    }
    // Locked: one audit entry for the account, one for the address.
    assert_eq!(
        audit_count(&srv, "login.locked", "%\"scope\":\"account\"%").await,
        1
    );
    // The attacker's address, even with the right password, waits the lock out.
    let r = login_from(&srv, &attacker, &owner, &pw).await;
    r.assert_error(429, "LOGIN_LOCKED");
    assert!(retry_after(&r) > 1);
    // The owner at an address that has not failed gets in (after its turn).
    let token = login_from(&srv, &client_from(3), &owner, &pw)
        .await
        .assert_ok()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    // The console shows the lock until the owner lifts it.
    let list = srv.get(&format!("{API}/console/users"), Some(&token)).await;
    let me = list.assert_ok()["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == owner.as_str())
        .unwrap()
        .clone();
    assert!(me["locked_until"].is_string(), "{me}");
    let id = me["id"].as_str().unwrap();
    let r = srv
        .post(
            &format!("{API}/console/users/{id}/unlock"),
            Some(&token),
            &json!({}),
        )
        .await;
    assert!(r.assert_ok()["user"]["locked_until"].is_null());
    assert_eq!(audit_count(&srv, "user.unlock", "%").await, 1);
    // Unlocked: the attacker's address is back to a clean slate too.
    login_from(&srv, &attacker, &owner, &pw).await.assert_ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_manager_unlocks_cashiers_only() {
    let srv = small_ceiling().await;
    srv.create_user("mgr", "manager-password-1", Role::Manager)
        .await;
    srv.create_user("till", "cashier-password-1", Role::Cashier)
        .await;
    let mgr = srv.login("mgr", "manager-password-1").await;
    let ids: Vec<(String, String)> = srv
        .get(&format!("{API}/console/users"), Some(&mgr))
        .await
        .assert_ok()["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["username"].as_str().unwrap().to_string(),
                u["id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let id_of = |name: &str| ids.iter().find(|(n, _)| n == name).unwrap().1.clone();
    let unlock = |id: String| {
        let mgr = mgr.clone();
        let srv = &srv;
        async move {
            srv.post(
                &format!("{API}/console/users/{id}/unlock"),
                Some(&mgr),
                &json!({}),
            )
            .await
        }
    };
    unlock(id_of("till")).await.assert_ok();
    unlock(id_of(&srv.owner.0.clone()))
        .await
        .assert_error(403, "PERMISSION_DENIED");
    unlock("no-such-user".into())
        .await
        .assert_error(404, "USER_NOT_FOUND");
    let cashier = srv.login("till", "cashier-password-1").await;
    unlock(id_of("till")).await.assert_ok();
    srv.post(
        &format!("{API}/console/users/{}/unlock", id_of("till")),
        Some(&cashier),
        &json!({}),
    )
    .await
    .assert_error(403, "PERMISSION_DENIED");
}

/// Unknown, disabled (right password), locked (from a fresh address) and wrong
/// password: one answer, and the throttle answers an unknown username like a real one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_sign_in_failure_looks_the_same() {
    let srv = small_ceiling().await;
    srv.create_user("clerk", "clerk-password-1", Role::Manager)
        .await;
    srv.create_user("gone", "gone-password-1", Role::Cashier)
        .await;
    srv.create_user("held", "held-password-1", Role::Cashier)
        .await;
    srv.write(|c| c.execute("UPDATE users SET disabled = 1 WHERE username = 'gone'", []))
        .await;
    // Lock "held" from another address.
    let other = client_from(9);
    for _ in 0..5 {
        login_from(&srv, &other, "held", "not-it-at-all").await;
    }
    let me = client_from(1);
    let cases = [
        ("unknown", "nobody-here", "whatever-password"),
        ("disabled, right password", "gone", "gone-password-1"),
        ("locked, wrong password", "held", "still-not-it"),
        ("wrong password", "clerk", "wrong-password"),
    ];
    let mut seen = Vec::new();
    for (case, user, pw) in cases {
        let r = login_from(&srv, &me, user, pw).await;
        r.assert_error(401, "INVALID_CREDENTIALS");
        assert!(r.headers.get("retry-after").is_none(), "{case}");
        seen.push((case, r.json["error"].clone()));
    }
    for (case, error) in &seen {
        assert_eq!(error, &seen[0].1, "{case} differs from {}", seen[0].0);
    }
    // Five failures for a name that exists and for one that does not (neither tried
    // before): the same answers, then the same 429.
    srv.create_user("spare", "spare-password-1", Role::Cashier)
        .await;
    let mut throttled = Vec::new();
    for (user, octet) in [("spare", 20), ("nobody-else", 21)] {
        let from = client_from(octet);
        for _ in 0..5 {
            login_from(&srv, &from, user, "wrong-password")
                .await
                .assert_error(401, "INVALID_CREDENTIALS");
        }
        let r = login_from(&srv, &from, user, "wrong-password").await;
        r.assert_error(429, "LOGIN_LOCKED");
        let message = r.json["error"]["message"].as_str().unwrap().to_string();
        // The seconds to wait may differ by one if a second ticked in between.
        throttled.push(message.replace(|c: char| c.is_ascii_digit(), "#"));
    }
    assert_eq!(throttled[0], throttled[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_password_pool_answers_503_with_retry_after() {
    let srv = TestServer::start_with(|c| {
        c.auth.password_workers = 1;
        c.auth.password_queue = 0;
    })
    .await;
    // Different usernames, so only the pool (not the throttle) turns them away.
    let bodies = (0..24)
        .map(|i| json!({"username": format!("user-{i}"), "password": "whatever-password"}))
        .collect();
    let answers = parallel_logins(&srv, &client_from(1), bodies).await;
    let busy: Vec<&Resp> = answers.iter().filter(|r| r.status == 503).collect();
    assert!(!busy.is_empty(), "no 503 among {} answers", answers.len());
    for r in &busy {
        r.assert_error(503, "SERVICE_UNAVAILABLE");
        assert_eq!(retry_after(r), 1);
    }
    for r in answers.iter().filter(|r| r.status != 503) {
        r.assert_error(401, "INVALID_CREDENTIALS");
    }
    // A refused sign-in was not counted against its username.
    let counted: i64 = srv
        .read(|c| {
            c.query_row(
                "SELECT COALESCE(SUM(failures), 0) FROM signin_accounts",
                [],
                |r| r.get(0),
            )
        })
        .await;
    assert_eq!(counted as usize, answers.len() - busy.len());
    // Once the burst is over, sign-in works.
    srv.owner_token().await;
}

async fn refresh(srv: &TestServer, token: &str) -> Resp {
    srv.post(REFRESH, None, &json!({ "refresh_token": token }))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refresh_retried_within_the_grace_window_gets_the_same_pair() {
    let srv = TestServer::start().await;
    let (owner, pw) = srv.owner.clone();
    let first = srv.login_pair(&owner, &pw).await;
    let r1 = first["refresh_token"].as_str().unwrap().to_string();

    let pair2 = refresh(&srv, &r1).await.assert_ok().clone();
    let again = refresh(&srv, &r1).await.assert_ok().clone();
    assert_eq!(again["access_token"], pair2["access_token"]);
    assert_eq!(again["refresh_token"], pair2["refresh_token"]);
    assert_ne!(pair2["refresh_token"], first["refresh_token"]);

    // Ten parallel retries of the next rotation: one pair for all of them.
    let r2 = pair2["refresh_token"].as_str().unwrap().to_string();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let (client, url, body) = (
            srv.client.clone(),
            srv.url(REFRESH),
            json!({ "refresh_token": r2 }),
        );
        set.spawn(
            async move { into_resp(client.post(url).json(&body).send().await.unwrap()).await },
        );
    }
    let mut pairs = Vec::new();
    while let Some(r) = set.join_next().await {
        pairs.push(r.unwrap().assert_ok().clone());
    }
    for p in &pairs {
        assert_eq!(p["refresh_token"], pairs[0]["refresh_token"]);
        assert_eq!(p["access_token"], pairs[0]["access_token"]);
    }
    let access3 = pairs[0]["access_token"].as_str().unwrap().to_string();
    srv.get(&format!("{API}/auth/me"), Some(&access3))
        .await
        .assert_ok();
    // One row per rotation, not one per retry.
    assert_eq!(srv.count("SELECT COUNT(*) FROM refresh_tokens").await, 3);

    // The grace window passes (moved back in the database rather than waited for): the
    // rotated token coming back now is a copy, and the whole session ends.
    srv.write(|c| {
        c.execute(
            "UPDATE refresh_tokens SET used_unix = used_unix - 31 WHERE used_unix IS NOT NULL",
            [],
        )
    })
    .await;
    refresh(&srv, &r2).await.assert_error(401, "INVALID_TOKEN");
    srv.get(&format!("{API}/auth/me"), Some(&access3))
        .await
        .assert_error(401, "INVALID_TOKEN");
    let r3 = pairs[0]["refresh_token"].as_str().unwrap();
    refresh(&srv, r3).await.assert_error(401, "INVALID_TOKEN");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rotated_token_is_not_replayed_once_its_successor_was_used() {
    let srv = TestServer::start().await;
    let (owner, pw) = srv.owner.clone();
    let r1 = srv.login_pair(&owner, &pw).await["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    let pair2 = refresh(&srv, &r1).await.assert_ok().clone();
    let r2 = pair2["refresh_token"].as_str().unwrap();
    let pair3 = refresh(&srv, r2).await.assert_ok().clone();
    // Within the grace window, but the successor has moved on: reuse, family revoked.
    refresh(&srv, &r1).await.assert_error(401, "INVALID_TOKEN");
    srv.get(
        &format!("{API}/auth/me"),
        Some(pair3["access_token"].as_str().unwrap()),
    )
    .await
    .assert_error(401, "INVALID_TOKEN");
    assert_eq!(
        srv.count("SELECT COUNT(*) FROM audit_log WHERE action = 'refresh.reuse_detected'")
            .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_signed_token_of_an_unknown_session_family_is_refused() {
    let srv = TestServer::start().await;
    let (owner, pw) = srv.owner.clone();
    let pair = srv.login_pair(&owner, &pw).await;
    let keys = mps_edge::auth::JwtKeys::new(support::server::JWT_SECRET);
    let good = keys
        .verify(pair["access_token"].as_str().unwrap())
        .ok()
        .unwrap();
    // The same claims, signed with the server's key, naming a family no sign-in made.
    let forged = mps_edge::auth::Claims {
        fam: uuid::Uuid::new_v4().to_string(),
        jti: uuid::Uuid::new_v4().to_string(),
        ..good.clone()
    };
    let token = keys.sign(&forged).unwrap();
    srv.get(&format!("{API}/auth/me"), Some(&token))
        .await
        .assert_error(401, "INVALID_TOKEN");
    // The real one still works.
    let real = keys.sign(&good).unwrap();
    srv.get(&format!("{API}/auth/me"), Some(&real))
        .await
        .assert_ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cli_unlocks_a_user_while_the_server_runs() {
    let srv = small_ceiling().await;
    srv.create_user("clerk", "clerk-password-1", Role::Manager)
        .await;
    let from = client_from(1);
    for _ in 0..5 {
        login_from(&srv, &from, "clerk", "wrong-password").await;
    }
    login_from(&srv, &from, "clerk", "clerk-password-1")
        .await
        .assert_error(429, "LOGIN_LOCKED");
    let data = srv.cfg.data_dir.clone();
    let out = tokio::task::spawn_blocking(move || {
        support::binary::cli(
            support::binary::Install::DataDir(&data),
            &["admin", "unlock-user", "--username", "clerk"],
        )
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["unlocked"], true);
    assert_eq!(printed["had_failures"], true);
    login_from(&srv, &from, "clerk", "clerk-password-1")
        .await
        .assert_ok();
    assert_eq!(audit_count(&srv, "user.unlock", "%clerk%").await, 1);
    // An unknown username: an error exit, and a clear message.
    let data = srv.cfg.data_dir.clone();
    let out = tokio::task::spawn_blocking(move || {
        support::binary::cli(
            support::binary::Install::DataDir(&data),
            &["admin", "unlock-user", "--username", "nobody"],
        )
    })
    .await
    .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no user nobody"));
}

/// The unlock route's bad inputs, one row each: (case, token, id, status, code).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unlock_refuses_bad_requests() {
    let srv = TestServer::start().await;
    let owner = srv.owner_token().await;
    let cashier = srv.cashier_token().await;
    let long = "x".repeat(65);
    #[rustfmt::skip]
    let rows: Vec<(&str, Option<&str>, &str, u16, &str)> = vec![
        ("no sign-in", None, "some-id", 401, "NOT_AUTHENTICATED"),
        ("a cashier", Some(&cashier), "some-id", 403, "PERMISSION_DENIED"),
        ("unknown id", Some(&owner), "some-id", 404, "USER_NOT_FOUND"),
        ("id of 65 chars", Some(&owner), &long, 400, "VALIDATION_ERROR"),
        ("id with a space", Some(&owner), "a%20b", 400, "VALIDATION_ERROR"),
    ];
    for (case, token, id, status, code) in rows {
        let r = srv
            .post(
                &format!("{API}/console/users/{id}/unlock"),
                token,
                &json!({}),
            )
            .await;
        assert_eq!(
            (r.status.as_u16(), r.json["error"]["code"].as_str()),
            (status, Some(code)),
            "{case}: {}",
            r.text
        );
    }
}
