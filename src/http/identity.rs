//! Who is calling: the client address, and the signed-in staff member from a bearer
//! token or from the console's session cookie (with its CSRF check).

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::{self, HeaderMap};
use axum::http::request::Parts;
use axum::http::Method;

use crate::db::sessions::SessionRow;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::service::auth::{authenticate, AuthUser};
use crate::service::session::{authenticate_session, Csrf, SESSION_COOKIE};
use crate::service::state::AppState;

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
            return cookie_user(parts, state).await.map(|(user, _)| user);
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
    authenticate_session(state, &token, csrf, client_ip(parts)).await
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
