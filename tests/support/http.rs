//! The HTTP calls every harness makes against a running edge, in-process or the real
//! binary: a client, signing in (a bearer token) and a charge.

use std::time::Duration;

use anyhow::anyhow;
use serde_json::{json, Value};

/// `POST` path of signing in.
pub const LOGIN: &str = "/api/v1/auth/login";
/// `POST` path of a charge.
pub const CHARGE: &str = "/api/v1/merchant/charge";

/// A client that ignores proxy settings (everything is on loopback).
pub fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(timeout)
        .build()
        .expect("http client")
}

/// Signs in at the edge at `base` (`http://127.0.0.1:PORT`) and returns the access token.
pub async fn login(
    http: &reqwest::Client,
    base: &str,
    username: &str,
    password: &str,
) -> anyhow::Result<String> {
    let r: Value = http
        .post(format!("{base}{LOGIN}"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await?
        .json()
        .await?;
    r["access_token"]
        .as_str()
        .map(String::from)
        .ok_or_else(|| anyhow!("login failed: {r}"))
}

/// A charge of `amount` (a decimal string) on the QR token `qr`, ready to send (add
/// headers such as `Idempotency-Key` first if needed).
pub fn charge(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    qr: &str,
    amount: &str,
) -> reqwest::RequestBuilder {
    http.post(format!("{base}{CHARGE}"))
        .bearer_auth(token)
        .json(&json!({"qr_plain": qr, "amount": amount}))
}
