//! The sync engine: drains the outbox in order (one batch in flight at a time, the next
//! only after the previous is acknowledged), pulls replica changes (QR states often, the
//! rest less often), retries transient failures with backoff and jitter, and stops on
//! permanent ones with the cause shown — never discarding an operation.
//!
//! Push and pull are two independent loops with their own schedule, backoff, stop and
//! failure record: a push that fails or is stopped never delays the pulls that keep
//! frozen cards, levels and discounts current, and the reverse.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use serde_json::{json, Value};
use tokio::sync::{watch, Mutex, Notify};
use tokio::time::Instant;

use super::client::{CentralClient, SyncError};
use super::plan::{self, Cursor, PULL_PAGE, PUSH_BATCH};
use super::state as syncstate;
use crate::config::Config;
use crate::db::replica::{apply_page, apply_push_results, OpResult};
use crate::db::{meta, Db};
use crate::error::AppError;
use crate::sync::state::Pipeline;

const QR_PULL_EVERY: Duration = Duration::from_secs(5);
/// At most one heartbeat (`edge_report_status`) per this long, sent after a good pull.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(30);
const PUSH_EVERY: Duration = Duration::from_secs(2);

/// How a pull shows its progress: a terminal spinner, log lines (the daemon's bootstrap
/// off a terminal), or not at all (the regular schedule).
#[derive(Clone, Copy)]
enum Progress<'a> {
    Quiet,
    Bar(&'a indicatif::ProgressBar),
    Log,
}

#[derive(Debug, Default, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct PushReport {
    pub batches: usize,
    pub applied: usize,
    pub rejected: usize,
}

#[derive(Debug, Default, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct PullReport {
    pub pages: usize,
    pub rows: usize,
    pub changed: usize,
}

pub struct SyncEngine {
    client: CentralClient,
    db: Db,
    merchant_code: String,
    site_code: String,
    push_lock: Mutex<()>,
    /// Held (flock) around every push, so a `mps-edge sync now` from the command line
    /// and the server's own loop never have two batches in flight at once.
    push_lock_file: std::path::PathBuf,
    pull_lock: Mutex<()>,
    /// Between pulls of everything but QR states (`central.pull_interval_secs`).
    full_pull_every: Duration,
    wake: Notify,
    /// Set when central has no `edge_report_status` (an older central.sql): stop asking.
    heartbeat_off: std::sync::atomic::AtomicBool,
}

/// A whole-file exclusive lock, released when dropped.
struct FileLock(#[allow(dead_code)] std::fs::File);

impl FileLock {
    async fn acquire(path: std::path::PathBuf) -> Result<FileLock, SyncError> {
        tokio::task::spawn_blocking(move || {
            let file = crate::files::open_private(&path, false)?;
            file.lock()?;
            Ok::<_, std::io::Error>(FileLock(file))
        })
        .await
        .map_err(|e| SyncError::permanent(format!("push lock task: {e}")))?
        .map_err(|e| SyncError::permanent(format!("push lock file: {e}")))
    }
}

fn db_err(e: AppError) -> SyncError {
    SyncError::permanent(format!("local database: {e}"))
}

impl SyncEngine {
    pub fn new(cfg: &Config, db: Db) -> anyhow::Result<Arc<SyncEngine>> {
        Ok(Arc::new(SyncEngine {
            client: CentralClient::new(&cfg.central)?,
            db,
            merchant_code: cfg.central.merchant_code.clone(),
            site_code: cfg.site.code.clone(),
            push_lock: Mutex::new(()),
            push_lock_file: cfg.data_dir.join("sync-push.lock"),
            pull_lock: Mutex::new(()),
            full_pull_every: Duration::from_secs(
                cfg.central.pull_interval_secs.clamp(5, 3600) as u64
            ),
            wake: Notify::new(),
            heartbeat_off: std::sync::atomic::AtomicBool::new(false),
        }))
    }

    pub fn client(&self) -> &CentralClient {
        &self.client
    }

    /// Asks the loop to push soon (after a local charge or refund).
    pub fn notify(&self) {
        self.wake.notify_one();
    }

    async fn note_ok(&self, p: Pipeline, contacted: bool) {
        let key = match p {
            Pipeline::Push => syncstate::LAST_PUSH_OK,
            Pipeline::Pull => syncstate::LAST_PULL_OK,
        };
        let _ = self
            .db
            .write(move |c| syncstate::note_success(c, p, key, contacted))
            .await;
    }

    async fn note_err(&self, p: Pipeline, e: &SyncError) {
        crate::metrics::sync_result(p.name(), false);
        let msg = e.message.clone();
        let permanent = !e.is_transient();
        let _ = self
            .db
            .write(move |c| {
                syncstate::note_failure(c, p, &msg, permanent)?;
                if !permanent {
                    meta::set(c, syncstate::ONLINE, "0")?;
                }
                Ok(())
            })
            .await;
        tracing::warn!(pipeline = p.name(), permanent, error = %e.message, "sync step failed");
    }

    /// Pushes every pending operation, in outbox order per card: each round sends up to two
    /// batches at once (see `plan::concurrent_batches`), so central applies them in two
    /// backends while the edge records the answers.
    pub async fn push_all(&self) -> Result<PushReport, SyncError> {
        let _guard = self.push_lock.lock().await;
        let _file_guard = FileLock::acquire(self.push_lock_file.clone()).await?;
        let mut report = PushReport::default();
        loop {
            let rows = self
                .db
                .read(|c| syncstate::pending_ops(c, 2 * PUSH_BATCH))
                .await
                .map_err(db_err)?;
            if rows.is_empty() {
                break;
            }
            let (first, second) = plan::concurrent_batches(&rows, PUSH_BATCH);
            let (a, b) = tokio::join!(self.push_batch(first), async {
                if second.is_empty() {
                    None
                } else {
                    Some(self.push_batch(&second).await)
                }
            });
            // an answer that arrived is recorded (push_batch did) even if the other failed
            for (applied, rejected) in [Some(&a), b.as_ref()].into_iter().flatten().flatten() {
                report.batches += 1;
                report.applied += applied;
                report.rejected += rejected;
            }
            a?;
            b.transpose()?;
        }
        if report.rejected > 0 {
            tracing::warn!(
                rejected = report.rejected,
                "central rejected operations; see sync exceptions"
            );
        }
        self.note_ok(Pipeline::Push, report.batches > 0).await;
        crate::metrics::sync_result("push", true);
        Ok(report)
    }

    /// Sends one batch to `edge_apply_batch` and records central's answer for each op.
    /// Returns (applied, rejected); duplicates count as applied.
    async fn push_batch(&self, rows: &[plan::PendingOp]) -> Result<(usize, usize), SyncError> {
        let ops = plan::batch_ops(rows)
            .map_err(|e| SyncError::permanent(format!("corrupt outbox payload: {e}")))?;
        let sent: Vec<String> = ops
            .iter()
            .filter_map(|o| o["op_id"].as_str().map(String::from))
            .collect();
        let answer = self
            .client
            .rpc(
                "edge_apply_batch",
                &json!({"p_site_code": self.site_code, "p_merchant_code": self.merchant_code, "p_ops": ops}),
            )
            .await?;
        let results: Vec<OpResult> = answer["results"]
            .as_array()
            .ok_or_else(|| {
                SyncError::permanent("central's edge_apply_batch answer has no results")
            })?
            .iter()
            .map(OpResult::from_json)
            .collect::<Result<_, _>>()
            .map_err(|e| SyncError::permanent(format!("central's answer is malformed: {e}")))?;
        let answered: Vec<&str> = results.iter().map(|r| r.op_id.as_str()).collect();
        if answered != sent.iter().map(String::as_str).collect::<Vec<_>>() {
            return Err(SyncError::permanent(
                "central answered a different set of operations than was sent",
            ));
        }
        self.db
            .write(move |c| apply_push_results(c, &results))
            .await
            .map_err(db_err)
    }

    /// Pulls the given kinds to the end, page by page, from each kind's cursor (moved back
    /// by the overlap window).
    pub async fn pull(
        &self,
        kinds: &[&str],
        progress: Option<&indicatif::ProgressBar>,
    ) -> Result<PullReport, SyncError> {
        let progress = match progress {
            Some(bar) => Progress::Bar(bar),
            None => Progress::Quiet,
        };
        self.pull_reporting(kinds, progress).await
    }

    async fn pull_reporting(
        &self,
        kinds: &[&str],
        progress: Progress<'_>,
    ) -> Result<PullReport, SyncError> {
        let _guard = self.pull_lock.lock().await;
        let mut report = PullReport::default();
        for kind in kinds {
            let k = kind.to_string();
            let stored = self
                .db
                .read(move |c| syncstate::cursor(c, &k))
                .await
                .map_err(db_err)?;
            let mut at = plan::cycle_start(stored.as_ref());
            let (pages_before, rows_before) = (report.pages, report.rows);
            loop {
                let page = self
                    .client
                    .rpc(
                        "edge_pull_changes",
                        &json!({
                            "p_merchant_code": self.merchant_code,
                            "p_site_code": self.site_code,
                            "p_kind": kind,
                            "p_after_ts": at.as_ref().map(|c| c.ts.clone()),
                            "p_after_id": at.as_ref().map(|c| c.id.clone()),
                            "p_limit": PULL_PAGE,
                        }),
                    )
                    .await?;
                let rows: Vec<Value> = page["rows"].as_array().cloned().unwrap_or_default();
                let next = match (
                    page["next_after_ts"].as_str(),
                    page["next_after_id"].as_str(),
                ) {
                    (Some(ts), Some(id)) => Some(Cursor {
                        ts: ts.into(),
                        id: id.into(),
                    }),
                    _ => None,
                };
                let has_more = page["has_more"].as_bool().unwrap_or(false) && !rows.is_empty();
                let n = rows.len();
                let (k, code, cursor) =
                    (kind.to_string(), self.merchant_code.clone(), next.clone());
                let changed = self
                    .db
                    .write(move |c| {
                        let changed = apply_page(c, &k, &rows, &code)?;
                        if let Some(next) = cursor {
                            let stored = syncstate::cursor(c, &k)?;
                            syncstate::set_cursor(c, &k, &plan::later(stored, next))?;
                        }
                        Ok(changed)
                    })
                    .await
                    .map_err(db_err)?;
                report.pages += 1;
                report.rows += n;
                report.changed += changed;
                match progress {
                    Progress::Bar(p) => {
                        p.inc(n as u64);
                        p.set_message(kind.to_string());
                    }
                    Progress::Log => {
                        tracing::debug!(kind = %kind, rows = n, total = report.rows, "pulled a page");
                    }
                    Progress::Quiet => {}
                }
                if !has_more || next.is_none() {
                    break;
                }
                at = next;
            }
            if matches!(progress, Progress::Log) {
                tracing::info!(
                    kind = %kind,
                    rows = report.rows - rows_before,
                    pages = report.pages - pages_before,
                    total_rows = report.rows,
                    "bootstrap: pulled"
                );
            }
        }
        if kinds.contains(&"cards") {
            let now = chrono::Utc::now().timestamp().to_string();
            self.db
                .write(move |c| meta::set(c, meta::REPLICA_REFRESHED_UNIX, &now))
                .await
                .map_err(db_err)?;
        }
        self.note_ok(Pipeline::Pull, true).await;
        crate::metrics::sync_result("pull", true);
        Ok(report)
    }

    /// On a QR miss while central may be reachable: fetch QR changes now. Bounded, so a
    /// charge never waits long on a dead link. Returns whether the pull succeeded (the
    /// token may also have arrived through the background loop in the meantime, so the
    /// caller retries either way; a repeat miss is answered from the negative cache).
    pub async fn pull_qr_now(&self) -> bool {
        match tokio::time::timeout(Duration::from_secs(3), self.pull(&plan::QR_KINDS, None)).await {
            Ok(Ok(_)) => true,
            Ok(Err(e)) => {
                self.note_err(Pipeline::Pull, &e).await;
                false
            }
            Err(_) => false,
        }
    }

    /// One manual cycle, the same from the API and the command line: clear both stops,
    /// push everything, then pull everything (also when the push failed). The first
    /// error is returned; each pipeline's own record shows its outcome.
    pub async fn sync_now(&self) -> Result<(PushReport, PullReport), SyncError> {
        self.sync_now_with(None).await
    }

    /// [`SyncEngine::sync_now`] with a progress bar for the pull (command line).
    pub async fn sync_now_with(
        &self,
        progress: Option<&indicatif::ProgressBar>,
    ) -> Result<(PushReport, PullReport), SyncError> {
        let _ = self.db.write(syncstate::clear_stops).await;
        let push = self.push_all().await;
        if let Err(e) = &push {
            self.note_err(Pipeline::Push, e).await;
        }
        let pull = self.pull(&plan::ALL_KINDS, progress).await;
        if let Err(e) = &pull {
            self.note_err(Pipeline::Pull, e).await;
        }
        if push.is_ok() && pull.is_ok() {
            let _ = self
                .db
                .write(|c| syncstate::clear(c, syncstate::LAST_ERROR))
                .await;
            self.heartbeat().await;
        }
        self.wake.notify_one();
        Ok((push?, pull?))
    }

    /// Tells central an exception was resolved here (best effort; the local record stands).
    pub async fn resolve_central(
        &self,
        central_id: &str,
        by: &str,
        note: &str,
    ) -> Result<(), SyncError> {
        self.client
            .rpc(
                "edge_resolve_exception",
                &json!({"p_exception_id": central_id, "p_resolved_by": by, "p_note": note}),
            )
            .await
            .map(|_| ())
    }

    async fn blocked(&self, p: Pipeline) -> bool {
        matches!(
            self.db.read(move |c| syncstate::stop_reason(c, p)).await,
            Ok(Some(_))
        )
    }

    /// The background loops. A first bootstrap pulls everything (with progress on a
    /// terminal) before the regular schedule starts; then push and pull run side by side.
    pub async fn run(self: Arc<Self>, shutdown: watch::Receiver<bool>) {
        let bootstrapped = matches!(
            self.db.read(|c| meta::get(c, meta::MERCHANT_ID)).await,
            Ok(Some(_))
        );
        let mut first_full = Instant::now();
        if !bootstrapped {
            // A spinner only for a person watching a terminal; under systemd or a pipe
            // the same progress goes to the log, one line per kind.
            let bar = std::io::stderr().is_terminal().then(|| {
                let bar = indicatif::ProgressBar::new_spinner();
                bar.set_style(
                    indicatif::ProgressStyle::with_template(
                        "bootstrapping replica from central {spinner} {pos} rows ({msg})",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
                );
                bar
            });
            let progress = match &bar {
                Some(bar) => Progress::Bar(bar),
                None => {
                    tracing::info!("bootstrapping replica from central");
                    Progress::Log
                }
            };
            match self.pull_reporting(&plan::ALL_KINDS, progress).await {
                Ok(r) => {
                    if let Some(bar) = &bar {
                        // Cleared, not left on screen: the log line below says the same.
                        bar.finish_and_clear();
                    }
                    tracing::info!(rows = r.rows, "replica bootstrapped from central");
                    first_full = Instant::now() + self.full_pull_every;
                }
                Err(e) => {
                    if let Some(bar) = &bar {
                        bar.abandon();
                    }
                    self.note_err(Pipeline::Pull, &e).await;
                }
            }
        }
        tokio::join!(
            self.push_loop(shutdown.clone()),
            self.pull_loop(shutdown, first_full)
        );
    }

    /// Waits until `at`, an early wake-up (push only) or shutdown; true = shut down.
    async fn wait(
        &self,
        at: Instant,
        wakeable: bool,
        shutdown: &mut watch::Receiver<bool>,
    ) -> bool {
        tokio::select! {
            _ = tokio::time::sleep_until(at) => {}
            () = self.wake.notified(), if wakeable => {}
            r = shutdown.changed() => { if r.is_err() { return true; } }
        }
        *shutdown.borrow()
    }

    async fn push_loop(&self, mut shutdown: watch::Receiver<bool>) {
        let mut next = Instant::now();
        let mut failures = 0u32;
        loop {
            if self.wait(next, true, &mut shutdown).await {
                break;
            }
            if self.blocked(Pipeline::Push).await {
                // A permanent error stopped the push; `sync now` clears it.
                next = Instant::now() + Duration::from_secs(5);
                continue;
            }
            match self.push_all().await {
                Ok(_) => {
                    failures = 0;
                    next = Instant::now() + PUSH_EVERY;
                }
                Err(e) => {
                    self.note_err(Pipeline::Push, &e).await;
                    next = Instant::now() + plan::backoff(failures, rand::thread_rng().gen());
                    failures += 1;
                }
            }
        }
    }

    /// Tells central how this store is doing (`edge_report_status`: queue depth, oldest
    /// pending age, open exceptions, replica age, last error, version, clock), and keeps
    /// the clock skew central measured for `sync status` and the console. Head office
    /// reads the reports with `edge_list_sites`.
    pub async fn report_status(&self) -> Result<Value, SyncError> {
        let status = self
            .db
            .read(|c| syncstate::status(c, Some(0)))
            .await
            .map_err(db_err)?;
        let body = syncstate::heartbeat(&status, chrono::Utc::now());
        let v = self
            .client
            .rpc(
                "edge_report_status",
                &json!({"p_site_code": self.site_code, "p_merchant_code": self.merchant_code, "p_status": body}),
            )
            .await?;
        let skew = v["clock_skew_secs"]
            .as_f64()
            .or_else(|| v["clock_skew_secs"].as_str().and_then(|s| s.parse().ok()));
        let at = v["server_time"].as_str().unwrap_or_default().to_string();
        self.db
            .write(move |c| {
                meta::set(c, syncstate::HEARTBEAT_AT, &at)?;
                match skew {
                    Some(s) => meta::set(c, syncstate::CLOCK_SKEW_SECS, &s.to_string()),
                    None => Ok(()),
                }
            })
            .await
            .map_err(db_err)?;
        Ok(v)
    }

    /// Best effort: a failed heartbeat is logged and never stops a pipeline.
    async fn heartbeat(&self) {
        use std::sync::atomic::Ordering;
        if self.heartbeat_off.load(Ordering::Relaxed) {
            return;
        }
        if let Err(e) = self.report_status().await {
            if e.message.contains("has no function") {
                self.heartbeat_off.store(true, Ordering::Relaxed);
            }
            tracing::debug!(error = %e.message, "heartbeat not taken");
        }
    }

    async fn pull_loop(&self, mut shutdown: watch::Receiver<bool>, first_full: Instant) {
        let mut next_heartbeat = Instant::now();
        let mut next_qr = Instant::now();
        let mut next_full = first_full;
        let mut failures = 0u32;
        loop {
            if self
                .wait(next_qr.min(next_full), false, &mut shutdown)
                .await
            {
                break;
            }
            if self.blocked(Pipeline::Pull).await {
                let later = Instant::now() + Duration::from_secs(5);
                (next_qr, next_full) = (later, later);
                continue;
            }
            let full = Instant::now() >= next_full;
            let kinds: &[&str] = if full {
                &plan::ALL_KINDS
            } else {
                &plan::QR_KINDS
            };
            match self.pull(kinds, None).await {
                Ok(_) => {
                    failures = 0;
                    if Instant::now() >= next_heartbeat {
                        next_heartbeat = Instant::now() + HEARTBEAT_EVERY;
                        self.heartbeat().await;
                    }
                    next_qr = Instant::now() + QR_PULL_EVERY;
                    if full {
                        next_full = Instant::now() + self.full_pull_every;
                    }
                }
                Err(e) => {
                    self.note_err(Pipeline::Pull, &e).await;
                    let wait = plan::backoff(failures, rand::thread_rng().gen());
                    failures += 1;
                    next_qr = Instant::now() + wait;
                    if full {
                        next_full = Instant::now() + wait;
                    }
                }
            }
        }
    }
}
