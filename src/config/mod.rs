//! One typed configuration, layered: embedded defaults → TOML file → environment
//! (`MPS_EDGE_…`, `__` between levels, e.g. `MPS_EDGE_SERVER__LISTEN`) → command line.

//!
//! Files: this one holds the sections and their validation; `load` the layering and the
//! environment filter; `limits` the `[limits]` section (also the console's limits);
//! `secret` the redacting `Secret` type.

mod daemon;
mod limits;
mod load;
mod metrics;
mod secret;

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::domain::limits::Limits;
use crate::domain::txno::valid_site_code;
pub use daemon::DaemonConfig;
pub use limits::{describe_limits, LimitCeilingSettings, LimitSettings};
pub use load::{known_keys, Overrides};
pub use metrics::MetricsConfig;
use secret::weak_secret;
pub use secret::{Secret, MIN_JWT_SECRET_LEN};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Production refuses a missing or weak JWT secret and never loads demo data.
    pub production: bool,
    pub data_dir: PathBuf,
    pub server: ServerConfig,
    pub site: SiteConfig,
    pub auth: AuthConfig,
    pub limits: LimitSettings,
    /// How far the console may raise `[limits]` (and whether it may switch them off).
    pub limit_ceilings: LimitCeilingSettings,
    pub qr: QrConfig,
    /// Which till actions need a manager's PIN.
    pub approval: ApprovalConfig,
    pub central: CentralConfig,
    pub log: LogConfig,
    pub daemon: DaemonConfig,
    pub metrics: MetricsConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub listen: String,
    /// Largest accepted request body.
    pub body_limit_bytes: usize,
    /// PEM certificate chain and key: serve HTTPS (see `mps-edge init --tls`).
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Browser origins allowed to call the API cross-origin; empty = CORS closed.
    pub cors_origins: Vec<String>,
    /// Requests per second one client address may make, sustained; 0 turns the limit
    /// off. A till makes about one a second, a console page load a few dozen at once.
    pub rate_limit_per_sec: u32,
    /// How many requests one address may make at once above that rate.
    pub rate_limit_burst: u32,
    /// A request still unanswered after this long gets 503.
    pub request_timeout_secs: u64,
    /// A connection must deliver a complete request head within this long of opening or
    /// of its previous answer, else it is closed: bounds half-sent heads and idle
    /// keep-alive connections alike.
    pub header_read_timeout_secs: u64,
    /// Open connections at most; at the cap new ones wait in the kernel's backlog.
    pub max_connections: usize,
    /// Open connections at most from one client (IPv4 address or IPv6 /64; loopback
    /// exempt); more are closed at once.
    pub max_connections_per_client: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SiteConfig {
    /// Part of every transaction number; unique per store (A–Z, 0–9, up to 16).
    pub code: String,
    pub name: String,
    /// IANA time zone for "today", business days, settlements and receipts.
    pub timezone: String,
    /// How amounts are labelled in the console and on receipts ("NT$", "HK$", "US$").
    /// Display only: amounts are exact cents whatever this says.
    pub currency: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub jwt_secret: Secret,
    pub jwt_secret_file: Option<PathBuf>,
    pub access_ttl_secs: i64,
    pub refresh_ttl_secs: i64,
    /// The same refresh token presented again within this many seconds (a POS retrying
    /// after a timeout) gets the same new pair instead of ending the session.
    pub refresh_grace_secs: i64,
    /// Failed sign-ins per (username, client address) before each further try from that
    /// address has to wait, 15 s doubling each time up to `lockout_secs`.
    pub max_failed_logins: i64,
    /// The longest wait per (username, address), and how long an account lock lasts.
    pub lockout_secs: i64,
    /// Failed sign-ins per username from every address that lock the account. A locked
    /// account is slowed, not refused: addresses that have not failed take turns.
    pub account_max_failed_logins: i64,
    /// While an account is locked, at most one password check per this many ms.
    pub locked_check_interval_ms: i64,
    /// While an account is locked, the longest a sign-in waits for its turn before 429.
    pub locked_max_wait_secs: i64,
    /// Failure counters with no new failure for this long are forgotten.
    pub failure_window_secs: i64,
    /// Threads that check passwords (each holds 12 MiB while it does); 0 = one per core,
    /// at most 4.
    pub password_workers: usize,
    /// Sign-ins that may wait for a password thread; past that, 503 with Retry-After.
    pub password_queue: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct QrConfig {
    /// A QR token may charge only once at this edge.
    pub single_use: bool,
    /// Offline payment codes (mq2): how many time slots (usually minutes) a code may be
    /// off this store's clock either way, for phones and stores whose clocks differ.
    /// 0..=10; more widens the window in which a shoulder-surfed code can be used.
    pub offline_skew_slots: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ApprovalConfig {
    /// A cashier's charge above this amount (as entered, before the discount) needs a
    /// manager's PIN; unset = never.
    pub charge_above: Option<crate::domain::money::Money>,
    /// A cashier may refund with a manager's PIN; false = cashiers never refund.
    pub cashier_refunds: bool,
    /// Counter top-ups by a cashier: "alone" (the default: the shift report's cash
    /// expected shows what they took in), "approval" (with a manager's PIN each time) or
    /// "never". Managers and owners always may.
    pub cashier_topups: CashierTopups,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum CashierTopups {
    #[default]
    Alone,
    Approval,
    Never,
}

impl Default for ApprovalConfig {
    fn default() -> Self {
        ApprovalConfig {
            charge_above: None,
            cashier_refunds: true,
            cashier_topups: CashierTopups::Alone,
        }
    }
}

impl ApprovalConfig {
    pub fn rules(&self) -> crate::domain::approval::Rules {
        crate::domain::approval::Rules {
            charge_above_cents: self.charge_above.map(|m| m.cents()),
            cashier_refunds: self.cashier_refunds,
            cashier_topups: match self.cashier_topups {
                CashierTopups::Alone => crate::domain::approval::Need::Nothing,
                CashierTopups::Approval => crate::domain::approval::Need::Manager,
                CashierTopups::Never => crate::domain::approval::Need::Refused,
            },
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CentralConfig {
    /// e.g. `https://xyz.supabase.co`; empty = standalone.
    pub url: String,
    /// The project's public anon key: with `site_key`, how a store talks to central.
    pub anon_key: Secret,
    pub anon_key_file: Option<PathBuf>,
    /// This store's own key from `edge_register_site` (sent as `x-mps-site-key`):
    /// central takes the site and merchant from it, and can revoke it alone.
    pub site_key: Secret,
    pub site_key_file: Option<PathBuf>,
    /// Central's service_role key: bypasses RLS on the whole project. Accepted only
    /// while a store is migrated to a site key (`doctor` flags it; production refuses it).
    pub service_key: Secret,
    pub service_key_file: Option<PathBuf>,
    pub merchant_code: String,
    /// A push or pull that has failed this long (or is stopped) makes `/ready`, `doctor`
    /// and the console banner report it. Sales go on regardless.
    pub alert_after_secs: i64,
    /// Seconds between pulls of the merchant, levels, members and cards (QR states are
    /// pulled every 5 s and on a miss).
    pub pull_interval_secs: i64,
}

impl Default for CentralConfig {
    fn default() -> Self {
        CentralConfig {
            url: String::new(),
            anon_key: Secret::default(),
            anon_key_file: None,
            site_key: Secret::default(),
            site_key_file: None,
            service_key: Secret::default(),
            service_key_file: None,
            merchant_code: String::new(),
            alert_after_secs: 900,
            pull_interval_secs: 60,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: String,
    /// A tracing filter such as `info` or `mps_edge=debug,info`.
    pub level: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            production: false,
            data_dir: PathBuf::from("data"),
            server: ServerConfig::default(),
            site: SiteConfig::default(),
            auth: AuthConfig::default(),
            limits: LimitSettings::default(),
            limit_ceilings: LimitCeilingSettings::default(),
            qr: QrConfig::default(),
            approval: ApprovalConfig::default(),
            central: CentralConfig::default(),
            log: LogConfig::default(),
            daemon: DaemonConfig::default(),
            metrics: MetricsConfig::default(),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".into(),
            body_limit_bytes: 64 * 1024,
            tls_cert: None,
            tls_key: None,
            cors_origins: Vec::new(),
            rate_limit_per_sec: 200,
            rate_limit_burst: 400,
            request_timeout_secs: 60,
            header_read_timeout_secs: 15,
            max_connections: 1024,
            max_connections_per_client: 128,
        }
    }
}

impl Default for SiteConfig {
    fn default() -> Self {
        SiteConfig {
            code: "DEMO".into(),
            name: "Demo Store".into(),
            // The install's first market: a zh-TW store (console default language).
            timezone: "Asia/Taipei".into(),
            currency: "NT$".into(),
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            jwt_secret: Secret::default(),
            jwt_secret_file: None,
            access_ttl_secs: 15 * 60,
            refresh_ttl_secs: 30 * 24 * 3600,
            refresh_grace_secs: 30,
            max_failed_logins: 5,
            lockout_secs: 5 * 60,
            account_max_failed_logins: 20,
            locked_check_interval_ms: 2_000,
            locked_max_wait_secs: 20,
            failure_window_secs: 15 * 60,
            password_workers: 0,
            password_queue: 8,
        }
    }
}

impl Default for QrConfig {
    fn default() -> Self {
        QrConfig {
            single_use: true,
            offline_skew_slots: 2,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: "text".into(),
            level: "info".into(),
        }
    }
}

impl AuthConfig {
    /// The sign-in throttle's rules from this section.
    pub fn signin_policy(&self) -> crate::domain::signin::Policy {
        crate::domain::signin::Policy {
            free_failures: self.max_failed_logins,
            backoff_base_secs: 15,
            backoff_max_secs: self.lockout_secs,
            forget_after_secs: self.failure_window_secs,
            account_ceiling: self.account_max_failed_logins,
            locked_check_every_ms: self.locked_check_interval_ms,
            locked_max_wait_ms: self.locked_max_wait_secs.saturating_mul(1000),
        }
    }
}

impl Config {
    /// Standalone = no central configured; demo data may be loaded (unless production).
    pub fn standalone(&self) -> bool {
        self.central.url.trim().is_empty()
    }

    /// For the sync status: `None` standalone, else how long a pipeline may fail before
    /// it is reported as a problem.
    pub fn sync_alert(&self) -> Option<i64> {
        (!self.standalone()).then_some(self.central.alert_after_secs)
    }

    pub fn demo_allowed(&self) -> bool {
        self.standalone() && !self.production
    }

    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("mps-edge.db")
    }

    /// Every problem, one clear line each.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut errs = Vec::new();
        if self.server.listen.parse::<SocketAddr>().is_err() {
            errs.push(format!(
                "server.listen: {:?} is not an address like 127.0.0.1:8080",
                self.server.listen
            ));
        }
        match (&self.server.tls_cert, &self.server.tls_key) {
            (Some(c), Some(k)) => {
                for (name, p) in [("server.tls_cert", c), ("server.tls_key", k)] {
                    if !p.exists() {
                        errs.push(format!("{name}: {} does not exist", p.display()));
                    }
                }
            }
            (None, None) => {}
            _ => errs.push("server.tls_cert and server.tls_key: set both or neither".into()),
        }
        for o in &self.server.cors_origins {
            if !(o.starts_with("http://") || o.starts_with("https://")) || o.ends_with('/') {
                errs.push(format!(
                    "server.cors_origins: {o:?} must be an origin like https://pos.example"
                ));
            }
        }
        if self.qr.offline_skew_slots > 10 {
            errs.push("qr.offline_skew_slots: must be between 0 and 10".into());
        }
        if !(1024..=16 * 1024 * 1024).contains(&self.server.body_limit_bytes) {
            errs.push("server.body_limit_bytes: must be between 1024 and 16777216".into());
        }
        if self.server.rate_limit_per_sec > 1_000_000 {
            errs.push("server.rate_limit_per_sec: must be between 0 (off) and 1000000".into());
        }
        if !(1..=10_000_000).contains(&self.server.rate_limit_burst) {
            errs.push("server.rate_limit_burst: must be between 1 and 10000000".into());
        }
        if !(1..=3600).contains(&self.server.request_timeout_secs) {
            errs.push("server.request_timeout_secs: must be between 1 and 3600".into());
        }
        if !(1..=3600).contains(&self.server.header_read_timeout_secs) {
            errs.push("server.header_read_timeout_secs: must be between 1 and 3600".into());
        }
        if !(16..=1_000_000).contains(&self.server.max_connections) {
            errs.push("server.max_connections: must be between 16 and 1000000".into());
        }
        if !(1..=1_000_000).contains(&self.server.max_connections_per_client) {
            errs.push("server.max_connections_per_client: must be between 1 and 1000000".into());
        }
        if !valid_site_code(&self.site.code) {
            errs.push(format!(
                "site.code: {:?} must be 1-16 characters of A-Z and 0-9",
                self.site.code
            ));
        }
        if self.site.name.trim().is_empty() {
            errs.push("site.name: must not be empty".into());
        }
        if self.site.timezone.parse::<chrono_tz::Tz>().is_err() {
            errs.push(format!(
                "site.timezone: {:?} is not an IANA time zone such as Asia/Taipei",
                self.site.timezone
            ));
        }
        let currency = self.site.currency.trim();
        if currency.is_empty()
            || currency.chars().count() > 8
            || currency.chars().any(char::is_control)
        {
            errs.push(format!(
                "site.currency: {:?} must be 1-8 characters such as NT$",
                self.site.currency
            ));
        }
        if self.auth.access_ttl_secs < 60 || self.auth.access_ttl_secs > 24 * 3600 {
            errs.push("auth.access_ttl_secs: must be between 60 and 86400".into());
        }
        if self.auth.refresh_ttl_secs < self.auth.access_ttl_secs {
            errs.push("auth.refresh_ttl_secs: must be at least auth.access_ttl_secs".into());
        }
        if self.auth.max_failed_logins < 1 {
            errs.push("auth.max_failed_logins: must be at least 1".into());
        }
        if self.auth.lockout_secs < 1 {
            errs.push("auth.lockout_secs: must be at least 1".into());
        }
        if !(0..=300).contains(&self.auth.refresh_grace_secs) {
            errs.push("auth.refresh_grace_secs: must be between 0 and 300".into());
        }
        if self.auth.account_max_failed_logins < self.auth.max_failed_logins {
            errs.push(
                "auth.account_max_failed_logins: must be at least auth.max_failed_logins".into(),
            );
        }
        if !(1..=600_000).contains(&self.auth.locked_check_interval_ms) {
            errs.push("auth.locked_check_interval_ms: must be between 1 and 600000".into());
        }
        // A waiting sign-in must answer before the request timeout ends it.
        if self.auth.locked_max_wait_secs < 0
            || self.auth.locked_max_wait_secs as u64 >= self.server.request_timeout_secs
        {
            errs.push("auth.locked_max_wait_secs: must be 0 or more and less than server.request_timeout_secs".into());
        }
        if self.auth.failure_window_secs < self.auth.lockout_secs {
            errs.push("auth.failure_window_secs: must be at least auth.lockout_secs".into());
        }
        if self.auth.password_workers > 64 {
            errs.push("auth.password_workers: must be between 0 (one per core) and 64".into());
        }
        if self.auth.password_queue > 10_000 {
            errs.push("auth.password_queue: must be between 0 and 10000".into());
        }
        if self.production {
            if self.auth.jwt_secret.is_empty() {
                errs.push(
                    "auth.jwt_secret: production mode needs a JWT secret (auth.jwt_secret, auth.jwt_secret_file or MPS_EDGE_AUTH__JWT_SECRET)".into(),
                );
            } else if weak_secret(self.auth.jwt_secret.expose()) {
                errs.push(format!(
                    "auth.jwt_secret: too weak for production; use at least {MIN_JWT_SECRET_LEN} random characters"
                ));
            }
        }
        // Amounts were checked when the file was read (`Money`); the rest of the rules here.
        errs.extend(self.limits.problems());
        errs.extend(self.limit_ceilings.problems(&self.limits, &self.limits));
        errs.extend(self.daemon.problems());
        errs.extend(self.metrics.problems());
        if !matches!(self.log.format.as_str(), "text" | "json") {
            errs.push(format!(
                "log.format: {:?} must be text or json",
                self.log.format
            ));
        }
        if !self.standalone() {
            if !(self.central.url.starts_with("https://")
                || self.central.url.starts_with("http://"))
            {
                errs.push(
                    "central.url: must start with https:// (or http:// for a test central)".into(),
                );
            }
            let (site, anon, service) = (
                !self.central.site_key.is_empty(),
                !self.central.anon_key.is_empty(),
                !self.central.service_key.is_empty(),
            );
            if site && !anon {
                errs.push("central.anon_key: needed with central.site_key (the project's public anon key; or central.anon_key_file)".into());
            }
            if anon && !site {
                errs.push("central.site_key: needed with central.anon_key (this store's key from edge_register_site; or central.site_key_file)".into());
            }
            if !site && !anon && !service {
                errs.push("central.site_key: needed when central.url is set, with central.anon_key (or central.site_key_file and central.anon_key_file)".into());
            }
            if service && self.production {
                errs.push("central.service_key: production mode refuses central's service_role key (it bypasses RLS on the whole project); register this store with edge_register_site and set central.anon_key and central.site_key".into());
            }
            if self.central.merchant_code.trim().is_empty() {
                errs.push("central.merchant_code: needed when central.url is set".into());
            }
            if !(10..=7 * 86400).contains(&self.central.alert_after_secs) {
                errs.push(format!(
                    "central.alert_after_secs: {} must be between 10 and 604800 (7 days)",
                    self.central.alert_after_secs
                ));
            }
            if !(5..=3600).contains(&self.central.pull_interval_secs) {
                errs.push(format!(
                    "central.pull_interval_secs: {} must be between 5 and 3600",
                    self.central.pull_interval_secs
                ));
            }
            if self.site.code == "DEMO" {
                errs.push(
                    "site.code: set a unique code for this store when a central is configured"
                        .into(),
                );
            }
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(errs)
        }
    }

    /// The limits the charge rule applies, from the file alone (no console overrides).
    pub fn limits(&self) -> Limits {
        self.limits.in_force(self.standalone())
    }

    pub fn timezone(&self) -> chrono_tz::Tz {
        self.site.timezone.parse().unwrap_or(chrono_tz::UTC)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_standalone() {
        let c = Config::default();
        assert_eq!(c.validate(), Ok(()));
        assert!(c.standalone());
        assert!(c.demo_allowed());
        assert_eq!(c.limits().stale_after_secs, None);
    }

    #[test]
    fn every_bad_field_gets_its_own_message() {
        let mut c = Config::default();
        c.server.listen = "nope".into();
        c.site.code = "bad code".into();
        c.site.timezone = "Mars/Base".into();
        c.limits.stale_after_secs = -1;
        c.log.format = "xml".into();
        c.production = true;
        let errs = c.validate().unwrap_err();
        for field in [
            "server.listen",
            "site.code",
            "site.timezone",
            "limits.stale_after_secs",
            "log.format",
            "auth.jwt_secret",
        ] {
            assert!(
                errs.iter().any(|e| e.starts_with(field)),
                "{field}: {errs:?}"
            );
        }
    }

    #[test]
    fn production_refuses_weak_secret() {
        let mut c = Config {
            production: true,
            ..Config::default()
        };
        c.auth.jwt_secret = Secret::new("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
        assert!(c.validate().is_err());
        c.auth.jwt_secret = Secret::new("k3J9x!pQ2m#Zr8Lw5Tn0vYb6Hc4Fd1Ge7Sa");
        assert_eq!(c.validate(), Ok(()));
        assert!(!c.demo_allowed());
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let mut c = Config::default();
        c.auth.jwt_secret = Secret::new("super-secret-value");
        c.central.service_key = Secret::new("service-key-value");
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("super-secret-value"));
        assert!(!dbg.contains("service-key-value"));
        assert!(dbg.contains("<redacted>"));
    }

    #[test]
    fn central_needs_its_fields() {
        let mut c = Config::default();
        c.central.url = "https://central.example".into();
        let errs = c.validate().unwrap_err();
        assert!(errs.iter().any(|e| e.starts_with("central.site_key")));
        assert!(errs.iter().any(|e| e.starts_with("central.merchant_code")));
        assert!(errs.iter().any(|e| e.starts_with("site.code")));
        assert!(!c.demo_allowed());
    }

    /// Which central credentials are accepted, in and out of production.
    #[test]
    fn central_credentials() {
        let strong = "k3J9x!pQ2m#Zr8Lw5Tn0vYb6Hc4Fd1Ge7Sa";
        // (anon, site, service, production) -> the config keys that must be refused
        let cases: &[(bool, bool, bool, bool, &[&str])] = &[
            (true, true, false, false, &[]),
            (true, true, false, true, &[]),
            (false, false, true, false, &[]),
            (false, false, true, true, &["central.service_key"]),
            (true, true, true, true, &["central.service_key"]),
            (true, true, true, false, &[]),
            (false, true, false, false, &["central.anon_key"]),
            (true, false, false, false, &["central.site_key"]),
            (false, false, false, false, &["central.site_key"]),
        ];
        for &(anon, site, service, production, refused) in cases {
            let mut c = Config {
                production,
                ..Config::default()
            };
            c.auth.jwt_secret = Secret::new(strong);
            c.site.code = "S001".into();
            c.central.url = "https://central.example".into();
            c.central.merchant_code = "M1".into();
            let key = |on: bool| Secret::new(if on { "a-key" } else { "" });
            c.central.anon_key = key(anon);
            c.central.site_key = key(site);
            c.central.service_key = key(service);
            let errs = c.validate().err().unwrap_or_default();
            let keys: Vec<&str> = errs
                .iter()
                .map(|e| e.split(':').next().unwrap_or(""))
                .collect();
            assert_eq!(
                keys, refused,
                "anon {anon} site {site} service {service} production {production}: {errs:?}"
            );
        }
    }
}
