//! `mps-edge backup` and `mps-edge restore`.

use std::process::ExitCode;

use serde_json::json;

use super::ServerLock;
use crate::config::Config;
use crate::db::maintenance;

/// `mps-edge backup --to FILE`: `VACUUM INTO` reads one consistent snapshot (safe while the
/// server writes), then the copy is checked with `integrity_check` before it is kept.
pub fn backup(cfg: Config, to: &std::path::Path) -> anyhow::Result<ExitCode> {
    let src = cfg.db_path();
    if !src.exists() {
        anyhow::bail!("no database at {}", src.display());
    }
    if to.exists() {
        anyhow::bail!("{} exists; choose a new file", to.display());
    }
    let tmp = to.with_extension("partial");
    let _ = std::fs::remove_file(&tmp);
    let started = std::time::Instant::now();
    // The copy holds balances and password hashes: owner-only. VACUUM INTO accepts an
    // existing empty file and keeps its mode.
    crate::files::open_private(&tmp, true)?;
    crate::files::make_private(&tmp)?;
    maintenance::vacuum_into(&src, &tmp)?;
    let version = maintenance::verify(&tmp)?;
    std::fs::rename(&tmp, to)?;
    let size = std::fs::metadata(to)?.len();
    let txs = maintenance::transaction_count(to)?;
    println!(
        "{}",
        json!({"backup": to, "bytes": size, "transactions": txs, "schema_version": version,
               "integrity": "ok", "seconds": started.elapsed().as_secs_f64()})
    );
    Ok(ExitCode::SUCCESS)
}

/// `mps-edge restore --from FILE`: refused while a server holds the data directory; the
/// current database is kept beside it as `mps-edge.db.before-restore-<time>`.
pub fn restore(cfg: Config, from: &std::path::Path) -> anyhow::Result<ExitCode> {
    let _lock = ServerLock::acquire(&cfg).map_err(|e| anyhow::anyhow!("restore refused: {e}"))?;
    maintenance::verify(from)?;
    let db = cfg.db_path();
    let mut kept = None;
    if db.exists() {
        // Fold the WAL into the main file so the kept copy is complete on its own.
        maintenance::checkpoint_truncate(&db)?;
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
        let old = db.with_file_name(format!("mps-edge.db.before-restore-{stamp}"));
        std::fs::rename(&db, &old)?;
        for suffix in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(db.with_file_name(format!("mps-edge.db{suffix}")));
        }
        kept = Some(old);
    }
    let tmp = db.with_file_name("mps-edge.db.restoring");
    std::fs::copy(from, &tmp)?;
    crate::files::make_private(&tmp)?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, &db)?;
    maintenance::verify(&db)?;
    println!(
        "{}",
        json!({"restored_from": from, "database": db, "previous_kept_as": kept})
    );
    Ok(ExitCode::SUCCESS)
}
