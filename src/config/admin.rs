//! `[admin]`: the admin API's bearer token and the host names it answers to.
//!
//! The token rules live here, beside the section, because `media-origin token` and the upload
//! command check a token by the same rule ([`check_admin_token`]) as start-up does.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{ConfigError, Secret, string_list};

/// The environment variable that holds the admin API token.
pub const ADMIN_TOKEN_ENV: &str = "MEDIA_ORIGIN_ADMIN_TOKEN";
/// The shortest admin token accepted, in characters: a guessable token is no protection, and
/// the API answers a wrong one at full speed.
pub const MIN_ADMIN_TOKEN_CHARS: usize = 16;

/// Whether `token` may be the admin token; the reason, naming the rule, when not.
pub fn check_admin_token(token: &str) -> Result<(), String> {
    let chars = token.chars().count();
    if chars < MIN_ADMIN_TOKEN_CHARS {
        return Err(format!(
            "the admin token must be at least {MIN_ADMIN_TOKEN_CHARS} characters; this one has \
             {chars} (make one with `openssl rand -hex 32`)"
        ));
    }
    Ok(())
}

/// `[admin]`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminSettings {
    /// The bearer token. Prefer the `MEDIA_ORIGIN_ADMIN_TOKEN` environment variable.
    pub token: Option<Secret>,
    /// Where a generated token is kept when none is configured; default
    /// `<storage.path>/.admin-token`.
    pub token_file: Option<PathBuf>,
    /// Host names the admin API answers to besides its bind address, `localhost`, `127.0.0.1`
    /// and `[::1]`: `name` (with the listener's port or none), `name:port`, or `*` for any. A
    /// list, or one comma-separated string. With `server.admin_bind = "public"` the admin routes
    /// answer to any name unless this is set (see `http::host`).
    #[serde(deserialize_with = "string_list")]
    pub allowed_hosts: Vec<String>,
}

impl AdminSettings {
    /// The token's length; host names normalised to `name`, `name:port` or `*`.
    pub(super) fn validate(&mut self) -> Result<(), ConfigError> {
        if let Some(token) = &self.token {
            check_admin_token(token.expose()).map_err(|e| {
                ConfigError::Invalid(format!("admin.token ({ADMIN_TOKEN_ENV}): {e}"))
            })?;
        }
        for entry in &mut self.allowed_hosts {
            *entry = match crate::http::host::parse_allowed(entry) {
                Ok(None) => "*".to_owned(),
                Ok(Some((name, None))) => name,
                Ok(Some((name, Some(port)))) => format!("{name}:{port}"),
                Err(e) => {
                    return Err(ConfigError::Invalid(format!("admin.allowed_hosts: {e}")));
                }
            };
        }
        Ok(())
    }
}
