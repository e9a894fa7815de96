//! The console's cookie sessions over HTTP: the `mps_session` cookie (HttpOnly) and the
//! CSRF header every state-changing request must carry; sign-in, sign-out (here or
//! everywhere), the session and the signed-in user's locale.

use axum::extract::State;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::auth::Success;
use super::extract::ApiJson;
use super::identity::{ClientIp, ConsoleSession};
use super::validate;
use crate::error::AppResult;
use crate::model::UserInfo;
use crate::service::auth::AuthUser;
use crate::service::session::{self as svc, SESSION_COOKIE, SESSION_TTL_SECS};
use crate::service::state::AppState;

fn set_cookie(state: &AppState, value: &str, max_age: i64) -> HeaderValue {
    let secure = if state.cookie_secure { "; Secure" } else { "" };
    let text = format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    );
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("invalid=1"))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ConsoleLoginRequest)]
pub struct LoginRequest {
    #[schema(value_type = crate::api_schema::Username)]
    username: String,
    #[schema(value_type = crate::api_schema::Password)]
    password: String,
}

#[utoipa::path(post, path = "/console/login", tag = "console", request_body = LoginRequest, responses((status = 200, body = svc::SessionPayload, description = "sets the HttpOnly session cookie"), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody), (status = 429, body = crate::error::ErrorBody)))]
pub async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    ApiJson(req): ApiJson<LoginRequest>,
) -> AppResult<Response> {
    validate::text(&req.username, "username", 64)?;
    validate::text(&req.password, "password", 256)?;
    let ua = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let (token, body) = svc::login(&state, req.username, req.password, ip, ua).await?;
    let mut res = Json(body).into_response();
    res.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(&state, &token, SESSION_TTL_SECS),
    );
    Ok(res)
}

#[utoipa::path(post, path = "/console/logout", tag = "console", security(("bearer" = []), ("session_cookie" = [])), responses((status = 200, body = Success, description = "clears the session cookie"), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
pub async fn logout(State(state): State<AppState>, s: ConsoleSession) -> AppResult<Response> {
    svc::logout(&state, &s.user, s.session.id).await?;
    let mut res = Json(Success { success: true }).into_response();
    res.headers_mut()
        .insert(header::SET_COOKIE, set_cookie(&state, "", 0));
    Ok(res)
}

#[utoipa::path(get, path = "/console/session", tag = "console", security(("bearer" = []), ("session_cookie" = [])), responses((status = 200, body = svc::SessionPayload), (status = 401, body = crate::error::ErrorBody)))]
pub async fn session(
    State(state): State<AppState>,
    s: ConsoleSession,
) -> AppResult<Json<svc::SessionPayload>> {
    Ok(Json(
        svc::session_payload(&state, &s.user, &s.session).await?,
    ))
}

#[utoipa::path(post, path = "/console/sign-out-everywhere", tag = "console", security(("bearer" = []), ("session_cookie" = [])), responses((status = 200, body = Success, description = "clears the session cookie"), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
pub async fn sign_out_everywhere(
    State(state): State<AppState>,
    user: AuthUser,
) -> AppResult<Response> {
    svc::logout_everywhere(&state, &user).await?;
    let mut res = Json(Success { success: true }).into_response();
    res.headers_mut()
        .insert(header::SET_COOKIE, set_cookie(&state, "", 0));
    Ok(res)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MeUpdate {
    #[schema(value_type = crate::api_schema::Locale)]
    locale: String,
}

#[utoipa::path(put, path = "/console/me", tag = "console", request_body = MeUpdate, security(("bearer" = []), ("session_cookie" = [])), responses((status = 200, body = LocaleUpdated), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
pub async fn update_me(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(req): ApiJson<MeUpdate>,
) -> AppResult<Json<LocaleUpdated>> {
    let locale = req.locale.clone();
    svc::set_locale(&state, &user, req.locale).await?;
    Ok(Json(LocaleUpdated {
        locale,
        user: user.info(),
    }))
}

/// The signed-in user and the locale now saved for them.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LocaleUpdated {
    pub locale: String,
    pub user: UserInfo,
}
