//! `GET /metrics` (Prometheus text: the recorder of `crate::metrics` plus gauges read
//! from the database at scrape time: outbox depth, oldest pending age, open exceptions,
//! replica age, sync problems) and the middleware counting every request by route and
//! status. Who may scrape is `[metrics]` (`scrape_allowed`): the figures include the
//! store's unsynced takings, so not anyone on the LAN.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::config::MetricsConfig;
use crate::error::{AppError, ErrorCode};
use crate::metrics::handle;
use crate::service::state::AppState;

/// Whether a scrape from `peer` sending `bearer` may read the metrics. A configured token
/// is required from every address, loopback included (one rule, and a local proxy cannot
/// open it up); without one, only loopback may, unless `allow_remote`.
pub fn scrape_allowed(
    cfg: &MetricsConfig,
    peer: Option<IpAddr>,
    bearer: Option<&str>,
) -> Result<(), AppError> {
    if !cfg.token.is_empty() {
        let good =
            bearer.is_some_and(|b| bool::from(b.as_bytes().ct_eq(cfg.token.expose().as_bytes())));
        return if good {
            Ok(())
        } else {
            Err(AppError::msg(
                ErrorCode::NotAuthenticated,
                "Send the metrics token: Authorization: Bearer <metrics.token>.",
            ))
        };
    }
    let loopback = peer.is_some_and(|ip| ip.to_canonical().is_loopback());
    if loopback || cfg.allow_remote {
        Ok(())
    } else {
        Err(AppError::msg(
            ErrorCode::PermissionDenied,
            "/metrics answers only this machine; set metrics.token (or metrics.allow_remote) to scrape it from elsewhere.",
        ))
    }
}

/// The bearer token of an `Authorization` header, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// The client's address, as every listener records it.
pub fn peer_ip(req: &Request) -> Option<IpAddr> {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| a.ip())
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

/// `GET /metrics`: loopback only by default; with `metrics.token` set, the bearer token
/// from every address.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    security((), ("metrics_token" = [])),
    responses((status = 200, content_type = "text/plain", body = String, description = "Prometheus text format"),
        (status = 401, body = crate::error::ErrorBody, description = "metrics.token is set and the request lacks it (NOT_AUTHENTICATED)"),
        (status = 403, body = crate::error::ErrorBody, description = "no metrics.token and the client is not this machine (PERMISSION_DENIED)")))]
pub async fn render(State(state): State<AppState>, req: Request) -> Response {
    if let Err(e) = scrape_allowed(&state.cfg.metrics, peer_ip(&req), bearer(req.headers())) {
        return e.into_response();
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn code(r: Result<(), AppError>) -> Option<ErrorCode> {
        r.err().map(|e| e.code())
    }

    #[test]
    fn who_may_scrape() {
        let local: Option<IpAddr> = "127.0.0.1".parse().ok();
        let local6: Option<IpAddr> = "::1".parse().ok();
        let mapped: Option<IpAddr> = "::ffff:127.0.0.1".parse().ok();
        let lan: Option<IpAddr> = "192.168.1.20".parse().ok();
        let open = MetricsConfig::default();
        for peer in [local, local6, mapped] {
            assert_eq!(code(scrape_allowed(&open, peer, None)), None, "{peer:?}");
        }
        for peer in [lan, None] {
            assert_eq!(
                code(scrape_allowed(&open, peer, None)),
                Some(ErrorCode::PermissionDenied)
            );
        }
        let remote = MetricsConfig {
            allow_remote: true,
            ..MetricsConfig::default()
        };
        assert_eq!(code(scrape_allowed(&remote, lan, None)), None);
        let token = MetricsConfig {
            token: Secret::new("a-long-scrape-token-1"),
            ..MetricsConfig::default()
        };
        for peer in [local, lan] {
            assert_eq!(
                code(scrape_allowed(&token, peer, Some("a-long-scrape-token-1"))),
                None
            );
            for wrong in [None, Some(""), Some("a-long-scrape-token-2")] {
                assert_eq!(
                    code(scrape_allowed(&token, peer, wrong)),
                    Some(ErrorCode::NotAuthenticated)
                );
            }
        }
    }
}
