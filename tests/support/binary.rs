//! The real binary as a child process: `mps-edge serve` on 127.0.0.1:0 with its URL (and,
//! on a first start in demo mode, the owner's password) read from the banner it prints,
//! and one-shot commands (`demo qr`, `backup`, `doctor`, ...).
//!
//! Integration tests run the binary Cargo built for them (`CARGO_BIN_EXE_mps-edge`); the
//! benchmark passes the path of the release binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::Duration;

use anyhow::{anyhow, Context};
use serde_json::Value;

/// Quiet logs for the child (the tests read stdout, not the log).
pub const QUIET: (&str, &str) = ("MPS_EDGE_LOG__LEVEL", "warn");

/// The binary Cargo built for this integration test (Cargo names it to integration tests
/// only; the benchmark passes its own path to [`EdgeProcess::spawn_with`]).
pub fn bin() -> PathBuf {
    match option_env!("CARGO_BIN_EXE_mps-edge") {
        Some(path) => PathBuf::from(path),
        None => panic!("CARGO_BIN_EXE_mps-edge is set for integration tests only"),
    }
}

/// Which installation a command acts on: `--data-dir DIR` or `--config FILE`.
#[derive(Debug, Clone, Copy)]
pub enum Install<'a> {
    DataDir(&'a Path),
    Config(&'a Path),
}

/// `bin --data-dir DIR` or `bin --config FILE`, nothing else set.
pub fn command_with(bin: &Path, install: Install) -> Command {
    let mut cmd = Command::new(bin);
    match install {
        Install::DataDir(dir) => cmd.arg("--data-dir").arg(dir),
        Install::Config(file) => cmd.arg("--config").arg(file),
    };
    cmd
}

/// [`command_with`] for the test binary.
pub fn command(install: Install) -> Command {
    command_with(&bin(), install)
}

/// Runs the test binary with `args` to completion, logs kept quiet.
pub fn cli(install: Install, args: &[&str]) -> Output {
    command(install)
        .args(args)
        .env(QUIET.0, QUIET.1)
        .output()
        .expect("running mps-edge")
}

/// The JSON `demo ARGS` prints (ARGS ending in `--json`), from a successful run.
#[track_caller]
pub fn demo_json(data: &Path, args: &[&str]) -> Value {
    let out = cli(Install::DataDir(data), &[&["demo"], args].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A live demo QR token (valid for an hour) for `card`, issued by `demo qr`.
#[track_caller]
pub fn demo_qr(data: &Path, card: &str) -> String {
    let v = demo_json(data, &["qr", "--card", card, "--ttl", "3600", "--json"]);
    v["qr_plain"].as_str().unwrap().to_string()
}

/// A running `mps-edge serve`. Dropping it kills the process if it still runs.
pub struct EdgeProcess {
    pub child: Child,
    /// `http://127.0.0.1:PORT` (or `https://` when serving TLS)
    pub url: String,
    /// The owner's password, printed on the first start of a demo installation only.
    pub password: Option<String>,
}

impl EdgeProcess {
    /// `bin <install> serve --listen 127.0.0.1:0 <serve_args>` with `envs`; waits (at most
    /// 30 s) until the banner has been printed. Its stdout is drained for as long as it
    /// runs, its stderr discarded.
    pub fn spawn_with(
        bin: &Path,
        install: Install,
        serve_args: &[&str],
        envs: &[(&str, &str)],
    ) -> anyhow::Result<EdgeProcess> {
        let mut child = command_with(bin, install)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(serve_args)
            // Load tests come from one address (see server::default_config); `envs` may
            // turn the limit back on.
            .env("MPS_EDGE_SERVER__RATE_LIMIT_PER_SEC", "0")
            .envs(envs.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut banner = Banner::default();
            let mut tx = Some(tx);
            // Keep reading after the banner so the server never blocks on a full pipe.
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if banner.read(&line) {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(std::mem::take(&mut banner));
                    }
                }
            }
        });
        let banner = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(b) => b,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(anyhow!("{} printed no banner: {e}", bin.display()));
            }
        };
        Ok(EdgeProcess {
            child,
            url: banner.url.ok_or_else(|| anyhow!("no URL in the banner"))?,
            password: banner.password,
        })
    }

    /// [`EdgeProcess::spawn_with`] for the test binary.
    pub fn start(install: Install, serve_args: &[&str], envs: &[(&str, &str)]) -> EdgeProcess {
        EdgeProcess::spawn_with(&bin(), install, serve_args, envs).expect("start mps-edge")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM (a graceful stop, as systemd would ask for it).
    pub fn sigterm(&self) -> std::io::Result<ExitStatus> {
        Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
    }

    /// SIGTERM, then waits for the exit.
    pub fn terminate(&mut self) -> ExitStatus {
        assert!(self.sigterm().unwrap().success());
        self.child.wait().unwrap()
    }

    /// SIGTERM, then waits at most `grace` for the exit before killing it. Whether it
    /// exited on its own.
    pub fn terminate_within(&mut self, grace: Duration) -> std::io::Result<bool> {
        let _ = self.sigterm();
        let deadline = std::time::Instant::now() + grace;
        while std::time::Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(true);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if self.child.try_wait()?.is_some() {
            return Ok(true);
        }
        self.kill9()?;
        Ok(false)
    }

    /// SIGKILL (`kill -9`), then waits for the exit.
    pub fn kill9(&mut self) -> std::io::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for EdgeProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// What `serve` prints before it serves.
#[derive(Debug, Default)]
struct Banner {
    url: Option<String>,
    password: Option<String>,
}

impl Banner {
    /// Takes one line; true once the banner is complete: after the owner line in demo mode,
    /// after the mode line otherwise.
    fn read(&mut self, line: &str) -> bool {
        if let Some(rest) = line.split("listening on ").nth(1) {
            self.url = Some(rest.trim().to_string());
        }
        if let Some(rest) = line.split("password ").nth(1) {
            self.password = Some(rest.trim().to_string());
        }
        line.contains("test charge")
            || line.contains("owner account exists")
            || (line.contains("mode:") && !line.contains("DEMO"))
    }
}
