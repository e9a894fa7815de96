//! The PostgREST client for central's `edge_*` functions, with one response checker
//! that sorts every failure into transient (retry) or permanent (stop and show).

use std::time::Duration;

use serde_json::Value;

use crate::config::{CentralConfig, Secret};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// Network trouble, timeouts, 5xx, 429: retry with backoff.
    Transient,
    /// Bad key, missing functions, refused input: stop the pipeline until an operator acts.
    Permanent,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SyncError {
    pub kind: ErrorKind,
    pub message: String,
}

impl SyncError {
    pub fn transient(message: impl Into<String>) -> Self {
        SyncError {
            kind: ErrorKind::Transient,
            message: message.into(),
        }
    }
    pub fn permanent(message: impl Into<String>) -> Self {
        SyncError {
            kind: ErrorKind::Permanent,
            message: message.into(),
        }
    }
    pub fn is_transient(&self) -> bool {
        self.kind == ErrorKind::Transient
    }
}

#[derive(Clone)]
pub struct CentralClient {
    http: reqwest::Client,
    base: String,
    key: Secret,
}

impl CentralClient {
    pub fn new(cfg: &CentralConfig) -> anyhow::Result<CentralClient> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("mps-edge/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(CentralClient {
            http,
            base: cfg.url.trim_end_matches('/').to_string(),
            key: cfg.service_key.clone(),
        })
    }

    /// Calls `POST /rest/v1/rpc/<name>` with named arguments.
    pub async fn rpc(&self, name: &str, args: &Value) -> Result<Value, SyncError> {
        let res = self
            .http
            .post(format!("{}/rest/v1/rpc/{name}", self.base))
            .header("apikey", self.key.expose())
            .bearer_auth(self.key.expose())
            .json(args)
            .send()
            .await
            .map_err(|e| {
                SyncError::transient(format!(
                    "central unreachable calling {name}: {}",
                    describe(&e)
                ))
            })?;
        let status = res.status().as_u16();
        let body = res.text().await.map_err(|e| {
            SyncError::transient(format!(
                "central response to {name} was cut off: {}",
                describe(&e)
            ))
        })?;
        check_response(name, status, &body)
    }
}

/// Error text without the URL's secrets (reqwest errors carry only the URL, which holds
/// no key, but keep it short for the status page).
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection refused or failed".into()
    } else {
        e.to_string()
    }
}

/// The one response checker: status and PostgREST error body → value or classified error.
pub fn check_response(name: &str, status: u16, body: &str) -> Result<Value, SyncError> {
    if (200..300).contains(&status) {
        return serde_json::from_str(body).map_err(|_| {
            SyncError::permanent(format!(
                "central answered {name} with something that is not JSON"
            ))
        });
    }
    let parsed: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let code = parsed.get("code").and_then(Value::as_str).unwrap_or("");
    let message = parsed.get("message").and_then(Value::as_str).unwrap_or("");
    let short: String = message.chars().take(300).collect();
    match status {
        401 | 403 => Err(SyncError::permanent(format!(
            "central refused the service key calling {name} (HTTP {status} {code}); check central.service_key"
        ))),
        404 if code == "PGRST202" || code == "42883" => Err(SyncError::permanent(format!(
            "central has no function {name} (or an older version): install sync/central.sql on central"
        ))),
        408 | 425 | 429 => Err(SyncError::transient(format!("central is busy (HTTP {status}) calling {name}"))),
        500..=599 => Err(SyncError::transient(format!("central failed (HTTP {status} {code}) calling {name}: {short}"))),
        _ => Err(SyncError::permanent(format!("central refused {name} (HTTP {status} {code}): {short}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_responses() {
        assert_eq!(check_response("f", 200, "{\"a\":1}").unwrap()["a"], 1);
        assert_eq!(
            check_response("f", 200, "[]").unwrap(),
            serde_json::json!([])
        );
        let e = |s, b: &str| check_response("f", s, b).unwrap_err();
        assert!(e(503, "").is_transient());
        assert!(e(500, "{\"code\":\"57014\"}").is_transient());
        assert!(e(429, "").is_transient());
        assert!(!e(401, "{\"code\":\"PGRST301\"}").is_transient());
        assert!(!e(403, "{\"code\":\"42501\"}").is_transient());
        let missing = e(
            404,
            "{\"code\":\"PGRST202\",\"message\":\"Could not find\"}",
        );
        assert!(!missing.is_transient());
        assert!(missing.message.contains("central.sql"));
        let business = e(
            400,
            "{\"code\":\"P0001\",\"message\":\"MERCHANT_NOT_FOUND\"}",
        );
        assert!(!business.is_transient());
        assert!(business.message.contains("MERCHANT_NOT_FOUND"));
        assert!(!e(200, "not json").is_transient());
    }
}
