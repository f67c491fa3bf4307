//! SIGHUP: reload what can change without a restart.
//!
//! The settings are read again exactly as at start (the config file, the environment's
//! `MEDIA_ORIGIN__…` variables and the other variables the start reads, then the command-line
//! flags) and checked as at start. Then, all at once or not at all:
//!
//! - `[cache]`: the default policy and the folder rules of the config file (the rules set
//!   through the API live in storage and stay as they are);
//! - `[signing]`: the keys, the link lifetime and the signed-only folders;
//! - the admin token (`admin.token`, or the token file);
//! - `[log] level`.
//!
//! Each part that changed is logged on one line, naming what changed but never a secret's value
//! (signing keys by their id only). A file that does not load (unparsable TOML, an invalid
//! policy, a bad key, …) changes nothing: the running configuration stays whole, and the log
//! says why. Every other key (the bound addresses, storage, limits, `[whatsapp]`, …) is read
//! only at start: when one differs from what the server runs with, the log names it as needing
//! a restart.
//!
//! On the serving path every reloadable part is read with one atomic load or, for the policy
//! rules, inside the store's policy cache that the request reads anyway: a reload adds nothing
//! to a request.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::Value;

use crate::config::{CacheSettings, ConfigError, Settings, SigningSettings};
use crate::http::AppState;
use crate::signing::Signer;

/// Reads the settings again, as at start: the config file, the environment, the flags.
pub type Load = Box<dyn Fn() -> Result<Settings, ConfigError> + Send>;

/// The keys a reload applies; every other key needs a restart.
pub const RELOADABLE: [&str; 5] = [
    "cache",
    "signing",
    "admin.token",
    "admin.token_file",
    "log.level",
];

/// Applies SIGHUP to a running server.
pub struct Reloader {
    state: AppState,
    /// What the server runs with: the start's settings with every applied reload's reloadable
    /// parts.
    running: Settings,
    load: Load,
}

/// What one reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The settings could not be used: nothing changed, for this reason.
    Refused(String),
    /// Applied: one line per changed part, and the keys that changed but need a restart.
    Applied {
        changes: Vec<String>,
        restart: Vec<String>,
    },
}

/// Everything a reload applies, built before anything is applied.
struct Prepared {
    settings: Settings,
    signer: Option<Signer>,
    token: String,
    filter: Option<tracing_subscriber::EnvFilter>,
    restart: Vec<String>,
}

impl Reloader {
    /// A reloader for the server sharing `state`, which runs with `running`.
    pub fn new(state: AppState, running: Settings, load: Load) -> Self {
        Self {
            state,
            running,
            load,
        }
    }

    /// Read the settings again and apply their reloadable parts, all of them or none, and log
    /// what happened.
    pub fn reload(&mut self) -> Outcome {
        tracing::info!("SIGHUP: reloading the configuration");
        let prepared = match self.prepare() {
            Ok(prepared) => prepared,
            Err(reason) => {
                tracing::error!("reload refused, the running configuration is kept: {reason}");
                return Outcome::Refused(reason);
            }
        };
        let restart = prepared.restart.clone();
        let changes = self.apply(prepared);
        for line in &changes {
            tracing::info!("reloaded {line}");
        }
        if !restart.is_empty() {
            tracing::warn!(
                "not reloaded, changed but read only at start (restart to apply): {}",
                restart.join(", ")
            );
        }
        if changes.is_empty() && restart.is_empty() {
            tracing::info!("reloaded: nothing changed");
        }
        Outcome::Applied { changes, restart }
    }

    fn prepare(&self) -> Result<Prepared, String> {
        let new = (self.load)().map_err(|e| e.to_string())?;
        let restart = needs_restart(&self.running, &new);
        // The running settings with the new reloadable parts: the token file's default place,
        // for one, stays under the storage the server runs with.
        let mut settings = self.running.clone();
        settings.cache = new.cache;
        settings.signing = new.signing;
        settings.admin.token = new.admin.token;
        settings.admin.token_file = new.admin.token_file;
        settings.log.level = new.log.level;
        let signer = (!same_signing(&settings.signing, &self.running.signing))
            .then(|| Signer::from_settings(&settings.signing))
            .transpose()
            .map_err(|e| format!("[signing]: {e}"))?;
        let filter = (settings.log.level != self.running.log.level)
            .then(|| crate::logging::filter_for(settings.log.level.as_deref()))
            .transpose()
            .map_err(|e| format!("log.level: {e}"))?;
        // Last, as it may write a generated token file: nothing fails after it.
        let token =
            crate::admin_token::load(&settings).map_err(|e| format!("admin token: {e:#}"))?;
        Ok(Prepared {
            settings,
            signer,
            token,
            filter,
            restart,
        })
    }

    /// Swap every changed part in; the lines that say what changed.
    fn apply(&mut self, prepared: Prepared) -> Vec<String> {
        let Prepared {
            settings,
            signer,
            token,
            filter,
            restart: _,
        } = prepared;
        let old = &self.running;
        let mut changes = Vec::new();
        let cache = cache_changes(&old.cache, &settings.cache);
        if cache.is_some() || settings.signing.folders != old.signing.folders {
            self.state.store.set_config_policies(
                settings.cache.default,
                settings.cache.folders.clone(),
                settings.signing.folders.iter().cloned(),
            );
        }
        if let Some(cache) = cache {
            changes.push(format!("[cache]: {cache}"));
        }
        if let Some(signer) = signer {
            self.state.signer.store(Arc::new(signer));
        }
        if let Some(signing) = signing_changes(&old.signing, &settings.signing) {
            changes.push(format!("[signing]: {signing}"));
        }
        if self.state.admin_token.replace(&token) {
            changes.push(format!(
                "admin token: replaced, now from {}",
                token_source(&settings)
            ));
        }
        if let Some(filter) = filter {
            match crate::logging::set_filter(filter) {
                Ok(()) => changes.push(format!(
                    "log level: {} (was {})",
                    crate::logging::describe(settings.log.level.as_deref()),
                    crate::logging::describe(old.log.level.as_deref())
                )),
                Err(e) => tracing::warn!("log level not reloaded: {e}"),
            }
        }
        self.running = settings;
        changes
    }
}

/// Where the admin token of `settings` comes from, for the log.
fn token_source(settings: &Settings) -> String {
    if std::env::var(crate::config::ADMIN_TOKEN_ENV).is_ok_and(|t| !t.trim().is_empty()) {
        crate::config::ADMIN_TOKEN_ENV.to_owned()
    } else if settings.admin.token.is_some() {
        "admin.token".to_owned()
    } else {
        format!("the token file {}", settings.token_file().display())
    }
}

fn same_signing(a: &SigningSettings, b: &SigningSettings) -> bool {
    a.keys == b.keys && a.link_ttl_secs == b.link_ttl_secs && a.folders == b.folders
}

/// What changed in `[cache]`, or `None`.
fn cache_changes(old: &CacheSettings, new: &CacheSettings) -> Option<String> {
    let mut parts = Vec::new();
    if old.default != new.default {
        parts.push(format!("default {} (was {})", new.default, old.default));
    }
    let folders: BTreeSet<&String> = old.folders.keys().chain(new.folders.keys()).collect();
    for folder in folders {
        match (old.folders.get(folder), new.folders.get(folder)) {
            (Some(was), Some(now)) if was != now => {
                parts.push(format!("folder {folder:?} {now} (was {was})"));
            }
            (None, Some(now)) => parts.push(format!("folder {folder:?} {now} (new)")),
            (Some(was), None) => parts.push(format!("folder {folder:?} removed (was {was})")),
            _ => {}
        }
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// What changed in `[signing]`, or `None`: keys by id, never a secret.
fn signing_changes(old: &SigningSettings, new: &SigningSettings) -> Option<String> {
    let ids = |s: &SigningSettings| -> Vec<String> {
        s.keys
            .iter()
            .map(|k| {
                k.expose()
                    .split_once(':')
                    .map_or("?", |(id, _)| id)
                    .to_owned()
            })
            .collect()
    };
    let list = |items: &[String]| {
        if items.is_empty() {
            "none".to_owned()
        } else {
            items.join(", ")
        }
    };
    let mut parts = Vec::new();
    if old.keys != new.keys {
        let (was, now) = (ids(old), ids(new));
        if was == now {
            let replaced: Vec<String> = now
                .iter()
                .zip(old.keys.iter().zip(&new.keys))
                .filter(|(_, (a, b))| a != b)
                .map(|(id, _)| id.clone())
                .collect();
            parts.push(format!(
                "keys {} (secret replaced: {})",
                list(&now),
                list(&replaced)
            ));
        } else {
            parts.push(format!("keys {} (was {})", list(&now), list(&was)));
        }
    }
    if old.link_ttl_secs != new.link_ttl_secs {
        parts.push(format!(
            "link_ttl_secs {} (was {})",
            new.link_ttl_secs, old.link_ttl_secs
        ));
    }
    if old.folders != new.folders {
        parts.push(format!(
            "folders {} (was {})",
            list(&new.folders),
            list(&old.folders)
        ));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// The keys outside [`RELOADABLE`] whose values differ, as `section.key`, sorted.
pub fn needs_restart(running: &Settings, new: &Settings) -> Vec<String> {
    let tree = |s: &Settings| {
        let mut v = serde_json::to_value(s).expect("settings always serialise");
        let sections = v.as_object_mut().expect("settings are a table");
        for key in RELOADABLE {
            match key.split_once('.') {
                None => {
                    sections.remove(key);
                }
                Some((section, field)) => {
                    if let Some(Value::Object(fields)) = sections.get_mut(section) {
                        fields.remove(field);
                    }
                }
            }
        }
        v
    };
    let mut out = Vec::new();
    differing("", &tree(running), &tree(new), &mut out);
    out
}

fn differing(at: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                let path = if at.is_empty() {
                    key.clone()
                } else {
                    format!("{at}.{key}")
                };
                differing(
                    &path,
                    a.get(key).unwrap_or(&Value::Null),
                    b.get(key).unwrap_or(&Value::Null),
                    out,
                );
            }
        }
        _ if a != b => out.push(at.to_owned()),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;
    use crate::policy::CachePolicy;

    #[test]
    fn only_keys_read_at_start_need_a_restart() {
        let running = Settings::default();
        let mut new = running.clone();
        new.cache.default = CachePolicy::NoStore;
        new.signing.keys = vec![Secret::new("k1:0123456789abcdef")];
        new.admin.token = Some(Secret::new("a-new-admin-token"));
        new.log.level = Some("debug".into());
        assert_eq!(needs_restart(&running, &new), Vec::<String>::new());
        new.server.bind = "127.0.0.1:9".parse().unwrap();
        new.storage.path = "elsewhere".into();
        new.storage.secret_access_key = Some(Secret::new("s3-secret"));
        new.whatsapp.phone_number_ids = vec!["123".into()];
        new.log.format = crate::config::LogFormat::Json;
        assert_eq!(
            needs_restart(&running, &new),
            [
                "log.format",
                "server.bind",
                "storage.path",
                "storage.secret_access_key",
                "whatsapp.phone_number_ids"
            ]
        );
    }

    #[test]
    fn cache_changes_name_each_folder_and_the_default() {
        let old = CacheSettings {
            default: CachePolicy::MaxAge(86_400),
            folders: [
                ("promo".to_owned(), CachePolicy::MaxAge(60)),
                ("gone".to_owned(), CachePolicy::Private),
                ("same".to_owned(), CachePolicy::NoCache),
            ]
            .into(),
        };
        assert_eq!(cache_changes(&old, &old.clone()), None);
        let new = CacheSettings {
            default: CachePolicy::NoCache,
            folders: [
                ("promo".to_owned(), CachePolicy::MaxAge(120)),
                ("docs".to_owned(), CachePolicy::NoStore),
                ("same".to_owned(), CachePolicy::NoCache),
            ]
            .into(),
        };
        assert_eq!(
            cache_changes(&old, &new).unwrap(),
            "default no-cache (was max-age=86400); folder \"docs\" no-store (new); \
             folder \"gone\" removed (was private); folder \"promo\" max-age=120 (was max-age=60)"
        );
    }

    #[test]
    fn signing_changes_name_key_ids_never_secrets() {
        let old = SigningSettings {
            keys: vec![Secret::new("k1:old-secret-0123456789")],
            link_ttl_secs: 600,
            folders: vec!["private".into()],
        };
        assert_eq!(signing_changes(&old, &old.clone()), None);
        let rotated = SigningSettings {
            keys: vec![
                Secret::new("k2:new-secret-0123456789"),
                Secret::new("k1:old-secret-0123456789"),
            ],
            link_ttl_secs: 60,
            folders: vec!["private".into(), "vip".into()],
        };
        assert_eq!(
            signing_changes(&old, &rotated).unwrap(),
            "keys k2, k1 (was k1); link_ttl_secs 60 (was 600); folders private, vip (was private)"
        );
        let replaced = SigningSettings {
            keys: vec![Secret::new("k1:another-secret-0123456789")],
            ..old.clone()
        };
        assert_eq!(
            signing_changes(&old, &replaced).unwrap(),
            "keys k1 (secret replaced: k1)"
        );
        let none = SigningSettings {
            keys: Vec::new(),
            folders: Vec::new(),
            ..old.clone()
        };
        assert_eq!(
            signing_changes(&old, &none).unwrap(),
            "keys none (was k1); folders none (was private)"
        );
    }
}
