//! `[signing]`: the keys and folders of signed, expiring links.
//!
//! Its own file because it is the one section checked against another module (the keys must
//! build a [`crate::signing::Signer`]), which keeps that dependency in one place.

use serde::{Deserialize, Serialize};

use super::{ConfigError, Secret, secret_list, string_list};
use crate::asset::path::parse_folder;

/// The environment variable holding the signing keys, `id:secret` pairs separated by commas.
pub const SIGNING_KEYS_ENV: &str = "MEDIA_ORIGIN_SIGNING_KEYS";

/// `[signing]`: signed, expiring links for assets that must not be public.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SigningSettings {
    /// Keys as `id:secret`, the first signing new links and every one verifying, so a key can
    /// be rotated in front of the old one without breaking links signed with it. Prefer the
    /// `MEDIA_ORIGIN_SIGNING_KEYS` environment variable (comma-separated).
    #[serde(deserialize_with = "secret_list")]
    pub keys: Vec<Secret>,
    /// How long a signed link works, in seconds (default 7 days: long enough for Meta to fetch
    /// the media of a broadcast sent over several days).
    pub link_ttl_secs: u64,
    /// Folders whose assets are served only through signed links (the admin API adds more);
    /// a list, or one comma-separated string.
    #[serde(deserialize_with = "string_list")]
    pub folders: Vec<String>,
}

impl Default for SigningSettings {
    fn default() -> Self {
        Self {
            keys: Vec::new(),
            link_ttl_secs: 7 * 86_400,
            folders: Vec::new(),
        }
    }
}

/// Longest accepted signed-link lifetime: a year.
pub const MAX_LINK_TTL_SECS: u64 = 366 * 86_400;

impl SigningSettings {
    /// Folder names, the link lifetime, the keys, and a key wherever a folder needs one.
    pub(super) fn validate(&mut self) -> Result<(), ConfigError> {
        let signing = self;
        signing.folders = signing
            .folders
            .iter()
            .map(|f| {
                parse_folder(f)
                    .map_err(|e| ConfigError::Invalid(format!("[signing] folders {f:?}: {e}")))
            })
            .collect::<Result<_, _>>()?;
        if signing.link_ttl_secs == 0 || signing.link_ttl_secs > MAX_LINK_TTL_SECS {
            return Err(ConfigError::Invalid(format!(
                "signing.link_ttl_secs must be between 1 and {MAX_LINK_TTL_SECS}"
            )));
        }
        crate::signing::Signer::from_settings(signing).map_err(ConfigError::Invalid)?;
        if !signing.folders.is_empty() && signing.keys.is_empty() {
            return Err(ConfigError::Invalid(format!(
                "[signing] folders are signed-only but no key is configured ({SIGNING_KEYS_ENV} \
                 or signing.keys): nothing in them could be served"
            )));
        }
        Ok(())
    }
}
