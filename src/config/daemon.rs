//! The `[daemon]` section: the shared secret the head-office sync daemon signs its
//! requests to this store with (`/api/v1/daemon/*`, see `domain::daemon_signature`).
//! No secret = that API is off (its routes answer 404).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::secret::{read_secret, Secret};

/// Shortest secret accepted: 32 characters, as long as the HMAC-SHA256 key it keys
/// should be random (the same floor as the JWT secret's).
pub const MIN_DAEMON_SECRET_LEN: usize = 32;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DaemonConfig {
    /// This site's shared secret with head office (`MPS_EDGE_DAEMON__SECRET`); empty =
    /// the daemon API is off.
    pub secret: Secret,
    /// A file holding the secret (one line); when set it replaces `secret`.
    pub secret_file: Option<PathBuf>,
}

impl DaemonConfig {
    /// Whether the daemon API answers at all.
    pub fn enabled(&self) -> bool {
        !self.secret.is_empty()
    }

    /// Reads `secret_file`, when set, into `secret` (at load, like the other `*_file`s).
    pub(super) fn read_secret_file(&mut self) -> anyhow::Result<()> {
        if let Some(p) = &self.secret_file {
            self.secret = Secret::new(read_secret(p)?);
        }
        Ok(())
    }

    /// One "daemon.<key>: …" line per problem.
    pub fn problems(&self) -> Vec<String> {
        let mut errs = Vec::new();
        let len = self.secret.expose().chars().count();
        if len == 0 {
            if let Some(p) = &self.secret_file {
                errs.push(format!(
                    "daemon.secret_file: {} is empty; put the secret in it, or remove daemon.secret_file to turn the daemon API off",
                    p.display()
                ));
            }
        } else if len < MIN_DAEMON_SECRET_LEN {
            let key = if self.secret_file.is_some() {
                "daemon.secret_file"
            } else {
                "daemon.secret"
            };
            errs.push(format!(
                "{key}: the secret has {len} characters; use at least {MIN_DAEMON_SECRET_LEN} random ones (or none to turn the daemon API off)"
            ));
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::config::{Config, Overrides};

    #[test]
    fn empty_is_off_and_valid() {
        let d = DaemonConfig::default();
        assert!(!d.enabled());
        assert!(d.problems().is_empty());
    }

    #[test]
    fn a_set_secret_needs_32_characters() {
        let mut d = DaemonConfig {
            secret: Secret::new("x".repeat(31)),
            secret_file: None,
        };
        let errs = d.problems();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].starts_with("daemon.secret: "), "{errs:?}");
        // Characters, not bytes: 31 two-byte characters are still too short.
        d.secret = Secret::new("é".repeat(31));
        assert_eq!(d.problems().len(), 1);
        d.secret = Secret::new("x".repeat(32));
        assert!(d.problems().is_empty());
        assert!(d.enabled());
    }

    #[test]
    fn config_validation_reports_it_and_production_needs_nothing_more() {
        let mut c = Config::default();
        c.daemon.secret = Secret::new("short");
        let errs = c.validate().unwrap_err();
        assert_eq!(
            errs.iter().filter(|e| e.starts_with("daemon.")).count(),
            1,
            "{errs:?}"
        );
        c.daemon.secret = Secret::new("k3J9x!pQ2m#Zr8Lw5Tn0vYb6Hc4Fd1Ge7Sa");
        assert_eq!(c.validate(), Ok(()));
        c.production = true;
        c.auth.jwt_secret = Secret::new("k3J9x!pQ2m#Zr8Lw5Tn0vYb6Hc4Fd1Ge7Sa-jwt");
        assert_eq!(c.validate(), Ok(()));
        c.daemon.secret = Secret::default();
        assert_eq!(
            c.validate(),
            Ok(()),
            "production does not need a daemon secret"
        );
    }

    #[test]
    fn redacted_in_debug() {
        let d = DaemonConfig {
            secret: Secret::new("daemon-secret-value-0123456789abcdef"),
            secret_file: None,
        };
        assert!(!format!("{d:?}").contains("daemon-secret-value"));
    }

    #[test]
    #[allow(clippy::result_large_err)]
    fn from_the_environment_and_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("daemon.secret");
        std::fs::write(&file, "from-the-file-0123456789abcdefghijkl\n").unwrap();
        let empty = dir.path().join("empty.secret");
        std::fs::write(&empty, "\n").unwrap();
        figment::Jail::expect_with(|jail| {
            jail.set_env(
                "MPS_EDGE_DAEMON__SECRET",
                "from-the-env-0123456789abcdefghijklm",
            );
            let c = Config::load(None, &Overrides::default()).map_err(|e| e.to_string())?;
            assert_eq!(
                c.daemon.secret.expose(),
                "from-the-env-0123456789abcdefghijklm"
            );
            jail.set_env("MPS_EDGE_DAEMON__SECRET_FILE", file.display().to_string());
            let c = Config::load(None, &Overrides::default()).map_err(|e| e.to_string())?;
            assert_eq!(
                c.daemon.secret.expose(),
                "from-the-file-0123456789abcdefghijkl"
            );
            assert_eq!(c.validate(), Ok(()));
            jail.set_env("MPS_EDGE_DAEMON__SECRET_FILE", empty.display().to_string());
            let c = Config::load(None, &Overrides::default()).map_err(|e| e.to_string())?;
            let errs = c.validate().unwrap_err();
            assert!(
                errs.len() == 1 && errs[0].starts_with("daemon.secret_file: "),
                "{errs:?}"
            );
            Ok(())
        });
    }
}
