//! The admin token: where it comes from (the configuration, else a token file generated once
//! with mode 0600) and the rules it is held to at start and at every reload. Its own room, below
//! both `app` (which starts the server with it) and `reload` (which swaps it in on SIGHUP).

use anyhow::Context;

use crate::config::{self, Settings};

/// The admin token: configured, or generated once and kept in the token file (mode 0600) so
/// the admin API is never open without one. Either way it is at least
/// [`config::MIN_ADMIN_TOKEN_CHARS`] characters, and a token file that group or others may read
/// is refused: whoever reads it holds the admin API.
pub fn load(settings: &Settings) -> anyhow::Result<String> {
    if let Some(token) = &settings.admin.token {
        // Settings::validate says so too; settings built by hand are held to the same rule.
        config::check_admin_token(token.expose())
            .map_err(|e| anyhow::anyhow!("admin.token ({}): {e}", config::ADMIN_TOKEN_ENV))?;
        return Ok(token.expose().to_owned());
    }
    let file = settings.token_file();
    match std::fs::metadata(&file) {
        Ok(meta) => refuse_if_shared(&file, &meta)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", file.display())),
    }
    if let Ok(existing) = std::fs::read_to_string(&file)
        && !existing.trim().is_empty()
    {
        let token = existing.trim();
        config::check_admin_token(token)
            .map_err(|e| anyhow::anyhow!("the admin token file {}: {e}", file.display()))?;
        tracing::info!(file = %file.display(), "admin token read from the token file");
        return Ok(token.to_owned());
    }
    let token = hex::encode(rand::random::<[u8; 32]>());
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    write_private(&file, &token).with_context(|| format!("writing {}", file.display()))?;
    tracing::warn!(
        file = %file.display(),
        "no admin token configured ({}): generated one and wrote it to the token file",
        config::ADMIN_TOKEN_ENV
    );
    Ok(token)
}

/// Refuse a token file whose mode lets group or others at it (`mode & 0o077 != 0`).
fn refuse_if_shared(file: &std::path::Path, meta: &std::fs::Metadata) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            anyhow::bail!(
                "the admin token file {} is open to group or others (mode {mode:04o}), and \
                 whoever reads it holds the admin API: run `chmod 600 {}` (or set {}), then \
                 start again",
                file.display(),
                file.display(),
                config::ADMIN_TOKEN_ENV
            );
        }
    }
    #[cfg(not(unix))]
    let _ = (file, meta);
    Ok(())
}

fn write_private(path: &std::path::Path, content: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(content.as_bytes())
}
