//! `/api/v1/sync/*`: status, exceptions, "sync now" — for managers and owners.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;

use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::validate;
use crate::error::{AppError, AppResult};
use crate::service::auth::AuthUser;
use crate::service::state::AppState;
use crate::service::sync as svc;
use crate::sync::state::SyncStatus;

#[utoipa::path(get, path = "/sync/status", tag = "sync", security(("bearer" = [])),
    responses((status = 200, body = SyncStatus), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
pub async fn status(State(state): State<AppState>, user: AuthUser) -> AppResult<Json<SyncStatus>> {
    user.require_manager()?;
    Ok(Json(svc::status(&state).await?))
}

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExceptionQuery {
    #[param(value_type = Option<crate::api_schema::ExceptionFilter>)]
    status: Option<String>,
}

#[utoipa::path(get, path = "/sync/exceptions", tag = "sync", security(("bearer" = [])), params(ExceptionQuery),
    responses((status = 200, body = svc::ExceptionList), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
pub async fn exceptions(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(q): ApiQuery<ExceptionQuery>,
) -> AppResult<Json<svc::ExceptionList>> {
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
    Ok(Json(svc::exceptions(&state, open_only).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveRequest {
    #[schema(value_type = crate::api_schema::Note)]
    note: String,
}

#[utoipa::path(post, path = "/sync/exceptions/{id}/resolve", tag = "sync", security(("bearer" = [])),
    params(("id" = crate::api_schema::Key64, Path)), request_body = ResolveRequest,
    responses((status = 200, body = svc::Resolved), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub async fn resolve(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<ResolveRequest>,
) -> AppResult<Json<svc::Resolved>> {
    user.require_manager()?;
    validate::key(&id, "id", 64)?;
    validate::text(&req.note, "note", 1000)?;
    Ok(Json(
        svc::resolve_exception(&state, &user, id, req.note).await?,
    ))
}

#[utoipa::path(post, path = "/sync/now", tag = "sync", security(("bearer" = [])),
    responses((status = 200, body = svc::SyncNowReport), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 409, description = "NO_CENTRAL: this store runs standalone", body = crate::error::ErrorBody), (status = 503, description = "SERVICE_UNAVAILABLE: the cycle failed (details.transient)", body = crate::error::ErrorBody)))]
pub async fn sync_now(
    State(state): State<AppState>,
    user: AuthUser,
) -> AppResult<Json<svc::SyncNowReport>> {
    user.require_manager()?;
    Ok(Json(svc::sync_now(&state).await?))
}
