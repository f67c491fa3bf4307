//! Cache policies: the one decision that tells Meta's media fetcher how long it may reuse an
//! asset it downloaded from a `link`.
//!
//! Meta honours exactly four `Cache-Control` forms (WHATSAPP_MEDIA.md §2): `max-age=N` (reuse
//! for N seconds), `no-cache` (may cache, refresh when `Last-Modified` differs), `no-store` and
//! `private` (never cache). Anything else would be guessed at by the fetcher, so the server
//! accepts only those four, renders them canonically, and rejects the rest with a message that
//! lists what is accepted.
//!
//! The effective policy of an asset is its own override, else the longest matching folder rule
//! (matched on folder boundaries), else the default. Folder rules come from two places: the
//! config file and the admin API; an API rule for a folder shadows a config rule for the same
//! folder, and removing it brings the config rule back.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Largest accepted `max-age`: RFC 9111 §1.2.2 caps delta-seconds at 2^31.
pub const MAX_AGE_LIMIT: u64 = 2_147_483_648;

/// One of the four `Cache-Control` directives Meta documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CachePolicy {
    /// `max-age=N`: Meta reuses its copy for N seconds, then asks again.
    MaxAge(u64),
    /// `no-cache`: Meta may keep a copy but refreshes it when `Last-Modified` changes.
    NoCache,
    /// `no-store`: Meta must not cache.
    NoStore,
    /// `private`: per-recipient content; Meta must not cache.
    Private,
}

/// Why a policy string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid cache policy {input:?}: {reason}; accepted forms are `max-age=N` (N a whole number of seconds from 0 to {MAX_AGE_LIMIT}), `no-cache`, `no-store` and `private`"
)]
pub struct PolicyError {
    /// The rejected input (its first 64 characters).
    pub input: String,
    /// What was wrong with it.
    pub reason: &'static str,
}

impl FromStr for CachePolicy {
    type Err = PolicyError;

    /// Directive names are case-insensitive (RFC 9111 §5.2); surrounding blanks are ignored.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Echo at most a short prefix: the message goes back to whoever sent the input.
        let err = |reason| PolicyError {
            input: s.chars().take(64).collect(),
            reason,
        };
        let t = s.trim();
        if t.contains(',') {
            return Err(err("a policy is exactly one directive"));
        }
        let lower = t.to_ascii_lowercase();
        match lower.as_str() {
            "no-cache" => return Ok(Self::NoCache),
            "no-store" => return Ok(Self::NoStore),
            "private" => return Ok(Self::Private),
            "" => return Err(err("it is empty")),
            _ => {}
        }
        let Some(n) = lower.strip_prefix("max-age=") else {
            return Err(err("unknown directive"));
        };
        if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err("max-age takes a non-negative whole number of seconds"));
        }
        match n.parse::<u64>() {
            Ok(v) if v <= MAX_AGE_LIMIT => Ok(Self::MaxAge(v)),
            _ => Err(err("max-age is too large")),
        }
    }
}

impl fmt::Display for CachePolicy {
    /// The exact `Cache-Control` header value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MaxAge(n) => write!(f, "max-age={n}"),
            Self::NoCache => f.write_str("no-cache"),
            Self::NoStore => f.write_str("no-store"),
            Self::Private => f.write_str("private"),
        }
    }
}

impl Serialize for CachePolicy {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for CachePolicy {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Where a folder rule was declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleSource {
    /// `[cache.folders]` in the config file; changed only by editing the config.
    Config,
    /// Set through the admin API and persisted in the store.
    Api,
}

/// Where an effective policy came from, as shown in every API answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicySource {
    /// The asset's own override.
    Asset,
    /// A folder rule, naming the folder.
    Folder(String),
    /// The default policy.
    Default,
}

impl fmt::Display for PolicySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Asset => f.write_str("asset"),
            Self::Folder(folder) => write!(f, "folder:{folder}"),
            Self::Default => f.write_str("default"),
        }
    }
}

impl Serialize for PolicySource {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A folder rule as listed by the admin API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FolderRule {
    /// The folder, without leading or trailing slash.
    pub folder: String,
    /// The policy for everything below it.
    pub cache_control: CachePolicy,
    /// Config file or admin API.
    pub source: RuleSource,
    /// For an API rule that shadows a config rule of the same folder: the config's policy,
    /// which applies again once the API rule is removed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shadows_config: Option<CachePolicy>,
}

/// The default policy plus the folder rules from both sources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySet {
    /// Applies where neither an override nor a folder rule does.
    pub default: CachePolicy,
    /// Rules from the config file.
    pub config: BTreeMap<String, CachePolicy>,
    /// Rules set at run time through the admin API.
    pub api: BTreeMap<String, CachePolicy>,
    /// Folders served only through signed links, from `[signing] folders`.
    pub signed_config: BTreeSet<String>,
    /// Folders served only through signed links, set through the admin API.
    pub signed_api: BTreeSet<String>,
}

impl PolicySet {
    /// The effective policy for an asset path, with its source.
    pub fn resolve(
        &self,
        path: &str,
        asset_override: Option<CachePolicy>,
    ) -> (CachePolicy, PolicySource) {
        if let Some(p) = asset_override {
            return (p, PolicySource::Asset);
        }
        match self.folder_rule_for(path) {
            Some((folder, p)) => (p, PolicySource::Folder(folder.to_owned())),
            None => (self.default, PolicySource::Default),
        }
    }

    /// The policy [`Self::resolve`] gives, without saying where it came from: the serving path's
    /// form, which allocates nothing.
    pub fn policy_for(&self, path: &str, asset_override: Option<CachePolicy>) -> CachePolicy {
        asset_override
            .or_else(|| self.folder_rule_for(path).map(|(_, p)| p))
            .unwrap_or(self.default)
    }

    /// The longest folder rule that covers `path`, API rules shadowing config rules of the same
    /// folder.
    pub fn folder_rule_for<'p>(&self, path: &'p str) -> Option<(&'p str, CachePolicy)> {
        if self.api.is_empty() && self.config.is_empty() {
            return None;
        }
        // Walk the ancestors from the deepest: the first one with a rule is the longest match.
        let mut end = path.len();
        while let Some(i) = path[..end].rfind('/') {
            let folder = &path[..i];
            if let Some(p) = self.api.get(folder).or_else(|| self.config.get(folder)) {
                return Some((folder, *p));
            }
            end = i;
        }
        None
    }

    /// Whether `path` is served only through signed links, and why: the asset's own setting,
    /// else the deepest signed folder above it (config or API), else public (`Default`).
    pub fn signed_for(&self, path: &str, asset_override: Option<bool>) -> (bool, PolicySource) {
        if let Some(signed) = asset_override {
            return (signed, PolicySource::Asset);
        }
        match self.signed_folder_of(path) {
            Some(folder) => (true, PolicySource::Folder(folder.to_owned())),
            None => (false, PolicySource::Default),
        }
    }

    /// Whether `path` is served only through signed links ([`Self::signed_for`] without the
    /// why, allocating nothing).
    pub fn is_signed(&self, path: &str, asset_override: Option<bool>) -> bool {
        asset_override.unwrap_or_else(|| self.signed_folder_of(path).is_some())
    }

    /// The deepest signed-only folder above `path`.
    fn signed_folder_of<'p>(&self, path: &'p str) -> Option<&'p str> {
        if self.signed_api.is_empty() && self.signed_config.is_empty() {
            return None;
        }
        let mut end = path.len();
        while let Some(i) = path[..end].rfind('/') {
            let folder = &path[..i];
            if self.signed_api.contains(folder) || self.signed_config.contains(folder) {
                return Some(folder);
            }
            end = i;
        }
        None
    }

    /// Every signed-only folder with where it was declared.
    pub fn signed_folders(&self) -> Vec<(String, RuleSource)> {
        let mut out: BTreeMap<&str, RuleSource> = BTreeMap::new();
        for f in &self.signed_config {
            out.insert(f, RuleSource::Config);
        }
        for f in &self.signed_api {
            out.insert(f, RuleSource::Api);
        }
        out.into_iter().map(|(f, s)| (f.to_owned(), s)).collect()
    }

    /// Every folder rule, sorted by folder, as the admin API lists them.
    pub fn rules(&self) -> Vec<FolderRule> {
        let mut out: BTreeMap<&str, FolderRule> = BTreeMap::new();
        for (folder, p) in &self.config {
            out.insert(
                folder,
                FolderRule {
                    folder: folder.clone(),
                    cache_control: *p,
                    source: RuleSource::Config,
                    shadows_config: None,
                },
            );
        }
        for (folder, p) in &self.api {
            out.insert(
                folder,
                FolderRule {
                    folder: folder.clone(),
                    cache_control: *p,
                    source: RuleSource::Api,
                    shadows_config: self.config.get(folder).copied(),
                },
            );
        }
        out.into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(s: &str) -> CachePolicy {
        s.parse().unwrap()
    }

    #[test]
    fn parses_the_four_forms_and_renders_them_canonically() {
        assert_eq!(p("max-age=0"), CachePolicy::MaxAge(0));
        assert_eq!(p("max-age=31536000").to_string(), "max-age=31536000");
        assert_eq!(p(" MAX-AGE=60 ").to_string(), "max-age=60");
        assert_eq!(p("no-cache").to_string(), "no-cache");
        assert_eq!(p("No-Store").to_string(), "no-store");
        assert_eq!(p("private").to_string(), "private");
        assert_eq!(
            p(&format!("max-age={MAX_AGE_LIMIT}")),
            CachePolicy::MaxAge(MAX_AGE_LIMIT)
        );
    }

    #[test]
    fn rejects_everything_else_with_the_accepted_forms() {
        for bad in [
            "",
            "public",
            "max-age",
            "max-age=",
            "max-age=-1",
            "max-age=+5",
            "max-age=1.5",
            "max-age= 5",
            "max-age=2147483649",
            "max-age=99999999999999999999999",
            "no-cache, max-age=5",
            "s-maxage=5",
            "no-cache=\"x\"",
            "immutable",
        ] {
            let e = bad.parse::<CachePolicy>().unwrap_err();
            let msg = e.to_string();
            assert!(
                msg.contains("max-age=N") && msg.contains("no-store"),
                "{msg}"
            );
        }
    }

    fn set(config: &[(&str, &str)], api: &[(&str, &str)]) -> PolicySet {
        PolicySet {
            default: CachePolicy::MaxAge(86400),
            config: config.iter().map(|(f, s)| (f.to_string(), p(s))).collect(),
            api: api.iter().map(|(f, s)| (f.to_string(), p(s))).collect(),
            signed_config: BTreeSet::new(),
            signed_api: BTreeSet::new(),
        }
    }

    #[test]
    fn signed_only_resolution_asset_then_folder_on_boundaries() {
        let mut s = set(&[], &[]);
        s.signed_config.insert("private".into());
        s.signed_api.insert("promo/vip".into());
        assert_eq!(
            s.signed_for("private/a.pdf", None),
            (true, PolicySource::Folder("private".into()))
        );
        assert!(s.signed_for("private/x/a.pdf", None).0);
        assert_eq!(
            s.signed_for("privateer/a.pdf", None),
            (false, PolicySource::Default)
        );
        assert!(s.signed_for("promo/vip/a.jpg", None).0);
        assert!(!s.signed_for("promo/a.jpg", None).0);
        assert_eq!(
            s.signed_for("private/a.pdf", Some(false)),
            (false, PolicySource::Asset)
        );
        assert_eq!(
            s.signed_for("promo/a.jpg", Some(true)),
            (true, PolicySource::Asset)
        );
        assert_eq!(
            s.signed_folders(),
            vec![
                ("private".into(), RuleSource::Config),
                ("promo/vip".into(), RuleSource::Api)
            ]
        );
    }

    #[test]
    fn resolution_order_override_then_longest_folder_then_default() {
        let s = set(
            &[("promo", "max-age=60"), ("promo/x", "no-store")],
            &[("docs", "private")],
        );
        assert_eq!(
            s.resolve("promo/a.jpg", None),
            (p("max-age=60"), PolicySource::Folder("promo".into()))
        );
        assert_eq!(
            s.resolve("promo/x/b.jpg", None),
            (p("no-store"), PolicySource::Folder("promo/x".into()))
        );
        assert_eq!(
            s.resolve("promo/xy/b.jpg", None),
            (p("max-age=60"), PolicySource::Folder("promo".into()))
        );
        assert_eq!(
            s.resolve("promotions/a.jpg", None),
            (p("max-age=86400"), PolicySource::Default)
        );
        assert_eq!(s.resolve("promo", None).1, PolicySource::Default);
        assert_eq!(s.resolve("a.jpg", None).1, PolicySource::Default);
        assert_eq!(
            s.resolve("docs/t.pdf", None),
            (p("private"), PolicySource::Folder("docs".into()))
        );
        assert_eq!(
            s.resolve("promo/a.jpg", Some(p("no-cache"))),
            (p("no-cache"), PolicySource::Asset)
        );
        assert_eq!(
            PolicySource::Folder("promo/x".into()).to_string(),
            "folder:promo/x"
        );
    }

    #[test]
    fn api_rule_shadows_config_rule_of_the_same_folder() {
        let s = set(&[("promo", "max-age=60")], &[("promo", "no-cache")]);
        assert_eq!(s.resolve("promo/a.jpg", None).0, p("no-cache"));
        let rules = s.rules();
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].source, RuleSource::Api);
        assert_eq!(rules[0].shadows_config, Some(p("max-age=60")));
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_round_trips(s in ".{0,40}") {
            if let Ok(pol) = s.parse::<CachePolicy>() {
                prop_assert_eq!(pol.to_string().parse::<CachePolicy>().unwrap(), pol);
            }
        }

        #[test]
        fn max_age_round_trips(n in 0u64..=MAX_AGE_LIMIT) {
            let pol = CachePolicy::MaxAge(n);
            prop_assert_eq!(pol.to_string().parse::<CachePolicy>().unwrap(), pol);
        }

        #[test]
        fn folder_match_is_on_boundaries(
            folder in "[a-c]{1,3}(/[a-c]{1,3}){0,2}",
            path in "[a-c]{1,3}(/[a-c]{1,3}){0,3}",
        ) {
            let s = PolicySet {
                default: CachePolicy::NoStore,
                config: BTreeMap::from([(folder.clone(), CachePolicy::Private)]),
                api: BTreeMap::new(),
                signed_config: BTreeSet::new(),
                signed_api: BTreeSet::new(),
            };
            let covered = s.resolve(&path, None).0 == CachePolicy::Private;
            let expected = path.len() > folder.len()
                && path.starts_with(&folder)
                && path.as_bytes()[folder.len()] == b'/';
            prop_assert_eq!(covered, expected);
        }
    }
}
