//! The state every request shares: config, database, the settings in force, the QR
//! resolver, the login throttle, the live-event hub, the sync engine and the daemon
//! API's replay cache (services own it; handlers pass it through).

use std::sync::Arc;
use std::time::Instant;

use crate::auth::JwtKeys;
use crate::config::Config;
use crate::db::Db;
use crate::service::qr::QrResolver;
use crate::service::replay::ReplayCache;
use crate::service::throttle::{IpThrottle, WindowCounter};
use crate::sync::SyncEngine;

#[derive(Clone)]
pub struct AppState {
    pub cfg: Arc<Config>,
    pub db: Db,
    pub qr: Arc<QrResolver>,
    pub keys: Arc<JwtKeys>,
    pub throttle: Arc<IpThrottle>,
    /// Wrong manager PINs per person asking and approver named: one cashier cannot rest
    /// a manager's PIN alone (`domain::approval::PIN_MAX_FAILURES_PER_ASKER`).
    pub pin_askers: Arc<WindowCounter<String>>,
    /// Every argon2 hash and check runs here (bounded threads and queue).
    pub passwords: Arc<crate::service::passwords::PasswordPool>,
    pub started: Instant,
    /// Present when a central is configured.
    pub sync: Option<Arc<SyncEngine>>,
    /// Console settings in force (config file + console overrides), applied at runtime.
    pub settings: Arc<parking_lot::RwLock<crate::settings::Effective>>,
    /// Live events for the console's WebSocket feed.
    pub events: crate::service::events::Events,
    /// Mark the console cookie `Secure` (set when the server is reached over TLS).
    pub cookie_secure: bool,
    /// The head-office daemon's signatures accepted within the window.
    pub daemon_replay: Arc<ReplayCache>,
    /// The last readiness check and when it ran (`service::sync::readiness_cached`).
    pub readiness: Arc<tokio::sync::Mutex<Option<ReadinessCheck>>>,
}

/// When a readiness check ran, and the problems it found.
pub type ReadinessCheck = (Instant, Vec<String>);

impl AppState {
    /// Lets the writer finish its queued batch and run a last checkpoint. Both block, so
    /// they run off the async workers; call it once the server takes no more requests.
    pub async fn shutdown(&self) {
        let db = self.db.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || db.shutdown()).await {
            tracing::error!(error = %e, "database shutdown task failed");
        }
    }

    pub fn with_sync(mut self, engine: Arc<SyncEngine>) -> AppState {
        self.sync = Some(engine);
        self
    }

    pub fn new(cfg: Config, db: Db, jwt_secret: &[u8]) -> AppState {
        let settings = crate::settings::Effective::load(&cfg, &db);
        // Served over TLS: the console cookie is marked Secure.
        let cookie_secure = cfg.server.tls_cert.is_some();
        let passwords = Arc::new(crate::service::passwords::PasswordPool::new(
            cfg.auth.password_workers,
            cfg.auth.password_queue,
        ));
        let qr = Arc::new(QrResolver::new(cfg.qr.offline_skew_slots));
        AppState {
            cfg: Arc::new(cfg),
            db,
            qr,
            keys: Arc::new(JwtKeys::new(jwt_secret)),
            throttle: Arc::new(IpThrottle::default()),
            pin_askers: Arc::new(WindowCounter::new(
                crate::domain::approval::PIN_LOCK_SECS,
                crate::domain::approval::PIN_MAX_FAILURES_PER_ASKER,
            )),
            passwords,
            started: Instant::now(),
            sync: None,
            settings: Arc::new(parking_lot::RwLock::new(settings)),
            events: crate::service::events::Events::default(),
            cookie_secure,
            daemon_replay: Arc::new(ReplayCache::default()),
            readiness: Arc::new(tokio::sync::Mutex::new(None)),
        }
    }
}
