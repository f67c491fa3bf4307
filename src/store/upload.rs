//! Writing an upload's bytes to its temporary object, with bounded memory.
//!
//! The local backend uses object_store's own buffered writer: a crash leaves `name#N` staging
//! files, which the start-up clean-up finds by walking the directory.
//!
//! On S3 an unfinished multipart upload is invisible to listings and object_store has no call
//! that lists them, so a crash would leave parts billed forever. The S3 writer therefore
//! drives the multipart upload itself and, as soon as S3 has named it, writes a small marker
//! object beside the temporary key (`tmp/<uuid>.multipart`, holding the upload ID). The
//! clean-up lists `tmp/` and aborts the upload each stale marker names. Parts are cut at exactly
//! [`PART_SIZE`] (R2 wants equal parts), at most [`PARTS_IN_FLIGHT`] at once.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use object_store::buffered::BufWriter;
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path as Key;
use object_store::{MultipartId, ObjectStore, PutPayload};
use tokio::io::AsyncWriteExt;
use tokio::task::JoinHandle;

use super::StoreError;

/// The size of every part but the last: S3's minimum. Smaller uploads are one plain PUT.
pub(crate) const PART_SIZE: usize = 5 * 1024 * 1024;
/// Parts uploading at once; with the part being filled, an upload holds at most
/// `(PARTS_IN_FLIGHT + 1) * PART_SIZE` bytes.
pub(crate) const PARTS_IN_FLIGHT: usize = 2;
/// The suffix of a multipart marker under `tmp/`.
pub(crate) const MARKER_SUFFIX: &str = ".multipart";

/// A bucket's multipart API, with the key prefix the rest of the store hides.
pub(crate) struct Multipart {
    pub store: Arc<dyn MultipartStore>,
    pub prefix: Option<Key>,
    /// How long one part, or the completion, may take.
    pub timeout: Duration,
}

impl Multipart {
    /// The key the multipart API sees for a key of the (prefixed) object store.
    pub fn full_key(&self, key: &Key) -> Key {
        match &self.prefix {
            Some(prefix) => prefix.parts().chain(key.parts()).collect(),
            None => key.clone(),
        }
    }

    /// Abort the upload a marker names, then remove the marker.
    pub async fn abort_marked(
        &self,
        objects: &dyn ObjectStore,
        marker: &Key,
    ) -> Result<(), StoreError> {
        let id = objects.get(marker).await?.bytes().await?;
        let id = String::from_utf8_lossy(&id).trim().to_owned();
        let tmp = tmp_key_of_marker(marker).ok_or_else(|| StoreError::Corrupt {
            key: marker.to_string(),
            reason: "not a multipart marker".into(),
        })?;
        match self.store.abort_multipart(&self.full_key(&tmp), &id).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        match objects.delete(marker).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// `tmp/<uuid>.multipart` → `tmp/<uuid>`.
pub(crate) fn tmp_key_of_marker(marker: &Key) -> Option<Key> {
    marker
        .as_ref()
        .strip_suffix(MARKER_SUFFIX)
        .map(|k| Key::from(k.to_owned()))
}

/// Where an upload's bytes go while they are hashed and checked.
pub(crate) enum TmpWriter {
    /// The local backend.
    Buffered(BufWriter),
    /// S3.
    Parts(PartWriter),
}

impl TmpWriter {
    pub async fn put(&mut self, chunk: Bytes) -> Result<(), StoreError> {
        match self {
            TmpWriter::Buffered(w) => {
                w.put(chunk).await?;
                Ok(())
            }
            TmpWriter::Parts(w) => w.put(chunk).await,
        }
    }

    /// Make the temporary object whole.
    pub async fn finish(self) -> Result<(), StoreError> {
        match self {
            TmpWriter::Buffered(mut w) => w.shutdown().await.map_err(|e| {
                StoreError::Backend(object_store::Error::Generic {
                    store: "upload",
                    source: Box::new(e),
                })
            }),
            TmpWriter::Parts(w) => w.finish().await,
        }
    }

    /// Throw away what was written.
    pub async fn abort(self) {
        let result = match self {
            TmpWriter::Buffered(mut w) => w.abort().await.map_err(StoreError::from),
            TmpWriter::Parts(w) => w.abort().await,
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "aborting a failed upload");
        }
    }
}

/// An S3 upload: one PUT when it stays under a part, a marked multipart upload otherwise.
pub(crate) struct PartWriter {
    objects: Arc<dyn ObjectStore>,
    multipart: Arc<Multipart>,
    key: Key,
    buffer: Vec<Bytes>,
    buffered: usize,
    upload: Option<MultipartId>,
    in_flight: VecDeque<JoinHandle<Result<PartId, StoreError>>>,
    parts: Vec<PartId>,
    /// Set once the upload is completed or aborted; otherwise dropping aborts it.
    settled: bool,
}

impl PartWriter {
    pub fn new(objects: Arc<dyn ObjectStore>, multipart: Arc<Multipart>, key: Key) -> Self {
        Self {
            objects,
            multipart,
            key,
            buffer: Vec::new(),
            buffered: 0,
            upload: None,
            in_flight: VecDeque::new(),
            parts: Vec::new(),
            settled: false,
        }
    }

    fn marker(&self) -> Key {
        Key::from(format!("{}{MARKER_SUFFIX}", self.key.as_ref()))
    }

    async fn put(&mut self, mut chunk: Bytes) -> Result<(), StoreError> {
        while self.buffered + chunk.len() >= PART_SIZE {
            let rest = chunk.split_off(PART_SIZE - self.buffered);
            self.buffer.push(chunk);
            self.buffered = PART_SIZE;
            self.send_part().await?;
            chunk = rest;
        }
        if !chunk.is_empty() {
            self.buffered += chunk.len();
            self.buffer.push(chunk);
        }
        Ok(())
    }

    /// Start the multipart upload (and its marker) if need be, then upload the buffer as the
    /// next part, first waiting for a slot.
    async fn send_part(&mut self) -> Result<(), StoreError> {
        let full = self.multipart.full_key(&self.key);
        let id = match &self.upload {
            Some(id) => id.clone(),
            None => {
                let id = self
                    .bounded(self.multipart.store.create_multipart(&full))
                    .await?;
                self.upload = Some(id.clone());
                let marker = self.marker();
                self.bounded(
                    self.objects
                        .put(&marker, PutPayload::from(id.clone().into_bytes())),
                )
                .await?;
                id
            }
        };
        while self.in_flight.len() >= PARTS_IN_FLIGHT {
            self.collect_oldest().await?;
        }
        let payload = PutPayload::from_iter(std::mem::take(&mut self.buffer));
        self.buffered = 0;
        let index = self.parts.len() + self.in_flight.len();
        let multipart = Arc::clone(&self.multipart);
        self.in_flight.push_back(tokio::spawn(async move {
            let part = multipart.store.put_part(&full, &id, index, payload);
            match tokio::time::timeout(multipart.timeout, part).await {
                Ok(r) => r.map_err(StoreError::from),
                Err(_) => Err(StoreError::Timeout {
                    operation: "uploading a part to S3",
                    after: multipart.timeout,
                }),
            }
        }));
        Ok(())
    }

    async fn collect_oldest(&mut self) -> Result<(), StoreError> {
        if let Some(handle) = self.in_flight.pop_front() {
            let part = handle
                .await
                .map_err(|e| StoreError::Body(e.to_string()))??;
            self.parts.push(part);
        }
        Ok(())
    }

    async fn bounded<T>(
        &self,
        fut: impl Future<Output = object_store::Result<T>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.multipart.timeout, fut).await {
            Ok(r) => r.map_err(StoreError::from),
            Err(_) => Err(StoreError::Timeout {
                operation: "writing an upload to S3",
                after: self.multipart.timeout,
            }),
        }
    }

    async fn finish(mut self) -> Result<(), StoreError> {
        if let Err(e) = self.finish_inner().await {
            if let Err(abort) = self.abort().await {
                tracing::warn!(error = %abort, "aborting a failed multipart upload");
            }
            return Err(e);
        }
        Ok(())
    }

    async fn finish_inner(&mut self) -> Result<(), StoreError> {
        let Some(id) = self.upload.clone() else {
            // Under one part: a single PUT, nothing to mark.
            let payload = PutPayload::from_iter(std::mem::take(&mut self.buffer));
            self.bounded(self.objects.put(&self.key, payload)).await?;
            self.settled = true;
            return Ok(());
        };
        if self.buffered > 0 {
            self.send_part().await?;
        }
        while !self.in_flight.is_empty() {
            self.collect_oldest().await?;
        }
        let full = self.multipart.full_key(&self.key);
        let parts = std::mem::take(&mut self.parts);
        self.bounded(self.multipart.store.complete_multipart(&full, &id, parts))
            .await?;
        self.settled = true;
        // The upload is an object now; the marker only names a finished upload.
        let marker = self.marker();
        if let Err(e) = self.objects.delete(&marker).await {
            tracing::warn!(%marker, error = %e, "could not remove a multipart marker");
        }
        Ok(())
    }

    async fn abort(mut self) -> Result<(), StoreError> {
        self.settled = true;
        // Wait for cancelled parts to let go of their requests before aborting the upload, so
        // fewer of them can land after the abort.
        for handle in self.in_flight.drain(..) {
            handle.abort();
            let _ = handle.await;
        }
        let Some(id) = self.upload.take() else {
            return Ok(());
        };
        let full = self.multipart.full_key(&self.key);
        match self
            .bounded(self.multipart.store.abort_multipart(&full, &id))
            .await
        {
            Ok(()) | Err(StoreError::Backend(object_store::Error::NotFound { .. })) => {}
            Err(e) => return Err(e),
        }
        let marker = self.marker();
        match self.objects.delete(&marker).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

impl Drop for PartWriter {
    /// A request cancelled mid-upload drops its writer: abort the multipart upload in the
    /// background rather than leave it to the stale sweep.
    fn drop(&mut self) {
        if self.settled || self.upload.is_none() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let orphan = PartWriter {
            objects: Arc::clone(&self.objects),
            multipart: Arc::clone(&self.multipart),
            key: self.key.clone(),
            buffer: Vec::new(),
            buffered: 0,
            upload: self.upload.take(),
            in_flight: std::mem::take(&mut self.in_flight),
            parts: Vec::new(),
            settled: false,
        };
        runtime.spawn(async move {
            if let Err(e) = orphan.abort().await {
                tracing::warn!(error = %e, "aborting a cancelled multipart upload");
            }
        });
    }
}
