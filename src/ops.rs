//! Operator commands that inspect or drive an installation: `sync status`, `sync now`,
//! `doctor`. They open the database directly, so they work while the server runs.

use std::process::ExitCode;

use serde_json::json;

use crate::cli::SyncCommand;
use crate::config::Config;
use crate::db::migrate::SCHEMA_VERSION;
use crate::db::syncstate;
use crate::domain::money::format_cents;
use crate::sync::{SyncEngine, CENTRAL_SQL_VERSION};

fn app_err(e: crate::error::AppError) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

pub fn sync_command(cfg: Config, command: SyncCommand) -> anyhow::Result<ExitCode> {
    let opened = crate::startup::open(&cfg, false)?;
    match command {
        SyncCommand::Status { json } => {
            let central = !cfg.standalone();
            let s = opened
                .db
                .read_blocking(|c| syncstate::status(c, central))
                .map_err(app_err)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                let opt = |v: &Option<String>| v.clone().unwrap_or_else(|| "never".into());
                println!("mode:               {}", s.mode);
                println!(
                    "central:            {}",
                    if central {
                        match s.online {
                            Some(true) => "online",
                            Some(false) => "OFFLINE",
                            None => "not contacted yet",
                        }
                    } else {
                        "not configured (standalone)"
                    }
                );
                if let Some(b) = &s.blocked {
                    println!("STOPPED:            {b}");
                }
                println!(
                    "queue depth:        {} operations ({} unsynced charges)",
                    s.queue_depth,
                    format_cents(s.unsynced_charges_amount)
                );
                println!(
                    "oldest pending:     {}",
                    s.oldest_pending_age_secs.map_or("-".into(), |a| format!(
                        "{a} s ago ({})",
                        s.oldest_pending_at.clone().unwrap_or_default()
                    ))
                );
                println!("last push ok:       {}", opt(&s.last_push_ok_at));
                println!("last pull ok:       {}", opt(&s.last_pull_ok_at));
                println!(
                    "last error:         {}",
                    s.last_error.clone().unwrap_or_else(|| "none".into())
                );
                println!("open exceptions:    {}", s.open_exceptions);
                println!(
                    "replica:            merchant {} · levels {} · members {} · cards {} · qr states {}",
                    s.replica.merchant, s.replica.levels, s.replica.members, s.replica.cards, s.replica.qr_states
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        SyncCommand::Now => {
            if cfg.standalone() {
                anyhow::bail!("no central is configured ([central] url); nothing to sync");
            }
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            let db = opened.db.clone();
            let result = runtime.block_on(async move {
                let engine = SyncEngine::new(&cfg, db)?;
                let bar = indicatif::ProgressBar::new_spinner();
                let push = engine.push_all().await;
                let pull = match &push {
                    Ok(_) => Some(engine.pull(&crate::sync::plan::ALL_KINDS, Some(&bar)).await),
                    Err(_) => None,
                };
                bar.finish_and_clear();
                Ok::<_, anyhow::Error>((push, pull))
            })?;
            opened.db.shutdown();
            match result {
                (Ok(push), Some(Ok(pull))) => {
                    println!("{}", json!({"ok": true, "push": push, "pull": pull}));
                    Ok(ExitCode::SUCCESS)
                }
                (Err(e), _) | (_, Some(Err(e))) => {
                    eprintln!(
                        "sync failed ({}): {}",
                        if e.is_transient() {
                            "transient, will retry"
                        } else {
                            "permanent"
                        },
                        e.message
                    );
                    Ok(ExitCode::from(1))
                }
                (Ok(_), None) => Ok(ExitCode::from(1)),
            }
        }
    }
}

/// Local and central checks; prints one line per problem and exits non-zero if any.
pub fn doctor(cfg: Config) -> anyhow::Result<ExitCode> {
    let mut problems: Vec<String> = Vec::new();
    let mut ok: Vec<String> = Vec::new();
    if let Err(errs) = cfg.validate() {
        problems.extend(errs.into_iter().map(|e| format!("config: {e}")));
    } else {
        ok.push("configuration is valid".into());
    }
    let db_path = cfg.db_path();
    if !db_path.exists() {
        problems.push(format!(
            "database: {} does not exist (start `mps-edge serve` once)",
            db_path.display()
        ));
    } else {
        match rusqlite::Connection::open_with_flags(
            &db_path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        ) {
            Ok(conn) => {
                let check: Result<String, _> =
                    conn.query_row("PRAGMA quick_check", [], |r| r.get(0));
                match check {
                    Ok(s) if s == "ok" => ok.push("database integrity ok".into()),
                    Ok(s) => problems.push(format!("database: integrity check failed: {s}")),
                    Err(e) => problems.push(format!("database: cannot check integrity: {e}")),
                }
                match crate::db::migrate::current_version(&conn) {
                    Ok(v) if v == SCHEMA_VERSION => ok.push(format!("schema version {v}")),
                    Ok(v) => problems.push(format!(
                        "database: schema version {v}, this binary expects {SCHEMA_VERSION}"
                    )),
                    Err(e) => problems.push(format!("database: cannot read schema version: {e}")),
                }
            }
            Err(e) => problems.push(format!("database: cannot open {}: {e}", db_path.display())),
        }
    }
    match std::fs::metadata(&cfg.data_dir) {
        Ok(m) => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                if m.permissions().mode() & 0o002 != 0 {
                    problems.push(format!(
                        "data directory {} is world-writable",
                        cfg.data_dir.display()
                    ));
                }
            }
            if m.permissions().readonly() {
                problems.push(format!(
                    "data directory {} is read-only",
                    cfg.data_dir.display()
                ));
            }
        }
        Err(e) => problems.push(format!("data directory {}: {e}", cfg.data_dir.display())),
    }
    if !cfg.standalone() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async {
            let client = match crate::sync::CentralClient::new(&cfg.central) {
                Ok(c) => c,
                Err(e) => {
                    problems.push(format!("central: cannot build client: {e}"));
                    return;
                }
            };
            match client.rpc("edge_sync_version", &json!({})).await {
                Ok(v) if v["version"].as_i64() == Some(CENTRAL_SQL_VERSION) => {
                    ok.push(format!("central reachable, key accepted, sync functions version {CENTRAL_SQL_VERSION}"));
                }
                Ok(v) => problems.push(format!(
                    "central: sync functions are version {}, this edge needs {CENTRAL_SQL_VERSION}: install sync/central.sql",
                    v["version"]
                )),
                Err(e) => {
                    problems.push(format!("central: {}", e.message));
                    return;
                }
            }
            let args = json!({"p_merchant_code": cfg.central.merchant_code, "p_site_code": cfg.site.code, "p_kind": "merchant", "p_limit": 1});
            match client.rpc("edge_pull_changes", &args).await {
                Ok(v) if v["rows"].as_array().is_some_and(|r| !r.is_empty()) => {
                    ok.push(format!("merchant {} found on central", cfg.central.merchant_code));
                }
                Ok(_) => problems.push(format!("central: merchant {} not found", cfg.central.merchant_code)),
                Err(e) => problems.push(format!("central: merchant {}: {}", cfg.central.merchant_code, e.message)),
            }
        });
    }
    let skew = clock_sanity();
    if let Some(p) = skew {
        problems.push(p);
    } else {
        ok.push("clock looks sane".into());
    }
    for line in &ok {
        println!("ok: {line}");
    }
    for p in &problems {
        println!("PROBLEM: {p}");
    }
    Ok(if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// A clock before this binary was built, or absurdly far ahead, breaks QR expiry and
/// transaction times.
fn clock_sanity() -> Option<String> {
    let now = chrono::Utc::now();
    let floor = chrono::DateTime::parse_from_rfc3339("2025-01-01T00:00:00Z").ok()?;
    if now < floor {
        return Some(format!(
            "clock: system time {now} is in the past; fix NTP before selling"
        ));
    }
    if now.timestamp() > floor.timestamp() + 30 * 365 * 24 * 3600 {
        return Some(format!("clock: system time {now} is implausibly far ahead"));
    }
    None
}
