//! Extractors that turn every rejection into the project's error envelope.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::{AppError, ErrorCode};
use crate::service::auth::{authenticate, AuthUser};
use crate::state::AppState;

/// JSON body: requires `Content-Type: application/json`, respects the body limit, and
/// reports malformed JSON, wrong types and unknown fields as 400 `INVALID_JSON`.
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
        if !is_json {
            return Err(ErrorCode::UnsupportedMediaType.into());
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|_| AppError::new(ErrorCode::PayloadTooLarge))?;
        // Only a JSON object is a request body here: serde would otherwise also accept a
        // positional array for a struct.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(AppError::msg(
                ErrorCode::InvalidJson,
                "The request body must be a JSON object.",
            ));
        }
        serde_json::from_slice::<T>(&bytes)
            .map(ApiJson)
            .map_err(|e| {
                AppError::msg(ErrorCode::InvalidJson, format!("Invalid request body: {e}"))
            })
    }
}

/// Query string with the same envelope on rejection.
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or("");
        serde_urlencoded::from_str::<T>(q)
            .map(ApiQuery)
            .map_err(|e| {
                AppError::msg(
                    ErrorCode::ValidationError,
                    format!("Invalid query string: {e}"),
                )
            })
    }
}

/// Path parameters with the same envelope on rejection (e.g. invalid UTF-8).
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| ApiPath(v))
            .map_err(|e| AppError::msg(ErrorCode::ValidationError, format!("Invalid path: {e}")))
    }
}

pub fn client_ip(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
}

/// The client address, when the server was started with connect info.
pub struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(client_ip(parts)))
    }
}

/// A signed-in staff member from `Authorization: Bearer <access token>`, or else from the
/// console's session cookie (then a state-changing request also needs `X-CSRF-Token`).
impl FromRequestParts<AppState> for AuthUser {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(header) = parts.headers.get(header::AUTHORIZATION) else {
            return super::console::cookie_user(parts, state)
                .await
                .map(|(user, _)| user);
        };
        let header = header.to_str().map_err(|_| ErrorCode::NotAuthenticated)?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                AppError::msg(
                    ErrorCode::NotAuthenticated,
                    "Use Authorization: Bearer <access token>.",
                )
            })?;
        authenticate(state, token, client_ip(parts)).await
    }
}
