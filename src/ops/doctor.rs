//! `mps-edge doctor`: local and central checks, one line per finding.

use std::process::ExitCode;

use serde_json::json;

use crate::config::Config;
use crate::db::maintenance;
use crate::db::migrate::SCHEMA_VERSION;
use crate::sync::CENTRAL_SQL_VERSION;

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
        match maintenance::health(&db_path) {
            Ok(h) => {
                match h.quick_check {
                    Ok(s) if s == "ok" => ok.push("database integrity ok".into()),
                    Ok(s) => problems.push(format!("database: integrity check failed: {s}")),
                    Err(e) => problems.push(format!("database: cannot check integrity: {e}")),
                }
                match h.schema_version {
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
        (&cfg.central.anon_key_file, "central.anon_key_file"),
        (&cfg.central.site_key_file, "central.site_key_file"),
        (&cfg.daemon.secret_file, "daemon.secret_file"),
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
    if !cfg.standalone() && crate::sync::client::uses_service_key(&cfg.central) {
        problems.push(
            "central.service_key: this store holds central's service_role key, which bypasses RLS on the \
             whole project (one stolen box can read and rewrite every merchant); register the store with \
             edge_register_site and set central.anon_key_file and central.site_key_file instead"
                .into(),
        );
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
                    let keyed = !crate::sync::client::uses_service_key(&cfg.central);
                    for needed in crate::sync::CENTRAL_FEATURES.iter().chain(keyed.then_some(&"site_keys")) {
                        if !features.contains(needed) {
                            problems.push(format!(
                                "central: sync/central.sql lacks feature {needed}; re-run the current sync/central.sql on central"
                            ));
                        }
                    }
                    if let Some(site) = v["site_code"].as_str() {
                        let merchant = v["merchant_code"].as_str().unwrap_or("?");
                        if site == cfg.site.code && merchant == cfg.central.merchant_code {
                            ok.push(format!("central knows the site key as site {site} of merchant {merchant}"));
                        } else {
                            problems.push(format!(
                                "central: the site key belongs to site {site} of merchant {merchant}, but this store is configured as site {} of merchant {}",
                                cfg.site.code, cfg.central.merchant_code
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
    match maintenance::read(db_path, |c| {
        crate::sync::state::status(c, Some(alert_after_secs))
    }) {
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
