//! Importing media a customer sent: the webhook carries only a media ID, Meta keeps the media
//! 7 days and the download URL lives 5 minutes, so the bytes are fetched at once and kept as a
//! signed-only asset (customers' files are private).
//!
//! The steps: a media ID imported before answers its asset (no Graph call, no download); else
//! the retrieve call (`GET /{media_id}`) says where the bytes are and what Meta says they are;
//! the download streams them to a temporary object, bounded by Meta's `file_size` and
//! `import_max_bytes`, retried by the upload's rules and re-pointed once at a fresh URL when the
//! old one has expired; the SHA-256 must be Meta's, or nothing is stored.
//!
//! Meta blocks the media endpoint for 30 minutes after about 20 failed lookups in an hour
//! (WHATSAPP_MEDIA.md §4), which would stop every import of the hour: after
//! `lookup_failures_per_hour` failed lookups within an hour this instance stops asking and
//! answers 503 with `Retry-After` until the oldest of them is an hour old. The count is per
//! instance (instances behind one token each keep their own).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use base64::Engine;
use futures::TryStreamExt;

use super::client::{ClientError, Retrieved};
use super::download::{DownloadError, Failure};
use super::{WaError, WhatsApp};
use crate::asset::{AssetPath, AssetRecord, Imported};
use crate::clock::Clock;
use crate::media_kind;
use crate::store::{IncomingHints, Store, StoreError};

/// One import asked for.
#[derive(Debug, Clone)]
pub struct ImportRequest {
    /// The media ID (from the webhook).
    pub media_id: String,
    /// The business number it came in on (default: the first configured).
    pub phone_number_id: Option<String>,
    /// Where to keep it (default: `inbox/<phone_number_id>`), already a valid folder.
    pub folder: Option<String>,
    /// The sender's file name (documents).
    pub filename: Option<String>,
    /// Signed-only (the default) or public.
    pub signed: bool,
    /// The webhook message it came in, if known.
    pub message_id: Option<String>,
    /// The customer's WhatsApp ID, if known.
    pub from: Option<String>,
}

/// An import done.
#[derive(Debug, Clone)]
pub struct ImportOutcome {
    /// The asset.
    pub record: Arc<AssetRecord>,
    /// False when the media ID had been imported before (nothing was downloaded).
    pub created: bool,
}

/// Failed lookups of the last hour, by this instance.
pub(super) struct LookupBudget {
    limit: usize,
    failures: Mutex<VecDeque<u64>>,
}

const HOUR: u64 = 3600;

impl LookupBudget {
    pub(super) fn new(limit: u32) -> Self {
        Self {
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
            failures: Mutex::default(),
        }
    }

    /// `Err(seconds to wait)` while the hour's failures are used up.
    fn check(&self, now: u64) -> Result<(), u64> {
        let mut failures = self.failures.lock().expect("lookup budget");
        while failures.front().is_some_and(|t| t + HOUR <= now) {
            failures.pop_front();
        }
        match failures.front() {
            Some(oldest) if failures.len() >= self.limit => Err((oldest + HOUR - now).max(1)),
            _ => Ok(()),
        }
    }

    fn fail(&self, now: u64) {
        self.failures.lock().expect("lookup budget").push_back(now);
    }
}

/// Whether Meta's `sha256` (hex, or base64 as some webhooks carry it) names `hex_digest`.
fn sha_matches(meta: &str, hex_digest: &str) -> bool {
    let meta = meta.trim();
    if meta.eq_ignore_ascii_case(hex_digest) {
        return true;
    }
    let Ok(raw) = hex::decode(hex_digest) else {
        return false;
    };
    [
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::STANDARD_NO_PAD,
    ]
    .iter()
    .any(|e| e.decode(meta).is_ok_and(|d| d == raw))
}

/// Media IDs are digits in Meta's API; letters, `-` and `_` are allowed too, nothing that could
/// leave the folder or reach a URL unescaped.
pub fn valid_media_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 100
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl WhatsApp {
    /// Import the media `req` names (see the module doc).
    pub async fn import(
        &self,
        store: &Store,
        req: ImportRequest,
    ) -> Result<ImportOutcome, WaError> {
        let result = self.import_inner(store, req).await;
        if let Some(m) = self.metrics() {
            match &result {
                Ok(o) if o.created => m.import("imported", o.record.size),
                Ok(_) => m.import("existing", 0),
                Err(e) => m.import(super::error_code(e), 0),
            }
        }
        result
    }

    async fn import_inner(
        &self,
        store: &Store,
        req: ImportRequest,
    ) -> Result<ImportOutcome, WaError> {
        self.client()?;
        let phone = self.phone(req.phone_number_id.as_deref())?.to_owned();
        if !valid_media_id(&req.media_id) {
            return Err(WaError::InvalidMediaId(req.media_id));
        }
        // One import of a media ID at a time: a concurrent second one waits and finds it.
        let lock = self.lock_for(&req.media_id, "import");
        let _held = lock.lock().await;
        if let Some(record) = store.imported(&req.media_id).await? {
            return Ok(ImportOutcome {
                record,
                created: false,
            });
        }
        let mut retrieved = self.lookup(&req.media_id, &phone).await?;
        if retrieved.file_size > self.inner.import_max {
            return Err(DownloadError::new(
                Failure::TooLarge,
                format!(
                    "Meta says the file is {} bytes, over whatsapp.import_max_bytes ({})",
                    retrieved.file_size, self.inner.import_max
                ),
                0,
            )
            .into());
        }
        if retrieved.file_size == 0 {
            return Err(DownloadError::new(
                Failure::Corrupt,
                "Meta announced an empty file (file_size 0): there is nothing to keep",
                0,
            )
            .into());
        }
        let mut refreshed = false;
        let staged = loop {
            match self
                .download(store, &retrieved, req.filename.as_deref())
                .await
            {
                Ok(staged) => break staged,
                Err(WaError::Client(e))
                    if !refreshed
                        && matches!(&*e, ClientError::Download(d) if d.failure == Failure::Expired) =>
                {
                    // The 5-minute URL ran out (a slow queue, retries): one fresh URL.
                    tracing::info!(media_id = %req.media_id, "download URL expired; retrieving a fresh one");
                    refreshed = true;
                    retrieved = self.lookup(&req.media_id, &phone).await?;
                }
                Err(e) => return Err(e),
            }
        };
        let extension = media_kind::extension_for(&staged.content_type);
        let folder = req
            .folder
            .clone()
            .unwrap_or_else(|| format!("inbox/{phone}"));
        let name = format!("{}.{extension}", req.media_id);
        let path = match AssetPath::parse(&format!("{folder}/{name}")) {
            Ok(p) => p,
            Err(e) => {
                store.discard_incoming(staged).await;
                return Err(WaError::Refused(format!("folder {folder:?}: {e}")));
            }
        };
        let filename = req
            .filename
            .as_deref()
            .map(clean_filename)
            .filter(|f| !f.is_empty())
            .unwrap_or(name);
        let imported = Imported {
            media_id: req.media_id.clone(),
            phone_number_id: phone,
            mime_type: retrieved.mime_type.clone(),
            file_size: retrieved.file_size,
            imported_at: self.inner.clock.now(),
            message_id: req.message_id.clone(),
            from: req.from.clone(),
        };
        let record = store
            .commit_incoming(&path, staged, &filename, req.signed, imported)
            .await?;
        tracing::info!(path = %path, media_id = %req.media_id, size = record.size, "imported incoming media");
        Ok(ImportOutcome {
            record,
            created: true,
        })
    }

    /// The retrieve call, within the failed-lookup budget.
    async fn lookup(&self, media_id: &str, phone: &str) -> Result<Retrieved, WaError> {
        let client = self.client()?;
        let clock: &Clock = &self.inner.clock;
        if let Err(wait) = self.inner.lookups.check(clock.now()) {
            return Err(WaError::LookupsPaused { retry_after: wait });
        }
        match client.retrieve(media_id, phone).await {
            Ok(r) => Ok(r),
            Err(e) => {
                if let ClientError::Meta { status, .. } = &e
                    && (400..500).contains(status)
                    && *status != 429
                {
                    self.inner.lookups.fail(clock.now());
                }
                Err(e.into())
            }
        }
    }

    /// Download `retrieved` into a staged object, retrying transient failures; checks the
    /// size and SHA-256 Meta announced.
    async fn download(
        &self,
        store: &Store,
        retrieved: &Retrieved,
        filename: Option<&str>,
    ) -> Result<crate::store::StagedIncoming, WaError> {
        let client = self.client()?;
        let started = Instant::now();
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let attempt = tokio::time::timeout(
                client.download_timeout,
                self.download_once(store, retrieved, filename, attempts),
            )
            .await
            .unwrap_or_else(|_| {
                Err((
                    WaError::from(DownloadError::new(
                        Failure::Timeout,
                        format!(
                            "the download took over whatsapp.download_timeout_ms ({} ms)",
                            client.download_timeout.as_millis()
                        ),
                        attempts,
                    )),
                    None,
                ))
            });
            let (error, retry_after) = match attempt {
                Ok(staged) => {
                    client.count("download", "success");
                    return Ok(staged);
                }
                Err(failed) => failed,
            };
            let wait = match &error {
                WaError::Client(c) => client.next_wait(started, c, retry_after),
                _ => None,
            };
            match wait {
                Some(wait) => {
                    if let Some(m) = self.metrics() {
                        m.whatsapp_retry("download");
                    }
                    tracing::warn!(attempt = attempts, error = %error, wait_ms = wait.as_millis() as u64, "download failed; retrying");
                    tokio::time::sleep(wait).await;
                }
                None => {
                    client.count("download", super::error_code(&error));
                    return Err(error);
                }
            }
        }
    }

    async fn download_once(
        &self,
        store: &Store,
        retrieved: &Retrieved,
        filename: Option<&str>,
        attempt: u32,
    ) -> Result<crate::store::StagedIncoming, (WaError, Option<std::time::Duration>)> {
        let client = self.client().map_err(|e| (e, None))?;
        let response = client
            .open_download(&retrieved.url, attempt)
            .await
            .map_err(|(e, wait)| (WaError::from(e), wait))?;
        let hints = IncomingHints {
            mime_type: &retrieved.mime_type,
            filename,
            max_size: retrieved.file_size,
        };
        let body = response.bytes_stream().map_err(|e| {
            let failure = if e.is_timeout() { "stalled" } else { "dropped" };
            format!("{failure}: {}", super::client::without_url(&e))
        });
        let fail = |failure, reason: String| {
            (
                WaError::from(DownloadError::new(failure, reason, attempt)),
                None,
            )
        };
        let staged = match store.stage_incoming(body, hints).await {
            Ok(staged) => staged,
            Err(StoreError::Body(reason)) => {
                let failure = if reason.starts_with("stalled") {
                    Failure::Timeout
                } else {
                    Failure::Interrupted
                };
                return Err(fail(failure, format!("the download {reason}")));
            }
            Err(StoreError::TooLarge { limit }) => {
                return Err(fail(
                    Failure::Corrupt,
                    format!("the download host sent more than the {limit} bytes Meta announced"),
                ));
            }
            Err(e) => return Err((e.into(), None)),
        };
        if staged.size != retrieved.file_size || !sha_matches(&retrieved.sha256, &staged.sha256) {
            let reason = format!(
                "the bytes downloaded ({} bytes, SHA-256 {}) are not the {} bytes with SHA-256 {} \
                 that Meta announced; nothing was stored",
                staged.size, staged.sha256, retrieved.file_size, retrieved.sha256
            );
            store.discard_incoming(staged).await;
            return Err(fail(Failure::Corrupt, reason));
        }
        Ok(staged)
    }
}

/// The sender's file name, as kept: control characters and path separators dropped, at most
/// 255 characters.
fn clean_filename(name: &str) -> String {
    name.chars()
        .filter(|c| !c.is_control() && !matches!(c, '/' | '\\'))
        .take(255)
        .collect::<String>()
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metas_sha256_is_hex_or_base64() {
        let hex_digest = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        assert!(sha_matches(hex_digest, hex_digest));
        assert!(sha_matches(&hex_digest.to_uppercase(), hex_digest));
        assert!(sha_matches(
            "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=",
            hex_digest
        ));
        assert!(!sha_matches(&"0".repeat(64), hex_digest));
        assert!(!sha_matches("", hex_digest));
    }

    #[test]
    fn the_lookup_budget_refills_an_hour_after_each_failure() {
        let b = LookupBudget::new(2);
        assert_eq!(b.check(1000), Ok(()));
        b.fail(1000);
        b.fail(1500);
        assert_eq!(b.check(1600), Err(3000));
        assert_eq!(b.check(4599), Err(1));
        assert_eq!(b.check(4600), Ok(()));
    }

    #[test]
    fn media_ids_and_file_names_are_kept_safe() {
        assert!(valid_media_id("1037543291543636"));
        for bad in ["", "../x", "a/b", "1 2", "x.y", &"1".repeat(101)] {
            assert!(!valid_media_id(bad), "{bad}");
        }
        assert_eq!(clean_filename("../../etc/passwd\r\n"), "....etcpasswd");
        assert_eq!(clean_filename(" Factura março.pdf "), "Factura março.pdf");
    }
}
