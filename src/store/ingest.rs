//! Ingest: an upload streamed to a temporary object while it is hashed and validated, then
//! committed (blob put in place, record written), and the media IDs kept for its bytes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use object_store::ObjectStore;
use object_store::buffered::BufWriter;
use object_store::path::Path as Key;
use sha2::{Digest, Sha256};

use super::backend::{Backend, Versioned, retry_conflicts};
use super::keys::blob_key;
use super::upload::{PART_SIZE, PARTS_IN_FLIGHT, PartWriter, TmpWriter};
use super::{Store, StoreError};
use crate::asset::{AssetPath, AssetRecord, MediaId};
use crate::clock::{next_last_modified, wait_for_a_later_second};
use crate::media_kind::{self, MediaError, MediaType};
use crate::policy::CachePolicy;

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
    /// What the upload was before it was converted, if it was (kept in the record).
    pub converted_from: Option<crate::asset::ConvertedFrom>,
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

impl Store {
    /// Stream `body` to a temporary object while hashing it and deciding its type. Fails, with
    /// nothing left behind, as soon as the bytes are known to be unacceptable.
    pub async fn stage<S, E>(&self, body: S, hints: UploadHints<'_>) -> Result<Staged, StoreError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let (tmp, (sha256, size, media)) = self
            .stage_with(async |writer| write_validated(writer, body, hints).await)
            .await?;
        Ok(Staged {
            tmp,
            sha256,
            size,
            media,
            converted_from: None,
        })
    }

    /// Write to a new temporary object through `write`, which hashes and checks what it
    /// writes; on its failure, or when the object cannot be made whole, nothing is left behind.
    pub(super) async fn stage_with<T>(
        &self,
        write: impl AsyncFnOnce(&mut TmpWriter) -> Result<T, StoreError>,
    ) -> Result<(Key, T), StoreError> {
        let tmp = Key::from(format!("tmp/{}", uuid::Uuid::new_v4()));
        let mut writer = match self.inner.backend.multipart() {
            Some(multipart) => TmpWriter::Parts(PartWriter::new(
                Arc::clone(self.inner.blobs()),
                Arc::clone(multipart),
                tmp.clone(),
            )),
            None => TmpWriter::Buffered(
                BufWriter::with_capacity(Arc::clone(self.inner.blobs()), tmp.clone(), PART_SIZE)
                    .with_max_concurrency(PARTS_IN_FLIGHT),
            ),
        };
        let written = match write(&mut writer).await {
            Ok(done) => writer.finish().await.map(|()| done),
            Err(e) => {
                writer.abort().await;
                Err(e)
            }
        };
        match written {
            Ok(done) => Ok((tmp, done)),
            Err(e) => {
                self.delete_quietly(&tmp).await;
                if let Some(root) = self.inner.backend.local_root() {
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
        let staged = &staged;
        self.commit_staged(path, &staged.tmp, &staged.sha256, |previous| async move {
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
                record.converted_from = staged.converted_from.clone();
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
                imported: None,
                converted_from: staged.converted_from.clone(),
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
        })
        .await
    }

    /// The commit every kind of staged bytes goes through, under the path's lock and the
    /// collector's gate: put the bytes at their blob key (once, whatever the retries), then
    /// write the record `decide` makes of the path's current one, retried when another instance
    /// wrote first; then make sure the blob is there and the temporary object gone.
    pub(super) async fn commit_staged<T, F, Fut>(
        &self,
        path: &AssetPath,
        tmp: &Key,
        sha256: &str,
        decide: F,
    ) -> Result<T, StoreError>
    where
        F: Fn(Versioned<Option<AssetRecord>>) -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let _timer = self.timer(crate::metrics::StorageOp::Commit);
        let lock = self.path_lock(path.as_str());
        let _held = lock.lock().await;
        let _gate = self.inner.gc_gate.read().await;
        let blob = blob_key(sha256);
        let placed = AtomicBool::new(false);
        let (blob, placed, decide) = (&blob, &placed, &decide);
        let result = retry_conflicts(|| async move {
            let previous = self.load_versioned_record(path.as_str()).await?;
            if !placed.load(Ordering::Relaxed) {
                self.place_blob(tmp, blob).await?;
                placed.store(true, Ordering::Relaxed);
            }
            decide(previous).await
        })
        .await;
        if result.is_ok() && self.inner.backend.is_shared() {
            self.ensure_blob(tmp, blob).await;
        }
        // On the local backend a placed upload was renamed away; everywhere else it goes now.
        if !(placed.load(Ordering::Relaxed) && self.inner.backend.local_root().is_some()) {
            self.delete_quietly(tmp).await;
        }
        result
    }

    /// Put the staged bytes at their blob key. Rename (or copy) even when the blob exists: the
    /// fresh modification time keeps garbage collection off it. S3 has no rename, so the copy
    /// is kept and the temporary object deleted after the record is written (see
    /// [`Self::ensure_blob`]).
    pub(super) async fn place_blob(&self, tmp: &Key, blob: &Key) -> Result<(), StoreError> {
        if !self.inner.backend.is_shared() {
            return Ok(self.inner.objects.rename(tmp, blob).await?);
        }
        let copy = self.inner.blobs().copy(tmp, blob);
        match self.inner.backend {
            Backend::S3 {
                transfer_timeout: limit,
                ..
            } => tokio::time::timeout(limit, copy)
                .await
                .map_err(|_| StoreError::Timeout {
                    operation: "copying an upload into place",
                    after: limit,
                })??,
            Backend::Local { .. } | Backend::Memory { .. } => copy.await?,
        }
        Ok(())
    }

    /// Another instance's garbage collection may have listed the blob as unreferenced just
    /// before our copy refreshed it and deleted it just after: look once more now the record
    /// is written, and put the bytes back from the temporary object if they are gone.
    pub(super) async fn ensure_blob(&self, tmp: &Key, blob: &Key) {
        match self.inner.blobs().head(blob).await {
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
        let media = &media;
        retry_conflicts(|| async move {
            let (mut record, expect) = self.load_live_record(path).await?;
            if record.sha256 != media.sha256 {
                // Replaced while the upload ran: the ID names bytes the path no longer has.
                return Err(StoreError::Replaced);
            }
            let previous = record.whatsapp.insert(phone.to_owned(), media.clone());
            let record = self.write_record(record, &expect).await?;
            Ok((record, previous))
        })
        .await
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
    use std::sync::atomic::AtomicUsize;

    use futures::TryStreamExt;

    use super::super::backend::Expect;
    use super::super::keys::record_key;
    use super::super::testing::{path, put};
    use super::*;
    use crate::clock::unix_now;

    async fn blob_bytes(store: &Store, sha256: &str) -> Option<Bytes> {
        match store.inner.objects.get(&blob_key(sha256)).await {
            Ok(got) => Some(got.bytes().await.expect("blob bytes")),
            Err(object_store::Error::NotFound { .. }) => None,
            Err(e) => panic!("{e}"),
        }
    }

    #[tokio::test]
    async fn a_commit_puts_the_blob_then_the_record() {
        for shared in [false, true] {
            let store = Store::memory(shared);
            let first = put(&store, "docs/a.txt", "hello").await;
            assert!(first.created && !first.unchanged);
            let record = &first.record;
            assert_eq!(record.path, "docs/a.txt");
            assert_eq!(record.size, 5);
            assert_eq!(record.content_type, "text/plain");
            assert_eq!(record.filename, "a.txt");
            assert_eq!(record.sha256, hex::encode(Sha256::digest(b"hello")));
            assert_eq!(
                blob_bytes(&store, &record.sha256).await.as_deref(),
                Some(&b"hello"[..])
            );
            // The record is what readers see, and no temporary object is left.
            let read = store.record(&path("docs/a.txt")).await.unwrap().unwrap();
            assert_eq!(read, first.record);
            let tmp: Vec<_> = store
                .inner
                .objects
                .list(Some(&Key::from("tmp")))
                .try_collect()
                .await
                .unwrap();
            assert!(tmp.is_empty(), "left behind: {tmp:?}");
        }
    }

    #[tokio::test]
    async fn the_same_bytes_again_are_the_same_version() {
        let store = Store::memory(false);
        let first = put(&store, "a.txt", "hello").await;
        let again = put(&store, "a.txt", "hello").await;
        assert!(!again.created && again.unchanged);
        assert_eq!(again.record, first.record);
    }

    #[tokio::test]
    async fn last_modified_steps_forward_and_never_ahead_of_the_clock() {
        let store = Store::memory(false);
        let first = put(&store, "a.txt", "one").await;
        let second = put(&store, "a.txt", "two").await;
        // Back to the first bytes: a new version all the same.
        let third = put(&store, "a.txt", "one").await;
        assert!(!second.created && !second.unchanged);
        assert!(second.record.last_modified > first.record.last_modified);
        assert!(third.record.last_modified > second.record.last_modified);
        assert!(third.record.last_modified <= unix_now());
        assert_eq!(third.record.sha256, first.record.sha256);
    }

    #[tokio::test]
    async fn a_stale_conditional_write_conflicts_and_is_retried() {
        let a = Store::memory(true);
        let b = a.another_instance();
        put(&a, "a.txt", "hello").await;
        let p = path("a.txt");

        // A write over a version another instance has replaced is refused.
        let (record, stale) = a.load_live_record(&p).await.unwrap();
        b.set_overrides(&p, Some(Some(CachePolicy::NoStore)), None)
            .await
            .unwrap();
        let refused = a.write_record(record.clone(), &stale).await;
        assert!(matches!(refused, Err(StoreError::Conflict)), "{refused:?}");
        // So is creating what another instance created first.
        let created = a.write_record(record, &Expect::Absent).await;
        assert!(matches!(created, Err(StoreError::Conflict)), "{created:?}");

        // Retried, the read-modify-write lands over the other instance's write and keeps it.
        let tries = AtomicUsize::new(0);
        let written = retry_conflicts(|| async {
            let (mut record, expect) = a.load_live_record(&p).await?;
            if tries.fetch_add(1, Ordering::Relaxed) == 0 {
                b.set_overrides(&p, None, Some(Some(false))).await.unwrap();
            }
            record.filename = "renamed.txt".into();
            a.write_record(record, &expect).await
        })
        .await
        .unwrap();
        assert_eq!(tries.load(Ordering::Relaxed), 2);
        assert_eq!(written.filename, "renamed.txt");
        assert_eq!(written.cache_control, Some(CachePolicy::NoStore));
        assert_eq!(written.signed, Some(false));

        // One instance alone (local disk) overwrites: its own locks serialise its writes.
        let local = Store::memory(false);
        put(&local, "a.txt", "hello").await;
        let (record, expect) = local.load_live_record(&p).await.unwrap();
        local.write_record(record.clone(), &expect).await.unwrap();
        local.write_record(record, &expect).await.unwrap();
    }

    #[tokio::test]
    async fn media_ids_follow_the_bytes() {
        let store = Store::memory(false);
        let first = put(&store, "a.txt", "hello").await;
        let id = MediaId {
            media_id: "1".into(),
            sha256: first.record.sha256.clone(),
            uploaded_at: 1,
            expires_at: 2,
            ttl_minutes: None,
        };
        let (record, replaced) = store
            .attach_media_id(&path("a.txt"), "555", id.clone())
            .await
            .unwrap();
        assert_eq!(replaced, None);
        assert_eq!(record.whatsapp.get("555"), Some(&id));
        // New bytes drop the ID; an ID for bytes no longer there is refused.
        let second = put(&store, "a.txt", "bye").await;
        assert_eq!(second.dropped_media_ids, vec![id.clone()]);
        assert!(second.record.whatsapp.is_empty());
        let late = store.attach_media_id(&path("a.txt"), "555", id).await;
        assert!(matches!(late, Err(StoreError::Replaced)), "{late:?}");
        assert!(store.inner.objects.head(&record_key("a.txt")).await.is_ok());
    }
}
