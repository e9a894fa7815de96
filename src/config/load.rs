//! Loading the layers: embedded defaults → TOML file → environment (`MPS_EDGE_…`) →
//! command line.

use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Toml};
use figment::Figment;

use super::secret::{read_secret, Secret};
use super::Config;

/// Command-line overrides (the last layer).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub data_dir: Option<PathBuf>,
    pub listen: Option<String>,
    pub log_format: Option<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

impl Config {
    /// Loads the layers. `file` must exist when given.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> anyhow::Result<Config> {
        // No serialised-defaults layer: every section is `#[serde(default)]`, and amounts
        // serialise as JSON numbers, which only serde_json understands.
        let mut fig = Figment::new();
        if let Some(path) = file {
            if !path.exists() {
                anyhow::bail!("config file {} does not exist", path.display());
            }
            fig = fig.merge(Toml::file_exact(path));
        }
        fig = fig.merge(env_provider());
        if let Some(d) = &overrides.data_dir {
            fig = fig.merge(("data_dir", d));
        }
        if let Some(l) = &overrides.listen {
            fig = fig.merge(("server.listen", l));
        }
        if let Some(f) = &overrides.log_format {
            fig = fig.merge(("log.format", f));
        }
        if let Some(p) = &overrides.tls_cert {
            fig = fig.merge(("server.tls_cert", p));
        }
        if let Some(p) = &overrides.tls_key {
            fig = fig.merge(("server.tls_key", p));
        }
        let mut cfg: Config = fig.extract().map_err(|e| {
            anyhow::anyhow!("invalid configuration:\n  {}", describe(e).join("\n  "))
        })?;
        cfg.read_secret_files()?;
        Ok(cfg)
    }

    fn read_secret_files(&mut self) -> anyhow::Result<()> {
        self.daemon.read_secret_file()?;
        self.metrics.read_secret_file()?;
        if let Some(p) = &self.auth.jwt_secret_file {
            self.auth.jwt_secret = Secret::new(read_secret(p)?);
        }
        if let Some(p) = &self.central.service_key_file {
            self.central.service_key = Secret::new(read_secret(p)?);
        }
        if let Some(p) = &self.central.anon_key_file {
            self.central.anon_key = Secret::new(read_secret(p)?);
        }
        if let Some(p) = &self.central.site_key_file {
            self.central.site_key = Secret::new(read_secret(p)?);
        }
        Ok(())
    }
}

/// Environment layer. Unknown `MPS_EDGE_` variables are warned about and ignored, so
/// a typo is visible without stopping a store.
fn env_provider() -> Env {
    let known = known_keys();
    Env::prefixed("MPS_EDGE_").split("__").filter(move |key| {
        let k = key.as_str().to_ascii_lowercase();
        if k == "config" {
            // MPS_EDGE_CONFIG names the file; it is not a setting.
            return false;
        }
        let ok = known.contains(&k);
        if !ok {
            eprintln!(
                "warning: ignoring unknown environment variable MPS_EDGE_{}",
                key.as_str().to_ascii_uppercase().replace('.', "__")
            );
        }
        ok
    })
}

/// Dotted paths of every configuration key, from the defaults.
pub fn known_keys() -> Vec<String> {
    fn walk(prefix: &str, v: &serde_json::Value, out: &mut Vec<String>) {
        if let serde_json::Value::Object(map) = v {
            for (k, v) in map {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                if v.is_object() {
                    walk(&path, v, out);
                } else {
                    out.push(path);
                }
            }
        }
    }
    let mut out = Vec::new();
    if let Ok(v) = serde_json::to_value(Config::default()) {
        walk("", &v, &mut out);
    }
    out
}

/// One line per bad key, as `validate` words them: `limits.max_tx_amount: "1.234" must
/// be … (in /etc/mps-edge/config.toml)` (figment's own text starts the key with the
/// profile name, `default.`, which no config file spells).
fn describe(e: figment::Error) -> Vec<String> {
    e.into_iter()
        .map(|err| {
            let key = err.path.join(".");
            let source = err
                .metadata
                .as_ref()
                .map(|m| match &m.source {
                    Some(src) => format!(" (in {src})"),
                    None => format!(" (in {})", m.name),
                })
                .unwrap_or_default();
            if key.is_empty() {
                format!("{}{source}", err.kind)
            } else {
                format!("{key}: {}{source}", err.kind)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::result_large_err)]
    fn layers_file_then_env_then_cli() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "[site]\ncode = \"S001\"\nname = \"Shop\"\n[server]\nlisten = \"127.0.0.1:9000\"\n",
        )
        .unwrap();
        figment::Jail::expect_with(|jail| {
            jail.set_env("MPS_EDGE_SITE__NAME", "From Env");
            jail.set_env("MPS_EDGE_LIMITS__MAX_TX_AMOUNT", "150.50");
            let c = Config::load(
                Some(&path),
                &Overrides {
                    listen: Some("127.0.0.1:9100".into()),
                    ..Overrides::default()
                },
            )
            .map_err(|e| e.to_string())?;
            assert_eq!(c.site.code, "S001");
            assert_eq!(c.site.name, "From Env");
            assert_eq!(c.limits().max_tx_cents, 15_050);
            assert_eq!(c.server.listen, "127.0.0.1:9100");
            Ok(())
        });
        std::fs::write(&path, "[site]\ncod = \"typo\"\n").unwrap();
        assert!(Config::load(Some(&path), &Overrides::default()).is_err());
    }
}
