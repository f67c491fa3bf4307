//! `[signing]`: the keys and folders of signed, expiring links.
//!
//! The keys are parsed here into plain data ([`SigningKey`]): the settings say what a valid key
//! is, and [`crate::signing::Signer`] is built once from what they parsed, at start and at each
//! reload, never only to validate.

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

/// Shortest accepted secret, in bytes: 128 bits written as text is at least 16 characters.
pub const MIN_SECRET_LEN: usize = 16;

/// One signing key, parsed from `id:secret`.
#[derive(Debug, Clone)]
pub struct SigningKey {
    /// Names the key in links (`k=<id>`), so a key can be rotated in front of the old one.
    pub id: String,
    /// The HMAC secret.
    pub secret: String,
}

/// Longest accepted signed-link lifetime: a year.
pub const MAX_LINK_TTL_SECS: u64 = 366 * 86_400;

impl SigningSettings {
    /// The keys as data, in order (the first signs, all verify); `Err` names what is wrong with
    /// a key: not `id:secret`, an id that is not 1-32 letters, digits, '-' or '_', a secret
    /// under [`MIN_SECRET_LEN`] characters, an id used twice.
    pub fn parsed_keys(&self) -> Result<Vec<SigningKey>, String> {
        let mut keys: Vec<SigningKey> = Vec::new();
        for (i, key) in self.keys.iter().enumerate() {
            let Some((id, secret)) = key.expose().split_once(':') else {
                return Err(format!(
                    "signing key #{} is not `id:secret` (the id names the key in links)",
                    i + 1
                ));
            };
            let valid_id = !id.is_empty()
                && id.len() <= 32
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !valid_id {
                return Err(format!(
                    "signing key #{}: the id {id:?} must be 1-32 letters, digits, '-' or '_'",
                    i + 1
                ));
            }
            if secret.len() < MIN_SECRET_LEN {
                return Err(format!(
                    "signing key {id:?}: the secret must be at least {MIN_SECRET_LEN} characters"
                ));
            }
            if keys.iter().any(|k| k.id == id) {
                return Err(format!("signing key id {id:?} is used twice"));
            }
            keys.push(SigningKey {
                id: id.to_owned(),
                secret: secret.to_owned(),
            });
        }
        Ok(keys)
    }

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
        signing.parsed_keys().map_err(ConfigError::Invalid)?;
        if !signing.folders.is_empty() && signing.keys.is_empty() {
            return Err(ConfigError::Invalid(format!(
                "[signing] folders are signed-only but no key is configured ({SIGNING_KEYS_ENV} \
                 or signing.keys): nothing in them could be served"
            )));
        }
        Ok(())
    }
}
