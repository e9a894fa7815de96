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

/// How this store proves who it is to central.
#[derive(Clone)]
enum Credentials {
    /// The project's anon key plus this store's site key (`x-mps-site-key`): central
    /// takes the site and merchant from the site key and can revoke it alone.
    Site { anon: Secret, site: Secret },
    /// Central's service_role key (stores not yet migrated; refused in production).
    Service(Secret),
}

#[derive(Clone)]
pub struct CentralClient {
    http: reqwest::Client,
    base: String,
    credentials: Credentials,
}

/// The store is configured with central's service_role key rather than a site key.
pub fn uses_service_key(cfg: &CentralConfig) -> bool {
    cfg.site_key.is_empty() && !cfg.service_key.is_empty()
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
            credentials: if uses_service_key(cfg) {
                Credentials::Service(cfg.service_key.clone())
            } else {
                Credentials::Site {
                    anon: cfg.anon_key.clone(),
                    site: cfg.site_key.clone(),
                }
            },
        })
    }

    /// Calls `POST /rest/v1/rpc/<name>` with named arguments.
    pub async fn rpc(&self, name: &str, args: &Value) -> Result<Value, SyncError> {
        let req = self.http.post(format!("{}/rest/v1/rpc/{name}", self.base));
        let req = match &self.credentials {
            Credentials::Site { anon, site } => req
                .header("apikey", anon.expose())
                .bearer_auth(anon.expose())
                .header("x-mps-site-key", site.expose()),
            Credentials::Service(key) => {
                req.header("apikey", key.expose()).bearer_auth(key.expose())
            }
        };
        let res = req.json(args).send().await.map_err(|e| {
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

/// True for a PostgreSQL SQLSTATE (five characters of 0-9/A-Z), as opposed to
/// PostgREST's own `PGRSTnnn` codes.
fn is_sqlstate(code: &str) -> bool {
    code.len() == 5
        && code
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
}

/// The one response checker: status and PostgREST error body → value or classified error.
///
/// A missing function (`PGRST202`) and a refused key stop the pipeline. A PostgreSQL
/// error raised *inside* an installed function (e.g. 42883 `function now_utc() does not
/// exist`, which PostgREST also answers with 404) is a fault on central's side: it is
/// reported as what it is — function, SQLSTATE, message — and retried with backoff, so
/// the store recovers by itself once central is fixed.
pub fn check_response(name: &str, status: u16, body: &str) -> Result<Value, SyncError> {
    if (200..300).contains(&status) {
        return serde_json::from_str(body).map_err(|_| {
            SyncError::permanent(format!(
                "central answered {name} with something that is not JSON"
            ))
        });
    }
    let parsed: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let field = |k: &str| -> String {
        parsed
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .chars()
            .take(300)
            .collect()
    };
    let (code, short) = (field("code"), field("message"));
    let detail = match (field("details"), field("hint")) {
        (d, h) if d.is_empty() && h.is_empty() => String::new(),
        (d, h) if h.is_empty() => format!(" ({d})"),
        (d, h) if d.is_empty() => format!(" (hint: {h})"),
        (d, h) => format!(" ({d}; hint: {h})"),
    };
    match (status, code.as_str()) {
        // the site key (sync/central.sql, mps_edge.authenticate): an operator must act
        (401, "EDGE_SITE_REVOKED") => {
            return Err(SyncError::permanent(format!(
                "central has revoked this store's site key ({short}); ask head office for a new \
                 one (edge_register_site) and put it in central.site_key_file"
            )))
        }
        (401, "EDGE_SITE_KEY_INVALID") => {
            return Err(SyncError::permanent(
                "central does not know this store's site key; check central.site_key \
                 (edge_register_site shows a key once)"
                    .to_string(),
            ))
        }
        (401, "EDGE_SITE_KEY_REQUIRED") => {
            return Err(SyncError::permanent(format!(
                "central needs a site key for {name}; set central.anon_key and central.site_key"
            )))
        }
        (403, "EDGE_SITE_MISMATCH") => {
            return Err(SyncError::permanent(format!(
                "central says the site key is another store's: {short}; check site.code, \
                 central.merchant_code and central.site_key"
            )))
        }
        _ => {}
    }
    match status {
        404 if code == "PGRST202" => Err(SyncError::permanent(format!(
            "central has no function {name} (or an older version): install sync/central.sql on central"
        ))),
        401 | 403 if !is_sqlstate(&code) || code == "42501" => Err(SyncError::permanent(format!(
            "central refused the key calling {name} (HTTP {status} {code}{}); check central.anon_key and central.site_key (or central.service_key)",
            if short.is_empty() { String::new() } else { format!(": {short}") }
        ))),
        408 | 425 | 429 => Err(SyncError::transient(format!(
            "central is busy (HTTP {status}) calling {name}"
        ))),
        400..=599 if is_sqlstate(&code) && code != "P0001" => Err(SyncError::transient(format!(
            "central's {name} failed inside the database: SQLSTATE {code}: {short}{detail} — \
             sync/central.sql is installed, but fails on this central; install the current \
             sync/central.sql on central (see sync/README.md, search_path) and check central's \
             database log. Retrying."
        ))),
        500..=599 => Err(SyncError::transient(format!(
            "central failed (HTTP {status} {code}) calling {name}: {short}"
        ))),
        _ => Err(SyncError::permanent(format!(
            "central refused {name} (HTTP {status} {code}): {short}{detail}"
        ))),
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

    #[test]
    fn an_error_inside_an_installed_function_is_not_called_missing() {
        let e = |s, b: &str| check_response("edge_apply_batch", s, b).unwrap_err();
        // upstream's trigger under search_path = '': PostgREST answers 404 with the SQLSTATE
        let fault = e(
            404,
            r#"{"code":"42883","message":"function now_utc() does not exist","details":null,"hint":"No function matches the given name and argument types."}"#,
        );
        assert!(
            !fault.message.contains("has no function"),
            "{}",
            fault.message
        );
        assert!(
            fault.message.contains("edge_apply_batch"),
            "{}",
            fault.message
        );
        assert!(
            fault.message.contains("SQLSTATE 42883"),
            "{}",
            fault.message
        );
        assert!(
            fault.message.contains("function now_utc() does not exist"),
            "{}",
            fault.message
        );
        assert!(
            fault.message.contains("hint: No function matches"),
            "{}",
            fault.message
        );
        assert!(
            fault.is_transient(),
            "retried: fixed on central, the store recovers by itself"
        );
        let relation = e(
            404,
            r#"{"code":"42P01","message":"relation \"admin_users\" does not exist"}"#,
        );
        assert!(
            relation.message.contains("SQLSTATE 42P01"),
            "{}",
            relation.message
        );
        // a check violation inside the batch, a numeric error: same
        assert!(e(400, r#"{"code":"23514","message":"violates check"}"#)
            .message
            .contains("SQLSTATE 23514"));
        // the function itself missing from PostgREST's schema cache: not installed
        let missing = e(
            404,
            r#"{"code":"PGRST202","message":"Could not find the function"}"#,
        );
        assert!(missing.message.contains("install sync/central.sql"));
        assert!(!missing.is_transient());
        // a business refusal raised on purpose (P0001) stays a permanent refusal
        let refused = e(400, r#"{"code":"P0001","message":"MERCHANT_NOT_FOUND"}"#);
        assert!(!refused.is_transient());
        assert!(refused.message.contains("MERCHANT_NOT_FOUND"));
        // the key: JWT errors and a denied execute right
        assert!(!e(401, r#"{"code":"PGRST301"}"#).is_transient());
        let denied = e(
            403,
            r#"{"code":"42501","message":"permission denied for function edge_apply_batch"}"#,
        );
        assert!(!denied.is_transient());
        assert!(denied.message.contains("central.site_key"));
    }

    #[test]
    fn site_key_refusals_say_what_to_do() {
        let e = |s, b: &str| check_response("edge_apply_batch", s, b).unwrap_err();
        let body =
            |code: &str| format!(r#"{{"code":"{code}","message":"m","details":null,"hint":null}}"#);
        let revoked = e(401, &body("EDGE_SITE_REVOKED"));
        assert!(!revoked.is_transient());
        assert!(revoked.message.contains("revoked"), "{}", revoked.message);
        let unknown = e(401, &body("EDGE_SITE_KEY_INVALID"));
        assert!(!unknown.is_transient());
        assert!(
            unknown.message.contains("does not know"),
            "{}",
            unknown.message
        );
        assert!(!e(401, &body("EDGE_SITE_KEY_REQUIRED")).is_transient());
        let other = e(403, &body("EDGE_SITE_MISMATCH"));
        assert!(other.message.contains("another store"), "{}", other.message);
        // too many unknown keys from this address: wait and retry
        assert!(e(429, &body("EDGE_SITE_KEY_THROTTLED")).is_transient());
    }
}
