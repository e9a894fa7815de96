//! The single writer: one thread owns the write connection and commits concurrent
//! writes together (group commit). Each job runs in its own SAVEPOINT, so a failing job
//! rolls back alone; the batch commits once with synchronous=FULL and only then are the
//! callers answered — an acknowledged write is durable.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;

use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::db::CachedExt;
use crate::error::{AppError, AppResult, ErrorCode};

/// Most jobs committed in one transaction.
const MAX_BATCH: usize = 256;

type Completion = Box<dyn FnOnce(bool) + Send>;
type Work = Box<dyn FnOnce(&Connection) -> Completion + Send>;

enum Msg {
    Work(Work),
    Stop,
}

#[derive(Debug, Default)]
pub struct WriterStats {
    pub batches: AtomicU64,
    pub jobs: AtomicU64,
    pub max_batch: AtomicU64,
}

#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Msg>,
    handle: Arc<Mutex<Option<JoinHandle<()>>>>,
    pub stats: Arc<WriterStats>,
}

impl Writer {
    pub fn start(conn: Connection) -> Writer {
        let (tx, rx) = mpsc::channel::<Msg>();
        let stats = Arc::new(WriterStats::default());
        let thread_stats = stats.clone();
        let handle = std::thread::Builder::new()
            .name("mps-edge-writer".into())
            .spawn(move || run(conn, rx, &thread_stats))
            .ok();
        Writer {
            tx,
            handle: Arc::new(Mutex::new(handle)),
            stats,
        }
    }

    /// Runs `f` inside the next group-committed transaction and resolves once durable.
    pub async fn write<T, F>(&self, f: F) -> AppResult<T>
    where
        F: FnOnce(&Connection) -> AppResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let rx = self.submit(f)?;
        rx.await.unwrap_or_else(|_| Err(writer_gone()))
    }

    /// The same for synchronous callers (CLI commands, blocking tasks).
    pub fn write_blocking<T, F>(&self, f: F) -> AppResult<T>
    where
        F: FnOnce(&Connection) -> AppResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let rx = self.submit(f)?;
        rx.blocking_recv().unwrap_or_else(|_| Err(writer_gone()))
    }

    fn submit<T, F>(&self, f: F) -> AppResult<oneshot::Receiver<AppResult<T>>>
    where
        F: FnOnce(&Connection) -> AppResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let work: Work = Box::new(move |conn: &Connection| {
            let result = run_job(conn, f);
            Box::new(move |committed: bool| {
                let answer = if committed {
                    result
                } else {
                    Err(AppError::internal("the write batch failed to commit"))
                };
                let _ = reply.send(answer);
            })
        });
        self.tx.send(Msg::Work(work)).map_err(|_| writer_gone())?;
        Ok(rx)
    }

    /// Finishes every job queued so far, then stops the thread.
    pub fn shutdown(&self) {
        let _ = self.tx.send(Msg::Stop);
        let handle = self.handle.lock().ok().and_then(|mut h| h.take());
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

fn writer_gone() -> AppError {
    AppError::msg(
        ErrorCode::Unavailable,
        "The database writer is shutting down.",
    )
}

fn run_job<T>(conn: &Connection, f: impl FnOnce(&Connection) -> AppResult<T>) -> AppResult<T> {
    conn.exec_cached("SAVEPOINT job", [])?;
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| f(conn)))
        .unwrap_or_else(|_| Err(AppError::internal("a write job panicked")));
    if outcome.is_err() {
        conn.exec_cached("ROLLBACK TO job", [])?;
    }
    conn.exec_cached("RELEASE job", [])?;
    outcome
}

fn run(conn: Connection, rx: mpsc::Receiver<Msg>, stats: &WriterStats) {
    let mut stop = false;
    while !stop {
        let Ok(first) = rx.recv() else { break };
        let mut batch = Vec::new();
        match first {
            Msg::Work(w) => batch.push(w),
            Msg::Stop => break,
        }
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(Msg::Work(w)) => batch.push(w),
                Ok(Msg::Stop) => {
                    stop = true;
                    break;
                }
                Err(_) => break,
            }
        }
        let n = batch.len() as u64;
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            tracing::error!(error = %e, "writer could not begin a transaction");
            // Answer every job with a failure: nothing was written.
            for w in batch {
                let done = fail_fast(w);
                done(false);
            }
            continue;
        }
        let completions: Vec<Completion> = batch.into_iter().map(|w| w(&conn)).collect();
        let committed = match conn.execute_batch("COMMIT") {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(error = %e, "group commit failed; rolling back the batch");
                let _ = conn.execute_batch("ROLLBACK");
                false
            }
        };
        stats.batches.fetch_add(1, Ordering::Relaxed);
        stats.jobs.fetch_add(n, Ordering::Relaxed);
        stats.max_batch.fetch_max(n, Ordering::Relaxed);
        crate::metrics::write_batch(n as usize);
        for c in completions {
            c(committed);
        }
    }
    // Queued work after Stop is dropped; its callers see "shutting down".
}

/// A job that cannot run: drop its closure and answer "not committed".
fn fail_fast(w: Work) -> Completion {
    drop(w);
    Box::new(|_| {})
}
