//! The one test-support module of the project, used by every integration test
//! (`mod support;`) and by the benchmark (`examples/bench.rs`):
//!
//! - [`binary`]: the real binary (`mps-edge serve` on 127.0.0.1:0, its URL and owner
//!   password read from its banner; one-shot commands such as `demo qr`);
//! - [`in_process`]: the server started in-process on 127.0.0.1:0;
//! - [`http`]: signing in (a bearer token) and a charge, over HTTP;
//! - [`net`]: raw TCP writes and reads for the connection-limit tests;
//! - [`server`]: the standalone demo server in-process for the HTTP API tests;
//! - [`edge`]: an in-process edge wired to a central, an owner signed in;
//! - the stand-in central MPS: a throwaway PostgreSQL cluster ([`pg`]), a
//!   PostgREST-compatible HTTP front ([`gateway`]) and a fault-injecting proxy
//!   ([`proxy`]).
//!
//! [`Central::start`] wires the first two together: a cluster with
//! `tests/fixtures/central/upstream.sql` + `sync/central.sql` loaded into
//! [`pg::CENTRAL_DB`] and a gateway on 127.0.0.1:0 using [`JWT_SECRET`]. With
//! `MPS_UPSTREAM_DIR` naming an upstream checkout, the real upstream SQL
//! replaces the fixture ([`pg::central_flavour`], [`pg::PgCluster::load_central`]).

#![allow(dead_code)]

pub mod app;
pub mod binary;
pub mod edge;
pub mod gateway;
pub mod http;
pub mod in_process;
pub mod net;
pub mod pg;
pub mod proxy;
pub mod server;

use anyhow::Context;
use serde_json::Value;

/// The JWT secret the gateway of [`Central::start`] verifies keys with.
pub const JWT_SECRET: &str = "central-gateway-test-jwt-secret-0123456789";

/// A response from the gateway (or the proxy): status, raw text and the body
/// parsed as JSON (`Value::Null` when empty or not JSON).
#[derive(Debug, Clone)]
pub struct RpcResponse {
    pub status: u16,
    pub text: String,
    pub json: Value,
}

impl RpcResponse {
    /// The PostgREST error `code` (`P0001`, `PGRST202`, ...), if any.
    pub fn code(&self) -> Option<&str> {
        self.json.get("code").and_then(Value::as_str)
    }

    /// The PostgREST error `message`, if any.
    pub fn message(&self) -> Option<&str> {
        self.json.get("message").and_then(Value::as_str)
    }
}

/// `POST {base_url}/rest/v1/rpc/{function}` with `apikey` and
/// `Authorization: Bearer` both set to `key`, like the edge does.
/// Transport errors (refused, reset, dropped) come back as `Err`.
pub async fn rpc(
    http: &reqwest::Client,
    base_url: &str,
    key: &str,
    function: &str,
    args: &Value,
) -> anyhow::Result<RpcResponse> {
    let resp = http
        .post(format!("{base_url}/rest/v1/rpc/{function}"))
        .header("apikey", key)
        .header("authorization", format!("Bearer {key}"))
        .json(args)
        .send()
        .await?;
    let status = resp.status().as_u16();
    let text = resp.text().await?;
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Ok(RpcResponse { status, text, json })
}

/// A running stand-in central: cluster + gateway. Dropping it stops both.
pub struct Central {
    // gateway first: it is dropped before the cluster
    pub gateway: gateway::GatewayHandle,
    pub pg: pg::PgCluster,
    /// `role: service_role` key (what the edge is configured with).
    pub service_key: String,
    /// `role: anon` key.
    pub anon_key: String,
    pub http: reqwest::Client,
}

impl Central {
    /// Starts a cluster, loads the central schema and serves the gateway on
    /// 127.0.0.1:0. Takes 1–3 s.
    pub async fn start() -> anyhow::Result<Central> {
        let pg = tokio::task::spawn_blocking(pg::PgCluster::start_central)
            .await
            .context("cluster start task")??;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let gateway = gateway::spawn_gateway(&pg.url(pg::CENTRAL_DB), JWT_SECRET, listener).await?;
        let http = http::client(std::time::Duration::from_secs(30));
        Ok(Central {
            gateway,
            pg,
            service_key: gateway::service_jwt(JWT_SECRET, "service_role"),
            anon_key: gateway::service_jwt(JWT_SECRET, "anon"),
            http,
        })
    }

    /// The gateway's base URL (`http://127.0.0.1:PORT`).
    pub fn url(&self) -> String {
        self.gateway.url()
    }

    /// Calls `function` on the gateway with the service key.
    pub async fn rpc(&self, function: &str, args: &Value) -> anyhow::Result<RpcResponse> {
        rpc(&self.http, &self.url(), &self.service_key, function, args).await
    }

    /// Registers `site` for `merchant` (`edge_register_site`, as head office does)
    /// and returns its site key.
    pub async fn register_site(&self, merchant: &str, site: &str) -> String {
        let r = self
            .rpc(
                "edge_register_site",
                &serde_json::json!({"p_merchant_code": merchant, "p_site_code": site}),
            )
            .await
            .unwrap();
        assert_eq!(r.status, 200, "register {site}: {}", r.text);
        r.json["site_key"].as_str().unwrap().to_string()
    }

    /// Calls `function` on the gateway with the given key.
    pub async fn rpc_as(
        &self,
        key: &str,
        function: &str,
        args: &Value,
    ) -> anyhow::Result<RpcResponse> {
        rpc(&self.http, &self.url(), key, function, args).await
    }

    /// Runs SQL on the central database as the superuser through psql and
    /// returns the `-At` output (rows on lines, columns split by `|`).
    pub fn sql(&self, sql: &str) -> anyhow::Result<String> {
        self.pg.psql_command(pg::CENTRAL_DB, sql)
    }
}
