//! Operations: metrics, security headers, TLS, graceful shutdown under load, backup and
//! restore under load, the server lock. Most drive the real binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_mps-edge");

struct Server {
    child: Child,
    url: String,
    password: Option<String>,
}

fn start(data: &Path, extra: &[&str]) -> Server {
    let mut args = vec![
        "--data-dir",
        data.to_str().unwrap(),
        "serve",
        "--listen",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(extra);
    let mut child = Command::new(BIN)
        .args(&args)
        .env("MPS_EDGE_QR__SINGLE_USE", "false")
        .env("MPS_EDGE_LIMITS__MAX_CARD_UNSYNCED", "9999999.00")
        .env("MPS_EDGE_LIMITS__MAX_SITE_UNSYNCED", "99999999.00")
        .env("MPS_EDGE_LOG__LEVEL", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut url, mut password) = (None, None);
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.split("listening on ").nth(1) {
            url = Some(rest.trim().to_string());
        }
        if let Some(rest) = line.split("password ").nth(1) {
            password = Some(rest.trim().to_string());
        }
        if line.contains("test charge") || line.contains("owner account exists") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    Server {
        child,
        url: url.expect("url"),
        password,
    }
}

fn cli(data: &Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env("MPS_EDGE_LOG__LEVEL", "warn")
        .output()
        .unwrap()
}

fn sigterm(child: &Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

async fn login(http: &reqwest::Client, url: &str, password: &str) -> String {
    let v: Value = http
        .post(format!("{url}/api/v1/auth/login"))
        .json(&json!({"username": "owner", "password": password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["access_token"].as_str().unwrap().to_string()
}

fn qr(data: &Path, card: &str) -> String {
    let out = cli(
        data,
        &["demo", "qr", "--card", card, "--ttl", "3600", "--json"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["qr_plain"].as_str().unwrap().to_string()
}

/// Acknowledged tx_nos with the instant each acknowledgement arrived.
type Acks = Arc<Mutex<Vec<(String, Instant)>>>;

/// Fires charges from `workers` tasks until `stop` flips; returns acknowledged tx_nos with
/// the instant each acknowledgement arrived.
fn load(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    tokens: Arc<Vec<String>>,
    workers: usize,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> (Vec<tokio::task::JoinHandle<()>>, Acks) {
    let acks = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (http, url, token, tokens, acks, stop) = (
            http.clone(),
            url.to_string(),
            token.to_string(),
            tokens.clone(),
            acks.clone(),
            stop.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut n = w;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                n += workers;
                let res = http
                    .post(format!("{url}/api/v1/merchant/charge"))
                    .bearer_auth(&token)
                    .json(&json!({"qr_plain": tokens[n % tokens.len()], "amount": "1.25"}))
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
    (tasks, acks)
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
    let mut server = start(&data, &[]);
    let http = reqwest::Client::new();
    let token = login(&http, &server.url, server.password.as_deref().unwrap()).await;
    let tokens = Arc::new(
        (1..=10)
            .map(|i| qr(&data, &format!("STD{i:08}")))
            .collect::<Vec<_>>(),
    );
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (tasks, acks) = load(&http, &server.url, &token, tokens, 12, stop.clone());
    tokio::time::sleep(Duration::from_millis(800)).await;
    sigterm(&server.child);
    let status = server.child.wait().unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
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
    let mut server = start(&data, &[]);
    let http = reqwest::Client::new();
    let token = login(&http, &server.url, server.password.as_deref().unwrap()).await;
    let tokens = Arc::new(
        (1..=10)
            .map(|i| qr(&data, &format!("STD{i:08}")))
            .collect::<Vec<_>>(),
    );
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (tasks, acks) = load(&http, &server.url, &token, tokens, 8, stop.clone());
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
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    sigterm(&server.child);
    assert!(server.child.wait().unwrap().success());

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
    let ok = http
        .get(format!("{}/ready", again.url))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    sigterm(&again.child);
    assert!(again.child.wait().unwrap().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_the_same_data_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = start(&data, &[]);
    let second = Command::new(BIN)
        .args([
            "--data-dir",
            data.to_str().unwrap(),
            "serve",
            "--listen",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert!(!second.status.success());
    assert!(String::from_utf8_lossy(&second.stderr).contains("another mps-edge server"));
    sigterm(&server.child);
    assert!(server.child.wait().unwrap().success());
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
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    let res = http
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
    sigterm(&server.child);
    assert!(server.child.wait().unwrap().success());
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
    let http = reqwest::Client::new();
    let token = login(&http, &server.url, server.password.as_deref().unwrap()).await;
    let before = parse_prometheus(
        &http
            .get(format!("{}/metrics", server.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    let q = qr(&data, "STD00000002");
    for _ in 0..3 {
        let r = http
            .post(format!("{}/api/v1/merchant/charge", server.url))
            .bearer_auth(&token)
            .json(&json!({"qr_plain": q, "amount": "2.00"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.headers().contains_key("x-request-id"));
        assert_eq!(r.headers()["x-content-type-options"], "nosniff");
        assert_eq!(r.headers()["cache-control"], "no-store");
    }
    let declined = http
        .post(format!("{}/api/v1/merchant/charge", server.url))
        .bearer_auth(&token)
        .json(&json!({"qr_plain": q, "amount": "99999.00"}))
        .send()
        .await
        .unwrap();
    assert_eq!(declined.status(), 422);
    let res = http
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
    let pre = http
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
    sigterm(&server.child);
    assert!(server.child.wait().unwrap().success());
}
