//! Settings: `config.toml`, then `MEDIA_ORIGIN__<SECTION>__<KEY>` environment variables, then
//! command-line flags, each layer overriding the one before.
//!
//! Typed serde structs catch a misspelt policy or address at start-up rather than at the first
//! request. Secrets live in [`Secret`], whose `Debug` never prints the value, so a settings dump
//! in a log cannot leak a token.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use crate::policy::CachePolicy;
use crate::store::path::parse_folder;

/// The environment variable that holds the admin API token.
pub const ADMIN_TOKEN_ENV: &str = "MEDIA_ORIGIN_ADMIN_TOKEN";
/// Prefix of the environment variables that override config keys.
pub const ENV_PREFIX: &str = "MEDIA_ORIGIN__";

/// A string that is never printed by `Debug`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// All settings.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// `[server]`
    pub server: ServerSettings,
    /// `[storage]`
    pub storage: StorageSettings,
    /// `[admin]`
    pub admin: AdminSettings,
    /// `[cache]`
    pub cache: CacheSettings,
}

/// `[server]`: where to listen and what URLs to hand out.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// Listen address. Loopback by default: put a TLS proxy in front for the internet.
    pub bind: SocketAddr,
    /// The scheme, host and optional path prefix written into the URLs the admin API returns,
    /// e.g. `https://media.example.com`. Derived from the bound address when empty.
    pub public_base_url: Option<String>,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_base_url: None,
        }
    }
}

/// Which backend holds the assets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// A directory on local disk.
    Local,
}

/// `[storage]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageSettings {
    /// The backend.
    pub backend: Backend,
    /// Root directory of the local backend.
    pub path: PathBuf,
    /// How long records and folder policies are cached in memory, in milliseconds. Writes made
    /// through this instance show at once; this bounds how stale anything else can be.
    pub cache_ttl_ms: u64,
    /// How often unreferenced blobs are collected, in seconds (0: never).
    pub gc_interval_secs: u64,
    /// How old an unreferenced blob must be before it is collected, in seconds.
    pub gc_grace_secs: u64,
}

impl Default for StorageSettings {
    fn default() -> Self {
        Self {
            backend: Backend::Local,
            path: PathBuf::from("storage"),
            cache_ttl_ms: 2000,
            gc_interval_secs: 3600,
            gc_grace_secs: 3600,
        }
    }
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
}

/// `[cache]`: the default policy and folder rules.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheSettings {
    /// Policy for assets no folder rule or override covers.
    pub default: CachePolicy,
    /// Folder rules, e.g. `"promo" = "max-age=3600"`.
    pub folders: BTreeMap<String, CachePolicy>,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            default: CachePolicy::MaxAge(86_400),
            folders: BTreeMap::new(),
        }
    }
}

/// Why settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file named with `--config` does not exist.
    #[error("config file {0} does not exist")]
    Missing(PathBuf),
    /// Parsing or typing failed.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Settings {
    /// Load from `config` (or `./config.toml` when present) and the environment.
    pub fn load(config: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        match config {
            Some(path) if !path.exists() => return Err(ConfigError::Missing(path.to_owned())),
            Some(path) => figment = figment.merge(Toml::file(path)),
            None => figment = figment.merge(Toml::file("config.toml")),
        }
        figment = figment.merge(Env::prefixed(ENV_PREFIX).split("__"));
        let mut settings: Settings = figment
            .extract()
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        if let Ok(token) = std::env::var(ADMIN_TOKEN_ENV)
            && !token.trim().is_empty()
        {
            settings.admin.token = Some(Secret::new(token.trim()));
        }
        settings.validate()?;
        Ok(settings)
    }

    /// Checks serde cannot express: folder names and the base URL.
    pub fn validate(&mut self) -> Result<(), ConfigError> {
        let mut folders = BTreeMap::new();
        for (folder, policy) in &self.cache.folders {
            let clean = parse_folder(folder)
                .map_err(|e| ConfigError::Invalid(format!("[cache.folders] {folder:?}: {e}")))?;
            folders.insert(clean, *policy);
        }
        self.cache.folders = folders;
        if let Some(base) = &self.server.public_base_url {
            let base = base.trim().trim_end_matches('/');
            if base.is_empty() {
                self.server.public_base_url = None;
            } else if !(base.starts_with("http://") || base.starts_with("https://")) {
                return Err(ConfigError::Invalid(format!(
                    "server.public_base_url {base:?} must start with http:// or https://"
                )));
            } else {
                self.server.public_base_url = Some(base.to_owned());
            }
        }
        Ok(())
    }

    /// Where a generated admin token is kept.
    pub fn token_file(&self) -> PathBuf {
        self.admin
            .token_file
            .clone()
            .unwrap_or_else(|| self.storage.path.join(".admin-token"))
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closures return figment::Error
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Settings {
            admin: AdminSettings {
                token: Some(Secret::new("hunter2")),
                token_file: None,
            },
            ..Settings::default()
        };
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn file_then_environment() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "config.toml",
                r#"
                [server]
                bind = "127.0.0.1:9000"
                [cache]
                default = "no-cache"
                [cache.folders]
                "/promo/" = "max-age=60"
                "#,
            )?;
            jail.set_env("MEDIA_ORIGIN__SERVER__BIND", "0.0.0.0:7000");
            jail.set_env("MEDIA_ORIGIN__STORAGE__PATH", "/data/media");
            jail.set_env("MEDIA_ORIGIN_ADMIN_TOKEN", "from-env");
            let s = Settings::load(None).map_err(|e| e.to_string())?;
            assert_eq!(s.server.bind, "0.0.0.0:7000".parse().unwrap());
            assert_eq!(s.storage.path, PathBuf::from("/data/media"));
            assert_eq!(s.cache.default, CachePolicy::NoCache);
            assert_eq!(s.cache.folders["promo"], CachePolicy::MaxAge(60));
            assert_eq!(s.admin.token.as_ref().unwrap().expose(), "from-env");
            Ok(())
        });
    }

    #[test]
    fn bad_values_are_refused_at_load() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("config.toml", "[cache]\ndefault = \"public\"\n")?;
            let e = Settings::load(None).unwrap_err().to_string();
            assert!(e.contains("accepted forms"), "{e}");
            jail.create_file("config.toml", "[cache.folders]\n\"../x\" = \"no-store\"\n")?;
            assert!(Settings::load(None).is_err());
            jail.create_file("config.toml", "[server]\nbindd = \"1.2.3.4:5\"\n")?;
            assert!(Settings::load(None).is_err());
            assert!(matches!(
                Settings::load(Some(Path::new("nope.toml"))),
                Err(ConfigError::Missing(_))
            ));
            Ok(())
        });
    }
}
