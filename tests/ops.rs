//! Operations: metrics, security headers, TLS, graceful shutdown under load, backup and
//! restore under load, the server lock. Most drive the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::binary::{demo_qr, EdgeProcess, Install, QUIET};
use support::http;

fn start(data: &Path, extra: &[&str]) -> EdgeProcess {
    EdgeProcess::start(
        Install::DataDir(data),
        extra,
        &[
            ("MPS_EDGE_QR__SINGLE_USE", "false"),
            ("MPS_EDGE_LIMITS__MAX_CARD_UNSYNCED", "9999999.00"),
            ("MPS_EDGE_LIMITS__MAX_SITE_UNSYNCED", "99999999.00"),
            QUIET,
        ],
    )
}

fn cli(data: &Path, args: &[&str]) -> std::process::Output {
    support::binary::cli(Install::DataDir(data), args)
}

/// Acknowledged tx_nos with the instant each acknowledgement arrived.
type Acks = Arc<Mutex<Vec<(String, Instant)>>>;

/// POS clients charging until [`Load::finish`].
struct Load {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    acks: Acks,
    stop: Arc<AtomicBool>,
}

impl Load {
    /// Stops the clients and waits until they are done.
    async fn finish(self) -> Acks {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            let _ = t.await;
        }
        self.acks
    }
}

/// The binary on a fresh demo installation at `data`, the owner signed in, and `workers`
/// tasks charging 1.25 on the first ten demo cards (one live token each) until
/// [`Load::finish`].
async fn serve_under_load(data: &Path, workers: usize) -> (EdgeProcess, reqwest::Client, Load) {
    let server = start(data, &[]);
    let client = reqwest::Client::new();
    let token = owner_token(&client, &server).await;
    let tokens = Arc::new(
        (1..=10)
            .map(|i| demo_qr(data, &format!("STD{i:08}")))
            .collect::<Vec<_>>(),
    );
    let acks: Acks = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (client, url, token, tokens, acks, stop) = (
            client.clone(),
            server.url.clone(),
            token.clone(),
            tokens.clone(),
            acks.clone(),
            stop.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut n = w;
            while !stop.load(Ordering::Relaxed) {
                n += workers;
                let res = http::charge(&client, &url, &token, &tokens[n % tokens.len()], "1.25")
                    .send()
                    .await;
                let Ok(res) = res else { break };
                if res.status().is_success() {
                    let Ok(body) = res.json::<Value>().await else {
                        break;
                    };
                    let tx = body["transaction"]["tx_no"].as_str().unwrap().to_string();
                    acks.lock().unwrap().push((tx, Instant::now()));
                }
            }
        }));
    }
    (server, client, Load { tasks, acks, stop })
}

/// Signs the owner in with the password the first start printed.
async fn owner_token(client: &reqwest::Client, server: &EdgeProcess) -> String {
    let password = server.password.as_deref().expect("first start");
    http::login(client, &server.url, "owner", password)
        .await
        .unwrap()
}

fn stored_tx(db: &Path) -> HashSet<String> {
    let c = rusqlite::Connection::open(db).unwrap();
    let mut stmt = c.prepare("SELECT tx_no FROM transactions").unwrap();
    let rows = stmt.query_map([], |r| r.get::<_, String>(0)).unwrap();
    rows.map(|r| r.unwrap()).collect()
}

fn integrity(db: &Path) -> String {
    let c = rusqlite::Connection::open(db).unwrap();
    c.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_during_load_exits_cleanly_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (mut server, _, load) = serve_under_load(&data, 12).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let status = server.terminate();
    let acks = load.finish().await;
    assert!(
        status.success(),
        "SIGTERM must end with exit 0, got {status:?}"
    );
    let acked: Vec<String> = acks.lock().unwrap().iter().map(|a| a.0.clone()).collect();
    assert!(
        acked.len() > 10,
        "the load produced charges ({})",
        acked.len()
    );
    let stored = stored_tx(&data.join("mps-edge.db"));
    for tx in &acked {
        assert!(stored.contains(tx), "acknowledged {tx} lost on SIGTERM");
    }
    assert_eq!(integrity(&data.join("mps-edge.db")), "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn backup_under_load_restores_every_acknowledged_charge() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (mut server, client, load) = serve_under_load(&data, 8).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let backup = dir.path().join("backup.db");
    let backup_started = Instant::now();
    let out = cli(&data, &["backup", "--to", backup.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["integrity"], "ok");
    // balances and password hashes: the copy is the owner's only, like the database
    {
        use std::os::unix::fs::PermissionsExt;
        for f in [backup.clone(), data.join("mps-edge.db")] {
            let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", f.display());
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Restoring under a running server is refused.
    let refused = cli(&data, &["restore", "--from", backup.to_str().unwrap()]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("running"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let acks = load.finish().await;
    assert!(server.terminate().success());

    let before: Vec<String> = acks
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, at)| *at < backup_started)
        .map(|(tx, _)| tx.clone())
        .collect();
    assert!(!before.is_empty());
    let total = acks.lock().unwrap().len();
    let out = cli(&data, &["restore", "--from", backup.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("mps-edge.db"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the restored database");
    }
    let restored = stored_tx(&data.join("mps-edge.db"));
    for tx in &before {
        assert!(
            restored.contains(tx),
            "{tx} acknowledged before the backup is missing from it"
        );
    }
    assert!(restored.len() <= total);
    assert_eq!(integrity(&data.join("mps-edge.db")), "ok");
    let kept = std::fs::read_dir(&data)
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("mps-edge.db.before-restore-")
        });
    assert!(kept, "the previous database is kept");
    // The restored store serves again.
    let mut again = start(&data, &[]);
    let ok = client
        .get(format!("{}/ready", again.url))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert!(again.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_the_same_data_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = start(&data, &[]);
    let second = support::binary::command(Install::DataDir(&data))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!second.status.success());
    assert!(String::from_utf8_lossy(&second.stderr).contains("another mps-edge server"));
    assert!(server.terminate().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serve_works_with_a_generated_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = cli(
        &data,
        &[
            "init",
            "--tls",
            "--host",
            "localhost",
            "--host",
            "127.0.0.1",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let fingerprint = text
        .lines()
        .skip_while(|l| !l.contains("fingerprint"))
        .nth(1)
        .unwrap()
        .trim()
        .to_string();
    assert_eq!(fingerprint.len(), 32 * 3 - 1, "{fingerprint}");
    let cert = data.join("tls/cert.pem");
    let key = data.join("tls/key.pem");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let mut server = start(
        &data,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    assert!(server.url.starts_with("https://"));
    let pem = std::fs::read(&cert).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    let res = client
        .get(format!("{}/health", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().contains_key("strict-transport-security"));
    // Plain HTTP to the TLS port does not get an answer.
    let plain = reqwest::Client::new()
        .get(server.url.replace("https://", "http://") + "/health")
        .send()
        .await;
    assert!(plain.is_err() || plain.unwrap().status() != 200);
    assert!(server.terminate().success());
}

/// HTTPS has the limits plain HTTP has (issue 12 point 3): sockets that never finish
/// the TLS handshake are closed after `header_read_timeout_secs` and counted, they hold
/// no more than `max_connections` slots, and a real client is served once slots free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_handshakes_that_never_finish_are_closed_and_capped() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = cli(&data, &["init", "--tls", "--host", "127.0.0.1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cert = data.join("tls/cert.pem");
    let key = data.join("tls/key.pem");
    let server = EdgeProcess::start(
        Install::DataDir(&data),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
        &[
            ("MPS_EDGE_SERVER__HEADER_READ_TIMEOUT_SECS", "1"),
            ("MPS_EDGE_SERVER__MAX_CONNECTIONS", "16"),
            QUIET,
        ],
    );
    let addr = server.url.trim_start_matches("https://").to_string();
    // Twice the cap: half of them wait in the backlog until the first half is closed.
    const SILENT: usize = 32;
    let mut sockets = Vec::new();
    for i in 0..SILENT {
        let s = std::net::TcpStream::connect(&addr).unwrap();
        if i % 2 == 0 {
            // The first bytes of a ClientHello, then nothing.
            use std::io::Write;
            (&s).write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
                .unwrap();
        }
        sockets.push(s);
    }
    let pem = std::fs::read(&cert).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let started = Instant::now();
    let res = client
        .get(format!("{}/health", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let served_after = started.elapsed();
    // Every silent socket is closed by the server (read returns EOF or an error).
    for s in &sockets {
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut buf = [0u8; 64];
        use std::io::Read;
        match (&*s).read(&mut buf) {
            Ok(0) | Err(_) => {}
            Ok(n) => {
                // A TLS alert is allowed before the close; then EOF.
                assert!(n > 0);
                let again = (&*s).read(&mut buf);
                assert!(matches!(again, Ok(0) | Err(_)), "{again:?}");
            }
        }
    }
    let metrics = client
        .get(format!("{}/metrics", server.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let counted: f64 = parse_prometheus(&metrics)
        .iter()
        .filter(|(name, _)| {
            name.starts_with("mps_edge_http_connections_closed_total")
                && (name.contains("header_timeout") || name.contains("tls_handshake"))
        })
        .map(|(_, v)| v)
        .sum();
    assert!(
        counted >= SILENT as f64,
        "{SILENT} silent sockets, {counted} counted: {metrics}"
    );
    println!("TLS: {SILENT} silent sockets against max_connections 16; a real client served after {served_after:?}, all closed and counted");
}

/// Minimal Prometheus text-format check: every sample line is `name{labels} value`.
fn parse_prometheus(text: &str) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix('#') {
            let words: Vec<&str> = rest.split_whitespace().collect();
            assert!(
                matches!(words.first(), Some(&"HELP") | Some(&"TYPE")),
                "bad comment: {line}"
            );
            if words[0] == "TYPE" {
                assert!(
                    matches!(
                        words.get(2),
                        Some(&"counter")
                            | Some(&"gauge")
                            | Some(&"histogram")
                            | Some(&"summary")
                            | Some(&"untyped")
                    ),
                    "{line}"
                );
            }
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value: {line}"));
        let v: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value: {line}"));
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad name: {line}"
        );
        if name_end < series.len() {
            assert!(series.ends_with('}'), "bad labels: {line}");
        }
        out.push((series.to_string(), v));
    }
    out
}

fn sample(samples: &[(String, f64)], needle: &[&str]) -> f64 {
    samples
        .iter()
        .filter(|(s, _)| needle.iter().all(|n| s.contains(n)))
        .map(|(_, v)| *v)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_and_move_with_traffic_and_headers_are_set() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = start(&data, &[]);
    let client = reqwest::Client::new();
    let token = owner_token(&client, &server).await;
    let before = parse_prometheus(
        &client
            .get(format!("{}/metrics", server.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    let q = demo_qr(&data, "STD00000002");
    for _ in 0..3 {
        let r = http::charge(&client, &server.url, &token, &q, "2.00")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.headers().contains_key("x-request-id"));
        assert_eq!(r.headers()["x-content-type-options"], "nosniff");
        assert_eq!(r.headers()["cache-control"], "no-store");
    }
    let declined = http::charge(&client, &server.url, &token, &q, "99999.00")
        .send()
        .await
        .unwrap();
    assert_eq!(declined.status(), 422);
    let res = client
        .get(format!("{}/metrics", server.url))
        .send()
        .await
        .unwrap();
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let after = parse_prometheus(&res.text().await.unwrap());
    let approved =
        |s: &[(String, f64)]| sample(s, &["mps_edge_charges_total", "outcome=\"approved\""]);
    assert_eq!(approved(&after) - approved(&before), 3.0);
    assert!(
        sample(
            &after,
            &["mps_edge_charges_total", "outcome=\"INSUFFICIENT_BALANCE\""]
        ) + sample(
            &after,
            &["mps_edge_charges_total", "OFFLINE_LIMIT_EXCEEDED"]
        ) >= 1.0
    );
    let requests = |s: &[(String, f64)]| {
        sample(
            s,
            &[
                "mps_edge_http_requests_total",
                "route=\"/api/v1/merchant/charge\"",
                "status=\"200\"",
            ],
        )
    };
    assert_eq!(requests(&after) - requests(&before), 3.0);
    assert!(
        sample(
            &after,
            &[
                "mps_edge_http_request_duration_seconds_count",
                "/api/v1/merchant/charge"
            ]
        ) >= 4.0
    );
    assert_eq!(sample(&after, &["mps_edge_outbox_depth"]), 3.0);
    assert!(sample(&after, &["mps_edge_db_write_batch_size_count"]) >= 3.0);
    // CORS is closed by default: a preflight from a foreign origin gets no allow header.
    let pre = client
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/api/v1/merchant/charge", server.url),
        )
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(!pre.headers().contains_key("access-control-allow-origin"));
    assert!(server.terminate().success());
}
