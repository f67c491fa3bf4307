//! Assets on an object store: content-addressed blobs, per-path records, folder policies.
//!
//! `object_store` gives one API over local disk and S3. Its local backend keeps no attributes
//! and S3's own ETag is an MD5 of parts, so the server keeps its own metadata beside the bytes,
//! in the same layout on every backend:
//!
//! ```text
//! blobs/sha256/<2 hex>/<64 hex>   the bytes, immutable, written once under their hash
//! assets/<path>.json              the record: blob hash, size, exact type, Last-Modified, ...
//! policies.json                   folder policies set through the admin API
//! tmp/<uuid>                      uploads in flight, removed on failure and at start
//! ```
//!
//! An upload streams to `tmp/` while hashing and sniffing, is validated, moved to its blob key,
//! and only then is the record written. The record write is the commit: a reader sees the old
//! record or the new one, each pointing at a complete blob. Blobs are never modified, so a
//! download of an old version keeps streaming while the path is replaced; unreferenced blobs
//! are removed by [`Store::collect_garbage`] after a grace period.
//!
//! Deleting an asset leaves a small tombstone record for a while, so that a path deleted and
//! uploaded again within one second still gets a later `Last-Modified` than before.

pub mod probe;
pub mod s3;
mod upload;

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt, TryStreamExt};
use object_store::buffered::BufWriter;
use object_store::local::LocalFileSystem;
use object_store::path::Path as Key;
use object_store::{
    GetOptions, GetRange, ObjectStore, PutMode, PutOptions, PutPayload, UpdateVersion,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::asset::{AssetPath, AssetRecord, MediaId};
use crate::config::{Backend, StorageSettings};
use crate::media_kind::{self, MediaError, MediaType};
use crate::policy::{CachePolicy, PolicySet};
use upload::{MARKER_SUFFIX, Multipart, PART_SIZE, PARTS_IN_FLIGHT, PartWriter, TmpWriter};
/// How many records a listing reads at once.
const LIST_CONCURRENCY: usize = 16;
/// How long a tombstone is kept: long enough that a re-upload lands in a later second.
const TOMBSTONE_TTL: u64 = 3600;

/// What a store operation can fail with. The HTTP layer maps each to a status and code.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The bytes are not something WhatsApp accepts (type, size or shape).
    #[error(transparent)]
    Media(#[from] MediaError),
    /// Over the largest size of any kind, before the kind was known.
    #[error(
        "the upload is larger than {limit} bytes, the largest size WhatsApp accepts for any media"
    )]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// The request body could not be read to its end (client gone, malformed framing).
    #[error("the upload was interrupted: {0}")]
    Body(String),
    /// No asset (or no API policy) at that path.
    #[error("not found")]
    NotFound,
    /// The storage backend failed.
    #[error("storage backend error: {0}")]
    Backend(#[from] object_store::Error),
    /// The storage backend did not answer in time.
    #[error("storage backend timed out after {after:?} while {operation}")]
    Timeout {
        /// What was being done.
        operation: &'static str,
        /// The bound that ran out.
        after: Duration,
    },
    /// Another instance wrote the same object between our read and our write; read again.
    #[error("a concurrent write to the same object won")]
    Conflict,
    /// The asset's bytes changed while an operation on the old ones ran.
    #[error("the asset was replaced meanwhile; try again")]
    Replaced,
    /// A stored record could not be decoded.
    #[error("stored record {key} is unreadable: {reason}")]
    Corrupt {
        /// Its key.
        key: String,
        /// The decoder's complaint.
        reason: String,
    },
}

impl StoreError {
    /// True when the backend refused a write for want of room: the disk is full (`ENOSPC`), a
    /// quota is used up (`EDQUOT`) or a file size limit was hit (`EFBIG`). The local backend's
    /// I/O error is wrapped in object_store's errors (and in `std::io::Error`s, whose `source`
    /// skips their own payload), so the whole chain is searched.
    pub fn is_out_of_space(&self) -> bool {
        use std::io::ErrorKind;
        let StoreError::Backend(e) = self else {
            return false;
        };
        let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
        while let Some(error) = next {
            next = error.source();
            if let Some(io) = error.downcast_ref::<std::io::Error>() {
                if matches!(
                    io.kind(),
                    ErrorKind::StorageFull | ErrorKind::QuotaExceeded | ErrorKind::FileTooLarge
                ) {
                    return true;
                }
                if let Some(inner) = io.get_ref() {
                    next = Some(inner);
                }
            }
        }
        false
    }
}

/// An upload written to a temporary object, hashed and validated, not yet visible.
#[derive(Debug)]
pub struct Staged {
    tmp: Key,
    /// Hex SHA-256 of the bytes.
    pub sha256: String,
    /// Length in bytes.
    pub size: u64,
    /// The type decided from the declaration and the bytes.
    pub media: MediaType,
}

/// What the client said about an upload.
#[derive(Debug, Clone, Copy, Default)]
pub struct UploadHints<'a> {
    /// The declared `Content-Type`, if any.
    pub content_type: Option<&'a str>,
    /// The file name (for the extension), if any.
    pub filename: Option<&'a str>,
}

/// The outcome of a commit.
#[derive(Debug, Clone)]
pub struct Committed {
    /// The new record.
    pub record: Arc<AssetRecord>,
    /// True when the path held no asset before.
    pub created: bool,
    /// True when the path already held these bytes as this type: the content version, with
    /// `Last-Modified` and the link, stayed as it was.
    pub unchanged: bool,
    /// Media IDs of the bytes this commit replaced, no longer in the record.
    pub dropped_media_ids: Vec<MediaId>,
}

/// A page of a listing.
#[derive(Debug)]
pub struct Page {
    /// Records in path order.
    pub records: Vec<Arc<AssetRecord>>,
    /// Pass as `cursor` to get the next page; `None` at the end.
    pub next_cursor: Option<String>,
    /// Records of this page's paths that could not be used (not JSON, or invalid fields):
    /// left out of `records`, so one bad object does not fail every listing that covers it.
    pub errors: Vec<UnreadableRecord>,
}

/// A stored record that could not be used, as a listing reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnreadableRecord {
    /// The asset path its key stands for.
    pub path: String,
    /// Its key in storage (below `storage.prefix`).
    pub key: String,
    /// Why it could not be used.
    pub reason: String,
}

/// One folder level of [`Store::list_folder`].
#[derive(Debug)]
pub struct FolderPage {
    /// Full paths of the folders directly inside, sorted. A folder whose assets were all
    /// deleted may still be listed: on local disk its directory stays, and its tombstones
    /// until a garbage collection (on a shared bucket, for good).
    pub folders: Vec<String>,
    /// The assets directly inside.
    pub page: Page,
}

/// What a garbage collection removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct GcReport {
    /// Unreferenced blobs deleted.
    pub blobs: usize,
    /// Expired tombstones deleted.
    pub tombstones: usize,
    /// Records that could not be read (not JSON, or invalid fields) and were skipped; every
    /// blob their bytes name is kept.
    pub unreadable_records: usize,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct PolicyFile {
    #[serde(default)]
    folders: BTreeMap<String, CachePolicy>,
    /// Folders served only through signed links.
    #[serde(default, skip_serializing_if = "std::collections::BTreeSet::is_empty")]
    signed: std::collections::BTreeSet<String>,
}

struct CachedPolicies {
    set: Arc<PolicySet>,
    loaded: Instant,
}

/// The asset store shared by every handler: cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    /// Records, policies, listings, small writes.
    objects: Arc<dyn ObjectStore>,
    /// Blob downloads and uploads (on S3, a client without a whole-request timeout).
    blobs: Arc<dyn ObjectStore>,
    /// S3's multipart API; `None` on the local backend.
    multipart: Option<Arc<Multipart>>,
    /// Set for the local backend, whose staging files are cleaned up by walking the directory.
    local_root: Option<PathBuf>,
    /// Other instances may write to the same bucket: record and policy writes are conditional,
    /// and only stale temporaries are cleaned up.
    shared: bool,
    /// S3: bound on a download's first byte and on each gap between chunks.
    blob_timeout: Option<Duration>,
    /// S3: bound on a server-side copy.
    transfer_timeout: Option<Duration>,
    /// S3: temporaries older than this belong to no live upload.
    stale_uploads: Duration,
    records: moka::sync::Cache<String, Option<Arc<AssetRecord>>>,
    /// Bytes of small blobs by SHA-256, weighed by length (see [`Store::blob_body`]).
    blob_cache: Option<moka::sync::Cache<String, Bytes>>,
    /// The largest blob `blob_cache` takes.
    blob_cache_object_max: u64,
    /// Counts record writes; a cache fill only lands if none finished during its read.
    record_writes: Mutex<u64>,
    cache_ttl: Duration,
    policies: Mutex<CachedPolicies>,
    policy_write: tokio::sync::Mutex<()>,
    path_locks: Mutex<std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Commits hold it shared from blob rename to record write; garbage collection holds it
    /// exclusively while it re-checks and deletes one blob.
    gc_gate: tokio::sync::RwLock<()>,
    /// Where storage latencies are recorded, when the server keeps metrics.
    metrics: Option<Arc<crate::metrics::Metrics>>,
}

/// Seconds since the epoch, now.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn record_key(path: &str) -> Key {
    Key::from(format!("assets/{path}.json"))
}

fn blob_key(sha256: &str) -> Key {
    Key::from(format!("blobs/sha256/{}/{}", &sha256[..2], sha256))
}

const POLICIES_KEY: &str = "policies.json";

/// How often a conditional write is tried before giving up to another instance's writes.
const MAX_CONFLICTS: usize = 16;

/// Run a read-modify-write (an `async` block) until it lands over what it read: another
/// instance may write between the read and the write.
macro_rules! retry_conflicts {
    ($attempt:expr) => {{
        let mut tries = 0;
        loop {
            tries += 1;
            match $attempt.await {
                Err(StoreError::Conflict) if tries < MAX_CONFLICTS => {
                    // Back off a random few milliseconds, more after each loss, so writers
                    // racing on one object spread out instead of colliding again.
                    let jitter = rand::random_range(0..=10 * tries as u64);
                    tracing::debug!(tries, jitter, "lost a write race; reading again");
                    tokio::time::sleep(Duration::from_millis(jitter)).await;
                }
                result => break result,
            }
        }
    }};
}

/// What a conditional write expects to find.
#[derive(Debug, Clone)]
enum Expect {
    /// Nothing at the key.
    Absent,
    /// The object as it was read.
    Version(UpdateVersion),
}

/// The options that make a write land only over what was read (S3 `If-None-Match: *` or
/// `If-Match: <etag>`), so two instances cannot both read the same state and write over each
/// other. The local backend is one process, serialised by its own locks.
fn put_options(shared: bool, expect: &Expect) -> PutOptions {
    let mode = match (shared, expect) {
        (false, _) => PutMode::Overwrite,
        (true, Expect::Absent) => PutMode::Create,
        (true, Expect::Version(v)) => PutMode::Update(v.clone()),
    };
    PutOptions::from(mode)
}

fn conflict_or(e: object_store::Error) -> StoreError {
    match e {
        object_store::Error::Precondition { .. } | object_store::Error::AlreadyExists { .. } => {
            StoreError::Conflict
        }
        e => StoreError::Backend(e),
    }
}

/// A stored object with the version it was read at.
struct Versioned<T> {
    value: T,
    expect: Expect,
}

impl Store {
    /// Open the backend the settings name, with the default policy and config folder rules.
    pub fn open(
        settings: &StorageSettings,
        default: CachePolicy,
        config_rules: BTreeMap<String, CachePolicy>,
    ) -> Result<Self, StoreError> {
        let ttl = Duration::from_millis(settings.cache_ttl_ms);
        match settings.backend {
            Backend::Local => {
                Ok(Self::local(&settings.path, ttl, default, config_rules)?
                    .with_blob_cache(settings))
            }
            Backend::S3 => {
                let s3 = s3::connect(settings)?;
                let mut store = Self::build(s3.objects, s3.blobs, None, ttl, default, config_rules);
                let inner = Arc::get_mut(&mut store.inner).expect("just built");
                inner.multipart = Some(s3.multipart);
                inner.shared = true;
                inner.blob_timeout = Some(s3.timeout);
                inner.transfer_timeout = Some(s3.transfer_timeout);
                inner.stale_uploads = Duration::from_secs(settings.stale_upload_secs);
                Ok(store.with_blob_cache(settings))
            }
        }
    }

    /// Record storage latencies (record and blob reads, commits, ...) in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::Metrics>) -> Self {
        Arc::get_mut(&mut self.inner)
            .expect("metrics are attached before the store is shared")
            .metrics = Some(metrics);
        self
    }

    /// Times `op` until the guard is dropped (nothing without metrics).
    fn timer(&self, op: crate::metrics::StorageOp) -> Option<crate::metrics::StorageTimer<'_>> {
        self.inner.metrics.as_deref().map(|m| m.time(op))
    }

    /// Size the small-blob memory as the settings say.
    fn with_blob_cache(mut self, settings: &StorageSettings) -> Self {
        let inner = Arc::get_mut(&mut self.inner).expect("not shared yet");
        inner.blob_cache = blob_cache(settings.blob_cache_mb);
        inner.blob_cache_object_max = settings.blob_cache_object_kb.saturating_mul(1024);
        self
    }

    /// A store over the local directory `root` (created 0700 if missing).
    ///
    /// What it writes is its user's alone: folders 0700, files 0600. object_store's
    /// `LocalFileSystem` creates them itself (files with `OpenOptions`' default 0o666, written
    /// under a staging name and renamed or hard-linked into place; folders with
    /// `create_dir_all`), and has no setting for their mode, so the process's umask is narrowed
    /// to include 0o077 first: every file and folder is then born private, on every path
    /// object_store writes by (staged `#n` files, multipart parts, parent folders). A chmod
    /// after each write would leave a new file readable by others from its creation to the
    /// chmod (for good, if the process died in between), and would have to find every folder
    /// object_store made on the way. The umask is process-wide: nothing else the server writes
    /// (the token file is 0600 anyway) needs more than its owner. An existing root keeps its
    /// mode, with a warning when group or others may enter it.
    pub fn local(
        root: &std::path::Path,
        cache_ttl: Duration,
        default: CachePolicy,
        config_rules: BTreeMap<String, CachePolicy>,
    ) -> Result<Self, StoreError> {
        #[cfg(unix)]
        {
            use rustix::fs::Mode;
            let private = Mode::RWXG | Mode::RWXO;
            let old = rustix::process::umask(private);
            rustix::process::umask(old | private);
        }
        let existed = root.is_dir();
        let mut dirs = std::fs::DirBuilder::new();
        dirs.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut dirs, 0o700);
        dirs.create(root).map_err(|e| {
            StoreError::Backend(object_store::Error::Generic {
                store: "LocalFileSystem",
                source: format!("cannot create storage directory {}: {e}", root.display()).into(),
            })
        })?;
        #[cfg(unix)]
        if existed
            && let Ok(meta) = std::fs::metadata(root)
            && std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o077 != 0
        {
            tracing::warn!(
                root = %root.display(),
                mode = format!(
                    "{:04o}",
                    std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777
                ),
                "the storage directory is open to group or others; new files in it are 0600, \
                 but `chmod 700` it to keep the assets and the token file private"
            );
        }
        let objects: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new_with_prefix(root)?);
        let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_owned());
        Ok(Self::build(
            Arc::clone(&objects),
            objects,
            Some(root),
            cache_ttl,
            default,
            config_rules,
        ))
    }

    fn build(
        objects: Arc<dyn ObjectStore>,
        blobs: Arc<dyn ObjectStore>,
        local_root: Option<PathBuf>,
        cache_ttl: Duration,
        default: CachePolicy,
        config_rules: BTreeMap<String, CachePolicy>,
    ) -> Self {
        let set = PolicySet {
            default,
            config: config_rules,
            api: BTreeMap::new(),
            signed_config: Default::default(),
            signed_api: Default::default(),
        };
        let defaults = StorageSettings::default();
        let records = moka::sync::Cache::builder()
            .max_capacity(100_000)
            .time_to_live(cache_ttl)
            .build();
        Self {
            inner: Arc::new(Inner {
                objects,
                blobs,
                multipart: None,
                local_root,
                shared: false,
                blob_timeout: None,
                transfer_timeout: None,
                stale_uploads: Duration::ZERO,
                records,
                blob_cache: blob_cache(defaults.blob_cache_mb),
                blob_cache_object_max: defaults.blob_cache_object_kb * 1024,
                record_writes: Mutex::new(0),
                cache_ttl,
                policies: Mutex::new(CachedPolicies {
                    set: Arc::new(set),
                    // Stale from the start, so the first use loads the API rules.
                    loaded: Instant::now() - cache_ttl - Duration::from_secs(1),
                }),
                policy_write: tokio::sync::Mutex::new(()),
                path_locks: Mutex::default(),
                gc_gate: tokio::sync::RwLock::new(()),
                metrics: None,
            }),
        }
    }

    /// True when other instances may share the storage (S3): writes are conditional, and
    /// only stale temporaries are cleaned up.
    pub fn is_shared(&self) -> bool {
        self.inner.shared
    }

    /// Answers when the backend answers: what `/readyz` reports.
    pub async fn check_ready(&self) -> Result<(), StoreError> {
        // The local backend answers a listing of a missing root with nothing at all, so look
        // at the directory itself.
        if let Some(root) = &self.inner.local_root
            && !tokio::fs::metadata(root).await.is_ok_and(|m| m.is_dir())
        {
            return Err(StoreError::Backend(object_store::Error::Generic {
                store: "LocalFileSystem",
                source: format!("storage directory {} is missing", root.display()).into(),
            }));
        }
        self.inner.objects.list_with_delimiter(None).await?;
        Ok(())
    }

    // ---- reading -----------------------------------------------------------------------------

    async fn load_record(&self, path: &str) -> Result<Option<AssetRecord>, StoreError> {
        Ok(self.load_versioned_record(path).await?.value)
    }

    /// The record at `path`, read and validated (see [`AssetRecord::validate`]): every read of a
    /// record goes through here.
    async fn load_versioned_record(
        &self,
        path: &str,
    ) -> Result<Versioned<Option<AssetRecord>>, StoreError> {
        let key = record_key(path);
        let loaded: Versioned<Option<AssetRecord>> = self.load_json(&key).await?;
        if let Some(record) = &loaded.value
            && let Err(reason) = record.validate(path)
        {
            return Err(StoreError::Corrupt {
                key: key.to_string(),
                reason,
            });
        }
        Ok(loaded)
    }

    /// Read a JSON object and the version it was read at; `None` when there is none.
    async fn load_json<T: serde::de::DeserializeOwned>(
        &self,
        key: &Key,
    ) -> Result<Versioned<Option<T>>, StoreError> {
        match self.inner.objects.get(key).await {
            Ok(got) => {
                let expect = Expect::Version(UpdateVersion {
                    e_tag: got.meta.e_tag.clone(),
                    version: got.meta.version.clone(),
                });
                let bytes = got.bytes().await?;
                let value = serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
                    key: key.to_string(),
                    reason: e.to_string(),
                })?;
                Ok(Versioned {
                    value: Some(value),
                    expect,
                })
            }
            Err(object_store::Error::NotFound { .. }) => Ok(Versioned {
                value: None,
                expect: Expect::Absent,
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// The live record at `path` (cached for at most the cache TTL), `None` when there is no
    /// asset.
    pub async fn record(&self, path: &AssetPath) -> Result<Option<Arc<AssetRecord>>, StoreError> {
        if let Some(hit) = self.inner.records.get(path.as_str()) {
            return Ok(hit);
        }
        let generation = *self
            .inner
            .record_writes
            .lock()
            .expect("record write counter");
        let timer = self.timer(crate::metrics::StorageOp::RecordRead);
        let live = self
            .load_record(path.as_str())
            .await?
            .filter(|r| !r.deleted)
            .map(Arc::new);
        drop(timer);
        // A write that finished while this read was under way may have cached a newer record:
        // then what was read here may be older, and must not replace it.
        let writes = self
            .inner
            .record_writes
            .lock()
            .expect("record write counter");
        if *writes == generation {
            self.inner
                .records
                .insert(path.as_str().to_owned(), live.clone());
        }
        drop(writes);
        Ok(live)
    }

    /// Stream the bytes of a blob, optionally only `range` (half-open): a range asks the
    /// backend for those bytes only. On S3 the first byte, and every gap between chunks, is
    /// bounded by the timeout, so a stalled S3 ends the response rather than holding it open.
    pub async fn open_blob(
        &self,
        sha256: &str,
        range: Option<std::ops::Range<u64>>,
    ) -> Result<BoxStream<'static, Result<Bytes, object_store::Error>>, StoreError> {
        let opts = GetOptions {
            range: range.map(GetRange::Bounded),
            ..GetOptions::default()
        };
        let _timer = self.timer(crate::metrics::StorageOp::BlobOpen);
        let key = blob_key(sha256);
        let get = self.inner.blobs.get_opts(&key, opts);
        let Some(limit) = self.inner.blob_timeout else {
            return Ok(get.await?.into_stream().boxed());
        };
        let got = tokio::time::timeout(limit, get)
            .await
            .map_err(|_| StoreError::Timeout {
                operation: "opening a blob",
                after: limit,
            })??;
        Ok(idle_bounded(got.into_stream(), limit))
    }

    /// The bytes a response sends: the blob of `size` bytes, or `range` (half-open) of it.
    ///
    /// Small blobs come from memory once read (blobs are immutable, named by their hash, so a
    /// cached one is never stale). On the local backend larger ones are read from the file in
    /// large chunks; object_store's own reader takes 8 KiB per thread-pool hop, which caps a
    /// download far below what the disk and socket can do.
    pub async fn blob_body(
        &self,
        sha256: &str,
        size: u64,
        range: Option<std::ops::Range<u64>>,
    ) -> Result<BlobBody, StoreError> {
        let slice = |whole: &Bytes| match &range {
            Some(r) => whole.slice(
                usize::try_from(r.start)
                    .unwrap_or(usize::MAX)
                    .min(whole.len())
                    ..usize::try_from(r.end)
                        .unwrap_or(usize::MAX)
                        .min(whole.len()),
            ),
            None => whole.clone(),
        };
        if let Some(cache) = &self.inner.blob_cache
            && size <= self.inner.blob_cache_object_max
        {
            if let Some(whole) = cache.get(sha256) {
                return Ok(BlobBody::Bytes(slice(&whole)));
            }
            let whole = self.read_whole_blob(sha256, size).await?;
            cache.insert(sha256.to_owned(), whole.clone());
            return Ok(BlobBody::Bytes(slice(&whole)));
        }
        if let Some(root) = &self.inner.local_root {
            let _timer = self.timer(crate::metrics::StorageOp::BlobOpen);
            return local_blob_stream(root, sha256, size, range)
                .await
                .map(BlobBody::Stream);
        }
        self.open_blob(sha256, range).await.map(BlobBody::Stream)
    }

    /// All of a small blob, checked against the size its record gives.
    async fn read_whole_blob(&self, sha256: &str, size: u64) -> Result<Bytes, StoreError> {
        let _timer = self.timer(crate::metrics::StorageOp::BlobRead);
        let mut stream = self.open_blob(sha256, None).await?;
        let mut whole = bytes::BytesMut::with_capacity(usize::try_from(size).unwrap_or(0));
        while let Some(chunk) = stream.next().await {
            whole.extend_from_slice(&chunk?);
        }
        if whole.len() as u64 != size {
            return Err(StoreError::Corrupt {
                key: blob_key(sha256).to_string(),
                reason: format!("{} bytes where the record says {size}", whole.len()),
            });
        }
        Ok(whole.freeze())
    }

    /// One page of the live assets whose path starts with `prefix`, in path order, after
    /// `cursor`.
    pub async fn list(
        &self,
        prefix: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        let _timer = self.timer(crate::metrics::StorageOp::List);
        // List the deepest folder the prefix names, then filter on the whole prefix.
        let folder = prefix.rsplit_once('/').map_or("", |(f, _)| f);
        let list_prefix = folder_key(folder);
        let paths: Vec<String> = self
            .inner
            .objects
            .list(Some(&list_prefix))
            .map_ok(|meta| key_to_asset_path(&meta.location))
            .try_collect::<Vec<_>>()
            .await?
            .into_iter()
            .flatten()
            .filter(|p| p.starts_with(prefix) && cursor.is_none_or(|c| p.as_str() > c))
            .collect();
        self.page_of(paths, limit).await
    }

    /// One folder level (`""` for the root): the folders directly in it, and a page of the
    /// assets directly in it, in path order, after `cursor`. What a file browser shows, without
    /// reading every record below.
    pub async fn list_folder(
        &self,
        folder: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<FolderPage, StoreError> {
        let _timer = self.timer(crate::metrics::StorageOp::List);
        let list_prefix = folder_key(folder);
        let level = self
            .inner
            .objects
            .list_with_delimiter(Some(&list_prefix))
            .await?;
        let mut folders: Vec<String> = level
            .common_prefixes
            .iter()
            .filter_map(|key| decode_key(key.as_ref().strip_prefix("assets/")?))
            .collect();
        folders.sort_unstable();
        let paths = level
            .objects
            .iter()
            .filter_map(|meta| key_to_asset_path(&meta.location))
            .filter(|p| cursor.is_none_or(|c| p.as_str() > c))
            .collect();
        Ok(FolderPage {
            folders,
            page: self.page_of(paths, limit).await?,
        })
    }

    /// Whether any record lies below `folder` (`promo` holds `promo/a.jpg` and `promo/x/b.jpg`,
    /// not `promo.jpg` or `promo` itself): whether it is a folder of assets. A deleted asset's
    /// tombstone counts until it is collected.
    pub async fn has_records_below(&self, folder: &str) -> Result<bool, StoreError> {
        let mut below = self.inner.objects.list(Some(&folder_key(folder)));
        Ok(below.try_next().await?.is_some())
    }

    /// The first `limit` of `paths` in order, with their records read (deleted ones left out).
    /// A record that cannot be used is left out too, and named in the page's `errors`; a
    /// storage failure fails the page.
    async fn page_of(&self, mut paths: Vec<String>, limit: usize) -> Result<Page, StoreError> {
        paths.sort_unstable();
        let more = paths.len() > limit;
        paths.truncate(limit);
        let next_cursor = if more { paths.last().cloned() } else { None };
        let loaded = futures::stream::iter(paths)
            .map(|p| async move {
                let loaded = self.load_record(&p).await;
                (p, loaded)
            })
            .buffered(LIST_CONCURRENCY)
            .collect::<Vec<_>>()
            .await;
        let mut records = Vec::with_capacity(loaded.len());
        let mut errors = Vec::new();
        for (path, loaded) in loaded {
            match loaded {
                Ok(Some(record)) if !record.deleted => records.push(Arc::new(record)),
                Ok(_) => {}
                Err(StoreError::Corrupt { key, reason }) => {
                    tracing::warn!(%key, %reason, "a listing skipped an unreadable record");
                    errors.push(UnreadableRecord { path, key, reason });
                }
                Err(e) => return Err(e),
            }
        }
        Ok(Page {
            records,
            next_cursor,
            errors,
        })
    }

    // ---- uploading ---------------------------------------------------------------------------

    /// Stream `body` to a temporary object while hashing it and deciding its type. Fails, with
    /// nothing left behind, as soon as the bytes are known to be unacceptable.
    pub async fn stage<S, E>(&self, body: S, hints: UploadHints<'_>) -> Result<Staged, StoreError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let tmp = Key::from(format!("tmp/{}", uuid::Uuid::new_v4()));
        let mut writer = match &self.inner.multipart {
            Some(multipart) => TmpWriter::Parts(PartWriter::new(
                Arc::clone(&self.inner.blobs),
                Arc::clone(multipart),
                tmp.clone(),
            )),
            None => TmpWriter::Buffered(
                BufWriter::with_capacity(Arc::clone(&self.inner.blobs), tmp.clone(), PART_SIZE)
                    .with_max_concurrency(PARTS_IN_FLIGHT),
            ),
        };
        let written = match write_validated(&mut writer, body, hints).await {
            Ok(done) => writer.finish().await.map(|()| done),
            Err(e) => {
                writer.abort().await;
                Err(e)
            }
        };
        match written {
            Ok((sha256, size, media)) => Ok(Staged {
                tmp,
                sha256,
                size,
                media,
            }),
            Err(e) => {
                self.delete_quietly(&tmp).await;
                if let Some(root) = &self.inner.local_root {
                    remove_local_staging(root, &tmp).await;
                }
                Err(e)
            }
        }
    }

    /// Throw a staged upload away.
    pub async fn discard(&self, staged: Staged) {
        self.delete_quietly(&staged.tmp).await;
    }

    async fn delete_quietly(&self, key: &Key) {
        match self.inner.objects.delete(key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => tracing::warn!(%key, error = %e, "could not delete a temporary object"),
        }
    }

    fn path_lock(&self, path: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.inner.path_locks.lock().expect("path lock map");
        // Drop locks nobody holds any more, so the map stays as small as the writes in flight.
        locks.retain(|_, l| Arc::strong_count(l) > 1);
        Arc::clone(locks.entry(path.to_owned()).or_default())
    }

    /// Make a staged upload the asset at `path`. `cache` sets the asset's override; `None`
    /// keeps the override the path had. The bytes the path already holds, as the same type,
    /// change nothing but `cache` and `filename` when given: the record keeps its
    /// `Last-Modified` (and so its link), and is not written at all when nothing changed.
    pub async fn commit(
        &self,
        path: &AssetPath,
        staged: Staged,
        cache: Option<CachePolicy>,
        filename: Option<&str>,
    ) -> Result<Committed, StoreError> {
        let _timer = self.timer(crate::metrics::StorageOp::Commit);
        let lock = self.path_lock(path.as_str());
        let _held = lock.lock().await;
        let _gate = self.inner.gc_gate.read().await;
        let blob = blob_key(&staged.sha256);
        let mut placed = false;
        let result = retry_conflicts!(async {
            let previous = self.load_versioned_record(path.as_str()).await?;
            if !placed {
                self.place_blob(&staged.tmp, &blob).await?;
                placed = true;
            }
            let live_previous = previous.value.as_ref().filter(|p| !p.deleted);
            if let Some(same) = live_previous.filter(|p| {
                p.sha256 == staged.sha256 && p.content_type == staged.media.content_type
            }) {
                // The same bytes served the same way: the same version. A new `Last-Modified`
                // would change the link and make Meta fetch again what it has; a sync script
                // that uploads everything again must cost nothing. What the upload says besides
                // the content still applies (an override in `cache`, a form's file name), as a
                // PATCH would: without moving the version.
                let mut record = same.clone();
                if let Some(cache) = cache {
                    record.cache_control = Some(cache);
                }
                if let Some(name) = filename {
                    record.filename = name.to_owned();
                }
                let record = if record == *same {
                    Arc::new(record)
                } else {
                    self.write_record(record, &previous.expect).await?
                };
                return Ok(Committed {
                    record,
                    created: false,
                    unchanged: true,
                    dropped_media_ids: Vec::new(),
                });
            }
            let now = wait_for_a_later_second(previous.value.as_ref()).await;
            let record = AssetRecord {
                path: path.as_str().to_owned(),
                sha256: staged.sha256.clone(),
                size: staged.size,
                content_type: staged.media.content_type.clone(),
                last_modified: next_last_modified(previous.value.as_ref(), now),
                cache_control: cache.or(live_previous.and_then(|p| p.cache_control)),
                filename: filename.unwrap_or(path.file_name()).to_owned(),
                uploaded_at: now,
                deleted: false,
                whatsapp: BTreeMap::new(),
                signed: live_previous.and_then(|p| p.signed),
            };
            let created = live_previous.is_none();
            // Media IDs stay valid for the same bytes uploaded again; the others go.
            let (kept, dropped): (BTreeMap<_, _>, BTreeMap<_, _>) = live_previous
                .map(|p| p.whatsapp.clone())
                .unwrap_or_default()
                .into_iter()
                .partition(|(_, m)| m.sha256 == staged.sha256);
            let record = AssetRecord {
                whatsapp: kept,
                ..record
            };
            let record = self.write_record(record, &previous.expect).await?;
            Ok(Committed {
                record,
                created,
                unchanged: false,
                dropped_media_ids: dropped.into_values().collect(),
            })
        });
        if result.is_ok() && self.inner.shared {
            self.ensure_blob(&staged.tmp, &blob).await;
        }
        // On the local backend a placed upload was renamed away; everywhere else it goes now.
        if !(placed && self.inner.local_root.is_some()) {
            self.delete_quietly(&staged.tmp).await;
        }
        result
    }

    /// Put the staged bytes at their blob key. Rename (or copy) even when the blob exists: the
    /// fresh modification time keeps garbage collection off it. S3 has no rename, so the copy
    /// is kept and the temporary object deleted after the record is written (see
    /// [`Self::ensure_blob`]).
    async fn place_blob(&self, tmp: &Key, blob: &Key) -> Result<(), StoreError> {
        if !self.inner.shared {
            return Ok(self.inner.objects.rename(tmp, blob).await?);
        }
        let copy = self.inner.blobs.copy(tmp, blob);
        match self.inner.transfer_timeout {
            Some(limit) => {
                tokio::time::timeout(limit, copy)
                    .await
                    .map_err(|_| StoreError::Timeout {
                        operation: "copying an upload into place",
                        after: limit,
                    })??
            }
            None => copy.await?,
        }
        Ok(())
    }

    /// Another instance's garbage collection may have listed the blob as unreferenced just
    /// before our copy refreshed it and deleted it just after: look once more now the record
    /// is written, and put the bytes back from the temporary object if they are gone.
    async fn ensure_blob(&self, tmp: &Key, blob: &Key) {
        match self.inner.blobs.head(blob).await {
            Ok(_) => {}
            Err(object_store::Error::NotFound { .. }) => {
                tracing::warn!(%blob, "a blob vanished while it was committed; copying it again");
                if let Err(e) = self.place_blob(tmp, blob).await {
                    tracing::error!(%blob, error = %e, "could not restore a committed blob");
                }
            }
            Err(e) => tracing::warn!(%blob, error = %e, "could not confirm a committed blob"),
        }
    }

    /// Write a record over the version `expect` names; [`StoreError::Conflict`] when another
    /// instance wrote first.
    async fn write_record(
        &self,
        record: AssetRecord,
        expect: &Expect,
    ) -> Result<Arc<AssetRecord>, StoreError> {
        let json = serde_json::to_vec_pretty(&record).expect("a record always serialises");
        self.inner
            .objects
            .put_opts(
                &record_key(&record.path),
                PutPayload::from(json),
                put_options(self.inner.shared, expect),
            )
            .await
            .map_err(conflict_or)?;
        let live = (!record.deleted).then(|| Arc::new(record.clone()));
        {
            let mut writes = self
                .inner
                .record_writes
                .lock()
                .expect("record write counter");
            *writes += 1;
            self.inner.records.insert(record.path.clone(), live.clone());
        }
        Ok(live.unwrap_or_else(|| Arc::new(record)))
    }

    /// The live record at `path`, uncached, with the version it was read at.
    async fn load_live_record(
        &self,
        path: &AssetPath,
    ) -> Result<(AssetRecord, Expect), StoreError> {
        let current = self.load_versioned_record(path.as_str()).await?;
        let record = current
            .value
            .filter(|r| !r.deleted)
            .ok_or(StoreError::NotFound)?;
        Ok((record, current.expect))
    }

    /// Set or clear an asset's own policy override. Content and `Last-Modified` are unchanged.
    pub async fn set_override(
        &self,
        path: &AssetPath,
        cache: Option<CachePolicy>,
    ) -> Result<Arc<AssetRecord>, StoreError> {
        self.set_overrides(path, Some(cache), None).await
    }

    /// Change an asset's own settings: its cache policy (`Some(None)` clears it) and its
    /// signed-link setting (`Some(None)` back to its folder's); `None` leaves one as it is.
    pub async fn set_overrides(
        &self,
        path: &AssetPath,
        cache: Option<Option<CachePolicy>>,
        signed: Option<Option<bool>>,
    ) -> Result<Arc<AssetRecord>, StoreError> {
        let lock = self.path_lock(path.as_str());
        let _held = lock.lock().await;
        retry_conflicts!(async {
            let (mut record, expect) = self.load_live_record(path).await?;
            if let Some(cache) = cache {
                record.cache_control = cache;
            }
            if let Some(signed) = signed {
                record.signed = signed;
            }
            self.write_record(record, &expect).await
        })
    }

    /// Delete the asset at `path`: from then on its public URL answers 404. Returns the media
    /// IDs it had.
    pub async fn delete(&self, path: &AssetPath) -> Result<Vec<MediaId>, StoreError> {
        let _timer = self.timer(crate::metrics::StorageOp::Delete);
        let lock = self.path_lock(path.as_str());
        let _held = lock.lock().await;
        retry_conflicts!(async {
            let (mut record, expect) = self.load_live_record(path).await?;
            let now = wait_for_a_later_second(Some(&record)).await;
            record.last_modified = next_last_modified(Some(&record), now);
            record.deleted = true;
            let media = std::mem::take(&mut record.whatsapp);
            self.write_record(record, &expect).await?;
            Ok(media.into_values().collect())
        })
    }

    /// Keep `media` as the asset's media ID for `phone`, if the asset still holds the bytes it
    /// was uploaded with. Returns the new record and the ID it replaced.
    pub async fn attach_media_id(
        &self,
        path: &AssetPath,
        phone: &str,
        media: MediaId,
    ) -> Result<(Arc<AssetRecord>, Option<MediaId>), StoreError> {
        let lock = self.path_lock(path.as_str());
        let _held = lock.lock().await;
        retry_conflicts!(async {
            let (mut record, expect) = self.load_live_record(path).await?;
            if record.sha256 != media.sha256 {
                // Replaced while the upload ran: the ID names bytes the path no longer has.
                return Err(StoreError::Replaced);
            }
            let previous = record.whatsapp.insert(phone.to_owned(), media.clone());
            let record = self.write_record(record, &expect).await?;
            Ok((record, previous))
        })
    }

    // ---- policies ----------------------------------------------------------------------------

    async fn load_policy_file(&self) -> Result<Versioned<PolicyFile>, StoreError> {
        let got = self.load_json(&Key::from(POLICIES_KEY)).await?;
        Ok(Versioned {
            value: got.value.unwrap_or_default(),
            expect: got.expect,
        })
    }

    fn install_policies(&self, file: PolicyFile) -> Arc<PolicySet> {
        let mut cached = self.inner.policies.lock().expect("policy cache");
        let set = Arc::new(PolicySet {
            api: file.folders,
            signed_api: file.signed,
            ..(*cached.set).clone()
        });
        cached.set = Arc::clone(&set);
        cached.loaded = Instant::now();
        set
    }

    /// The current policy set. Rules set through another instance show within the cache TTL;
    /// if the store cannot be read, the last known rules keep applying.
    pub async fn policies(&self) -> Arc<PolicySet> {
        {
            let cached = self.inner.policies.lock().expect("policy cache");
            if cached.loaded.elapsed() <= self.inner.cache_ttl {
                return Arc::clone(&cached.set);
            }
        }
        let timer = self.timer(crate::metrics::StorageOp::PoliciesRead);
        let loaded = self.load_policy_file().await;
        drop(timer);
        match loaded {
            Ok(file) => self.install_policies(file.value),
            Err(e) => {
                tracing::warn!(error = %e, "could not refresh folder policies; keeping the last known");
                Arc::clone(&self.inner.policies.lock().expect("policy cache").set)
            }
        }
    }

    /// Set (`Some`) or remove (`None`) the API rule for `folder`. Returns whether a rule existed
    /// before.
    pub async fn set_folder_policy(
        &self,
        folder: &str,
        policy: Option<CachePolicy>,
    ) -> Result<bool, StoreError> {
        self.edit_policy_file(|file| match policy {
            Some(p) => (file.folders.insert(folder.to_owned(), p).is_some(), true),
            None => {
                let existed = file.folders.remove(folder).is_some();
                (existed, existed)
            }
        })
        .await
    }

    /// Mark `folder` as served only through signed links (`true`) or not. Returns whether it
    /// was marked before.
    pub async fn set_folder_signed(&self, folder: &str, signed: bool) -> Result<bool, StoreError> {
        self.edit_policy_file(|file| {
            let was = if signed {
                !file.signed.insert(folder.to_owned())
            } else {
                file.signed.remove(folder)
            };
            (was, was != signed)
        })
        .await
    }

    /// The folder names that `[signing] folders` marks signed-only.
    pub fn set_signed_config_folders(&self, folders: impl IntoIterator<Item = String>) {
        let mut cached = self.inner.policies.lock().expect("policy cache");
        let set = PolicySet {
            signed_config: folders.into_iter().collect(),
            ..(*cached.set).clone()
        };
        cached.set = Arc::new(set);
    }

    /// Replace what the config file declares (a reload): the default policy, the
    /// `[cache.folders]` rules and the `[signing] folders`, all at once. Rules and signed-only
    /// folders set through the API are stored apart and stay as they are.
    pub fn set_config_policies(
        &self,
        default: CachePolicy,
        rules: BTreeMap<String, CachePolicy>,
        signed_folders: impl IntoIterator<Item = String>,
    ) {
        let mut cached = self.inner.policies.lock().expect("policy cache");
        let set = PolicySet {
            default,
            config: rules,
            signed_config: signed_folders.into_iter().collect(),
            ..(*cached.set).clone()
        };
        cached.set = Arc::new(set);
    }

    /// Read-modify-write of the policy file, conditional on its version. `edit` answers what
    /// the caller returns and whether anything changed (nothing is written otherwise).
    async fn edit_policy_file<T: Copy>(
        &self,
        edit: impl Fn(&mut PolicyFile) -> (T, bool),
    ) -> Result<T, StoreError> {
        let _held = self.inner.policy_write.lock().await;
        retry_conflicts!(async {
            let Versioned {
                value: mut file,
                expect,
            } = self.load_policy_file().await?;
            let (answer, changed) = edit(&mut file);
            if changed {
                let json = serde_json::to_vec_pretty(&file).expect("policies always serialise");
                self.inner
                    .objects
                    .put_opts(
                        &Key::from(POLICIES_KEY),
                        PutPayload::from(json),
                        put_options(self.inner.shared, &expect),
                    )
                    .await
                    .map_err(conflict_or)?;
            }
            self.install_policies(file);
            Ok(answer)
        })
    }

    // ---- housekeeping ------------------------------------------------------------------------

    /// Remove what interrupted uploads left under `tmp/`: temporary objects, and the
    /// multipart uploads their markers name. On the local backend this process is the only
    /// writer, so everything goes, with the staging files object_store writes beside a
    /// destination (`name#N`); run it before serving. On S3 other instances may be uploading
    /// into the same bucket, so only what is older than `stale_upload_secs` goes.
    pub async fn clean_up_interrupted_uploads(&self) -> Result<usize, StoreError> {
        let mut removed = 0;
        if let Some(root) = &self.inner.local_root {
            let root = root.clone();
            removed += tokio::task::spawn_blocking(move || remove_staging_files(&root))
                .await
                .unwrap_or(0);
        }
        let stale_before = if self.inner.shared {
            chrono_cutoff(self.inner.stale_uploads)
        } else {
            chrono::DateTime::<chrono::Utc>::MAX_UTC
        };
        let leftovers: Vec<_> = self
            .inner
            .objects
            .list(Some(&Key::from("tmp")))
            .try_filter(|m| futures::future::ready(m.last_modified < stale_before))
            .map_ok(|m| m.location)
            .try_collect()
            .await?;
        for key in leftovers {
            if key.as_ref().ends_with(MARKER_SUFFIX)
                && let Some(multipart) = &self.inner.multipart
            {
                multipart.abort_marked(&*self.inner.objects, &key).await?;
            } else {
                self.delete_quietly(&key).await;
            }
            removed += 1;
        }
        Ok(removed)
    }

    /// Delete blobs no record references and that are older than `grace`, and tombstones past
    /// their time. The grace period covers uploads between blob and record write on other
    /// instances, and downloads still streaming an old version.
    pub async fn collect_garbage(&self, grace: Duration) -> Result<GcReport, StoreError> {
        let mut report = GcReport::default();
        // Candidates first: a blob renamed into place after this listing is not one.
        let cutoff = chrono_cutoff(grace);
        let candidates: Vec<_> = self
            .inner
            .objects
            .list(Some(&Key::from("blobs/sha256")))
            .try_filter(|m| futures::future::ready(m.last_modified < cutoff))
            .try_collect()
            .await?;
        let record_keys: Vec<_> = self
            .inner
            .objects
            .list(Some(&Key::from("assets")))
            .map_ok(|m| m.location)
            .try_collect()
            .await?;
        let mut referenced = HashSet::new();
        let now = unix_now();
        for key in record_keys {
            let Some(path) = key_to_asset_path(&key) else {
                continue;
            };
            let record = match self.load_record(&path).await {
                Ok(Some(record)) => record,
                Ok(None) => continue,
                Err(StoreError::Corrupt { reason, .. }) => {
                    // Which blob it meant is unknown: keep every one its bytes name, so a
                    // record repaired later still finds its bytes.
                    let kept = self.hashes_named_by(&key).await?;
                    tracing::warn!(%key, %reason, kept_blobs = kept.len(), "garbage collection skipped an unreadable record");
                    if let Some(metrics) = &self.inner.metrics {
                        metrics.gc_unreadable_record();
                    }
                    report.unreadable_records += 1;
                    referenced.extend(kept);
                    continue;
                }
                Err(e) => return Err(e),
            };
            if record.deleted {
                // Another instance may re-upload at this path between our read and our delete,
                // and S3 has no conditional delete: on a shared bucket tombstones stay.
                if !self.inner.shared && record.last_modified + TOMBSTONE_TTL < now {
                    self.delete_quietly(&key).await;
                    report.tombstones += 1;
                }
            } else {
                referenced.insert(record.sha256);
            }
        }
        for blob in candidates {
            let Some(name) = blob.location.filename() else {
                continue;
            };
            if referenced.contains(name) {
                continue;
            }
            // A commit since the listings may have renamed the same bytes onto this blob (which
            // refreshes its time) and written a record for it: commits hold the gate shared
            // from rename to record write, so look again under the gate before deleting.
            let _gate = self.inner.gc_gate.write().await;
            match self.inner.objects.head(&blob.location).await {
                Ok(now) if now.last_modified < cutoff => {
                    self.delete_quietly(&blob.location).await;
                    report.blobs += 1;
                }
                _ => {}
            }
        }
        Ok(report)
    }
}

impl Store {
    /// Every SHA-256 the object at `key` spells out (runs of exactly 64 hex digits, in either
    /// case, as blob names are written): what an unreadable record may still reference.
    async fn hashes_named_by(&self, key: &Key) -> Result<Vec<String>, StoreError> {
        let bytes = match self.inner.objects.get(key).await {
            Ok(got) => got.bytes().await?,
            Err(object_store::Error::NotFound { .. }) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        Ok(hex_runs(&bytes))
    }
}

/// The runs of exactly 64 ASCII hex digits in `bytes`, lowercased.
fn hex_runs(bytes: &[u8]) -> Vec<String> {
    bytes
        .split(|b| !b.is_ascii_hexdigit())
        .filter(|run| run.len() == 64)
        .map(|run| String::from_utf8_lossy(run).to_ascii_lowercase())
        .collect()
}

/// End a download with an error when no chunk arrives within `limit`.
/// The response body of a blob: from memory or streamed.
pub enum BlobBody {
    /// Already in memory.
    Bytes(Bytes),
    /// Read as it is sent.
    Stream(BoxStream<'static, Result<Bytes, object_store::Error>>),
}

/// How much a local blob read takes at a time.
const LOCAL_READ_CHUNK: usize = 256 * 1024;

fn blob_cache(megabytes: u64) -> Option<moka::sync::Cache<String, Bytes>> {
    (megabytes > 0).then(|| {
        moka::sync::Cache::builder()
            .max_capacity(megabytes.saturating_mul(1024 * 1024))
            .weigher(|_, b: &Bytes| u32::try_from(b.len()).unwrap_or(u32::MAX))
            .build()
    })
}

/// A local blob file, or `range` of it, streamed in [`LOCAL_READ_CHUNK`] reads.
async fn local_blob_stream(
    root: &std::path::Path,
    sha256: &str,
    size: u64,
    range: Option<std::ops::Range<u64>>,
) -> Result<BoxStream<'static, Result<Bytes, object_store::Error>>, StoreError> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let key = blob_key(sha256);
    let file_path = root.join(key.as_ref());
    let io_error = move |e: std::io::Error| {
        if e.kind() == std::io::ErrorKind::NotFound {
            object_store::Error::NotFound {
                path: key.to_string(),
                source: Box::new(e),
            }
        } else {
            object_store::Error::Generic {
                store: "LocalFileSystem",
                source: Box::new(e),
            }
        }
    };
    let mut file = tokio::fs::File::open(&file_path).await.map_err(&io_error)?;
    let (start, end) = range.map_or((0, size), |r| (r.start, r.end));
    if start > 0 {
        file.seek(std::io::SeekFrom::Start(start))
            .await
            .map_err(&io_error)?;
    }
    let reader = file.take(end.saturating_sub(start));
    Ok(
        tokio_util::io::ReaderStream::with_capacity(reader, LOCAL_READ_CHUNK)
            .map_err(io_error)
            .boxed(),
    )
}

fn idle_bounded(
    stream: BoxStream<'static, Result<Bytes, object_store::Error>>,
    limit: Duration,
) -> BoxStream<'static, Result<Bytes, object_store::Error>> {
    futures::stream::unfold(Some(stream), move |state| async move {
        let mut stream = state?;
        match tokio::time::timeout(limit, stream.next()).await {
            Ok(Some(item)) => Some((item, Some(stream))),
            Ok(None) => None,
            Err(_) => Some((
                Err(object_store::Error::Generic {
                    store: "S3",
                    source: format!("no data from the backend for {limit:?}").into(),
                }),
                None,
            )),
        }
    })
    .boxed()
}

fn chrono_cutoff(grace: Duration) -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now() - chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::MAX)
}

/// The longest a write waits for the clock to pass the previous `Last-Modified`.
const MAX_CLOCK_WAIT: Duration = Duration::from_secs(2);

/// Wait, holding the path's lock, until the wall clock is past the previous `Last-Modified`,
/// and return the time then. HTTP dates have one-second resolution, Meta refreshes a `no-cache`
/// asset only when the value differs, and RFC 9110 §8.8.2.1 forbids a `Last-Modified` later
/// than the response's `Date`: so a second write within one second is published at the next
/// second rather than stamped in the future. Only if the clock went backwards by more than
/// [`MAX_CLOCK_WAIT`] does the stamp run ahead of the clock, to keep moving forward.
async fn wait_for_a_later_second(previous: Option<&AssetRecord>) -> u64 {
    if let Some(previous) = previous {
        let target = UNIX_EPOCH + Duration::from_secs(previous.last_modified + 1);
        if let Ok(wait) = target.duration_since(SystemTime::now()) {
            if wait <= MAX_CLOCK_WAIT {
                tokio::time::sleep(wait).await;
            } else {
                tracing::warn!(path = %previous.path, ?wait, "the clock is behind this asset's Last-Modified; stamping ahead of it");
            }
        }
    }
    unix_now()
}

/// `Last-Modified` for a new version: now, and always at least one second after the previous
/// value (see [`wait_for_a_later_second`]).
fn next_last_modified(previous: Option<&AssetRecord>, now: u64) -> u64 {
    previous.map_or(now, |p| now.max(p.last_modified + 1))
}

/// `assets/promo/a.jpg.json` → `promo/a.jpg`; `None` for anything else.
fn key_to_asset_path(key: &Key) -> Option<String> {
    decode_key(
        key.as_ref()
            .strip_prefix("assets/")?
            .strip_suffix(".json")?,
    )
}

/// A key's text as the path it stands for: object_store percent-encodes some characters in
/// keys, and asset paths never contain '%'.
fn decode_key(raw: &str) -> Option<String> {
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

/// The key under which a folder's records lie (`""`: all of them).
fn folder_key(folder: &str) -> Key {
    if folder.is_empty() {
        Key::from("assets")
    } else {
        Key::from(format!("assets/{folder}"))
    }
}

/// Remove the staging files object_store writes beside `key` on the local backend
/// (`<name>#<n>`). A multipart write that fails as it finishes leaves its file to a background
/// task of object_store's, which may run after the client has been answered (or never, if the
/// process dies first): remove it now, so the space is free before the failure is reported.
async fn remove_local_staging(root: &std::path::Path, key: &Key) {
    let file = root.join(key.as_ref());
    let (Some(dir), Some(name)) = (file.parent(), file.file_name()) else {
        return;
    };
    let prefix = format!("{}#", name.to_string_lossy());
    let Ok(mut entries) = tokio::fs::read_dir(dir).await else {
        return;
    };
    while let Ok(Some(entry)) = entries.next_entry().await {
        if entry.file_name().to_string_lossy().starts_with(&prefix)
            && let Err(e) = tokio::fs::remove_file(entry.path()).await
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(file = %entry.path().display(), error = %e, "could not remove a staging file");
        }
    }
}

/// Walk the local root and remove object_store's staging files (`<name>#<n>`): a crash during
/// a write leaves them, and asset paths never contain `#`.
fn remove_staging_files(root: &std::path::Path) -> usize {
    let mut removed = 0;
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(path),
                Ok(_)
                    if entry.file_name().to_string_lossy().contains('#')
                        && std::fs::remove_file(&path).is_ok() =>
                {
                    removed += 1;
                }
                _ => {}
            }
        }
    }
    removed
}

/// Copy `body` into `writer`, hashing it and deciding its type from the first bytes; stops at
/// the first sign that the upload is unacceptable.
async fn write_validated<S, E>(
    writer: &mut TmpWriter,
    mut body: S,
    hints: UploadHints<'_>,
) -> Result<(String, u64, MediaType), StoreError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let mut hasher = Sha256::new();
    let mut inspector = media_kind::Inspector::new();
    let mut limit = media_kind::MAX_UPLOAD_SIZE;
    let mut decided = false;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| StoreError::Body(e.to_string()))?;
        inspector.update(&chunk);
        let size = inspector.size();
        if !decided && inspector.head().len() == media_kind::SNIFF_LEN {
            // The head is enough for the kind, hence the size limit, while the rest streams
            // in; the final decision below reads what the inspector kept of the whole.
            limit = inspector
                .provisional(hints.content_type, hints.filename)?
                .kind
                .max_size();
            decided = true;
        }
        if size > limit {
            return Err(too_large(inspector.head(), hints, size, limit));
        }
        hasher.update(&chunk);
        writer.put(chunk).await?;
    }
    let size = inspector.size();
    let media = inspector.finish(hints.content_type, hints.filename)?;
    Ok((hex::encode(hasher.finalize()), size, media))
}

/// The most precise "too large" error: the kind's own limit when the bytes say the kind.
fn too_large(head: &[u8], hints: UploadHints<'_>, size: u64, limit: u64) -> StoreError {
    match media_kind::resolve(hints.content_type, hints.filename, head, size) {
        Err(e @ MediaError::TooLarge { .. }) => e.into(),
        _ => StoreError::TooLarge { limit },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_modified_always_moves_forward() {
        let rec = |lm| AssetRecord {
            path: "a".into(),
            sha256: "0".repeat(64),
            size: 1,
            content_type: "image/png".into(),
            last_modified: lm,
            cache_control: None,
            filename: "a".into(),
            uploaded_at: lm,
            deleted: false,
            whatsapp: BTreeMap::new(),
            signed: None,
        };
        assert_eq!(next_last_modified(None, 100), 100);
        assert_eq!(next_last_modified(Some(&rec(50)), 100), 100);
        assert_eq!(next_last_modified(Some(&rec(100)), 100), 101);
        // Clock went backwards: still forward.
        assert_eq!(next_last_modified(Some(&rec(200)), 100), 201);
    }

    #[test]
    fn hashes_are_found_in_unreadable_records() {
        let a = "0123456789abcdef".repeat(4);
        let b = "FEDCBA9876543210".repeat(4);
        let text = format!(
            "{{\"path\": \"x\", \"sha256\": \"{a}\", \"whatsapp\": {{\"1\": {{\"sha256\": \"{b}\"}}, \"x\": \"{a}0\", \"y\": \"{}\"}}",
            &a[..63]
        );
        assert_eq!(
            hex_runs(text.as_bytes()),
            vec![a.clone(), b.to_ascii_lowercase()]
        );
        // Cut off just after the hash: still found.
        assert_eq!(hex_runs(format!("{{\"sha256\": \"{a}").as_bytes()), vec![a]);
        assert_eq!(hex_runs(b"not json at all"), Vec::<String>::new());
    }

    #[test]
    fn record_keys_map_back_to_paths() {
        for p in ["a.jpg", "promo/x/Café [1].png", "a.json"] {
            assert_eq!(key_to_asset_path(&record_key(p)).as_deref(), Some(p));
        }
        assert_eq!(key_to_asset_path(&Key::from("blobs/sha256/ab/abc")), None);
    }
}
