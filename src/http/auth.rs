//! `/api/v1/auth/*`.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::{ApiJson, ClientIp};
use super::validate;
use crate::error::AppResult;
use crate::service::auth::{self, AuthUser, TokenPair};
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    username: String,
    password: String,
}

pub async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<LoginRequest>,
) -> AppResult<Json<TokenPair>> {
    validate::text(&req.username, "username", 64)?;
    validate::text(&req.password, "password", 256)?;
    Ok(Json(
        auth::login(&state, req.username, req.password, ip).await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    refresh_token: String,
}

pub async fn refresh(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> AppResult<Json<TokenPair>> {
    validate::key(&req.refresh_token, "refresh_token", 256)?;
    Ok(Json(auth::refresh(&state, req.refresh_token).await?))
}

pub async fn logout(State(state): State<AppState>, user: AuthUser) -> AppResult<Json<Value>> {
    auth::logout(&state, &user).await?;
    Ok(Json(json!({"success": true})))
}

pub async fn me(user: AuthUser) -> Json<Value> {
    Json(json!({"user": user.info(), "session": {"device_id": user.device_id}}))
}
