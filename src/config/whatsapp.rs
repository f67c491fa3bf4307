//! `[whatsapp]`: the Cloud API Media endpoint, the phone numbers media is uploaded for, and how
//! long an uploaded media ID is reused.
//!
//! The largest section, with its own deserializers (phone number IDs as numbers or strings,
//! `ttl_minutes` as one value or a table) and the rules that tie them to Meta's limits.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::{ConfigError, Secret};

/// The environment variable that holds the Cloud API access token.
pub const WHATSAPP_TOKEN_ENV: &str = "WHATSAPP_ACCESS_TOKEN";

/// `[whatsapp]`: the Cloud API Media endpoint, for `id`-based sends.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WhatsAppSettings {
    /// The Graph API origin (overridable for tests and proxies).
    pub graph_url: String,
    /// The Graph API version in every path.
    pub api_version: String,
    /// The business phone numbers media is uploaded for; the first is the default. Accepts a
    /// list or a comma-separated string (handy in `MEDIA_ORIGIN__WHATSAPP__PHONE_NUMBER_IDS`).
    #[serde(deserialize_with = "phone_number_ids")]
    pub phone_number_ids: Vec<String>,
    /// The access token; prefer the `WHATSAPP_ACCESS_TOKEN` environment variable.
    pub access_token: Option<Secret>,
    /// How long an uploaded media ID is reused, in days. Meta keeps uploads 30 days; the
    /// default leaves a margin so an ID is never handed out about to expire.
    pub reuse_days: u64,
    /// How long Meta keeps media uploaded to a No-Storage phone number, in minutes (60 to
    /// 43200; Meta's default there is 60), sent as `ttl_minutes` with every upload: one value
    /// for every number, or a table by phone number ID (numbers not in it send none). IDs are
    /// then reused for the same share of this lifetime as `reuse_days` is of 30 days.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl_minutes: Option<TtlMinutes>,
    /// Delete the old media IDs at Meta when an asset is replaced or deleted.
    pub delete_replaced: bool,
    /// How long one Graph API request may take, in milliseconds.
    pub timeout_ms: u64,
    /// How long an upload may take in all, retries and their waits included, in milliseconds.
    pub retry_budget_ms: u64,
    /// At most this many retries of a transient failure.
    pub max_retries: u32,
    /// The `User-Agent` sent to Meta's media download host when importing incoming media: the
    /// host is known to refuse requests without one (and some default client agents).
    pub user_agent: String,
    /// The largest incoming file imported, in bytes (Meta's `file_size` is checked against it
    /// before the download, and the download is cut off past it).
    pub import_max_bytes: u64,
    /// How long one download of incoming media may take in all, in milliseconds (a stall of
    /// `timeout_ms` without a byte fails it sooner).
    pub download_timeout_ms: u64,
    /// Failed media lookups (unknown or expired IDs) allowed per hour before imports stop
    /// calling the Graph API and answer 503 until the hour has passed: Meta blocks the media
    /// endpoint for 30 minutes after about 20 in an hour.
    pub lookup_failures_per_hour: u32,
}

/// The largest `import_max_bytes`: 2 GB, the largest file WhatsApp lets a customer send.
pub const IMPORT_MAX_BYTES_CAP: u64 = crate::media_kind::MAX_IMPORT_SIZE;

impl Default for WhatsAppSettings {
    fn default() -> Self {
        Self {
            graph_url: "https://graph.facebook.com".into(),
            api_version: "v23.0".into(),
            phone_number_ids: Vec::new(),
            access_token: None,
            reuse_days: 27,
            ttl_minutes: None,
            delete_replaced: false,
            timeout_ms: 60_000,
            retry_budget_ms: 120_000,
            max_retries: 5,
            user_agent: concat!("media-origin/", env!("CARGO_PKG_VERSION")).into(),
            import_max_bytes: 100_000_000,
            download_timeout_ms: 300_000,
            lookup_failures_per_hour: 15,
        }
    }
}

/// The shortest `ttl_minutes` Meta accepts (and its default for No-Storage numbers): 1 hour.
pub const MIN_TTL_MINUTES: u32 = 60;
/// The longest `ttl_minutes` Meta accepts: 30 days.
pub const MAX_TTL_MINUTES: u32 = 43_200;

/// `whatsapp.ttl_minutes`: one lifetime for every phone number, or one per phone number ID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum TtlMinutes {
    /// `ttl_minutes = 1440`: every configured number.
    All(i64),
    /// `ttl_minutes = { "106540352242922" = 1440 }`: only these numbers.
    PerPhone(BTreeMap<String, i64>),
}

impl<'de> Deserialize<'de> for TtlMinutes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = TtlMinutes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(
                    f,
                    "a number of minutes ({MIN_TTL_MINUTES} to {MAX_TTL_MINUTES}), or a table of \
                     them by phone number ID"
                )
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<TtlMinutes, E> {
                Ok(TtlMinutes::All(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<TtlMinutes, E> {
                Ok(TtlMinutes::All(i64::try_from(v).unwrap_or(i64::MAX)))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<TtlMinutes, A::Error> {
                let mut out = BTreeMap::new();
                while let Some((phone, minutes)) = map.next_entry::<String, i64>()? {
                    out.insert(phone, minutes);
                }
                Ok(TtlMinutes::PerPhone(out))
            }
        }
        d.deserialize_any(Visitor)
    }
}
impl WhatsAppSettings {
    /// The `ttl_minutes` uploads for `phone` carry, if any (after [`Settings::validate`]).
    pub fn ttl_minutes_for(&self, phone: &str) -> Option<u32> {
        let minutes = match self.ttl_minutes.as_ref()? {
            TtlMinutes::All(m) => *m,
            TtlMinutes::PerPhone(by_phone) => *by_phone.get(phone)?,
        };
        u32::try_from(minutes).ok()
    }

    /// The Graph URL, phone number IDs, the reuse period and `ttl_minutes`.
    pub(super) fn validate(&mut self) -> Result<(), ConfigError> {
        let wa = self;
        wa.graph_url = wa.graph_url.trim().trim_end_matches('/').to_owned();
        if !(wa.graph_url.starts_with("http://") || wa.graph_url.starts_with("https://")) {
            return Err(ConfigError::Invalid(format!(
                "whatsapp.graph_url {:?} must start with http:// or https://",
                wa.graph_url
            )));
        }
        if let Some(bad) = wa
            .phone_number_ids
            .iter()
            .find(|id| !id.chars().all(|c| c.is_ascii_digit()))
        {
            return Err(ConfigError::Invalid(format!(
                "whatsapp.phone_number_ids: {bad:?} is not a phone number ID (digits only)"
            )));
        }
        if wa.reuse_days == 0 || wa.reuse_days >= 30 {
            return Err(ConfigError::Invalid(
                "whatsapp.reuse_days must be between 1 and 29: Meta keeps uploaded media 30 days"
                    .into(),
            ));
        }
        wa.validate_ttl_minutes()?;
        wa.validate_import()?;
        Ok(())
    }

    /// The import settings: a User-Agent that is a valid header value, sizes and limits above 0.
    fn validate_import(&self) -> Result<(), ConfigError> {
        let ua = self.user_agent.trim();
        if ua.is_empty() || !ua.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            return Err(ConfigError::Invalid(format!(
                "whatsapp.user_agent {:?} must be non-empty printable ASCII: Meta's download \
                 host refuses requests without a User-Agent",
                self.user_agent
            )));
        }
        if self.import_max_bytes == 0 || self.import_max_bytes > IMPORT_MAX_BYTES_CAP {
            return Err(ConfigError::Invalid(format!(
                "whatsapp.import_max_bytes = {} must be between 1 and {IMPORT_MAX_BYTES_CAP}",
                self.import_max_bytes
            )));
        }
        if self.download_timeout_ms == 0 || self.lookup_failures_per_hour == 0 {
            return Err(ConfigError::Invalid(
                "whatsapp.download_timeout_ms and whatsapp.lookup_failures_per_hour must be \
                 above 0"
                    .into(),
            ));
        }
        Ok(())
    }

    /// `ttl_minutes`: every value within Meta's range, every key a configured number.
    fn validate_ttl_minutes(&self) -> Result<(), ConfigError> {
        let in_range = |minutes: i64, key: String| {
            if (i64::from(MIN_TTL_MINUTES)..=i64::from(MAX_TTL_MINUTES)).contains(&minutes) {
                Ok(())
            } else {
                Err(ConfigError::Invalid(format!(
                    "{key} = {minutes} is out of range: Meta keeps media uploaded to a No-Storage \
                     number between {MIN_TTL_MINUTES} and {MAX_TTL_MINUTES} minutes (1 hour to \
                     30 days)"
                )))
            }
        };
        match &self.ttl_minutes {
            None => Ok(()),
            Some(TtlMinutes::All(minutes)) => in_range(*minutes, "whatsapp.ttl_minutes".into()),
            Some(TtlMinutes::PerPhone(by_phone)) => {
                for (phone, minutes) in by_phone {
                    if !self.phone_number_ids.contains(phone) {
                        return Err(ConfigError::Invalid(format!(
                            "whatsapp.ttl_minutes names phone number ID {phone:?}, which is not \
                             one of whatsapp.phone_number_ids ({})",
                            if self.phone_number_ids.is_empty() {
                                "none configured".to_owned()
                            } else {
                                self.phone_number_ids.join(", ")
                            }
                        )));
                    }
                    in_range(*minutes, format!("whatsapp.ttl_minutes.{phone}"))?;
                }
                Ok(())
            }
        }
    }
}

fn phone_number_ids<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        List(Vec<Id>),
        One(Id),
    }
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        Text(String),
        Number(u64),
    }
    let ids = match Raw::deserialize(d)? {
        Raw::List(ids) => ids,
        Raw::One(id) => vec![id],
    };
    Ok(ids
        .into_iter()
        .flat_map(|id| match id {
            Id::Text(s) => s.split(',').map(|p| p.trim().to_owned()).collect(),
            Id::Number(n) => vec![n.to_string()],
        })
        .filter(|s| !s.is_empty())
        .collect())
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closures return figment::Error
mod tests {
    use crate::config::Settings;

    #[test]
    fn whatsapp_settings_from_the_environment() {
        figment::Jail::expect_with(|jail| {
            jail.set_env(
                "MEDIA_ORIGIN__WHATSAPP__PHONE_NUMBER_IDS",
                "106540352242922, 1065",
            );
            jail.set_env("MEDIA_ORIGIN__WHATSAPP__API_VERSION", "v24.0");
            jail.set_env("MEDIA_ORIGIN__WHATSAPP__GRAPH_URL", "http://127.0.0.1:9/");
            jail.set_env("WHATSAPP_ACCESS_TOKEN", "EAAG-secret");
            let s = Settings::load(None).map_err(|e| e.to_string())?;
            assert_eq!(s.whatsapp.phone_number_ids, ["106540352242922", "1065"]);
            assert_eq!(s.whatsapp.api_version, "v24.0");
            assert_eq!(s.whatsapp.graph_url, "http://127.0.0.1:9");
            assert_eq!(
                s.whatsapp.access_token.as_ref().unwrap().expose(),
                "EAAG-secret"
            );
            assert!(!format!("{s:?}").contains("EAAG-secret"));
            jail.create_file(
                "config.toml",
                "[whatsapp]\nphone_number_ids = [106540352242922, \"7\"]\n",
            )?;
            jail.clear_env();
            let s = Settings::load(None).map_err(|e| e.to_string())?;
            assert_eq!(s.whatsapp.phone_number_ids, ["106540352242922", "7"]);
            jail.set_env("MEDIA_ORIGIN__WHATSAPP__REUSE_DAYS", "30");
            assert!(Settings::load(None).is_err());
            jail.set_env("MEDIA_ORIGIN__WHATSAPP__REUSE_DAYS", "20");
            jail.set_env("MEDIA_ORIGIN__WHATSAPP__PHONE_NUMBER_IDS", "+1 555 0100");
            assert!(Settings::load(None).is_err());
            Ok(())
        });
    }

    #[test]
    fn whatsapp_ttl_minutes_one_value_or_a_table_by_phone_number() {
        figment::Jail::expect_with(|jail| {
            // Absent: no number sends one.
            jail.create_file(
                "config.toml",
                "[whatsapp]\nphone_number_ids = [\"1234\", \"5678\"]\n",
            )?;
            let s = Settings::load(None).map_err(|e| e.to_string())?;
            assert_eq!(s.whatsapp.ttl_minutes, None);
            assert_eq!(s.whatsapp.ttl_minutes_for("1234"), None);
            // One value: every number.
            jail.create_file(
                "config.toml",
                "[whatsapp]\nphone_number_ids = [\"1234\", \"5678\"]\nttl_minutes = 1440\n",
            )?;
            let s = Settings::load(None).map_err(|e| e.to_string())?;
            assert_eq!(s.whatsapp.ttl_minutes_for("1234"), Some(1440));
            assert_eq!(s.whatsapp.ttl_minutes_for("5678"), Some(1440));
            // A table: only the numbers in it, at both ends of Meta's range.
            jail.create_file(
                "config.toml",
                "[whatsapp]\nphone_number_ids = [\"1234\", \"5678\", \"9\"]\n\
                 ttl_minutes = { \"1234\" = 60, 5678 = 43200 }\n",
            )?;
            let s = Settings::load(None).map_err(|e| e.to_string())?;
            assert_eq!(s.whatsapp.ttl_minutes_for("1234"), Some(60));
            assert_eq!(s.whatsapp.ttl_minutes_for("5678"), Some(43_200));
            assert_eq!(s.whatsapp.ttl_minutes_for("9"), None);
            // The environment, as one value and as a table entry.
            jail.set_env("MEDIA_ORIGIN__WHATSAPP__TTL_MINUTES", "720");
            let s = Settings::load(None).map_err(|e| e.to_string())?;
            assert_eq!(s.whatsapp.ttl_minutes_for("9"), Some(720));
            jail.clear_env();
            jail.set_env("MEDIA_ORIGIN__WHATSAPP__TTL_MINUTES__9", "90");
            let s = Settings::load(None).map_err(|e| e.to_string())?;
            assert_eq!(s.whatsapp.ttl_minutes_for("9"), Some(90));
            assert_eq!(s.whatsapp.ttl_minutes_for("1234"), Some(60));
            Ok(())
        });
    }

    #[test]
    fn whatsapp_ttl_minutes_out_of_range_or_for_unknown_numbers_is_refused() {
        figment::Jail::expect_with(|_jail| {
            let load = |ttl: &str| {
                let file = format!(
                    "[whatsapp]\nphone_number_ids = [\"1234\", \"5678\"]\nttl_minutes = {ttl}\n"
                );
                std::fs::write("config.toml", file).unwrap();
                Settings::load(None).map(|_| ()).map_err(|e| e.to_string())
            };
            assert_eq!(load("60"), Ok(()));
            assert_eq!(load("43200"), Ok(()));
            for (ttl, key) in [
                ("59", "whatsapp.ttl_minutes = 59"),
                ("43201", "whatsapp.ttl_minutes = 43201"),
                ("0", "whatsapp.ttl_minutes = 0"),
                ("-60", "whatsapp.ttl_minutes = -60"),
                ("{ \"1234\" = 30 }", "whatsapp.ttl_minutes.1234 = 30"),
                (
                    "{ \"5678\" = 100000 }",
                    "whatsapp.ttl_minutes.5678 = 100000",
                ),
            ] {
                let e = load(ttl).unwrap_err();
                assert!(e.contains(key), "{ttl}: {e}");
                assert!(e.contains("between 60 and 43200 minutes"), "{ttl}: {e}");
            }
            let e = load("{ \"1234\" = 60, \"999\" = 60 }").unwrap_err();
            assert!(
                e.contains("\"999\", which is not one of whatsapp.phone_number_ids (1234, 5678)"),
                "{e}"
            );
            let e = load("\"a day\"").unwrap_err();
            assert!(e.contains("a number of minutes (60 to 43200)"), "{e}");
            // A table with no phone number configured at all.
            std::fs::write(
                "config.toml",
                "[whatsapp]\nttl_minutes = { \"1234\" = 60 }\n",
            )
            .unwrap();
            let e = Settings::load(None).unwrap_err().to_string();
            assert!(e.contains("(none configured)"), "{e}");
            Ok(())
        });
    }
}
