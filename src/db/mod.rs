//! Storage: connection setup, migrations, the single writer and the reader pool.
//! Every database call goes through here on a blocking thread, never on the executor.

pub mod approvals;
pub mod audit;
pub mod cards;
pub mod chains;
pub mod checkpoint;
pub mod demo;
pub mod devices;
pub mod freezes;
pub mod ledger;
pub mod maintenance;
pub mod meta;
pub mod migrate;
pub mod queries;
pub mod replica;
pub mod sessions;
pub mod settings;
pub mod settlements;
pub mod shifts;
pub mod signin;
pub mod staff;
pub mod topups;
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
    pub checkpointer: checkpoint::Checkpointer,
}

/// Pragmas shared by every connection; busy_timeout first so the others can wait.
fn base_pragmas(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(10))?;
    // Every statement on the hot paths goes through the per-connection cache
    // (`CachedExt`); parsing and planning them again per charge cost ~15% of a charge.
    conn.set_prepared_statement_cache_capacity(128);
    conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY;")
}

/// `execute` and `query_row` through the connection's prepared-statement cache.
pub trait CachedExt {
    fn exec_cached<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize>;
    fn row_cached<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: rusqlite::Params,
        F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>;
}

impl CachedExt for Connection {
    fn exec_cached<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    fn row_cached<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: rusqlite::Params,
        F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    {
        self.prepare_cached(sql)?.query_row(params, f)
    }
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
    // The database holds members' balances and staff password hashes: owner-only. SQLite
    // gives its -wal and -shm files the database file's mode, so creating the file 0600
    // first covers all three; an older install's files are tightened here too.
    crate::files::open_private(path, false)
        .and_then(|_| crate::files::make_private(path))
        .map_err(|e| anyhow::anyhow!("cannot create database {}: {e}", path.display()))?;
    for suffix in ["-wal", "-shm"] {
        let side = crate::files::sidecar(path, suffix);
        if side.exists() {
            crate::files::make_private(&side)
                .map_err(|e| anyhow::anyhow!("cannot restrict {}: {e}", side.display()))?;
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
    // Checkpoints run on their own thread (checkpoint.rs), never inside a group commit.
    conn.execute_batch("PRAGMA wal_autocheckpoint = 0;")?;
    let checkpointer = checkpoint::Checkpointer::start(path)?;
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
        checkpointer,
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

    /// Finishes queued writes, then runs a last checkpoint.
    pub fn shutdown(&self) {
        self.writer.shutdown();
        self.checkpointer.stop();
    }
}

/// Unix seconds as RFC 3339 (seconds precision), as the console shows times.
pub(crate) fn unix_to_rfc3339(t: i64) -> Option<String> {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
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
