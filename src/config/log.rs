//! `[log]`, `[metrics]` and `[fetch_log]`: what the process tells about itself.
//!
//! Three small sections read by `logging` and `http::observe`; together, because none of them
//! changes what is served, only what is reported about it.

use serde::{Deserialize, Serialize};

use super::{ConfigError, string_list};

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// `[log]`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// `text` or `json`.
    pub format: LogFormat,
    /// The level filter, in `RUST_LOG`'s syntax (`info`, `info,media_origin=debug`). When set it
    /// takes the place of `RUST_LOG`, and SIGHUP reloads it (see [`crate::reload`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
}

/// `[metrics]`: what `/metrics` counts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSettings {
    /// A request whose `User-Agent` contains one of these (substrings, ignoring ASCII case) is
    /// counted, and marked in the fetch log, as Meta's media fetcher. A list, or one
    /// comma-separated string.
    #[serde(deserialize_with = "string_list")]
    pub meta_user_agents: Vec<String>,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        Self {
            meta_user_agents: vec![
                "facebookexternalhit".into(),
                "facebookexternalua".into(),
                "WhatsApp".into(),
            ],
        }
    }
}

/// `[fetch_log]`: the recent public fetches of each asset, kept in memory for the admin API
/// (`GET /api/fetches/{path}`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FetchLogSettings {
    /// Fetches kept per asset, the newest (0: no fetch log).
    pub per_asset: usize,
    /// Assets kept; the least recently fetched go first.
    pub max_assets: u64,
    /// An asset not fetched for this long is forgotten, in seconds.
    pub ttl_secs: u64,
}

impl Default for FetchLogSettings {
    fn default() -> Self {
        Self {
            per_asset: 20,
            max_assets: 10_000,
            ttl_secs: 86_400,
        }
    }
}

impl LogSettings {
    /// The level filter parses; a blank one is none.
    pub(super) fn validate(&mut self) -> Result<(), ConfigError> {
        if let Some(level) = &self.level {
            let level = level.trim();
            if level.is_empty() {
                self.level = None;
            } else {
                crate::logging::parse_filter(level)
                    .map_err(|e| ConfigError::Invalid(format!("log.level {level:?}: {e}")))?;
                self.level = Some(level.to_owned());
            }
        }
        Ok(())
    }
}

impl FetchLogSettings {
    /// At most 1000 fetches per asset.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.per_asset > 1000 {
            return Err(ConfigError::Invalid(
                "fetch_log.per_asset must be at most 1000".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closures return figment::Error
mod tests {
    use crate::config::Settings;

    #[test]
    fn log_level_from_the_file_or_the_environment_and_checked() {
        figment::Jail::expect_with(|jail| {
            assert_eq!(
                Settings::load(None).map_err(|e| e.to_string())?.log.level,
                None
            );
            jail.create_file(
                "config.toml",
                "[log]\nlevel = \" info,media_origin=debug \"\n",
            )?;
            let s = Settings::load(None).map_err(|e| e.to_string())?;
            assert_eq!(s.log.level.as_deref(), Some("info,media_origin=debug"));
            jail.set_env("MEDIA_ORIGIN__LOG__LEVEL", "warn");
            let s = Settings::load(None).map_err(|e| e.to_string())?;
            assert_eq!(s.log.level.as_deref(), Some("warn"));
            for (level, why) in [
                ("inof", "\"inof\" is not a level"),
                (
                    "info,media_origin=loud",
                    "log.level \"info,media_origin=loud\"",
                ),
            ] {
                jail.set_env("MEDIA_ORIGIN__LOG__LEVEL", level);
                let e = Settings::load(None).unwrap_err().to_string();
                assert!(e.contains(why), "{level}: {e}");
            }
            Ok(())
        });
    }
}
