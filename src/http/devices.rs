//! POS devices: enrollment codes (`/api/v1/console/devices/*`) and enrollment by a
//! terminal (`/api/v1/devices/enroll`).

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde::Serialize;

use super::extract::{ApiJson, ApiPath};
use super::identity::ClientIp;
use super::validate;
use crate::error::AppResult;
use crate::service::auth::AuthUser;
use crate::service::devices as svc;
use crate::service::state::AppState;

#[utoipa::path(get, path = "/console/devices", tag = "console", security(("bearer" = []), ("session_cookie" = [])), responses((status = 200, body = svc::DeviceList), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
pub async fn list_devices(
    State(state): State<AppState>,
    user: AuthUser,
) -> AppResult<Json<svc::DeviceList>> {
    Ok(Json(svc::list_devices(&state, &user).await?))
}

/// The answer to a revocation: which device (`revoked` is always true).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeviceRevoked {
    pub id: String,
    pub revoked: bool,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    #[schema(value_type = crate::api_schema::DeviceName)]
    name: String,
}

#[utoipa::path(post, path = "/console/devices/enrollment-codes", tag = "console", request_body = CodeRequest, security(("bearer" = []), ("session_cookie" = [])), responses((status = 200, body = svc::EnrollmentCode), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
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
    #[schema(value_type = crate::api_schema::EnrollmentCodeText)]
    code: String,
}

#[utoipa::path(post, path = "/devices/enroll", tag = "console", request_body = EnrollRequest, responses((status = 200, body = svc::Enrollment, description = "the device's id and secret (shown only now)"), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody), (status = 429, body = crate::error::ErrorBody)))]
pub async fn enroll(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<EnrollRequest>,
) -> AppResult<Json<svc::Enrollment>> {
    validate::text(&req.code, "code", 32)?;
    Ok(Json(svc::enroll(&state, &req.code, ip).await?))
}

/// The answer to a cancellation: which code (`cancelled` is always true).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CodeCancelled {
    pub id: i64,
    pub cancelled: bool,
}

#[utoipa::path(post, path = "/console/devices/enrollment-codes/{id}/cancel", tag = "console", params(("id" = i64, Path, minimum = 1, maximum = 9007199254740991_i64, description = "the pending code's id from GET /console/devices")), security(("bearer" = []), ("session_cookie" = [])), responses((status = 200, body = CodeCancelled), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, description = "NOT_FOUND: no such pending code", body = crate::error::ErrorBody)))]
pub async fn cancel_enrollment_code(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<String>,
) -> AppResult<Json<CodeCancelled>> {
    let id: i64 = id.parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
        crate::error::AppError::validation("id", "id must be a positive whole number.")
    })?;
    svc::cancel_enrollment_code(&state, &user, id).await?;
    Ok(Json(CodeCancelled {
        id,
        cancelled: true,
    }))
}

#[utoipa::path(post, path = "/console/devices/{id}/revoke", tag = "console", params(("id" = crate::api_schema::Key64, Path)), security(("bearer" = []), ("session_cookie" = [])), responses((status = 200, body = DeviceRevoked), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 409, description = "CONFLICT: already revoked", body = crate::error::ErrorBody)))]
pub async fn revoke_device(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<String>,
) -> AppResult<Json<DeviceRevoked>> {
    validate::key(&id, "id", 64)?;
    svc::revoke_device(&state, &user, id.clone()).await?;
    Ok(Json(DeviceRevoked { id, revoked: true }))
}
