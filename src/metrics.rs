//! Prometheus metrics: request counts and latencies by route and status, charge and
//! refund outcomes, sync results, write batch sizes; gauges read from the database at
//! scrape time (outbox depth, oldest pending age, open exceptions, replica age).

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::db::syncstate;
use crate::state::AppState;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide recorder once (tests start several servers in one process).
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let latency = [
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ];
            let batches = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];
            PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("mps_edge_http_request_duration_seconds".into()),
                    &latency,
                )
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("mps_edge_db_write_batch_size".into()),
                        &batches,
                    )
                })
                .and_then(|b| b.install_recorder())
                .map_err(|e| tracing::warn!(error = %e, "metrics recorder not installed"))
                .ok()
        })
        .as_ref()
}

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

pub fn charge_outcome(outcome: &str) {
    metrics::counter!("mps_edge_charges_total", "outcome" => outcome.to_string()).increment(1);
}

pub fn refund_outcome(outcome: &str) {
    metrics::counter!("mps_edge_refunds_total", "outcome" => outcome.to_string()).increment(1);
}

pub fn sync_result(step: &'static str, ok: bool) {
    metrics::counter!("mps_edge_sync_total", "step" => step, "result" => if ok { "ok" } else { "error" }).increment(1);
}

/// bcrypt verifies spent resolving legacy QR tokens (the cost the fast format avoids).
pub fn qr_bcrypt_verifies(n: u64) {
    metrics::counter!("mps_edge_qr_bcrypt_verifies_total").increment(n);
}

pub fn write_batch(size: usize) {
    metrics::histogram!("mps_edge_db_write_batch_size").record(size as f64);
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
    let alert = state.cfg.sync_alert();
    if let Ok(s) = state.db.read(move |c| syncstate::status(c, alert)).await {
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
