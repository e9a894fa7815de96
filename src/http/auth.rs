//! `/api/v1/auth/*`.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::extract::ApiJson;
use super::identity::ClientIp;
use super::validate;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::model::UserInfo;
use crate::service::auth::{self, AuthUser, TokenPair};
use crate::service::state::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    #[schema(value_type = crate::api_schema::Username)]
    username: String,
    #[schema(value_type = crate::api_schema::Password)]
    password: String,
    /// An enrolled POS terminal: its tokens are bound to it and end when it is revoked.
    /// Sent together with `device_secret`.
    #[schema(value_type = Option<crate::api_schema::Key64>)]
    device_id: Option<String>,
    #[schema(value_type = Option<crate::api_schema::DeviceSecret>)]
    device_secret: Option<String>,
}

/// Signs in. Every failure (unknown username, wrong password, disabled or locked
/// account) is the same 401 `INVALID_CREDENTIALS`. Failed sign-ins are counted per
/// username and client address: past `auth.max_failed_logins` that address waits
/// (429 `LOGIN_LOCKED`, 15 s doubling up to `auth.lockout_secs`). Past
/// `auth.account_max_failed_logins` from all addresses the account is locked: addresses
/// that have not failed still sign in, after a wait of up to `auth.locked_max_wait_secs`.
/// Passwords are checked on a bounded pool; when it is full the answer is 503.
#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = TokenPair),
              (status = 400, body = crate::error::ErrorBody),
              (status = 401, description = "INVALID_CREDENTIALS (any sign-in failure)", body = crate::error::ErrorBody),
              (status = 422, description = "INCONSISTENT_FIELDS: device_id without device_secret or the reverse", body = crate::error::ErrorBody),
              (status = 429, description = "LOGIN_LOCKED: too many failed sign-ins for this username from this address, or a locked account's queue is full; TOO_MANY_REQUESTS: the per-address request rate",
               body = crate::error::ErrorBody,
               headers(("Retry-After" = i64, description = "Seconds to wait before trying again"))),
              (status = 503, description = "SERVICE_UNAVAILABLE: the password pool and its queue are full (or the request timed out)",
               body = crate::error::ErrorBody,
               headers(("Retry-After" = i64, description = "Seconds to wait before trying again")))))]
pub async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<LoginRequest>,
) -> AppResult<Json<TokenPair>> {
    validate::text(&req.username, "username", 64)?;
    validate::text(&req.password, "password", 256)?;
    // A place in the password pool first: a flood is refused here, before any other work.
    let ticket = state.passwords.try_admit()?;
    let device = match (req.device_id, req.device_secret) {
        (None, None) => None,
        (Some(id), Some(secret)) => {
            validate::key(&id, "device_id", 64)?;
            validate::key(&secret, "device_secret", 128)?;
            crate::service::devices::verify_device(&state, &id, &secret, ip).await?;
            Some(id)
        }
        _ => {
            return Err(AppError::msg(
                ErrorCode::InconsistentFields,
                "device_id and device_secret go together.",
            )
            .with_details(serde_json::json!({"field": "device_secret"})))
        }
    };
    // Boxed: the sign-in future is large, and only admitted requests build it.
    Ok(Json(
        Box::pin(auth::login_device(
            &state,
            req.username,
            req.password,
            ip,
            device,
            ticket,
        ))
        .await?,
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    #[schema(value_type = crate::api_schema::RefreshToken)]
    refresh_token: String,
}

/// Rotates a refresh token into a new pair. The same token presented again within
/// `auth.refresh_grace_secs` (default 30) gets the same new pair back, so a POS that
/// retries after a lost answer keeps its session; presented later, or after its
/// successor was used, it ends the whole session (reuse of a copied token).
#[utoipa::path(post, path = "/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenPair), (status = 401, description = "INVALID_TOKEN / TOKEN_EXPIRED", body = crate::error::ErrorBody), (status = 400, body = crate::error::ErrorBody),
              (status = 429, description = "TOO_MANY_REQUESTS: the per-address request rate",
               body = crate::error::ErrorBody,
               headers(("Retry-After" = i64, description = "Seconds to wait before trying again"))),
              (status = 503, description = "SERVICE_UNAVAILABLE: the request timed out",
               body = crate::error::ErrorBody)))]
pub async fn refresh(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> AppResult<Json<TokenPair>> {
    validate::key(&req.refresh_token, "refresh_token", 256)?;
    Ok(Json(auth::refresh(&state, req.refresh_token).await?))
}

/// The answer of a sign-out (`success` is always true; failures are errors). Shared by
/// the console's sign-outs.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Success {
    pub success: bool,
}

#[utoipa::path(post, path = "/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = Success), (status = 401, body = crate::error::ErrorBody)))]
pub async fn logout(State(state): State<AppState>, user: AuthUser) -> AppResult<Json<Success>> {
    auth::logout(&state, &user).await?;
    Ok(Json(Success { success: true }))
}

/// Who is calling, and from which enrolled device (null: not a device token).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Me {
    pub session: MeSession,
    pub user: UserInfo,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MeSession {
    pub device_id: Option<String>,
}

#[utoipa::path(get, path = "/auth/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = Me), (status = 401, body = crate::error::ErrorBody)))]
pub async fn me(user: AuthUser) -> Json<Me> {
    Json(Me {
        session: MeSession {
            device_id: user.device_id.clone(),
        },
        user: user.info(),
    })
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PinRequest {
    /// The caller's own password, to prove it is them.
    #[schema(value_type = crate::api_schema::Password)]
    password: String,
    /// The new approval PIN.
    #[schema(value_type = crate::api_schema::Pin)]
    pin: String,
}

/// The PIN was set (it is never shown again).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PinSet {
    pub pin_set: bool,
}

/// A manager or owner sets the PIN they type at a cashier's till to approve a refund or
/// a large charge.
#[utoipa::path(put, path = "/auth/pin", tag = "auth", request_body = PinRequest, security(("bearer" = []), ("session_cookie" = [])),
    responses((status = 200, body = PinSet), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody),
              (status = 403, body = crate::error::ErrorBody), (status = 503, body = crate::error::ErrorBody)))]
pub async fn set_pin(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(req): ApiJson<PinRequest>,
) -> AppResult<Json<PinSet>> {
    validate::text(&req.password, "password", 256)?;
    if !crate::domain::approval::pin_format_ok(&req.pin) {
        return Err(AppError::validation("pin", "pin must be 4 to 8 digits."));
    }
    crate::service::approval::set_pin(&state, &user, req.password, req.pin).await?;
    Ok(Json(PinSet { pin_set: true }))
}
