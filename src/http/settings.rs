//! `/api/v1/console/settings`: the limits and switches in force, and changing them.

use axum::extract::State;
use axum::Json;

use super::extract::ApiJson;
use crate::error::AppResult;
use crate::service::auth::AuthUser;
use crate::service::settings::{self as svc, SettingsUpdate, SettingsView};
use crate::service::state::AppState;

#[utoipa::path(get, path = "/console/settings", tag = "console", security(("bearer" = []), ("session_cookie" = [])), responses((status = 200, body = SettingsView), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
pub async fn get_settings(
    State(state): State<AppState>,
    user: AuthUser,
) -> AppResult<Json<SettingsView>> {
    user.require_manager()?;
    Ok(Json(svc::settings_view(&state)))
}

#[utoipa::path(put, path = "/console/settings", tag = "console", request_body = crate::service::settings::SettingsUpdate, security(("bearer" = []), ("session_cookie" = [])), responses((status = 200, body = SettingsView), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 422, description = "LIMIT_ABOVE_CEILING: a limit above its [limit_ceilings] value", body = crate::error::ErrorBody)))]
pub async fn put_settings(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(req): ApiJson<SettingsUpdate>,
) -> AppResult<Json<SettingsView>> {
    Ok(Json(svc::update_settings(&state, &user, req).await?))
}
