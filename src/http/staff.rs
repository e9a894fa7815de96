//! `/api/v1/console/users`: staff accounts (owners and managers).

use axum::extract::State;
use axum::Json;
use serde::Deserialize;

use super::extract::{ApiJson, ApiPath};
use super::validate;
use crate::domain::Role;
use crate::error::{AppError, AppResult};
use crate::service::auth::AuthUser;
use crate::service::staff as svc;
use crate::service::state::AppState;

#[utoipa::path(get, path = "/console/users", tag = "console", security(("bearer" = []), ("session_cookie" = [])), responses((status = 200, body = svc::StaffList), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
pub async fn list_users(
    State(state): State<AppState>,
    user: AuthUser,
) -> AppResult<Json<svc::StaffList>> {
    let users = svc::list_staff(&state, &user).await?;
    Ok(Json(svc::StaffList { users }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    #[schema(value_type = crate::api_schema::NewUsername)]
    username: String,
    #[schema(value_type = crate::api_schema::NewPassword)]
    password: String,
    #[schema(value_type = crate::api_schema::RoleName)]
    role: String,
}

#[utoipa::path(post, path = "/console/users", tag = "console", request_body = CreateUser, security(("bearer" = []), ("session_cookie" = [])), responses((status = 200, body = svc::StaffMember), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub async fn create_user(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(req): ApiJson<CreateUser>,
) -> AppResult<Json<svc::StaffMember>> {
    let username = req.username.trim().to_string();
    validate::text(&username, "username", 64)?;
    let role = Role::parse(&req.role)
        .ok_or_else(|| AppError::validation("role", "role must be owner, manager or cashier."))?;
    let created = svc::create_staff(&state, &user, username, req.password, role).await?;
    Ok(Json(svc::StaffMember { user: created }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisableRequest {
    disabled: bool,
}

#[utoipa::path(post, path = "/console/users/{id}/disable", tag = "console", request_body = DisableRequest, params(("id" = crate::api_schema::Key64, Path)), security(("bearer" = []), ("session_cookie" = [])), responses((status = 200, body = svc::StaffMember), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 409, description = "CONFLICT: not yourself, and not the last active owner", body = crate::error::ErrorBody)))]
pub async fn disable_user(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<DisableRequest>,
) -> AppResult<Json<svc::StaffMember>> {
    validate::key(&id, "id", 64)?;
    let view = svc::set_disabled(&state, &user, id, req.disabled).await?;
    Ok(Json(svc::StaffMember { user: view }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    #[schema(value_type = crate::api_schema::NewPassword)]
    password: String,
}

#[utoipa::path(post, path = "/console/users/{id}/reset-password", tag = "console", request_body = ResetRequest, params(("id" = crate::api_schema::Key64, Path)), security(("bearer" = []), ("session_cookie" = [])), responses((status = 200, body = svc::StaffMember), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn reset_password(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<ResetRequest>,
) -> AppResult<Json<svc::StaffMember>> {
    validate::key(&id, "id", 64)?;
    let view = svc::reset_password(&state, &user, id, req.password).await?;
    Ok(Json(svc::StaffMember { user: view }))
}

/// Lifts a sign-in lock: forgets every failed sign-in of the account, from every address.
#[utoipa::path(post, path = "/console/users/{id}/unlock", tag = "console", params(("id" = crate::api_schema::Key64, Path)), security(("bearer" = []), ("session_cookie" = [])), responses((status = 200, body = svc::StaffMember), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn unlock_user(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<String>,
) -> AppResult<Json<svc::StaffMember>> {
    validate::key(&id, "id", 64)?;
    let view = svc::unlock(&state, &user, id).await?;
    Ok(Json(svc::StaffMember { user: view }))
}
