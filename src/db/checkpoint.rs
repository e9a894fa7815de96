//! WAL checkpoints off the write path.
//!
//! SQLite's automatic checkpoint runs inside the COMMIT that crosses 1,000 WAL pages, so
//! every few hundred charges one unlucky group commit also copies the WAL into the main
//! file and fsyncs it, and every caller in that batch waits. The writer turns the
//! automatic checkpoint off and this thread runs PASSIVE checkpoints on its own
//! connection instead: they never block the writer or readers, and the WAL is reused
//! from its start once a checkpoint has caught up.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

/// How often the WAL is checked. At several thousand charges/s this keeps it to a few MB.
const INTERVAL: Duration = Duration::from_millis(250);

#[derive(Clone)]
pub struct Checkpointer {
    stop: Arc<AtomicBool>,
    handle: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl Checkpointer {
    pub fn start(path: &Path) -> anyhow::Result<Checkpointer> {
        let conn = Connection::open(path)?;
        super::base_pragmas(&conn)?;
        // The checkpoint fsyncs the database file before it lets the WAL be reused.
        conn.execute_batch("PRAGMA synchronous = FULL;")?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name("mps-edge-checkpoint".into())
            .spawn(move || run(&conn, &flag))?;
        Ok(Checkpointer {
            stop,
            handle: Arc::new(Mutex::new(Some(handle))),
        })
    }

    /// Stops the thread after one last checkpoint.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        let handle = self.handle.lock().ok().and_then(|mut h| h.take());
        if let Some(h) = handle {
            h.thread().unpark();
            let _ = h.join();
        }
    }
}

fn run(conn: &Connection, stop: &AtomicBool) {
    loop {
        let stopping = stop.load(Ordering::Acquire);
        // (busy, WAL frames, frames checkpointed); a busy result only means a reader
        // still needs old frames: the next round catches up.
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        }) {
            tracing::warn!(error = %e, "WAL checkpoint failed; retrying");
        }
        if stopping {
            break;
        }
        std::thread::park_timeout(INTERVAL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wal_frames(conn: &Connection) -> i64 {
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1))
            .unwrap()
    }

    #[test]
    fn the_writer_does_not_checkpoint_and_the_thread_does() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::db::open(&dir.path().join("t.db")).unwrap();
        // Stop the background thread so only the writer could checkpoint.
        db.checkpointer.stop();
        for i in 0..800 {
            db.write_blocking(move |c| {
                c.execute(
                    "INSERT INTO meta(key, value) VALUES (?1, ?2)",
                    rusqlite::params![format!("k{i}"), "x".repeat(4000)],
                )?;
                Ok(())
            })
            .unwrap();
        }
        let wal = dir.path().join("t.db-wal");
        let before = std::fs::metadata(&wal).unwrap().len();
        assert!(
            before > 2_000 * 4096,
            "the WAL grew past the automatic threshold: {before}"
        );
        // A new checkpointer catches up; afterwards the writer reuses the WAL from its start.
        let cp = Checkpointer::start(&dir.path().join("t.db")).unwrap();
        cp.stop();
        db.write_blocking(|c| {
            c.execute("INSERT INTO meta(key, value) VALUES ('after', 'x')", [])?;
            Ok(())
        })
        .unwrap();
        let conn = Connection::open(dir.path().join("t.db")).unwrap();
        assert!(
            wal_frames(&conn) < 10,
            "the WAL restarted after the checkpoint"
        );
        db.shutdown();
    }
}
