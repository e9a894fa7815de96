//! Sync as the API and the console see it: the status with its problems, the exception
//! list and resolving an exception (here, then best effort at central), a manual cycle,
//! and the readiness checks of `/ready`.

use serde::Serialize;

use crate::db::meta;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::service::auth::AuthUser;
use crate::service::state::AppState;
use crate::sync::engine::{PullReport, PushReport};
use crate::sync::state::{self as syncstate, ExceptionView, SyncStatus};

/// The sync status, with the problems judged against `central.alert_after_secs`.
pub async fn status(state: &AppState) -> AppResult<SyncStatus> {
    let alert = state.cfg.sync_alert();
    state.db.read(move |c| syncstate::status(c, alert)).await
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ExceptionList {
    pub exceptions: Vec<ExceptionView>,
}

pub async fn exceptions(state: &AppState, open_only: bool) -> AppResult<ExceptionList> {
    let exceptions = state
        .db
        .read(move |c| syncstate::list_exceptions(c, open_only))
        .await?;
    Ok(ExceptionList { exceptions })
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Resolved {
    pub resolved: bool,
    pub id: String,
    /// Whether central recorded the resolution too (best effort: the local record stands).
    pub central_resolved: bool,
}

/// Resolves an exception here with a note, then tells central when it knows the
/// exception and can be reached.
pub async fn resolve_exception(
    state: &AppState,
    user: &AuthUser,
    id: String,
    note: String,
) -> AppResult<Resolved> {
    let actor = user.actor();
    let (id2, note2) = (id.clone(), note.clone());
    let central_id = state
        .db
        .write(move |c| syncstate::resolve_exception(c, &id2, &note2, &actor))
        .await?;
    let mut central_resolved = false;
    if let (Some(sync), Some(cid)) = (&state.sync, central_id) {
        if sync
            .resolve_central(&cid, &user.username, &note)
            .await
            .is_ok()
        {
            let id3 = id.clone();
            state
                .db
                .write(move |c| syncstate::mark_central_resolved(c, &id3))
                .await?;
            central_resolved = true;
        }
    }
    Ok(Resolved {
        resolved: true,
        id,
        central_resolved,
    })
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SyncNowReport {
    pub ok: bool,
    pub push: PushReport,
    pub pull: PullReport,
}

/// One manual cycle (the same as `mps-edge sync now`): clear stops, push, pull.
pub async fn sync_now(state: &AppState) -> AppResult<SyncNowReport> {
    let Some(sync) = &state.sync else {
        // Not "try later" (503): it will not work until [central] is configured.
        return Err(AppError::new(ErrorCode::NoCentral));
    };
    // Its own task: a request that times out or a client that hangs up does not cut a
    // cycle short (a cut push is safe, central dedups by op_id, but wasted).
    let sync = sync.clone();
    let cycle = tokio::spawn(async move { sync.sync_now().await })
        .await
        .map_err(|e| AppError::internal(format!("sync task failed: {e}")))?;
    match cycle {
        Ok((push, pull)) => Ok(SyncNowReport {
            ok: true,
            push,
            pull,
        }),
        Err(e) => Err(AppError::msg(
            ErrorCode::Unavailable,
            format!("Sync failed: {}", e.message),
        )
        .with_details(serde_json::json!({"transient": e.is_transient()}))),
    }
}

/// What keeps the store from being ready: the database not writable or readable, no
/// merchant yet, or (with a central) a stopped or long-failing sync pipeline.
/// How long one readiness check answers `/ready`: a probe every second, or a flood of
/// them, costs one write round-trip and one status read per period, not one per request.
const READINESS_TTL: std::time::Duration = std::time::Duration::from_secs(2);

/// `readiness_problems`, at most once per `READINESS_TTL`; concurrent callers wait for
/// the one check under way instead of each running their own.
pub async fn readiness_cached(state: &AppState) -> Vec<String> {
    let mut last = state.readiness.lock().await;
    if let Some((at, problems)) = last.as_ref() {
        if at.elapsed() < READINESS_TTL {
            return problems.clone();
        }
    }
    let problems = readiness_problems(state).await;
    *last = Some((std::time::Instant::now(), problems.clone()));
    problems
}

pub async fn readiness_problems(state: &AppState) -> Vec<String> {
    let mut problems: Vec<String> = Vec::new();
    let writable = state
        .db
        .write(|c| {
            c.execute_batch("SELECT 1")?;
            Ok(())
        })
        .await;
    if writable.is_err() {
        problems.push("database is not writable".into());
    }
    match state.db.read(|c| meta::get(c, meta::MERCHANT_ID)).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            problems.push("no replica yet: the merchant has not been loaded from central".into())
        }
        Err(_) => problems.push("database is not readable".into()),
    }
    if state.cfg.sync_alert().is_some() {
        match status(state).await {
            Ok(s) => problems.extend(s.problems),
            Err(_) => problems.push("sync status is not readable".into()),
        }
    }
    problems
}
