//! An in-process edge for the sync tests: its own data directory, a server on
//! 127.0.0.1:0 ([`InProcess`]) wired to a (stand-in or real upstream) central, and an
//! owner signed in over HTTP ([`http::login`]). Shared by `tests/sync_e2e.rs` and
//! `tests/upstream_contract.rs`.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use mps_edge::config::{Config, Secret};
use mps_edge::db::{users, Db};
use mps_edge::domain::money::{cents_from_json, parse_decimal_cents};
use mps_edge::domain::Role;
use serde_json::{json, Value};
use tempfile::TempDir;

use super::http;
use super::in_process::InProcess;

/// The central merchant code the sync tests sell for.
pub const MERCHANT: &str = "M001";
/// The edge owner's password.
pub const OWNER_PW: &str = "owner-password-1";

pub struct Edge {
    pub url: String,
    pub db: Db,
    pub http: reqwest::Client,
    pub token: String,
    /// Dropping it stops the server.
    server: InProcess,
    pub dir: TempDir,
}

impl Edge {
    /// An edge for site `site` selling for [`MERCHANT`] at `central_url`, talking to
    /// central with the anon key and its own site key (the way a store is set up).
    pub async fn start_keyed(
        site: &str,
        central_url: &str,
        anon_key: &str,
        site_key: &str,
    ) -> Edge {
        Edge::start_at(site, central_url, |c| {
            c.anon_key = Secret::new(anon_key);
            c.site_key = Secret::new(site_key);
        })
        .await
    }

    /// An edge for site `site` selling for [`MERCHANT`] at `central_url` with central's
    /// service key `key` (a store not yet migrated to a site key).
    pub async fn start(site: &str, central_url: &str, key: &str) -> Edge {
        Edge::start_at(site, central_url, |c| c.service_key = Secret::new(key)).await
    }

    /// An edge for `site` at `central_url` in a fresh temp dir; `keys` sets its credentials.
    async fn start_at(
        site: &str,
        central_url: &str,
        keys: impl FnOnce(&mut mps_edge::config::CentralConfig),
    ) -> Edge {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = Config {
            data_dir: dir.path().join("data"),
            ..Config::default()
        };
        cfg.site.code = site.into();
        // Load from one address (see server::default_config).
        cfg.server.rate_limit_per_sec = 0;
        cfg.central.url = central_url.into();
        cfg.central.merchant_code = MERCHANT.into();
        keys(&mut cfg.central);
        Edge::start_with(cfg, dir).await
    }

    /// An edge serving `cfg` (whose data lives in `dir`), with an owner signed in.
    pub async fn start_with(cfg: Config, dir: TempDir) -> Edge {
        let c2 = cfg.clone();
        let opened = tokio::task::spawn_blocking(move || mps_edge::startup::open(&c2, true))
            .await
            .unwrap()
            .unwrap();
        let db = opened.db.clone();
        let hash = mps_edge::auth::hash_password(OWNER_PW).unwrap();
        let d2 = db.clone();
        tokio::task::spawn_blocking(move || {
            d2.write_blocking(move |c| {
                users::upsert_user(
                    c,
                    "owner",
                    &hash,
                    Role::Owner,
                    false,
                    &users::Actor::system("test"),
                )
            })
        })
        .await
        .unwrap()
        .unwrap();
        let state_db = db.clone();
        let server = InProcess::start(move |stop| {
            mps_edge::startup::build_state(
                cfg,
                state_db,
                b"sync-e2e-jwt-secret-0123456789abcdef",
                stop,
            )
        })
        .await
        .unwrap();
        let http = http::client(Duration::from_secs(30));
        let token = http::login(&http, &server.url, "owner", OWNER_PW)
            .await
            .unwrap();
        Edge {
            url: server.url.clone(),
            db,
            http,
            token,
            server,
            dir,
        }
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn status(&self) -> Value {
        self.get("/api/v1/sync/status").await
    }

    /// Waits for the first bootstrap (the merchant and at least `cards` cards).
    pub async fn wait_bootstrap(&self, cards: i64) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let s = self.status().await;
            if s["replica"]["merchant"] == 1 && s["replica"]["cards"].as_i64().unwrap_or(0) >= cards
            {
                return;
            }
            assert!(Instant::now() < deadline, "bootstrap did not finish: {s}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A charge that must be accepted.
    pub async fn charge(&self, qr: &str, amount: &str) -> Value {
        let r = http::charge(&self.http, &self.url, &self.token, qr, amount)
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        let b = r.json().await.unwrap_or(Value::Null);
        assert_eq!(s, 200, "edge charge {amount}: {b}");
        b
    }

    pub async fn sync_now(&self) -> (u16, Value) {
        self.post("/api/v1/sync/now", &json!({})).await
    }

    /// Pushes until the outbox is empty (at most 60 s).
    pub async fn wait_drained(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let s = self.status().await;
            if s["queue_depth"] == 0 {
                return;
            }
            assert!(Instant::now() < deadline, "outbox not drained: {s}");
            let _ = self.sync_now().await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The card's spendable balance in the replica, in cents.
    pub fn available(&self, card_id: &str) -> i64 {
        let id = card_id.to_string();
        self.db
            .read_blocking(move |c| {
                Ok(c.query_row(
                    "SELECT snapshot_balance_cents - pending_debit_cents + pending_credit_cents FROM cards WHERE id = ?1",
                    [id],
                    |r| r.get::<_, i64>(0),
                )?)
            })
            .unwrap()
    }
}

/// Money from a JSON number or decimal string, in cents.
pub fn money(v: &Value) -> i64 {
    cents_from_json(v).unwrap_or_else(|_| parse_decimal_cents(&v.to_string()).unwrap())
}
