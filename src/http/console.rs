//! `/api/v1/console/*` (the web console's own endpoints), `/api/v1/devices/enroll`,
//! the CSV export and settlements under `/api/v1/merchant/*`, and the console pages.

use axum::extract::State;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::console_assets;
use super::console_ws;
use super::extract::{client_ip, ApiJson, ApiPath, ApiQuery, ClientIp};
use super::merchant::{parse_bound, tx_filter, ListQuery};
use super::validate;
use crate::db::console::{AuditFilter, SessionRow};
use crate::domain::Role;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::service::auth::AuthUser;
use crate::service::console::{
    self as svc, Csrf, SettingsUpdate, SESSION_COOKIE, SESSION_TTL_SECS,
};
use crate::state::AppState;

/// Routes under `/api/v1`.
pub fn api_routes() -> Router<AppState> {
    Router::new()
        .route("/console/login", post(login))
        .route("/console/logout", post(logout))
        .route("/console/session", get(session))
        .route("/console/sign-out-everywhere", post(sign_out_everywhere))
        .route("/console/me", axum::routing::put(update_me))
        .route("/console/users", get(list_users).post(create_user))
        .route("/console/users/{id}/disable", post(disable_user))
        .route("/console/users/{id}/reset-password", post(reset_password))
        .route("/console/devices", get(list_devices))
        .route("/console/devices/enrollment-codes", post(enrollment_code))
        .route("/console/devices/{id}/revoke", post(revoke_device))
        .route("/devices/enroll", post(enroll))
        .route("/console/audit", get(audit))
        .route("/console/settings", get(get_settings).put(put_settings))
        .route("/console/ws", get(console_ws::handler))
        .route("/merchant/transactions/export.csv", get(export_csv))
        .route(
            "/merchant/settlements",
            get(list_settlements).post(create_settlement),
        )
        .route("/merchant/settlements/{id}", get(settlement))
}

/// The pages: `/` redirects to `/console/`, which serves the console.
pub fn page_routes() -> Router<AppState> {
    Router::new()
        .route("/", get(to_console))
        .route("/console", get(to_console))
        .route("/console/", get(console_assets::shell))
        .route("/console/{*path}", get(console_assets::page_or_asset))
}

async fn to_console() -> Response {
    (
        StatusCode::FOUND,
        [
            (header::LOCATION, "/console/"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
    )
        .into_response()
}

// ---------------------------------------------------------------------------------------
// Cookie session
// ---------------------------------------------------------------------------------------

/// The session token from the `Cookie` header.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// A console user from the session cookie; state-changing methods also need the
/// session's CSRF token in `X-CSRF-Token`.
pub async fn cookie_user(parts: &Parts, state: &AppState) -> AppResult<(AuthUser, SessionRow)> {
    let token = session_cookie(&parts.headers).ok_or_else(|| {
        AppError::msg(
            ErrorCode::NotAuthenticated,
            "Sign in first (Authorization: Bearer <access token>, or the console's session).",
        )
    })?;
    let safe = matches!(
        parts.method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    );
    let csrf = if safe {
        Csrf::NotNeeded
    } else {
        Csrf::Header(
            parts
                .headers
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok()),
        )
    };
    svc::authenticate_session(state, &token, csrf, client_ip(parts)).await
}

/// A request authenticated by the console cookie only (not a bearer token).
pub struct ConsoleSession {
    pub user: AuthUser,
    pub session: SessionRow,
}

impl axum::extract::FromRequestParts<AppState> for ConsoleSession {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> AppResult<Self> {
        let (user, session) = cookie_user(parts, state).await?;
        Ok(ConsoleSession { user, session })
    }
}

fn set_cookie(state: &AppState, value: &str, max_age: i64) -> HeaderValue {
    let secure = if state.cookie_secure { "; Secure" } else { "" };
    let text = format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    );
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("invalid=1"))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    username: String,
    password: String,
}

#[utoipa::path(post, path = "/api/v1/console/login", tag = "console", request_body = LoginRequest, responses((status = 200, body = Object, description = "sets the HttpOnly session cookie; returns {csrf_token, user, locale, store, expires_at}"), (status = 400, body = super::openapi::ErrorBody), (status = 401, body = super::openapi::ErrorBody), (status = 429, body = super::openapi::ErrorBody)))]
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

#[utoipa::path(post, path = "/api/v1/console/logout", tag = "console", security(("bearer" = []), ("session_cookie" = [])), responses((status = 200, body = Object), (status = 401, body = super::openapi::ErrorBody), (status = 403, body = super::openapi::ErrorBody)))]
pub async fn logout(State(state): State<AppState>, s: ConsoleSession) -> AppResult<Response> {
    svc::logout(&state, &s.user, s.session.id).await?;
    let mut res = Json(json!({"success": true})).into_response();
    res.headers_mut()
        .insert(header::SET_COOKIE, set_cookie(&state, "", 0));
    Ok(res)
}

#[utoipa::path(get, path = "/api/v1/console/session", tag = "console", security(("bearer" = []), ("session_cookie" = [])), responses((status = 200, body = Object), (status = 401, body = super::openapi::ErrorBody)))]
pub async fn session(
    State(state): State<AppState>,
    s: ConsoleSession,
) -> AppResult<Json<svc::SessionPayload>> {
    Ok(Json(
        svc::session_payload(&state, &s.user, &s.session).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/console/sign-out-everywhere", tag = "console", security(("bearer" = []), ("session_cookie" = [])), responses((status = 200, body = Object), (status = 401, body = super::openapi::ErrorBody), (status = 403, body = super::openapi::ErrorBody)))]
pub async fn sign_out_everywhere(
    State(state): State<AppState>,
    user: AuthUser,
) -> AppResult<Response> {
    svc::logout_everywhere(&state, &user).await?;
    let mut res = Json(json!({"success": true})).into_response();
    res.headers_mut()
        .insert(header::SET_COOKIE, set_cookie(&state, "", 0));
    Ok(res)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MeUpdate {
    locale: String,
}

#[utoipa::path(put, path = "/api/v1/console/me", tag = "console", request_body = MeUpdate, security(("bearer" = []), ("session_cookie" = [])), responses((status = 200, body = Object), (status = 400, body = super::openapi::ErrorBody), (status = 401, body = super::openapi::ErrorBody), (status = 403, body = super::openapi::ErrorBody)))]
pub async fn update_me(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(req): ApiJson<MeUpdate>,
) -> AppResult<Json<Value>> {
    let locale = req.locale.clone();
    svc::set_locale(&state, &user, req.locale).await?;
    Ok(Json(json!({"user": user.info(), "locale": locale})))
}

// ---------------------------------------------------------------------------------------
// Staff
// ---------------------------------------------------------------------------------------

#[utoipa::path(get, path = "/api/v1/console/users", tag = "console", security(("bearer" = []), ("session_cookie" = [])), responses((status = 200, body = Object), (status = 401, body = super::openapi::ErrorBody), (status = 403, body = super::openapi::ErrorBody)))]
pub async fn list_users(State(state): State<AppState>, user: AuthUser) -> AppResult<Json<Value>> {
    let users = svc::list_staff(&state, &user).await?;
    Ok(Json(json!({"users": users})))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    username: String,
    password: String,
    role: String,
}

#[utoipa::path(post, path = "/api/v1/console/users", tag = "console", request_body = CreateUser, security(("bearer" = []), ("session_cookie" = [])), responses((status = 200, body = Object), (status = 400, body = super::openapi::ErrorBody), (status = 401, body = super::openapi::ErrorBody), (status = 403, body = super::openapi::ErrorBody), (status = 409, body = super::openapi::ErrorBody)))]
pub async fn create_user(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(req): ApiJson<CreateUser>,
) -> AppResult<Json<Value>> {
    let username = req.username.trim().to_string();
    validate::text(&username, "username", 64)?;
    let role = Role::parse(&req.role)
        .ok_or_else(|| AppError::validation("role", "role must be owner, manager or cashier."))?;
    let created = svc::create_staff(&state, &user, username, req.password, role).await?;
    Ok(Json(json!({"user": created})))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisableRequest {
    disabled: bool,
}

#[utoipa::path(post, path = "/api/v1/console/users/{id}/disable", tag = "console", request_body = DisableRequest, params(("id" = String, Path)), security(("bearer" = []), ("session_cookie" = [])), responses((status = 200, body = Object), (status = 400, body = super::openapi::ErrorBody), (status = 401, body = super::openapi::ErrorBody), (status = 403, body = super::openapi::ErrorBody), (status = 404, body = super::openapi::ErrorBody)))]
pub async fn disable_user(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<DisableRequest>,
) -> AppResult<Json<Value>> {
    validate::key(&id, "id", 64)?;
    let view = svc::set_disabled(&state, &user, id, req.disabled).await?;
    Ok(Json(json!({"user": view})))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    password: String,
}

#[utoipa::path(post, path = "/api/v1/console/users/{id}/reset-password", tag = "console", request_body = ResetRequest, params(("id" = String, Path)), security(("bearer" = []), ("session_cookie" = [])), responses((status = 200, body = Object), (status = 400, body = super::openapi::ErrorBody), (status = 401, body = super::openapi::ErrorBody), (status = 403, body = super::openapi::ErrorBody), (status = 404, body = super::openapi::ErrorBody)))]
pub async fn reset_password(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<ResetRequest>,
) -> AppResult<Json<Value>> {
    validate::key(&id, "id", 64)?;
    let view = svc::reset_password(&state, &user, id, req.password).await?;
    Ok(Json(json!({"user": view})))
}

// ---------------------------------------------------------------------------------------
// Devices
// ---------------------------------------------------------------------------------------

#[utoipa::path(get, path = "/api/v1/console/devices", tag = "console", security(("bearer" = []), ("session_cookie" = [])), responses((status = 200, body = Object), (status = 401, body = super::openapi::ErrorBody), (status = 403, body = super::openapi::ErrorBody)))]
pub async fn list_devices(State(state): State<AppState>, user: AuthUser) -> AppResult<Json<Value>> {
    Ok(Json(svc::list_devices(&state, &user).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    name: String,
}

#[utoipa::path(post, path = "/api/v1/console/devices/enrollment-codes", tag = "console", request_body = CodeRequest, security(("bearer" = []), ("session_cookie" = [])), responses((status = 200, body = Object), (status = 400, body = super::openapi::ErrorBody), (status = 401, body = super::openapi::ErrorBody), (status = 403, body = super::openapi::ErrorBody)))]
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

#[utoipa::path(post, path = "/api/v1/devices/enroll", tag = "console", request_body = EnrollRequest, responses((status = 200, body = Object, description = "{device_id, device_secret}"), (status = 400, body = super::openapi::ErrorBody), (status = 401, body = super::openapi::ErrorBody), (status = 429, body = super::openapi::ErrorBody)))]
pub async fn enroll(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<EnrollRequest>,
) -> AppResult<Json<svc::Enrollment>> {
    validate::text(&req.code, "code", 32)?;
    Ok(Json(svc::enroll(&state, &req.code, ip).await?))
}

#[utoipa::path(post, path = "/api/v1/console/devices/{id}/revoke", tag = "console", params(("id" = String, Path)), security(("bearer" = []), ("session_cookie" = [])), responses((status = 200, body = Object), (status = 400, body = super::openapi::ErrorBody), (status = 401, body = super::openapi::ErrorBody), (status = 403, body = super::openapi::ErrorBody), (status = 404, body = super::openapi::ErrorBody)))]
pub async fn revoke_device(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<String>,
) -> AppResult<Json<Value>> {
    validate::key(&id, "id", 64)?;
    svc::revoke_device(&state, &user, id.clone()).await?;
    Ok(Json(json!({"revoked": true, "id": id})))
}

// ---------------------------------------------------------------------------------------
// Audit, settings
// ---------------------------------------------------------------------------------------

fn paging(limit: Option<i64>, offset: Option<i64>, default: i64) -> AppResult<(i64, i64)> {
    let limit = limit.unwrap_or(default);
    if !(1..=200).contains(&limit) {
        return Err(AppError::validation(
            "limit",
            "limit must be between 1 and 200.",
        ));
    }
    let offset = offset.unwrap_or(0);
    if !(0..=10_000_000).contains(&offset) {
        return Err(AppError::validation("offset", "offset must be 0 or more."));
    }
    Ok((limit, offset))
}

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    action: Option<String>,
    actor: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

fn rfc3339(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        .unwrap_or_default()
}

#[utoipa::path(get, path = "/api/v1/console/audit", tag = "console", params(AuditQuery), security(("bearer" = []), ("session_cookie" = [])), responses((status = 200, body = Object), (status = 400, body = super::openapi::ErrorBody), (status = 401, body = super::openapi::ErrorBody), (status = 403, body = super::openapi::ErrorBody)))]
pub async fn audit(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> AppResult<Json<Value>> {
    let (limit, offset) = paging(q.limit, q.offset, 50)?;
    let tz = state.cfg.timezone();
    let nonempty = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
    let filter = AuditFilter {
        action: nonempty(q.action)
            .map(|a| validate::key(&a, "action", 64).map(|()| a))
            .transpose()?,
        actor: nonempty(q.actor)
            .map(|a| validate::text(&a, "actor", 64).map(|()| a))
            .transpose()?,
        from: nonempty(q.from)
            .map(|f| parse_bound(&f, "from", tz, false).map(rfc3339))
            .transpose()?,
        to: nonempty(q.to)
            .map(|t| parse_bound(&t, "to", tz, true).map(rfc3339))
            .transpose()?,
    };
    let (entries, pagination) = svc::audit_log(&state, &user, filter, limit, offset).await?;
    Ok(Json(json!({"entries": entries, "pagination": pagination})))
}

#[utoipa::path(get, path = "/api/v1/console/settings", tag = "console", security(("bearer" = []), ("session_cookie" = [])), responses((status = 200, body = Object), (status = 401, body = super::openapi::ErrorBody), (status = 403, body = super::openapi::ErrorBody)))]
pub async fn get_settings(State(state): State<AppState>, user: AuthUser) -> AppResult<Json<Value>> {
    user.require_manager()?;
    Ok(Json(svc::settings_view(&state)))
}

#[utoipa::path(put, path = "/api/v1/console/settings", tag = "console", request_body = crate::service::console::SettingsUpdate, security(("bearer" = []), ("session_cookie" = [])), responses((status = 200, body = Object), (status = 400, body = super::openapi::ErrorBody), (status = 401, body = super::openapi::ErrorBody), (status = 403, body = super::openapi::ErrorBody)))]
pub async fn put_settings(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(req): ApiJson<SettingsUpdate>,
) -> AppResult<Json<Value>> {
    Ok(Json(svc::update_settings(&state, &user, req).await?))
}

// ---------------------------------------------------------------------------------------
// CSV export, settlements
// ---------------------------------------------------------------------------------------

#[utoipa::path(get, path = "/api/v1/merchant/transactions/export.csv", tag = "pos", params(super::merchant::ListQuery), security(("bearer" = []), ("session_cookie" = [])), responses((status = 200, body = String, content_type = "text/csv", description = "UTF-8 with BOM"), (status = 400, body = super::openapi::ErrorBody), (status = 401, body = super::openapi::ErrorBody), (status = 403, body = super::openapi::ErrorBody)))]
pub async fn export_csv(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> AppResult<Response> {
    let tz = state.cfg.timezone();
    let filter = tx_filter(q, tz)?;
    let body = svc::export_csv(&state, &user, filter).await?;
    let day = chrono::Utc::now().with_timezone(&tz).format("%Y%m%d");
    let disposition = format!(
        "attachment; filename=\"transactions-{}-{day}.csv\"",
        state.cfg.site.code
    );
    Ok((
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&disposition)
                    .unwrap_or_else(|_| HeaderValue::from_static("attachment")),
            ),
        ],
        body,
    )
        .into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettlementRequest {
    mode: String,
    period_start: String,
    period_end: String,
}

#[utoipa::path(post, path = "/api/v1/merchant/settlements", tag = "settlements", request_body = SettlementRequest, security(("bearer" = []), ("session_cookie" = [])), responses((status = 200, body = Object), (status = 400, body = super::openapi::ErrorBody), (status = 401, body = super::openapi::ErrorBody), (status = 403, body = super::openapi::ErrorBody), (status = 409, body = super::openapi::ErrorBody)))]
pub async fn create_settlement(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(req): ApiJson<SettlementRequest>,
) -> AppResult<Json<Value>> {
    let tz = state.cfg.timezone();
    let start = parse_bound(&req.period_start, "period_start", tz, false)?;
    let end = parse_bound(&req.period_end, "period_end", tz, true)?;
    let s = svc::create_settlement(&state, &user, req.mode, start, end).await?;
    Ok(Json(json!({"settlement": s})))
}

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    limit: Option<i64>,
    offset: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/merchant/settlements", tag = "settlements", params(PageQuery), security(("bearer" = []), ("session_cookie" = [])), responses((status = 200, body = Object), (status = 400, body = super::openapi::ErrorBody), (status = 401, body = super::openapi::ErrorBody), (status = 403, body = super::openapi::ErrorBody)))]
pub async fn list_settlements(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> AppResult<Json<Value>> {
    let (limit, offset) = paging(q.limit, q.offset, 20)?;
    let (list, pagination) = svc::list_settlements(&state, &user, limit, offset).await?;
    Ok(Json(json!({"settlements": list, "pagination": pagination})))
}

#[utoipa::path(get, path = "/api/v1/merchant/settlements/{id}", tag = "settlements", params(("id" = String, Path, description = "settlement id or number")), security(("bearer" = []), ("session_cookie" = [])), responses((status = 200, body = Object), (status = 400, body = super::openapi::ErrorBody), (status = 401, body = super::openapi::ErrorBody), (status = 403, body = super::openapi::ErrorBody), (status = 404, body = super::openapi::ErrorBody)))]
pub async fn settlement(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<String>,
) -> AppResult<Json<Value>> {
    validate::key(&id, "id", 64)?;
    Ok(Json(
        json!({"settlement": svc::settlement(&state, &user, id).await?}),
    ))
}
