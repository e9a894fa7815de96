//! Shared server state.

use std::sync::Arc;
use std::time::Instant;

use crate::auth::JwtKeys;
use crate::config::Config;
use crate::db::Db;
use crate::service::auth::IpThrottle;
use crate::service::qr::QrResolver;
use crate::sync::SyncEngine;

#[derive(Clone)]
pub struct AppState {
    pub cfg: Arc<Config>,
    pub db: Db,
    pub qr: Arc<QrResolver>,
    pub keys: Arc<JwtKeys>,
    pub throttle: Arc<IpThrottle>,
    pub started: Instant,
    /// Present when a central is configured.
    pub sync: Option<Arc<SyncEngine>>,
}

impl AppState {
    pub fn with_sync(mut self, engine: Arc<SyncEngine>) -> AppState {
        self.sync = Some(engine);
        self
    }

    pub fn new(cfg: Config, db: Db, jwt_secret: &[u8]) -> AppState {
        AppState {
            cfg: Arc::new(cfg),
            db,
            qr: Arc::new(QrResolver::new()),
            keys: Arc::new(JwtKeys::new(jwt_secret)),
            throttle: Arc::new(IpThrottle::default()),
            started: Instant::now(),
            sync: None,
        }
    }
}
