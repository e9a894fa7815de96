//! Opening an installation: config checks, database, demo data, first owner account.

use crate::auth::{hash_password, random_password};
use crate::config::Config;
use crate::db::{self, demo, meta, users, Db};
use crate::domain::Role;
use crate::error::AppError;

pub struct Opened {
    pub db: Db,
    /// Set on the very first start in demo mode: the generated owner credentials.
    pub new_owner: Option<(String, String)>,
    pub demo: bool,
}

fn app_err(e: AppError) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

pub fn open(cfg: &Config, seed_demo: bool) -> anyhow::Result<Opened> {
    if let Err(errs) = cfg.validate() {
        anyhow::bail!("invalid configuration:\n  {}", errs.join("\n  "));
    }
    let db = db::open(&cfg.db_path())?;
    let has_demo = db.read_blocking(demo::is_loaded).map_err(app_err)?;
    if has_demo && !cfg.demo_allowed() {
        anyhow::bail!(
            "{} holds the standalone demo dataset, but a central (or production mode) is configured; use a fresh data directory for a real store",
            cfg.db_path().display()
        );
    }
    let mut new_owner = None;
    if seed_demo && cfg.demo_allowed() {
        db.write_blocking(|c| demo::load(c).map(|_| ()))
            .map_err(app_err)?;
        let users = db.read_blocking(users::count_users).map_err(app_err)?;
        if users == 0 {
            let password = random_password(16);
            let hash = hash_password(&password)?;
            db.write_blocking(move |c| {
                users::upsert_user(
                    c,
                    "owner",
                    &hash,
                    Role::Owner,
                    false,
                    &users::Actor::system("setup"),
                )
                .map(|_| ())
            })
            .map_err(app_err)?;
            new_owner = Some(("owner".to_string(), password));
        }
    } else if !cfg.standalone() {
        db.write_blocking(|c| meta::set(c, meta::MODE, "central"))
            .map_err(app_err)?;
    }
    let demo = db.read_blocking(demo::is_loaded).map_err(app_err)?;
    Ok(Opened {
        db,
        new_owner,
        demo,
    })
}

/// The server state for a configuration; with a central configured, also starts the sync
/// engine's loop (it stops when `shutdown` turns true). Call inside a Tokio runtime.
pub fn build_state(
    cfg: Config,
    db: Db,
    jwt_secret: &[u8],
    shutdown: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<crate::service::state::AppState> {
    let standalone = cfg.standalone();
    let engine = if standalone {
        None
    } else {
        Some(crate::sync::SyncEngine::new(&cfg, db.clone())?)
    };
    let state = crate::service::state::AppState::new(cfg, db, jwt_secret);
    Ok(match engine {
        Some(engine) => {
            tokio::spawn(engine.clone().run(shutdown));
            state.with_sync(engine)
        }
        None => state,
    })
}
