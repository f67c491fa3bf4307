//! The JSON the admin API answers with for an asset: its record, its effective policy and where
//! that came from (so an operator can see why Meta caches it the way it does), its link, and
//! the WhatsApp messages that send it.

use std::sync::Arc;

use serde::Serialize;
use serde_json::{Value, json};

use crate::asset::path::url_encode;
use crate::asset::{AssetPath, AssetRecord};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::media_kind::{self, Kind};
use crate::policy::{CachePolicy, PolicySet, PolicySource};

/// Largest voice note WhatsApp shows with a play icon: "512 KB", taken as 512,000 bytes like
/// Meta's other limits (its MB is 1,000,000 bytes), which also errs on the side of warning.
const VOICE_NOTE_PLAY_ICON_MAX_SIZE: u64 = 512_000;

/// An asset as the admin API shows it.
#[derive(Debug, Serialize)]
pub struct AssetView {
    path: String,
    pub(super) url: String,
    link: String,
    kind: Option<Kind>,
    content_type: String,
    size: u64,
    sha256: String,
    etag: String,
    last_modified: String,
    cache_control: CachePolicy,
    policy_source: PolicySource,
    cache_override: Option<CachePolicy>,
    filename: String,
    uploaded_at: String,
    message: Value,
    /// The same message by media ID, for the default phone number, while its ID is valid.
    message_by_id: Option<Value>,
    /// `message` as a voice note (`"voice": true`), for Ogg Opus (mono, the only Ogg stored):
    /// the one type WhatsApp sends as a voice note. None for anything else.
    message_voice: Option<Value>,
    /// `message_by_id` as a voice note, when both of those are there.
    message_voice_by_id: Option<Value>,
    /// The `components` entry that puts the asset in a template's media header (`{"type":
    /// "header", "parameters": [{"type": KIND, KIND: {"link": ...}}]}`), for the kinds a
    /// template header takes (image, video, document); None for audio and stickers.
    template_header: Option<Value>,
    /// `template_header` by media ID, while the default phone number's ID is valid.
    template_header_by_id: Option<Value>,
    /// What will not go as one would expect when the asset is sent, one sentence each (the
    /// asset is still stored and served): a voice note over 512 KB shows no play icon.
    warnings: Vec<String>,
    /// Media IDs by phone number ID.
    whatsapp: std::collections::BTreeMap<String, MediaIdView>,
    /// Served only through signed links; `link` is then signed, valid until `link_expires_at`.
    pub(super) signed: bool,
    /// Why: `asset`, `folder:<folder>` or `default` (public).
    signed_source: PolicySource,
    /// The asset's own signed-link setting, if any.
    signed_override: Option<bool>,
    link_expires_at: Option<String>,
    /// The headers a full `200` for the asset carries, in order, exactly as sent (names in
    /// lower case, as the server writes them).
    headers: Vec<HeaderView>,
    /// For media a customer sent: what Meta said of it when it was imported.
    #[serde(skip_serializing_if = "Option::is_none")]
    imported: Option<ImportedView>,
    /// What the upload was before it was converted (`convert=true`); absent when it was not.
    #[serde(skip_serializing_if = "Option::is_none")]
    converted_from: Option<crate::asset::ConvertedFrom>,
}

/// What Meta said of an imported asset, as the admin API shows it.
#[derive(Debug, Serialize)]
struct ImportedView {
    media_id: String,
    phone_number_id: String,
    mime_type: String,
    file_size: u64,
    imported_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    message_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<String>,
}

/// One response header, as `{"name": ..., "value": ...}` (a list keeps the order and repeats).
#[derive(Debug, Serialize)]
struct HeaderView {
    name: String,
    value: String,
}

/// A media ID as the admin API shows it.
#[derive(Debug, Serialize)]
struct MediaIdView {
    media_id: String,
    uploaded_at: String,
    expires_at: String,
    /// Still valid for the asset's current bytes.
    valid: bool,
}

impl Serialize for Kind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The asset `r` as the API shows it, under `policies`.
pub fn view(state: &AppState, policies: &PolicySet, r: &AssetRecord) -> AssetView {
    let url = format!(
        "{}{}{}",
        state.public_base,
        crate::http::public::MEDIA_PREFIX,
        url_encode(&r.path)
    );
    // The link carries the content version: Meta caches by URL, so new bytes need a new URL to
    // reach recipients at once. Any `v` is served the current bytes, so old links keep working.
    let mut link = format!("{url}?v={}", r.version());
    let (signed, signed_source) = policies.signed_for(&r.path, r.signed);
    let mut link_expires_at = None;
    if signed {
        let signer = state.signer.load();
        let expires = crate::clock::unix_now() + signer.default_ttl();
        if let Some(query) = signer.sign(&r.path, expires) {
            link = format!("{link}&{query}");
            link_expires_at = Some(crate::clock::http_date(expires));
        }
    }
    let (cache_control, policy_source) = policies.resolve(&r.path, r.cache_control);
    let wa = &state.whatsapp;
    let valid_id = wa
        .default_phone()
        .and_then(|phone| {
            r.whatsapp
                .get(phone)
                .filter(|m| wa.is_valid(phone, m, &r.sha256))
        })
        .map(|m| m.media_id.as_str());
    let message_by_id = valid_id.map(|id| message(r, json!({"id": id})));
    let message_voice = voice_message(r, json!({"link": link}));
    let template_header_by_id = valid_id.and_then(|id| template_header(r, json!({"id": id})));
    let message_voice_by_id = valid_id.and_then(|id| voice_message(r, json!({"id": id})));
    let mut warnings = Vec::new();
    if message_voice.is_some() && r.size > VOICE_NOTE_PLAY_ICON_MAX_SIZE {
        warnings.push(format!(
            "voice note over 512 KB ({} bytes, more than {VOICE_NOTE_PLAY_ICON_MAX_SIZE}): \
             WhatsApp shows no play icon for voice notes that large; send it as plain audio \
             (`message`), or make it at most {VOICE_NOTE_PLAY_ICON_MAX_SIZE} bytes (shorter, \
             or a lower bitrate) to send it as a voice note",
            r.size
        ));
    }
    let whatsapp = r
        .whatsapp
        .iter()
        .map(|(phone, m)| {
            (
                phone.clone(),
                MediaIdView {
                    media_id: m.media_id.clone(),
                    uploaded_at: crate::clock::http_date(m.uploaded_at),
                    expires_at: crate::clock::http_date(wa.expires_at(phone, m)),
                    valid: wa.is_valid(phone, m, &r.sha256),
                },
            )
        })
        .collect();
    AssetView {
        path: r.path.clone(),
        url,
        message: message(r, json!({"link": link})),
        message_by_id,
        message_voice,
        message_voice_by_id,
        template_header: template_header(r, json!({"link": link})),
        template_header_by_id,
        warnings,
        whatsapp,
        link,
        kind: r.kind(),
        content_type: r.content_type.clone(),
        size: r.size,
        sha256: r.sha256.clone(),
        etag: r.etag(),
        last_modified: crate::clock::http_date(r.last_modified),
        cache_control,
        policy_source,
        cache_override: r.cache_control,
        filename: r.filename.clone(),
        uploaded_at: crate::clock::http_date(r.uploaded_at),
        signed,
        signed_source,
        signed_override: r.signed,
        link_expires_at,
        headers: crate::http::public::served_headers(r, cache_control)
            .iter()
            .map(|(name, value)| HeaderView {
                name: name.as_str().to_owned(),
                value: value.to_str().unwrap_or_default().to_owned(),
            })
            .collect(),
        imported: r.imported.as_ref().map(|i| ImportedView {
            media_id: i.media_id.clone(),
            phone_number_id: i.phone_number_id.clone(),
            mime_type: i.mime_type.clone(),
            file_size: i.file_size,
            imported_at: crate::clock::http_date(i.imported_at),
            message_id: i.message_id.clone(),
            from: i.from.clone(),
        }),
        converted_from: r.converted_from.clone(),
    }
}

/// The WhatsApp message that sends the asset, `media` being `{"link": ...}` or `{"id": ...}`:
/// `{"type": KIND, KIND: MEDIA}`, a document's file name added to `media` (a record of no
/// known kind goes as a document).
pub fn message(r: &AssetRecord, mut media: Value) -> Value {
    let kind = r.kind();
    if matches!(kind, Some(Kind::Document) | None) {
        media["filename"] = json!(r.filename);
    }
    let kind_name = kind.map_or("document", Kind::as_str);
    json!({"type": kind_name, kind_name: media})
}

/// The entry of a template message's `components` that makes the asset its media header
/// (WHATSAPP_MEDIA.md §3), `media` being `{"link": ...}` or `{"id": ...}`. A template header
/// is text, an image, a video or a document (Meta's "Template components" reference, media
/// header formats), so audio and stickers have none; a document's file name goes with it, as
/// in its message.
pub fn template_header(r: &AssetRecord, media: Value) -> Option<Value> {
    matches!(r.kind()?, Kind::Image | Kind::Video | Kind::Document).then(|| {
        let parameter = message(r, media);
        json!({"type": "header", "parameters": [parameter]})
    })
}

/// The voice-note form of an asset's message (`{"type": "audio", "audio": {MEDIA, "voice":
/// true}}`, `media` being `{"link": ...}` or `{"id": ...}`), for Ogg Opus only: a voice note
/// needs it (WHATSAPP_MEDIA.md §3), and the upload gate stores mono Opus in Ogg, and nothing
/// else, as that type.
pub fn voice_message(r: &AssetRecord, mut media: Value) -> Option<Value> {
    (r.content_type == media_kind::OGG_OPUS).then(|| {
        media["voice"] = json!(true);
        json!({"type": "audio", "audio": media})
    })
}

/// A media ID obtained or reused for an asset, as the API shows it.
pub fn media_outcome(o: &crate::whatsapp::Outcome) -> Value {
    json!({
        "phone_number_id": o.phone_number_id,
        "media_id": o.media.media_id,
        "reused": o.reused,
        "uploaded_at": crate::clock::http_date(o.media.uploaded_at),
        "expires_at": crate::clock::http_date(o.media.expires_at),
    })
}

/// The `error` object an [`ApiError`] would be sent as, with its status.
pub fn error_json(e: ApiError) -> Value {
    let status = e.status.as_u16();
    let mut object = e.extra.map(|m| *m).unwrap_or_default();
    object.insert("code".into(), json!(e.code));
    object.insert("message".into(), json!(e.message));
    object.insert("status".into(), json!(status));
    Value::Object(object)
}

/// The record of the asset at `path`; 404 when there is none.
pub(super) async fn existing(
    state: &AppState,
    path: &AssetPath,
) -> Result<Arc<AssetRecord>, ApiError> {
    state
        .store
        .record(path)
        .await?
        .ok_or_else(|| ApiError::not_found("no asset at this path"))
}
