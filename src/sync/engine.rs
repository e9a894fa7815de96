//! The sync engine: drains the outbox in order (one batch in flight at a time, the next
//! only after the previous is acknowledged), pulls replica changes (QR states often, the
//! rest less often), retries transient failures with backoff and jitter, and stops on
//! permanent ones with the cause shown — never discarding an operation.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use serde_json::{json, Value};
use tokio::sync::{watch, Mutex, Notify};
use tokio::time::Instant;

use super::client::{CentralClient, SyncError};
use super::plan::{self, Cursor, PULL_PAGE, PUSH_BATCH};
use crate::config::Config;
use crate::db::replica::{apply_page, apply_push_results, OpResult};
use crate::db::{meta, syncstate, Db};
use crate::error::AppError;

const QR_PULL_EVERY: Duration = Duration::from_secs(5);
const FULL_PULL_EVERY: Duration = Duration::from_secs(60);
const PUSH_EVERY: Duration = Duration::from_secs(2);

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct PushReport {
    pub batches: usize,
    pub applied: usize,
    pub rejected: usize,
}

#[derive(Debug, Default, Clone, serde::Serialize)]
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
    pull_lock: Mutex<()>,
    wake: Notify,
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
            pull_lock: Mutex::new(()),
            wake: Notify::new(),
        }))
    }

    pub fn client(&self) -> &CentralClient {
        &self.client
    }

    /// Asks the loop to push soon (after a local charge or refund).
    pub fn notify(&self) {
        self.wake.notify_one();
    }

    async fn note_ok(&self, key: &'static str) {
        let now = crate::db::now_rfc3339();
        let _ = self
            .db
            .write(move |c| {
                meta::set(c, key, &now)?;
                meta::set(c, syncstate::ONLINE, "1")
            })
            .await;
    }

    async fn note_err(&self, e: &SyncError) {
        crate::metrics::sync_result("cycle", false);
        let msg = e.message.clone();
        let permanent = !e.is_transient();
        let now = crate::db::now_rfc3339();
        let _ = self
            .db
            .write(move |c| {
                meta::set(c, syncstate::LAST_ERROR, &msg)?;
                meta::set(c, syncstate::LAST_ERROR_AT, &now)?;
                if permanent {
                    meta::set(c, syncstate::BLOCKED, &msg)?;
                } else {
                    meta::set(c, syncstate::ONLINE, "0")?;
                }
                Ok(())
            })
            .await;
        tracing::warn!(permanent, error = %e.message, "sync step failed");
    }

    /// Pushes every pending operation, batch after batch, in outbox order.
    pub async fn push_all(&self) -> Result<PushReport, SyncError> {
        let _guard = self.push_lock.lock().await;
        let mut report = PushReport::default();
        loop {
            let rows = self
                .db
                .read(|c| syncstate::pending_ops(c, PUSH_BATCH))
                .await
                .map_err(db_err)?;
            if rows.is_empty() {
                break;
            }
            let ops = plan::batch_ops(&rows)
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
            let (applied, rejected) = self
                .db
                .write(move |c| apply_push_results(c, &results))
                .await
                .map_err(db_err)?;
            report.batches += 1;
            report.applied += applied;
            report.rejected += rejected;
            if rejected > 0 {
                tracing::warn!(rejected, "central rejected operations; see sync exceptions");
            }
        }
        self.note_ok(syncstate::LAST_PUSH_OK).await;
        crate::metrics::sync_result("push", true);
        Ok(report)
    }

    /// Pulls the given kinds to the end, page by page, from each kind's cursor (moved back
    /// by the overlap window).
    pub async fn pull(
        &self,
        kinds: &[&str],
        progress: Option<&indicatif::ProgressBar>,
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
                if let Some(p) = progress {
                    p.inc(n as u64);
                    p.set_message(kind.to_string());
                }
                if !has_more || next.is_none() {
                    break;
                }
                at = next;
            }
        }
        if kinds.contains(&"cards") {
            let now = chrono::Utc::now().timestamp().to_string();
            self.db
                .write(move |c| meta::set(c, meta::REPLICA_REFRESHED_UNIX, &now))
                .await
                .map_err(db_err)?;
        }
        self.note_ok(syncstate::LAST_PULL_OK).await;
        crate::metrics::sync_result("pull", true);
        Ok(report)
    }

    /// On a QR miss while central may be reachable: fetch QR changes now. Bounded, so a
    /// charge never waits long on a dead link. Returns whether the pull succeeded (the
    /// token may also have arrived through the background loop in the meantime, so the
    /// caller retries either way; a repeat miss is answered from the negative cache).
    pub async fn pull_qr_now(&self) -> bool {
        match tokio::time::timeout(Duration::from_secs(3), self.pull(&["qr_states"], None)).await {
            Ok(Ok(_)) => true,
            Ok(Err(e)) => {
                self.note_err(&e).await;
                false
            }
            Err(_) => false,
        }
    }

    /// One manual cycle: clear a stop, push everything, pull everything.
    pub async fn sync_now(&self) -> Result<(PushReport, PullReport), SyncError> {
        let _ = self
            .db
            .write(|c| syncstate::clear(c, syncstate::BLOCKED))
            .await;
        let result = async {
            let push = self.push_all().await?;
            let pull = self.pull(&plan::ALL_KINDS, None).await?;
            Ok::<_, SyncError>((push, pull))
        }
        .await;
        if let Err(e) = &result {
            self.note_err(e).await;
        } else {
            let _ = self
                .db
                .write(|c| syncstate::clear(c, syncstate::LAST_ERROR))
                .await;
        }
        self.wake.notify_one();
        result
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

    async fn blocked(&self) -> bool {
        matches!(
            self.db.read(|c| meta::get(c, syncstate::BLOCKED)).await,
            Ok(Some(_))
        )
    }

    /// The background loop. A first bootstrap pulls everything (with progress on a
    /// terminal) before the regular schedule starts.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let bootstrapped = matches!(
            self.db.read(|c| meta::get(c, meta::MERCHANT_ID)).await,
            Ok(Some(_))
        );
        let mut next_push = Instant::now();
        let mut next_qr = Instant::now();
        let mut next_full = Instant::now();
        let (mut push_failures, mut pull_failures) = (0u32, 0u32);
        if !bootstrapped {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "bootstrapping replica from central {spinner} {pos} rows ({msg})",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            match self.pull(&plan::ALL_KINDS, Some(&bar)).await {
                Ok(r) => {
                    bar.finish_with_message(format!("done: {} rows", r.rows));
                    tracing::info!(rows = r.rows, "replica bootstrapped from central");
                    next_full = Instant::now() + FULL_PULL_EVERY;
                    next_qr = Instant::now() + QR_PULL_EVERY;
                }
                Err(e) => {
                    bar.abandon();
                    self.note_err(&e).await;
                }
            }
        }
        loop {
            let due = next_push.min(next_qr).min(next_full);
            tokio::select! {
                _ = tokio::time::sleep_until(due) => {}
                () = self.wake.notified() => { next_push = Instant::now(); }
                _ = shutdown.changed() => {}
            }
            if *shutdown.borrow() {
                break;
            }
            if self.blocked().await {
                // A permanent error stopped the pipeline; `sync now` clears it.
                let later = Instant::now() + Duration::from_secs(5);
                next_push = later;
                next_qr = later;
                next_full = later;
                continue;
            }
            let now = Instant::now();
            if now >= next_push {
                match self.push_all().await {
                    Ok(_) => {
                        push_failures = 0;
                        next_push = Instant::now() + PUSH_EVERY;
                    }
                    Err(e) => {
                        self.note_err(&e).await;
                        next_push =
                            Instant::now() + plan::backoff(push_failures, rand::thread_rng().gen());
                        push_failures += 1;
                    }
                }
            }
            let now = Instant::now();
            if now >= next_full || now >= next_qr {
                let full = now >= next_full;
                let kinds: &[&str] = if full {
                    &plan::ALL_KINDS
                } else {
                    &["qr_states"]
                };
                match self.pull(kinds, None).await {
                    Ok(_) => {
                        pull_failures = 0;
                        next_qr = Instant::now() + QR_PULL_EVERY;
                        if full {
                            next_full = Instant::now() + FULL_PULL_EVERY;
                        }
                    }
                    Err(e) => {
                        self.note_err(&e).await;
                        let wait = plan::backoff(pull_failures, rand::thread_rng().gen());
                        pull_failures += 1;
                        next_qr = Instant::now() + wait;
                        if full {
                            next_full = Instant::now() + wait;
                        }
                    }
                }
            }
        }
    }
}
