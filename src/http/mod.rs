//! The HTTP API: routes, middleware, and the server loop.

pub mod audit;
pub mod auth;
pub mod console;
pub mod console_assets;
pub mod console_ws;
pub mod devices;
pub mod export;
pub mod extract;
pub mod identity;
pub mod limits;
pub mod merchant;
pub mod metrics;
pub mod openapi;
pub mod security;
pub mod session;
pub mod settings;
pub mod settlements;
pub mod staff;
pub mod sync;
pub mod validate;

use std::future::Future;
use std::net::SocketAddr;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::error::{AppError, ErrorCode};
use crate::state::AppState;

pub fn build_router(state: AppState) -> Router {
    let body_limit = state.cfg.server.body_limit_bytes;
    let api = Router::new()
        .route("/auth/login", post(auth::login))
        .route("/auth/refresh", post(auth::refresh))
        .route("/auth/logout", post(auth::logout))
        .route("/auth/me", get(auth::me))
        .route("/merchant/charge", post(merchant::charge))
        .route("/merchant/refund", post(merchant::refund))
        .route("/merchant/transactions", get(merchant::transactions))
        .route("/merchant/daily-summary", get(merchant::daily_summary))
        .route("/common/qr/validate", post(merchant::validate_qr))
        .route(
            "/common/transactions/{tx_no}",
            get(merchant::transaction_detail),
        )
        .route("/sync/status", get(sync::status))
        .route("/sync/exceptions", get(sync::exceptions))
        .route("/sync/exceptions/{id}/resolve", post(sync::resolve))
        .route("/sync/now", post(sync::sync_now))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .merge(console::api_routes());
    let request_id = axum::http::HeaderName::from_static("x-request-id");
    let cors = security::cors(&state.cfg.server.cors_origins);
    let tls = state.cfg.server.tls_cert.is_some();
    crate::metrics::handle();
    Router::new()
        .nest("/api/v1", api)
        .merge(console::page_routes())
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics::render))
        .route("/api/v1/openapi.json", get(openapi::document))
        .route("/api/docs", get(openapi::docs_page))
        .route("/api/docs/{file}", get(openapi::docs_asset))
        .route_layer(axum::middleware::from_fn(metrics::track))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn(move |req, next| {
            security::headers(tls, req, next)
        }))
        .layer(cors)
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(security::request_span))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}

async fn not_found() -> AppError {
    AppError::msg(ErrorCode::NotFound, "No such route.")
}

async fn method_not_allowed() -> Response {
    let body = json!({"error": {"code": "METHOD_NOT_ALLOWED", "message": "This route does not accept that method.", "details": null}});
    (StatusCode::METHOD_NOT_ALLOWED, Json(body)).into_response()
}

#[utoipa::path(get, path = "/health", tag = "operations", responses((status = 200, body = Object, description = "process alive")))]
pub async fn health(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_secs": state.started.elapsed().as_secs(),
    }))
}

/// Ready = the database accepts a durable write, there is a merchant to sell for (demo
/// data, or a replica bootstrapped from central) and, with a central, neither sync
/// pipeline is stopped or has failed for longer than `central.alert_after_secs`.
#[utoipa::path(get, path = "/ready", tag = "operations",
    responses((status = 200, body = Object), (status = 503, body = Object, description = "not ready, with reasons")))]
pub async fn ready(State(state): State<AppState>) -> Response {
    let problems = crate::service::sync::readiness_problems(&state).await;
    let mode = if state.cfg.standalone() {
        "standalone"
    } else {
        "central"
    };
    if problems.is_empty() {
        (
            StatusCode::OK,
            Json(json!({"status": "ready", "mode": mode})),
        )
            .into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not_ready", "mode": mode, "reasons": problems})),
        )
            .into_response()
    }
}

/// Serves HTTPS (rustls) until `shutdown` resolves: stops accepting, lets in-flight
/// requests finish (up to 30 s), then lets the writer finish its batch.
pub async fn serve_tls(
    listener: std::net::TcpListener,
    state: AppState,
    cert: &std::path::Path,
    key: &std::path::Path,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // One process-wide crypto provider (ring), installed once.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key).await?;
    let db = state.db.clone();
    let app = build_router(state);
    let handle = axum_server::Handle::new();
    let h2 = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        h2.graceful_shutdown(Some(std::time::Duration::from_secs(30)));
    });
    listener.set_nonblocking(true)?;
    let result = axum_server::from_tcp_rustls(listener, config)?
        .handle(handle)
        .serve(app.into_make_service_with_connect_info::<SocketAddr>())
        .await;
    let _ = tokio::task::spawn_blocking(move || db.shutdown()).await;
    result
}

/// Serves until `shutdown` resolves, then lets the writer finish its batch.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let db = state.db.clone();
    let app = build_router(state);
    let result = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
    let _ = tokio::task::spawn_blocking(move || db.shutdown()).await;
    result
}
