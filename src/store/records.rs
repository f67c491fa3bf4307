//! Records and their cache: reading and validating the record of a path, listings, and the
//! writes that change a record in place (overrides, deletion as a tombstone), with the
//! `Last-Modified` stepping every content change goes through.

use std::sync::Arc;
use std::time::Instant;

use futures::{StreamExt, TryStreamExt};
use object_store::PutPayload;
use object_store::path::Path as Key;
use serde::Serialize;

use super::backend::{Expect, Versioned, conflict_or, put_options, retry_conflicts};
use super::keys::{decode_key, folder_key, key_to_asset_path, record_key};
use super::{CachedRecord, Store, StoreError, front};
use crate::asset::{AssetPath, AssetRecord, MediaId};
use crate::clock::{next_last_modified, wait_for_a_later_second};
use crate::policy::CachePolicy;

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
    /// Full paths of the folders directly inside that hold at least one live asset (or a
    /// record that cannot be read, which the folder's own listing names), sorted. A folder
    /// whose assets were all deleted is not one: its tombstones stay until a garbage
    /// collection (on a shared bucket, for good), and on local disk its directory until then.
    pub folders: Vec<String>,
    /// The assets directly inside.
    pub page: Page,
}

impl Store {
    pub(super) async fn load_record(&self, path: &str) -> Result<Option<AssetRecord>, StoreError> {
        Ok(self.load_versioned_record(path).await?.value)
    }

    /// The record at `path`, read and validated (see [`AssetRecord::validate`]): every read of a
    /// record goes through here.
    pub(super) async fn load_versioned_record(
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

    /// The live record at `path` (cached for at most the cache TTL), `None` when there is no
    /// asset.
    pub async fn record(&self, path: &AssetPath) -> Result<Option<Arc<AssetRecord>>, StoreError> {
        Ok(self
            .cached_record(path)
            .await?
            .map(|c| Arc::clone(&c.record)))
    }

    /// The cache's entry for the raw URL path `raw` (the tail of `/media/...`, not decoded),
    /// when it has one: `Some(None)` for a path known to have no asset. No parsing is needed:
    /// every key of the cache is a valid path as [`AssetPath::parse`] returns it, which parses
    /// to itself and holds no `%` (refused in paths), so a raw path without `%` that is a key
    /// is what [`AssetPath::from_url`] would make of it. `None` when not cached: then parse.
    ///
    /// This thread's last records are looked at first (see [`super::front`]).
    pub fn cached_record_of_url(&self, raw: &str) -> Option<Option<Arc<CachedRecord>>> {
        if raw.contains('%') {
            return None;
        }
        let ttl = self.inner.cache_ttl;
        if ttl.is_zero() {
            return self.inner.records.get(raw);
        }
        // The front before the cache: see its module documentation.
        let miss = match front::get(&self.inner.front, raw, Instant::now()) {
            Ok(hit) => return Some(Some(hit)),
            Err(miss) => miss,
        };
        let found = self.inner.records.get(raw);
        if let Some(Some(cached)) = &found {
            front::keep(miss, raw, cached, cached.loaded + ttl);
        }
        found
    }

    /// The live record at `path` as the cache holds it, with what serving derived from it (see
    /// [`CachedRecord`]); `None` when there is no asset.
    ///
    /// Misses are single-flight: concurrent requests for a path that is not cached make one
    /// backend read, and the others take its result from the cache.
    pub async fn cached_record(
        &self,
        path: &AssetPath,
    ) -> Result<Option<Arc<CachedRecord>>, StoreError> {
        if let Some(hit) = self.inner.records.get(path.as_str()) {
            return Ok(hit);
        }
        // With the cache off there is nothing to share: every request reads.
        let gate = (!self.inner.cache_ttl.is_zero()).then(|| self.record_load_gate(path.as_str()));
        let _loading = match &gate {
            Some(gate) => Some(gate.lock().await),
            None => None,
        };
        if gate.is_some()
            && let Some(hit) = self.inner.records.get(path.as_str())
        {
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
            .map(|r| CachedRecord::new(Arc::new(r)));
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

    /// The lock that makes record misses at `path` single-flight (entries nobody holds are
    /// dropped as new ones are made, so the map stays as small as the misses in flight).
    fn record_load_gate(&self, path: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut gates = self.inner.record_loads.lock().expect("record load gates");
        gates.retain(|_, g| Arc::strong_count(g) > 1);
        Arc::clone(gates.entry(path.to_owned()).or_default())
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
        let mut folders = Vec::with_capacity(level.common_prefixes.len());
        for key in &level.common_prefixes {
            let Some(folder) = key.as_ref().strip_prefix("assets/").and_then(decode_key) else {
                continue;
            };
            if self.has_live_record_below(key).await? {
                folders.push(folder);
            }
        }
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

    /// Whether any record under the folder key `folder` is live (or unreadable: the folder's
    /// listing names it, so the folder must be reachable). Stops at the first such record,
    /// which is usually the first: only a folder of tombstones is read through.
    async fn has_live_record_below(&self, folder: &Key) -> Result<bool, StoreError> {
        let mut below = self.inner.objects.list(Some(folder));
        while let Some(meta) = below.try_next().await? {
            let Some(path) = key_to_asset_path(&meta.location) else {
                continue;
            };
            let Ok(path) = AssetPath::parse(&path) else {
                continue;
            };
            match self.record(&path).await {
                Ok(Some(_)) | Err(StoreError::Corrupt { .. }) => return Ok(true),
                Ok(None) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(false)
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

    pub(super) fn path_lock(&self, path: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.inner.path_locks.lock().expect("path lock map");
        // Drop locks nobody holds any more, so the map stays as small as the writes in flight.
        locks.retain(|_, l| Arc::strong_count(l) > 1);
        Arc::clone(locks.entry(path.to_owned()).or_default())
    }

    /// Write a record over the version `expect` names; [`StoreError::Conflict`] when another
    /// instance wrote first.
    pub(super) async fn write_record(
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
                put_options(self.inner.backend.is_shared(), expect),
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
            self.inner.records.insert(
                record.path.clone(),
                live.as_ref().map(|r| CachedRecord::new(Arc::clone(r))),
            );
            // After the cache holds the new record: what threads kept before is stale.
            self.inner.front.written();
        }
        Ok(live.unwrap_or_else(|| Arc::new(record)))
    }

    /// The live record at `path`, uncached, with the version it was read at.
    pub(super) async fn load_live_record(
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
        retry_conflicts(|| async move {
            let (mut record, expect) = self.load_live_record(path).await?;
            if let Some(cache) = cache {
                record.cache_control = cache;
            }
            if let Some(signed) = signed {
                record.signed = signed;
            }
            self.write_record(record, &expect).await
        })
        .await
    }

    /// Delete the asset at `path`: from then on its public URL answers 404. Returns the media
    /// IDs it had.
    pub async fn delete(&self, path: &AssetPath) -> Result<Vec<MediaId>, StoreError> {
        let _timer = self.timer(crate::metrics::StorageOp::Delete);
        let lock = self.path_lock(path.as_str());
        let _held = lock.lock().await;
        retry_conflicts(|| async move {
            let (mut record, expect) = self.load_live_record(path).await?;
            let now = wait_for_a_later_second(Some(&record)).await;
            record.last_modified = next_last_modified(Some(&record), now);
            record.deleted = true;
            let media = std::mem::take(&mut record.whatsapp);
            self.write_record(record, &expect).await?;
            Ok(media.into_values().collect())
        })
        .await
    }
}

/// How many records a listing reads at once.
const LIST_CONCURRENCY: usize = 16;

#[cfg(test)]
mod tests {
    use super::super::testing::{path, put};
    use super::*;

    /// How many times `op` reached the backend, from the store's own latency histogram.
    pub(in crate::store) fn reads(metrics: &crate::metrics::Metrics, op: &str) -> u64 {
        let text = metrics.encode();
        text.lines()
            .find(|l| {
                l.contains("storage_operation_duration") && l.contains("_count") && l.contains(op)
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {op} count in:\n{text}"))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_misses_read_the_backend_once() {
        let metrics = Arc::new(crate::metrics::Metrics::new());
        // Reads take 50 ms, so the 32 requests below all miss while the first read is on.
        let store = super::super::testing::slow_store(std::time::Duration::from_millis(50))
            .with_metrics(Arc::clone(&metrics));
        put(&store, "promo/a.jpg", "bytes").await;
        let before = reads(&metrics, "record_read");
        store.inner.records.invalidate("promo/a.jpg");
        let p = path("promo/a.jpg");
        let tasks: Vec<_> = (0..32)
            .map(|_| {
                let (store, p) = (store.clone(), p.clone());
                tokio::spawn(async move { store.record(&p).await.unwrap().unwrap().sha256.clone() })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap().len(), 64);
        }
        assert_eq!(
            reads(&metrics, "record_read") - before,
            1,
            "one read for 32 misses"
        );
        // Expired policies likewise: one read of the policy file for 32 requests.
        let before = reads(&metrics, "policies_read");
        store.inner.policies.lock().unwrap().loaded -= store.inner.cache_ttl * 2;
        let tasks: Vec<_> = (0..32)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.policies().await })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(
            reads(&metrics, "policies_read") - before,
            1,
            "one read for 32 expiries"
        );
    }

    #[tokio::test]
    async fn a_deletion_leaves_a_tombstone_that_keeps_last_modified_moving() {
        let store = Store::memory(false);
        let first = put(&store, "a.txt", "hello").await;
        let p = path("a.txt");
        assert_eq!(store.delete(&p).await.unwrap(), Vec::new());
        assert_eq!(store.record(&p).await.unwrap(), None);
        let tombstone = store.load_record("a.txt").await.unwrap().unwrap();
        assert!(tombstone.deleted);
        assert!(tombstone.last_modified > first.record.last_modified);
        // Listings leave it out; deleting again finds nothing.
        assert!(store.list("", None, 10).await.unwrap().records.is_empty());
        assert!(matches!(store.delete(&p).await, Err(StoreError::NotFound)));
        // Uploaded again, even the same bytes: a new asset, later than the tombstone.
        let again = put(&store, "a.txt", "hello").await;
        assert!(again.created && !again.unchanged);
        assert!(again.record.last_modified > tombstone.last_modified);
    }

    /// The cache answers a raw URL path only where parsing it would give that very key, and
    /// keeps what serving derived from a version until the version changes.
    #[tokio::test]
    async fn the_cache_answers_raw_url_paths_that_are_its_keys() {
        let store = Store::memory(false);
        put(&store, "promo/caf\u{e9}.jpg", "v1").await;
        let p = path("promo/caf\u{e9}.jpg");
        let cached = store.cached_record(&p).await.unwrap().unwrap();
        let hit = store.cached_record_of_url("promo/caf\u{e9}.jpg");
        assert!(Arc::ptr_eq(&hit.unwrap().unwrap(), &cached));
        // Encoded, or not a key: parse first.
        assert!(store.cached_record_of_url("promo/caf%C3%A9.jpg").is_none());
        assert!(store.cached_record_of_url("promo//caf\u{e9}.jpg").is_none());
        // A path known to have no asset is cached as such.
        let none = path("promo/none.jpg");
        assert!(store.cached_record(&none).await.unwrap().is_none());
        assert!(matches!(
            store.cached_record_of_url("promo/none.jpg"),
            Some(None)
        ));

        let headers = cached
            .derived
            .get_or_make(CachePolicy::NoCache, || "v1 headers");
        let same = store.cached_record(&p).await.unwrap().unwrap();
        assert!(Arc::ptr_eq(
            &same.derived.get_or_make(CachePolicy::NoCache, || "again"),
            &headers
        ));
        // A new version is a new entry: nothing derived from the old one.
        put(&store, "promo/caf\u{e9}.jpg", "v2").await;
        let replaced = store.cached_record(&p).await.unwrap().unwrap();
        assert_ne!(replaced.record.sha256, cached.record.sha256);
        assert_eq!(
            *replaced
                .derived
                .get_or_make(CachePolicy::NoCache, || "v2 headers"),
            "v2 headers"
        );
    }
}
