//! Blob serving: streaming a blob (or a range of it) from the backend, small blobs from memory,
//! local ones from memory maps of their files (see [`super::mapped`]).

use std::time::Duration;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::{GetOptions, GetRange, ObjectStore};

use super::backend::Backend;
use super::keys::blob_key;
use super::{Store, StoreError, mapped};

/// The response body of a blob: from memory or streamed.
pub enum BlobBody {
    /// Already in memory.
    Bytes(Bytes),
    /// Read as it is sent.
    Stream(BoxStream<'static, Result<Bytes, object_store::Error>>),
}

impl Store {
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
        let get = self.inner.blobs().get_opts(&key, opts);
        let Backend::S3 {
            blob_timeout: limit,
            ..
        } = self.inner.backend
        else {
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
    /// cached one is never stale). On the local backend larger ones are memory maps of the file
    /// (see [`super::mapped`]): no copy into a buffer, and no thread-pool hop per chunk, where
    /// object_store's own reader takes 8 KiB per hop.
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
        if let Some(root) = self.inner.backend.local_root() {
            let maps = self
                .inner
                .mapped
                .as_ref()
                .filter(|_| size <= mapped::MAPPED_BLOB_MAX);
            // A hot blob: nothing to open, no key or file name to build.
            if let Some(whole) = maps.and_then(|maps| maps.get(sha256)) {
                return Ok(BlobBody::Bytes(slice(&whole)));
            }
            let _timer = self.timer(crate::metrics::StorageOp::BlobOpen);
            let key = blob_key(sha256);
            let file = root.join(key.as_ref());
            if let Some(maps) = maps {
                let whole = mapped::map_whole(file, size).await.map_err(|e| {
                    if e.kind() == std::io::ErrorKind::InvalidData {
                        StoreError::Corrupt {
                            key: key.to_string(),
                            reason: e.to_string(),
                        }
                    } else {
                        local_error(&key, e).into()
                    }
                })?;
                maps.insert(sha256.to_owned(), whole.clone());
                return Ok(BlobBody::Bytes(slice(&whole)));
            }
            let (start, end) = range.map_or((0, size), |r| (r.start, r.end));
            let stream = mapped::stream_windows(file, start, end)
                .await
                .map_err(|e| local_error(&key, e))?;
            return Ok(BlobBody::Stream(
                stream.map_err(move |e| local_error(&key, e)).boxed(),
            ));
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
}

pub(super) fn blob_cache(megabytes: u64) -> Option<super::BlobBytes> {
    (megabytes > 0).then(|| {
        moka::sync::Cache::builder()
            .max_capacity(megabytes.saturating_mul(1024 * 1024))
            .weigher(|_, b: &Bytes| u32::try_from(b.len()).unwrap_or(u32::MAX))
            .build_with_hasher(ahash::RandomState::new())
    })
}

/// An error of the local blob file at `key`, as the rest of the store reports backend errors
/// (a missing blob is [`object_store::Error::NotFound`]).
fn local_error(key: &object_store::path::Path, e: std::io::Error) -> object_store::Error {
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
}

/// End a download with an error when no chunk arrives within `limit`.
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
