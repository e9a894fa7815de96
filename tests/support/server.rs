//! The standalone demo server in-process for the HTTP API tests: a fresh temporary data
//! directory, the server on 127.0.0.1:0 ([`InProcess`]), requests and assertions with
//! reqwest, signing in, charges and refunds, direct reads and writes of its database.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use mps_edge::config::Config;
use mps_edge::db::Db;
use mps_edge::domain::Role;
use mps_edge::service::state::AppState;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tempfile::TempDir;

use super::in_process::InProcess;

pub const JWT_SECRET: &[u8] = b"a-test-jwt-secret-that-is-long-enough-0123";
pub const API: &str = "/api/v1";

/// A running server. Dropping it stops the server (the temp dir goes with it).
pub struct TestServer {
    pub addr: SocketAddr,
    pub base: String,
    pub client: reqwest::Client,
    pub db: Db,
    pub owner: (String, String),
    pub cfg: Config,
    /// Dropping it stops the server.
    server: InProcess,
    // Last: the directory must outlive the database handles above.
    _dir: TempDir,
}

/// A response: status, headers and the body parsed as JSON (Null when not JSON).
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Resp {
    /// Asserts an error envelope with this status and code; returns its `details`.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) -> &Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "expected {status} {code}, got {} {}",
            self.status,
            self.text
        );
        assert_eq!(
            self.json["error"]["code"].as_str(),
            Some(code),
            "expected code {code}: {}",
            self.text
        );
        assert!(
            self.json["error"]["message"].is_string(),
            "envelope without message: {}",
            self.text
        );
        assert!(
            self.json["error"].get("details").is_some(),
            "envelope without details: {}",
            self.text
        );
        &self.json["error"]["details"]
    }

    #[track_caller]
    pub fn assert_ok(&self) -> &Value {
        assert_eq!(self.status, StatusCode::OK, "expected 200: {}", self.text);
        &self.json
    }

    pub fn replayed(&self) -> bool {
        self.headers
            .get("idempotent-replayed")
            .and_then(|v| v.to_str().ok())
            == Some("true")
    }
}

/// An amount as written on the wire ("8.01"), whether sent as a JSON number or string.
#[track_caller]
pub fn amt(v: &Value) -> String {
    match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        other => panic!("not an amount: {other}"),
    }
}

/// Cents from a wire amount ("8.01" → 801).
#[track_caller]
pub fn cents(v: &Value) -> i64 {
    mps_edge::domain::money::parse_cents(&amt(v))
        .unwrap_or_else(|e| panic!("bad amount {v}: {e:?}"))
}

pub fn fmt_cents(c: i64) -> String {
    mps_edge::domain::money::format_cents(c)
}

/// The server's defaults, except the per-address request rate: every test client shares
/// 127.0.0.1 and several tests drive loads far above it (tests/api.rs tests the limit).
pub fn default_config() -> Config {
    let mut cfg = Config::default();
    cfg.server.rate_limit_per_sec = 0;
    // The tests state their days in UTC ("2024-01-01" is a UTC day); the default zone
    // (Asia/Taipei) has its own tests in tests/console_api.rs.
    cfg.site.timezone = "UTC".into();
    cfg
}

impl TestServer {
    pub async fn start() -> TestServer {
        TestServer::start_with(|_| {}).await
    }

    /// Starts a server on a fresh standalone demo database; `tweak` edits the config
    /// (data_dir is set afterwards).
    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut cfg = default_config();
        tweak(&mut cfg);
        cfg.data_dir = dir.path().to_path_buf();
        let open_cfg = cfg.clone();
        let opened = tokio::task::spawn_blocking(move || mps_edge::startup::open(&open_cfg, true))
            .await
            .expect("open task")
            .expect("startup::open");
        let owner = opened.new_owner.clone().unwrap_or_default();
        TestServer::serve(dir, cfg, opened.db, owner).await
    }

    pub async fn serve(dir: TempDir, cfg: Config, db: Db, owner: (String, String)) -> TestServer {
        let (state_cfg, state_db) = (cfg.clone(), db.clone());
        let server = InProcess::start(move |_| Ok(AppState::new(state_cfg, state_db, JWT_SECRET)))
            .await
            .expect("start the server");
        TestServer {
            addr: server.addr,
            base: server.url.clone(),
            client: super::http::client(Duration::from_secs(30)),
            db,
            owner,
            cfg,
            server,
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Sends a request; `body` is sent as JSON when given.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Resp {
        let mut req = self.client.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        into_resp(req.send().await.expect("request")).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Resp {
        self.send(Method::GET, path, token, &[], None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Resp {
        self.send(Method::POST, path, token, &[], Some(body)).await
    }

    /// `PUT /auth/pin`: the signed-in manager's approval PIN.
    pub async fn set_pin(&self, token: &str, password: &str, pin: &str) -> Resp {
        self.send(
            Method::PUT,
            &format!("{API}/auth/pin"),
            Some(token),
            &[],
            Some(&json!({"password": password, "pin": pin})),
        )
        .await
    }

    /// A manager `name` with an approval PIN, signed in; their token.
    pub async fn manager_with_pin(&self, name: &str, password: &str, pin: &str) -> String {
        self.create_user(name, password, Role::Manager).await;
        let token = self.login(name, password).await;
        self.set_pin(&token, password, pin).await.assert_ok();
        token
    }

    pub async fn login_resp(&self, user: &str, pw: &str) -> Resp {
        self.post(
            &format!("{API}/auth/login"),
            None,
            &json!({"username": user, "password": pw}),
        )
        .await
    }

    /// Signs in and returns the full token pair.
    pub async fn login_pair(&self, user: &str, pw: &str) -> Value {
        let r = self.login_resp(user, pw).await;
        r.assert_ok().clone()
    }

    pub async fn login(&self, user: &str, pw: &str) -> String {
        let pair = self.login_pair(user, pw).await;
        pair["access_token"]
            .as_str()
            .expect("access_token")
            .to_string()
    }

    pub async fn owner_token(&self) -> String {
        let (u, p) = self.owner.clone();
        self.login(&u, &p).await
    }

    /// Creates a staff account directly in the database.
    pub async fn create_user(&self, username: &str, password: &str, role: Role) {
        let db = self.db.clone();
        let username = username.to_string();
        let password = password.to_string();
        tokio::task::spawn_blocking(move || {
            let hash = mps_edge::auth::hash_password(&password).expect("hash");
            db.write_blocking(move |c| {
                mps_edge::db::users::upsert_user(
                    c,
                    &username,
                    &hash,
                    role,
                    false,
                    &mps_edge::db::users::Actor::system("test"),
                )
            })
            .expect("upsert_user");
        })
        .await
        .expect("create_user task");
    }

    /// A cashier account, signed in.
    pub async fn cashier_token(&self) -> String {
        self.create_user("cashier1", "cashier-password-1", Role::Cashier)
            .await;
        self.login("cashier1", "cashier-password-1").await
    }

    /// Issues a fresh QR token for a demo card (replacing its previous one).
    pub async fn qr_ttl(&self, card_no: &str, ttl_secs: i64) -> String {
        let db = self.db.clone();
        let card_no = card_no.to_string();
        tokio::task::spawn_blocking(move || {
            mps_edge::db::demo::issue_qr(&db, Some(&card_no), ttl_secs)
                .expect("issue_qr")
                .qr_plain
        })
        .await
        .expect("issue_qr task")
    }

    pub async fn qr(&self, card_no: &str) -> String {
        self.qr_ttl(card_no, 600).await
    }

    pub async fn charge_with(&self, token: &str, body: &Value, headers: &[(&str, &str)]) -> Resp {
        self.send(
            Method::POST,
            &format!("{API}/merchant/charge"),
            Some(token),
            headers,
            Some(body),
        )
        .await
    }

    /// POST /merchant/charge with an amount given as a decimal string.
    pub async fn charge(&self, token: &str, qr: &str, amount: &str) -> Resp {
        self.charge_with(token, &json!({"qr_plain": qr, "amount": amount}), &[])
            .await
    }

    /// A fresh QR for `card_no`, charged; asserts success and returns the body.
    pub async fn charge_card(&self, token: &str, card_no: &str, amount: &str) -> Value {
        let qr = self.qr(card_no).await;
        let r = self.charge(token, &qr, amount).await;
        r.assert_ok().clone()
    }

    pub async fn refund_with(&self, token: &str, body: &Value, headers: &[(&str, &str)]) -> Resp {
        self.send(
            Method::POST,
            &format!("{API}/merchant/refund"),
            Some(token),
            headers,
            Some(body),
        )
        .await
    }

    pub async fn refund(&self, token: &str, original_tx_no: &str, amount: &str) -> Resp {
        self.refund_with(
            token,
            &json!({"original_tx_no": original_tx_no, "refund_amount": amount}),
            &[],
        )
        .await
    }

    pub async fn validate_qr(&self, token: &str, qr: &str) -> Resp {
        self.post(
            &format!("{API}/common/qr/validate"),
            Some(token),
            &json!({ "qr_plain": qr }),
        )
        .await
    }

    pub async fn tx_detail(&self, token: &str, tx_no: &str) -> Resp {
        self.get(&format!("{API}/common/transactions/{tx_no}"), Some(token))
            .await
    }

    /// Runs a read against the database on a blocking thread.
    pub async fn read<T, F>(&self, f: F) -> T
    where
        F: FnOnce(&rusqlite::Connection) -> rusqlite::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || db.read_blocking(|c| Ok(f(c)?)).expect("db read"))
            .await
            .expect("read task")
    }

    /// Runs a write through the single writer on a blocking thread.
    pub async fn write<T, F>(&self, f: F) -> T
    where
        F: FnOnce(&rusqlite::Connection) -> rusqlite::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            db.write_blocking(move |c| Ok(f(c)?)).expect("db write")
        })
        .await
        .expect("write task")
    }

    pub async fn count(&self, sql: &'static str) -> i64 {
        self.read(move |c| c.query_row(sql, [], |r| r.get(0))).await
    }

    /// (snapshot balance, pending debit, pending credit) of a card, in cents.
    pub async fn card_money(&self, card_no: &str) -> (i64, i64, i64) {
        let card_no = card_no.to_string();
        self.read(move |c| {
            c.query_row(
                "SELECT snapshot_balance_cents, pending_debit_cents, pending_credit_cents FROM cards WHERE card_no = ?1",
                [card_no],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
        })
        .await
    }

    /// The card's available balance in cents, as the database sees it.
    pub async fn available(&self, card_no: &str) -> i64 {
        let (s, d, c) = self.card_money(card_no).await;
        s - d + c
    }
}

pub async fn into_resp(res: reqwest::Response) -> Resp {
    let status = res.status();
    let headers = res.headers().clone();
    let text = res.text().await.expect("body");
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Resp {
        status,
        headers,
        text,
        json,
    }
}

/// Sends a fully raw request (any method, headers and body bytes) to the server.
pub async fn raw_request(
    srv: &TestServer,
    method: &str,
    path: &str,
    headers: &[(String, Vec<u8>)],
    body: Option<Vec<u8>>,
) -> Resp {
    let method = Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = srv.client.request(method, srv.url(path));
    for (k, v) in headers {
        let name = reqwest::header::HeaderName::from_bytes(k.as_bytes()).expect("header name");
        let value = reqwest::header::HeaderValue::from_bytes(v).expect("header value");
        req = req.header(name, value);
    }
    if let Some(b) = body {
        req = req.body(b);
    }
    into_resp(req.send().await.expect("request")).await
}

/// Sends the same POST many times at once; returns the responses (in completion order).
pub async fn concurrent_posts(
    srv: &TestServer,
    path: &str,
    token: &str,
    requests: Vec<(Value, Vec<(String, String)>)>,
) -> Vec<Resp> {
    let mut set = tokio::task::JoinSet::new();
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(requests.len()));
    for (body, headers) in requests {
        let client = srv.client.clone();
        let url = srv.url(path);
        let token = token.to_string();
        let barrier = barrier.clone();
        set.spawn(async move {
            let mut req = client.post(url).bearer_auth(token).json(&body);
            for (k, v) in headers {
                req = req.header(k, v);
            }
            barrier.wait().await;
            into_resp(req.send().await.expect("request")).await
        });
    }
    let mut out = Vec::new();
    while let Some(r) = set.join_next().await {
        out.push(r.expect("request task"));
    }
    out
}
