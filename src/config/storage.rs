//! `[storage]`: where assets are kept, on local disk or in an S3 bucket, and how storage is
//! cached, timed out and cleaned up.
//!
//! The S3 keys make this the widest section; its rules (a bucket, an HTTPS endpoint unless
//! allowed, a prefix short enough for S3's key length) are checked here.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{ConfigError, Secret};
use crate::asset::path::parse_folder;

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

impl StorageSettings {
    /// Timeouts above zero; on S3, a bucket, a usable endpoint and a short enough prefix.
    pub(super) fn validate(&mut self) -> Result<(), ConfigError> {
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
    use crate::config::Settings;

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
}
