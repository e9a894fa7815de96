//! Storage: connection setup, migrations, the single writer and the reader pool.
//! Every database call goes through here on a blocking thread, never on the executor.

pub mod cards;
pub mod console;
pub mod demo;
pub mod ledger;
pub mod meta;
pub mod migrate;
pub mod queries;
pub mod replica;
pub mod syncstate;
pub mod users;
pub mod writer;

use std::path::{Path, PathBuf};
use std::time::Duration;

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::Connection;

use crate::error::{AppError, AppResult};
pub use writer::Writer;

pub type ReadPool = r2d2::Pool<SqliteConnectionManager>;

#[derive(Clone)]
pub struct Db {
    pub path: PathBuf,
    pub writer: Writer,
    pub readers: ReadPool,
}

/// Pragmas shared by every connection; busy_timeout first so the others can wait.
fn base_pragmas(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.execute_batch("PRAGMA foreign_keys = ON;")
}

/// Opens (creating if needed) the database, applies migrations and starts the writer.
pub fn open(path: &Path) -> anyhow::Result<Db> {
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir).map_err(|e| {
                anyhow::anyhow!("cannot create data directory {}: {e}", dir.display())
            })?;
        }
    }
    let mut conn = Connection::open(path)
        .map_err(|e| anyhow::anyhow!("cannot open database {}: {e}", path.display()))?;
    base_pragmas(&conn)?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        anyhow::bail!(
            "could not switch {} to WAL mode (got {mode})",
            path.display()
        );
    }
    // FULL: the WAL is fsynced at every commit, so an acknowledged charge survives
    // power loss, not only a process crash.
    conn.execute_batch("PRAGMA synchronous = FULL;")?;
    migrate::migrate(&mut conn)?;
    let manager = SqliteConnectionManager::file(path).with_init(|c| {
        base_pragmas(c)?;
        c.execute_batch("PRAGMA query_only = ON;")
    });
    let readers = r2d2::Pool::builder()
        .max_size(8)
        .connection_timeout(Duration::from_secs(10))
        .build(manager)?;
    Ok(Db {
        path: path.to_path_buf(),
        writer: Writer::start(conn),
        readers,
    })
}

impl Db {
    /// Runs a read on a blocking thread with a pooled connection.
    pub async fn read<T, F>(&self, f: F) -> AppResult<T>
    where
        F: FnOnce(&Connection) -> AppResult<T> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            let conn = pool.get()?;
            f(&conn)
        })
        .await
        .map_err(|e| AppError::internal(format!("read task failed: {e}")))?
    }

    /// A read for synchronous callers.
    pub fn read_blocking<T>(&self, f: impl FnOnce(&Connection) -> AppResult<T>) -> AppResult<T> {
        let conn = self.readers.get()?;
        f(&conn)
    }

    pub async fn write<T, F>(&self, f: F) -> AppResult<T>
    where
        F: FnOnce(&Connection) -> AppResult<T> + Send + 'static,
        T: Send + 'static,
    {
        self.writer.write(f).await
    }

    pub fn write_blocking<T, F>(&self, f: F) -> AppResult<T>
    where
        F: FnOnce(&Connection) -> AppResult<T> + Send + 'static,
        T: Send + 'static,
    {
        self.writer.write_blocking(f)
    }

    pub fn shutdown(&self) {
        self.writer.shutdown();
    }
}

/// Current UTC time as RFC 3339 with microseconds, the wire format.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

pub fn now_unix() -> i64 {
    chrono::Utc::now().timestamp()
}

pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
