//! `mps-edge init [--tls]`.

use std::process::ExitCode;

use crate::config::Config;

/// `mps-edge init [--tls]`: the data directory, and a self-signed certificate whose
/// SHA-256 fingerprint POS terminals can pin.
pub fn init(cfg: Config, tls: bool, hosts: &[String], force: bool) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&cfg.data_dir)?;
    println!("data directory: {}", cfg.data_dir.display());
    if tls {
        let dir = cfg.data_dir.join("tls");
        std::fs::create_dir_all(&dir)?;
        let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
        if cert_path.exists() && !force {
            anyhow::bail!("{} exists; add --force to replace it", cert_path.display());
        }
        let (cert_pem, key_pem, fingerprint) = self_signed(hosts)?;
        std::fs::write(&cert_path, cert_pem)?;
        crate::files::write_private(&key_path, &key_pem)?;
        println!(
            "certificate: {} (hosts: {})",
            cert_path.display(),
            hosts.join(", ")
        );
        println!("private key: {} (mode 0600)", key_path.display());
        println!("SHA-256 fingerprint (pin this on the POS terminals):\n  {fingerprint}");
        println!(
            "serve with: mps-edge serve --tls-cert {} --tls-key {}\n  or in the config: [server] tls_cert = {:?}, tls_key = {:?}",
            cert_path.display(),
            key_path.display(),
            cert_path,
            key_path
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A self-signed certificate for the given names: (cert PEM, key PEM, SHA-256 fingerprint
/// of the DER certificate as colon-separated hex).
pub fn self_signed(hosts: &[String]) -> anyhow::Result<(String, String, String)> {
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(hosts.to_vec())?;
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        hosts.first().cloned().unwrap_or_else(|| "mps-edge".into()),
    );
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "mps-edge store server");
    let cert = params.self_signed(&key)?;
    use sha2::Digest;
    let digest = sha2::Sha256::digest(cert.der());
    let fingerprint = digest
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":");
    Ok((cert.pem(), key.serialize_pem(), fingerprint))
}
