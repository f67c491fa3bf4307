//! Settings: `config.toml`, then `MEDIA_ORIGIN__<SECTION>__<KEY>` environment variables, then
//! command-line flags, each layer overriding the one before.
//!
//! Typed serde structs catch a misspelt policy or address at start-up rather than at the first
//! request. Secrets live in [`Secret`] (a `secrecy` string), whose `Debug` never prints the
//! value, so a settings dump in a log cannot leak a token.
//!
//! One file per section, each with its defaults and the checks serde cannot express; this file
//! holds what they share ([`Settings`], [`Secret`], [`ConfigError`], the list deserializers) and
//! the loading: [`Settings::load`] layers file and environment, [`Settings::validate`] runs
//! every section's checks in one place.

mod admin;
mod cache;
mod convert;
mod env;
mod log;
mod server;
mod signing;
mod storage;
mod whatsapp;

pub use admin::{ADMIN_TOKEN_ENV, AdminSettings, MIN_ADMIN_TOKEN_CHARS, check_admin_token};
pub use cache::CacheSettings;
pub use convert::ConvertSettings;
pub use env::{SERVER_URL_ENV, ignored as ignored_env_vars};
pub use log::{FetchLogSettings, LogFormat, LogSettings, MetricsSettings};
pub use server::{AdminBind, ServerSettings};
pub use signing::{
    MAX_LINK_TTL_SECS, MIN_SECRET_LEN, SIGNING_KEYS_ENV, SigningKey, SigningSettings,
};
pub use storage::{Backend, StorageSettings};
pub use whatsapp::{
    IMPORT_MAX_BYTES_CAP, MAX_TTL_MINUTES, MIN_TTL_MINUTES, TtlMinutes, WHATSAPP_TOKEN_ENV,
    WhatsAppSettings,
};

use std::fmt;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// Prefix of the environment variables that override config keys.
pub const ENV_PREFIX: &str = "MEDIA_ORIGIN__";

/// A string that is never printed by `Debug` and is wiped from memory when dropped.
///
/// The value lives in a [`secrecy::SecretString`] (zeroized on drop, `Debug` redacted, reached
/// only through [`Secret::expose`]). Two things `secrecy` leaves out on purpose are added here,
/// knowingly: equality, which SIGHUP needs to say which signing key was replaced (compared in
/// constant time), and serialisation, which the restart check (`reload::needs_restart`) needs to
/// see that a secret changed; no code path logs serialised settings.
#[derive(Clone)]
pub struct Secret(SecretString);

impl Secret {
    /// Wrap a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(SecretString::from(value.into()))
    }

    /// The value, for the one place that needs it.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        use subtle::ConstantTimeEq;
        self.expose()
            .as_bytes()
            .ct_eq(other.expose().as_bytes())
            .into()
    }
}

impl Eq for Secret {}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.expose())
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        SecretString::deserialize(d).map(Self)
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
    /// `[whatsapp]`
    pub whatsapp: WhatsAppSettings,
    /// `[signing]`
    pub signing: SigningSettings,
    /// `[log]`
    pub log: LogSettings,
    /// `[metrics]`
    pub metrics: MetricsSettings,
    /// `[fetch_log]`
    pub fetch_log: FetchLogSettings,
    /// `[convert]`
    pub convert: ConvertSettings,
}

/// A list of strings, or one comma-separated string (as an environment variable gives it).
fn string_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        List(Vec<String>),
        One(String),
    }
    let items = match Raw::deserialize(d)? {
        Raw::List(items) => items,
        Raw::One(s) => s.split(',').map(str::to_owned).collect(),
    };
    Ok(items
        .into_iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect())
}

/// [`string_list`], kept as secrets.
fn secret_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Secret>, D::Error> {
    Ok(string_list(d)?.into_iter().map(Secret::new).collect())
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
    /// Load from `config` (or `./config.toml` when present) and the environment, and validate.
    pub fn load(config: Option<&Path>) -> Result<Self, ConfigError> {
        let mut settings = Self::read(config)?;
        settings.validate()?;
        Ok(settings)
    }

    /// Read `config` (or `./config.toml` when present) and the environment, without validating:
    /// for callers that apply overrides (command-line flags) first and then validate once.
    pub fn read(config: Option<&Path>) -> Result<Self, ConfigError> {
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
        if let Ok(token) = std::env::var(WHATSAPP_TOKEN_ENV)
            && !token.trim().is_empty()
        {
            settings.whatsapp.access_token = Some(Secret::new(token.trim()));
        }
        if let Ok(keys) = std::env::var(SIGNING_KEYS_ENV)
            && !keys.trim().is_empty()
        {
            settings.signing.keys = keys
                .split(',')
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .map(Secret::new)
                .collect();
        }
        Ok(settings)
    }

    /// Checks serde cannot express: folder names and the base URL; each section checks its
    /// own keys, in this order.
    pub fn validate(&mut self) -> Result<(), ConfigError> {
        self.cache.validate()?;
        self.storage.validate()?;
        self.signing.validate()?;
        self.admin.validate()?;
        self.server.validate()?;
        self.fetch_log.validate()?;
        self.whatsapp.validate()?;
        self.log.validate()?;
        self.convert.validate()?;
        self.server.validate_public_base_url()?;
        Ok(())
    }

    /// What is valid but probably not meant, for the log at start.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(base) = &self.server.public_base_url
            && base.starts_with("http://")
        {
            out.push(format!(
                "server.public_base_url {base:?} is http://: Meta fetches media over HTTPS \
                 (its examples are all https:// links), and a plain-http link travels \
                 unencrypted, so anything on the way can change what customers receive; put a \
                 TLS proxy in front and set an https:// URL (README: Deploying behind TLS)"
            ));
        }
        out
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
    use crate::policy::CachePolicy;

    #[test]
    fn secrets_never_print() {
        let s = Settings {
            admin: AdminSettings {
                token: Some(Secret::new("hunter2")),
                ..AdminSettings::default()
            },
            ..Settings::default()
        };
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn every_secret_is_redacted_and_compared_by_value() {
        let s = Settings {
            admin: AdminSettings {
                token: Some(Secret::new("admin-hunter2")),
                ..AdminSettings::default()
            },
            signing: SigningSettings {
                keys: vec![Secret::new("k1:signing-hunter2")],
                ..SigningSettings::default()
            },
            whatsapp: WhatsAppSettings {
                access_token: Some(Secret::new("graph-hunter2")),
                ..WhatsAppSettings::default()
            },
            ..Settings::default()
        };
        let shown = format!("{s:?} {s:#?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("Secret([redacted])"), "{shown}");
        assert_eq!(Secret::new("same"), Secret::new("same"));
        assert_ne!(Secret::new("same"), Secret::new("other"));
        // The restart check sees a changed secret through serialisation.
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["whatsapp"]["access_token"], "graph-hunter2");
        let back: Secret = serde_json::from_str("\"x-y\"").unwrap();
        assert_eq!(back.expose(), "x-y");
    }

    #[test]
    fn an_http_public_base_url_is_warned_about() {
        let mut s = Settings::default();
        assert!(s.warnings().is_empty());
        s.server.public_base_url = Some("https://media.example.com".into());
        assert!(s.warnings().is_empty());
        s.server.public_base_url = Some("http://media.example.com".into());
        let w = s.warnings();
        assert_eq!(w.len(), 1);
        assert!(w[0].starts_with("server.public_base_url \"http://media.example.com\" is http://: Meta fetches media over HTTPS"), "{}", w[0]);
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
            jail.set_env("MEDIA_ORIGIN_ADMIN_TOKEN", "from-env-0123456789");
            let s = Settings::load(None).map_err(|e| e.to_string())?;
            assert_eq!(s.server.bind, "0.0.0.0:7000".parse().unwrap());
            assert_eq!(s.storage.path, PathBuf::from("/data/media"));
            assert_eq!(s.cache.default, CachePolicy::NoCache);
            assert_eq!(s.cache.folders["promo"], CachePolicy::MaxAge(60));
            assert_eq!(
                s.admin.token.as_ref().unwrap().expose(),
                "from-env-0123456789"
            );
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
