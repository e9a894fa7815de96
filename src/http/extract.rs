//! Extractors that turn every rejection into the project's error envelope.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;

use crate::error::{AppError, ErrorCode};

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
            .map_err(body_error)?;
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

/// Why a body could not be read: over the body limit (413), or the client stopped
/// sending / the connection broke (400 `BODY_ABORTED`, counted apart, so a flood of
/// aborted uploads does not read as clients sending oversized bodies).
pub fn body_error(rejection: axum::extract::rejection::BytesRejection) -> AppError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return AppError::new(ErrorCode::PayloadTooLarge);
    }
    metrics::counter!("mps_edge_http_body_aborted_total").increment(1);
    AppError::new(ErrorCode::BodyAborted)
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
