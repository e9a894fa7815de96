//! Prometheus metrics: the process-wide recorder and the counters every layer records
//! into (charge and refund outcomes, sync results, write batch sizes, bcrypt verifies).
//! The HTTP side — the per-request middleware and `GET /metrics` with its gauges read
//! from the database at scrape time — is `http::metrics`.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

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

pub fn charge_outcome(outcome: &str) {
    metrics::counter!("mps_edge_charges_total", "outcome" => outcome.to_string()).increment(1);
}

pub fn refund_outcome(outcome: &str) {
    metrics::counter!("mps_edge_refunds_total", "outcome" => outcome.to_string()).increment(1);
}

pub fn topup_outcome(outcome: &str) {
    metrics::counter!("mps_edge_topups_total", "outcome" => outcome.to_string()).increment(1);
}

pub fn sync_result(step: &'static str, ok: bool) {
    metrics::counter!("mps_edge_sync_total", "step" => step, "result" => if ok { "ok" } else { "error" }).increment(1);
}

/// bcrypt verifies spent resolving legacy QR tokens (the cost the fast format avoids).
pub fn qr_bcrypt_verifies(n: u64) {
    metrics::counter!("mps_edge_qr_bcrypt_verifies_total").increment(n);
}

/// An offline payment code (mq2) checked against its chain: accepted or refused.
pub fn qr_offline_check(ok: bool) {
    metrics::counter!("mps_edge_qr_offline_checks_total", "result" => if ok { "ok" } else { "refused" })
        .increment(1);
}

pub fn write_batch(size: usize) {
    metrics::histogram!("mps_edge_db_write_batch_size").record(size as f64);
}

/// A head-office daemon request let through (signature good, not seen before).
pub fn daemon_accepted() {
    metrics::counter!("mps_edge_daemon_accepted_total").increment(1);
}

/// A head-office daemon request refused: `missing`, `malformed`, `stale`, `invalid`,
/// `replayed` (401) or `replay_cache_full` (503).
pub fn daemon_rejected(reason: &'static str) {
    metrics::counter!("mps_edge_daemon_rejected_total", "reason" => reason).increment(1);
}

/// A sign-in's outcome: `ok`, `failed` (wrong password, unknown or disabled user),
/// `throttled` (429: refused before any check) or `busy` (503: the password pool full).
pub fn signin_outcome(outcome: &'static str) {
    metrics::counter!("mps_edge_signin_total", "outcome" => outcome).increment(1);
}

/// Passwords actually checked with argon2 (what the throttle and the pool ration).
pub fn password_check() {
    metrics::counter!("mps_edge_password_checks_total").increment(1);
}
