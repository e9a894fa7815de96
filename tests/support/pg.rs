//! A throwaway PostgreSQL cluster for tests.
//!
//! `PgCluster::start()` runs `initdb` into a fresh temp directory and starts a
//! server that listens only on 127.0.0.1 on a free port (its unix socket lives
//! inside the temp directory). When the test runs as root, the server binaries
//! run as `nobody` through `runuser -u nobody --` (PostgreSQL refuses to run as
//! root) and the directory is chowned to `nobody`; `psql` is a client and runs
//! as the current user. Dropping the cluster stops the server
//! (`pg_ctl stop -m immediate`) and removes the directory.
//!
//! The server binaries come from PATH or else from the newest
//! `/usr/lib/postgresql/<version>/bin`. The database superuser is `postgres`
//! with trust authentication, the server TimeZone is UTC and fsync is off.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};

/// Name of the database that [`PgCluster::start_central`] creates.
pub const CENTRAL_DB: &str = "mps_central";

/// A running (or stopped) throwaway cluster. See the module docs.
pub struct PgCluster {
    port: u16,
    bins: PgBins,
    as_nobody: bool,
    running: AtomicBool,
    data: PathBuf,
    log: PathBuf,
    // Last: removed after the server has been stopped in Drop.
    dir: tempfile::TempDir,
}

#[derive(Debug, Clone)]
struct PgBins {
    initdb: PathBuf,
    pg_ctl: PathBuf,
    psql: PathBuf,
}

impl PgCluster {
    /// initdb + start on a free 127.0.0.1 port. Takes about a second.
    pub fn start() -> anyhow::Result<PgCluster> {
        let bins = find_bins()?;
        let as_nobody = running_as_root();
        let dir = tempfile::Builder::new()
            .prefix("mps-edge-pg.")
            .tempdir()
            .context("creating the cluster's temp dir")?;
        // nobody must be able to reach the data dir and the socket dir
        run_checked(
            Command::new("chmod").arg("755").arg(dir.path()),
            "chmod the cluster dir",
        )?;
        if as_nobody {
            run_checked(
                Command::new("chown")
                    .arg("-R")
                    .arg("nobody")
                    .arg(dir.path()),
                "chown the cluster dir to nobody",
            )?;
        }
        let data = dir.path().join("data");
        let log = dir.path().join("server.log");
        let cluster = PgCluster {
            port: 0,
            bins,
            as_nobody,
            running: AtomicBool::new(false),
            data,
            log,
            dir,
        };

        let mut initdb = cluster.server_cmd(&cluster.bins.initdb);
        initdb
            .arg("-D")
            .arg(&cluster.data)
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .current_dir(cluster.dir.path());
        run_checked(&mut initdb, "initdb")?;

        // The port can be taken between probing and binding: retry a few times.
        let mut cluster = cluster;
        let mut last_err = None;
        for _ in 0..5 {
            cluster.port = free_port()?;
            match cluster.pg_ctl_start() {
                Ok(()) => {
                    cluster.running.store(true, Ordering::SeqCst);
                    return Ok(cluster);
                }
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap_or_else(|| anyhow!("the cluster did not start")))
    }

    /// Starts a cluster, creates [`CENTRAL_DB`] and loads the central schema
    /// into it (see [`PgCluster::load_central`]).
    pub fn start_central() -> anyhow::Result<PgCluster> {
        let pg = PgCluster::start()?;
        pg.create_db(CENTRAL_DB)?;
        pg.load_central(CENTRAL_DB)?;
        Ok(pg)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The temp directory holding `data/`, `server.log` and the unix socket.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `postgres://postgres@127.0.0.1:PORT/<db>` (trust auth, no password).
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::SeqCst)
    }

    /// The server log so far (for failure messages).
    pub fn server_log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `create database "<name>"`.
    pub fn create_db(&self, name: &str) -> anyhow::Result<()> {
        self.psql_command(
            "postgres",
            &format!("create database {}", quote_ident(name)),
        )?;
        Ok(())
    }

    /// `psql -v ON_ERROR_STOP=1 -f <path>` against `db`, as the current OS user.
    pub fn psql_file(&self, db: &str, path: &Path) -> anyhow::Result<()> {
        let mut cmd = self.psql(db);
        cmd.arg("-v").arg("ON_ERROR_STOP=1").arg("-f").arg(path);
        run_checked(&mut cmd, &format!("psql -f {}", path.display()))?;
        Ok(())
    }

    /// Runs SQL through `psql -c` (ON_ERROR_STOP) and returns the unaligned,
    /// tuples-only output (`-At`, `|` between columns, one row per line),
    /// trimmed. Handy for test assertions on the database state.
    pub fn psql_command(&self, db: &str, sql: &str) -> anyhow::Result<String> {
        let mut cmd = self.psql(db);
        cmd.args(["-v", "ON_ERROR_STOP=1", "-A", "-t", "-c"])
            .arg(sql);
        let out = run_checked(&mut cmd, "psql -c")?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// Loads the central schema into `db`, then `sync/central.sql`.
    ///
    /// By default the central schema is our fixture,
    /// `tests/fixtures/central/upstream.sql`. When [`UPSTREAM_DIR_ENV`] names a
    /// checkout of the upstream repository, it is instead our Supabase stand-in
    /// `tests/fixtures/central/supabase-shim.sql` followed by upstream's own
    /// [`UPSTREAM_FILES`], read from the checkout at run time (see
    /// [`central_flavour`]).
    pub fn load_central(&self, db: &str) -> anyhow::Result<()> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        match upstream_dir()? {
            None => {
                self.psql_file(db, &root.join("tests/fixtures/central/upstream.sql"))?;
            }
            Some(dir) => {
                self.psql_file(db, &root.join("tests/fixtures/central/supabase-shim.sql"))?;
                for f in UPSTREAM_FILES {
                    self.psql_file(db, &dir.join(f))?;
                }
            }
        }
        self.psql_file(db, &root.join("sync/central.sql"))?;
        Ok(())
    }

    /// Stops the server (`pg_ctl stop -m fast`): committed data stays, clients
    /// get disconnected and new connections are refused until
    /// [`PgCluster::start_again`].
    pub fn stop(&self) -> anyhow::Result<()> {
        let mut cmd = self.server_cmd(&self.bins.pg_ctl);
        cmd.arg("-D")
            .arg(&self.data)
            .args(["-m", "fast", "-w", "-t", "60", "stop"]);
        run_checked(&mut cmd, "pg_ctl stop")?;
        self.running.store(false, Ordering::SeqCst);
        Ok(())
    }

    /// Starts the stopped server again on the SAME port. Retries for a few
    /// seconds in case the port is briefly busy.
    pub fn start_again(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.pg_ctl_start() {
                Ok(()) => {
                    self.running.store(true, Ordering::SeqCst);
                    return Ok(());
                }
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    fn pg_ctl_start(&self) -> anyhow::Result<()> {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c TimeZone=UTC -c fsync=off \
             -c synchronous_commit=off -c full_page_writes=off -c max_connections=100",
            self.port,
            self.dir.path().display()
        );
        let mut cmd = self.server_cmd(&self.bins.pg_ctl);
        cmd.arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(&self.log)
            .args(["-w", "-t", "60", "-o"])
            .arg(opts)
            .arg("start")
            .current_dir(self.dir.path());
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .context("running pg_ctl start")?;
        if !out.status.success() {
            bail!(
                "pg_ctl start failed ({}): {}{}\n-- server.log --\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                self.server_log()
            );
        }
        Ok(())
    }

    /// A command for a server binary: through `runuser -u nobody --` as root.
    fn server_cmd(&self, bin: &Path) -> Command {
        if self.as_nobody {
            let mut c = Command::new("runuser");
            c.args(["-u", "nobody", "--"]).arg(bin);
            c
        } else {
            Command::new(bin)
        }
    }

    fn psql(&self, db: &str) -> Command {
        let mut c = Command::new(&self.bins.psql);
        c.args(["-X", "-q", "-h", "127.0.0.1", "-U", "postgres"])
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-d")
            .arg(db)
            .env("PGTZ", "UTC")
            .env("PGCONNECT_TIMEOUT", "10")
            .env_remove("PGPASSWORD")
            .env_remove("PGSERVICE")
            .env_remove("PGOPTIONS");
        c
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if self.data.join("postmaster.pid").exists() {
            let mut cmd = self.server_cmd(&self.bins.pg_ctl);
            cmd.arg("-D")
                .arg(&self.data)
                .args(["-m", "immediate", "-w", "-t", "30", "stop"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let _ = cmd.status();
        }
        // the TempDir field removes the directory after this
    }
}

/// Environment variable naming a checkout (work tree) of the upstream
/// repository superkevinyen/MemberPaymentSystem. When set and non-empty,
/// [`PgCluster::load_central`] loads the real upstream SQL from it instead of
/// our fixture (`scripts/upstream-acceptance.sh` sets it).
pub const UPSTREAM_DIR_ENV: &str = "MPS_UPSTREAM_DIR";

/// Upstream's SQL files, relative to the checkout, in load order.
pub const UPSTREAM_FILES: [&str; 3] = [
    "schema/mps_schema.sql",
    "rpc/mps_rpc.sql",
    "rpc/mps_identifier_rpc.sql",
];

/// Which central [`PgCluster::load_central`] loads: `"upstream"` (the real
/// upstream SQL from [`UPSTREAM_DIR_ENV`]) or `"fixture"`
/// (`tests/fixtures/central/upstream.sql`).
pub fn central_flavour() -> &'static str {
    match std::env::var_os(UPSTREAM_DIR_ENV) {
        Some(v) if !v.is_empty() => "upstream",
        _ => "fixture",
    }
}

/// The upstream checkout named by [`UPSTREAM_DIR_ENV`], if set; an error when
/// it is set but does not hold [`UPSTREAM_FILES`] (a typo must not silently
/// fall back to the fixture).
pub fn upstream_dir() -> anyhow::Result<Option<PathBuf>> {
    let Some(v) = std::env::var_os(UPSTREAM_DIR_ENV).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let dir = PathBuf::from(v);
    for f in UPSTREAM_FILES {
        if !dir.join(f).is_file() {
            bail!(
                "{UPSTREAM_DIR_ENV}={} is not an upstream checkout: {f} is missing",
                dir.display()
            );
        }
    }
    Ok(Some(dir))
}

/// `"name"` with inner quotes doubled.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn run_checked(cmd: &mut Command, what: &str) -> anyhow::Result<Output> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out)
}

fn free_port() -> anyhow::Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("probing for a free port")?;
    Ok(l.local_addr()?.port())
}

/// Root check without libc: the real uid on the `Uid:` line of /proc/self/status.
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// initdb/pg_ctl/postgres from one directory: the first PATH entry that has
/// all three, else the newest /usr/lib/postgresql/<version>/bin. psql from
/// the same directory when present, else from PATH.
fn find_bins() -> anyhow::Result<PgBins> {
    let has_all = |d: &Path| {
        ["initdb", "pg_ctl", "postgres"]
            .iter()
            .all(|b| d.join(b).is_file())
    };
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    let mut versioned: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| {
                    let name = e.file_name().to_string_lossy().to_string();
                    let key: Vec<u32> = name.split('.').map(|p| p.parse().unwrap_or(0)).collect();
                    (key, e.path().join("bin"))
                })
                .collect()
        })
        .unwrap_or_default();
    versioned.sort_by(|a, b| b.0.cmp(&a.0));
    dirs.extend(versioned.into_iter().map(|(_, p)| p));
    let dir = dirs.into_iter().find(|d| has_all(d)).ok_or_else(|| {
        anyhow!("cannot find initdb, pg_ctl and postgres (PATH or /usr/lib/postgresql/*/bin)")
    })?;
    let psql = if dir.join("psql").is_file() {
        dir.join("psql")
    } else {
        std::env::var_os("PATH")
            .and_then(|p| {
                std::env::split_paths(&p)
                    .map(|d| d.join("psql"))
                    .find(|p| p.is_file())
            })
            .ok_or_else(|| anyhow!("cannot find psql"))?
    };
    Ok(PgBins {
        initdb: dir.join("initdb"),
        pg_ctl: dir.join("pg_ctl"),
        psql,
    })
}
