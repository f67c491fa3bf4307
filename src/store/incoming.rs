//! Incoming media: a customer's file streamed to a temporary object while it is hashed, bounded
//! and sniffed, committed as a signed-only asset that remembers what Meta said of it, and
//! found again by its media ID.
//!
//! Why apart from [`super::ingest`]: an upload must pass the outgoing gate (only what WhatsApp
//! lets a business send); a customer's file must not (a customer can send any document), and is
//! instead checked against Meta's SHA-256 and size. The blob, the record and the commit order
//! are the same: the record write is the commit, so a failed import leaves nothing visible, and
//! the temporary object is removed on every failure path.
//!
//! `imports/<media_id>.json` (holding the asset path) finds an imported media ID again in one
//! read, whatever folder it went to: a second import of the same ID answers the existing asset
//! without a download, even after Meta has forgotten the ID.

use std::sync::Arc;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use object_store::path::Path as Key;
use object_store::{ObjectStore, PutPayload};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Store, StoreError};
use crate::asset::{AssetPath, AssetRecord, Imported};
use crate::clock::{next_last_modified, wait_for_a_later_second};
use crate::media_kind::{self, Inspector};

/// A customer's file written to a temporary object, hashed and typed, not yet visible.
#[derive(Debug)]
pub struct StagedIncoming {
    tmp: Key,
    /// Hex SHA-256 of the bytes.
    pub sha256: String,
    /// Length in bytes.
    pub size: u64,
    /// The type stored (see [`media_kind::incoming_type`]).
    pub content_type: String,
}

/// What is known of a customer's file before it arrives.
#[derive(Debug, Clone, Copy)]
pub struct IncomingHints<'a> {
    /// Meta's `mime_type`.
    pub mime_type: &'a str,
    /// The sender's file name, if any.
    pub filename: Option<&'a str>,
    /// More bytes than this fail the staging with [`StoreError::TooLarge`].
    pub max_size: u64,
}

#[derive(Serialize, Deserialize)]
struct ImportIndex {
    path: String,
}

fn index_key(media_id: &str) -> Key {
    Key::from(format!("imports/{media_id}.json"))
}

impl Store {
    /// Stream `body` to a temporary object while hashing it, up to `hints.max_size` bytes.
    /// Fails with nothing left behind.
    pub async fn stage_incoming<S, E>(
        &self,
        mut body: S,
        hints: IncomingHints<'_>,
    ) -> Result<StagedIncoming, StoreError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let (tmp, (sha256, size, content_type)) = self
            .stage_with(async |writer| {
                let mut hasher = Sha256::new();
                let mut inspector = Inspector::new();
                while let Some(chunk) = body.next().await {
                    let chunk = chunk.map_err(|e| StoreError::Body(e.to_string()))?;
                    inspector.update(&chunk);
                    if inspector.size() > hints.max_size {
                        return Err(StoreError::TooLarge {
                            limit: hints.max_size,
                        });
                    }
                    hasher.update(&chunk);
                    writer.put(chunk).await?;
                }
                let content_type =
                    media_kind::incoming_type(&inspector, hints.mime_type, hints.filename);
                Ok((
                    hex::encode(hasher.finalize()),
                    inspector.size(),
                    content_type,
                ))
            })
            .await?;
        Ok(StagedIncoming {
            tmp,
            sha256,
            size,
            content_type,
        })
    }

    /// Throw a staged file away.
    pub async fn discard_incoming(&self, staged: StagedIncoming) {
        self.delete_quietly(&staged.tmp).await;
    }

    /// Make a staged file the asset at `path`, with `filename` and `signed` as given and
    /// `imported` as Meta described it, and remember `path` under the media ID. A path that
    /// already holds these bytes from the same media ID is answered as it is.
    pub async fn commit_incoming(
        &self,
        path: &AssetPath,
        staged: StagedIncoming,
        filename: &str,
        signed: bool,
        imported: Imported,
    ) -> Result<Arc<AssetRecord>, StoreError> {
        let (staged, imported) = (&staged, &imported);
        let record = self
            .commit_staged(path, &staged.tmp, &staged.sha256, |previous| async move {
                let live = previous.value.as_ref().filter(|p| !p.deleted);
                if let Some(same) = live.filter(|p| {
                    p.sha256 == staged.sha256
                        && p.imported.as_ref().map(|i| &i.media_id) == Some(&imported.media_id)
                }) {
                    return Ok(Arc::new(same.clone()));
                }
                let now = wait_for_a_later_second(previous.value.as_ref()).await;
                let record = AssetRecord {
                    path: path.as_str().to_owned(),
                    sha256: staged.sha256.clone(),
                    size: staged.size,
                    content_type: staged.content_type.clone(),
                    last_modified: next_last_modified(previous.value.as_ref(), now),
                    cache_control: live.and_then(|p| p.cache_control),
                    filename: filename.to_owned(),
                    uploaded_at: now,
                    deleted: false,
                    whatsapp: Default::default(),
                    signed: Some(signed),
                    imported: Some(imported.clone()),
                    converted_from: None,
                };
                self.write_record(record, &previous.expect).await
            })
            .await?;
        let index = serde_json::to_vec(&ImportIndex {
            path: path.as_str().to_owned(),
        })
        .expect("an index serialises");
        self.inner
            .objects
            .put(&index_key(&imported.media_id), PutPayload::from(index))
            .await?;
        Ok(record)
    }

    /// The live asset imported from `media_id`, if there is one.
    pub async fn imported(&self, media_id: &str) -> Result<Option<Arc<AssetRecord>>, StoreError> {
        let index: Option<ImportIndex> = self.load_json(&index_key(media_id)).await?.value;
        let Some(index) = index else {
            return Ok(None);
        };
        let Ok(path) = AssetPath::parse(&index.path) else {
            return Ok(None);
        };
        Ok(self
            .record(&path)
            .await?
            .filter(|r| r.imported.as_ref().is_some_and(|i| i.media_id == media_id)))
    }
}
