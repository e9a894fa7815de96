//! The `[metrics]` section: who may read `GET /metrics`. It shows business figures
//! (unsynced charge totals, outbox depth), so by default only this machine may scrape
//! it; a Prometheus elsewhere on the LAN gets a bearer token.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::secret::{read_secret, Secret};

/// Shortest token accepted: it is a password a scraper sends on every request.
pub const MIN_METRICS_TOKEN_LEN: usize = 16;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// When set, every scrape (loopback included) must send `Authorization: Bearer <token>`.
    pub token: Secret,
    /// A file holding the token; when set it replaces `token`.
    pub token_file: Option<PathBuf>,
    /// Without a token: let any address scrape (a trusted monitoring network). Off by
    /// default: only loopback may.
    pub allow_remote: bool,
}

impl MetricsConfig {
    pub(super) fn read_secret_file(&mut self) -> anyhow::Result<()> {
        if let Some(p) = &self.token_file {
            self.token = Secret::new(read_secret(p)?);
        }
        Ok(())
    }

    /// One "metrics.<key>: …" line per problem.
    pub fn problems(&self) -> Vec<String> {
        let len = self.token.expose().chars().count();
        let key = if self.token_file.is_some() {
            "metrics.token_file"
        } else {
            "metrics.token"
        };
        if self.token_file.is_some() && len == 0 {
            return vec![format!(
                "{key}: the file is empty; put a token in it, or remove metrics.token_file"
            )];
        }
        if len > 0 && len < MIN_METRICS_TOKEN_LEN {
            return vec![format!(
                "{key}: the token has {len} characters; use at least {MIN_METRICS_TOKEN_LEN} random ones"
            )];
        }
        Vec::new()
    }
}
