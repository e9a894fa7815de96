//! `GET /metrics` (Prometheus text: the recorder of `crate::metrics` plus gauges read
//! from the database at scrape time: outbox depth, oldest pending age, open exceptions,
//! replica age, sync problems) and the middleware counting every request by route and
//! status.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::metrics::handle;
use crate::service::state::AppState;

/// Route middleware: one count and one latency observation per request.
pub async fn track(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = req.method().to_string();
    let start = Instant::now();
    let res = next.run(req).await;
    let status = res.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!("mps_edge_http_requests_total", &labels).increment(1);
    metrics::histogram!("mps_edge_http_request_duration_seconds", &labels)
        .record(start.elapsed().as_secs_f64());
    res
}

/// `GET /metrics`.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, content_type = "text/plain", body = String, description = "Prometheus text format")))]
pub async fn render(State(state): State<AppState>) -> Response {
    let Some(handle) = handle() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics recorder unavailable\n",
        )
            .into_response();
    };
    if let Ok(s) = crate::service::sync::status(&state).await {
        metrics::gauge!("mps_edge_outbox_depth").set(s.queue_depth as f64);
        metrics::gauge!("mps_edge_outbox_oldest_pending_age_seconds")
            .set(s.oldest_pending_age_secs.unwrap_or(0) as f64);
        metrics::gauge!("mps_edge_sync_exceptions_open").set(s.open_exceptions as f64);
        metrics::gauge!("mps_edge_unsynced_charges_cents").set(s.unsynced_charges_amount as f64);
        if let Some(age) = s.replica_age_secs {
            metrics::gauge!("mps_edge_replica_age_seconds").set(age as f64);
        }
        metrics::gauge!("mps_edge_replica_cards").set(s.replica.cards as f64);
        metrics::gauge!("mps_edge_sync_problems").set(s.problems.len() as f64);
        metrics::gauge!("mps_edge_central_online").set(if s.online == Some(true) {
            1.0
        } else {
            0.0
        });
    }
    metrics::gauge!("mps_edge_uptime_seconds").set(state.started.elapsed().as_secs_f64());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
        .into_response()
}
