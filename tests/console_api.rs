//! The web console's API, driven over HTTP against the in-process server: cookie
//! sessions and CSRF, staff rules, device enrollment, settlements, the CSV export,
//! settings, the audit log and the live WebSocket feed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use futures_util::StreamExt;
use mps_edge::domain::Role;
use reqwest::Method;
use serde_json::{json, Value};
use support::server::{amt, cents, Resp, TestServer, API};

/// A signed-in console session: the cookie as the browser would send it, and the CSRF
/// token from the sign-in answer.
struct Console {
    cookie: String,
    csrf: String,
    body: Value,
}

async fn console_login(srv: &TestServer, user: &str, pw: &str) -> Resp {
    srv.post(
        &format!("{API}/console/login"),
        None,
        &json!({"username": user, "password": pw}),
    )
    .await
}

async fn console(srv: &TestServer, user: &str, pw: &str) -> Console {
    let r = console_login(srv, user, pw).await;
    r.assert_ok();
    let set = r
        .headers
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("set-cookie")
        .to_string();
    let cookie = set.split(';').next().unwrap().to_string();
    Console {
        cookie,
        csrf: r.json["csrf_token"].as_str().unwrap().to_string(),
        body: r.json.clone(),
    }
}

async fn owner_console(srv: &TestServer) -> Console {
    let (u, p) = srv.owner.clone();
    console(srv, &u, &p).await
}

impl Console {
    async fn send(
        &self,
        srv: &TestServer,
        method: Method,
        path: &str,
        body: Option<&Value>,
        csrf: bool,
    ) -> Resp {
        let mut headers = vec![("cookie", self.cookie.as_str())];
        if csrf {
            headers.push(("x-csrf-token", self.csrf.as_str()));
        }
        srv.send(method, &format!("{API}{path}"), None, &headers, body)
            .await
    }
    async fn get(&self, srv: &TestServer, path: &str) -> Resp {
        self.send(srv, Method::GET, path, None, false).await
    }
    async fn post(&self, srv: &TestServer, path: &str, body: &Value) -> Resp {
        self.send(srv, Method::POST, path, Some(body), true).await
    }
    async fn put(&self, srv: &TestServer, path: &str, body: &Value) -> Resp {
        self.send(srv, Method::PUT, path, Some(body), true).await
    }
}

#[tokio::test]
async fn cookie_session_needs_csrf_for_changes_and_ends_at_logout() {
    let srv = TestServer::start().await;
    let r = console_login(&srv, "owner", "wrong-password").await;
    r.assert_error(401, "INVALID_CREDENTIALS");
    let c = owner_console(&srv).await;
    let r = console_login(&srv, &srv.owner.0, &srv.owner.1).await;
    let set = r.headers.get("set-cookie").unwrap().to_str().unwrap();
    for part in ["mps_session=", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(part), "{part} missing in {set}");
    }
    assert!(!set.contains("Secure"), "plain HTTP: no Secure flag");
    assert_eq!(c.body["user"]["role"], "owner");
    assert_eq!(c.body["locale"], "zh-Hant");
    assert_eq!(c.body["store"]["timezone"], "UTC");
    assert_eq!(c.body["store"]["mode"], "standalone");
    assert!(c.csrf.len() >= 32);

    // Reads need only the cookie; the same JSON API as the POS accepts it.
    c.get(&srv, "/merchant/transactions").await.assert_ok();
    c.get(&srv, "/merchant/daily-summary").await.assert_ok();
    let s = c.get(&srv, "/console/session").await;
    assert_eq!(s.assert_ok()["csrf_token"].as_str(), Some(c.csrf.as_str()));

    // Changes without the token, or with a wrong one, are refused before anything runs.
    let body = json!({"name": "Till 1"});
    let r = c
        .send(
            &srv,
            Method::POST,
            "/console/devices/enrollment-codes",
            Some(&body),
            false,
        )
        .await;
    r.assert_error(403, "CSRF_TOKEN_INVALID");
    let wrong = Console {
        csrf: "x".repeat(43),
        cookie: c.cookie.clone(),
        body: Value::Null,
    };
    wrong
        .post(&srv, "/console/devices/enrollment-codes", &body)
        .await
        .assert_error(403, "CSRF_TOKEN_INVALID");
    c.send(
        &srv,
        Method::POST,
        "/merchant/refund",
        Some(&json!({"original_tx_no": "PAY-DEMO-0000000001", "refund_amount": "1.00"})),
        false,
    )
    .await
    .assert_error(403, "CSRF_TOKEN_INVALID");
    c.post(&srv, "/console/devices/enrollment-codes", &body)
        .await
        .assert_ok();
    assert_eq!(
        srv.count("SELECT COUNT(*) FROM enrollment_codes").await,
        1,
        "only the request with the token wrote"
    );

    // No cookie, no bearer: not signed in.
    srv.get(&format!("{API}/console/session"), None)
        .await
        .assert_error(401, "NOT_AUTHENTICATED");
    // Sessions are stored hashed.
    let token = c.cookie.trim_start_matches("mps_session=").to_string();
    let plain = srv
        .read(move |conn| {
            conn.query_row(
                "SELECT COUNT(*) FROM console_sessions WHERE token_hash = ?1",
                [token],
                |r| r.get::<_, i64>(0),
            )
        })
        .await;
    assert_eq!(plain, 0);

    // Logout needs the token too, then ends the session.
    c.send(
        &srv,
        Method::POST,
        "/console/logout",
        Some(&json!({})),
        false,
    )
    .await
    .assert_error(403, "CSRF_TOKEN_INVALID");
    let r = c.post(&srv, "/console/logout", &json!({})).await;
    r.assert_ok();
    assert!(r
        .headers
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    c.get(&srv, "/console/session")
        .await
        .assert_error(401, "NOT_AUTHENTICATED");
    c.get(&srv, "/merchant/transactions")
        .await
        .assert_error(401, "NOT_AUTHENTICATED");
}

#[tokio::test]
async fn sign_out_everywhere_ends_sessions_and_bearer_tokens() {
    let srv = TestServer::start().await;
    let a = owner_console(&srv).await;
    let b = owner_console(&srv).await;
    let bearer = srv.owner_token().await;
    let pair = srv.login_pair(&srv.owner.0, &srv.owner.1).await;
    srv.get(&format!("{API}/auth/me"), Some(&bearer))
        .await
        .assert_ok();
    a.post(&srv, "/console/sign-out-everywhere", &json!({}))
        .await
        .assert_ok();
    a.get(&srv, "/console/session")
        .await
        .assert_error(401, "NOT_AUTHENTICATED");
    b.get(&srv, "/console/session")
        .await
        .assert_error(401, "NOT_AUTHENTICATED");
    srv.get(&format!("{API}/auth/me"), Some(&bearer))
        .await
        .assert_error(401, "INVALID_TOKEN");
    srv.post(
        &format!("{API}/auth/refresh"),
        None,
        &json!({"refresh_token": pair["refresh_token"]}),
    )
    .await
    .assert_error(401, "INVALID_TOKEN");
    // A fresh sign-in works.
    owner_console(&srv).await;
    let n = srv
        .count("SELECT COUNT(*) FROM audit_log WHERE action = 'user.sign_out_everywhere'")
        .await;
    assert_eq!(n, 1);
}

#[tokio::test]
async fn cashier_is_refused_manager_endpoints() {
    let srv = TestServer::start().await;
    srv.create_user("till", "cashier-password-1", Role::Cashier)
        .await;
    let c = console(&srv, "till", "cashier-password-1").await;
    assert_eq!(c.body["user"]["role"], "cashier");
    c.get(&srv, "/merchant/transactions").await.assert_ok();
    for path in [
        "/merchant/daily-summary",
        "/sync/status",
        "/sync/exceptions",
        "/console/users",
        "/console/devices",
        "/console/audit",
        "/console/settings",
        "/merchant/settlements",
    ] {
        c.get(&srv, path)
            .await
            .assert_error(403, "PERMISSION_DENIED");
    }
    c.post(
        &srv,
        "/merchant/settlements",
        &json!({"mode": "t_plus_1", "period_start": "2024-01-01", "period_end": "2024-01-01"}),
    )
    .await
    .assert_error(403, "PERMISSION_DENIED");
    c.post(
        &srv,
        "/console/users",
        &json!({"username": "x", "password": "long-enough-pw", "role": "cashier"}),
    )
    .await
    .assert_error(403, "PERMISSION_DENIED");
    c.put(&srv, "/console/settings", &json!({"store_name": "Mine"}))
        .await
        .assert_error(403, "PERMISSION_DENIED");
    // A cashier may still pick a language.
    c.put(&srv, "/console/me", &json!({"locale": "en"}))
        .await
        .assert_ok();
    assert_eq!(c.get(&srv, "/console/session").await.json["locale"], "en");
    c.put(&srv, "/console/me", &json!({"locale": "fr"}))
        .await
        .assert_error(400, "VALIDATION_ERROR");
}

#[tokio::test]
async fn staff_rules() {
    let srv = TestServer::start().await;
    let owner = owner_console(&srv).await;
    let owner_id = owner.body["user"]["id"].as_str().unwrap().to_string();
    let mk =
        |u: &str, role: &str| json!({"username": u, "password": "a-long-password", "role": role});

    let r = owner
        .post(&srv, "/console/users", &mk("mgr", "manager"))
        .await;
    let mgr_id = r.assert_ok()["user"]["id"].as_str().unwrap().to_string();
    owner
        .post(&srv, "/console/users", &mk("mgr", "cashier"))
        .await
        .assert_error(409, "USERNAME_TAKEN");
    owner
        .post(
            &srv,
            "/console/users",
            &json!({"username": "short", "password": "short", "role": "cashier"}),
        )
        .await
        .assert_error(400, "VALIDATION_ERROR");
    owner
        .post(&srv, "/console/users", &mk("bad", "admin"))
        .await
        .assert_error(400, "VALIDATION_ERROR");

    let m = console(&srv, "mgr", "a-long-password").await;
    let r = m.post(&srv, "/console/users", &mk("till", "cashier")).await;
    let till_id = r.assert_ok()["user"]["id"].as_str().unwrap().to_string();
    m.post(&srv, "/console/users", &mk("mgr2", "manager"))
        .await
        .assert_error(403, "PERMISSION_DENIED");
    m.post(&srv, "/console/users", &mk("own2", "owner"))
        .await
        .assert_error(403, "PERMISSION_DENIED");
    m.post(
        &srv,
        &format!("/console/users/{owner_id}/disable"),
        &json!({"disabled": true}),
    )
    .await
    .assert_error(403, "PERMISSION_DENIED");
    m.post(
        &srv,
        &format!("/console/users/{owner_id}/reset-password"),
        &json!({"password": "hijacked-password"}),
    )
    .await
    .assert_error(403, "PERMISSION_DENIED");
    // Nobody disables themselves, the owner included (so the last owner stays).
    m.post(
        &srv,
        &format!("/console/users/{mgr_id}/disable"),
        &json!({"disabled": true}),
    )
    .await
    .assert_error(409, "CONFLICT");
    owner
        .post(
            &srv,
            &format!("/console/users/{owner_id}/disable"),
            &json!({"disabled": true}),
        )
        .await
        .assert_error(409, "CONFLICT");
    owner
        .post(
            &srv,
            "/console/users/no-such-user/disable",
            &json!({"disabled": true}),
        )
        .await
        .assert_error(404, "USER_NOT_FOUND");

    // A manager resets a cashier: the old password and tokens stop working.
    let till_token = srv.login("till", "a-long-password").await;
    m.post(
        &srv,
        &format!("/console/users/{till_id}/reset-password"),
        &json!({"password": "short"}),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
    m.post(
        &srv,
        &format!("/console/users/{till_id}/reset-password"),
        &json!({"password": "a-new-long-password"}),
    )
    .await
    .assert_ok();
    srv.get(&format!("{API}/auth/me"), Some(&till_token))
        .await
        .assert_error(401, "INVALID_TOKEN");
    srv.login_resp("till", "a-long-password")
        .await
        .assert_error(401, "INVALID_CREDENTIALS");
    let till_token = srv.login("till", "a-new-long-password").await;

    // Disabling ends the sessions at once; enabling lets the user back in.
    m.post(
        &srv,
        &format!("/console/users/{till_id}/disable"),
        &json!({"disabled": true}),
    )
    .await
    .assert_ok();
    srv.get(&format!("{API}/auth/me"), Some(&till_token))
        .await
        .assert_error(401, "INVALID_TOKEN");
    srv.login_resp("till", "a-new-long-password")
        .await
        .assert_error(401, "INVALID_CREDENTIALS");
    m.post(
        &srv,
        &format!("/console/users/{till_id}/disable"),
        &json!({"disabled": false}),
    )
    .await
    .assert_ok();
    srv.login("till", "a-new-long-password").await;

    // The owner manages managers and other owners.
    owner
        .post(
            &srv,
            &format!("/console/users/{mgr_id}/disable"),
            &json!({"disabled": true}),
        )
        .await
        .assert_ok();
    m.get(&srv, "/console/users")
        .await
        .assert_error(401, "NOT_AUTHENTICATED");
    let list = owner.get(&srv, "/console/users").await;
    let users = list.assert_ok()["users"].as_array().unwrap().clone();
    assert_eq!(users.len(), 3);
    assert!(users
        .iter()
        .any(|u| u["username"] == "mgr" && u["disabled"] == true));
    assert!(users.iter().all(|u| u.get("password_hash").is_none()));
}

/// A code shown on screen is also a QR (SVG) for the terminal's camera; a manager can
/// cancel a code not yet used, by its row id (never the code or its hash), audited, and
/// the cancelled code no longer enrols anything.
#[tokio::test]
async fn enrolment_codes_come_with_a_qr_and_can_be_cancelled() {
    let srv = TestServer::start().await;
    let owner = owner_console(&srv).await;
    let r = owner
        .post(
            &srv,
            "/console/devices/enrollment-codes",
            &json!({"name": "後台"}),
        )
        .await;
    let made = r.assert_ok().clone();
    let code = made["code"].as_str().unwrap().to_string();
    let svg = made["qr_svg"].as_str().unwrap();
    assert!(svg.contains("<svg") && svg.contains("</svg>"), "{svg}");
    assert!(!svg.contains(&code), "the QR is drawn, not written");
    let list = owner.get(&srv, "/console/devices").await;
    let pending = list.assert_ok()["pending_codes"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(pending.len(), 1);
    let id = pending[0]["id"].as_i64().unwrap();
    assert!(!pending[0].to_string().contains(&code));

    srv.create_user("clerk", "clerk-password-1", Role::Cashier)
        .await;
    let cashier = console(&srv, "clerk", "clerk-password-1").await;
    let path = format!("/console/devices/enrollment-codes/{id}/cancel");
    cashier
        .post(&srv, &path, &json!({}))
        .await
        .assert_error(403, "PERMISSION_DENIED");
    for bad in ["0", "-1", "abc", "1.5", "99999999999999999999"] {
        owner
            .post(
                &srv,
                &format!("/console/devices/enrollment-codes/{bad}/cancel"),
                &json!({}),
            )
            .await
            .assert_error(400, "VALIDATION_ERROR");
    }
    owner
        .post(
            &srv,
            &format!("/console/devices/enrollment-codes/{}/cancel", id + 100),
            &json!({}),
        )
        .await
        .assert_error(404, "NOT_FOUND");
    let r = owner.post(&srv, &path, &json!({})).await;
    assert_eq!(r.assert_ok()["cancelled"], true);
    owner
        .post(&srv, &path, &json!({}))
        .await
        .assert_error(404, "NOT_FOUND");
    let list = owner.get(&srv, "/console/devices").await;
    assert_eq!(list.assert_ok()["pending_codes"], json!([]));
    srv.post(
        &format!("{API}/devices/enroll"),
        None,
        &json!({"code": code}),
    )
    .await
    .assert_error(401, "ENROLLMENT_CODE_INVALID");
    let audit = owner
        .get(&srv, "/console/audit?action=device.enrollment_code.cancel")
        .await;
    let entries = audit.assert_ok()["entries"].as_array().unwrap().clone();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["details"]["name"], "後台");
}

#[tokio::test]
async fn enrolled_device_login_is_bound_and_revocation_ends_it() {
    let srv = TestServer::start().await;
    let owner = owner_console(&srv).await;
    let r = owner
        .post(
            &srv,
            "/console/devices/enrollment-codes",
            &json!({"name": "櫃台一號"}),
        )
        .await;
    let code = r.assert_ok()["code"].as_str().unwrap().to_string();
    assert!((8..=10).contains(&code.len()), "{code}");
    assert!(r.json["expires_at"].is_string());

    let enroll = |code: String| {
        let srv = &srv;
        async move {
            srv.post(
                &format!("{API}/devices/enroll"),
                None,
                &json!({"code": code}),
            )
            .await
        }
    };
    enroll("WRONGCODE9".into())
        .await
        .assert_error(401, "ENROLLMENT_CODE_INVALID");
    let r = enroll(code.to_lowercase()).await;
    let dev = r.assert_ok().clone();
    let device_id = dev["device_id"].as_str().unwrap().to_string();
    let secret = dev["device_secret"].as_str().unwrap().to_string();
    assert_eq!(dev["name"], "櫃台一號");
    enroll(code.clone())
        .await
        .assert_error(401, "ENROLLMENT_CODE_INVALID");

    // Neither the secret nor the code is stored in the clear.
    let (s2, c2) = (secret.clone(), code.clone());
    let leaks = srv
        .read(move |c| {
            c.query_row(
                "SELECT (SELECT COUNT(*) FROM devices WHERE secret_hash = ?1)
                      + (SELECT COUNT(*) FROM enrollment_codes WHERE code_hash = ?2)",
                [s2, c2],
                |r| r.get::<_, i64>(0),
            )
        })
        .await;
    assert_eq!(leaks, 0);

    let login = |secret: &str| json!({"username": srv.owner.0, "password": srv.owner.1, "device_id": device_id, "device_secret": secret});
    srv.post(&format!("{API}/auth/login"), None, &login("not-the-secret"))
        .await
        .assert_error(401, "INVALID_CREDENTIALS");
    srv.post(
        &format!("{API}/auth/login"),
        None,
        &json!({"username": srv.owner.0, "password": srv.owner.1, "device_id": device_id}),
    )
    .await
    .assert_error(422, "INCONSISTENT_FIELDS");
    let r = srv
        .post(&format!("{API}/auth/login"), None, &login(&secret))
        .await;
    let pair = r.assert_ok().clone();
    let token = pair["access_token"].as_str().unwrap().to_string();
    let me = srv.get(&format!("{API}/auth/me"), Some(&token)).await;
    assert_eq!(me.assert_ok()["session"]["device_id"], device_id.as_str());
    let paid = srv.charge_card(&token, "STD00000004", "5.00").await;
    let tx_no = paid["transaction"]["tx_no"].as_str().unwrap().to_string();
    let detail = srv.tx_detail(&token, &tx_no).await;
    assert_eq!(
        detail.assert_ok()["transaction"]["device_id"],
        device_id.as_str()
    );
    let listed = owner.get(&srv, "/console/devices").await;
    assert_eq!(listed.assert_ok()["devices"][0]["id"], device_id.as_str());

    // Revoke: the access token, the refresh token and new sign-ins all stop at once.
    owner
        .post(
            &srv,
            &format!("/console/devices/{device_id}/revoke"),
            &json!({}),
        )
        .await
        .assert_ok();
    srv.get(&format!("{API}/auth/me"), Some(&token))
        .await
        .assert_error(401, "INVALID_TOKEN");
    srv.post(
        &format!("{API}/auth/refresh"),
        None,
        &json!({"refresh_token": pair["refresh_token"]}),
    )
    .await
    .assert_error(401, "INVALID_TOKEN");
    srv.post(&format!("{API}/auth/login"), None, &login(&secret))
        .await
        .assert_error(401, "INVALID_CREDENTIALS");
    owner
        .post(
            &srv,
            &format!("/console/devices/{device_id}/revoke"),
            &json!({}),
        )
        .await
        .assert_error(409, "CONFLICT");
    owner
        .post(&srv, "/console/devices/nope/revoke", &json!({}))
        .await
        .assert_error(404, "NOT_FOUND");
    // Sign-ins without a device are unaffected.
    srv.owner_token().await;
}

/// Moves a transaction to a fixed time (tests cannot wait for days).
async fn set_time(srv: &TestServer, tx_no: &str, at: &str) {
    let (tx_no, at) = (tx_no.to_string(), at.to_string());
    srv.write(move |c| {
        let unix = chrono::DateTime::parse_from_rfc3339(&at)
            .unwrap()
            .timestamp();
        c.execute(
            "UPDATE transactions SET created_at = ?2, created_unix = ?3 WHERE tx_no = ?1",
            rusqlite::params![tx_no, at, unix],
        )
    })
    .await;
}

#[tokio::test]
async fn settlements_total_may_be_negative_and_periods_never_overlap() {
    let srv = TestServer::start().await;
    let token = srv.owner_token().await;
    let c = owner_console(&srv).await;
    let p1 = srv.charge_card(&token, "STD00000004", "100.00").await;
    let p2 = srv.charge_card(&token, "STD00000004", "30.00").await;
    let p1_no = p1["transaction"]["tx_no"].as_str().unwrap().to_string();
    let p2_no = p2["transaction"]["tx_no"].as_str().unwrap().to_string();
    let p1_final = cents(&p1["transaction"]["final_amount"]);
    let p2_final = cents(&p2["transaction"]["final_amount"]);
    let refund = srv.refund(&token, &p1_no, "40.00").await;
    let ref_no = refund.assert_ok()["refund"]["refund_tx_no"]
        .as_str()
        .unwrap()
        .to_string();
    set_time(&srv, &p1_no, "2024-01-01T10:00:00Z").await;
    set_time(&srv, &p2_no, "2024-01-01T23:59:59Z").await;
    set_time(&srv, &ref_no, "2024-01-02T10:00:00Z").await;

    let gen = |mode: &str, start: &str, end: &str| json!({"mode": mode, "period_start": start, "period_end": end});
    let r = c
        .post(
            &srv,
            "/merchant/settlements",
            &gen("t_plus_1", "2024-01-01", "2024-01-01"),
        )
        .await;
    let s1 = r.assert_ok()["settlement"].clone();
    assert_eq!(s1["period_start"], "2024-01-01T00:00:00Z");
    assert_eq!(s1["period_end"], "2024-01-02T00:00:00Z");
    assert_eq!(s1["payment_count"], 2);
    assert_eq!(s1["refund_count"], 0);
    assert_eq!(s1["tx_count"], 2);
    assert_eq!(cents(&s1["total_amount"]), p1_final + p2_final);
    assert_eq!(s1["mode"], "t_plus_1");
    // one whole day, read inclusively
    assert_eq!(
        (&s1["first_day"], &s1["last_day"], &s1["whole_days"]),
        (&json!("2024-01-01"), &json!("2024-01-01"), &json!(true))
    );
    assert_eq!(s1["status"], "pending");

    // A day with only the refund settles negative: allowed here, unlike central.
    let r = c
        .post(
            &srv,
            "/merchant/settlements",
            &gen("realtime", "2024-01-02T00:00:00Z", "2024-01-03T00:00:00Z"),
        )
        .await;
    let s2 = r.assert_ok()["settlement"].clone();
    assert_eq!(amt(&s2["total_amount"]), "-40.00");
    assert_eq!(s2["refund_count"], 1);
    assert_eq!(amt(&s2["refund_amount"]), "40.00");
    assert_eq!(s2["payment_count"], 0);

    // Overlaps are refused, naming the settlement they hit.
    let r = c
        .post(
            &srv,
            "/merchant/settlements",
            &gen("monthly", "2024-01-01T12:00:00Z", "2024-01-05T00:00:00Z"),
        )
        .await;
    let d = r.assert_error(409, "SETTLEMENT_OVERLAP");
    assert_eq!(d["settlement_no"], s1["settlement_no"]);
    assert!(r.json["error"]["message"]
        .as_str()
        .unwrap()
        .contains(s1["settlement_no"].as_str().unwrap()));
    // Touching periods do not overlap; a period with nothing in it is refused.
    c.post(
        &srv,
        "/merchant/settlements",
        &gen("t_plus_1", "2023-12-31", "2023-12-31"),
    )
    .await
    .assert_error(422, "SETTLEMENT_EMPTY");
    let p3 = srv.charge_card(&token, "STD00000004", "5.00").await;
    set_time(
        &srv,
        p3["transaction"]["tx_no"].as_str().unwrap(),
        "2023-12-31T23:59:59Z",
    )
    .await;
    c.post(
        &srv,
        "/merchant/settlements",
        &gen("t_plus_1", "2023-12-31", "2023-12-31"),
    )
    .await
    .assert_ok();
    c.post(
        &srv,
        "/merchant/settlements",
        &gen("t_plus_1", "2024-02-02", "2024-02-01"),
    )
    .await
    .assert_error(422, "PERIOD_INVALID");
    c.post(
        &srv,
        "/merchant/settlements",
        &gen("t_plus_1", "2024-03-01T00:00:00Z", "2024-03-01T00:00:00Z"),
    )
    .await
    .assert_error(422, "PERIOD_INVALID");
    c.post(
        &srv,
        "/merchant/settlements",
        &gen("weekly", "2024-03-01", "2024-03-01"),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");

    let list = c.get(&srv, "/merchant/settlements?limit=2").await;
    let l = list.assert_ok();
    assert_eq!(l["pagination"]["total_count"], 3);
    assert_eq!(l["settlements"].as_array().unwrap().len(), 2);
    assert_eq!(l["settlements"][0]["settlement_no"], s2["settlement_no"]);
    let id = s1["id"].as_str().unwrap();
    let one = c.get(&srv, &format!("/merchant/settlements/{id}")).await;
    assert_eq!(one.assert_ok()["settlement"], s1);
    c.get(&srv, "/merchant/settlements/nope")
        .await
        .assert_error(404, "NOT_FOUND");
    // Each settlement is a sync operation and an audit entry, written together.
    assert_eq!(
        srv.count("SELECT COUNT(*) FROM outbox WHERE op_type = 'settlement'")
            .await,
        3
    );
    assert_eq!(
        srv.count("SELECT COUNT(*) FROM audit_log WHERE action = 'settlement.create'")
            .await,
        3
    );
    // Bearer tokens use the same routes.
    let r = srv
        .get(&format!("{API}/merchant/settlements"), Some(&token))
        .await;
    r.assert_ok();
}

#[tokio::test]
async fn open_days_are_refused_and_an_owner_voids_a_settlement_then_settles_again() {
    let srv = TestServer::start().await;
    let token = srv.owner_token().await;
    let c = owner_console(&srv).await;
    let gen = |start: &str, end: &str| json!({"mode": "t_plus_1", "period_start": start, "period_end": end});
    let sale = srv.charge_card(&token, "STD00000004", "20.00").await;
    set_time(
        &srv,
        sale["transaction"]["tx_no"].as_str().unwrap(),
        &(chrono::Utc::now() - chrono::Duration::minutes(10))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )
    .await;
    // today (the store's day is still open) and any future day are refused, nothing written
    let today = chrono::Utc::now().date_naive();
    let tomorrow = today.succ_opt().unwrap();
    for (start, end) in [
        (today.to_string(), today.to_string()),
        (tomorrow.to_string(), tomorrow.to_string()),
        (today.pred_opt().unwrap().to_string(), today.to_string()),
        (
            (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339(),
            (chrono::Utc::now() + chrono::Duration::minutes(5)).to_rfc3339(),
        ),
    ] {
        let r = c
            .post(&srv, "/merchant/settlements", &gen(&start, &end))
            .await;
        let d = r.assert_error(422, "PERIOD_NOT_ENDED");
        assert_eq!(d["field"], "period_end", "{start}..{end}");
    }
    assert_eq!(srv.count("SELECT COUNT(*) FROM settlements").await, 0);
    // a period that ended a moment ago is fine
    let s1 = c
        .post(
            &srv,
            "/merchant/settlements",
            &gen(
                &(chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339(),
                &chrono::Utc::now().to_rfc3339(),
            ),
        )
        .await
        .assert_ok()["settlement"]
        .clone();
    assert_eq!(s1["payment_count"], 1);
    assert_eq!(s1["whole_days"], false);
    let no = s1["settlement_no"].as_str().unwrap().to_string();
    let void = |reason: &str| json!({"reason": reason});

    // a manager may not void; bad reasons and unknown settlements write nothing
    srv.create_user("boss", "manager-password-1", Role::Manager)
        .await;
    let m = console(&srv, "boss", "manager-password-1").await;
    m.post(
        &srv,
        &format!("/merchant/settlements/{no}/void"),
        &void("x"),
    )
    .await
    .assert_error(403, "PERMISSION_DENIED");
    for bad in [
        json!({"reason": ""}),
        json!({"reason": "   "}),
        json!({"reason": "a\u{7}b"}),
        json!({"reason": "x".repeat(501)}),
        json!({}),
        json!({"reason": 5}),
        json!({"reason": "ok", "extra": 1}),
    ] {
        let r = c
            .post(&srv, &format!("/merchant/settlements/{no}/void"), &bad)
            .await;
        assert_eq!(r.status, 400, "{bad}: {}", r.json);
    }
    c.post(&srv, "/merchant/settlements/STL-NOPE-1/void", &void("typo"))
        .await
        .assert_error(404, "NOT_FOUND");
    assert_eq!(
        srv.count("SELECT COUNT(*) FROM outbox WHERE op_type = 'settlement_void'")
            .await,
        0
    );

    // the owner voids it: kept on record, audited, queued for central after the settlement
    let v = c
        .post(
            &srv,
            &format!("/merchant/settlements/{no}/void"),
            &void(" counted twice "),
        )
        .await
        .assert_ok()["settlement"]
        .clone();
    assert_eq!(v["status"], "voided");
    assert_eq!(v["void_reason"], "counted twice");
    assert_eq!(v["voided_by"], srv.owner.0.as_str());
    assert!(v["voided_at"].is_string());
    assert_eq!(v["total_amount"], s1["total_amount"]);
    let order = srv
        .count("SELECT (SELECT seq FROM outbox WHERE op_type = 'settlement_void') > (SELECT seq FROM outbox WHERE op_type = 'settlement')")
        .await;
    assert_eq!(order, 1, "the void follows its settlement");
    assert_eq!(
        srv.count("SELECT COUNT(*) FROM audit_log WHERE action = 'settlement.void' AND details LIKE '%counted twice%'")
            .await,
        1
    );
    // twice is refused; the period can be settled again
    c.post(
        &srv,
        &format!("/merchant/settlements/{no}/void"),
        &void("again"),
    )
    .await
    .assert_error(409, "SETTLEMENT_VOIDED");
    let s2 = c
        .post(
            &srv,
            "/merchant/settlements",
            &gen(
                s1["period_start"].as_str().unwrap(),
                s1["period_end"].as_str().unwrap(),
            ),
        )
        .await
        .assert_ok()["settlement"]
        .clone();
    assert_eq!(s2["tx_count"], 1);
    assert_ne!(s2["settlement_no"], s1["settlement_no"]);
    assert_eq!(
        srv.count("SELECT COUNT(*) FROM outbox WHERE op_type = 'settlement_void'")
            .await,
        1
    );
}

/// Exports cross the page size (2,000 rows a page) exactly and by one: every row once,
/// none twice, and the list's count and totals (one scan) agree.
#[tokio::test]
async fn csv_export_pages_cover_every_row_once() {
    let srv = TestServer::start().await;
    let token = srv.owner_token().await;
    let c = owner_console(&srv).await;
    srv.charge_card(&token, "STD00000004", "1.00").await;
    for (extra, want) in [(3_999, 4_000), (1, 4_001)] {
        srv.write(move |c| {
            c.execute(
                &format!(
                    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {extra})
                     INSERT INTO transactions(id, tx_no, tx_type, card_id, merchant_id, raw_amount_cents,
                         discount_milli, final_amount_cents, points_earned, status, created_at, created_unix)
                     SELECT 'bulk-{want}-' || i, 'PAY-BULK{want}-' || printf('%06d', i), 'payment', t.card_id,
                         t.merchant_id, 100, 1000, 100, 1, 'completed', t.created_at, t.created_unix
                       FROM n, (SELECT * FROM transactions LIMIT 1) t"
                ),
                [],
            )
        })
        .await;
        let res = srv
            .client
            .get(srv.url(&format!("{API}/merchant/transactions/export.csv")))
            .header("cookie", &c.cookie)
            .send()
            .await
            .unwrap();
        let bytes = res.bytes().await.unwrap();
        let text = String::from_utf8(bytes[3..].to_vec()).unwrap();
        let rows: Vec<&str> = text
            .split("\r\n")
            .filter(|l| !l.is_empty())
            .skip(1)
            .collect();
        assert_eq!(rows.len(), want, "every row");
        let distinct: std::collections::HashSet<&str> = rows
            .iter()
            .map(|l| l.split(',').next().unwrap_or(""))
            .collect();
        assert_eq!(distinct.len(), want, "no row twice");
        let list = srv
            .get(
                &format!("{API}/merchant/transactions?limit=200&offset=3990"),
                Some(&token),
            )
            .await;
        let b = list.assert_ok();
        assert_eq!(b["pagination"]["total_count"], want as i64);
        assert_eq!(b["totals"]["count"], want as i64);
        assert_eq!(b["transactions"].as_array().unwrap().len(), want - 3990);
        assert_eq!(b["pagination"]["has_next"], false);
    }
}

#[tokio::test]
async fn csv_export_has_bom_header_rows_and_intact_chinese() {
    let srv = TestServer::start().await;
    let token = srv.owner_token().await;
    let c = owner_console(&srv).await;
    let p = srv.charge_card(&token, "STD00000004", "88.00").await;
    srv.charge_card(&token, "STD00000004", "12.34").await;
    let p_no = p["transaction"]["tx_no"].as_str().unwrap().to_string();
    let reason = "客人退貨，\"尺寸\"不合, =見備註";
    let r = srv
        .refund_with(
            &token,
            &json!({"original_tx_no": p_no, "refund_amount": "8.00", "reason": reason}),
            &[],
        )
        .await;
    r.assert_ok();

    let res = srv
        .client
        .get(srv.url(&format!("{API}/merchant/transactions/export.csv")))
        .header("cookie", &c.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let ctype = res.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ctype.starts_with("text/csv"), "{ctype}");
    let disp = res.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        disp.starts_with("attachment;") && disp.contains(".csv"),
        "{disp}"
    );
    let bytes = res.bytes().await.unwrap();
    assert_eq!(&bytes[..3], b"\xEF\xBB\xBF", "UTF-8 BOM");
    let text = String::from_utf8(bytes[3..].to_vec()).unwrap();
    let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines[0].starts_with("tx_no,type,status,created_at,local_time,card_no,raw_amount"));
    // Newest first: the refund, with its reason quoted, commas and quotes escaped, and
    // the formula-looking text left as text.
    assert!(lines[1].starts_with("REF-DEMO-"), "{}", lines[1]);
    assert!(
        lines[1].contains("\"客人退貨，\"\"尺寸\"\"不合, =見備註\""),
        "{}",
        lines[1]
    );
    assert!(lines[1].contains(",8.00,"));
    assert!(text.contains(",88.00,") || text.contains(",83.60,"));
    assert!(text.contains("12.34"));

    // The same filters as the list.
    let res = srv
        .client
        .get(srv.url(&format!(
            "{API}/merchant/transactions/export.csv?type=payment&min_amount=50"
        )))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let text = res.text().await.unwrap();
    let rows: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(rows.len(), 2, "{text}");
    assert!(rows[1].starts_with(&p_no));
    srv.get(
        &format!("{API}/merchant/transactions/export.csv?type=bogus"),
        Some(&token),
    )
    .await
    .assert_error(400, "VALIDATION_ERROR");
    srv.get(&format!("{API}/merchant/transactions/export.csv"), None)
        .await
        .assert_error(401, "NOT_AUTHENTICATED");
}

#[tokio::test]
async fn settings_are_validated_audited_and_applied_at_once() {
    let srv = TestServer::start().await;
    let token = srv.owner_token().await;
    let c = owner_console(&srv).await;
    let s = c.get(&srv, "/console/settings").await;
    let s = s.assert_ok();
    assert_eq!(amt(&s["settings"]["limits"]["max_tx_amount"]), "2000.00");
    assert_eq!(s["settings"]["qr_single_use"], true);
    assert_eq!(s["settings"]["store_name"], "Demo Store");

    let r = c
        .put(
            &srv,
            "/console/settings",
            &json!({"limits": {"max_tx_amount": "1.234"}}),
        )
        .await;
    let d = r.assert_error(400, "VALIDATION_ERROR");
    assert_eq!(d["field"], "limits.max_tx_amount");
    for bad in [
        json!({"limits": {"max_card_unsynced": "-5"}}),
        json!({"limits": {"stale_after_secs": -1}}),
        json!({"limits": {"max_tx_amount": true}}),
        json!({"store_name": "  "}),
        json!({"qr_single_use": "no"}),
        json!({"timezone": "Mars/Base"}),
        json!({"timezone": ""}),
        json!({"currency": "  "}),
        json!({"currency": "TOO-LONG-X"}),
        json!({"time_zone": "UTC"}),
    ] {
        let r = c.put(&srv, "/console/settings", &bad).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text);
    }
    assert_eq!(
        srv.count("SELECT COUNT(*) FROM settings").await,
        0,
        "nothing stored by refused updates"
    );

    let r = c
        .put(
            &srv,
            "/console/settings",
            &json!({"store_name": "台北信義店", "qr_single_use": false, "limits": {"max_tx_amount": 10}}),
        )
        .await;
    let v = r.assert_ok();
    assert_eq!(amt(&v["settings"]["limits"]["max_tx_amount"]), "10.00");
    assert_eq!(v["settings"]["store_name"], "台北信義店");
    assert_eq!(
        c.get(&srv, "/console/session").await.json["store"]["name"],
        "台北信義店"
    );

    // The charge path applies the new limit and QR rule at once.
    let qr = srv.qr("STD00000004").await;
    let r = srv.charge(&token, &qr, "20.00").await;
    assert_eq!(
        r.assert_error(422, "OFFLINE_LIMIT_EXCEEDED")["limit"],
        "per_transaction"
    );
    srv.charge(&token, &qr, "5.00").await.assert_ok();
    srv.charge(&token, &qr, "5.00").await.assert_ok();

    let audit = c.get(&srv, "/console/audit?action=settings.update").await;
    let entries = audit.assert_ok()["entries"].as_array().unwrap().clone();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["actor"], srv.owner.0.as_str());
    assert_eq!(entries[0]["details"]["after"]["store_name"], "台北信義店");
    assert_eq!(entries[0]["details"]["before"]["qr_single_use"], true);
}

/// Issue 12: one manager request switched single-use QR off and raised every limit to
/// 9,999,999,999.99. The risk settings are the owner's, bounded by the config file.
/// A zh-TW install counts its days in Asia/Taipei and labels amounts NT$; the owner may
/// move the zone (it moves business days), a manager only the currency label, and the
/// new zone is what "today" means at once.
#[tokio::test]
async fn store_timezone_and_currency_are_settings_with_zh_tw_defaults() {
    let srv = TestServer::start_with(|c| {
        c.site.timezone = mps_edge::config::Config::default().site.timezone;
    })
    .await;
    let owner = owner_console(&srv).await;
    assert_eq!(owner.body["store"]["timezone"], "Asia/Taipei");
    assert_eq!(owner.body["store"]["currency"], "NT$");
    let s = owner.get(&srv, "/console/settings").await;
    let s = s.assert_ok();
    assert_eq!(s["settings"]["timezone"], "Asia/Taipei");
    assert_eq!(s["settings"]["currency"], "NT$");
    let token = srv.owner_token().await;
    let day = srv
        .get(&format!("{API}/merchant/daily-summary"), Some(&token))
        .await;
    assert_eq!(day.assert_ok()["timezone"], "Asia/Taipei");
    let taipei_today = chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Taipei)
        .format("%Y-%m-%d")
        .to_string();
    assert_eq!(day.json["date"], taipei_today.as_str());

    srv.create_user("boss", "manager-password-1", Role::Manager)
        .await;
    let manager = console(&srv, "boss", "manager-password-1").await;
    let r = manager
        .put(
            &srv,
            "/console/settings",
            &json!({"timezone": "Asia/Tokyo"}),
        )
        .await;
    let d = r.assert_error(403, "PERMISSION_DENIED");
    assert_eq!(d["field"], "site.timezone");
    let settings_rows = || srv.count("SELECT COUNT(*) FROM settings");
    assert_eq!(settings_rows().await, 0);
    manager
        .put(&srv, "/console/settings", &json!({"currency": " HK$ "}))
        .await
        .assert_ok();
    assert_eq!(settings_rows().await, 1);

    for (bad, field) in [
        (json!({"timezone": "Asia/Atlantis"}), "site.timezone"),
        (json!({"timezone": " "}), "site.timezone"),
        (json!({"currency": ""}), "site.currency"),
        (json!({"currency": "\u{7}"}), "site.currency"),
        (json!({"currency": "123456789"}), "site.currency"),
    ] {
        let r = owner.put(&srv, "/console/settings", &bad).await;
        let d = r.assert_error(400, "VALIDATION_ERROR");
        assert_eq!(d["field"], field, "{bad}");
    }
    assert_eq!(settings_rows().await, 1);

    let r = owner
        .put(
            &srv,
            "/console/settings",
            &json!({"timezone": "America/Los_Angeles"}),
        )
        .await;
    let v = r.assert_ok();
    assert_eq!(v["settings"]["timezone"], "America/Los_Angeles");
    assert_eq!(v["settings"]["currency"], "HK$");
    assert_eq!(v["timezone"], "America/Los_Angeles");
    let day = srv
        .get(&format!("{API}/merchant/daily-summary"), Some(&token))
        .await;
    assert_eq!(day.assert_ok()["timezone"], "America/Los_Angeles");
    let la_today = chrono::Utc::now()
        .with_timezone(&chrono_tz::America::Los_Angeles)
        .format("%Y-%m-%d")
        .to_string();
    assert_eq!(day.json["date"], la_today.as_str());
    let me = owner.get(&srv, "/console/session").await;
    assert_eq!(me.assert_ok()["store"]["currency"], "HK$");
    let audit = owner
        .get(&srv, "/console/audit?action=settings.update&limit=1")
        .await;
    let entry = audit.assert_ok()["entries"][0].clone();
    assert!(entry.to_string().contains("America/Los_Angeles"), "{entry}");
}

#[tokio::test]
async fn risk_settings_are_the_owners_and_capped_by_the_config_file() {
    let srv = TestServer::start_with(|c| {
        c.limit_ceilings.max_card_unsynced = "6000.00".parse().ok();
    })
    .await;
    srv.create_user("boss", "manager-password-1", Role::Manager)
        .await;
    let manager = console(&srv, "boss", "manager-password-1").await;
    for attack in [
        json!({"qr_single_use": false}),
        json!({"limits": {"max_tx_amount": "9999999999.99"}}),
        json!({"limits": {"max_tx_amount": "10.00"}}),
        json!({"limits": {"stale_after_secs": 0}}),
        json!({"store_name": "Mine", "limits": {"max_site_unsynced": "9999999999.99"}}),
    ] {
        let r = manager.put(&srv, "/console/settings", &attack).await;
        let d = r.assert_error(403, "PERMISSION_DENIED");
        assert_eq!(d["reason"], "owner_only", "{attack}");
        assert!(d["field"].as_str().is_some(), "{attack}: {d}");
    }
    assert_eq!(srv.count("SELECT COUNT(*) FROM settings").await, 0);
    // The console's form sends every field: unchanged risk values do not stop a manager
    // renaming the store.
    let view = manager.get(&srv, "/console/settings").await;
    let mut all = view.assert_ok()["settings"].clone();
    all["store_name"] = json!("Renamed by the manager");
    manager
        .put(&srv, "/console/settings", &all)
        .await
        .assert_ok();

    // The owner: up to the ceiling, not past it, and a refusal writes nothing.
    let owner = owner_console(&srv).await;
    let rows = srv.count("SELECT COUNT(*) FROM settings").await;
    for (body, field) in [
        (
            json!({"limits": {"max_tx_amount": "2000.01"}}),
            "limits.max_tx_amount",
        ),
        (
            json!({"limits": {"max_card_unsynced": "6000.01"}}),
            "limits.max_card_unsynced",
        ),
        (
            json!({"limits": {"max_site_unsynced": "9999999999.99"}}),
            "limits.max_site_unsynced",
        ),
        (
            json!({"limits": {"stale_after_secs": 0}}),
            "limits.stale_after_secs",
        ),
    ] {
        let r = owner.put(&srv, "/console/settings", &body).await;
        let d = r.assert_error(422, "LIMIT_ABOVE_CEILING");
        assert_eq!(d["field"], field, "{body}");
        assert!(
            r.json["error"]["message"]
                .as_str()
                .unwrap()
                .contains("ceiling"),
            "{}",
            r.text
        );
    }
    assert_eq!(srv.count("SELECT COUNT(*) FROM settings").await, rows);
    let v = owner
        .put(
            &srv,
            "/console/settings",
            &json!({"qr_single_use": false, "limits": {"max_card_unsynced": "6000.00"}}),
        )
        .await;
    assert_eq!(v.assert_ok()["settings"]["qr_single_use"], false);

    // Audited with old and new values, per key.
    let audit = owner
        .get(&srv, "/console/audit?action=settings.update")
        .await;
    let entries = audit.assert_ok()["entries"].as_array().unwrap().clone();
    let last = entries
        .iter()
        .find(|e| e["actor"] == srv.owner.0.as_str())
        .expect("the owner's change is audited");
    let changed = last["details"]["changed"].as_array().unwrap();
    assert!(
        changed.contains(&json!({"key": "qr.single_use", "old": "true", "new": "false"})),
        "{changed:?}"
    );
    assert!(
        changed.contains(
            &json!({"key": "limits.max_card_unsynced", "old": "5000.00", "new": "6000.00"})
        ),
        "{changed:?}"
    );
}

#[tokio::test]
async fn audit_log_filters_and_holds_no_secrets() {
    let srv = TestServer::start().await;
    let owner = owner_console(&srv).await;
    owner
        .post(
            &srv,
            "/console/users",
            &json!({"username": "till", "password": "till-secret-pw-1", "role": "cashier"}),
        )
        .await
        .assert_ok();
    let till = srv.login("till", "till-secret-pw-1").await;
    let users = owner.get(&srv, "/console/users").await;
    let till_id = users.json["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "till")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    owner
        .post(
            &srv,
            &format!("/console/users/{till_id}/reset-password"),
            &json!({"password": "till-secret-pw-2"}),
        )
        .await
        .assert_ok();
    let code = owner
        .post(
            &srv,
            "/console/devices/enrollment-codes",
            &json!({"name": "Till"}),
        )
        .await
        .json["code"]
        .as_str()
        .unwrap()
        .to_string();
    let dev = srv
        .post(
            &format!("{API}/devices/enroll"),
            None,
            &json!({"code": code}),
        )
        .await;
    let secret = dev.json["device_secret"].as_str().unwrap().to_string();
    srv.login_resp("till", "a-wrong-password").await;

    let all = owner.get(&srv, "/console/audit?limit=200").await;
    let text = all.assert_ok().to_string();
    for secret in [
        "till-secret-pw-1",
        "till-secret-pw-2",
        "a-wrong-password",
        srv.owner.1.as_str(),
        secret.as_str(),
        code.as_str(),
        &till,
        &owner.csrf,
        owner.cookie.trim_start_matches("mps_session="),
    ] {
        assert!(
            !text.contains(secret),
            "the audit log holds a secret: {secret}"
        );
    }

    let by_action = owner.get(&srv, "/console/audit?action=user.").await;
    let e = by_action.assert_ok()["entries"].as_array().unwrap().clone();
    let actions: Vec<&str> = e.iter().map(|x| x["action"].as_str().unwrap()).collect();
    assert!(actions.contains(&"user.create") && actions.contains(&"user.reset_password"));
    assert!(
        actions.iter().all(|a| a.starts_with("user.")),
        "{actions:?}"
    );
    let exact = owner.get(&srv, "/console/audit?action=login.failed").await;
    let e = exact.assert_ok()["entries"].as_array().unwrap().clone();
    assert_eq!(e.len(), 1);
    assert_eq!(e[0]["actor"], "till");
    assert!(e[0]["ip"].as_str().unwrap().starts_with("127.0.0.1"));
    let by_actor = owner.get(&srv, "/console/audit?actor=till").await;
    let e = by_actor.assert_ok()["entries"].as_array().unwrap().clone();
    assert!(!e.is_empty());
    assert!(e.iter().all(|x| x["actor"] == "till"));
    let enroll = owner.get(&srv, "/console/audit?action=device.enroll").await;
    assert!(enroll.json["entries"][0]["device_id"].is_string());
    let none = owner
        .get(&srv, "/console/audit?from=2000-01-01&to=2000-01-02")
        .await;
    assert_eq!(none.assert_ok()["pagination"]["total_count"], 0);
    // By family: every kind of staff change, and nothing else.
    let staff = owner
        .get(&srv, "/console/audit?family=staff&limit=200")
        .await;
    let entries = staff.assert_ok()["entries"].as_array().unwrap().clone();
    assert!(!entries.is_empty());
    for e in &entries {
        assert!(e["action"].as_str().unwrap().starts_with("user."), "{e}");
    }
    let signin = owner
        .get(&srv, "/console/audit?family=signin&limit=200")
        .await;
    let actions: Vec<String> = signin.assert_ok()["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect();
    assert!(actions.iter().any(|a| a == "console.login"), "{actions:?}");
    assert!(actions
        .iter()
        .all(|a| ["login", "logout", "console", "refresh"]
            .iter()
            .any(|p| a == p || a.starts_with(&format!("{p}.")))));
    for bad in ["family=users", "family=STAFF", "family=user."] {
        owner
            .get(&srv, &format!("/console/audit?{bad}"))
            .await
            .assert_error(400, "VALIDATION_ERROR");
    }
    let blank = owner.get(&srv, "/console/audit?family=&limit=1").await;
    blank.assert_ok();
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let some = owner
        .get(
            &srv,
            &format!("/console/audit?from={today}&to={today}&limit=1"),
        )
        .await;
    let p = &some.assert_ok()["pagination"];
    assert!(p["total_count"].as_i64().unwrap() > 3);
    assert_eq!(some.json["entries"].as_array().unwrap().len(), 1);
    owner
        .get(&srv, "/console/audit?from=yesterday")
        .await
        .assert_error(400, "VALIDATION_ERROR");
    owner
        .get(&srv, "/console/audit?limit=0")
        .await
        .assert_error(400, "VALIDATION_ERROR");
}

#[tokio::test]
async fn websocket_pushes_a_transaction_after_a_charge() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message;

    let srv = TestServer::start().await;
    let c = owner_console(&srv).await;
    let url = format!("ws://{}{API}/console/ws", srv.addr);

    // Without the cookie, or from another site, the handshake is refused.
    let no_cookie = tokio_tungstenite::connect_async(url.clone()).await;
    assert!(no_cookie.is_err());
    let mut req = url.clone().into_client_request().unwrap();
    req.headers_mut()
        .insert("cookie", c.cookie.parse().unwrap());
    req.headers_mut()
        .insert("origin", "http://evil.example".parse().unwrap());
    assert!(tokio_tungstenite::connect_async(req).await.is_err());

    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("cookie", c.cookie.parse().unwrap());
    req.headers_mut()
        .insert("origin", format!("http://{}", srv.addr).parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();

    let token = srv.owner_token().await;
    // Give the socket task a moment to subscribe before the charge commits.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let paid = srv.charge_card(&token, "STD00000004", "12.34").await;
    let tx_no = paid["transaction"]["tx_no"].as_str().unwrap().to_string();
    let refund = srv.refund(&token, &tx_no, "1.00").await;
    refund.assert_ok();

    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while seen.len() < 2 {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("an event in time")
            .expect("open socket")
            .unwrap();
        if let Message::Text(text) = msg {
            let ev: Value = serde_json::from_str(&text).unwrap();
            match ev["type"].as_str() {
                Some("transaction") => {
                    assert_eq!(ev["data"]["transaction"]["tx_no"], tx_no.as_str());
                    assert_eq!(
                        amt(&ev["data"]["transaction"]["final_amount"]),
                        amt(&paid["transaction"]["final_amount"])
                    );
                    seen.push("transaction");
                }
                Some("refund") => {
                    assert_eq!(ev["data"]["refund"]["original_tx_no"], tx_no.as_str());
                    seen.push("refund");
                }
                Some("sync") => assert!(ev["data"].is_object()),
                other => panic!("unexpected event {other:?}: {text}"),
            }
        }
    }
    assert_eq!(seen, ["transaction", "refund"]);
}

#[tokio::test]
async fn console_pages_are_served_with_csp_and_cache_rules() {
    let srv = TestServer::start().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap();
    let r = client.get(srv.url("/")).send().await.unwrap();
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["location"], "/console/");
    for path in ["/console/", "/console/transactions/PAY-DEMO-0000000001"] {
        let r = client.get(srv.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["cache-control"], "no-cache");
        let csp = r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(csp.contains("default-src 'self'") && csp.contains("connect-src 'self'"));
        assert!(!csp.contains("unsafe-inline"));
        let html = r.text().await.unwrap();
        assert!(!html.contains("{{ASSETS}}"));
        assert!(!html.contains("<script>") && !html.contains("style="));
    }
    let html = client
        .get(srv.url("/console/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let start = html.find("/console/assets/").unwrap();
    let src = &html[start..];
    let src = &src[..src.find('"').unwrap()];
    assert!(src.ends_with("/app.css") || src.ends_with("/favicon.svg"));
    let dir = &src[..src.rfind('/').unwrap()];
    for (file, ctype) in [
        ("app.js", "text/javascript"),
        ("app.css", "text/css"),
        ("i18n.js", "text/javascript"),
    ] {
        let r = client
            .get(srv.url(&format!("{dir}/{file}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{file}");
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with(ctype));
        assert_eq!(
            r.headers()["cache-control"],
            "public, max-age=31536000, immutable"
        );
    }
    let r = client
        .get(srv.url("/console/assets/0000000000/app.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = client
        .get(srv.url(&format!("{dir}/nope.js")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}
