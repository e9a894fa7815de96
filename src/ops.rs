//! Operator commands that inspect or drive an installation: `sync status`, `sync now`,
//! `doctor`. They open the database directly, so they work while the server runs.

use std::io::IsTerminal;
use std::process::ExitCode;

use serde_json::json;

use crate::config::Config;
use crate::db::migrate::SCHEMA_VERSION;
use crate::db::syncstate;
use crate::domain::money::format_cents;
use crate::sync::{SyncEngine, CENTRAL_SQL_VERSION};

fn app_err(e: crate::error::AppError) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

/// `mps-edge sync …` (defined here, beside what runs it, so `cli` imports `ops` and not
/// the reverse).
#[derive(clap::Subcommand, Debug)]
pub enum SyncCommand {
    /// Queue depth, oldest pending, last push/pull, last error, exceptions, replica counts.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Clear stops, push every pending operation and pull every change now (what
    /// `POST /api/v1/sync/now` does).
    Now,
}

pub fn sync_command(cfg: Config, command: SyncCommand) -> anyhow::Result<ExitCode> {
    let opened = crate::startup::open(&cfg, false)?;
    match command {
        SyncCommand::Status { json } => {
            let alert = cfg.sync_alert();
            let central = alert.is_some();
            let s = opened
                .db
                .read_blocking(|c| syncstate::status(c, alert))
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
                if central {
                    for (name, p) in [("push:", &s.push), ("pull:", &s.pull)] {
                        let state = match (p.state.as_str(), p.failing_secs) {
                            ("stopped", _) => "STOPPED".to_string(),
                            ("failing", Some(secs)) => {
                                format!("FAILING for {}", crate::sync::plan::human_secs(secs))
                            }
                            (other, _) => other.to_string(),
                        };
                        match &p.error {
                            Some(e) => println!("{name:<20}{state}: {e}"),
                            None => println!("{name:<20}{state}"),
                        }
                    }
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
                for p in &s.problems {
                    println!("PROBLEM:            {p}");
                }
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
            // The same cycle as POST /api/v1/sync/now: clear both stops, push, pull. A
            // running server sees the cleared stops on its next check (within 5 s); the
            // push lock file keeps its loop and this one from pushing at the same time.
            let result = runtime.block_on(async move {
                let engine = SyncEngine::new(&cfg, db)?;
                let bar = std::io::stderr()
                    .is_terminal()
                    .then(indicatif::ProgressBar::new_spinner);
                let r = engine.sync_now_with(bar.as_ref()).await;
                if let Some(b) = &bar {
                    b.finish_and_clear();
                }
                Ok::<_, anyhow::Error>(r)
            })?;
            opened.db.shutdown();
            match result {
                Ok((push, pull)) => {
                    println!("{}", json!({"ok": true, "push": push, "pull": pull}));
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!(
                        "sync failed ({}): {}",
                        if e.is_transient() {
                            "transient, will retry"
                        } else {
                            "permanent: fix the cause, then run `mps-edge sync now` again"
                        },
                        e.message
                    );
                    Ok(ExitCode::from(1))
                }
            }
        }
    }
}

/// Below this much free space the store risks refusing charges (SQLite cannot grow).
const MIN_FREE_BYTES: u64 = 256 << 20;

/// Local and central checks; prints one line per problem and exits non-zero if any.
pub fn doctor(cfg: Config) -> anyhow::Result<ExitCode> {
    let mut problems: Vec<String> = Vec::new();
    let mut ok: Vec<String> = Vec::new();
    if let Err(errs) = cfg.validate() {
        problems.extend(errs.into_iter().map(|e| format!("config: {e}")));
    } else {
        ok.push("configuration is valid".into());
    }
    let mut info: Vec<String> = Vec::new();
    let db_path = cfg.db_path();
    if !db_path.exists() {
        // Normal before the first `serve`, which creates it (the README runs doctor first).
        info.push(format!(
            "no database yet at {} (the first `mps-edge serve` creates it)",
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
        problems.extend(private_file_problems(&db_path, "database"));
        if let Some(alert) = cfg.sync_alert() {
            problems.extend(sync_state_problems(&db_path, alert));
        }
    }
    for (path, what) in [
        (&cfg.central.service_key_file, "central.service_key_file"),
        (&cfg.auth.jwt_secret_file, "auth.jwt_secret_file"),
    ] {
        if let Some(p) = path {
            problems.extend(private_file_problems(p, what));
        }
    }
    let jwt_file = cfg.data_dir.join("jwt.secret");
    if jwt_file.exists() {
        problems.extend(private_file_problems(&jwt_file, "jwt.secret"));
    }
    let data_dir_exists = cfg.data_dir.exists();
    if !data_dir_exists {
        info.push(format!(
            "no data directory yet at {} (the first `mps-edge serve` creates it)",
            cfg.data_dir.display()
        ));
    }
    match std::fs::metadata(&cfg.data_dir) {
        Err(_) if !data_dir_exists => {}
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
    // Before the first serve, measure the disk the data directory will be created on.
    let space_dir = cfg
        .data_dir
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or(std::path::Path::new("."));
    match fs4::available_space(space_dir) {
        Ok(free) if free < MIN_FREE_BYTES => problems.push(format!(
            "disk: only {} MiB free for {} (need at least {} MiB)",
            free / (1 << 20),
            cfg.data_dir.display(),
            MIN_FREE_BYTES / (1 << 20)
        )),
        Ok(free) => ok.push(format!("disk: {} MiB free", free / (1 << 20))),
        Err(e) => problems.push(format!(
            "disk: cannot read free space of {}: {e}",
            cfg.data_dir.display()
        )),
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
                    let features: Vec<&str> =
                        v["features"].as_array().map(|a| a.iter().filter_map(|f| f.as_str()).collect()).unwrap_or_default();
                    for needed in crate::sync::CENTRAL_FEATURES {
                        if !features.contains(needed) {
                            problems.push(format!(
                                "central: sync/central.sql lacks feature {needed}; re-run the current sync/central.sql on central"
                            ));
                        }
                    }
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
            // Does the installed sync code run on this central (upstream's triggers and
            // helpers under each function's own search_path)? Nothing is written.
            match client.rpc("edge_self_test", &json!({})).await {
                Ok(v) if v["ok"] == json!(true) => ok.push(format!(
                    "central runs the sync functions ({} probes of upstream's triggers and helpers passed)",
                    v["probes"]
                )),
                Ok(v) => {
                    for f in v["failures"].as_array().map(Vec::as_slice).unwrap_or_default() {
                        problems.push(format!(
                            "central: {} cannot run on this central ({} probe): SQLSTATE {}: {} — install the current sync/central.sql on central (sync/README.md, search_path)",
                            f["function"].as_str().unwrap_or("?"),
                            f["probe"].as_str().unwrap_or("?"),
                            f["sqlstate"].as_str().unwrap_or("?"),
                            f["message"].as_str().unwrap_or("?"),
                        ));
                    }
                }
                // an install without the feature was reported above
                Err(e) if e.message.contains("has no function") => {}
                Err(e) => problems.push(format!("central: self test: {}", e.message)),
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
    for line in &info {
        println!("info: {line}");
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

/// A secret or database file that others may read: one problem line, with the fix.
fn private_file_problems(path: &std::path::Path, what: &str) -> Vec<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        match std::fs::metadata(path) {
            Ok(m) if m.permissions().mode() & 0o004 != 0 => vec![format!(
                "{what}: {} is readable by every user (mode {:o}); fix: chmod o-rwx {}",
                path.display(),
                m.permissions().mode() & 0o777,
                path.display()
            )],
            Ok(_) => Vec::new(),
            Err(e) => vec![format!("{what}: {}: {e}", path.display())],
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (path, what);
        Vec::new()
    }
}

/// The sync pipelines as the running (or last) server left them: a stop, or a failure
/// older than `alert_after_secs`, with its cause and fix.
fn sync_state_problems(db_path: &std::path::Path, alert_after_secs: i64) -> Vec<String> {
    let conn = match rusqlite::Connection::open_with_flags(
        db_path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    ) {
        Ok(c) => c,
        Err(e) => return vec![format!("sync: cannot read the sync state: {e}")],
    };
    match syncstate::status(&conn, Some(alert_after_secs)) {
        Ok(s) => s
            .problems
            .into_iter()
            .map(|p| format!("sync: {p}"))
            .collect(),
        Err(e) => vec![format!("sync: cannot read the sync state: {e}")],
    }
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

/// An exclusive lock on `<data_dir>/mps-edge.lock`, held by a running server: a second
/// server on the same data, or a restore under a running server, is refused.
pub struct ServerLock {
    _file: std::fs::File,
}

impl ServerLock {
    fn path(cfg: &Config) -> std::path::PathBuf {
        cfg.data_dir.join("mps-edge.lock")
    }

    pub fn acquire(cfg: &Config) -> anyhow::Result<ServerLock> {
        std::fs::create_dir_all(&cfg.data_dir).map_err(|e| {
            anyhow::anyhow!(
                "cannot create data directory {}: {e}",
                cfg.data_dir.display()
            )
        })?;
        let file = crate::files::open_private(&Self::path(cfg), false)?;
        match file.try_lock() {
            Ok(()) => Ok(ServerLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
                "another mps-edge server is running on {}; stop it first",
                cfg.data_dir.display()
            ),
            Err(std::fs::TryLockError::Error(e)) => Err(e.into()),
        }
    }
}

/// `mps-edge init [--tls]`: the data directory, and a self-signed certificate whose
/// SHA-256 fingerprint POS terminals can pin.
pub fn init(cfg: Config, tls: bool, hosts: &[String], force: bool) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&cfg.data_dir)?;
    println!("data directory: {}", cfg.data_dir.display());
    if tls {
        let dir = cfg.data_dir.join("tls");
        std::fs::create_dir_all(&dir)?;
        let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
        if cert_path.exists() && !force {
            anyhow::bail!("{} exists; add --force to replace it", cert_path.display());
        }
        let (cert_pem, key_pem, fingerprint) = self_signed(hosts)?;
        std::fs::write(&cert_path, cert_pem)?;
        crate::files::write_private(&key_path, &key_pem)?;
        println!(
            "certificate: {} (hosts: {})",
            cert_path.display(),
            hosts.join(", ")
        );
        println!("private key: {} (mode 0600)", key_path.display());
        println!("SHA-256 fingerprint (pin this on the POS terminals):\n  {fingerprint}");
        println!(
            "serve with: mps-edge serve --tls-cert {} --tls-key {}\n  or in the config: [server] tls_cert = {:?}, tls_key = {:?}",
            cert_path.display(),
            key_path.display(),
            cert_path,
            key_path
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A self-signed certificate for the given names: (cert PEM, key PEM, SHA-256 fingerprint
/// of the DER certificate as colon-separated hex).
pub fn self_signed(hosts: &[String]) -> anyhow::Result<(String, String, String)> {
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(hosts.to_vec())?;
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        hosts.first().cloned().unwrap_or_else(|| "mps-edge".into()),
    );
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "mps-edge store server");
    let cert = params.self_signed(&key)?;
    use sha2::Digest;
    let digest = sha2::Sha256::digest(cert.der());
    let fingerprint = digest
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":");
    Ok((cert.pem(), key.serialize_pem(), fingerprint))
}

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
    let conn =
        rusqlite::Connection::open_with_flags(&src, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE)?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    let started = std::time::Instant::now();
    // The copy holds balances and password hashes: owner-only. VACUUM INTO accepts an
    // existing empty file and keeps its mode.
    crate::files::open_private(&tmp, true)?;
    crate::files::make_private(&tmp)?;
    conn.execute("VACUUM INTO ?1", [tmp.to_string_lossy()])?;
    verify_database(&tmp)?;
    std::fs::rename(&tmp, to)?;
    let size = std::fs::metadata(to)?.len();
    let (txs, version) = {
        let c =
            rusqlite::Connection::open_with_flags(to, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        (
            c.query_row("SELECT COUNT(*) FROM transactions", [], |r| {
                r.get::<_, i64>(0)
            })?,
            crate::db::migrate::current_version(&c)?,
        )
    };
    println!(
        "{}",
        json!({"backup": to, "bytes": size, "transactions": txs, "schema_version": version,
               "integrity": "ok", "seconds": started.elapsed().as_secs_f64()})
    );
    Ok(ExitCode::SUCCESS)
}

fn verify_database(path: &std::path::Path) -> anyhow::Result<()> {
    let c =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let result: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    if result != "ok" {
        anyhow::bail!("{} fails the integrity check: {result}", path.display());
    }
    let version = crate::db::migrate::current_version(&c)?;
    if version > SCHEMA_VERSION {
        anyhow::bail!(
            "{} has schema version {version}, newer than this mps-edge ({SCHEMA_VERSION})",
            path.display()
        );
    }
    Ok(())
}

/// `mps-edge restore --from FILE`: refused while a server holds the data directory; the
/// current database is kept beside it as `mps-edge.db.before-restore-<time>`.
pub fn restore(cfg: Config, from: &std::path::Path) -> anyhow::Result<ExitCode> {
    let _lock = ServerLock::acquire(&cfg).map_err(|e| anyhow::anyhow!("restore refused: {e}"))?;
    verify_database(from)?;
    let db = cfg.db_path();
    let mut kept = None;
    if db.exists() {
        // Fold the WAL into the main file so the kept copy is complete on its own.
        {
            let c = rusqlite::Connection::open(&db)?;
            c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        }
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
    verify_database(&db)?;
    println!(
        "{}",
        json!({"restored_from": from, "database": db, "previous_kept_as": kept})
    );
    Ok(ExitCode::SUCCESS)
}
