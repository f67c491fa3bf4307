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

mod backend;
mod blobs;
mod cached;
mod front;
mod housekeeping;
mod incoming;
mod ingest;
mod keys;
mod mapped;
mod policies;
pub mod probe;
mod records;
pub mod s3;
mod upload;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use object_store::ObjectStore;

use crate::config::{self, StorageSettings};
use crate::media_kind::MediaError;
use crate::policy::{CachePolicy, PolicySet};
use backend::Backend;
use blobs::blob_cache;
use policies::CachedPolicies;

pub use blobs::BlobBody;
pub use cached::{CachedRecord, Derived};
pub use housekeeping::GcReport;
pub use incoming::{IncomingHints, StagedIncoming};
pub use ingest::{Committed, Staged, UploadHints};
#[cfg(test)]
pub(crate) use mapped::map_whole;
pub use mapped::{FileSlice, file_behind};
pub use records::{FolderPage, Page, UnreadableRecord};

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

/// The asset store shared by every handler: cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    /// Records, policies, listings, small writes (and on local disk and in memory, blobs too).
    objects: Arc<dyn ObjectStore>,
    /// Local disk, S3 or memory, with what only that backend has.
    backend: Backend,
    records: moka::sync::Cache<String, Option<Arc<CachedRecord>>, ahash::RandomState>,
    /// Bytes of small blobs by SHA-256, weighed by length (see [`Store::blob_body`]).
    blob_cache: Option<BlobBytes>,
    /// Whole local blobs mapped into memory, by SHA-256 (local disk only; see [`mapped`]).
    mapped: Option<BlobBytes>,
    /// The largest blob `blob_cache` takes.
    blob_cache_object_max: u64,
    /// Counts record writes; a cache fill only lands if none finished during its read.
    record_writes: Mutex<u64>,
    /// This store's id and record generation for the per-thread front of `records`.
    front: front::StoreId,
    cache_ttl: Duration,
    policies: Mutex<CachedPolicies>,
    /// Held by the one request that refreshes expired policies; the others wait for it and
    /// take what it read (one backend read per expiry, not one per concurrent request).
    policy_refresh: tokio::sync::Mutex<()>,
    /// Per path, held by the one request that reads a missing record into the cache; the
    /// others wait and take the cached result (single-flight misses).
    record_loads: Mutex<std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    policy_write: tokio::sync::Mutex<()>,
    path_locks: Mutex<std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Commits hold it shared from blob rename to record write; garbage collection holds it
    /// exclusively while it re-checks and deletes one blob.
    gc_gate: tokio::sync::RwLock<()>,
    /// Where storage latencies are recorded, when the server keeps metrics (set once, before
    /// the store serves).
    metrics: OnceLock<Arc<crate::metrics::Metrics>>,
}

/// Blob bytes by SHA-256 (the heap cache on S3, the mapped cache on local disk), hashed with
/// aHash: a blob lookup is on the path of every GET, and SipHash was 1% of a small one.
type BlobBytes = moka::sync::Cache<String, Bytes, ahash::RandomState>;

impl Inner {
    /// The client blobs are streamed through (see [`Backend::blobs`]).
    fn blobs(&self) -> &Arc<dyn ObjectStore> {
        self.backend.blobs(&self.objects)
    }
}

impl Store {
    /// Open the backend the settings name, with the default policy and config folder rules.
    pub fn open(
        settings: &StorageSettings,
        default: CachePolicy,
        config_rules: BTreeMap<String, CachePolicy>,
    ) -> Result<Self, StoreError> {
        let (objects, backend) = match settings.backend {
            config::Backend::Local => backend::open_local(&settings.path)?,
            config::Backend::S3 => {
                let s3 = s3::connect(settings)?;
                let backend = Backend::S3 {
                    blobs: s3.blobs,
                    multipart: s3.multipart,
                    blob_timeout: s3.timeout,
                    transfer_timeout: s3.transfer_timeout,
                    stale_uploads: Duration::from_secs(settings.stale_upload_secs),
                };
                (s3.objects, backend)
            }
        };
        Ok(Self::new(objects, backend, settings, default, config_rules))
    }

    /// The one constructor: the store over `objects` on `backend`, its caches sized as
    /// `settings` say.
    fn new(
        objects: Arc<dyn ObjectStore>,
        backend: Backend,
        settings: &StorageSettings,
        default: CachePolicy,
        config_rules: BTreeMap<String, CachePolicy>,
    ) -> Self {
        let cache_ttl = Duration::from_millis(settings.cache_ttl_ms);
        let set = PolicySet {
            default,
            config: config_rules,
            api: BTreeMap::new(),
            signed_config: Default::default(),
            signed_api: Default::default(),
        };
        let records = moka::sync::Cache::builder()
            .max_capacity(100_000)
            .time_to_live(cache_ttl)
            // Keys are URL paths, missing ones included (cached as `None`), so the hash must
            // resist flooding; aHash is a keyed hash like SipHash at a fraction of its cost
            // on the path of every GET.
            .build_with_hasher(ahash::RandomState::new());
        Self {
            inner: Arc::new(Inner {
                mapped: backend.local_root().map(|_| mapped::cache()),
                // On local disk the page cache is the blob memory: blobs are mapped and sent
                // with sendfile, so a copy on the heap would only cost a copy per response.
                blob_cache: match backend.local_root() {
                    Some(_) => None,
                    None => blob_cache(settings.blob_cache_mb),
                },
                objects,
                backend,
                records,
                blob_cache_object_max: settings.blob_cache_object_kb.saturating_mul(1024),
                record_writes: Mutex::new(0),
                front: front::StoreId::new(),
                cache_ttl,
                policies: Mutex::new(CachedPolicies {
                    set: Arc::new(set),
                    // Stale from the start, so the first use loads the API rules.
                    loaded: Instant::now() - cache_ttl - Duration::from_secs(1),
                }),
                policy_refresh: tokio::sync::Mutex::new(()),
                record_loads: Mutex::default(),
                policy_write: tokio::sync::Mutex::new(()),
                path_locks: Mutex::default(),
                gc_gate: tokio::sync::RwLock::new(()),
                metrics: OnceLock::new(),
            }),
        }
    }

    /// A store in memory (object_store's `InMemory`), for unit tests: `shared` makes it stand
    /// for a bucket other instances write to, as S3 does.
    #[cfg(test)]
    pub(crate) fn memory(shared: bool) -> Self {
        Self::new(
            Arc::new(object_store::memory::InMemory::new()),
            Backend::Memory { shared },
            &StorageSettings::default(),
            CachePolicy::NoCache,
            BTreeMap::new(),
        )
    }

    /// Another instance over the same objects in memory (its own caches and locks), as a
    /// second server over one bucket.
    #[cfg(test)]
    pub(crate) fn another_instance(&self) -> Self {
        Self::new(
            Arc::clone(&self.inner.objects),
            Backend::Memory {
                shared: self.is_shared(),
            },
            &StorageSettings::default(),
            CachePolicy::NoCache,
            BTreeMap::new(),
        )
    }

    /// Record storage latencies (record and blob reads, commits, ...) in `metrics`. Attach them
    /// before the store serves; a second call changes nothing.
    pub fn with_metrics(self, metrics: Arc<crate::metrics::Metrics>) -> Self {
        if self.inner.metrics.set(metrics).is_err() {
            tracing::debug!("storage metrics were attached already");
        }
        self
    }

    /// Times `op` until the guard is dropped (nothing without metrics).
    fn timer(&self, op: crate::metrics::StorageOp) -> Option<crate::metrics::StorageTimer<'_>> {
        self.inner.metrics.get().map(|m| m.time(op))
    }

    /// True when other instances may share the storage (S3): writes are conditional, and
    /// only stale temporaries are cleaned up.
    pub fn is_shared(&self) -> bool {
        self.inner.backend.is_shared()
    }

    /// Answers when the backend answers: what `/readyz` reports.
    pub async fn check_ready(&self) -> Result<(), StoreError> {
        // The local backend answers a listing of a missing root with nothing at all, so look
        // at the directory itself.
        if let Some(root) = self.inner.backend.local_root()
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
}

/// What the unit tests of the rooms share: uploads of plain text into a store in memory.
#[cfg(test)]
mod testing {
    use std::collections::BTreeMap;
    use std::sync::Arc;
    use std::time::Duration;

    use futures::stream::BoxStream;
    use object_store::memory::InMemory;
    use object_store::path::Path as Key;
    use object_store::{
        GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
        PutMultipartOptions, PutOptions, PutPayload, PutResult,
    };

    use super::backend::Backend;
    use super::{Committed, Store, UploadHints};
    use crate::asset::AssetPath;
    use crate::config::StorageSettings;
    use crate::policy::CachePolicy;

    /// Objects in memory whose reads take a while, so concurrent cache misses overlap.
    #[derive(Debug)]
    struct SlowReads {
        objects: InMemory,
        delay: Duration,
    }

    impl std::fmt::Display for SlowReads {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "SlowReads({:?})", self.delay)
        }
    }

    #[async_trait::async_trait]
    impl ObjectStore for SlowReads {
        async fn put_opts(
            &self,
            location: &Key,
            payload: PutPayload,
            opts: PutOptions,
        ) -> object_store::Result<PutResult> {
            self.objects.put_opts(location, payload, opts).await
        }

        async fn put_multipart_opts(
            &self,
            location: &Key,
            opts: PutMultipartOptions,
        ) -> object_store::Result<Box<dyn MultipartUpload>> {
            self.objects.put_multipart_opts(location, opts).await
        }

        async fn get_opts(
            &self,
            location: &Key,
            options: GetOptions,
        ) -> object_store::Result<GetResult> {
            tokio::time::sleep(self.delay).await;
            self.objects.get_opts(location, options).await
        }

        async fn delete(&self, location: &Key) -> object_store::Result<()> {
            self.objects.delete(location).await
        }

        fn list(
            &self,
            prefix: Option<&Key>,
        ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
            self.objects.list(prefix)
        }

        async fn list_with_delimiter(
            &self,
            prefix: Option<&Key>,
        ) -> object_store::Result<ListResult> {
            self.objects.list_with_delimiter(prefix).await
        }

        async fn copy(&self, from: &Key, to: &Key) -> object_store::Result<()> {
            self.objects.copy(from, to).await
        }

        async fn copy_if_not_exists(&self, from: &Key, to: &Key) -> object_store::Result<()> {
            self.objects.copy_if_not_exists(from, to).await
        }
    }

    /// A store in memory whose every read takes `delay`.
    pub(super) fn slow_store(delay: Duration) -> Store {
        Store::new(
            Arc::new(SlowReads {
                objects: InMemory::new(),
                delay,
            }),
            Backend::Memory { shared: false },
            &StorageSettings::default(),
            CachePolicy::NoCache,
            BTreeMap::new(),
        )
    }

    /// The path `raw`, which must be valid.
    pub(super) fn path(raw: &str) -> AssetPath {
        AssetPath::parse(raw).expect("a valid test path")
    }

    /// Stage and commit `text` as `text/plain` at `raw`.
    pub(super) async fn put(store: &Store, raw: &str, text: &str) -> Committed {
        let body = futures::stream::iter([Ok::<_, std::convert::Infallible>(
            bytes::Bytes::copy_from_slice(text.as_bytes()),
        )]);
        let hints = UploadHints {
            content_type: Some("text/plain"),
            filename: Some("notes.txt"),
        };
        let staged = store.stage(body, hints).await.expect("staged");
        store
            .commit(&path(raw), staged, None, None)
            .await
            .expect("committed")
    }
}
