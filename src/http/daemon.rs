//! `/api/v1/daemon/*`: the head-office sync daemon's API. Not behind the staff sign-in:
//! a request is let in by its signature alone ([`DaemonSigned`]), like seed 003's
//! ingest API. The rules are `domain::daemon_signature`; the replay cache and the
//! verdict are `service::daemon`.

use axum::body::Bytes;
use axum::extract::{FromRequest, OriginalUri, Request, State};
use axum::Json;

use crate::domain::daemon_signature::{SignedRequest, SIGN_HEADER, TS_HEADER};
use crate::error::{AppError, AppResult};
use crate::service::daemon::{self as svc, DaemonStatus};
use crate::service::state::AppState;
use crate::service::sync::{self as sync_svc, SyncNowReport};

/// A request carrying a good head-office daemon signature, not seen before. Reads the
/// body (it is signed), so it comes last among a handler's extractors.
pub struct DaemonSigned;

impl FromRequest<AppState> for DaemonSigned {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        svc::ensure_enabled(state)?;
        let method = req.method().as_str().to_owned();
        // The path as the daemon sent it: a nested router sees only its own part.
        let path = req.extensions().get::<OriginalUri>().map_or_else(
            || req.uri().path().to_owned(),
            |OriginalUri(uri)| uri.path().to_owned(),
        );
        let (ts, sign) = (header(&req, TS_HEADER), header(&req, SIGN_HEADER));
        let body = Bytes::from_request(req, state)
            .await
            .map_err(super::extract::body_error)?;
        svc::authenticate(
            state,
            &SignedRequest {
                ts: ts.as_deref(),
                sign: sign.as_deref(),
                method: &method,
                path: &path,
                body: &body,
            },
        )?;
        Ok(DaemonSigned)
    }
}

/// A header's value; one that is not visible ASCII cannot be in the format, and
/// becomes "", which fails it.
fn header(req: &Request, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .map(|v| v.to_str().unwrap_or_default().to_owned())
}

/// This store's sync status, for the head-office daemon.
///
/// Signed, not signed in. Send `X-Ingest-Ts` (unix seconds, decimal digits) and
/// `X-Ingest-Sign`: the lowercase hex HMAC-SHA256, keyed with this site's
/// `[daemon] secret`, of `ts + "\n" + METHOD + "\n" + path + "\n" + body`, where path is
/// the request path without the query string (`/api/v1/daemon/status`) and body the
/// raw body bytes (empty for GET). Accepted when |now − ts| ≤ 300 s, the HMAC verifies
/// and this exact signature has not been accepted before. 401 `DAEMON_SIGNATURE_MISSING`,
/// `DAEMON_SIGNATURE_MALFORMED`, `DAEMON_SIGNATURE_STALE` (details: `server_time_unix`),
/// `DAEMON_SIGNATURE_INVALID` or `DAEMON_SIGNATURE_REPLAYED` otherwise; 404 when this
/// store has no daemon secret (the API is off).
#[utoipa::path(get, path = "/daemon/status", tag = "daemon", security(("daemon_signature" = [])),
    params(
        ("X-Ingest-Ts" = crate::api_schema::IngestTs, Header, description = "Unix seconds, decimal digits; within 300 s of the store's clock"),
        ("X-Ingest-Sign" = crate::api_schema::IngestSign, Header, description = "Lowercase hex HMAC-SHA256 of ts \\n METHOD \\n path \\n body"),
    ),
    responses((status = 200, body = DaemonStatus),
              (status = 401, body = crate::error::ErrorBody, description = "signature missing, malformed, stale, invalid or replayed"),
              (status = 404, body = crate::error::ErrorBody, description = "the daemon API is off (no [daemon] secret)"),
              (status = 503, body = crate::error::ErrorBody, description = "the replay cache is full; retry shortly")))]
pub async fn status(
    State(state): State<AppState>,
    _signed: DaemonSigned,
) -> AppResult<Json<DaemonStatus>> {
    Ok(Json(svc::status(&state).await?))
}

/// Runs one sync cycle now (push, then pull), as the console's "Sync now" does.
///
/// Signed, not signed in. Send `X-Ingest-Ts` (unix seconds, decimal digits) and
/// `X-Ingest-Sign`: the lowercase hex HMAC-SHA256, keyed with this site's
/// `[daemon] secret`, of `ts + "\n" + METHOD + "\n" + path + "\n" + body`, where path is
/// the request path without the query string (`/api/v1/daemon/sync`) and body the raw
/// body bytes exactly as sent (any body, empty included, as long as it is the one
/// signed). Accepted when |now − ts| ≤ 300 s, the HMAC verifies and this exact signature
/// has not been accepted before. 401 `DAEMON_SIGNATURE_MISSING`,
/// `DAEMON_SIGNATURE_MALFORMED`, `DAEMON_SIGNATURE_STALE` (details: `server_time_unix`),
/// `DAEMON_SIGNATURE_INVALID` or `DAEMON_SIGNATURE_REPLAYED` otherwise; 404 when this
/// store has no daemon secret (the API is off). 409 `NO_CENTRAL` when the store runs
/// standalone; 503 `SERVICE_UNAVAILABLE` when the cycle fails.
#[utoipa::path(post, path = "/daemon/sync", tag = "daemon", security(("daemon_signature" = [])),
    params(
        ("X-Ingest-Ts" = crate::api_schema::IngestTs, Header, description = "Unix seconds, decimal digits; within 300 s of the store's clock"),
        ("X-Ingest-Sign" = crate::api_schema::IngestSign, Header, description = "Lowercase hex HMAC-SHA256 of ts \\n METHOD \\n path \\n body"),
    ),
    responses((status = 200, body = SyncNowReport),
              (status = 401, body = crate::error::ErrorBody, description = "signature missing, malformed, stale, invalid or replayed"),
              (status = 404, body = crate::error::ErrorBody, description = "the daemon API is off (no [daemon] secret)"),
              (status = 409, body = crate::error::ErrorBody, description = "NO_CENTRAL: this store runs standalone"),
              (status = 503, body = crate::error::ErrorBody, description = "the cycle failed, or the replay cache is full")))]
pub async fn sync(
    State(state): State<AppState>,
    _signed: DaemonSigned,
) -> AppResult<Json<SyncNowReport>> {
    Ok(Json(sync_svc::sync_now(&state).await?))
}
