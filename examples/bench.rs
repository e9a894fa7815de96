//! The mps-edge benchmark suite (issue #5): one command, loopback only, bounded in time.
//!
//! ```text
//! cargo run --release --example bench              # full suite, ≤ ~5 minutes on 2 cores
//! cargo run --release --example bench -- --quick   # ~1 minute, smaller sync volumes
//! ```
//!
//! What it measures (see docs/performance.md for the method and the recorded results):
//!
//! 1. bcrypt ceiling: the time of one cost-6 verify, measured; ceiling = cores ÷ that time.
//! 2. raw SQLite ceiling: the production `commit_charge` (its reads, checks and writes),
//!    called directly through the project's group-commit writer (`db.write`,
//!    synchronous=FULL) from 64 concurrent tasks: no HTTP, no token matching.
//! 3. charges through the real HTTP API (in-process server on 127.0.0.1:0, real config,
//!    temp dir, durable writes, a real JWT from /api/v1/auth/login) with 1, 8 and 64
//!    concurrent POS clients, for fast (mq1) and legacy tokens. Single-use QR stays on: every
//!    charge presents a token never seen before.
//! 4. QR validation latency with 10, 1,000 and 100,000 cards (as many live codes).
//! 5. replica bootstrap of 100,000 cards from the test central and the outbox drain rate
//!    of 100,000 charge operations to it (needs PostgreSQL; see tests/support/pg.rs); then
//!    smaller drains of legacy-token charges (one bcrypt each at central) and of offline-code
//!    (mq2) charges (a hash-chain walk each at central), beside central's own bcrypt and
//!    SHA-256 rates measured in the same run.
//! 6. the real release binary under the 64-client fast-token load: its peak RSS (VmHWM)
//!    with 100,000 cards, its CPU per charge; and the binary's size.
//! 7. `login_flood` (issue 12): the real binary under 500 concurrent sign-ins for unknown
//!    usernames from 250 loopback addresses while 8 POS terminals keep charging: its peak
//!    RSS (VmHWM) and the charges' p50/p99 before and during the flood
//!    (`cargo run --release --example bench -- --only login_flood`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use base64::Engine;
use clap::Parser;
use mps_edge::config::{Config, Secret};
use mps_edge::db::cards::put_qr_state;
use mps_edge::db::ledger::{commit_charge, ChargeCmd, Idem};
use mps_edge::db::users::Actor;
use mps_edge::db::{self, Db};
use mps_edge::domain::qr::{classify, fast_verifier, issue_legacy, verify_legacy, TokenShape};
use mps_edge::error::AppError;
use rand::{Rng, RngCore};
use rusqlite::{params, Connection};
use serde_json::json;
use support::binary::{EdgeProcess, Install};
use support::in_process::InProcess;
use tempfile::TempDir;

#[derive(Parser, Debug)]
#[command(about = "mps-edge benchmark suite (loopback, bounded in time)")]
struct Args {
    /// A ~1-minute run: shorter phases and 10,000 (not 100,000) cards/operations for the
    /// bootstrap and drain.
    #[arg(long)]
    quick: bool,
    /// Skip the parts that need PostgreSQL (bootstrap and drain).
    #[arg(long)]
    skip_central: bool,
    /// Skip running the release binary as a child (peak RSS of the real server).
    #[arg(long)]
    skip_binary: bool,
    /// Run only these sections (comma-separated: raw, charges, validation, sync, binary,
    /// login_flood, slow_flood, mq2), e.g. under a profiler.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Length of each timed load phase in seconds (default 6, or 2 with --quick).
    #[arg(long)]
    phase_secs: Option<u64>,
    /// The server binary for `login_flood` (default: the release binary, built first).
    #[arg(long, value_name = "FILE")]
    server_bin: Option<PathBuf>,
    /// Concurrent sign-ins in `login_flood`.
    #[arg(long, default_value_t = 500)]
    flood_logins: usize,
    /// Slow-header sockets in `slow_flood`.
    #[arg(long, default_value_t = 5000)]
    flood_sockets: usize,
}

impl Args {
    fn want(&self, section: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|s| s == section)
    }
}

/// Sizes and durations of one run.
struct Plan {
    quick: bool,
    phase: Duration,
    warmup_charges: usize,
    fast_pool: usize,
    legacy_pool: usize,
    sync_cards: usize,
    binary_cards: usize,
    validation_sizes: [usize; 3],
    /// Most legacy waves per client level (1, 8, 64); a wave is one code per client.
    legacy_waves: [usize; 3],
    /// Deepest legacy scan measured directly; deeper ones are extrapolated.
    max_measured_depth: usize,
    /// The drain stops after this long (the rate is taken over what was drained).
    drain_box: Duration,
}

impl Plan {
    fn new(quick: bool) -> Plan {
        Plan {
            quick,
            phase: Duration::from_secs(if quick { 2 } else { 6 }),
            warmup_charges: if quick { 100 } else { 300 },
            fast_pool: if quick { 20_000 } else { 60_000 },
            // warm-up 10 + waves (1, 8, 64 clients) + one 64-code wave for the mixed run
            legacy_pool: if quick {
                10 + 300 + 160 + 64 + 64
            } else {
                10 + 1_300 + 800 + 192 + 64
            },
            legacy_waves: if quick { [300, 20, 1] } else { [1_300, 100, 3] },
            sync_cards: if quick { 10_000 } else { 100_000 },
            binary_cards: 100_000,
            validation_sizes: [10, 1_000, 100_000],
            max_measured_depth: if quick { 200 } else { 1_000 },
            drain_box: Duration::from_secs(if quick { 15 } else { 140 }),
        }
    }
}

const CLIENT_LEVELS: [usize; 3] = [1, 8, 64];
/// Charges/s offered by the open-loop phase's 64 terminals together.
const OPEN_LOOP_RATE: f64 = 1_000.0;
const OWNER: &str = "owner";

fn ae(e: AppError) -> anyhow::Error {
    anyhow!("{e}")
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// A `kB` field of /proc/<pid>/status, in MB.
fn status_mb(pid: &str, field: &str) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// CPU seconds used so far by one PostgreSQL cluster (the test central's): its
/// postmaster, its live processes, and the ones that ended (backends of closed
/// connections, autovacuum workers), which the postmaster reaped into its children's
/// times. Not every process named `postgres`: another cluster on the machine (a test
/// run) is not central's work, and a process that ends would take its CPU out of a sum.
fn postgres_cpu_secs(data_dir: &Path) -> f64 {
    let Some(postmaster) = std::fs::read_to_string(data_dir.join("postmaster.pid"))
        .ok()
        .and_then(|s| s.lines().next().map(str::to_string))
    else {
        return f64::NAN;
    };
    let Some((_, own)) = proc_times(&postmaster) else {
        return f64::NAN;
    };
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return f64::NAN;
    };
    let children: f64 = dir
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let pid = e.file_name().to_string_lossy().to_string();
            pid.bytes().all(|b| b.is_ascii_digit()).then_some(pid)
        })
        .filter_map(|pid| proc_times(&pid))
        .filter(|(ppid, _)| *ppid == postmaster)
        .map(|(_, t)| t)
        .sum();
    own + children
}

/// (parent pid, utime + stime + cutime + cstime in seconds) of a process.
fn proc_times(pid: &str) -> Option<(String, f64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = s.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let mut ticks = 0.0;
    for i in 11..=14 {
        ticks += f.get(i)?.parse::<f64>().ok()?;
    }
    Some((f.get(1)?.to_string(), ticks / 100.0)) // USER_HZ is 100 on Linux
}

/// utime + stime of a process, in seconds.
fn cpu_secs(pid: &str) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = s.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0) // USER_HZ is 100 on Linux
}

/// (busy, steal) CPU seconds of the whole machine so far, summed over cores (/proc/stat).
fn machine_cpu_secs() -> (f64, f64) {
    let Ok(s) = std::fs::read_to_string("/proc/stat") else {
        return (f64::NAN, f64::NAN);
    };
    let f: Vec<f64> = s
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let get = |i: usize| f.get(i).copied().unwrap_or(0.0) / 100.0;
    // user nice system idle iowait irq softirq steal
    (get(0) + get(1) + get(2) + get(5) + get(6), get(7))
}

/// This process's CPU seconds, including children it has waited for.
fn own_cpu_secs() -> f64 {
    let Some(s) = std::fs::read_to_string("/proc/self/stat").ok() else {
        return f64::NAN;
    };
    let rest = s.rsplit_once(')').map_or("", |r| r.1);
    let f: Vec<f64> = rest
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    // after the state letter: utime, stime, cutime, cstime are fields 11..=14
    f.get(10..14)
        .map_or(f64::NAN, |v| v.iter().sum::<f64>() / 100.0)
}

/// Watches how much CPU other processes on the machine use while a section runs: the
/// numbers are only comparable when that is near zero.
struct CpuWatch {
    t: Instant,
    busy: f64,
    steal: f64,
    own: f64,
}

impl CpuWatch {
    fn start() -> CpuWatch {
        let (busy, steal) = machine_cpu_secs();
        CpuWatch {
            t: Instant::now(),
            busy,
            steal,
            own: own_cpu_secs(),
        }
    }
    /// (cores used by other processes, cores stolen by the hypervisor); `ours` is CPU
    /// seconds of our own other processes (PostgreSQL, the child server) in the window.
    fn others(&self, ours: f64) -> (f64, f64) {
        let (busy, steal) = machine_cpu_secs();
        let wall = self.t.elapsed().as_secs_f64();
        let others = (busy - self.busy) - (own_cpu_secs() - self.own) - ours;
        ((others / wall).max(0.0), (steal - self.steal) / wall)
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Nearest-rank percentile of sorted milliseconds.
fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(|a, b| a.total_cmp(b));
    v
}

fn thousands(n: f64) -> String {
    let s = format!("{:.0}", n);
    let (sign, digits) = s.strip_prefix('-').map_or(("", s.as_str()), |d| ("-", d));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{sign}{out}")
}

// ---------------------------------------------------------------------------------------
// Data set helpers
// ---------------------------------------------------------------------------------------

/// A config as an operator would run it, with the offline limits raised so they never
/// decline a benchmark charge. Single-use QR stays on (the default).
fn bench_config(data_dir: PathBuf) -> Config {
    let mut cfg = Config {
        data_dir,
        ..Config::default()
    };
    cfg.server.listen = "127.0.0.1:0".into();
    cfg.limits.max_tx_amount = "100000.00".parse().unwrap();
    cfg.limits.max_card_unsynced = "9999999999.00".parse().unwrap();
    cfg.limits.max_site_unsynced = "9999999999.00".parse().unwrap();
    cfg.log.level = "warn".into();
    // Every benchmark client shares 127.0.0.1.
    cfg.server.rate_limit_per_sec = 0;
    cfg
}

/// Environment for the child binary equal to `bench_config`.
const CHILD_ENV: [(&str, &str); 5] = [
    ("MPS_EDGE_SERVER__RATE_LIMIT_PER_SEC", "0"),
    ("MPS_EDGE_LIMITS__MAX_TX_AMOUNT", "100000.00"),
    ("MPS_EDGE_LIMITS__MAX_CARD_UNSYNCED", "9999999999.00"),
    ("MPS_EDGE_LIMITS__MAX_SITE_UNSYNCED", "9999999999.00"),
    ("MPS_EDGE_LOG__LEVEL", "warn"),
];

/// Inserts `n` active standard cards (balance 1,000.00, level 0) and returns their ids.
fn insert_cards(c: &Connection, prefix: &str, n: usize) -> rusqlite::Result<Vec<String>> {
    let now = db::now_rfc3339();
    let mut stmt = c.prepare_cached(
        "INSERT INTO cards(id, card_no, card_type, status, snapshot_balance_cents, snapshot_points,
             snapshot_level, snapshot_discount_milli, snapshot_updated_at, level, discount_milli, is_demo)
         VALUES (?1, ?2, 'standard', 'active', 100000, 0, 0, 1000, ?3, 0, 1000, 0)",
    )?;
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let id = uuid::Uuid::new_v4().to_string();
        stmt.execute(params![id, format!("{prefix}{i:09}"), now])?;
        ids.push(id);
    }
    Ok(ids)
}

/// An mq1 token for a card and its SHA-256 verifier, as central's `edge_issue_qr` makes
/// them (without the bcrypt hash of the token, which the edge never checks for mq1).
fn fast_token(card_id: &str) -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let plain = format!(
        "mq1.{}.{}",
        card_id.replace('-', ""),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    let verifier = fast_verifier(&plain);
    (plain, verifier)
}

/// `n` real legacy tokens (plain, bcrypt cost-6 hash), hashed on every core.
fn issue_legacy_parallel(n: usize) -> Vec<(String, String)> {
    let threads = cores().max(1);
    let out = Mutex::new(Vec::with_capacity(n));
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                while next.fetch_add(1, Ordering::Relaxed) < n {
                    let t = issue_legacy().expect("bcrypt");
                    out.lock().unwrap().push(t);
                }
            });
        }
    });
    out.into_inner().unwrap()
}

/// Gives every card a live token state. The stored bcrypt hash is taken from `hashes` in
/// turn: a real cost-6 hash, but of a DIFFERENT random token (hashing 100,000 distinct
/// tokens would take minutes; what a legacy scan pays per state is the same). With
/// `verifiers`, the states are mq1 states (the SHA-256 verifier of the card's token).
fn live_states(
    c: &Connection,
    cards: &[String],
    hashes: &[String],
    verifiers: Option<&[String]>,
    expires: i64,
) -> mps_edge::error::AppResult<()> {
    let now = db::now_rfc3339();
    for (i, id) in cards.iter().enumerate() {
        let v = verifiers.map(|v| v[i].as_str());
        put_qr_state(c, id, &hashes[i % hashes.len()], expires, &now, v)?;
    }
    Ok(())
}

fn far_future() -> i64 {
    chrono::Utc::now().timestamp() + 24 * 3600
}

/// A fresh installation as `mps-edge serve` makes it on first start (demo merchant,
/// levels, owner account), returning the owner's password.
async fn open_installation(cfg: &Config) -> anyhow::Result<(Db, String)> {
    let c2 = cfg.clone();
    let opened = tokio::task::spawn_blocking(move || mps_edge::startup::open(&c2, true)).await??;
    let (_, password) = opened
        .new_owner
        .ok_or_else(|| anyhow!("no owner account was created"))?;
    Ok((opened.db, password))
}

// ---------------------------------------------------------------------------------------
// In-process server and HTTP clients
// ---------------------------------------------------------------------------------------

/// The server under test, on its own Tokio runtime (multi-thread, one worker per core, as
/// `mps-edge serve` builds it), so the POS clients on the bench's runtime do not share its
/// worker threads, like separate processes.
struct Server {
    url: String,
    jwt: String,
    inner: InProcess,
    _dir: TempDir,
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(120))
        .pool_max_idle_per_host(4)
        .build()
        .expect("http client")
}

async fn login(url: &str, password: &str) -> anyhow::Result<String> {
    support::http::login(&http_client(), url, OWNER, password).await
}

async fn start_server(cfg: Config, db: Db, password: &str, dir: TempDir) -> anyhow::Result<Server> {
    let mut secret = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut secret);
    let inner = InProcess::start_own_runtime(move |stop| {
        mps_edge::startup::build_state(cfg, db, &secret, stop)
    })?;
    let jwt = login(&inner.url, password).await?;
    Ok(Server {
        url: inner.url.clone(),
        jwt,
        inner,
        _dir: dir,
    })
}

impl Server {
    async fn stop(self) {
        self.inner.stop().await;
    }
}

// ---------------------------------------------------------------------------------------
// Charge load
// ---------------------------------------------------------------------------------------

struct LegacyTok {
    card_id: String,
    plain: String,
    hash: String,
}

/// Pre-issued tokens handed out once each (single-use QR: a token never charges twice).
struct Pool<T> {
    tokens: Vec<T>,
    next: AtomicUsize,
}

impl<T> Pool<T> {
    fn new(tokens: Vec<T>) -> Arc<Pool<T>> {
        Arc::new(Pool {
            tokens,
            next: AtomicUsize::new(0),
        })
    }
    fn take(&self) -> Option<&T> {
        self.tokens.get(self.next.fetch_add(1, Ordering::Relaxed))
    }
}

#[derive(Default)]
struct PhaseResult {
    ok: usize,
    errors: usize,
    first_error: Option<String>,
    /// Time charges were in flight (legacy: the sum of the waves).
    secs: f64,
    lat_ms: Vec<f64>,
    /// bcrypt verifies the edge ran for the phase's legacy scans (its own counter).
    verifies: u64,
    exhausted: bool,
    writer_jobs_per_batch: f64,
}

impl PhaseResult {
    fn rate(&self) -> f64 {
        self.ok as f64 / self.secs
    }
    fn verifies_per_charge(&self) -> f64 {
        self.verifies as f64 / self.ok.max(1) as f64
    }
    fn merge(&mut self, r: PhaseResult) {
        self.ok += r.ok;
        self.errors += r.errors;
        self.verifies += r.verifies;
        self.exhausted |= r.exhausted;
        if self.first_error.is_none() {
            self.first_error = r.first_error;
        }
        self.lat_ms.extend(r.lat_ms);
    }
}

struct WriterMark(u64, u64);

fn writer_mark(db: Option<&Db>) -> Option<WriterMark> {
    db.map(|d| {
        WriterMark(
            d.writer.stats.batches.load(Ordering::Relaxed),
            d.writer.stats.jobs.load(Ordering::Relaxed),
        )
    })
}

fn jobs_per_commit(db: Option<&Db>, mark: Option<WriterMark>) -> f64 {
    match (db, mark) {
        (Some(d), Some(WriterMark(b0, j0))) => {
            let b = d.writer.stats.batches.load(Ordering::Relaxed) - b0;
            let j = d.writer.stats.jobs.load(Ordering::Relaxed) - j0;
            j as f64 / b.max(1) as f64
        }
        _ => f64::NAN,
    }
}

/// One POS charge request to the server at `url`; Ok(latency ms) or Err(what went wrong).
async fn post_charge(
    http: &reqwest::Client,
    url: &str,
    jwt: &str,
    key: String,
    plain: &str,
    amount: String,
) -> Result<f64, String> {
    let t0 = Instant::now();
    let resp = support::http::charge(http, url, jwt, plain, &amount)
        .header("Idempotency-Key", key)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    let lat = ms(t0.elapsed());
    if status.is_success() {
        Ok(lat)
    } else {
        Err(format!("{status}: {body}"))
    }
}

fn record(r: &mut PhaseResult, outcome: Result<f64, String>) {
    match outcome {
        Ok(lat) => {
            r.ok += 1;
            r.lat_ms.push(lat);
        }
        Err(e) => {
            r.errors += 1;
            r.first_error.get_or_insert(e);
        }
    }
}

/// A POS idempotency key never used before (keys are scoped to the user: every terminal
/// here signs in as the owner).
fn idem_key() -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    format!(
        "bench-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

fn amount_for(i: usize) -> String {
    format!("{}.{:02}", 1 + (i % 50), (i * 7) % 100)
}

/// Fast tokens, closed loop: `clients` POS terminals, each sending its next charge as soon
/// as the previous one is answered, for `dur` (or `max_charges`, or until the pool runs
/// out). Latency is one charge request as the terminal sees it.
async fn fast_phase(
    url: &str,
    jwt: &str,
    clients: usize,
    dur: Duration,
    max_charges: usize,
    pool: Arc<Pool<String>>,
    writer: Option<&Db>,
) -> PhaseResult {
    let mark = writer_mark(writer);
    let started = Instant::now();
    let deadline = started + dur;
    let budget = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for w in 0..clients {
        let (pool, budget) = (pool.clone(), budget.clone());
        let url = url.to_string();
        let jwt = jwt.to_string();
        tasks.push(tokio::spawn(async move {
            let http = http_client();
            let mut r = PhaseResult::default();
            let mut n = 0usize;
            while Instant::now() < deadline && budget.fetch_add(1, Ordering::Relaxed) < max_charges
            {
                let Some(plain) = pool.take() else {
                    r.exhausted = true;
                    break;
                };
                n += 1;
                let key = idem_key();
                let outcome = post_charge(&http, &url, &jwt, key, plain, amount_for(n + w)).await;
                record(&mut r, outcome);
            }
            r
        }));
    }
    gather(tasks, started, writer, mark).await
}

/// Merges the clients' results of one phase that began at `started` and ends when the
/// last client is done.
async fn gather(
    tasks: Vec<tokio::task::JoinHandle<PhaseResult>>,
    started: Instant,
    writer: Option<&Db>,
    mark: Option<WriterMark>,
) -> PhaseResult {
    let mut total = PhaseResult::default();
    for t in tasks {
        total.merge(t.await.expect("client task"));
    }
    total.secs = started.elapsed().as_secs_f64();
    total.lat_ms = sorted(std::mem::take(&mut total.lat_ms));
    total.writer_jobs_per_batch = jobs_per_commit(writer, mark);
    total
}

/// Fast tokens, open loop: `clients` terminals together offer `rate` charges/s on a fixed
/// schedule, whatever the answers' speed (a terminal's next charge is due at its next slot;
/// latency counts from the slot, so a slow answer also delays the ones queued behind it:
/// no coordinated omission). What a store's terminals see at a given load, below
/// saturation, where the closed loop above measures saturation itself.
async fn open_phase(
    url: &str,
    jwt: &str,
    clients: usize,
    rate: f64,
    dur: Duration,
    pool: Arc<Pool<String>>,
    writer: Option<&Db>,
) -> PhaseResult {
    let mark = writer_mark(writer);
    let started = tokio::time::Instant::now();
    let period = Duration::from_secs_f64(clients as f64 / rate);
    let slots = (dur.as_secs_f64() / period.as_secs_f64()) as u32;
    let mut tasks = Vec::new();
    for w in 0..clients {
        let pool = pool.clone();
        let url = url.to_string();
        let jwt = jwt.to_string();
        // Terminals are spread evenly over one period.
        let first = started + period.mul_f64(w as f64 / clients as f64);
        tasks.push(tokio::spawn(async move {
            let http = http_client();
            let mut r = PhaseResult::default();
            for n in 0..slots {
                let due = first + period * n;
                tokio::time::sleep_until(due).await;
                let Some(plain) = pool.take() else {
                    r.exhausted = true;
                    break;
                };
                let outcome = post_charge(
                    &http,
                    &url,
                    &jwt,
                    idem_key(),
                    plain,
                    amount_for(n as usize + w),
                )
                .await
                .map(|_| ms(due.elapsed()));
                record(&mut r, outcome);
            }
            r
        }));
    }
    gather(tasks, started.into(), writer, mark).await
}

/// Legacy tokens, in waves of `clients`: the wave's codes reach the edge together (one
/// write, as one pulled page of QR states would bring them; untimed), then every terminal
/// charges its code at once. Legacy codes do not name their card, so the edge tries the
/// live unused states newest first; the bcrypt verifies it spent are read from its own
/// counter (`mps_edge_qr_bcrypt_verifies_total`).
async fn legacy_phase(
    url: &str,
    jwt: &str,
    clients: usize,
    dur: Duration,
    max_waves: usize,
    pool: Arc<Pool<LegacyTok>>,
    db: &Db,
) -> PhaseResult {
    let mark = writer_mark(Some(db));
    let https: Vec<reqwest::Client> = (0..clients).map(|_| http_client()).collect();
    let mut total = PhaseResult::default();
    let mut waves = 0;
    while total.secs < dur.as_secs_f64() {
        if waves == max_waves {
            total.exhausted = true;
            break;
        }
        waves += 1;
        let wave: Vec<&LegacyTok> = (0..clients).map_while(|_| pool.take()).collect();
        if wave.len() < clients {
            total.exhausted = true;
            break;
        }
        let states: Vec<(String, String)> = wave
            .iter()
            .map(|t| (t.card_id.clone(), t.hash.clone()))
            .collect();
        let exp = far_future();
        db.write(move |c| {
            let now = db::now_rfc3339();
            for (id, hash) in &states {
                put_qr_state(c, id, hash, exp, &now, None)?;
            }
            Ok(())
        })
        .await
        .expect("the wave's QR states arrive");
        let started = Instant::now();
        let verifies_before = mps_edge::service::qr::bcrypt_verifies_total();
        let mut tasks = Vec::new();
        for (k, t) in wave.iter().enumerate() {
            let (http, url, jwt) = (https[k].clone(), url.to_string(), jwt.to_string());
            let plain = t.plain.clone();
            let key = idem_key();
            tasks.push(tokio::spawn(async move {
                post_charge(&http, &url, &jwt, key, &plain, amount_for(k)).await
            }));
        }
        for task in tasks {
            record(&mut total, task.await.expect("client task"));
        }
        total.secs += started.elapsed().as_secs_f64();
        total.verifies += mps_edge::service::qr::bcrypt_verifies_total() - verifies_before;
    }
    total.lat_ms = sorted(std::mem::take(&mut total.lat_ms));
    total.writer_jobs_per_batch = jobs_per_commit(Some(db), mark);
    total
}

struct ChargeRow {
    kind: &'static str,
    clients: usize,
    r: PhaseResult,
}

async fn bench_charges(plan: &Plan, hash_pool: &[String]) -> anyhow::Result<Vec<ChargeRow>> {
    let dir = tempfile::tempdir()?;
    let cfg = bench_config(dir.path().join("data"));
    let (db, password) = open_installation(&cfg).await?;

    // Fast: one card and one pre-issued live mq1 token per charge.
    let t0 = Instant::now();
    let n_fast = plan.fast_pool;
    let fast_cards = db
        .write(move |c| Ok(insert_cards(c, "BF", n_fast)?))
        .await
        .map_err(ae)?;
    let (plains, verifiers): (Vec<String>, Vec<String>) =
        fast_cards.iter().map(|id| fast_token(id)).unzip();
    assert!(matches!(
        classify(&plains[0]),
        Some(TokenShape::Fast { .. })
    ));
    let hashes = hash_pool.to_vec();
    let exp = far_future();
    db.write(move |c| live_states(c, &fast_cards, &hashes, Some(&verifiers), exp))
        .await
        .map_err(ae)?;
    // Legacy: cards now, real tokens hashed now; their states arrive wave by wave.
    let n_legacy = plan.legacy_pool;
    let legacy_cards = db
        .write(move |c| Ok(insert_cards(c, "BL", n_legacy)?))
        .await
        .map_err(ae)?;
    let legacy: Vec<LegacyTok> =
        tokio::task::spawn_blocking(move || issue_legacy_parallel(n_legacy))
            .await?
            .into_iter()
            .zip(legacy_cards)
            .map(|((plain, hash), card_id)| LegacyTok {
                card_id,
                plain,
                hash,
            })
            .collect();
    eprintln!(
        "  set-up: {} live fast tokens, {} hashed legacy tokens in {:.1}s",
        n_fast,
        n_legacy,
        t0.elapsed().as_secs_f64()
    );

    let server = start_server(cfg, db.clone(), &password, dir).await?;
    let fast = Pool::new(plains);
    let legacy = Pool::new(legacy);
    let mut rows = Vec::new();
    // Warm-up (untimed): connections, page cache, allocator.
    let w = fast_phase(
        &server.url,
        &server.jwt,
        8,
        Duration::from_secs(30),
        plan.warmup_charges,
        fast.clone(),
        None,
    )
    .await;
    if w.ok == 0 {
        bail!("warm-up charges failed: {:?}", w.first_error);
    }
    for clients in CLIENT_LEVELS {
        let r = fast_phase(
            &server.url,
            &server.jwt,
            clients,
            plan.phase,
            usize::MAX,
            fast.clone(),
            Some(&db),
        )
        .await;
        eprintln!(
            "  fast   {clients:>2} clients: {:>6.0} charges/s, p99 {:.1} ms",
            r.rate(),
            pct(&r.lat_ms, 99.0)
        );
        rows.push(ChargeRow {
            kind: "fast (mq1)",
            clients,
            r,
        });
    }
    // Open loop: 64 terminals offering 1,000 charges/s together (about 15 per terminal per
    // second, far more than a person at a till), the latency a store sees below saturation.
    let r = open_phase(
        &server.url,
        &server.jwt,
        64,
        OPEN_LOOP_RATE,
        plan.phase,
        fast.clone(),
        Some(&db),
    )
    .await;
    eprintln!(
        "  fast   64 clients, open loop {OPEN_LOOP_RATE:.0}/s offered: {:>6.0} charges/s, p99 {:.1} ms",
        r.rate(),
        pct(&r.lat_ms, 99.0)
    );
    rows.push(ChargeRow {
        kind: "fast (mq1), open loop: 1,000 charges/s offered",
        clients: 64,
        r,
    });
    let _ = legacy_phase(
        &server.url,
        &server.jwt,
        1,
        Duration::from_secs(10),
        10,
        legacy.clone(),
        &db,
    )
    .await;
    for (clients, max_waves) in CLIENT_LEVELS.into_iter().zip(plan.legacy_waves) {
        let r = legacy_phase(
            &server.url,
            &server.jwt,
            clients,
            plan.phase,
            max_waves,
            legacy.clone(),
            &db,
        )
        .await;
        eprintln!(
            "  legacy {clients:>2} clients: {:>6.0} charges/s, p99 {:.1} ms, {:.1} verifies/charge",
            r.rate(),
            pct(&r.lat_ms, 99.0),
            r.verifies_per_charge()
        );
        rows.push(ChargeRow {
            kind: "legacy",
            clients,
            r,
        });
    }
    // Mixed traffic: one terminal charging fast tokens while 64 legacy codes are being
    // resolved (the edge runs at most one bcrypt scan per core and holds no pooled
    // connection while hashing, so fast charges keep their connections and a share of CPU).
    let (mixed, _) = tokio::join!(
        fast_phase(
            &server.url,
            &server.jwt,
            1,
            Duration::from_secs(3),
            usize::MAX,
            fast.clone(),
            None
        ),
        legacy_phase(
            &server.url,
            &server.jwt,
            64,
            Duration::from_secs(1),
            1,
            legacy.clone(),
            &db
        )
    );
    eprintln!(
        "  fast    1 client during a 64-code legacy wave: p50 {:.1} ms, p99 {:.1} ms",
        pct(&mixed.lat_ms, 50.0),
        pct(&mixed.lat_ms, 99.0)
    );
    rows.push(ChargeRow {
        kind: "fast (mq1) while 64 legacy codes resolve",
        clients: 1,
        r: mixed,
    });
    server.stop().await;
    Ok(rows)
}

// ---------------------------------------------------------------------------------------
// Ceilings
// ---------------------------------------------------------------------------------------

struct BcryptCeiling {
    verify_ms: f64,
    cores: usize,
    /// cores ÷ one verify.
    per_sec: f64,
    /// Verifies/s with one thread per core verifying at once (for comparison).
    parallel_per_sec: f64,
}

fn bench_bcrypt() -> anyhow::Result<BcryptCeiling> {
    let (plain, hash) = issue_legacy()?;
    for _ in 0..5 {
        assert!(verify_legacy(&plain, &hash));
    }
    let n = 60;
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        assert!(verify_legacy(&plain, &hash));
        samples.push(ms(t.elapsed()));
    }
    let verify_ms = pct(&sorted(samples), 50.0);
    let cores = cores();
    let done = AtomicUsize::new(0);
    let t = Instant::now();
    let until = t + Duration::from_secs(2);
    std::thread::scope(|s| {
        for _ in 0..cores {
            s.spawn(|| {
                while Instant::now() < until {
                    verify_legacy(&plain, &hash);
                    done.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    let parallel_per_sec = done.into_inner() as f64 / t.elapsed().as_secs_f64();
    Ok(BcryptCeiling {
        verify_ms,
        cores,
        per_sec: cores as f64 * 1000.0 / verify_ms,
        parallel_per_sec,
    })
}

/// Median time of a 4 KiB in-place write + fdatasync of a preallocated file in a temp dir
/// (what a WAL commit waits for once the WAL file has reached its working size).
fn fsync_probe_ms() -> anyhow::Result<f64> {
    use std::io::{Seek, SeekFrom, Write as _};
    let dir = tempfile::tempdir()?;
    let mut f = std::fs::File::create(dir.path().join("probe"))?;
    f.write_all(&vec![0u8; 4 << 20])?;
    f.sync_all()?;
    let block = [7u8; 4096];
    let mut samples = Vec::new();
    for i in 0..200u64 {
        f.seek(SeekFrom::Start((i % 1024) * 4096))?;
        let t = Instant::now();
        f.write_all(&block)?;
        f.sync_data()?;
        samples.push(ms(t.elapsed()));
    }
    Ok(pct(&sorted(samples), 50.0))
}

struct RawCeiling {
    fsync_ms: f64,
    per_sec: f64,
    p50: f64,
    p99: f64,
    jobs_per_batch: f64,
    n: usize,
}

/// One charge through the production `commit_charge`, as the charge path runs it inside a
/// writer job (with a POS idempotency key), without HTTP, token matching or bcrypt.
fn raw_charge(
    c: &Connection,
    (card_id, token_hash): &(String, String),
    i: u64,
    limits: &mps_edge::domain::limits::Limits,
) -> mps_edge::error::AppResult<()> {
    let key = format!("raw-{i}");
    commit_charge(
        c,
        ChargeCmd {
            card_id: card_id.clone(),
            presented: mps_edge::domain::qr::Presented::State {
                token_hash: token_hash.clone(),
            },
            qr_plain: format!("raw-bench-token-{card_id}"),
            raw_cents: 100 + (i % 5000) as i64,
            idem: Some(Idem {
                scope: "user:u".into(),
                request_hash: mps_edge::auth::sha256_hex(&key),
                key,
            }),
            external_order_id: None,
            tag: json!({}),
            actor: Actor {
                user_id: Some("u".into()),
                username: Some(OWNER.into()),
                ip: Some("127.0.0.1".into()),
                device_id: None,
                approved_by: None,
            },
            site_code: "RAW".into(),
            limits: limits.clone(),
            single_use: false,
            now: chrono::Utc::now(),
        },
    )?;
    Ok(())
}

async fn bench_raw(plan: &Plan, hash_pool: &[String]) -> anyhow::Result<RawCeiling> {
    let dir = tempfile::tempdir()?;
    let cfg = bench_config(dir.path().join("data"));
    let limits = Arc::new(cfg.limits());
    let (db, _) = open_installation(&cfg).await?;
    let cards = db
        .write(|c| {
            let ids = insert_cards(c, "RW", 5_000)?;
            // Enough for every charge the timed phase can make (1.00 to 50.99 each).
            c.execute(
                "UPDATE cards SET snapshot_balance_cents = 100000000 WHERE card_no LIKE 'RW%'",
                [],
            )?;
            Ok(ids)
        })
        .await
        .map_err(ae)?;
    let c2 = cards.clone();
    let hashes = hash_pool.to_vec();
    let exp = far_future();
    db.write(move |c| live_states(c, &c2, &hashes, None, exp))
        .await
        .map_err(ae)?;
    // Each card with the token hash live_states gave it.
    let cards: Vec<(String, String)> = cards
        .into_iter()
        .enumerate()
        .map(|(i, id)| (id, hash_pool[i % hash_pool.len()].clone()))
        .collect();
    let cards = Arc::new(cards);
    let counter = Arc::new(AtomicU64::new(0));
    let mut result = None;
    for (dur, timed) in [(Duration::from_secs(1), false), (plan.phase, true)] {
        let (b0, j0) = (
            db.writer.stats.batches.load(Ordering::Relaxed),
            db.writer.stats.jobs.load(Ordering::Relaxed),
        );
        let started = Instant::now();
        let deadline = started + dur;
        let mut tasks = Vec::new();
        for _ in 0..64 {
            let (db, cards, counter, limits) =
                (db.clone(), cards.clone(), counter.clone(), limits.clone());
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                while Instant::now() < deadline {
                    let i = counter.fetch_add(1, Ordering::Relaxed);
                    let card = cards[(i as usize * 7919) % cards.len()].clone();
                    let limits = limits.clone();
                    let t = Instant::now();
                    db.write(move |c| raw_charge(c, &card, i, &limits))
                        .await
                        .expect("raw charge");
                    lat.push(ms(t.elapsed()));
                }
                lat
            }));
        }
        let mut lat = Vec::new();
        for t in tasks {
            lat.extend(t.await?);
        }
        let secs = started.elapsed().as_secs_f64();
        let lat = sorted(lat);
        let b = db.writer.stats.batches.load(Ordering::Relaxed) - b0;
        let j = db.writer.stats.jobs.load(Ordering::Relaxed) - j0;
        if timed {
            result = Some(RawCeiling {
                fsync_ms: 0.0,
                per_sec: lat.len() as f64 / secs,
                p50: pct(&lat, 50.0),
                p99: pct(&lat, 99.0),
                jobs_per_batch: j as f64 / b.max(1) as f64,
                n: lat.len(),
            });
        }
    }
    let d2 = db.clone();
    tokio::task::spawn_blocking(move || d2.shutdown()).await?;
    let mut result = result.ok_or_else(|| anyhow!("no raw result"))?;
    result.fsync_ms = tokio::task::spawn_blocking(fsync_probe_ms).await??;
    Ok(result)
}

// ---------------------------------------------------------------------------------------
// QR validation
// ---------------------------------------------------------------------------------------

struct ValidationRow {
    cards: usize,
    fast_p50: f64,
    fast_p99: f64,
    legacy_newest_p50: f64,
    legacy_cached_p50: f64,
    /// (depth, ms, measured?) for the middle of the live set.
    legacy_middle: (usize, f64, bool),
    /// The deepest directly measured scan when the middle is extrapolated.
    legacy_probe: Option<(usize, f64)>,
}

async fn validate_once(http: &reqwest::Client, s: &Server, plain: &str) -> anyhow::Result<f64> {
    let t = Instant::now();
    let r = http
        .post(format!("{}/api/v1/common/qr/validate", s.url))
        .bearer_auth(&s.jwt)
        .json(&json!({"qr_plain": plain}))
        .send()
        .await?;
    let status = r.status();
    let body = r.text().await?;
    let elapsed = ms(t.elapsed());
    if !status.is_success() {
        bail!("validate: {status} {body}");
    }
    Ok(elapsed)
}

/// Replaces the hash of the state at newest-first position `depth` (1 = newest) with a
/// real hash of a new token, keeping its place; returns the token.
async fn plant_at_depth(db: &Db, depth: usize) -> anyhow::Result<String> {
    let (plain, hash) = tokio::task::spawn_blocking(issue_legacy).await??;
    db.write(move |c| {
        let card: String = c.query_row(
            "SELECT card_id FROM card_qr_state ORDER BY issued_seq DESC LIMIT 1 OFFSET ?1",
            [depth as i64 - 1],
            |r| r.get(0),
        )?;
        c.execute(
            "UPDATE card_qr_state SET token_hash = ?2, fast_verifier = NULL WHERE card_id = ?1",
            params![card, hash],
        )?;
        Ok(())
    })
    .await
    .map_err(ae)?;
    Ok(plain)
}

async fn bench_validation_size(
    plan: &Plan,
    n: usize,
    hash_pool: &[String],
) -> anyhow::Result<ValidationRow> {
    let dir = tempfile::tempdir()?;
    let cfg = bench_config(dir.path().join("data"));
    let (db, password) = open_installation(&cfg).await?;
    // Exactly n cards, each with a live mq1 code.
    let cards = db
        .write(move |c| {
            c.execute_batch("DELETE FROM cards")?;
            Ok(insert_cards(c, "BV", n)?)
        })
        .await
        .map_err(ae)?;
    let (plains, verifiers): (Vec<String>, Vec<String>) =
        cards.iter().map(|id| fast_token(id)).unzip();
    let hashes = hash_pool.to_vec();
    let exp = far_future();
    let c2 = cards.clone();
    db.write(move |c| live_states(c, &c2, &hashes, Some(&verifiers), exp))
        .await
        .map_err(ae)?;
    let server = start_server(cfg, db.clone(), &password, dir).await?;
    let http = http_client();

    // Fast tokens: random cards, one client, sequential requests.
    let samples = if plan.quick { 200 } else { 400 };
    let mut rng = rand::thread_rng();
    for _ in 0..20 {
        validate_once(&http, &server, &plains[rng.gen_range(0..n)]).await?;
    }
    let mut lat = Vec::new();
    for _ in 0..samples {
        lat.push(validate_once(&http, &server, &plains[rng.gen_range(0..n)]).await?);
    }
    let lat = sorted(lat);
    let (fast_p50, fast_p99) = (pct(&lat, 50.0), pct(&lat, 99.0));

    // Legacy: the same n live states, now without verifiers (legacy codes).
    db.write(|c| Ok(c.execute_batch("UPDATE card_qr_state SET fast_verifier = NULL")?))
        .await
        .map_err(ae)?;
    // Middle of the live set (newest-first position n/2), measured once (cold) when the
    // scan is at most max_measured_depth deep, else a probe at that depth + extrapolation.
    let middle = (n / 2).max(1);
    let probe_depth = middle.min(plan.max_measured_depth);
    let plain = plant_at_depth(&db, probe_depth).await?;
    let probe_ms = validate_once(&http, &server, &plain).await?;
    // The most recently issued code: a new real token becomes the newest state; cold.
    let mut newest = Vec::new();
    let mut last = String::new();
    for _ in 0..if plan.quick { 8 } else { 15 } {
        let (plain, hash) = tokio::task::spawn_blocking(issue_legacy).await??;
        let card = cards[rng.gen_range(0..n)].clone();
        let now = db::now_rfc3339();
        db.write(move |c| put_qr_state(c, &card, &hash, exp, &now, None))
            .await
            .map_err(ae)?;
        newest.push(validate_once(&http, &server, &plain).await?);
        last = plain;
    }
    let newest = sorted(newest);
    // The same code again: the positive cache answers without bcrypt.
    let mut cached = Vec::new();
    for _ in 0..100 {
        cached.push(validate_once(&http, &server, &last).await?);
    }
    let cached = sorted(cached);
    let legacy_newest_p50 = pct(&newest, 50.0);
    let (legacy_middle, legacy_probe) = if probe_depth == middle {
        ((middle, probe_ms, true), None)
    } else {
        // Linear in depth: newest costs ~1 verify; each deeper state one more.
        let per_state = (probe_ms - legacy_newest_p50) / (probe_depth - 1) as f64;
        let est = legacy_newest_p50 + per_state * (middle - 1) as f64;
        ((middle, est, false), Some((probe_depth, probe_ms)))
    };
    server.stop().await;
    Ok(ValidationRow {
        cards: n,
        fast_p50,
        fast_p99,
        legacy_newest_p50,
        legacy_cached_p50: pct(&cached, 50.0),
        legacy_middle,
        legacy_probe,
    })
}

// ---------------------------------------------------------------------------------------
// Sync: bootstrap and drain against the test central
// ---------------------------------------------------------------------------------------

struct SyncBench {
    cards: usize,
    central_insert_secs: f64,
    bootstrap_secs: f64,
    replica_cards: i64,
    ops: usize,
    ops_setup_secs: f64,
    drain_secs: f64,
    /// Operations no longer pending when the drain finished or its time box ended.
    drained: usize,
    finished: bool,
    rejected: i64,
    pg_cpu_secs: f64,
    edge_cpu_secs: f64,
    /// Legacy-token charges drained after the mq1 ones (one bcrypt each at central):
    /// ops, seconds, rejected, and central's bcrypt ceiling measured in the same run
    /// (verifies per second in one PostgreSQL backend, the one a batch runs in).
    legacy: (usize, f64, i64, f64),
    /// Offline-code (mq2) charges drained after the legacy ones (one chain walk each at
    /// central), with central's SHA-256 rate measured in the same run.
    mq2: anyhow::Result<Mq2Drain>,
    /// Other processes' CPU during the section (cores), hypervisor steal (cores).
    others: (f64, f64),
}

async fn bench_sync(plan: &Plan) -> anyhow::Result<SyncBench> {
    let n = plan.sync_cards;
    let central = support::Central::start()
        .await
        .context("starting the test central (PostgreSQL + gateway)")?;
    let pg_data = central.pg.dir().join("data");
    let (watch, pg_start) = (CpuWatch::start(), postgres_cpu_secs(&pg_data));
    central.sql(
        "insert into public.merchants(code, name, status, password_hash) values ('BENCH', 'Bench Shop', 'active', extensions.crypt('merchant-pass', extensions.gen_salt('bf')))",
    )?;
    let t = Instant::now();
    central.sql(&format!(
        "insert into public.member_cards(card_type, balance, status) select 'standard', 1000.00, 'active' from generate_series(1, {n})"
    ))?;
    let central_insert_secs = t.elapsed().as_secs_f64();

    let dir = tempfile::tempdir()?;
    let mut cfg = bench_config(dir.path().join("data"));
    cfg.site.code = "BENCH1".into();
    cfg.central.url = central.url();
    // a store as it is set up: anon key + its own site key
    cfg.central.anon_key = Secret::new(central.anon_key.clone());
    cfg.central.site_key = Secret::new(central.register_site("BENCH", "BENCH1").await);
    cfg.central.merchant_code = "BENCH".into();
    let c2 = cfg.clone();
    let opened = tokio::task::spawn_blocking(move || mps_edge::startup::open(&c2, false)).await??;
    let db = opened.db;
    let engine = mps_edge::sync::SyncEngine::new(&cfg, db.clone())?;

    // Bootstrap: what the engine's first run does, timed until the replica holds every card.
    let t = Instant::now();
    engine
        .pull(&mps_edge::sync::plan::ALL_KINDS, None)
        .await
        .map_err(|e| anyhow!("bootstrap pull: {e}"))?;
    let status = db
        .read(|c| mps_edge::sync::state::status(c, Some(900)))
        .await
        .map_err(ae)?;
    let bootstrap_secs = t.elapsed().as_secs_f64();
    let replica_cards = status.replica.cards;

    // n charges made offline: the real commit_charge, one per card, through the writer.
    let t = Instant::now();
    let ids: Vec<String> = db
        .read(|c| {
            let mut s = c.prepare("SELECT id FROM cards ORDER BY id")?;
            let rows = s.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<Result<Vec<String>, _>>()?)
        })
        .await
        .map_err(ae)?;
    // Each charge carries the proof of an mq1 token central issued for its card
    // (central checks it by SHA-256 and marks it used). The tokens are planted in
    // central's registry directly, as edge_issue_qr would leave them.
    central.sql(
        "insert into mps_edge.qr_issued (verifier, card_id, token_hash, issued_at, expires_at)
         select encode(extensions.digest('mq1.' || replace(id::text, '-', '') || '.bench' || id::text, 'sha256'), 'hex'),
                id, 'bench-hash-' || id, now(), now() + interval '1 day'
           from public.member_cards",
    )?;
    let limits = cfg.limits();
    for (chunk_no, chunk) in ids.chunks(1000).enumerate() {
        let chunk = chunk.to_vec();
        let limits = limits.clone();
        db.write(move |c| {
            let now = db::now_rfc3339();
            for (k, id) in chunk.iter().enumerate() {
                let hash = format!("bench-hash-{id}");
                put_qr_state(c, id, &hash, far_future(), &now, None)?;
                let i = chunk_no * 1000 + k;
                commit_charge(
                    c,
                    ChargeCmd {
                        card_id: id.clone(),
                        presented: mps_edge::domain::qr::Presented::State { token_hash: hash },
                        qr_plain: format!("mq1.{}.bench{id}", id.replace('-', "")),
                        raw_cents: 100 + (i as i64 * 37) % 9_000,
                        idem: None,
                        external_order_id: None,
                        tag: json!({}),
                        actor: Actor {
                            user_id: None,
                            username: Some("bench".into()),
                            ip: None,
                            device_id: Some(format!("POS-{}", i % 64)),
                            approved_by: None,
                        },
                        site_code: "BENCH1".into(),
                        limits: limits.clone(),
                        single_use: true,
                        now: chrono::Utc::now(),
                    },
                )?;
            }
            Ok(())
        })
        .await
        .map_err(ae)?;
    }
    let ops_setup_secs = t.elapsed().as_secs_f64();
    let ops = db
        .read(|c| {
            Ok(c.query_row(
                "SELECT COUNT(*) FROM outbox WHERE state = 'pending'",
                [],
                |r| r.get::<_, i64>(0),
            )?)
        })
        .await
        .map_err(ae)? as usize;

    let (pg0, me0) = (
        postgres_cpu_secs(&pg_data),
        cpu_secs("self").unwrap_or(f64::NAN),
    );
    let t = Instant::now();
    let finished = match tokio::time::timeout(plan.drain_box, engine.push_all()).await {
        Ok(r) => {
            r.map_err(|e| anyhow!("drain: {e}"))?;
            true
        }
        Err(_) => false,
    };
    let drain_secs = t.elapsed().as_secs_f64();
    let (pg_cpu_secs, edge_cpu_secs) = (
        postgres_cpu_secs(&pg_data) - pg0,
        cpu_secs("self").unwrap_or(f64::NAN) - me0,
    );
    let (drained, rejected) = db
        .read(|c| {
            Ok((
                c.query_row(
                    "SELECT COUNT(*) FROM outbox WHERE state <> 'pending'",
                    [],
                    |r| r.get::<_, i64>(0),
                )?,
                c.query_row("SELECT COUNT(*) FROM sync_exceptions", [], |r| {
                    r.get::<_, i64>(0)
                })?,
            ))
        })
        .await
        .map_err(ae)?;
    let legacy = legacy_drain(plan, &central, &db, &engine, &limits).await?;
    let mq2 = mq2_drain(plan, &central, &db, &engine, &limits).await;
    let d2 = db.clone();
    tokio::task::spawn_blocking(move || d2.shutdown()).await?;
    let others = watch.others(postgres_cpu_secs(&pg_data) - pg_start);
    drop(central);
    Ok(SyncBench {
        cards: n,
        central_insert_secs,
        bootstrap_secs,
        replica_cards,
        ops,
        ops_setup_secs,
        drain_secs,
        drained: drained as usize,
        finished,
        rejected,
        pg_cpu_secs,
        edge_cpu_secs,
        legacy,
        mq2,
        others,
    })
}

/// Legacy-token charges: central checks each proof with one bcrypt (cost 6) against the
/// card's card_qr_history row. Plants one legacy token per card for the first cards,
/// measures central's bcrypt ceiling (one backend), then queues one charge per card and
/// drains them. Returns (ops, seconds, rejected, bcrypt verifies per second).
async fn legacy_drain(
    plan: &Plan,
    central: &support::Central,
    db: &Db,
    engine: &mps_edge::sync::SyncEngine,
    limits: &mps_edge::domain::limits::Limits,
) -> anyhow::Result<(usize, f64, i64, f64)> {
    let l = if plan.quick { 300 } else { 2_000 }.min(plan.sync_cards);
    central.sql(&format!(
        "insert into public.card_qr_history (card_id, token_hash, issued_at, expires_at)
         select id, extensions.crypt('legacy-bench-token-' || id, extensions.gen_salt('bf', 6)),
                now(), now() + interval '1 day'
           from (select id from public.member_cards order by id limit {l}) c"
    ))?;
    // the ceiling: l verifies in one backend (psql's start-up is a few ms of it)
    let t = Instant::now();
    central.sql(
        "select count(*) from public.card_qr_history h
          where extensions.crypt('legacy-bench-token-' || h.card_id, h.token_hash) = h.token_hash",
    )?;
    let ceiling = l as f64 / t.elapsed().as_secs_f64();
    let rows =
        central.sql("select card_id, token_hash from public.card_qr_history order by card_id")?;
    let planted: Vec<(String, String)> = rows
        .lines()
        .filter_map(|line| line.split_once('|'))
        .map(|(id, hash)| (id.to_string(), hash.to_string()))
        .collect();
    let limits = limits.clone();
    db.write(move |c| {
        for (i, (id, hash)) in planted.iter().enumerate() {
            put_qr_state(c, id, hash, far_future(), &db::now_rfc3339(), None)?;
            commit_charge(
                c,
                ChargeCmd {
                    card_id: id.clone(),
                    presented: mps_edge::domain::qr::Presented::State {
                        token_hash: hash.clone(),
                    },
                    qr_plain: format!("legacy-bench-token-{id}"),
                    raw_cents: 100 + (i as i64 * 37) % 9_000,
                    idem: None,
                    external_order_id: None,
                    tag: json!({}),
                    actor: Actor {
                        user_id: None,
                        username: Some("bench".into()),
                        ip: None,
                        device_id: Some(format!("POS-{}", i % 64)),
                        approved_by: None,
                    },
                    site_code: "BENCH1".into(),
                    limits: limits.clone(),
                    single_use: true,
                    now: chrono::Utc::now(),
                },
            )?;
        }
        Ok(())
    })
    .await
    .map_err(ae)?;
    let before = db
        .read(|c| {
            Ok(
                c.query_row("SELECT COUNT(*) FROM sync_exceptions", [], |r| {
                    r.get::<_, i64>(0)
                })?,
            )
        })
        .await
        .map_err(ae)?;
    let t = Instant::now();
    tokio::time::timeout(plan.drain_box, engine.push_all())
        .await
        .map_err(|_| anyhow!("legacy drain: time box reached"))?
        .map_err(|e| anyhow!("legacy drain: {e}"))?;
    let secs = t.elapsed().as_secs_f64();
    let after = db
        .read(|c| {
            Ok(
                c.query_row("SELECT COUNT(*) FROM sync_exceptions", [], |r| {
                    r.get::<_, i64>(0)
                })?,
            )
        })
        .await
        .map_err(ae)?;
    Ok((l, secs, after - before, ceiling))
}

/// One timed `push_all` of the mq2 drain.
struct Mq2Round {
    /// The slot every code of the round is for (hashes walked at central: `walk`).
    slot: u32,
    walk: u32,
    secs: f64,
    pg_cpu_secs: f64,
    /// New rows in sync_exceptions (refused at central), with their reasons.
    rejected: i64,
    reasons: Vec<(String, i64)>,
    /// Used slots central holds for the planted chains after the round.
    central_used: i64,
}

struct Mq2Drain {
    cards: usize,
    /// The first round: each card's first code, a day after its chain's epoch (a walk
    /// from the anchor). The second: the next minute's code (one hash from the used slot).
    first: Mq2Round,
    next: Mq2Round,
    /// Central's SHA-256 in a PL/pgSQL loop (`extensions.digest`, as check_chain_proof
    /// walks), in one backend, same run: (hashes, seconds measured inside the server).
    sha256: (usize, f64),
    setup_secs: f64,
}

/// Offline-code (mq2) charges: central checks each code by walking the card's hash chain
/// (`mps_edge.check_chain_proof`) from the nearest used slot, or from the anchor. Plants
/// one chain per card for the first cards at central (as `edge_enroll_offline_qr` leaves
/// it; epoch a day ago, one-minute slots, two days of them) and in the edge's replica (as
/// the qr_chains pull leaves it), then drains two rounds: one charge per card with the
/// code of the current slot (a walk of ~1,440 hashes from the anchor), then one with the
/// next slot's code (one hash from the slot just used).
async fn mq2_drain(
    plan: &Plan,
    central: &support::Central,
    db: &Db,
    engine: &mps_edge::sync::SyncEngine,
    limits: &mps_edge::domain::limits::Limits,
) -> anyhow::Result<Mq2Drain> {
    use mps_edge::db::chains::{put_pulled, PulledChain};
    use mps_edge::domain::mq2;
    const SLOT_SECS: u32 = 60;
    const SLOTS: u32 = 2_880;
    let m = if plan.quick { 300 } else { 2_000 }.min(plan.sync_cards);
    eprintln!("[+] mq2 drain: {m} cards, two rounds");
    let t_setup = Instant::now();
    let now_unix = chrono::Utc::now().timestamp();
    // a day before now, on a minute boundary: the current slot is 1,441
    let epoch_unix = (now_unix - 86_400).div_euclid(60) * 60;
    let slot = u32::try_from(mq2::slot_at(epoch_unix, SLOT_SECS, now_unix))?;
    let ids: Vec<String> = central
        .sql(&format!(
            "select id from public.member_cards order by id limit {m}"
        ))?
        .lines()
        .map(str::to_string)
        .collect();
    if ids.len() != m {
        bail!("mq2 drain: central has {} cards, wanted {m}", ids.len());
    }
    // Each card's chain, and its codes for `slot` and `slot + 1`, as the member's app
    // makes them (make_code walks from the seed; untimed set-up).
    struct Card {
        id: String,
        anchor: mq2::Value,
        codes: [(String, mq2::Value); 2],
    }
    let cards: Vec<Card> = tokio::task::spawn_blocking(move || {
        ids.into_iter()
            .map(|id| {
                let seed = mq2::hash(format!("bench-seed-{id}").as_bytes());
                let anchor = mq2::anchor(&seed, SLOTS);
                let code = |j: u32| {
                    (
                        mq2::make_code(&id, &seed, SLOTS, j).expect("a code of the chain"),
                        mq2::hash_n(&seed, SLOTS - j),
                    )
                };
                let codes = [code(slot), code(slot + 1)];
                Card { id, anchor, codes }
            })
            .collect()
    })
    .await?;
    // Central: the chains, a few hundred rows per psql command (its argument is bounded).
    // card id → central's id of its chain
    let mut central_ids = std::collections::HashMap::with_capacity(m);
    for chunk in cards.chunks(250) {
        let values = chunk
            .iter()
            .map(|c| format!("('{}', '{}')", c.id, hex::encode(c.anchor)))
            .collect::<Vec<_>>()
            .join(", ");
        let rows = central.sql(&format!(
            "insert into mps_edge.qr_chains (card_id, chain_id, anchor, epoch, slot_secs, slots, ends_at)
             select v.card_id::uuid, left(v.anchor, 16), decode(v.anchor, 'hex'),
                    to_timestamp({epoch_unix}), {SLOT_SECS}, {SLOTS},
                    to_timestamp({epoch_unix}) + interval '{SLOTS} minutes'
               from (values {values}) v(card_id, anchor)
             returning id, card_id"
        ))?;
        central_ids.extend(
            rows.lines()
                .filter_map(|line| line.split_once('|'))
                .map(|(id, card)| (card.to_string(), id.to_string())),
        );
    }
    if central_ids.len() != m {
        bail!(
            "mq2 drain: {} chains planted at central, wanted {m}",
            central_ids.len()
        );
    }
    // The edge's replica: the same chains, as the pull stores them.
    let chains: Vec<PulledChain> = cards
        .iter()
        .map(|c| PulledChain {
            central_id: central_ids[&c.id].clone(),
            card_id: c.id.clone(),
            chain_id: mq2::chain_id(&c.anchor),
            anchor: c.anchor,
            epoch_unix,
            slot_secs: SLOT_SECS,
            slots: SLOTS,
            ends_at_unix: epoch_unix + i64::from(SLOTS) * i64::from(SLOT_SECS),
            revoked_at_unix: None,
            used_through: 0,
            updated_at: db::now_rfc3339(),
        })
        .collect();
    db.write(move |c| {
        for chain in &chains {
            put_pulled(c, chain)?;
        }
        Ok(())
    })
    .await
    .map_err(ae)?;
    // Central's SHA-256 rate in one backend, timed inside the server (no psql start-up).
    let n_hashes = if plan.quick { 200_000 } else { 1_000_000 };
    let sha_secs: f64 = central
        .sql(&format!(
            "do $$
             declare
               x bytea := decode('00', 'hex');
               t timestamptz := clock_timestamp();
             begin
               for i in 1 .. {n_hashes} loop
                 x := extensions.digest(x, 'sha256');
               end loop;
               perform set_config('bench.sha_secs',
                                  extract(epoch from clock_timestamp() - t)::text, false);
             end $$;
             select current_setting('bench.sha_secs')"
        ))?
        .trim()
        .parse()
        .context("the SHA-256 timing from central")?;
    let setup_secs = t_setup.elapsed().as_secs_f64();
    let cards = Arc::new(cards);
    let pg_data = central.pg.dir().join("data");
    let mut rounds = Vec::new();
    for round in 0..2 {
        let (j, walk) = if round == 0 {
            (slot, slot)
        } else {
            (slot + 1, 1)
        };
        let (cards, limits) = (cards.clone(), limits.clone());
        db.write(move |c| {
            for (i, card) in cards.iter().enumerate() {
                let (text, value) = &card.codes[round];
                commit_charge(
                    c,
                    ChargeCmd {
                        card_id: card.id.clone(),
                        presented: mps_edge::domain::qr::Presented::Chain {
                            chain_id: mq2::chain_id(&card.anchor),
                            anchor: card.anchor,
                            slot: j,
                            value: *value,
                        },
                        qr_plain: text.clone(),
                        raw_cents: 100 + (i as i64 * 37) % 9_000,
                        idem: None,
                        external_order_id: None,
                        tag: json!({}),
                        actor: Actor {
                            user_id: None,
                            username: Some("bench".into()),
                            ip: None,
                            device_id: Some(format!("POS-{}", i % 64)),
                            approved_by: None,
                        },
                        site_code: "BENCH1".into(),
                        limits: limits.clone(),
                        single_use: true,
                        now: chrono::Utc::now(),
                    },
                )?;
            }
            Ok(())
        })
        .await
        .map_err(ae)?;
        let before = sync_exception_count(db).await?;
        let pg0 = postgres_cpu_secs(&pg_data);
        let t = Instant::now();
        tokio::time::timeout(plan.drain_box, engine.push_all())
            .await
            .map_err(|_| anyhow!("mq2 drain (round {}): time box reached", round + 1))?
            .map_err(|e| anyhow!("mq2 drain (round {}): {e}", round + 1))?;
        let secs = t.elapsed().as_secs_f64();
        let pg_cpu_secs = postgres_cpu_secs(&pg_data) - pg0;
        let reasons: Vec<(String, i64)> = db
            .read(move |c| {
                let mut s = c.prepare(
                    "SELECT reason, COUNT(*) FROM (SELECT reason FROM sync_exceptions
                      ORDER BY rowid LIMIT -1 OFFSET ?1) GROUP BY reason ORDER BY 2 DESC",
                )?;
                let rows = s.query_map([before], |r| Ok((r.get(0)?, r.get(1)?)))?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await
            .map_err(ae)?;
        let rejected = sync_exception_count(db).await? - before;
        for (reason, k) in &reasons {
            eprintln!(
                "  !! mq2 drain round {}: {k} charge(s) refused by central: {reason}",
                round + 1
            );
        }
        let central_used: i64 = central
            .sql("select count(*) from mps_edge.qr_chain_slots")?
            .trim()
            .parse()?;
        rounds.push(Mq2Round {
            slot: j,
            walk,
            secs,
            pg_cpu_secs,
            rejected,
            reasons,
            central_used,
        });
    }
    let next = rounds.pop().expect("two rounds");
    let first = rounds.pop().expect("two rounds");
    Ok(Mq2Drain {
        cards: m,
        first,
        next,
        sha256: (n_hashes, sha_secs),
        setup_secs,
    })
}

async fn sync_exception_count(db: &Db) -> anyhow::Result<i64> {
    db.read(|c| {
        Ok(
            c.query_row("SELECT COUNT(*) FROM sync_exceptions", [], |r| {
                r.get::<_, i64>(0)
            })?,
        )
    })
    .await
    .map_err(ae)
}

// ---------------------------------------------------------------------------------------
// The real binary
// ---------------------------------------------------------------------------------------

struct BinaryBench {
    size_mb: f64,
    cards: usize,
    r: Option<PhaseResult>,
    hwm_mb: Option<f64>,
    rss_idle_mb: Option<f64>,
    cpu_ms_per_charge: Option<f64>,
    note: Option<String>,
}

fn release_binary() -> PathBuf {
    // this example runs from <target>/release/examples/bench
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent()?.parent().map(|d| d.join("mps-edge")))
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/mps-edge"))
}

/// Builds the release binary (a no-op when it is up to date), so size and RSS are those
/// of the current sources.
fn ensure_binary(bin: &Path) -> Option<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("  cargo build --release --bin mps-edge …");
    let mut cmd = Command::new(cargo);
    // Variables `cargo run` sets for this process would make the nested build look
    // different from a plain `cargo build --release` and rebuild everything.
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().to_string();
        if k.starts_with("CARGO_PKG_")
            || k.starts_with("CARGO_MANIFEST_")
            || k.starts_with("CARGO_CRATE_")
            || k.starts_with("CARGO_BIN_")
            || k == "CARGO_PRIMARY_PACKAGE"
            || k == "CARGO_TARGET_TMPDIR"
        {
            cmd.env_remove(k);
        }
    }
    let status = cmd
        .args(["build", "--release", "--bin", "mps-edge"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .status();
    match status {
        Ok(s) if s.success() => None,
        _ if bin.exists() => Some("cargo build failed; measured the existing binary".into()),
        _ => Some("cargo build failed and there is no release binary".into()),
    }
}

/// A fresh installation for the release binary: the demo data plus `n` cards named
/// `prefix…`, each with a live mq1 code. Returns the directory (removed when dropped),
/// the data directory, the owner's password and the codes.
async fn seeded_installation(
    prefix: &'static str,
    n: usize,
    hash_pool: &[String],
) -> anyhow::Result<(TempDir, PathBuf, String, Vec<String>)> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let cfg = bench_config(data.clone());
    let (db, password) = open_installation(&cfg).await?;
    let cards = db
        .write(move |c| Ok(insert_cards(c, prefix, n)?))
        .await
        .map_err(ae)?;
    let (plains, verifiers): (Vec<String>, Vec<String>) =
        cards.iter().map(|id| fast_token(id)).unzip();
    let hashes = hash_pool.to_vec();
    let exp = far_future();
    db.write(move |c| live_states(c, &cards, &hashes, Some(&verifiers), exp))
        .await
        .map_err(ae)?;
    tokio::task::spawn_blocking(move || db.shutdown()).await?;
    Ok((dir, data, password, plains))
}

/// The server binary for a child-process section: `--server-bin`, or the release binary
/// (built first), with a note when it had to be built.
fn server_binary(server_bin: Option<PathBuf>) -> (PathBuf, Option<String>) {
    match server_bin {
        Some(b) => (b, None),
        None => {
            let b = release_binary();
            let note = ensure_binary(&b);
            (b, note)
        }
    }
}

async fn bench_binary(plan: &Plan, hash_pool: &[String]) -> anyhow::Result<BinaryBench> {
    let bin = release_binary();
    let note = ensure_binary(&bin);
    let size_mb = std::fs::metadata(&bin)
        .map(|m| m.len() as f64 / 1e6)
        .context("release binary missing")?;
    let mut out = BinaryBench {
        size_mb,
        cards: plan.binary_cards,
        r: None,
        hwm_mb: None,
        rss_idle_mb: None,
        cpu_ms_per_charge: None,
        note,
    };
    // An installation with the demo data plus binary_cards cards, each with a live mq1 code.
    let (_dir, data, password, plains) =
        seeded_installation("BB", plan.binary_cards, hash_pool).await?;

    let mut edge = EdgeProcess::spawn_with(&bin, Install::DataDir(&data), &[], &CHILD_ENV)?;
    let pid = edge.pid().to_string();
    let result = async {
        let url = edge.url.clone();
        let jwt = login(&url, &password).await?;
        out.rss_idle_mb = status_mb(&pid, "VmRSS:");
        let pool = Pool::new(plains);
        let _ = fast_phase(
            &url,
            &jwt,
            8,
            Duration::from_secs(30),
            plan.warmup_charges,
            pool.clone(),
            None,
        )
        .await;
        let cpu0 = cpu_secs(&pid);
        let r = fast_phase(&url, &jwt, 64, plan.phase, usize::MAX, pool, None).await;
        let cpu1 = cpu_secs(&pid);
        out.hwm_mb = status_mb(&pid, "VmHWM:");
        if let (Some(a), Some(b)) = (cpu0, cpu1) {
            out.cpu_ms_per_charge = Some((b - a) * 1000.0 / r.ok.max(1) as f64);
        }
        out.r = Some(r);
        Ok::<_, anyhow::Error>(())
    }
    .await;
    // SIGTERM: a graceful stop, as systemd would.
    edge.terminate_within(Duration::from_secs(15))?;
    result?;
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Sign-in flood (issue 12)
// ---------------------------------------------------------------------------------------

struct LoginFlood {
    bin: PathBuf,
    logins: usize,
    secs: f64,
    rss_idle_mb: Option<f64>,
    rss_after_mb: Option<f64>,
    hwm_mb: Option<f64>,
    /// HTTP status → answers.
    answers: std::collections::BTreeMap<u16, usize>,
    login_lat_ms: Vec<f64>,
    before: PhaseResult,
    during: PhaseResult,
    note: Option<String>,
}

/// Waves of `clients` concurrent sign-ins, one wave every 2 s for `dur`, each as a
/// different unknown username every time, spread over 250 loopback addresses
/// (127.0.0.2–251), so neither the per-address throttle nor the per-username one turns
/// them away: only the password pool bounds them. Waves (a burst, as the issue measured
/// it) rather than a closed loop: 500 clients re-sending as fast as answered would
/// measure only how fast the server can say 503.
async fn login_flood(url: &str, clients: usize, dur: Duration) -> (Vec<u16>, Vec<f64>) {
    let deadline = Instant::now() + dur;
    let by_address: Vec<reqwest::Client> = (0..250u8)
        .map(|i| {
            reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(120))
                .local_address(std::net::IpAddr::V4(std::net::Ipv4Addr::new(
                    127,
                    0,
                    0,
                    2 + i,
                )))
                .build()
                .expect("http client")
        })
        .collect();
    let barrier = Arc::new(tokio::sync::Barrier::new(clients));
    let mut tasks = Vec::new();
    for i in 0..clients {
        let http = by_address[i % by_address.len()].clone();
        let (url, barrier) = (format!("{url}{}", support::http::LOGIN), barrier.clone());
        tasks.push(tokio::spawn(async move {
            let (mut statuses, mut lat) = (Vec::new(), Vec::new());
            barrier.wait().await;
            let mut n = 0usize;
            let mut wave = Instant::now();
            while wave < deadline {
                tokio::time::sleep_until(wave.into()).await;
                wave += Duration::from_secs(2);
                n += 1;
                let t0 = Instant::now();
                let res = http
                    .post(&url)
                    .json(&json!({"username": format!("flood-{i}-{n}"), "password": "not-the-password"}))
                    .send()
                    .await;
                match res {
                    Ok(r) => {
                        statuses.push(r.status().as_u16());
                        let _ = r.bytes().await;
                    }
                    Err(_) => statuses.push(0),
                }
                lat.push(ms(t0.elapsed()));
            }
            (statuses, lat)
        }));
    }
    let (mut statuses, mut lat) = (Vec::new(), Vec::new());
    for t in tasks {
        if let Ok((s, l)) = t.await {
            statuses.extend(s);
            lat.extend(l);
        }
    }
    (statuses, sorted(lat))
}

async fn bench_login_flood(
    plan: &Plan,
    hash_pool: &[String],
    server_bin: Option<PathBuf>,
    clients: usize,
) -> anyhow::Result<LoginFlood> {
    let (bin, note) = server_binary(server_bin);
    let (_dir, data, password, plains) = seeded_installation("LF", 40_000, hash_pool).await?;

    let mut edge = EdgeProcess::spawn_with(&bin, Install::DataDir(&data), &[], &CHILD_ENV)?;
    let pid = edge.pid().to_string();
    let flood_secs = plan.phase.max(Duration::from_secs(10));
    let result = async {
        let url = edge.url.clone();
        let jwt = login(&url, &password).await?;
        let rss_idle_mb = status_mb(&pid, "VmRSS:");
        let pool = Pool::new(plains);
        let before = pos_baseline(&url, &jwt, pool.clone()).await;
        let started = Instant::now();
        let (flood, during) = tokio::join!(
            login_flood(&url, clients, flood_secs),
            fast_phase(&url, &jwt, 8, flood_secs, usize::MAX, pool, None)
        );
        let secs = started.elapsed().as_secs_f64();
        let hwm_mb = status_mb(&pid, "VmHWM:");
        let rss_after_mb = status_mb(&pid, "VmRSS:");
        let mut answers = std::collections::BTreeMap::new();
        for s in &flood.0 {
            *answers.entry(*s).or_insert(0) += 1;
        }
        Ok::<_, anyhow::Error>(LoginFlood {
            bin: bin.clone(),
            logins: clients,
            secs,
            rss_idle_mb,
            rss_after_mb,
            hwm_mb,
            answers,
            login_lat_ms: flood.1,
            before,
            during,
            note: note.clone(),
        })
    }
    .await;
    edge.terminate_within(Duration::from_secs(15))?;
    result
}

/// 8 POS terminals charging for 4 s: the baseline a flood section compares with.
async fn pos_baseline(url: &str, jwt: &str, pool: Arc<Pool<String>>) -> PhaseResult {
    fast_phase(url, jwt, 8, Duration::from_secs(4), usize::MAX, pool, None).await
}

/// The server line and the table head of a flood section.
fn print_flood_head(bin: &Path, note: Option<&str>) {
    let note = note.map(|n| format!(" ({n})")).unwrap_or_default();
    println!("server: {}{note}\n", bin.display());
    println!("| measure | value |");
    println!("|---|---|");
}

/// The table rows of charges before and during a flood.
fn print_flood_charges(before: &PhaseResult, during: &PhaseResult, who: &str) {
    for (when, r) in [("before the flood", before), ("during the flood", during)] {
        println!(
            "| charges {when} ({who}) | {:.0}/s, p50 {:.2} ms, p99 {:.2} ms, {} errors |",
            r.ok as f64 / r.secs.max(0.001),
            pct(&r.lat_ms, 50.0),
            pct(&r.lat_ms, 99.0),
            r.errors
        );
    }
}

fn print_login_flood(f: &LoginFlood) {
    let mb = |v: Option<f64>| v.map_or("n/a".into(), |v| format!("{v:.1}"));
    let answers: Vec<String> = f
        .answers
        .iter()
        .map(|(s, n)| {
            format!(
                "{}: {n}",
                if *s == 0 {
                    "transport error".to_string()
                } else {
                    s.to_string()
                }
            )
        })
        .collect();
    let checks = f.answers.get(&401).copied().unwrap_or(0);
    println!(
        "\n## login_flood — {} concurrent sign-ins for {:.0} s, {} cores\n",
        f.logins,
        f.secs,
        cores()
    );
    print_flood_head(&f.bin, f.note.as_deref());
    println!(
        "| server peak RSS (VmHWM) | {} MB (target < 128 MB; idle {} MB, after the flood {} MB) |",
        mb(f.hwm_mb),
        mb(f.rss_idle_mb),
        mb(f.rss_after_mb)
    );
    println!("| sign-in answers | {} |", answers.join(", "));
    println!(
        "| passwords checked (401s) | {checks} ({:.0}/s) |",
        checks as f64 / f.secs.max(0.001)
    );
    println!(
        "| sign-in latency p50 / p99 | {:.1} / {:.1} ms |",
        pct(&f.login_lat_ms, 50.0),
        pct(&f.login_lat_ms, 99.0)
    );
    print_flood_charges(&f.before, &f.during, "8 POS");
}

// ---------------------------------------------------------------------------------------
// Slow-header flood (issue 12)
// ---------------------------------------------------------------------------------------

struct SlowFlood {
    bin: PathBuf,
    note: Option<String>,
    sockets: usize,
    opened: usize,
    open_secs: f64,
    timeout_secs: u64,
    /// Sockets the server closed, and when the last one was closed after the last opened.
    closed: usize,
    all_closed_after_secs: f64,
    rss_idle_mb: Option<f64>,
    hwm_mb: Option<f64>,
    before: PhaseResult,
    during: PhaseResult,
    /// /health over a new connection each time, every 200 ms during the flood.
    health_lat_ms: Vec<f64>,
    health_errors: usize,
}

const SLOW_FLOOD_TIMEOUT_SECS: u64 = 10;

/// `sockets` connections that each send half a request head and then nothing, against the
/// release binary with `header_read_timeout_secs` 10 and room for them all
/// (`max_connections` 8192; at the default 1024 the rest wait in the listen backlog):
/// charges from 8 POS clients on their keep-alive connections and /health on fresh ones
/// go on meanwhile, and the server closes every slow socket.
async fn bench_slow_flood(
    plan: &Plan,
    hash_pool: &[String],
    server_bin: Option<PathBuf>,
    sockets: usize,
) -> anyhow::Result<SlowFlood> {
    let (bin, note) = server_binary(server_bin);
    let (_dir, data, password, plains) = seeded_installation("SF", 40_000, hash_pool).await?;
    let timeout = SLOW_FLOOD_TIMEOUT_SECS.to_string();
    let mut env: Vec<(&str, &str)> = CHILD_ENV.to_vec();
    env.push(("MPS_EDGE_SERVER__HEADER_READ_TIMEOUT_SECS", &timeout));
    env.push(("MPS_EDGE_SERVER__MAX_CONNECTIONS", "8192"));
    let mut edge = EdgeProcess::spawn_with(&bin, Install::DataDir(&data), &[], &env)?;
    let pid = edge.pid().to_string();
    let during_secs = plan.phase.max(Duration::from_secs(SLOW_FLOOD_TIMEOUT_SECS));
    let result = async {
        let url = edge.url.clone();
        let addr = url.trim_start_matches("http://").to_string();
        let jwt = login(&url, &password).await?;
        let rss_idle_mb = status_mb(&pid, "VmRSS:");
        let pool = Pool::new(plains);
        let before = pos_baseline(&url, &jwt, pool.clone()).await;
        let started = Instant::now();
        let mut open = Vec::with_capacity(sockets);
        for _ in 0..sockets {
            let Ok(s) = tokio::net::TcpStream::connect(&addr).await else {
                break;
            };
            if support::net::write_all(&s, b"GET /health HTTP/1.1\r\nHost: edge\r\nX-Slow: ")
                .await
                .is_err()
            {
                break;
            }
            open.push(s);
        }
        let opened = open.len();
        let open_secs = started.elapsed().as_secs_f64();
        let last_opened = Instant::now();
        // One waiter per socket: the instant the server closed it (EOF or reset).
        let waiters: Vec<_> = open
            .into_iter()
            .map(|s| {
                tokio::spawn(async move {
                    let wait = Duration::from_secs(SLOW_FLOOD_TIMEOUT_SECS * 6);
                    tokio::time::timeout(wait, support::net::read_until_closed(&s))
                        .await
                        .ok()
                        .map(|(_, at)| at)
                })
            })
            .collect();
        let health = async {
            let http = reqwest::Client::builder()
                .no_proxy()
                .pool_max_idle_per_host(0)
                .timeout(Duration::from_secs(30))
                .build()?;
            let (mut lat, mut errors) = (Vec::new(), 0usize);
            let end = Instant::now() + during_secs;
            while Instant::now() < end {
                let t0 = Instant::now();
                match http.get(format!("{url}/health")).send().await {
                    Ok(r) if r.status().is_success() => lat.push(ms(t0.elapsed())),
                    _ => errors += 1,
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Ok::<_, anyhow::Error>((sorted(lat), errors))
        };
        let (during, health) = tokio::join!(
            fast_phase(&url, &jwt, 8, during_secs, usize::MAX, pool, None),
            health
        );
        let (health_lat_ms, health_errors) = health?;
        let mut closed = 0usize;
        let mut last_close = last_opened;
        for w in waiters {
            if let Ok(Some(at)) = w.await {
                closed += 1;
                last_close = last_close.max(at);
            }
        }
        Ok::<_, anyhow::Error>(SlowFlood {
            bin: bin.clone(),
            note: note.clone(),
            sockets,
            opened,
            open_secs,
            timeout_secs: SLOW_FLOOD_TIMEOUT_SECS,
            closed,
            all_closed_after_secs: last_close.duration_since(last_opened).as_secs_f64(),
            rss_idle_mb,
            hwm_mb: status_mb(&pid, "VmHWM:"),
            before,
            during,
            health_lat_ms,
            health_errors,
        })
    }
    .await;
    edge.terminate_within(Duration::from_secs(15))?;
    result
}

/// A section that may fail without ending the run: its error is printed, the report
/// goes on without it.
fn kept<T>(section: &str, result: anyhow::Result<T>) -> Option<T> {
    result.map_err(|e| eprintln!("  {section}: {e:#}")).ok()
}

fn print_slow_flood(f: &SlowFlood) {
    let mb = |v: Option<f64>| v.map_or("n/a".into(), |v| format!("{v:.1}"));
    println!(
        "\n## slow_flood — {} slow-header sockets, header_read_timeout_secs {}, {} cores\n",
        f.sockets,
        f.timeout_secs,
        cores()
    );
    print_flood_head(&f.bin, f.note.as_deref());
    println!(
        "| sockets opened | {} of {} in {:.1} s |",
        f.opened, f.sockets, f.open_secs
    );
    println!(
        "| closed by the server | {} of {}, the last {:.1} s after the last was opened |",
        f.closed, f.opened, f.all_closed_after_secs
    );
    println!(
        "| server RSS idle / peak (VmHWM) | {} / {} MB |",
        mb(f.rss_idle_mb),
        mb(f.hwm_mb)
    );
    println!(
        "| /health on a new connection during the flood | p50 {:.2} ms, p99 {:.2} ms, {} answered, {} failed |",
        pct(&f.health_lat_ms, 50.0),
        pct(&f.health_lat_ms, 99.0),
        f.health_lat_ms.len(),
        f.health_errors
    );
    print_flood_charges(&f.before, &f.during, "8 POS, keep-alive");
}

// ---------------------------------------------------------------------------------------
// Offline codes (issue 11): the edge's check of an mq2 code
// ---------------------------------------------------------------------------------------

struct Mq2Bench {
    sha256_per_sec: f64,
    /// Microseconds per check, sorted: a code 24 h (1,440 one-minute slots) after the
    /// chain's last verified value, and the next minute's code.
    walk_day_us: Vec<f64>,
    next_minute_us: Vec<f64>,
}

/// `domain::mq2::verify` as the charge path runs it (parse + check), on one core.
fn bench_mq2() -> Mq2Bench {
    use mps_edge::domain::mq2;
    eprintln!("[+] offline codes (mq2): verification cost");
    let mut v = [7u8; 32];
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < Duration::from_millis(500) {
        for _ in 0..1000 {
            v = mq2::hash(&v);
        }
        n += 1000;
    }
    let sha256_per_sec = n as f64 / started.elapsed().as_secs_f64();
    let card = "0f8c2d4e-1a2b-4c3d-8e9f-0123456789ab";
    let slots = 10_080;
    let epoch = 1_800_000_000;
    let (mut walk_day_us, mut next_minute_us) = (Vec::new(), Vec::new());
    for i in 0..200u32 {
        let mut seed = [0u8; 32];
        seed[..4].copy_from_slice(&i.to_le_bytes());
        let anchor = mq2::anchor(&seed, slots);
        let used = 100;
        let j = used + 1440;
        let chain = mq2::ChainState {
            anchor,
            epoch_unix: epoch,
            slot_secs: 60,
            slots,
            revoked: false,
            used_through: used,
            last_value: Some((used, mq2::hash_n(&seed, slots - used))),
        };
        let now = epoch + i64::from(j - 1) * 60 + 10;
        for (slot, out) in [(j, &mut walk_day_us), (used + 1, &mut next_minute_us)] {
            let text = mq2::make_code(card, &seed, slots, slot).unwrap_or_default();
            let now = if slot == j {
                now
            } else {
                epoch + i64::from(slot - 1) * 60 + 10
            };
            let t0 = Instant::now();
            let ok = mq2::parse(&text).map(|c| mq2::verify(&c, &chain, now, 2));
            out.push(t0.elapsed().as_secs_f64() * 1e6);
            assert!(matches!(ok, Some(Ok(_))), "{text}");
        }
    }
    Mq2Bench {
        sha256_per_sec,
        walk_day_us: sorted(walk_day_us),
        next_minute_us: sorted(next_minute_us),
    }
}

/// Offline codes through the whole charge path on an in-process server (HTTP, the
/// token's check, the SQLite commit): each card's first code a day after its chain's
/// epoch (a walk of ~1,440 hashes), beside mq1 tokens on the same server; one POS, then 8.
async fn bench_mq2_http(plan: &Plan, hash_pool: &[String]) -> anyhow::Result<Vec<ChargeRow>> {
    use mps_edge::domain::mq2;
    eprintln!("[+] offline codes (mq2): charges over HTTP");
    let dir = tempfile::tempdir()?;
    let cfg = bench_config(dir.path().join("data"));
    let (db, password) = open_installation(&cfg).await?;
    let n = if plan.quick { 400 } else { 2_000 };
    let (mq2_cards, mq1_cards) = db
        .write(move |c| Ok((insert_cards(c, "BQ", n)?, insert_cards(c, "BM", n)?)))
        .await
        .map_err(ae)?;
    let now = chrono::Utc::now().timestamp();
    let epoch = now - 86_400 - now.rem_euclid(60);
    let slots = 2_880;
    let seeds: Vec<[u8; 32]> = (0..n)
        .map(|i| mq2::hash(format!("bench-seed-{i}").as_bytes()))
        .collect();
    let (cards, s2) = (mq2_cards.clone(), seeds.clone());
    db.write(move |c| {
        for (id, seed) in cards.iter().zip(&s2) {
            mps_edge::db::chains::enrol_demo(c, id, seed, epoch, 60, slots, now)?;
        }
        Ok(())
    })
    .await
    .map_err(ae)?;
    let (plains, verifiers): (Vec<String>, Vec<String>) =
        mq1_cards.iter().map(|id| fast_token(id)).unzip();
    let (hashes, exp) = (hash_pool.to_vec(), far_future());
    db.write(move |c| live_states(c, &mq1_cards, &hashes, Some(&verifiers), exp))
        .await
        .map_err(ae)?;
    let server = start_server(cfg, db.clone(), &password, dir).await?;
    // The codes of the current slot, made when the server is up: they stay inside the
    // clock window (± 2 slots) for the few seconds the phases take.
    let slot = u32::try_from(mq2::slot_at(epoch, 60, chrono::Utc::now().timestamp()))?;
    let codes: Vec<String> = mq2_cards
        .iter()
        .zip(&seeds)
        .filter_map(|(id, seed)| mq2::make_code(id, seed, slots, slot))
        .collect();
    let (mq2_pool, mq1_pool) = (Pool::new(codes), Pool::new(plains));
    let mut rows = Vec::new();
    for clients in [1, 8] {
        for (kind, pool) in [
            ("mq2, first code a day after the epoch", &mq2_pool),
            ("mq1", &mq1_pool),
        ] {
            let r = fast_phase(
                &server.url,
                &server.jwt,
                clients,
                Duration::from_secs(20),
                n / 2,
                pool.clone(),
                None,
            )
            .await;
            if r.ok == 0 {
                bail!("{kind} charges failed: {:?}", r.first_error);
            }
            eprintln!(
                "  {kind:<40} {clients} POS: {:>6.0} charges/s, p99 {:.2} ms, {} errors",
                r.rate(),
                pct(&r.lat_ms, 99.0),
                r.errors
            );
            rows.push(ChargeRow { kind, clients, r });
        }
    }
    server.stop().await;
    Ok(rows)
}

fn print_mq2_http(rows: &[ChargeRow]) {
    println!("\n## mq2 — charges over HTTP (the whole path: HTTP, the check, the SQLite commit)\n");
    println!("| token | POS | charges/s | p50 | p99 | errors |");
    println!("|---|---|---|---|---|---|");
    for row in rows {
        println!(
            "| {} | {} | {} | {:.2} ms | {:.2} ms | {} |",
            row.kind,
            row.clients,
            thousands(row.r.rate()),
            pct(&row.r.lat_ms, 50.0),
            pct(&row.r.lat_ms, 99.0),
            row.r.errors
        );
    }
}

fn print_mq2(m: &Mq2Bench) {
    println!("\n## mq2 — checking an offline code at the edge (parse + verify, one core)\n");
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| SHA-256 of 32 bytes, this machine | {} /s |",
        thousands(m.sha256_per_sec)
    );
    println!(
        "| a code 24 h after the chain's last verified value (1,440 hashes) | p50 {:.0} µs, p99 {:.0} µs (target p99 ≤ 2 ms) |",
        pct(&m.walk_day_us, 50.0),
        pct(&m.walk_day_us, 99.0)
    );
    println!(
        "| the next minute's code (1 hash) | p50 {:.1} µs, p99 {:.1} µs |",
        pct(&m.next_minute_us, 50.0),
        pct(&m.next_minute_us, 99.0)
    );
}

// ---------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------

struct Target {
    name: String,
    target: String,
    measured: String,
    pass: Option<bool>,
    margin: String,
}

fn target(name: &str, tgt: &str, measured: String, pass: Option<bool>, margin: String) -> Target {
    Target {
        name: name.into(),
        target: tgt.into(),
        measured,
        pass,
        margin,
    }
}

fn self_hwm() -> f64 {
    status_mb("self", "VmHWM:").unwrap_or(f64::NAN)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut plan = Plan::new(args.quick);
    if let Some(secs) = args.phase_secs {
        plan.phase = Duration::from_secs(secs);
    }
    let run_started = Instant::now();
    let load_at_start = load_average();
    let mut conditions: Vec<(&str, (f64, f64))> = Vec::new();
    let idle_check = CpuWatch::start();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (busy_before, _) = idle_check.others(0.0);
    if busy_before > 0.2 {
        eprintln!(
            "warning: other processes use {busy_before:.1} cores right now; they will lower the results"
        );
    }
    let mut hwm: Vec<(String, f64)> = Vec::new();
    let mut note_hwm = |step: &str| hwm.push((step.to_string(), self_hwm()));
    eprintln!(
        "mps-edge bench ({}): {} cores, {}",
        if plan.quick { "quick" } else { "full" },
        cores(),
        cpu_model()
    );

    eprintln!("[1/6] bcrypt ceiling");
    let bcrypt = tokio::task::spawn_blocking(bench_bcrypt).await??;
    // Real cost-6 hashes of random tokens that no benchmark token equals (see live_states).
    let hash_pool: Vec<String> = tokio::task::spawn_blocking(|| issue_legacy_parallel(256))
        .await?
        .into_iter()
        .map(|(_, h)| h)
        .collect();

    let mut raw = None;
    if args.want("raw") {
        eprintln!("[2/6] raw SQLite ceiling (group-commit writer, 64 tasks)");
        let w = CpuWatch::start();
        raw = Some(bench_raw(&plan, &hash_pool).await?);
        conditions.push(("raw SQLite ceiling", w.others(0.0)));
        note_hwm("raw writer");
    }

    let mut charges = Vec::new();
    if args.want("charges") {
        eprintln!("[3/6] charges over HTTP");
        let w = CpuWatch::start();
        charges = bench_charges(&plan, &hash_pool).await?;
        conditions.push(("charges over HTTP", w.others(0.0)));
        note_hwm("HTTP charges");
    }

    let mut validation = Vec::new();
    let sizes: &[usize] = if args.want("validation") {
        eprintln!("[4/6] QR validation");
        &plan.validation_sizes
    } else {
        &[]
    };
    let w = CpuWatch::start();
    for &n in sizes {
        let row = bench_validation_size(&plan, n, &hash_pool).await?;
        eprintln!(
            "  {n:>7} cards: fast p50 {:.2} ms, legacy newest {:.2} ms, middle {:.0} ms{}",
            row.fast_p50,
            row.legacy_newest_p50,
            row.legacy_middle.1,
            if row.legacy_middle.2 { "" } else { " (est.)" }
        );
        validation.push(row);
        note_hwm(&format!("validation ({} cards)", thousands(n as f64)));
    }
    if !sizes.is_empty() {
        conditions.push(("QR validation", w.others(0.0)));
    }

    let sync = if args.skip_central || !args.want("sync") {
        Err(anyhow!("skipped"))
    } else {
        eprintln!("[5/6] bootstrap and drain against the test central");
        bench_sync(&plan).await
    };
    if let Err(e) = &sync {
        eprintln!("  sync: {e:#}");
    }
    if let Ok(s) = &sync {
        note_hwm("sync");
        conditions.push(("bootstrap and drain", s.others));
    }

    let binary = if args.skip_binary || !args.want("binary") {
        Err(anyhow!("skipped"))
    } else {
        eprintln!("[6/6] the release binary");
        let w = CpuWatch::start();
        let b = bench_binary(&plan, &hash_pool).await;
        conditions.push((
            "release binary (including its cargo build check)",
            w.others(0.0),
        ));
        b
    };
    if let Err(e) = &binary {
        eprintln!("  binary: {e:#}");
    }
    let flood = if args.skip_binary || !args.want("login_flood") {
        None
    } else {
        eprintln!("[7/7] sign-in flood against the release binary");
        let f = bench_login_flood(
            &plan,
            &hash_pool,
            args.server_bin.clone(),
            args.flood_logins,
        );
        kept("login_flood", f.await)
    };
    let offline = args.want("mq2").then(bench_mq2);
    let offline_http = if args.want("mq2") {
        kept("mq2 over HTTP", bench_mq2_http(&plan, &hash_pool).await)
    } else {
        None
    };
    let slow = if args.skip_binary || !args.want("slow_flood") {
        None
    } else {
        eprintln!("[+] slow-header flood against the release binary");
        let f = bench_slow_flood(
            &plan,
            &hash_pool,
            args.server_bin.clone(),
            args.flood_sockets,
        );
        kept("slow_flood", f.await)
    };
    let total_secs = run_started.elapsed().as_secs_f64();

    // ---- tables ----
    let mut o = String::new();
    use std::fmt::Write as _;
    let _ = writeln!(
        o,
        "\n## mps-edge bench — {} run, {} cores ({}), {:.0} s\n",
        if plan.quick { "quick" } else { "full" },
        cores(),
        cpu_model(),
        total_secs
    );
    let _ = writeln!(o, "### Charges through the HTTP API (in-process server, synchronous=FULL, single-use QR, one new token per charge)\n");
    let _ = writeln!(o, "| tokens | POS clients | charges | charges/s | p50 ms | p95 ms | p99 ms | bcrypt verifies/charge | writer jobs/commit | errors |");
    let _ = writeln!(o, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for row in &charges {
        let r = &row.r;
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {:.2} | {:.2} | {:.2} | {} | {} | {}{} |",
            row.kind,
            row.clients,
            thousands(r.ok as f64),
            thousands(r.rate()),
            pct(&r.lat_ms, 50.0),
            pct(&r.lat_ms, 95.0),
            pct(&r.lat_ms, 99.0),
            if row.kind == "legacy" {
                format!("{:.1}", r.verifies_per_charge())
            } else {
                "0".into()
            },
            if r.writer_jobs_per_batch.is_finite() {
                format!("{:.1}", r.writer_jobs_per_batch)
            } else {
                "—".into()
            },
            r.errors,
            if r.exhausted {
                " (token budget reached)"
            } else {
                ""
            }
        );
    }
    for row in &charges {
        if let Some(e) = &row.r.first_error {
            let _ = writeln!(
                o,
                "\nfirst error ({} {} clients): {e}",
                row.kind, row.clients
            );
        }
    }
    let _ = writeln!(o, "\n### Ceilings (same run)\n");
    let _ = writeln!(o, "| ceiling | value | detail |");
    let _ = writeln!(o, "|---|---:|---|");
    if let Some(raw) = &raw {
        let _ = writeln!(
            o,
            "| raw SQLite: commit_charge via db.write, 64 tasks, synchronous=FULL | {} tx/s | p50 {:.2} ms, p99 {:.2} ms, {:.1} jobs/commit, {} tx |",
            thousands(raw.per_sec),
            raw.p50,
            raw.p99,
            raw.jobs_per_batch,
            thousands(raw.n as f64)
        );
        let _ = writeln!(
            o,
            "| fsync: 4 KiB in-place write + fdatasync in the temp dir | {:.2} ms | median of 200; one per group commit |",
            raw.fsync_ms
        );
    }
    let raw_per_sec = raw.as_ref().map_or(f64::NAN, |r| r.per_sec);
    let _ = writeln!(
        o,
        "| bcrypt: {} cores ÷ one cost-6 verify | {} verifies/s | one verify {:.2} ms; {} threads verifying at once reach {} verifies/s |",
        bcrypt.cores,
        thousands(bcrypt.per_sec),
        bcrypt.verify_ms,
        bcrypt.cores,
        thousands(bcrypt.parallel_per_sec)
    );
    let find = |kind: &str, clients: usize| {
        charges
            .iter()
            .find(|r| r.kind.starts_with(kind) && r.clients == clients)
            .map(|r| &r.r)
    };
    let _ = writeln!(o, "\n| ratio | 1 client | 8 clients | 64 clients |");
    let _ = writeln!(o, "|---|---:|---:|---:|");
    let ratio_row = |kind: &str, ceiling: f64| {
        CLIENT_LEVELS
            .iter()
            .map(|c| {
                find(kind, *c)
                    .filter(|_| ceiling.is_finite())
                    .map_or("—".into(), |r| {
                        format!("{:.0}%", 100.0 * r.rate() / ceiling)
                    })
            })
            .collect::<Vec<_>>()
            .join(" | ")
    };
    let _ = writeln!(
        o,
        "| fast charges ÷ raw SQLite ceiling | {} |",
        ratio_row("fast", raw_per_sec)
    );
    let _ = writeln!(
        o,
        "| legacy charges ÷ bcrypt ceiling | {} |",
        ratio_row("legacy", bcrypt.per_sec)
    );
    let _ = writeln!(
        o,
        "| legacy bcrypt work ÷ bcrypt ceiling (charges/s × verifies/charge) | {} |",
        CLIENT_LEVELS
            .iter()
            .map(|c| find("legacy", *c).map_or("—".into(), |r| format!(
                "{:.0}%",
                100.0 * r.rate() * r.verifies_per_charge() / bcrypt.per_sec
            )))
            .collect::<Vec<_>>()
            .join(" | ")
    );

    let _ = writeln!(o, "\n### QR validation (POST /api/v1/common/qr/validate, one client, cold = first time the edge sees the token)\n");
    let _ = writeln!(o, "| cards = live codes | fast p50 ms | fast p99 ms | legacy newest (cold) p50 ms | legacy middle of live set (cold) | legacy repeat (cached) p50 ms |");
    let _ = writeln!(o, "|---:|---:|---:|---:|---|---:|");
    for v in &validation {
        let middle = if v.legacy_middle.2 {
            format!(
                "{:.1} ms (position {})",
                v.legacy_middle.1,
                thousands(v.legacy_middle.0 as f64)
            )
        } else {
            let (d, m) = v.legacy_probe.unwrap_or((0, f64::NAN));
            format!(
                "≈{:.0} ms est. (position {}; measured {:.0} ms at position {})",
                v.legacy_middle.1,
                thousands(v.legacy_middle.0 as f64),
                m,
                thousands(d as f64)
            )
        };
        let _ = writeln!(
            o,
            "| {} | {:.2} | {:.2} | {:.2} | {} | {:.2} |",
            thousands(v.cards as f64),
            v.fast_p50,
            v.fast_p99,
            v.legacy_newest_p50,
            middle,
            v.legacy_cached_p50
        );
    }

    let _ = writeln!(o, "\n### Sync with the test central (PostgreSQL + PostgREST-compatible gateway on loopback)\n");
    match &sync {
        Ok(s) => {
            let _ = writeln!(o, "| measure | value |");
            let _ = writeln!(o, "|---|---:|");
            let _ = writeln!(
                o,
                "| bootstrap: {} cards pulled into an empty edge | {:.1} s ({} cards/s); replica holds {} cards |",
                thousands(s.cards as f64),
                s.bootstrap_secs,
                thousands(s.cards as f64 / s.bootstrap_secs),
                thousands(s.replica_cards as f64)
            );
            let _ = writeln!(
                o,
                "| drain: {} charge operations queued, SyncEngine::push_all{} | {} ops/s: {} drained in {:.1} s, {} rejected |",
                thousands(s.ops as f64),
                if s.finished { String::new() } else { format!(" (time box {} s reached)", plan.drain_box.as_secs()) },
                thousands(s.drained as f64 / s.drain_secs),
                thousands(s.drained as f64),
                s.drain_secs,
                s.rejected
            );
            let (l_ops, l_secs, l_rejected, ceiling) = s.legacy;
            let _ = writeln!(
                o,
                "| legacy-token drain: {} charges, one bcrypt each at central | {} ops/s ({} rejected); central's bcrypt ceiling in one backend, same run: {} verifies/s ({:.0}% of it) |",
                thousands(l_ops as f64),
                thousands(l_ops as f64 / l_secs),
                l_rejected,
                thousands(ceiling),
                100.0 * (l_ops as f64 / l_secs) / ceiling
            );
            match &s.mq2 {
                Ok(q) => {
                    let (n_hashes, sha_secs) = q.sha256;
                    let per_hash_ms = sha_secs * 1000.0 / n_hashes as f64;
                    for (r, what) in [
                        (&q.first, "first code 24 h after the epoch"),
                        (&q.next, "the next minute's code"),
                    ] {
                        let _ = writeln!(
                            o,
                            "| drain: {} mq2 charges ({what}, slot {}: {} hash{} each at central) | {} ops/s: {} in {:.2} s, {} rejected, central holds {} used slots; PostgreSQL CPU {:.2} ms per op, of which the walk ≈ {:.3} ms at the rate below |",
                            thousands(q.cards as f64),
                            thousands(f64::from(r.slot)),
                            thousands(f64::from(r.walk)),
                            if r.walk == 1 { "" } else { "es" },
                            thousands(q.cards as f64 / r.secs),
                            thousands(q.cards as f64),
                            r.secs,
                            r.rejected,
                            thousands(r.central_used as f64),
                            r.pg_cpu_secs * 1000.0 / q.cards as f64,
                            f64::from(r.walk) * per_hash_ms
                        );
                        if !r.reasons.is_empty() {
                            let _ = writeln!(
                                o,
                                "| **mq2 charges refused by central (a bug: every code was genuine)** | {} |",
                                r.reasons
                                    .iter()
                                    .map(|(reason, k)| format!("{k} × {reason}"))
                                    .collect::<Vec<_>>()
                                    .join("; ")
                            );
                        }
                    }
                    let _ = writeln!(
                        o,
                        "| central's SHA-256 in a PL/pgSQL loop (extensions.digest, as check_chain_proof walks), one backend, same run | {} hashes/s ({:.2} µs each; {} hashes in {:.2} s) |",
                        thousands(n_hashes as f64 / sha_secs),
                        per_hash_ms * 1000.0,
                        thousands(n_hashes as f64),
                        sha_secs
                    );
                }
                Err(e) => {
                    let _ = writeln!(o, "| drain: mq2 charges | not measured: {e:#} |");
                }
            }
            let _ = writeln!(
                o,
                "| CPU during the drain: PostgreSQL processes / bench process (edge + gateway) | {:.1} s / {:.1} s in {:.1} s wall ({:.2} / {:.2} ms per op) |",
                s.pg_cpu_secs,
                s.edge_cpu_secs,
                s.drain_secs,
                s.pg_cpu_secs * 1000.0 / s.drained.max(1) as f64,
                s.edge_cpu_secs * 1000.0 / s.drained.max(1) as f64
            );
            let _ = writeln!(
                o,
                "| (set-up, untimed) central insert of {} cards; {} local charges via commit_charge | {:.1} s; {:.1} s |",
                thousands(s.cards as f64),
                thousands(s.ops as f64),
                s.central_insert_secs,
                s.ops_setup_secs
            );
            if let Ok(q) = &s.mq2 {
                let _ = writeln!(
                    o,
                    "| (set-up, untimed) mq2: {} chains planted at central and in the replica, codes made, SHA-256 rate measured | {:.1} s |",
                    thousands(q.cards as f64),
                    q.setup_secs
                );
            }
        }
        Err(e) => {
            let _ = writeln!(o, "not measured: {e:#}");
        }
    }

    let _ = writeln!(o, "\n### Resources\n");
    let _ = writeln!(o, "| measure | value |");
    let _ = writeln!(o, "|---|---:|");
    match &binary {
        Ok(b) => {
            let _ = writeln!(
                o,
                "| release binary size (target/release/mps-edge) | {:.1} MB |",
                b.size_mb
            );
            if let Some(r) = &b.r {
                let _ = writeln!(
                    o,
                    "| real binary (`mps-edge serve`, child process), {} cards + demo, 64 fast-token clients | {} charges/s, p50 {:.2} / p95 {:.2} / p99 {:.2} ms, {} errors |",
                    thousands(b.cards as f64),
                    thousands(r.rate()),
                    pct(&r.lat_ms, 50.0),
                    pct(&r.lat_ms, 95.0),
                    pct(&r.lat_ms, 99.0),
                    r.errors
                );
            }
            let _ = writeln!(
                o,
                "| real binary peak RSS (VmHWM) under that load | {} MB (idle after login: {} MB) |",
                b.hwm_mb.map_or("—".into(), |v| format!("{v:.1}")),
                b.rss_idle_mb.map_or("—".into(), |v| format!("{v:.1}"))
            );
            if let Some(c) = b.cpu_ms_per_charge {
                let _ = writeln!(o, "| real binary CPU per charge (user+sys) | {c:.3} ms |");
            }
            if let Some(n) = &b.note {
                let _ = writeln!(o, "| note | {n} |");
            }
        }
        Err(e) => {
            let _ = writeln!(o, "| release binary | not measured: {e:#} |");
        }
    }
    for (step, v) in &hwm {
        let _ = writeln!(o, "| bench process peak RSS (VmHWM) after {step} (server + clients + central gateway in one process) | {v:.1} MB |");
    }

    let _ = writeln!(o, "\n### Run conditions\n");
    let _ = writeln!(o, "| measure | value |");
    let _ = writeln!(o, "|---|---:|");
    let _ = writeln!(
        o,
        "| load average at start (1, 5, 15 min); CPU used by other processes just before | {load_at_start}; {busy_before:.2} cores |"
    );
    for (section, (others, steal)) in &conditions {
        let _ = writeln!(
            o,
            "| CPU used by other processes / stolen by the hypervisor during {section} | {others:.2} / {steal:.2} cores |"
        );
    }

    // ---- targets ----
    let mut targets = Vec::new();
    if let (Some(r), Some(raw)) = (find("fast", 64), &raw) {
        let ratio = r.rate() / raw.per_sec;
        targets.push(target(
            "fast charges, 64 clients ÷ raw SQLite ceiling",
            "≥ 50%",
            format!("{:.0}%", ratio * 100.0),
            Some(ratio >= 0.5),
            format!("{:+.0} points", (ratio - 0.5) * 100.0),
        ));
    }
    if let Some(r) = find("fast", 64) {
        let p99 = pct(&r.lat_ms, 99.0);
        // Little's law: 64 closed-loop clients at the raw ceiling's rate wait on average
        // 64 ÷ rate, before any HTTP work; that floor is printed next to the miss.
        let floor = raw.as_ref().map_or(String::new(), |raw| {
            format!(
                "; closed-loop mean ≥ 64 ÷ raw ceiling = {:.1} ms",
                64_000.0 / raw.per_sec
            )
        });
        targets.push(target(
            "fast charges, 64 clients (closed loop), p99",
            "≤ 10 ms",
            format!("{p99:.1} ms"),
            Some(p99 <= 10.0),
            format!("{:+.1} ms{floor}", 10.0 - p99),
        ));
    }
    if let Some(r) = charges
        .iter()
        .find(|r| r.kind.contains("open loop"))
        .map(|r| &r.r)
    {
        let p99 = pct(&r.lat_ms, 99.0);
        targets.push(target(
            "fast charges, 64 clients, open loop at 1,000/s, p99",
            "≤ 10 ms",
            format!("{p99:.1} ms"),
            Some(p99 <= 10.0),
            format!("{:+.1} ms", 10.0 - p99),
        ));
    }
    if let Some(r) = find("legacy", 64) {
        let ratio = r.rate() / bcrypt.per_sec;
        targets.push(target(
            "legacy charges, 64 clients ÷ bcrypt ceiling",
            "≥ 80%",
            format!("{:.0}%", ratio * 100.0),
            Some(ratio >= 0.8),
            format!("{:+.0} points", (ratio - 0.8) * 100.0),
        ));
    }
    if let (Some(a), Some(b)) = (validation.first(), validation.last()) {
        let growth = b.fast_p50 / a.fast_p50;
        targets.push(target(
            &format!(
                "fast validation p50 growth, {} → {} cards",
                thousands(a.cards as f64),
                thousands(b.cards as f64)
            ),
            "≤ 1.5×",
            format!("{growth:.2}×"),
            Some(growth <= 1.5),
            format!("{:+.2}×", 1.5 - growth),
        ));
    }
    match &sync {
        Ok(s) => {
            // ≤ 20 s for 100,000 cards, i.e. ≥ 5,000 cards/s (scaled when --quick).
            let limit = 20.0 * s.cards as f64 / 100_000.0;
            targets.push(target(
                &format!("bootstrap of {} cards", thousands(s.cards as f64)),
                &format!("≤ {limit:.0} s"),
                format!("{:.1} s", s.bootstrap_secs),
                Some(s.bootstrap_secs <= limit && s.replica_cards as usize >= s.cards),
                format!("{:+.1} s", limit - s.bootstrap_secs),
            ));
            let rate = s.drained as f64 / s.drain_secs;
            targets.push(target(
                "outbox drain",
                "≥ 2,000 ops/s",
                format!("{} ops/s", thousands(rate)),
                Some(rate >= 2000.0 && s.rejected == 0),
                format!("{:+.0}%", (rate / 2000.0 - 1.0) * 100.0),
            ));
        }
        Err(_) => targets.push(target(
            "bootstrap / drain",
            "—",
            "not measured".into(),
            None,
            "—".into(),
        )),
    }
    match &binary {
        Ok(b) => {
            if let Some(h) = b.hwm_mb {
                targets.push(target(
                    &format!(
                        "peak RSS of the real binary, {} cards, 64-client load",
                        thousands(b.cards as f64)
                    ),
                    "≤ 64 MB",
                    format!("{h:.1} MB"),
                    Some(h <= 64.0),
                    format!("{:+.1} MB", 64.0 - h),
                ));
            }
            targets.push(target(
                "release binary size",
                "≤ 30 MB",
                format!("{:.1} MB", b.size_mb),
                Some(b.size_mb <= 30.0),
                format!("{:+.1} MB", 30.0 - b.size_mb),
            ));
        }
        Err(_) => targets.push(target(
            "peak RSS / binary size",
            "—",
            "not measured".into(),
            None,
            "—".into(),
        )),
    }
    let _ = writeln!(o, "\n### Targets\n");
    let _ = writeln!(
        o,
        "| target | goal | measured | result | margin (+ = headroom) |"
    );
    let _ = writeln!(o, "|---|---|---:|---|---:|");
    for t in &targets {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} |",
            t.name,
            t.target,
            t.measured,
            match t.pass {
                Some(true) => "PASS",
                Some(false) => "MISS",
                None => "—",
            },
            t.margin
        );
    }
    println!("{o}");
    if let Some(f) = &flood {
        print_login_flood(f);
    }
    if let Some(f) = &slow {
        print_slow_flood(f);
    }
    if let Some(m) = &offline {
        print_mq2(m);
    }
    if let Some(rows) = &offline_http {
        print_mq2_http(rows);
    }
    Ok(())
}
