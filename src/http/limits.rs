//! Flood limits on every route: a request rate per client address (tower_governor, a
//! token bucket per peer IP) and a time limit per request (tower-http's `TimeoutLayer`).
//! Both answer in the API's error envelope. Sign-in has its own, stricter throttle
//! (service/throttle.rs): it counts failed passwords, which no rate limiter knows about.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::middleware::NoOpMiddleware;
use tower_governor::governor::GovernorConfigBuilder;
use tower_governor::key_extractor::KeyExtractor;
use tower_governor::{GovernorError, GovernorLayer};
use tower_http::timeout::TimeoutLayer;

use crate::error::{AppError, ErrorCode};

pub type RateLayer = GovernorLayer<ClientNetKey, NoOpMiddleware, Body>;

/// How often addresses that have been quiet long enough to be back at a full bucket
/// are forgotten, so the table of addresses stays as small as the set of active clients.
const FORGET_EVERY: Duration = Duration::from_secs(60);

/// Above this many tracked clients the table is swept every second instead of every
/// minute (each entry is a few dozen bytes; this bounds a flood's growth between sweeps).
const SWEEP_ABOVE: usize = 10_000;

/// The rate-limit key: the client's IPv4 address, or its IPv6 /64. One host holds a
/// whole /64 (SLAAC, privacy addresses), so keying by full IPv6 address would let one
/// machine make 2^64 keys, each with its own bucket and table entry.
#[derive(Debug, Clone, Copy)]
pub struct ClientNetKey;

/// `ip` as the rate limiter counts it.
pub fn client_net(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

impl KeyExtractor for ClientNetKey {
    type Key = IpAddr;

    fn extract<T>(&self, req: &axum::http::Request<T>) -> Result<IpAddr, GovernorError> {
        req.extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(a)| client_net(a.ip()))
            .ok_or(GovernorError::UnableToExtractKey)
    }
}

/// `per_sec` requests per second per client address, with bursts of `burst`; `None`
/// when `per_sec` is 0 (off).
pub fn per_ip_rate(per_sec: u32, burst: u32) -> Option<RateLayer> {
    if per_sec == 0 {
        return None;
    }
    let config = GovernorConfigBuilder::default()
        .period(Duration::from_nanos(1_000_000_000 / u64::from(per_sec)))
        .burst_size(burst.max(1))
        .key_extractor(ClientNetKey)
        .finish()?;
    let limiter = Arc::downgrade(config.limiter());
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        rt.spawn(async move {
            let mut since_sweep = Duration::ZERO;
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                since_sweep += Duration::from_secs(1);
                // The server (and its limiter) is gone: stop.
                let Some(l) = limiter.upgrade() else { break };
                if since_sweep >= FORGET_EVERY || l.len() > SWEEP_ABOVE {
                    l.retain_recent();
                    l.shrink_to_fit();
                    since_sweep = Duration::ZERO;
                }
            }
        });
    }
    Some(GovernorLayer::new(config).error_handler(too_many))
}

fn too_many(e: GovernorError) -> Response {
    match e {
        GovernorError::TooManyRequests { wait_time, .. } => {
            let mut res = AppError::msg(
                ErrorCode::TooManyRequests,
                "Too many requests from this address; wait a moment and try again.",
            )
            .with_details(serde_json::json!({ "retry_after_secs": wait_time.max(1) }))
            .into_response();
            if let Ok(v) = HeaderValue::from_str(&wait_time.max(1).to_string()) {
                res.headers_mut().insert(header::RETRY_AFTER, v);
            }
            res
        }
        // Every listener passes the peer address (ConnectInfo); without it this is a bug.
        GovernorError::UnableToExtractKey | GovernorError::Other { .. } => {
            AppError::internal(format!("rate limiter: {e}")).into_response()
        }
    }
}

/// Handlers that run longer than `secs` are stopped with 503. Writes already handed to
/// the writer still commit: a POS retries a charge with its idempotency key.
pub fn timeout(secs: u64) -> TimeoutLayer {
    TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, Duration::from_secs(secs))
}

/// `TimeoutLayer` answers with an empty body; this puts the envelope in it (the API never
/// answers 408 otherwise). Outside the timeout layer.
pub async fn timeout_envelope(req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    if res.status() == StatusCode::REQUEST_TIMEOUT {
        return AppError::msg(
            ErrorCode::Unavailable,
            "The server took too long to answer. A charge or refund may still have been \
             made: retry it with the same Idempotency-Key, or look it up before charging again.",
        )
        .into_response();
    }
    res
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use axum::routing::get;
    use axum::Router;

    /// A router with the layers as `build_router` stacks them, on 127.0.0.1:0.
    async fn serve(app: Router, per_sec: u32, burst: u32, timeout_secs: u64) -> String {
        let mut app = app
            .layer(timeout(timeout_secs))
            .layer(axum::middleware::from_fn(timeout_envelope));
        if let Some(rate) = per_ip_rate(per_sec, burst) {
            app = app.layer(rate);
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .await
        });
        url
    }

    #[tokio::test]
    async fn a_slow_handler_gets_503_in_the_envelope() {
        let app = Router::new().route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        );
        let url = serve(app, 0, 1, 1).await;
        let res = reqwest::get(format!("{url}/slow")).await.unwrap();
        assert_eq!(res.status(), 503);
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "SERVICE_UNAVAILABLE", "{body}");
        assert!(body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Idempotency-Key"));
    }

    #[tokio::test]
    async fn one_address_over_its_rate_gets_429_then_recovers() {
        let app = Router::new().route("/", get(|| async { "ok" }));
        let url = serve(app, 5, 3, 10).await;
        let client = reqwest::Client::new();
        let mut statuses = Vec::new();
        for _ in 0..10 {
            statuses.push(client.get(&url).send().await.unwrap());
        }
        let ok = statuses.iter().filter(|r| r.status() == 200).count();
        // The burst, and at most a token or two refilled while the loop ran.
        assert!((3..=5).contains(&ok), "{ok} of 10 passed");
        let refused = statuses.into_iter().find(|r| r.status() == 429).unwrap();
        let retry: u64 = refused.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(retry >= 1);
        let body: serde_json::Value = refused.json().await.unwrap();
        assert_eq!(body["error"]["code"], "TOO_MANY_REQUESTS", "{body}");
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert_eq!(client.get(&url).send().await.unwrap().status(), 200);
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff:1:2:3".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_net(a), client_net(b));
        assert_ne!(client_net(a), client_net(other));
        let v4: IpAddr = "192.168.1.7".parse().unwrap();
        assert_eq!(client_net(v4), v4);
        let mapped: IpAddr = "::ffff:192.168.1.7".parse().unwrap();
        assert_eq!(client_net(mapped), v4);
    }

    #[test]
    fn zero_turns_the_rate_limit_off() {
        assert!(per_ip_rate(0, 10).is_none());
    }
}
