//! The HTTP API: routes, middleware, and the server loop.

pub mod audit;
pub mod auth;
pub mod cards;
pub mod console;
pub mod console_assets;
pub mod console_ws;
pub mod daemon;
pub mod devices;
pub mod export;
pub mod extract;
pub mod identity;
pub mod limits;
pub mod merchant;
pub mod metrics;
pub mod openapi;
pub mod receipts;
pub mod security;
pub mod server;
pub mod session;
pub mod settings;
pub mod settlements;
pub mod shifts;
pub mod staff;
pub mod sync;
pub mod validate;

use std::future::Future;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{AppError, ErrorCode};
use crate::service::state::AppState;

/// Every documented route, each registered together with its OpenAPI operation (so the
/// document cannot list a route the router lacks, nor miss one registered here). The
/// operations' paths are relative to where they are mounted: `OpenApiRouter::nest`
/// prefixes both the route and the documented path.
pub fn documented_routes() -> OpenApiRouter<AppState> {
    let api = OpenApiRouter::new()
        .routes(routes!(auth::login))
        .routes(routes!(auth::refresh))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::me))
        .routes(routes!(auth::set_pin))
        .routes(routes!(merchant::charge))
        .routes(routes!(merchant::refund))
        .routes(routes!(merchant::topup))
        .routes(routes!(merchant::transactions))
        .routes(routes!(merchant::daily_summary))
        .routes(routes!(merchant::validate_qr))
        .routes(routes!(merchant::levels))
        .routes(routes!(receipts::receipt))
        .routes(routes!(shifts::open))
        .routes(routes!(shifts::current))
        .routes(routes!(shifts::close))
        .routes(routes!(shifts::report))
        .routes(routes!(shifts::daily))
        .routes(routes!(shifts::list))
        .routes(routes!(cards::card))
        .routes(routes!(cards::freeze))
        .routes(routes!(cards::unfreeze))
        .routes(routes!(merchant::transaction_detail))
        .routes(routes!(sync::status))
        .routes(routes!(sync::exceptions))
        .routes(routes!(sync::resolve))
        .routes(routes!(sync::sync_now))
        .routes(routes!(daemon::status))
        .routes(routes!(daemon::sync))
        // Also served under /api/v1 for clients configured with that base; documented
        // once, at the top level.
        .route("/health", get(health))
        .route("/ready", get(ready))
        .merge(console::api_routes());
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .nest("/api/v1", api)
        .routes(routes!(health))
        .routes(routes!(ready))
        .routes(routes!(metrics::render))
        .routes(routes!(openapi::document))
}

pub fn build_router(state: AppState) -> Router {
    let body_limit = state.cfg.server.body_limit_bytes;
    let (documented, doc) = documented_routes().split_for_parts();
    openapi::publish(&doc);
    let request_id = axum::http::HeaderName::from_static("x-request-id");
    let cors = security::cors(&state.cfg.server.cors_origins);
    let tls = state.cfg.server.tls_cert.is_some();
    crate::metrics::handle();
    let server = &state.cfg.server;
    let mut app = documented
        .merge(console::page_routes())
        .route("/api/docs", get(openapi::docs_page))
        .route("/api/docs/{file}", get(openapi::docs_asset))
        .route_layer(axum::middleware::from_fn(metrics::track))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(limits::timeout(server.request_timeout_secs))
        .layer(axum::middleware::from_fn(limits::timeout_envelope));
    // Counted before any handler work, inside the security headers so a 429 has them.
    if let Some(rate) = limits::per_ip_rate(server.rate_limit_per_sec, server.rate_limit_burst) {
        app = app.layer(rate);
    }
    app.layer(axum::middleware::from_fn(move |req, next| {
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

async fn method_not_allowed() -> AppError {
    AppError::new(ErrorCode::MethodNotAllowed)
}

/// The process is up.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: &'static str,
    pub uptime_secs: u64,
    pub version: &'static str,
}

#[utoipa::path(get, path = "/health", tag = "operations", responses((status = 200, body = Health, description = "process alive")))]
pub async fn health(State(state): State<AppState>) -> Json<Health> {
    Json(Health {
        status: "ok",
        uptime_secs: state.started.elapsed().as_secs(),
        version: env!("CARGO_PKG_VERSION"),
    })
}

/// Ready to take sales.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Ready {
    /// `standalone` or `central`; only to loopback or signed-in callers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<&'static str>,
    /// Always `ready`.
    pub status: &'static str,
}

/// Not ready, and why.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NotReady {
    /// `standalone` or `central`; only to loopback or signed-in callers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<&'static str>,
    /// Why, only to loopback or signed-in callers (they name the store's sync problems).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasons: Option<Vec<String>>,
    /// Always `not_ready`.
    pub status: &'static str,
}

/// Ready = the database accepts a durable write, there is a merchant to sell for (demo
/// data, or a replica bootstrapped from central) and, with a central, neither sync
/// pipeline is stopped or has failed for longer than `central.alert_after_secs`. Checked
/// at most every 2 s. Mode and reasons go only to this machine, to a signed-in staff
/// member, or with the metrics token; anyone else on the LAN gets the status alone.
#[utoipa::path(get, path = "/ready", tag = "operations",
    responses((status = 200, body = Ready), (status = 503, body = NotReady, description = "not ready; reasons for loopback or signed-in callers")))]
pub async fn ready(State(state): State<AppState>, req: axum::extract::Request) -> Response {
    let problems = crate::service::sync::readiness_cached(&state).await;
    let detailed = ready_details_allowed(&state, req).await;
    let mode = detailed.then_some(if state.cfg.standalone() {
        "standalone"
    } else {
        "central"
    });
    if problems.is_empty() {
        (
            StatusCode::OK,
            Json(Ready {
                mode,
                status: "ready",
            }),
        )
            .into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(NotReady {
                mode,
                reasons: detailed.then_some(problems),
                status: "not_ready",
            }),
        )
            .into_response()
    }
}

/// Loopback, the metrics token, or a staff sign-in (token or console cookie).
async fn ready_details_allowed(state: &AppState, req: axum::extract::Request) -> bool {
    let peer = metrics::peer_ip(&req);
    let loopback = peer.is_some_and(|ip| ip.to_canonical().is_loopback());
    let ops = metrics::scrape_allowed(&state.cfg.metrics, peer, metrics::bearer(req.headers()));
    if loopback || ops.is_ok() {
        return true;
    }
    let (mut parts, _) = req.into_parts();
    <crate::service::auth::AuthUser as axum::extract::FromRequestParts<AppState>>::from_request_parts(
        &mut parts, state,
    )
    .await
    .is_ok()
}

/// Serves HTTPS (rustls, HTTP/1.1) until `shutdown` resolves, with the connection
/// limits of plain HTTP (`server::serve_tls`), then lets the writer finish its batch.
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    state: AppState,
    cert: &std::path::Path,
    key: &std::path::Path,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // One process-wide crypto provider (ring), installed once.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let acceptor = server::tls_acceptor(cert, key)?;
    let closing = state.clone();
    let limits = server::ConnLimits::from_config(&state.cfg.server);
    let app = build_router(state);
    let result = server::serve_tls(listener, app, limits, acceptor, shutdown).await;
    closing.shutdown().await;
    result
}

/// Serves plain HTTP until `shutdown` resolves (with the connection limits of
/// `server::serve_plain`), then lets the writer finish its batch.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let closing = state.clone();
    let limits = server::ConnLimits::from_config(&state.cfg.server);
    let app = build_router(state);
    let result = server::serve_plain(listener, app, limits, shutdown).await;
    closing.shutdown().await;
    result
}
