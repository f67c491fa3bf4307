//! Media IDs at the WhatsApp Cloud API, for `id`-based sends; and the other direction, media
//! customers send, imported by media ID ([`import`], [`download`], [`webhook`]).
//!
//! A send by `id` skips Meta's fetch of the `link`, and with it the fetcher's failures; the price
//! is an upload per business phone number, valid 30 days (on a No-Storage number, 1 hour unless
//! the upload carries `ttl_minutes`). This module uploads an asset's bytes (streamed from
//! storage) to the Media endpoint, keeps the ID in the asset's record with its expiry, and hands
//! it out again while it is valid for the same bytes. Replaced bytes or an expired ID mean a new
//! upload. The store never sees Meta; the HTTP layer never sees retries.
//!
//! An ID is reused for `reuse_days` of Meta's 30 days, or, when its number has `ttl_minutes`,
//! for the same share of that lifetime (27/30 of 60 minutes is 54): it is never handed out past
//! its real lifetime, nor so close to it that a send made at once would find it gone.

pub mod client;
pub mod download;
pub mod download_rules;
mod import;
pub mod webhook;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use serde::Serialize;

use crate::asset::{AssetPath, AssetRecord, MediaId};
use crate::clock::{Clock, http_date};
use crate::config::{MIN_TTL_MINUTES, WhatsAppSettings};
use crate::media_kind;
use crate::store::{Store, StoreError};
pub use client::{ClientError, GraphClient, GraphError, Retrieved};
pub use download::{DownloadError, Failure as DownloadFailure};
pub use import::{ImportOutcome, ImportRequest, valid_media_id};

/// Why a media ID could not be had.
#[derive(Debug, thiserror::Error)]
pub enum WaError {
    /// No access token or no phone number configured.
    #[error("WhatsApp uploads are not configured: {0}")]
    NotConfigured(&'static str),
    /// A phone number ID that is not configured.
    #[error("phone number ID {0:?} is not one of whatsapp.phone_number_ids")]
    UnknownPhone(String),
    /// Meta would refuse these bytes: refused before any request.
    #[error("{0}")]
    Refused(String),
    /// The Graph API failed.
    #[error(transparent)]
    Client(Box<ClientError>),
    /// Storage failed (or the asset is missing or was replaced).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A media ID that cannot be one.
    #[error("{0:?} is not a media ID (letters, digits, '-' and '_', at most 100)")]
    InvalidMediaId(String),
    /// Too many failed lookups this hour: Meta would block the media endpoint.
    #[error(
        "media lookups are paused for {retry_after} s: this hour's failed lookups reached \
         whatsapp.lookup_failures_per_hour, and Meta blocks the media endpoint for 30 minutes \
         after about 20"
    )]
    LookupsPaused {
        /// Seconds until a lookup is allowed again.
        retry_after: u64,
    },
}

impl From<DownloadError> for WaError {
    fn from(e: DownloadError) -> Self {
        WaError::Client(Box::new(ClientError::Download(e)))
    }
}

impl From<ClientError> for WaError {
    fn from(e: ClientError) -> Self {
        WaError::Client(Box::new(e))
    }
}

/// A media ID handed out.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The phone number it is valid for.
    pub phone_number_id: String,
    /// The ID and its dates.
    #[serde(flatten)]
    pub media: MediaId,
    /// True when an ID uploaded before was handed out again.
    pub reused: bool,
    /// The asset's record, with the ID in it.
    #[serde(skip)]
    pub record: Arc<AssetRecord>,
}

/// The Media API side of the server: cheap to clone.
#[derive(Clone)]
pub struct WhatsApp {
    inner: Arc<Inner>,
}

type UploadLock = Arc<tokio::sync::Mutex<()>>;

struct Inner {
    client: Option<GraphClient>,
    phones: Vec<String>,
    /// `reuse_days` (of Meta's 30).
    reuse_days: u64,
    /// `ttl_minutes` by phone number, for the numbers that send one.
    ttl_minutes: HashMap<String, u32>,
    delete_replaced: bool,
    clock: Clock,
    /// One upload at a time per (path, phone): concurrent asks share the first one's ID; one
    /// import at a time per (media ID, "import").
    locks: Mutex<HashMap<(String, String), UploadLock>>,
    /// Failed media lookups of the last hour (see [`import`]).
    lookups: import::LookupBudget,
    /// `import_max_bytes`.
    import_max: u64,
}

impl WhatsApp {
    /// From settings; without a token or phone numbers every call answers `NotConfigured`.
    pub fn new(settings: &WhatsAppSettings, clock: Clock) -> Self {
        let client = settings
            .access_token
            .clone()
            .map(|token| GraphClient::new(settings, token));
        Self {
            inner: Arc::new(Inner {
                client,
                phones: settings.phone_number_ids.clone(),
                reuse_days: settings.reuse_days,
                ttl_minutes: settings
                    .phone_number_ids
                    .iter()
                    .filter_map(|p| Some((p.clone(), settings.ttl_minutes_for(p)?)))
                    .collect(),
                delete_replaced: settings.delete_replaced,
                clock,
                locks: Mutex::default(),
                lookups: import::LookupBudget::new(settings.lookup_failures_per_hour),
                import_max: settings.import_max_bytes,
            }),
        }
    }

    /// Count Media API calls and retries in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::Metrics>) -> Self {
        let inner = Arc::get_mut(&mut self.inner).expect("metrics are attached before sharing");
        inner.client = inner.client.take().map(|c| c.with_metrics(metrics));
        self
    }

    /// The lock of one (path, phone) upload or one (media ID, "import") import.
    fn lock_for(&self, first: &str, second: &str) -> UploadLock {
        let mut locks = self.inner.locks.lock().expect("upload locks");
        locks.retain(|_, l| Arc::strong_count(l) > 1);
        Arc::clone(
            locks
                .entry((first.to_owned(), second.to_owned()))
                .or_default(),
        )
    }

    /// The metrics calls are counted in, if any.
    fn metrics(&self) -> Option<&crate::metrics::Metrics> {
        self.inner.client.as_ref()?.metrics.as_deref()
    }

    /// The default phone number ID (the first configured).
    pub fn default_phone(&self) -> Option<&str> {
        self.inner.phones.first().map(String::as_str)
    }

    /// The configured phone number IDs, the default first; empty when none is configured.
    pub fn phones(&self) -> &[String] {
        &self.inner.phones
    }

    /// The `ttl_minutes` uploads for `phone` carry, if any.
    pub fn ttl_minutes(&self, phone: &str) -> Option<u32> {
        self.inner.ttl_minutes.get(phone).copied()
    }

    /// How long an ID uploaded with `ttl_minutes` is handed out: `reuse_days` of Meta's 30
    /// days, or the same share of the TTL.
    fn reuse_secs(&self, ttl_minutes: Option<u32>) -> u64 {
        reuse_secs(self.inner.reuse_days, ttl_minutes)
    }

    /// Until when `media`, kept for `phone`, is handed out (epoch seconds): its recorded expiry,
    /// except that an ID uploaded without `ttl_minutes` for a number that now has one (a
    /// No-Storage number) lived only Meta's default hour there.
    pub fn expires_at(&self, phone: &str, media: &MediaId) -> u64 {
        match (self.ttl_minutes(phone), media.ttl_minutes) {
            (Some(_), None) => media.expires_at.min(
                media
                    .uploaded_at
                    .saturating_add(self.reuse_secs(Some(MIN_TTL_MINUTES))),
            ),
            _ => media.expires_at,
        }
    }

    /// Whether `media`, kept for `phone`, may be handed out for a record with `sha256`, now.
    pub fn is_valid(&self, phone: &str, media: &MediaId, sha256: &str) -> bool {
        media.sha256 == sha256 && self.expires_at(phone, media) > self.inner.clock.now()
    }

    /// What is missing for uploads to work (what to set), or None when they can.
    pub fn missing(&self) -> Option<&'static str> {
        if self.inner.client.is_none() {
            Some("set the WHATSAPP_ACCESS_TOKEN environment variable")
        } else if self.inner.phones.is_empty() {
            Some("set whatsapp.phone_number_ids (MEDIA_ORIGIN__WHATSAPP__PHONE_NUMBER_IDS)")
        } else {
            None
        }
    }

    fn client(&self) -> Result<&GraphClient, WaError> {
        match (self.missing(), self.inner.client.as_ref()) {
            (None, Some(client)) => Ok(client),
            (missing, _) => Err(WaError::NotConfigured(
                missing.unwrap_or("set the WHATSAPP_ACCESS_TOKEN environment variable"),
            )),
        }
    }

    fn phone<'a>(&'a self, asked: Option<&'a str>) -> Result<&'a str, WaError> {
        match asked {
            None => Ok(self.default_phone().expect("checked by client()")),
            Some(p) if self.inner.phones.iter().any(|c| c == p) => Ok(p),
            Some(p) => Err(WaError::UnknownPhone(p.to_owned())),
        }
    }

    /// A valid media ID for the asset at `path` on `phone` (default: the first number):
    /// the kept one while it is valid for the current bytes, else a new upload. `force`
    /// uploads anew regardless.
    pub async fn ensure(
        &self,
        store: &Store,
        path: &AssetPath,
        phone: Option<&str>,
        force: bool,
    ) -> Result<Outcome, WaError> {
        let client = self.client()?;
        let phone = self.phone(phone)?.to_owned();
        let lock = self.lock_for(path.as_str(), &phone);
        let _held = lock.lock().await;
        let record = store.record(path).await?.ok_or(StoreError::NotFound)?;
        if !force
            && let Some(kept) = record.whatsapp.get(&phone)
            && self.is_valid(&phone, kept, &record.sha256)
        {
            let media = MediaId {
                expires_at: self.expires_at(&phone, kept),
                ..kept.clone()
            };
            return Ok(Outcome {
                phone_number_id: phone,
                media,
                reused: true,
                record,
            });
        }
        refuse_what_meta_would(&record)?;
        refuse_what_the_gate_would(store, &record).await?;
        let sha = record.sha256.clone();
        let open = || {
            let store = store.clone();
            let sha = sha.clone();
            async move {
                store
                    .open_blob(&sha, None)
                    .await
                    .map(|s| s.boxed())
                    .map_err(|e| e.to_string())
            }
        };
        let name = if record.filename.is_empty() {
            path.file_name()
        } else {
            &record.filename
        };
        let filename = upload_filename(name, &record.content_type);
        let ttl_minutes = self.ttl_minutes(&phone);
        // The lifetime starts no later than the request: take the time before it.
        let now = self.inner.clock.now();
        let media_id = client
            .upload(
                &phone,
                &record.content_type,
                &filename,
                record.size,
                ttl_minutes,
                open,
            )
            .await?;
        let media = MediaId {
            media_id,
            sha256: sha,
            uploaded_at: now,
            expires_at: now + self.reuse_secs(ttl_minutes),
            ttl_minutes,
        };
        tracing::info!(path = %path, phone, media_id = %media.media_id, "uploaded to the Media API");
        let (record, replaced) = store.attach_media_id(path, &phone, media.clone()).await?;
        if let Some(old) = replaced
            && old.media_id != media.media_id
        {
            self.forget(vec![old]);
        }
        Ok(Outcome {
            phone_number_id: phone,
            media,
            reused: false,
            record,
        })
    }

    /// Media IDs no longer in use (replaced bytes, deleted asset, re-upload): deleted at Meta
    /// in the background when `whatsapp.delete_replaced` is set.
    pub fn forget(&self, ids: Vec<MediaId>) {
        if !self.inner.delete_replaced || ids.is_empty() {
            return;
        }
        let Some(client) = self.inner.client.clone() else {
            return;
        };
        tokio::spawn(async move {
            for id in ids {
                match client.delete(&id.media_id).await {
                    Ok(()) => tracing::info!(media_id = %id.media_id, "deleted at the Media API"),
                    Err(e) => {
                        tracing::warn!(media_id = %id.media_id, error = %e, "could not delete a media ID")
                    }
                }
            }
        });
    }

    /// Give every asset under `prefix` a media ID on `phone` valid for at least `within_secs`
    /// more: reuse those that are, upload the rest.
    pub async fn refresh(
        &self,
        store: &Store,
        prefix: &str,
        phone: Option<&str>,
        within_secs: u64,
    ) -> Result<RefreshReport, WaError> {
        self.client()?;
        let phone = self.phone(phone)?.to_owned();
        let mut report = RefreshReport {
            phone_number_id: phone.clone(),
            ..RefreshReport::default()
        };
        let mut cursor: Option<String> = None;
        loop {
            let page = store.list(prefix, cursor.as_deref(), 500).await?;
            for record in &page.records {
                let fresh_enough = record.whatsapp.get(&phone).is_some_and(|m| {
                    m.sha256 == record.sha256
                        && self.expires_at(&phone, m) > self.inner.clock.now() + within_secs
                });
                if fresh_enough {
                    report.reused.push(record.path.clone());
                    continue;
                }
                let path = AssetPath::parse(&record.path).map_err(|e| {
                    WaError::Refused(format!("stored path {:?} is invalid: {e}", record.path))
                })?;
                match self.ensure(store, &path, Some(&phone), true).await {
                    Ok(done) => report.uploaded.push(RefreshedId {
                        path: record.path.clone(),
                        media_id: done.media.media_id,
                        expires_at: done.media.expires_at,
                    }),
                    Err(e) => report.failed.push(RefreshFailure {
                        path: record.path.clone(),
                        code: error_code(&e),
                        message: e.to_string(),
                    }),
                }
            }
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        Ok(report)
    }
}

/// The stable code of an error, as the admin API reports it.
pub fn error_code(e: &WaError) -> &'static str {
    match e {
        WaError::NotConfigured(_) => "whatsapp_not_configured",
        WaError::UnknownPhone(_) => "unknown_phone_number",
        WaError::Refused(_) => "whatsapp_would_refuse",
        WaError::Client(c) => c.code(),
        WaError::Store(StoreError::NotFound) => "not_found",
        WaError::Store(StoreError::Replaced) => "asset_replaced",
        WaError::Store(StoreError::Media(m)) => m.code(),
        WaError::Store(_) => "storage_unavailable",
        WaError::InvalidMediaId(_) => "invalid_media_id",
        WaError::LookupsPaused { .. } => "whatsapp_lookups_paused",
    }
}

/// How long an ID is handed out after its upload, in seconds: `reuse_days` of Meta's 30 days,
/// or, for an upload with `ttl_minutes`, the same share of that lifetime.
fn reuse_secs(reuse_days: u64, ttl_minutes: Option<u32>) -> u64 {
    match ttl_minutes {
        None => reuse_days * 86_400,
        Some(minutes) => u64::from(minutes) * 60 * reuse_days / 30,
    }
}

/// The file name the Media API is sent: the asset's name without its last extension, then the
/// canonical extension of the stored type (`banner` as image/png is `banner.png`,
/// `clip.MOV.bak` as video/mp4 `clip.MOV.mp4`). A leading dot starts no extension.
fn upload_filename(name: &str, content_type: &str) -> String {
    let Some(extension) = media_kind::canonical_extension(content_type) else {
        return name.to_owned();
    };
    let stem = match name.rfind('.') {
        Some(dot) if dot > 0 => &name[..dot],
        _ => name,
    };
    format!("{stem}.{extension}")
}

/// Meta refuses types outside its list and sizes over the kind's limit: so do we, first.
fn refuse_what_meta_would(record: &AssetRecord) -> Result<(), WaError> {
    let Some(kind) = media_kind::kind_of(&record.content_type) else {
        return Err(WaError::Refused(format!(
            "{} is not a type the Media API accepts",
            record.content_type
        )));
    };
    if record.size == 0 || record.size > kind.max_size() {
        return Err(WaError::Refused(format!(
            "{} bytes is outside the Media API's limit for a {} ({} bytes)",
            record.size,
            kind.as_str(),
            kind.max_size()
        )));
    }
    Ok(())
}

/// The upload gate's decision on the stored bytes, under the stored type: the same inspection
/// that uploads and `check` use (codecs, tracks, frame headers), so that an asset stored before
/// the gate read that deep (an HEVC clip kept as `video/mp4`) never reaches Meta, whose upload
/// may accept it only for the send to fail later. Costs one read of the blob, only when a new
/// ID is needed.
async fn refuse_what_the_gate_would(store: &Store, record: &AssetRecord) -> Result<(), WaError> {
    let mut blob = store.open_blob(&record.sha256, None).await?;
    let mut inspector = media_kind::Inspector::new();
    while let Some(chunk) = blob.next().await {
        let chunk = chunk.map_err(|e| WaError::Store(StoreError::from(e)))?;
        inspector.update(&chunk);
    }
    let name = (!record.filename.is_empty()).then_some(record.filename.as_str());
    inspector
        .finish(Some(&record.content_type), name)
        .map(|_| ())
        .map_err(|e| {
            let fix = e.fix().map(|f| format!("; fix: {f}")).unwrap_or_default();
            WaError::Refused(format!("{e}: WhatsApp would refuse it{fix}"))
        })
}

/// What a bulk refresh did.
#[derive(Debug, Default, Serialize)]
pub struct RefreshReport {
    /// The phone number refreshed for.
    pub phone_number_id: String,
    /// Assets given a new ID.
    pub uploaded: Vec<RefreshedId>,
    /// Assets whose ID stays valid long enough.
    pub reused: Vec<String>,
    /// Assets that could not be uploaded, and why.
    pub failed: Vec<RefreshFailure>,
}

/// One asset given a new ID.
#[derive(Debug, Serialize)]
pub struct RefreshedId {
    /// The asset.
    pub path: String,
    /// The new ID.
    pub media_id: String,
    /// Its expiry (epoch seconds), sent as an HTTP-date like every date of the admin API.
    #[serde(serialize_with = "serialize_http_date")]
    pub expires_at: u64,
}

fn serialize_http_date<S: serde::Serializer>(secs: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&http_date(*secs))
}

/// One asset that failed.
#[derive(Debug, Serialize)]
pub struct RefreshFailure {
    /// The asset.
    pub path: String,
    /// Stable code.
    pub code: &'static str,
    /// What went wrong.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_upload_file_name_carries_the_canonical_extension() {
        for (name, content_type, sent) in [
            ("banner", "image/png", "banner.png"),
            ("banner.jpeg", "image/jpeg", "banner.jpg"),
            ("photo.JPG", "image/jpeg", "photo.jpg"),
            ("clip.MOV.bak", "video/mp4", "clip.MOV.mp4"),
            ("clip.3gpp", "video/3gpp", "clip.3gp"),
            ("voice.opus", "audio/ogg; codecs=opus", "voice.ogg"),
            ("song.mpga", "audio/mpeg", "song.mp3"),
            ("terms.final.v2", "application/pdf", "terms.final.pdf"),
            ("notes", "text/plain", "notes.txt"),
            (".env", "text/plain", ".env.txt"),
            ("trailing.", "image/png", "trailing.png"),
            (
                "report.bin",
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                "report.docx",
            ),
        ] {
            assert_eq!(
                upload_filename(name, content_type),
                sent,
                "{name} {content_type}"
            );
        }
    }

    #[test]
    fn the_reuse_window_is_the_same_share_of_a_ttl_as_of_30_days() {
        assert_eq!(reuse_secs(27, None), 27 * 86_400);
        // 27/30 of an hour: 54 minutes.
        assert_eq!(reuse_secs(27, Some(60)), 54 * 60);
        // 27/30 of a day: 21.6 hours.
        assert_eq!(reuse_secs(27, Some(1440)), 77_760);
        // The longest TTL is Meta's 30 days: the same window as without one.
        assert_eq!(reuse_secs(27, Some(43_200)), reuse_secs(27, None));
        for days in 1..30 {
            for minutes in [60, 61, 90, 1440, 43_199, 43_200] {
                let window = reuse_secs(days, Some(minutes));
                assert!(window < u64::from(minutes) * 60, "{days} {minutes}");
                assert!(window > 0, "{days} {minutes}");
            }
        }
    }
}
