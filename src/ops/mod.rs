//! Operator commands that inspect or drive an installation, one file each: `sync
//! status` and `sync now` (here), `doctor`, `init`, `backup` and `restore`. They reach the
//! database only through `db` (the server's `Db`, or `db::maintenance` for files opened by
//! path), so they work while the server runs.

mod backup;
mod doctor;
mod init;

pub use backup::{backup, restore};
pub use doctor::doctor;
pub use init::{init, self_signed};

use std::io::IsTerminal;
use std::process::ExitCode;

use serde_json::json;

use crate::config::Config;
use crate::domain::money::format_cents;
use crate::sync::state as syncstate;
use crate::sync::SyncEngine;

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
                        use crate::sync::plan::{human_secs, PipelineState};
                        let state = match (p.state, p.failing_secs) {
                            (PipelineState::Stopped, _) => "STOPPED".to_string(),
                            (PipelineState::Failing, Some(secs)) => {
                                format!("FAILING for {}", human_secs(secs))
                            }
                            (PipelineState::Failing, None) => "failing".to_string(),
                            (PipelineState::Ok, _) => "ok".to_string(),
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
                    "replica:            merchant {} · levels {} · members {} · cards {} · qr states {} · offline-code chains {}",
                    s.replica.merchant, s.replica.levels, s.replica.members, s.replica.cards, s.replica.qr_states,
                    s.replica.qr_chains
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
