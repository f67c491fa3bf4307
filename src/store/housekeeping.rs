//! Housekeeping: what interrupted uploads left behind, and garbage collection of unreferenced
//! blobs and expired tombstones.

use std::collections::HashSet;
use std::time::Duration;

use futures::TryStreamExt;
use object_store::path::Path as Key;

use super::backend::Backend;
use super::keys::key_to_asset_path;
use super::upload::MARKER_SUFFIX;
use super::{Store, StoreError};
use crate::clock::unix_now;

/// How long a tombstone is kept: long enough that a re-upload lands in a later second.
const TOMBSTONE_TTL: u64 = 3600;

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

impl Store {
    /// Remove what interrupted uploads left under `tmp/`: temporary objects, and the
    /// multipart uploads their markers name. On the local backend this process is the only
    /// writer, so everything goes, with the staging files object_store writes beside a
    /// destination (`name#N`); run it before serving. On S3 other instances may be uploading
    /// into the same bucket, so only what is older than `stale_upload_secs` goes.
    pub async fn clean_up_interrupted_uploads(&self) -> Result<usize, StoreError> {
        let mut removed = 0;
        if let Some(root) = self.inner.backend.local_root() {
            let root = root.to_owned();
            removed += tokio::task::spawn_blocking(move || remove_staging_files(&root))
                .await
                .unwrap_or(0);
        }
        let stale_before = match &self.inner.backend {
            Backend::S3 { stale_uploads, .. } => chrono_cutoff(*stale_uploads),
            // A shared bucket in memory is a test's: everything there is stale.
            Backend::Local { .. } | Backend::Memory { .. } => {
                chrono::DateTime::<chrono::Utc>::MAX_UTC
            }
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
                && let Some(multipart) = self.inner.backend.multipart()
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
                    if let Some(metrics) = self.inner.metrics.get() {
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
                if !self.inner.backend.is_shared() && record.last_modified + TOMBSTONE_TTL < now {
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

fn chrono_cutoff(grace: Duration) -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now() - chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::MAX)
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

#[cfg(test)]
mod tests {
    use super::*;

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

    use std::collections::BTreeMap;

    use super::super::backend::Expect;
    use super::super::keys::{blob_key, record_key};
    use super::super::testing::{path, put};
    use crate::asset::AssetRecord;

    /// A tombstone at `raw`, deleted at `last_modified`, written as it would have been then.
    async fn old_tombstone(store: &Store, raw: &str, last_modified: u64) {
        let record = AssetRecord {
            path: raw.into(),
            sha256: "0123456789abcdef".repeat(4),
            size: 1,
            content_type: "text/plain".into(),
            last_modified,
            cache_control: None,
            filename: "x.txt".into(),
            uploaded_at: last_modified,
            deleted: true,
            whatsapp: BTreeMap::new(),
            signed: None,
            imported: None,
            converted_from: None,
        };
        store.write_record(record, &Expect::Absent).await.unwrap();
    }

    async fn exists(store: &Store, key: &Key) -> bool {
        store.inner.objects.head(key).await.is_ok()
    }

    #[tokio::test]
    async fn garbage_collection_removes_unreferenced_blobs_only() {
        let store = Store::memory(false);
        let old = put(&store, "a.txt", "old bytes").await.record;
        let new = put(&store, "a.txt", "new bytes").await.record;
        let kept = put(&store, "b.txt", "kept").await.record;
        // Within the grace period nothing goes.
        let report = store
            .collect_garbage(Duration::from_secs(3600))
            .await
            .unwrap();
        assert_eq!(report, GcReport::default());
        assert!(exists(&store, &blob_key(&old.sha256)).await);
        tokio::time::sleep(Duration::from_millis(20)).await;
        let report = store.collect_garbage(Duration::ZERO).await.unwrap();
        assert_eq!(report.blobs, 1);
        assert!(!exists(&store, &blob_key(&old.sha256)).await);
        assert!(exists(&store, &blob_key(&new.sha256)).await);
        assert!(exists(&store, &blob_key(&kept.sha256)).await);
    }

    #[tokio::test]
    async fn expired_tombstones_go_unless_the_bucket_is_shared() {
        for shared in [false, true] {
            let store = Store::memory(shared);
            put(&store, "fresh.txt", "x").await;
            store.delete(&path("fresh.txt")).await.unwrap();
            old_tombstone(&store, "expired.txt", unix_now() - TOMBSTONE_TTL - 10).await;
            let report = store
                .collect_garbage(Duration::from_secs(3600))
                .await
                .unwrap();
            // A fresh tombstone stays everywhere; an expired one only goes when this
            // instance is the only writer (S3 has no conditional delete).
            assert_eq!(report.tombstones, usize::from(!shared), "shared: {shared}");
            assert!(exists(&store, &record_key("fresh.txt")).await);
            assert_eq!(exists(&store, &record_key("expired.txt")).await, shared);
        }
    }

    /// On local disk, a folder whose assets were all deleted is not listed, and once its
    /// tombstones are collected its directory is gone too (object_store deletes files only).
    #[tokio::test]
    async fn emptied_folders_are_not_listed_and_their_directories_go() {
        let dir = tempfile::tempdir().unwrap();
        let settings = crate::config::StorageSettings {
            path: dir.path().to_owned(),
            ..Default::default()
        };
        let store = Store::open(
            &settings,
            crate::policy::CachePolicy::NoCache,
            BTreeMap::new(),
        )
        .unwrap();
        put(&store, "promo/keep.txt", "kept").await;
        put(&store, "promo/2026/a.txt", "deleted").await;
        put(&store, "gone/b.txt", "deleted").await;
        let folders = |store: Store, folder: &'static str| async move {
            store.list_folder(folder, None, 100).await.unwrap().folders
        };
        assert_eq!(folders(store.clone(), "").await, ["gone", "promo"]);
        assert_eq!(folders(store.clone(), "promo").await, ["promo/2026"]);
        store.delete(&path("promo/2026/a.txt")).await.unwrap();
        store.delete(&path("gone/b.txt")).await.unwrap();
        // Only tombstones below: not a folder (the records are still there, for a while).
        assert_eq!(folders(store.clone(), "").await, ["promo"]);
        assert!(folders(store.clone(), "promo").await.is_empty());
        assert!(dir.path().join("assets/gone/b.txt.json").is_file());
        // Collected: no empty directory stays behind; the live folder does.
        old_tombstone(&store, "old/2025/c.txt", unix_now() - TOMBSTONE_TTL - 10).await;
        assert!(dir.path().join("assets/old/2025").is_dir());
        let report = store.collect_garbage(Duration::ZERO).await.unwrap();
        assert_eq!(report.tombstones, 1);
        assert!(!dir.path().join("assets/old").exists());
        assert!(dir.path().join("assets/promo/keep.txt.json").is_file());
        assert!(dir.path().join("assets").is_dir());
    }

    #[tokio::test]
    async fn an_unreadable_record_keeps_every_blob_it_names() {
        let store = Store::memory(false);
        let named = put(&store, "a.txt", "named").await.record;
        store.delete(&path("a.txt")).await.unwrap();
        let broken = format!("{{\"path\": \"b.txt\", \"sha256\": \"{}\"", named.sha256);
        store
            .inner
            .objects
            .put(&record_key("b.txt"), broken.into_bytes().into())
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        let report = store.collect_garbage(Duration::ZERO).await.unwrap();
        assert_eq!(report.unreadable_records, 1);
        assert_eq!(report.blobs, 0);
        assert!(exists(&store, &blob_key(&named.sha256)).await);
    }

    #[tokio::test]
    async fn interrupted_uploads_are_cleaned_up() {
        let store = Store::memory(false);
        for name in ["tmp/one", "tmp/two"] {
            store
                .inner
                .objects
                .put(&Key::from(name), b"partial".to_vec().into())
                .await
                .unwrap();
        }
        assert_eq!(store.clean_up_interrupted_uploads().await.unwrap(), 2);
        assert_eq!(store.clean_up_interrupted_uploads().await.unwrap(), 0);
    }
}
