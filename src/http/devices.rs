//! POS devices: enrollment codes (`/api/v1/console/devices/*`) and enrollment by a
//! terminal (`/api/v1/devices/enroll`).

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::{ApiJson, ApiPath};
use super::identity::ClientIp;
use super::validate;
use crate::error::AppResult;
use crate::service::auth::AuthUser;
use crate::service::devices as svc;
use crate::state::AppState;

#[utoipa::path(get, path = "/api/v1/console/devices", tag = "console", security(("bearer" = []), ("session_cookie" = [])), responses((status = 200, body = Object), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
pub async fn list_devices(State(state): State<AppState>, user: AuthUser) -> AppResult<Json<Value>> {
    Ok(Json(svc::list_devices(&state, &user).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    name: String,
}

#[utoipa::path(post, path = "/api/v1/console/devices/enrollment-codes", tag = "console", request_body = CodeRequest, security(("bearer" = []), ("session_cookie" = [])), responses((status = 200, body = Object), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
pub async fn enrollment_code(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(req): ApiJson<CodeRequest>,
) -> AppResult<Json<svc::EnrollmentCode>> {
    let name = req.name.trim().to_string();
    validate::text(&name, "name", 64)?;
    Ok(Json(
        svc::create_enrollment_code(&state, &user, name).await?,
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    code: String,
}

#[utoipa::path(post, path = "/api/v1/devices/enroll", tag = "console", request_body = EnrollRequest, responses((status = 200, body = Object, description = "{device_id, device_secret}"), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody), (status = 429, body = crate::error::ErrorBody)))]
pub async fn enroll(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<EnrollRequest>,
) -> AppResult<Json<svc::Enrollment>> {
    validate::text(&req.code, "code", 32)?;
    Ok(Json(svc::enroll(&state, &req.code, ip).await?))
}

#[utoipa::path(post, path = "/api/v1/console/devices/{id}/revoke", tag = "console", params(("id" = String, Path)), security(("bearer" = []), ("session_cookie" = [])), responses((status = 200, body = Object), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn revoke_device(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<String>,
) -> AppResult<Json<Value>> {
    validate::key(&id, "id", 64)?;
    svc::revoke_device(&state, &user, id.clone()).await?;
    Ok(Json(json!({"revoked": true, "id": id})))
}
