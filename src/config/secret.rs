//! Secrets in the configuration: the JWT signing secret and central's keys (site, anon, service).

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

pub const MIN_JWT_SECRET_LEN: usize = 32;

/// A secret string: never printed by `Debug`, never serialised back out in full.
#[derive(Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("\"\"")
        } else {
            f.write_str("\"<redacted>\"")
        }
    }
}

pub(super) fn weak_secret(s: &str) -> bool {
    let distinct: std::collections::HashSet<char> = s.chars().collect();
    s.len() < MIN_JWT_SECRET_LEN || distinct.len() < 8
}

pub(super) fn read_secret(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read secret file {}: {e}", path.display()))?;
    Ok(text.trim().to_string())
}
