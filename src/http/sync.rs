//! `/api/v1/sync/*`: status, exceptions, "sync now" — for managers and owners.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::validate;
use crate::db::syncstate::{self, ExceptionView, SyncStatus};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::service::auth::AuthUser;
use crate::state::AppState;

#[utoipa::path(get, path = "/api/v1/sync/status", tag = "sync", security(("bearer" = [])),
    responses((status = 200, body = SyncStatus), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
pub async fn status(State(state): State<AppState>, user: AuthUser) -> AppResult<Json<SyncStatus>> {
    user.require_manager()?;
    let alert = state.cfg.sync_alert();
    Ok(Json(
        state.db.read(move |c| syncstate::status(c, alert)).await?,
    ))
}

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExceptionQuery {
    status: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/sync/exceptions", tag = "sync", security(("bearer" = [])), params(ExceptionQuery),
    responses((status = 200, body = Object, description = "{exceptions: [ExceptionView]}"), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
pub async fn exceptions(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(q): ApiQuery<ExceptionQuery>,
) -> AppResult<Json<Value>> {
    user.require_manager()?;
    let open_only = match q.status.as_deref() {
        None | Some("open") => true,
        Some("all") => false,
        Some(_) => {
            return Err(AppError::validation(
                "status",
                "status must be open or all.",
            ))
        }
    };
    let list: Vec<ExceptionView> = state
        .db
        .read(move |c| syncstate::list_exceptions(c, open_only))
        .await?;
    Ok(Json(json!({"exceptions": list})))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveRequest {
    note: String,
}

#[utoipa::path(post, path = "/api/v1/sync/exceptions/{id}/resolve", tag = "sync", security(("bearer" = [])),
    params(("id" = String, Path)), request_body = ResolveRequest,
    responses((status = 200, body = Object), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub async fn resolve(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<ResolveRequest>,
) -> AppResult<Json<Value>> {
    user.require_manager()?;
    validate::key(&id, "id", 64)?;
    validate::text(&req.note, "note", 1000)?;
    let actor = user.actor();
    let (id2, note) = (id.clone(), req.note.clone());
    let central_id = state
        .db
        .write(move |c| syncstate::resolve_exception(c, &id2, &note, &actor))
        .await?;
    let mut central_resolved = false;
    if let (Some(sync), Some(cid)) = (&state.sync, central_id) {
        if sync
            .resolve_central(&cid, &user.username, &req.note)
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
    Ok(Json(
        json!({"resolved": true, "id": id, "central_resolved": central_resolved}),
    ))
}

#[utoipa::path(post, path = "/api/v1/sync/now", tag = "sync", security(("bearer" = [])),
    responses((status = 200, body = Object), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 503, body = crate::error::ErrorBody)))]
pub async fn sync_now(State(state): State<AppState>, user: AuthUser) -> AppResult<Json<Value>> {
    user.require_manager()?;
    let Some(sync) = &state.sync else {
        return Err(AppError::msg(
            ErrorCode::Unavailable,
            "No central is configured; this store runs standalone.",
        ));
    };
    match sync.sync_now().await {
        Ok((push, pull)) => Ok(Json(json!({"ok": true, "push": push, "pull": pull}))),
        Err(e) => Err(AppError::msg(
            ErrorCode::Unavailable,
            format!("Sync failed: {}", e.message),
        )
        .with_details(json!({"transient": e.is_transient()}))),
    }
}
