//! The head-office daemon API (`/api/v1/daemon/*`): who may call it (a request signed
//! with the site's `[daemon] secret`, checked by `domain::daemon_signature`, never seen
//! before), the replay cache that remembers accepted signatures, and the status it
//! reads. Triggering a cycle is `service::sync::sync_now`, as for the console.

use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::daemon_signature::{self, Rejection, SignedRequest, WINDOW_SECS};
use crate::domain::money::ser_cents;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::service::replay::{Remembered, REPLAY_CAPACITY};
use crate::service::state::AppState;
use crate::sync::plan::PipelineStatus;

/// 404 when this store has no daemon secret: the API is off, its routes as if absent
/// (though not the router's own "No such route.", which means a route really is absent).
pub fn ensure_enabled(state: &AppState) -> AppResult<()> {
    if state.cfg.daemon.enabled() {
        Ok(())
    } else {
        Err(AppError::msg(
            ErrorCode::NotFound,
            "The head-office daemon API is off on this store.",
        ))
    }
}

/// Lets a daemon request through, or says why not: 404 when the daemon API is off (no
/// secret), 401 for a missing, malformed, stale, wrong or replayed signature, 503 when
/// the replay cache is full. Counts the verdict in the metrics.
pub fn authenticate(state: &AppState, req: &SignedRequest<'_>) -> AppResult<()> {
    ensure_enabled(state)?;
    let secret = &state.cfg.daemon.secret;
    let now = chrono::Utc::now().timestamp();
    let verified = daemon_signature::verify(secret.expose().as_bytes(), req, now)
        .map_err(|rejection| refuse(req, rejection, now))?;
    match state.daemon_replay.remember(verified, now) {
        Remembered::Fresh => {
            crate::metrics::daemon_accepted();
            Ok(())
        }
        Remembered::Replayed => Err(refuse(req, Rejection::Replayed, now)),
        Remembered::Stale => Err(refuse(req, Rejection::Stale, now)),
        Remembered::Full => {
            crate::metrics::daemon_rejected("replay_cache_full");
            tracing::warn!(
                capacity = REPLAY_CAPACITY,
                "head-office daemon request refused: the replay cache is full"
            );
            Err(AppError::msg(
                ErrorCode::Unavailable,
                "Too many signed requests in the last few minutes; try again shortly.",
            )
            .with_details(serde_json::json!({"reason": "replay_cache_full"})))
        }
    }
}

/// Counts and logs a refusal, and words it for the daemon.
fn refuse(req: &SignedRequest<'_>, rejection: Rejection, now: i64) -> AppError {
    crate::metrics::daemon_rejected(rejection.reason());
    // The reason and the route only: never the headers, which carry the signature.
    tracing::warn!(
        reason = rejection.reason(),
        method = req.method,
        path = req.path,
        "head-office daemon request refused"
    );
    rejection_error(rejection, now)
}

fn rejection_error(rejection: Rejection, now: i64) -> AppError {
    let code = match rejection {
        Rejection::Missing => ErrorCode::DaemonSignatureMissing,
        Rejection::Malformed => ErrorCode::DaemonSignatureMalformed,
        Rejection::Stale => ErrorCode::DaemonSignatureStale,
        Rejection::Invalid => ErrorCode::DaemonSignatureInvalid,
        Rejection::Replayed => ErrorCode::DaemonSignatureReplayed,
    };
    let err = AppError::new(code);
    if rejection == Rejection::Stale {
        // The daemon's clock is off, or the request waited too long: tell it ours.
        return err.with_details(serde_json::json!({
            "window_secs": WINDOW_SECS,
            "server_time_unix": now,
        }));
    }
    err
}

/// What head office sees of this store's sync: the sync status the console shows,
/// trimmed to what a fleet view needs, with the store's code, version and clock.
#[derive(Debug, Serialize, ToSchema)]
pub struct DaemonStatus {
    /// This store's `[site] code`.
    pub site_code: String,
    /// The edge's version.
    pub version: &'static str,
    /// This store's clock (unix seconds), to spot a skew before signatures go stale.
    pub server_time_unix: i64,
    /// `central`, `standalone` or `standalone-demo` (as the console's sync status).
    pub mode: String,
    pub central_configured: bool,
    /// Whether central answered the last contact; null before any.
    pub online: Option<bool>,
    /// Operations waiting in the outbox.
    pub queue_depth: i64,
    pub oldest_pending_at: Option<String>,
    pub oldest_pending_age_secs: Option<i64>,
    /// Charges accepted here that central has not confirmed yet.
    #[schema(value_type = f64)]
    #[serde(serialize_with = "ser_cents")]
    pub unsynced_charges_amount: i64,
    pub open_exceptions: i64,
    pub last_push_ok_at: Option<String>,
    pub last_pull_ok_at: Option<String>,
    pub replica_age_secs: Option<i64>,
    pub push: PipelineStatus,
    pub pull: PipelineStatus,
    /// What makes the sync unhealthy now, as `/ready` reports it. Empty = healthy.
    pub problems: Vec<String>,
}

/// The sync status (`service::sync::status`, the console's) for head office.
pub async fn status(state: &AppState) -> AppResult<DaemonStatus> {
    let s = crate::service::sync::status(state).await?;
    Ok(DaemonStatus {
        site_code: state.cfg.site.code.clone(),
        version: env!("CARGO_PKG_VERSION"),
        server_time_unix: chrono::Utc::now().timestamp(),
        mode: s.mode,
        central_configured: s.central_configured,
        online: s.online,
        queue_depth: s.queue_depth,
        oldest_pending_at: s.oldest_pending_at,
        oldest_pending_age_secs: s.oldest_pending_age_secs,
        unsynced_charges_amount: s.unsynced_charges_amount,
        open_exceptions: s.open_exceptions,
        last_push_ok_at: s.last_push_ok_at,
        last_pull_ok_at: s.last_pull_ok_at,
        replica_age_secs: s.replica_age_secs,
        push: s.push,
        pull: s.pull,
        problems: s.problems,
    })
}
