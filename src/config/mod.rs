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

use crate::asset::path::parse_folder;
use crate::policy::CachePolicy;

/// The environment variable that holds the Cloud API access token.
pub const WHATSAPP_TOKEN_ENV: &str = "WHATSAPP_ACCESS_TOKEN";
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
}

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

/// Longest accepted signed-link lifetime: a year.
pub const MAX_LINK_TTL_SECS: u64 = 366 * 86_400;

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
}

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

/// `[server]`: where to listen, what URLs to hand out, and how long to wait on clients.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// The public listener (`/media`, health). Loopback by default: put a TLS proxy in front
    /// for the internet.
    pub bind: SocketAddr,
    /// Where the admin API listens: an address of its own (loopback by default, so a proxy
    /// that forwards the public port never exposes it), or `"public"` to serve it on the
    /// public listener too.
    pub admin_bind: AdminBind,
    /// The scheme, host and optional path prefix written into the URLs the admin API returns,
    /// e.g. `https://media.example.com`. Derived from the bound address when empty.
    pub public_base_url: Option<String>,
    /// A client must send a request's whole header within this time (slowloris), in seconds.
    pub header_read_timeout_secs: u64,
    /// The largest request header (request line and fields), in bytes; 431 beyond it. The
    /// number of fields is limited to 100.
    pub max_header_bytes: usize,
    /// A request body (an upload) that sends nothing for this long is cut off, in seconds.
    pub body_idle_timeout_secs: u64,
    /// On SIGTERM, requests in flight (a large download, an upload) get this long to finish
    /// before the process exits anyway, in seconds.
    pub shutdown_grace_secs: u64,
    /// A response that makes no write progress for this long (a client that reads slowly or
    /// not at all) is cut and its connection closed, in seconds.
    pub send_timeout_secs: u64,
    /// The most connections the public listener holds at once; more wait, not accepted, until
    /// one closes. Derived from the open-files limit when unset
    /// ([`crate::serve::derived_max_connections`]).
    pub max_connections: Option<usize>,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            admin_bind: AdminBind::Addr(SocketAddr::from(([127, 0, 0, 1], 8081))),
            public_base_url: None,
            header_read_timeout_secs: 10,
            max_header_bytes: 16 * 1024,
            body_idle_timeout_secs: 30,
            shutdown_grace_secs: 30,
            send_timeout_secs: 30,
            max_connections: None,
        }
    }
}

/// Where the admin API listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminBind {
    /// On the public listener, beside `/media`.
    Public,
    /// On a listener of its own.
    Addr(SocketAddr),
}

impl Serialize for AdminBind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            AdminBind::Public => s.serialize_str("public"),
            AdminBind::Addr(a) => s.collect_str(a),
        }
    }
}

impl std::str::FromStr for AdminBind {
    type Err = String;

    /// `public`, or a socket address.
    fn from_str(s: &str) -> Result<Self, String> {
        if s.trim().eq_ignore_ascii_case("public") {
            return Ok(AdminBind::Public);
        }
        s.trim()
            .parse()
            .map(AdminBind::Addr)
            .map_err(|_| format!("{s:?}: give an address such as 127.0.0.1:8081, or \"public\""))
    }
}

impl<'de> Deserialize<'de> for AdminBind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(|e| serde::de::Error::custom(format!("server.admin_bind {e}")))
    }
}

/// Which backend holds the assets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// A directory on local disk.
    Local,
    /// An S3 bucket, on AWS or any S3-compatible store (MinIO, R2, Garage, Ceph).
    S3,
}

/// `[storage]`: one flat section, so that every key can be set as
/// `MEDIA_ORIGIN__STORAGE__<KEY>` and `MEDIA_ORIGIN__STORAGE__BACKEND=s3` plus the bucket keys
/// switches a stock `config.toml` to S3.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageSettings {
    /// The backend.
    pub backend: Backend,
    /// Root directory of the local backend.
    pub path: PathBuf,
    /// How long records and folder policies are cached in memory, in milliseconds. Writes made
    /// through this instance show at once; this bounds how long another instance's write takes
    /// to show.
    pub cache_ttl_ms: u64,
    /// How often unreferenced blobs are collected, in seconds (0: never).
    pub gc_interval_secs: u64,
    /// How old an unreferenced blob must be before it is collected, in seconds.
    pub gc_grace_secs: u64,
    /// S3: the bucket.
    pub bucket: Option<String>,
    /// S3: the region; `AWS_REGION` / `AWS_DEFAULT_REGION`, then `us-east-1`, when unset
    /// (S3-compatible stores usually accept any).
    pub region: Option<String>,
    /// S3: the endpoint of an S3-compatible store, e.g. `http://127.0.0.1:9000`; `AWS_ENDPOINT`,
    /// then AWS itself, when unset.
    pub endpoint: Option<String>,
    /// S3: allow a plain-HTTP endpoint (a local MinIO); refused otherwise.
    pub allow_http: bool,
    /// S3: path-style requests (`endpoint/bucket/key`), which S3-compatible stores expect;
    /// `false` for virtual-hosted style (`bucket.endpoint/key`).
    pub path_style: bool,
    /// S3: a key prefix inside the bucket, so several deployments can share one bucket.
    pub prefix: Option<String>,
    /// S3: the access key ID. Without it, the standard AWS variables (`AWS_ACCESS_KEY_ID`, ...),
    /// then the instance's role, are used.
    pub access_key_id: Option<String>,
    /// S3: the secret access key (prefer `AWS_SECRET_ACCESS_KEY`).
    pub secret_access_key: Option<Secret>,
    /// S3: a session token for temporary credentials (prefer `AWS_SESSION_TOKEN`).
    pub session_token: Option<Secret>,
    /// S3: how long connecting may take, in milliseconds.
    pub connect_timeout_ms: u64,
    /// S3: how long one request may wait for its answer, in milliseconds: the whole of a small
    /// request (records, policies, listings), and the first byte and each later chunk of a
    /// download.
    pub timeout_ms: u64,
    /// S3: how long one part of an upload, or the server-side copy into place, may take, in
    /// milliseconds.
    pub transfer_timeout_ms: u64,
    /// S3: how often a failed request is retried (connection errors, timeouts, 5xx, 429),
    /// with exponential backoff.
    pub retries: usize,
    /// S3: temporary objects and unfinished multipart uploads older than this are removed by
    /// the clean-up at start and at every garbage collection, in seconds. Other instances may
    /// be uploading into the same bucket, so only old ones are taken.
    pub stale_upload_secs: u64,
    /// Memory for the bytes of small blobs, in MiB (0: none). Blobs never change, so a cached
    /// one is served without asking storage; on S3 this is what keeps a hot small asset off the
    /// network.
    pub blob_cache_mb: u64,
    /// The largest blob kept in that memory, in KiB. Larger ones stream from storage.
    pub blob_cache_object_kb: u64,
}

impl Default for StorageSettings {
    fn default() -> Self {
        Self {
            backend: Backend::Local,
            path: PathBuf::from("storage"),
            cache_ttl_ms: 2000,
            gc_interval_secs: 3600,
            gc_grace_secs: 3600,
            bucket: None,
            region: None,
            endpoint: None,
            allow_http: false,
            path_style: true,
            prefix: None,
            access_key_id: None,
            secret_access_key: None,
            session_token: None,
            connect_timeout_ms: 2000,
            timeout_ms: 5000,
            transfer_timeout_ms: 120_000,
            retries: 2,
            stale_upload_secs: 3600,
            blob_cache_mb: 64,
            blob_cache_object_kb: 1024,
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
    /// Host names the admin API answers to besides its bind address, `localhost`, `127.0.0.1`
    /// and `[::1]`: `name` (with the listener's port or none), `name:port`, or `*` for any. A
    /// list, or one comma-separated string. With `server.admin_bind = "public"` the admin routes
    /// answer to any name unless this is set (see `http::host`).
    #[serde(deserialize_with = "string_list")]
    pub allowed_hosts: Vec<String>,
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
        self.storage.validate()?;
        let signing = &mut self.signing;
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
        if let Some(token) = &self.admin.token {
            check_admin_token(token.expose()).map_err(|e| {
                ConfigError::Invalid(format!("admin.token ({ADMIN_TOKEN_ENV}): {e}"))
            })?;
        }
        for entry in &mut self.admin.allowed_hosts {
            *entry = match crate::http::host::parse_allowed(entry) {
                Ok(None) => "*".to_owned(),
                Ok(Some((name, None))) => name,
                Ok(Some((name, Some(port)))) => format!("{name}:{port}"),
                Err(e) => {
                    return Err(ConfigError::Invalid(format!("admin.allowed_hosts: {e}")));
                }
            };
        }
        let server = &self.server;
        if server.header_read_timeout_secs == 0
            || server.body_idle_timeout_secs == 0
            || server.send_timeout_secs == 0
            || server.max_header_bytes < 1024
        {
            return Err(ConfigError::Invalid(
                "server.header_read_timeout_secs, body_idle_timeout_secs and send_timeout_secs \
                 must be at least 1, server.max_header_bytes at least 1024"
                    .into(),
            ));
        }
        if server.max_connections == Some(0) {
            return Err(ConfigError::Invalid(
                "server.max_connections must be at least 1 (leave it unset to derive it from \
                 the open-files limit)"
                    .into(),
            ));
        }
        if server.admin_bind == AdminBind::Addr(server.bind) && server.bind.port() != 0 {
            return Err(ConfigError::Invalid(format!(
                "server.admin_bind is the same address as server.bind ({}): \
                 set admin_bind = \"public\" to serve the admin API on the public listener",
                server.bind
            )));
        }
        if self.fetch_log.per_asset > 1000 {
            return Err(ConfigError::Invalid(
                "fetch_log.per_asset must be at most 1000".into(),
            ));
        }
        let wa = &mut self.whatsapp;
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
        if let Some(level) = &self.log.level {
            let level = level.trim();
            if level.is_empty() {
                self.log.level = None;
            } else {
                crate::logging::parse_filter(level)
                    .map_err(|e| ConfigError::Invalid(format!("log.level {level:?}: {e}")))?;
                self.log.level = Some(level.to_owned());
            }
        }
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

impl StorageSettings {
    fn validate(&mut self) -> Result<(), ConfigError> {
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        if self.timeout_ms == 0 || self.transfer_timeout_ms == 0 || self.connect_timeout_ms == 0 {
            return invalid("storage timeouts must be greater than 0 ms".into());
        }
        if self.backend != Backend::S3 {
            return Ok(());
        }
        match self.bucket.as_deref().map(str::trim) {
            None | Some("") => {
                return invalid(
                    "storage.backend = \"s3\" needs storage.bucket \
                     (or MEDIA_ORIGIN__STORAGE__BUCKET)"
                        .into(),
                );
            }
            Some(b) => self.bucket = Some(b.to_owned()),
        }
        if let Some(endpoint) = self.endpoint.as_deref().map(str::trim) {
            if endpoint.is_empty() {
                self.endpoint = None;
            } else if endpoint.starts_with("http://") && !self.allow_http {
                return invalid(format!(
                    "storage.endpoint {endpoint:?} is plain HTTP: set storage.allow_http = true \
                     to allow it"
                ));
            } else if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
                return invalid(format!(
                    "storage.endpoint {endpoint:?} must start with http:// or https://"
                ));
            } else {
                self.endpoint = Some(endpoint.trim_end_matches('/').to_owned());
            }
        }
        if let Some(prefix) = &self.prefix {
            let trimmed = prefix.trim_matches('/');
            if trimmed.is_empty() {
                self.prefix = None;
            } else {
                let clean = parse_folder(trimmed)
                    .map_err(|e| ConfigError::Invalid(format!("storage.prefix {prefix:?}: {e}")))?;
                if crate::asset::path::stored_path_len(&clean)
                    > crate::asset::path::MAX_STORAGE_PREFIX_LEN
                {
                    return Err(ConfigError::Invalid(format!(
                        "storage.prefix {prefix:?} is over {} bytes as stored: with the longest \
                         asset paths, keys would pass S3's 1024 bytes",
                        crate::asset::path::MAX_STORAGE_PREFIX_LEN
                    )));
                }
                self.prefix = Some(clean);
            }
        }
        Ok(())
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
                ..AdminSettings::default()
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
    fn send_timeout_and_connection_limit() {
        let d = ServerSettings::default();
        assert_eq!((d.send_timeout_secs, d.max_connections), (30, None));
        figment::Jail::expect_with(|jail| {
            jail.create_file("config.toml", "[server]\nsend_timeout_secs = 5\n")?;
            jail.set_env("MEDIA_ORIGIN__SERVER__MAX_CONNECTIONS", "150");
            let mut s = Settings::load(None).map_err(|e| e.to_string())?;
            s.validate().map_err(|e| e.to_string())?;
            assert_eq!(s.server.send_timeout_secs, 5);
            assert_eq!(s.server.max_connections, Some(150));
            for (key, value, rule) in [
                (
                    "SEND_TIMEOUT_SECS",
                    "0",
                    "send_timeout_secs must be at least 1",
                ),
                (
                    "MAX_CONNECTIONS",
                    "0",
                    "server.max_connections must be at least 1",
                ),
            ] {
                jail.set_env(format!("MEDIA_ORIGIN__SERVER__{key}"), value);
                let e = Settings::load(None)
                    .and_then(|mut s| s.validate())
                    .unwrap_err()
                    .to_string();
                assert!(e.contains(rule), "{key}={value}: {e}");
                jail.set_env(format!("MEDIA_ORIGIN__SERVER__{key}"), "7");
            }
            Ok(())
        });
    }

    #[test]
    fn environment_alone_switches_a_stock_config_to_s3() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "config.toml",
                "[storage]\nbackend = \"local\"\npath = \"storage\"\n",
            )?;
            jail.set_env("MEDIA_ORIGIN__STORAGE__BACKEND", "s3");
            jail.set_env("MEDIA_ORIGIN__STORAGE__BUCKET", "media");
            jail.set_env("MEDIA_ORIGIN__STORAGE__REGION", "eu-west-1");
            jail.set_env("MEDIA_ORIGIN__STORAGE__ENDPOINT", "http://minio:9000/");
            jail.set_env("MEDIA_ORIGIN__STORAGE__ALLOW_HTTP", "true");
            jail.set_env("MEDIA_ORIGIN__STORAGE__PREFIX", "/prod/");
            jail.set_env("MEDIA_ORIGIN__STORAGE__SECRET_ACCESS_KEY", "s3cr3t");
            jail.set_env("MEDIA_ORIGIN__STORAGE__TIMEOUT_MS", "1500");
            let s = Settings::load(None).map_err(|e| e.to_string())?;
            let st = &s.storage;
            assert_eq!(st.backend, Backend::S3);
            assert_eq!(st.bucket.as_deref(), Some("media"));
            assert_eq!(st.region.as_deref(), Some("eu-west-1"));
            assert_eq!(st.endpoint.as_deref(), Some("http://minio:9000"));
            assert!(st.allow_http && st.path_style);
            assert_eq!(st.prefix.as_deref(), Some("prod"));
            assert_eq!(st.timeout_ms, 1500);
            assert_eq!(st.secret_access_key.as_ref().unwrap().expose(), "s3cr3t");
            assert!(!format!("{s:?}").contains("s3cr3t"));
            Ok(())
        });
    }

    #[test]
    fn incomplete_s3_settings_are_refused_with_the_missing_key() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("MEDIA_ORIGIN__STORAGE__BACKEND", "s3");
            let e = Settings::load(None).unwrap_err().to_string();
            assert!(e.contains("needs storage.bucket"), "{e}");
            jail.set_env("MEDIA_ORIGIN__STORAGE__BUCKET", "media");
            jail.set_env("MEDIA_ORIGIN__STORAGE__ENDPOINT", "http://minio:9000");
            let e = Settings::load(None).unwrap_err().to_string();
            assert!(e.contains("allow_http"), "{e}");
            jail.set_env("MEDIA_ORIGIN__STORAGE__ENDPOINT", "minio:9000");
            let e = Settings::load(None).unwrap_err().to_string();
            assert!(e.contains("must start with http:// or https://"), "{e}");
            jail.set_env("MEDIA_ORIGIN__STORAGE__ENDPOINT", "https://minio:9000");
            jail.set_env("MEDIA_ORIGIN__STORAGE__PREFIX", "a/../b");
            assert!(Settings::load(None).is_err());
            // With the longest asset paths, keys must stay within S3's 1024 bytes.
            jail.set_env("MEDIA_ORIGIN__STORAGE__PREFIX", "p/".repeat(50) + "q");
            let e = Settings::load(None).unwrap_err().to_string();
            assert!(e.contains("over 100 bytes as stored"), "{e}");
            jail.set_env("MEDIA_ORIGIN__STORAGE__PREFIX", "é".repeat(16) + "abcd");
            assert!(Settings::load(None).is_ok());
            jail.set_env("MEDIA_ORIGIN__STORAGE__PREFIX", "é".repeat(17));
            assert!(Settings::load(None).is_err());
            jail.set_env("MEDIA_ORIGIN__STORAGE__PREFIX", "a/b");
            assert_eq!(
                Settings::load(None)
                    .map_err(|e| e.to_string())?
                    .storage
                    .prefix
                    .as_deref(),
                Some("a/b")
            );
            Ok(())
        });
    }

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
