//! The head-office daemon API (`/api/v1/daemon/*`): who may call it (a request signed
//! with the site's `[daemon] secret`, checked by `domain::daemon_signature`, never seen
//! before), the replay cache that remembers accepted signatures, and the status it
//! reads. Triggering a cycle is `service::sync::sync_now`, as for the console.

use std::collections::BTreeSet;
use std::sync::{Mutex, PoisonError};

use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::daemon_signature::{self, Rejection, SignedRequest, Verified, WINDOW_SECS};
use crate::domain::money::ser_cents;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::service::state::AppState;
use crate::sync::plan::PipelineStatus;

/// Most signatures remembered at once. Each is remembered for at most twice the window
/// (a timestamp up to 300 s ahead, kept until it is 300 s old): 10,000 in ten minutes is
/// some 16 genuine requests a second, far above what one daemon sends one store.
pub const REPLAY_CAPACITY: usize = 10_000;

/// What the replay cache says about a verified request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remembered {
    /// Not seen before; now remembered.
    Fresh,
    /// This exact signature was accepted before.
    Replayed,
    /// Outside the window of the latest clock reading the cache has seen (another
    /// request read the clock later, and may already have forgotten this signature).
    Stale,
    /// As many live signatures as the cache holds.
    Full,
}

/// The signatures accepted within the window, by (timestamp, tag): the tag covers the
/// timestamp, so the pair names one exact signature, and the ordering by timestamp
/// makes forgetting the expired ones cheap.
///
/// Bounded, and when full it refuses rather than evicts: a signature evicted while its
/// timestamp is still inside the window could be replayed and be accepted again. Only
/// requests whose HMAC verified get in, so filling it takes the secret (or a daemon
/// gone wild); either way refusing (503) is safe, the daemon retries with a fresh
/// signature, and entries leave within ten minutes.
pub struct ReplayCache {
    inner: Mutex<Inner>,
    capacity: usize,
}

struct Inner {
    seen: BTreeSet<(i64, [u8; daemon_signature::TAG_LEN])>,
    /// The latest `now` any request brought. Forgetting is judged against it, and so is
    /// a request arriving with an earlier `now`: a signature forgotten by a request that
    /// read the clock a second later is then refused as stale, never accepted again.
    latest_now: i64,
}

impl Default for ReplayCache {
    fn default() -> Self {
        ReplayCache::new(REPLAY_CAPACITY)
    }
}

impl ReplayCache {
    pub fn new(capacity: usize) -> Self {
        ReplayCache {
            inner: Mutex::new(Inner {
                seen: BTreeSet::new(),
                latest_now: i64::MIN,
            }),
            capacity,
        }
    }

    /// Remembers `v` (verified at `now`, unix seconds) unless it is a replay, has left
    /// the window, or the cache is full.
    pub fn remember(&self, v: Verified, now: i64) -> Remembered {
        // Nothing below panics; a poisoned lock still holds a consistent set.
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.latest_now = inner.latest_now.max(now);
        let oldest_live = inner.latest_now.saturating_sub(WINDOW_SECS);
        while inner.seen.first().is_some_and(|(ts, _)| *ts < oldest_live) {
            inner.seen.pop_first();
        }
        if v.ts < oldest_live {
            return Remembered::Stale;
        }
        if inner.seen.contains(&(v.ts, v.tag)) {
            return Remembered::Replayed;
        }
        if inner.seen.len() >= self.capacity {
            return Remembered::Full;
        }
        inner.seen.insert((v.ts, v.tag));
        Remembered::Fresh
    }

    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .seen
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;

    fn sig(ts: i64, n: u8) -> Verified {
        Verified {
            ts,
            tag: [n; daemon_signature::TAG_LEN],
        }
    }

    #[test]
    fn a_signature_is_accepted_once() {
        let cache = ReplayCache::new(10);
        assert_eq!(cache.remember(sig(NOW, 1), NOW), Remembered::Fresh);
        assert_eq!(cache.remember(sig(NOW, 1), NOW), Remembered::Replayed);
        assert_eq!(cache.remember(sig(NOW, 1), NOW + 200), Remembered::Replayed);
        // Another signature with the same timestamp is another request.
        assert_eq!(cache.remember(sig(NOW, 2), NOW), Remembered::Fresh);
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn signatures_are_forgotten_once_their_timestamp_leaves_the_window() {
        let cache = ReplayCache::new(10);
        assert_eq!(cache.remember(sig(NOW, 1), NOW), Remembered::Fresh);
        // A timestamp ahead of the clock stays until it is WINDOW_SECS old.
        assert_eq!(cache.remember(sig(NOW + 300, 2), NOW), Remembered::Fresh);
        assert_eq!(
            cache.remember(sig(NOW + 300, 3), NOW + 300),
            Remembered::Fresh
        );
        assert_eq!(cache.len(), 3, "all live at NOW + 300");
        assert_eq!(
            cache.remember(sig(NOW + 301, 4), NOW + 301),
            Remembered::Fresh
        );
        assert_eq!(cache.len(), 3, "the NOW one is forgotten at NOW + 301");
        assert_eq!(
            cache.remember(sig(NOW + 600, 5), NOW + 601),
            Remembered::Fresh
        );
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn an_earlier_clock_reading_cannot_bring_a_forgotten_signature_back() {
        let cache = ReplayCache::new(10);
        assert_eq!(cache.remember(sig(NOW - 300, 1), NOW), Remembered::Fresh);
        // Another request reads the clock a second later: the first is forgotten.
        assert_eq!(cache.remember(sig(NOW + 1, 2), NOW + 1), Remembered::Fresh);
        // A replay of the first that verified against the earlier reading is refused.
        assert_eq!(cache.remember(sig(NOW - 300, 1), NOW), Remembered::Stale);
    }

    #[test]
    fn full_refuses_instead_of_evicting_live_signatures() {
        let cache = ReplayCache::new(3);
        for n in 0..3 {
            assert_eq!(cache.remember(sig(NOW, n), NOW), Remembered::Fresh);
        }
        assert_eq!(cache.remember(sig(NOW, 9), NOW), Remembered::Full);
        // Still remembered: replays are still refused as replays.
        for n in 0..3 {
            assert_eq!(cache.remember(sig(NOW, n), NOW + 300), Remembered::Replayed);
        }
        // Room again once they leave the window.
        assert_eq!(
            cache.remember(sig(NOW + 301, 9), NOW + 301),
            Remembered::Fresh
        );
        assert_eq!(cache.len(), 1);
    }
}
