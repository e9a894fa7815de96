//! A fault-injecting HTTP/1.1 proxy to put between the edge and the gateway.
//!
//! Minimal HTTP: it reads one request per connection (head up to `\r\n\r\n`,
//! then a `Content-Length` or chunked body), forwards it with reqwest and
//! answers with `connection: close`, so every request uses a new connection
//! and clients never retry on a reused one. What happens to each connection
//! depends on the [`Mode`] in force when it is accepted.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy does with the next connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Forward and relay the response.
    Pass,
    /// Accept and reset the connection at once (nothing is read or forwarded).
    Refuse,
    /// Refuse the next n connections, then `Pass`.
    RefuseNext(u32),
    /// Wait, then forward and relay (the request reaches central late).
    Delay(Duration),
    /// Forward at once, wait, then relay (central has committed; the answer is late).
    DelayAfterCommit(Duration),
    /// Reply with this status (and a small JSON body) without forwarding.
    ServerError(u16),
    /// Reply with this status for the next n requests, then `Pass`.
    ServerErrorNext(u16, u32),
    /// Forward, read the whole response (central committed), then close the
    /// client connection without sending anything.
    DropResponseAfterCommit,
    /// `DropResponseAfterCommit` for the next n requests, then `Pass`.
    DropNext(u32),
    /// Read the request and never answer (until the client gives up).
    Hang,
}

/// One request as the proxy received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// Whether it was sent on to the upstream.
    pub forwarded: bool,
}

pub struct FaultProxy {
    addr: SocketAddr,
    state: Arc<ProxyState>,
    task: tokio::task::JoinHandle<()>,
}

struct ProxyState {
    upstream: SocketAddr,
    mode: Mutex<Mode>,
    connections: AtomicU64,
    forwarded: AtomicU64,
    log: Mutex<Vec<Recorded>>,
    /// Forwarded requests whose upstream answer has come back (committed there): path,
    /// when it was sent on, when central answered.
    answered: Mutex<Vec<(String, Instant, Instant)>>,
    client: reqwest::Client,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts a proxy on 127.0.0.1:0 that forwards to `upstream` (in `Pass` mode).
pub async fn spawn_proxy(upstream: SocketAddr) -> FaultProxy {
    let listener = match TcpListener::bind("127.0.0.1:0").await {
        Ok(l) => l,
        Err(e) => panic!("fault proxy: cannot bind 127.0.0.1:0: {e}"),
    };
    let addr = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => panic!("fault proxy: no local address: {e}"),
    };
    let client = match reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(120))
        .build()
    {
        Ok(c) => c,
        Err(e) => panic!("fault proxy: reqwest client: {e}"),
    };
    let state = Arc::new(ProxyState {
        upstream,
        mode: Mutex::new(Mode::Pass),
        connections: AtomicU64::new(0),
        forwarded: AtomicU64::new(0),
        log: Mutex::new(Vec::new()),
        answered: Mutex::new(Vec::new()),
        client,
    });
    let st = state.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                continue;
            };
            st.connections.fetch_add(1, Ordering::SeqCst);
            let action = st.next_action();
            let st = st.clone();
            tokio::spawn(async move { st.handle(sock, action).await });
        }
    });
    FaultProxy { addr, state, task }
}

impl FaultProxy {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` — give this to the edge as the central URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_mode(&self, mode: Mode) {
        *lock(&self.state.mode) = mode;
    }

    pub fn mode(&self) -> Mode {
        lock(&self.state.mode).clone()
    }

    /// Requests sent on to the upstream so far.
    pub fn forwarded(&self) -> u64 {
        self.state.forwarded.load(Ordering::SeqCst)
    }

    /// Connections accepted so far (refused ones included).
    pub fn connections(&self) -> u64 {
        self.state.connections.load(Ordering::SeqCst)
    }

    /// Forwarded requests whose path ends with `suffix` and whose upstream answer has
    /// arrived — central has finished (and committed) them, whatever the client hears.
    pub fn answered_by(&self, suffix: &str) -> usize {
        lock(&self.state.answered)
            .iter()
            .filter(|(p, _, _)| p.ends_with(suffix))
            .count()
    }

    /// The most answered requests to paths ending with `suffix` that central was working
    /// on at the same moment.
    pub fn most_at_once(&self, suffix: &str) -> usize {
        let spans: Vec<(Instant, Instant)> = lock(&self.state.answered)
            .iter()
            .filter(|(p, _, _)| p.ends_with(suffix))
            .map(|(_, a, b)| (*a, *b))
            .collect();
        spans
            .iter()
            .map(|(start, _)| {
                spans
                    .iter()
                    .filter(|(a, b)| a <= start && start < b)
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    /// Every request read so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.state.log).clone()
    }

    /// Clears the counters and the request log.
    pub fn reset_counters(&self) {
        self.state.forwarded.store(0, Ordering::SeqCst);
        self.state.connections.store(0, Ordering::SeqCst);
        lock(&self.state.log).clear();
        lock(&self.state.answered).clear();
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What to do with one accepted connection.
enum Action {
    Refuse,
    Forward {
        delay_before: Duration,
        delay_after: Duration,
        drop_response: bool,
    },
    Fail(u16),
    Hang,
}

const PASS: Action = Action::Forward {
    delay_before: Duration::ZERO,
    delay_after: Duration::ZERO,
    drop_response: false,
};

impl ProxyState {
    /// Decides the fate of a new connection, counting down the `*Next` modes.
    fn next_action(&self) -> Action {
        let mut mode = lock(&self.mode);
        let (action, next) = match &*mode {
            Mode::Pass => (PASS, None),
            Mode::Refuse => (Action::Refuse, None),
            Mode::RefuseNext(n) => (Action::Refuse, Some(countdown(*n, Mode::RefuseNext))),
            Mode::Delay(d) => (
                Action::Forward {
                    delay_before: *d,
                    delay_after: Duration::ZERO,
                    drop_response: false,
                },
                None,
            ),
            Mode::DelayAfterCommit(d) => (
                Action::Forward {
                    delay_before: Duration::ZERO,
                    delay_after: *d,
                    drop_response: false,
                },
                None,
            ),
            Mode::ServerError(s) => (Action::Fail(*s), None),
            Mode::ServerErrorNext(s, n) => {
                let s = *s;
                (
                    Action::Fail(s),
                    Some(countdown(*n, |k| Mode::ServerErrorNext(s, k))),
                )
            }
            Mode::DropResponseAfterCommit => (drop_action(), None),
            Mode::DropNext(n) => (drop_action(), Some(countdown(*n, Mode::DropNext))),
            Mode::Hang => (Action::Hang, None),
        };
        if let Some(next) = next {
            *mode = next;
        }
        action
    }

    async fn handle(&self, mut sock: TcpStream, action: Action) {
        let (delay_before, delay_after, drop_response) = match action {
            Action::Refuse => {
                // RST instead of FIN: the client sees "connection reset"
                let _ = sock.set_zero_linger();
                drop(sock);
                return;
            }
            Action::Forward {
                delay_before,
                delay_after,
                drop_response,
            } => (delay_before, delay_after, drop_response),
            Action::Fail(status) => {
                if let Some(req) = read_request(&mut sock).await {
                    self.record(&req, false);
                    let body = serde_json::json!({
                        "code": "FAULT_INJECTED",
                        "message": format!("fault proxy: injected HTTP {status}"),
                        "details": null,
                        "hint": null,
                    })
                    .to_string();
                    let _ = write_response(&mut sock, status, "application/json", body.as_bytes())
                        .await;
                }
                return;
            }
            Action::Hang => {
                if let Some(req) = read_request(&mut sock).await {
                    self.record(&req, false);
                    // wait for the client to hang up
                    let mut buf = [0u8; 1024];
                    while matches!(sock.read(&mut buf).await, Ok(n) if n > 0) {}
                }
                return;
            }
        };

        let Some(req) = read_request(&mut sock).await else {
            return;
        };
        if !delay_before.is_zero() {
            tokio::time::sleep(delay_before).await;
        }
        self.record(&req, true);
        self.forwarded.fetch_add(1, Ordering::SeqCst);
        let sent = Instant::now();
        let resp = self.forward(&req).await;
        lock(&self.answered).push((req.path.clone(), sent, Instant::now()));
        if drop_response {
            // central has answered (and committed); the client hears nothing
            let _ = sock.shutdown().await;
            drop(sock);
            return;
        }
        if !delay_after.is_zero() {
            tokio::time::sleep(delay_after).await;
        }
        let (status, ctype, body) = match resp {
            Ok(r) => r,
            Err(e) => {
                let body = serde_json::json!({
                    "code": "FAULT_PROXY_UPSTREAM",
                    "message": format!("fault proxy: upstream unreachable: {e}"),
                    "details": null,
                    "hint": null,
                })
                .to_string();
                (502, "application/json".to_string(), body.into_bytes())
            }
        };
        let _ = write_response(&mut sock, status, &ctype, &body).await;
    }

    fn record(&self, req: &RawRequest, forwarded: bool) {
        lock(&self.log).push(Recorded {
            method: req.method.clone(),
            path: req.path.clone(),
            headers: req.headers.clone(),
            body: String::from_utf8_lossy(&req.body).into_owned(),
            forwarded,
        });
    }

    async fn forward(&self, req: &RawRequest) -> Result<(u16, String, Vec<u8>), String> {
        let method =
            reqwest::Method::from_bytes(req.method.as_bytes()).map_err(|e| e.to_string())?;
        let url = format!("http://{}{}", self.upstream, req.path);
        let mut rb = self.client.request(method, url).body(req.body.clone());
        for (k, v) in &req.headers {
            let lk = k.to_ascii_lowercase();
            if matches!(
                lk.as_str(),
                "host"
                    | "connection"
                    | "content-length"
                    | "transfer-encoding"
                    | "keep-alive"
                    | "te"
                    | "upgrade"
            ) || lk.starts_with("proxy-")
            {
                continue;
            }
            rb = rb.header(k.as_str(), v.as_str());
        }
        let resp = rb.send().await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let ctype = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/json")
            .to_string();
        let body = resp.bytes().await.map_err(|e| e.to_string())?;
        Ok((status, ctype, body.to_vec()))
    }
}

fn countdown(n: u32, make: impl Fn(u32) -> Mode) -> Mode {
    if n <= 1 {
        Mode::Pass
    } else {
        make(n - 1)
    }
}

fn drop_action() -> Action {
    Action::Forward {
        delay_before: Duration::ZERO,
        delay_after: Duration::ZERO,
        drop_response: true,
    }
}

struct RawRequest {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 64 * 1024 * 1024;

/// Reads one HTTP/1.1 request; None on EOF, I/O error or a malformed request.
async fn read_request(sock: &mut TcpStream) -> Option<RawRequest> {
    let mut buf = Vec::with_capacity(4096);
    let head_end = loop {
        if let Some(p) = find(&buf, b"\r\n\r\n") {
            break p;
        }
        if buf.len() > MAX_HEAD {
            return None;
        }
        let mut chunk = [0u8; 4096];
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut rest = buf[head_end + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split_whitespace();
    let method = first.next()?.to_string();
    let path = first.next()?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let chunked =
        get("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let body = if chunked {
        read_chunked(sock, &mut rest).await?
    } else {
        let len: usize = get("content-length").map_or(Some(0), |v| v.parse().ok())?;
        if len > MAX_BODY {
            return None;
        }
        while rest.len() < len {
            let mut chunk = [0u8; 8192];
            let n = sock.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            rest.extend_from_slice(&chunk[..n]);
        }
        rest.truncate(len);
        rest
    };
    Some(RawRequest {
        method,
        path,
        headers,
        body,
    })
}

async fn fill(sock: &mut TcpStream, buf: &mut Vec<u8>) -> Option<()> {
    let mut chunk = [0u8; 8192];
    let n = sock.read(&mut chunk).await.ok()?;
    if n == 0 || buf.len() > MAX_BODY {
        return None;
    }
    buf.extend_from_slice(&chunk[..n]);
    Some(())
}

async fn read_chunked(sock: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = loop {
            if let Some(p) = find(buf, b"\r\n") {
                break p;
            }
            fill(sock, buf).await?;
        };
        let size_text = String::from_utf8_lossy(&buf[..line_end]).into_owned();
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        buf.drain(..line_end + 2);
        if size == 0 {
            // trailers (if any) end with an empty line
            loop {
                if let Some(p) = find(buf, b"\r\n") {
                    let empty = p == 0;
                    buf.drain(..p + 2);
                    if empty {
                        return Some(body);
                    }
                } else {
                    fill(sock, buf).await?;
                }
            }
        }
        while buf.len() < size + 2 {
            fill(sock, buf).await?;
        }
        body.extend_from_slice(&buf[..size]);
        buf.drain(..size + 2);
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

async fn write_response(
    sock: &mut TcpStream,
    status: u16,
    ctype: &str,
    body: &[u8],
) -> std::io::Result<()> {
    let reason = reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Unknown");
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    sock.write_all(head.as_bytes()).await?;
    sock.write_all(body).await?;
    sock.flush().await?;
    sock.shutdown().await
}
