//! The plain-HTTP accept loop. `axum::serve` has no header-read timeout and no cap on
//! connections, so 5,000 sockets that each sent half a request head stayed open for good
//! (issue 12, point 4). Here every connection is hyper's HTTP/1 connection with:
//!
//! - a header-read timeout: a request head must be complete within
//!   `server.header_read_timeout_secs` of the connection waiting for one. hyper starts
//!   that timer when it starts reading a head, i.e. right after the connection opens and
//!   right after each answer, so the same limit closes idle keep-alive connections;
//! - a cap on open connections (`server.max_connections`): at the cap the loop stops
//!   accepting (the kernel's backlog holds newcomers) until one closes, as nginx does
//!   with `worker_connections`, instead of running out of file descriptors;
//! - a cap per client (`server.max_connections_per_client`; an IPv4 address or an IPv6
//!   /64, as the rate limiter counts them): one LAN host cannot take every slot, so the
//!   tills keep getting in during a flood from one machine. Loopback is exempt, so a local
//!   health check or reverse proxy is never refused by it;
//! - the per-request time limit stays the router's `TimeoutLayer` (`request_timeout_secs`),
//!   which also bounds a slowly sent body, as the body is read inside the handler.
//!
//! Connections closed waiting for a head (a slow one, or none on an idle keep-alive
//! connection: hyper does not tell them apart) are counted in
//! `mps_edge_http_connections_closed_total{reason="header_timeout"}`; open connections
//! are `mps_edge_http_connections_open`, waits at the cap
//! `mps_edge_http_connection_cap_reached_total`.
//!
//! Only HTTP/1.1 is served in plain text: the POS terminals and the console speak it,
//! and hyper's version sniffing for h2c reads the first bytes without any timeout.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::{watch, Semaphore};
use tower::ServiceExt;

use crate::config::ServerConfig;

/// How long shutdown waits for in-flight requests, as the TLS listener does.
const DRAIN: Duration = Duration::from_secs(30);

/// What the accept loop needs from `[server]`.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    pub header_read_timeout: Duration,
    pub max_connections: usize,
    pub max_per_client: usize,
}

/// Open connections per client network, for `max_connections_per_client`.
#[derive(Debug, Default)]
pub struct ClientSlots {
    open: parking_lot::Mutex<HashMap<IpAddr, usize>>,
}

/// One connection's place in `ClientSlots`; freed on drop.
#[derive(Debug)]
pub struct ClientSlot {
    slots: Arc<ClientSlots>,
    net: IpAddr,
}

impl ClientSlots {
    /// A slot for a connection from `ip`, or `None` when its network already holds
    /// `max` connections. Loopback always gets one (untracked).
    pub fn take(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<Option<ClientSlot>> {
        if ip.to_canonical().is_loopback() {
            return Some(None);
        }
        let net = super::limits::client_net(ip);
        let mut open = self.open.lock();
        let n = open.entry(net).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Some(ClientSlot {
            slots: Arc::clone(self),
            net,
        }))
    }

    /// Networks with a connection open (entries go when their last connection does).
    pub fn tracked(&self) -> usize {
        self.open.lock().len()
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut open = self.slots.open.lock();
        if let Some(n) = open.get_mut(&self.net) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.net);
            }
        }
    }
}

impl ConnLimits {
    pub fn from_config(server: &ServerConfig) -> ConnLimits {
        ConnLimits {
            header_read_timeout: Duration::from_secs(server.header_read_timeout_secs),
            max_connections: server.max_connections,
            max_per_client: server.max_connections_per_client,
        }
    }
}

/// Why a connection ended, as counted: hyper reports a head that did not arrive in time
/// as a timeout error; other errors are clients that went away mid-request.
fn close_reason(err: &hyper::Error) -> &'static str {
    if err.is_timeout() {
        "header_timeout"
    } else if err.is_incomplete_message() || err.is_canceled() {
        "client_gone"
    } else {
        "error"
    }
}

/// The hyper HTTP/1 builder every plain connection uses.
fn http1_builder(limits: ConnLimits) -> hyper::server::conn::http1::Builder {
    let mut b = hyper::server::conn::http1::Builder::new();
    b.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    b
}

/// Serves `app` on `listener` until `shutdown` resolves; then stops accepting, asks every
/// connection to finish its current request and waits for them (at most `DRAIN`).
pub async fn serve_plain(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: ConnLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_connections(listener, app, limits, None, shutdown).await
}

/// HTTPS with the same limits as plain HTTP: the same caps on connections (total and per
/// client), and the TLS handshake bounded by the header-read timeout, so a client that
/// opens a socket and never finishes the handshake holds a slot no longer than one that
/// never finishes its headers.
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: ConnLimits,
    tls: tokio_rustls::TlsAcceptor,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_connections(listener, app, limits, Some(tls), shutdown).await
}

/// The TLS server configuration from PEM files: HTTP/1.1 only (as plain HTTP).
pub fn tls_acceptor(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> std::io::Result<tokio_rustls::TlsAcceptor> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let invalid = |what: &std::path::Path, e: &dyn std::fmt::Display| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{}: {e}", what.display()),
        )
    };
    let certs = CertificateDer::pem_file_iter(cert)
        .map_err(|e| invalid(cert, &e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(cert, &e))?;
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| invalid(key, &e))?;
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, private)
        .map_err(|e| invalid(cert, &e))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

async fn serve_connections(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: ConnLimits,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let max = limits.max_connections.max(1);
    let slots = Arc::new(Semaphore::new(max));
    let (stop_tx, stop_rx) = watch::channel(false);
    let builder = http1_builder(limits);
    let per_client = Arc::new(ClientSlots::default());
    tokio::pin!(shutdown);
    loop {
        let permit = match slots.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                metrics::counter!("mps_edge_http_connection_cap_reached_total").increment(1);
                tokio::select! {
                    p = slots.clone().acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                    () = &mut shutdown => break,
                }
            }
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning; the connections
                    // already open keep being served.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(client_slot) = per_client.take(peer.ip(), limits.max_per_client) else {
            // Closed at once (no answer: the client already holds its share open).
            metrics::counter!("mps_edge_http_connections_closed_total", "reason" => "per_client_cap")
                .increment(1);
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let builder = builder.clone();
        let stop = stop_rx.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _slots = (permit, client_slot);
            metrics::gauge!("mps_edge_http_connections_open").increment(1.0);
            match tls {
                None => serve_one(&builder, stream, app, stop, peer).await,
                Some(acceptor) => {
                    let handshake = acceptor.accept(stream);
                    match tokio::time::timeout(limits.header_read_timeout, handshake).await {
                        Ok(Ok(stream)) => serve_one(&builder, stream, app, stop, peer).await,
                        Ok(Err(e)) => {
                            metrics::counter!("mps_edge_http_connections_closed_total", "reason" => "tls_handshake")
                                .increment(1);
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        }
                        Err(_) => {
                            metrics::counter!("mps_edge_http_connections_closed_total", "reason" => "header_timeout")
                                .increment(1);
                        }
                    }
                }
            }
            metrics::gauge!("mps_edge_http_connections_open").decrement(1.0);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Every connection holds a slot until it ends: all slots back = all connections done.
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    if tokio::time::timeout(DRAIN, slots.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the drain period; closing them");
    }
    Ok(())
}

/// One connection, until it ends or the server stops (then gracefully).
async fn serve_one<S>(
    builder: &hyper::server::conn::http1::Builder,
    stream: S,
    app: Router,
    mut stop: watch::Receiver<bool>,
    peer: std::net::SocketAddr,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    // The address for `ConnectInfo` (rate limiter, sign-in throttle, /metrics access).
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let mut req = req.map(Body::new);
        req.extensions_mut().insert(ConnectInfo(peer));
        app.clone().oneshot(req)
    });
    let conn = builder
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        // The guard `wait_for` returns is not Send: drop it inside.
        () = async { let _ = stop.wait_for(|s| *s).await; } => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        let reason = close_reason(&e);
        metrics::counter!("mps_edge_http_connections_closed_total", "reason" => reason)
            .increment(1);
        tracing::debug!(%peer, error = %e, reason, "connection closed");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn one_client_network_gets_at_most_its_share() {
        let slots = Arc::new(ClientSlots::default());
        let a: IpAddr = "192.168.1.7".parse().unwrap();
        let b: IpAddr = "192.168.1.8".parse().unwrap();
        let held: Vec<_> = (0..3).map(|_| slots.take(a, 3).unwrap()).collect();
        assert!(slots.take(a, 3).is_none());
        // Another address is not affected; loopback is never refused nor tracked.
        assert!(slots.take(b, 3).unwrap().is_some());
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        for _ in 0..10 {
            assert!(slots.take(local, 3).unwrap().is_none());
        }
        // Addresses of one IPv6 /64 share a budget.
        let v6: Vec<IpAddr> = ["2001:db8::1", "2001:db8::2", "2001:db8::3"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let six: Vec<_> = v6.iter().map(|ip| slots.take(*ip, 2)).collect();
        assert_eq!(six.iter().filter(|s| s.is_some()).count(), 2);
        // A closed connection frees its slot; the table forgets idle networks.
        drop(held);
        assert!(slots.take(a, 3).unwrap().is_some());
        drop(six);
        assert_eq!(slots.tracked(), 0);
    }
}
