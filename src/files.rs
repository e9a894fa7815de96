//! Files that hold secrets or money (the database, its backups, keys): created readable
//! and writable by their owner only, and tightened when an older install left them open.

use std::path::{Path, PathBuf};

/// Opens `path` for writing, creating it readable and writable by its owner only (0600)
/// when it does not exist; `truncate` empties it. An existing file keeps its mode.
pub fn open_private(path: &Path, truncate: bool) -> std::io::Result<std::fs::File> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(truncate);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)
}

/// Takes group and other permissions away from an existing file.
pub fn make_private(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)?.permissions().mode();
        if mode & 0o077 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700))?;
        }
    }
    Ok(())
}

/// `mps-edge.db` + `-wal` → `mps-edge.db-wal`.
pub fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Writes a file readable only by its owner.
pub fn write_private(path: &std::path::Path, content: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut f = open_private(path, true)?;
    // an existing file keeps its mode on open: tighten it before writing the secret
    make_private(path)?;
    f.write_all(content.as_bytes())?;
    f.sync_all()?;
    Ok(())
}
