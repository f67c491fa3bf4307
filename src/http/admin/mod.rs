//! The admin API (bearer token, JSON in and out): upload and manage assets, set folder policies,
//! and get back URLs ready to paste into a message's `link` field.
//!
//! Every answer that shows an asset shows its effective policy and where that came from, so an
//! operator can see why Meta caches an asset the way it does.

use std::pin::pin;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Multipart, Query, State, multipart::MultipartRejection};
use axum::handler::Handler;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;
use super::openapi::Recorded;
use crate::asset::path::{folder_from_url, parse_folder, url_encode};
use crate::asset::{AssetPath, AssetRecord};
use crate::media_kind::{self, Kind};
use crate::policy::{CachePolicy, PolicySet, PolicySource, RuleSource};
use crate::store::{Staged, UploadHints};

/// Largest page of a listing.
const MAX_PAGE: usize = 1000;
/// Default page size.
const DEFAULT_PAGE: usize = 100;
/// Largest JSON body accepted (policies, overrides, media-ID and signing requests are tiny).
pub const MAX_JSON_BODY: usize = 64 * 1024;
/// Largest text field accepted in a multipart upload.
const MAX_FORM_FIELD: usize = 4096;
/// Largest voice note WhatsApp shows with a play icon: "512 KB", taken as 512,000 bytes like
/// Meta's other limits (its MB is 1,000,000 bytes), which also errs on the side of warning.
const VOICE_NOTE_PLAY_ICON_MAX_SIZE: u64 = 512_000;

/// Routes relative to `/api`.
pub fn routes() -> Router<AppState> {
    registered().0
}

/// Every `(path template, method)` that [`routes`] routes, taken from the same calls that
/// build it: what `tests/openapi.rs` compares with the OpenAPI description.
pub fn route_table() -> Vec<(&'static str, Method)> {
    registered().1
}

fn registered() -> (Router<AppState>, Vec<(&'static str, Method)>) {
    let upload_limit = axum::extract::DefaultBodyLimit::max(super::MAX_UPLOAD_BODY as usize);
    Recorded::default()
        .route(Method::GET, "/assets", list_assets)
        .route(Method::POST, "/assets", upload_form.layer(upload_limit))
        .route(Method::GET, "/assets/{*path}", get_asset)
        .route(Method::PUT, "/assets/{*path}", put_asset)
        .route(Method::PATCH, "/assets/{*path}", patch_asset)
        .route(Method::DELETE, "/assets/{*path}", delete_asset)
        .route(Method::GET, "/fetches/{*path}", get_fetches)
        .route(Method::GET, "/policies", list_policies)
        .route(Method::PUT, "/policies/{*folder}", put_policy)
        .route(Method::DELETE, "/policies/{*folder}", delete_policy)
        .route(Method::GET, "/access", list_access)
        .route(Method::PUT, "/access/{*folder}", put_access)
        .route(Method::DELETE, "/access/{*folder}", delete_access)
        .route(Method::POST, "/sign", sign_link)
        .route(Method::POST, "/whatsapp/media", whatsapp_media)
        .route(Method::POST, "/whatsapp/refresh", whatsapp_refresh)
        .finish()
}

/// An asset as the admin API shows it.
#[derive(Debug, Serialize)]
pub struct AssetView {
    path: String,
    url: String,
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
    /// What will not go as one would expect when the asset is sent, one sentence each (the
    /// asset is still stored and served): a voice note over 512 KB shows no play icon.
    warnings: Vec<String>,
    /// Media IDs by phone number ID.
    whatsapp: std::collections::BTreeMap<String, MediaIdView>,
    /// Served only through signed links; `link` is then signed, valid until `link_expires_at`.
    signed: bool,
    /// Why: `asset`, `folder:<folder>` or `default` (public).
    signed_source: PolicySource,
    /// The asset's own signed-link setting, if any.
    signed_override: Option<bool>,
    link_expires_at: Option<String>,
    /// The headers a full `200` for the asset carries, in order, exactly as sent (names in
    /// lower case, as the server writes them).
    headers: Vec<HeaderView>,
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

fn view(state: &AppState, policies: &PolicySet, r: &AssetRecord) -> AssetView {
    let url = format!(
        "{}{}{}",
        state.public_base,
        super::public::MEDIA_PREFIX,
        url_encode(&r.path)
    );
    // The link carries the content version: Meta caches by URL, so new bytes need a new URL to
    // reach recipients at once. Any `v` is served the current bytes, so old links keep working.
    let mut link = format!("{url}?v={}", r.version());
    let (signed, signed_source) = policies.signed_for(&r.path, r.signed);
    let mut link_expires_at = None;
    if signed {
        let signer = state.signer.load();
        let expires = crate::store::unix_now() + signer.default_ttl();
        if let Some(query) = signer.sign(&r.path, expires) {
            link = format!("{link}&{query}");
            link_expires_at = Some(crate::http_date(expires));
        }
    }
    let (cache_control, policy_source) = policies.resolve(&r.path, r.cache_control);
    let kind = r.kind();
    let mut media = json!({"link": link});
    if kind == Some(Kind::Document) {
        media["filename"] = json!(r.filename);
    }
    let kind_name = kind.map_or("document", Kind::as_str);
    let by_id = |id: &str| {
        let mut media = json!({"id": id});
        if kind == Some(Kind::Document) {
            media["filename"] = json!(r.filename);
        }
        json!({"type": kind_name, kind_name: media})
    };
    let wa = &state.whatsapp;
    let valid_id = wa
        .default_phone()
        .and_then(|phone| {
            r.whatsapp
                .get(phone)
                .filter(|m| wa.is_valid(phone, m, &r.sha256))
        })
        .map(|m| m.media_id.as_str());
    let message_by_id = valid_id.map(by_id);
    let message_voice = voice_message(r, json!({"link": link}));
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
                    uploaded_at: crate::http_date(m.uploaded_at),
                    expires_at: crate::http_date(wa.expires_at(phone, m)),
                    valid: wa.is_valid(phone, m, &r.sha256),
                },
            )
        })
        .collect();
    AssetView {
        path: r.path.clone(),
        url,
        message: json!({"type": kind_name, kind_name: media}),
        message_by_id,
        message_voice,
        message_voice_by_id,
        warnings,
        whatsapp,
        link,
        kind,
        content_type: r.content_type.clone(),
        size: r.size,
        sha256: r.sha256.clone(),
        etag: r.etag(),
        last_modified: crate::http_date(r.last_modified),
        cache_control,
        policy_source,
        cache_override: r.cache_control,
        filename: r.filename.clone(),
        uploaded_at: crate::http_date(r.uploaded_at),
        signed,
        signed_source,
        signed_override: r.signed,
        link_expires_at,
        headers: super::public::served_headers(r, cache_control)
            .iter()
            .map(|(name, value)| HeaderView {
                name: name.as_str().to_owned(),
                value: value.to_str().unwrap_or_default().to_owned(),
            })
            .collect(),
    }
}

/// The voice-note form of an asset's message (`{"type": "audio", "audio": {MEDIA, "voice":
/// true}}`, `media` being `{"link": ...}` or `{"id": ...}`), for Ogg Opus only: a voice note
/// needs it (WHATSAPP_MEDIA.md §3), and the upload gate stores mono Opus in Ogg, and nothing
/// else, as that type.
fn voice_message(r: &AssetRecord, mut media: Value) -> Option<Value> {
    (r.content_type == media_kind::OGG_OPUS).then(|| {
        media["voice"] = json!(true);
        json!({"type": "audio", "audio": media})
    })
}

/// Why a JSON body was refused: 415 when it is not declared JSON, 413 over the limit, else 400.
fn json_rejection(e: JsonRejection) -> ApiError {
    match e {
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as JSON, with `Content-Type: application/json`",
        ),
        e if e.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("a JSON body may be at most {MAX_JSON_BODY} bytes"),
        ),
        e => ApiError::bad_request("invalid_json", e.body_text()),
    }
}

/// The asset path after `/api/assets/`, decoded once and validated.
fn path_from_uri(uri: &Uri, prefix: &str) -> Result<AssetPath, ApiError> {
    // The router is nested under /api, so the URI here starts after it.
    let raw = uri.path().strip_prefix(prefix).unwrap_or_default();
    Ok(AssetPath::from_url(raw)?)
}

/// A prefix of asset paths to list, as `GET /api/assets?prefix=` and `POST
/// /api/whatsapp/refresh` take it: leading slashes dropped, and the rest, but for trailing
/// slashes, held to the rules of an asset path (400 `invalid_path`). Returns what to list.
fn list_prefix(raw: &str) -> Result<&str, ApiError> {
    let prefix = raw.trim_start_matches('/');
    if !prefix.is_empty() {
        AssetPath::parse(prefix.trim_end_matches('/'))?;
    }
    Ok(prefix)
}

fn parse_cache(value: Option<&str>) -> Result<Option<CachePolicy>, ApiError> {
    value.map(str::parse).transpose().map_err(ApiError::from)
}

// ---- assets -------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PutQuery {
    cache: Option<String>,
    /// Also upload to the Media API (default phone number).
    #[serde(default)]
    whatsapp: bool,
}

async fn put_asset(
    State(state): State<AppState>,
    uri: Uri,
    query: Result<Query<PutQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let path = path_from_uri(&uri, "/assets/")?;
    let Query(query) = query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let cache = parse_cache(query.cache.as_deref())?;
    let declared = headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("invalid"));
    // Refuse what can be refused before reading a byte: an unsupported declared type, or a
    // Content-Length over the limit of the declared kind (or of any kind).
    let limit = media_kind::declared_limit(declared)?.unwrap_or(media_kind::MAX_UPLOAD_SIZE);
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if let Some(length) = length
        && length > limit
    {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the upload is {length} bytes; the limit for this type is {limit} bytes"),
        ));
    }
    let hints = UploadHints {
        content_type: declared,
        filename: Some(path.file_name()),
    };
    let staged = state.store.stage(body.into_data_stream(), hints).await?;
    commit(&state, &path, staged, cache, None, query.whatsapp).await
}

/// Make the staged upload the asset, then, when asked, get it a media ID. The asset is stored
/// whatever the Media API says: its answer (`whatsapp_upload`) or error (`whatsapp_error`)
/// rides along with the record.
async fn commit(
    state: &AppState,
    path: &AssetPath,
    staged: Staged,
    cache: Option<CachePolicy>,
    filename: Option<&str>,
    whatsapp: bool,
) -> Result<Response, ApiError> {
    let done = state.store.commit(path, staged, cache, filename).await?;
    state.observer.metrics.upload(done.record.size);
    if done.unchanged {
        tracing::info!(path = %path, sha256 = %done.record.sha256, "asset uploaded again unchanged; its version stays");
    } else {
        tracing::info!(path = %path, sha256 = %done.record.sha256, size = done.record.size, created = done.created, "asset stored");
    }
    state.whatsapp.forget(done.dropped_media_ids);
    let mut record = done.record;
    let mut extra = None;
    if whatsapp {
        extra = Some(
            match state.whatsapp.ensure(&state.store, path, None, false).await {
                Ok(outcome) => {
                    record = Arc::clone(&outcome.record);
                    ("whatsapp_upload", media_outcome(&outcome))
                }
                Err(e) => ("whatsapp_error", error_json(ApiError::from(e))),
            },
        );
    }
    let policies = state.store.policies().await;
    let status = if done.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut body = json!(view(state, &policies, &record));
    if let Some((key, value)) = extra {
        body[key] = value;
    }
    Ok((status, Json(body)).into_response())
}

/// The `error` object an [`ApiError`] would be sent as, with its status.
fn error_json(e: ApiError) -> Value {
    let status = e.status.as_u16();
    let mut object = e.extra.map(|m| *m).unwrap_or_default();
    object.insert("code".into(), json!(e.code));
    object.insert("message".into(), json!(e.message));
    object.insert("status".into(), json!(status));
    Value::Object(object)
}

fn media_outcome(o: &crate::whatsapp::Outcome) -> Value {
    json!({
        "phone_number_id": o.phone_number_id,
        "media_id": o.media.media_id,
        "reused": o.reused,
        "uploaded_at": crate::http_date(o.media.uploaded_at),
        "expires_at": crate::http_date(o.media.expires_at),
    })
}

/// Read a small text field of a form, refusing one longer than [`MAX_FORM_FIELD`].
async fn small_text(field: axum::extract::multipart::Field<'_>) -> Result<String, ApiError> {
    let name = field.name().unwrap_or("").to_owned();
    let mut field = pin!(field);
    let mut buf = Vec::new();
    while let Some(chunk) = futures::StreamExt::next(&mut field).await {
        let chunk =
            chunk.map_err(|e| ApiError::bad_request("malformed_multipart", e.body_text()))?;
        buf.extend_from_slice(&chunk);
        if buf.len() > MAX_FORM_FIELD {
            return Err(ApiError::bad_request(
                "invalid_form",
                format!("the form field {name:?} is longer than {MAX_FORM_FIELD} bytes"),
            ));
        }
    }
    String::from_utf8(buf).map_err(|_| {
        ApiError::bad_request(
            "invalid_form",
            format!("the form field {name:?} is not UTF-8"),
        )
    })
}

/// `POST /api/assets` with `multipart/form-data`: a `file` part plus `path` (or `folder`, to
/// keep the file's own name) and optional `cache`, as a browser form or `curl -F` sends.
async fn upload_form(
    State(state): State<AppState>,
    form: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    let mut form = form.map_err(|e| ApiError::bad_request("malformed_multipart", e.body_text()))?;
    let mut staged: Option<(Staged, Option<String>)> = None;
    let mut fields: [Option<String>; 4] = Default::default();
    let result: Result<(), ApiError> = async {
        while let Some(field) = form
            .next_field()
            .await
            .map_err(|e| ApiError::bad_request("malformed_multipart", e.body_text()))?
        {
            let name = field.name().unwrap_or("").to_owned();
            let slot = match name.as_str() {
                "file" => {
                    if staged.is_some() {
                        return Err(ApiError::bad_request(
                            "invalid_form",
                            "send one `file` part per request",
                        ));
                    }
                    let filename = field.file_name().map(str::to_owned);
                    let content_type = field.content_type().map(str::to_owned);
                    let hints = UploadHints {
                        content_type: content_type.as_deref(),
                        filename: filename.as_deref(),
                    };
                    let s = state.store.stage(pin!(field), hints).await?;
                    staged = Some((s, filename));
                    continue;
                }
                "path" => 0,
                "folder" => 1,
                "cache" => 2,
                "whatsapp" => 3,
                other => {
                    return Err(ApiError::bad_request(
                        "invalid_form",
                        format!(
                            "unknown form field {other:?}; expected file, path, folder, cache, \
                             whatsapp"
                        ),
                    ));
                }
            };
            if fields[slot].is_some() {
                // Keeping the first or the last would be a guess; the file part is refused
                // twice too.
                return Err(ApiError::bad_request(
                    "invalid_form",
                    format!("the form field {name:?} is repeated; send it once"),
                ));
            }
            fields[slot] = Some(small_text(field).await?);
        }
        Ok(())
    }
    .await;
    let decided =
        result.and_then(|()| {
            let [path, folder, cache, whatsapp] = &fields;
            let cache = parse_cache(cache.as_deref().filter(|c| !c.is_empty()))?;
            let whatsapp = match whatsapp.as_deref() {
                None | Some("" | "false") => false,
                Some("true") => true,
                Some(other) => {
                    return Err(ApiError::bad_request(
                        "invalid_form",
                        format!("whatsapp must be true or false, not {other:?}"),
                    ));
                }
            };
            let Some((_, filename)) = &staged else {
                return Err(ApiError::bad_request(
                    "invalid_form",
                    "the form has no `file` part",
                ));
            };
            let path =
                match (path.as_deref(), folder.as_deref()) {
                    (Some(p), None) => AssetPath::parse(p)?,
                    (None, Some(f)) => {
                        let name = filename.as_deref().filter(|n| !n.is_empty()).ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_form",
                        "with `folder`, the file part needs a file name; or send `path`",
                    )
                })?;
                        // Browsers send a bare name; keep only the last segment of anything else.
                        let name = name.rsplit(['/', '\\']).next().unwrap_or(name);
                        let folder = f.trim_matches('/');
                        if folder.is_empty() {
                            AssetPath::parse(name)?
                        } else {
                            AssetPath::parse(&format!("{}/{name}", parse_folder(folder)?))?
                        }
                    }
                    _ => {
                        return Err(ApiError::bad_request(
                            "invalid_form",
                            "give exactly one of `path` or `folder`",
                        ));
                    }
                };
            Ok((path, cache, whatsapp))
        });
    match (decided, staged) {
        (Ok((path, cache, whatsapp)), Some((s, filename))) => {
            let name = filename
                .as_deref()
                .map(|n| n.rsplit(['/', '\\']).next().unwrap_or(n))
                .filter(|n| !n.is_empty());
            commit(&state, &path, s, cache, name, whatsapp).await
        }
        (Err(e), Some((s, _))) => {
            state.store.discard(s).await;
            Err(e)
        }
        (Err(e), None) => Err(e),
        (Ok(_), None) => unreachable!("a decided form always has a file"),
    }
}

async fn get_asset(State(state): State<AppState>, uri: Uri) -> Result<Response, ApiError> {
    let path = path_from_uri(&uri, "/assets/")?;
    let record = state
        .store
        .record(&path)
        .await?
        .ok_or_else(|| ApiError::not_found("no asset at this path"))?;
    let policies = state.store.policies().await;
    Ok(Json(view(&state, &policies, &record)).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    #[serde(default)]
    prefix: String,
    /// One folder level instead of everything under a prefix (`""` is the root).
    folder: Option<String>,
    cursor: Option<String>,
    limit: Option<usize>,
}

/// `GET /api/fetches/{path}`: the asset's recent public fetches, newest first, so an operator
/// can see whether Meta's fetcher comes back for the bytes (200) or revalidates its copy (304).
/// Kept in memory only: empty after a restart, and per instance.
async fn get_fetches(State(state): State<AppState>, uri: Uri) -> Result<Response, ApiError> {
    let path = path_from_uri(&uri, "/fetches/")?;
    let log = &state.observer.fetches;
    let fetches = log.get(path.as_str());
    Ok(Json(json!({
        "path": path.as_str(),
        "kept_per_asset": log.per_asset(),
        "fetches": fetches,
    }))
    .into_response())
}

async fn list_assets(
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let prefix = list_prefix(&q.prefix)?;
    let limit = q.limit.unwrap_or(DEFAULT_PAGE);
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("limit must be between 1 and {MAX_PAGE}"),
        ));
    }
    let (level, page) = match &q.folder {
        None => {
            let page = state.store.list(prefix, q.cursor.as_deref(), limit).await?;
            (None, page)
        }
        Some(_) if !q.prefix.is_empty() => {
            return Err(ApiError::bad_request(
                "invalid_query",
                "give `prefix` (everything below it) or `folder` (one level), not both",
            ));
        }
        Some(folder) => {
            let folder = if folder.trim_matches('/').is_empty() {
                String::new()
            } else {
                parse_folder(folder)?
            };
            let level = state
                .store
                .list_folder(&folder, q.cursor.as_deref(), limit)
                .await?;
            (Some((folder, level.folders)), level.page)
        }
    };
    let policies = state.store.policies().await;
    let assets: Vec<_> = page
        .records
        .iter()
        .map(|r| view(&state, &policies, r))
        .collect();
    let mut body = json!({
        "assets": assets,
        "next_cursor": page.next_cursor,
        "errors": page.errors,
    });
    if let Some((folder, folders)) = level {
        body["folder"] = json!(folder);
        body["folders"] = json!(folders);
    }
    Ok(Json(body).into_response())
}

async fn patch_asset(
    State(state): State<AppState>,
    uri: Uri,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Response, ApiError> {
    let path = path_from_uri(&uri, "/assets/")?;
    let Json(body) = body.map_err(json_rejection)?;
    let invalid = || {
        ApiError::bad_request(
            "invalid_json",
            "expected a JSON object with `cache_control` (a policy, or null to clear the \
             override) and/or `signed` (true, false, or null to follow the folder)",
        )
    };
    let obj = body
        .as_object()
        .filter(|o| !o.is_empty() && o.keys().all(|k| k == "cache_control" || k == "signed"))
        .ok_or_else(invalid)?;
    let cache = match obj.get("cache_control") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(s)) => Some(Some(s.parse::<CachePolicy>()?)),
        Some(_) => return Err(invalid()),
    };
    let signed = match obj.get("signed") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::Bool(b)) => Some(Some(*b)),
        Some(_) => return Err(invalid()),
    };
    if signed == Some(Some(true)) {
        require_signing(&state)?;
    }
    let record = state.store.set_overrides(&path, cache, signed).await?;
    let policies = state.store.policies().await;
    Ok(Json(view(&state, &policies, &record)).into_response())
}

/// Marking something signed-only without a key would make it unreachable.
fn require_signing(state: &AppState) -> Result<(), ApiError> {
    if state.signer.load().is_configured() {
        return Ok(());
    }
    Err(not_configured())
}

fn not_configured() -> ApiError {
    ApiError::bad_request(
        "signing_not_configured",
        format!(
            "no signing key is configured: set {} (id:secret pairs) first",
            crate::config::SIGNING_KEYS_ENV
        ),
    )
}

/// The `cache_control` of a JSON body `{"cache_control": "..."}`; `null` only where allowed.
fn cache_control_field(
    body: Result<Json<Value>, JsonRejection>,
    null_allowed: bool,
) -> Result<Option<CachePolicy>, ApiError> {
    let Json(body) = body.map_err(json_rejection)?;
    let Some(obj) = body.as_object().filter(|o| o.len() == 1) else {
        return Err(ApiError::bad_request(
            "invalid_json",
            "expected a JSON object with exactly one key, `cache_control`",
        ));
    };
    match obj.get("cache_control") {
        Some(Value::String(s)) => Ok(Some(s.parse()?)),
        Some(Value::Null) if null_allowed => Ok(None),
        _ => Err(ApiError::bad_request(
            "invalid_json",
            if null_allowed {
                "`cache_control` must be a policy string, or null to clear the override"
            } else {
                "`cache_control` must be a policy string"
            },
        )),
    }
}

async fn delete_asset(State(state): State<AppState>, uri: Uri) -> Result<Response, ApiError> {
    let path = path_from_uri(&uri, "/assets/")?;
    let media_ids = state.store.delete(&path).await?;
    tracing::info!(path = %path, "asset deleted");
    state.whatsapp.forget(media_ids);
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---- policies -----------------------------------------------------------------------------

async fn list_policies(State(state): State<AppState>) -> Response {
    let policies = state.store.policies().await;
    Json(json!({
        "default": {"cache_control": policies.default, "source": RuleSource::Config},
        "folders": policies.rules(),
    }))
    .into_response()
}

fn folder_from_uri(uri: &Uri) -> Result<String, ApiError> {
    folder_after(uri, "/policies/")
}

/// The folder named after `prefix` in the URI, decoded once and held to the folder rules
/// (those of the form's `folder` field): a name ending in `.json` is refused.
fn folder_after(uri: &Uri, prefix: &str) -> Result<String, ApiError> {
    let raw = uri.path().strip_prefix(prefix).unwrap_or_default();
    Ok(folder_from_url(raw)?)
}

/// 400 `not_a_folder` when `folder` names an asset and no assets lie below it: a folder rule or
/// mark there would apply to nothing, and answering success would say it did. The message
/// names the asset's own route and the body that does what was asked (`outcome` says why, and
/// what that sets).
async fn refuse_asset_path(
    state: &AppState,
    folder: &str,
    outcome: &str,
    instead: Value,
) -> Result<(), ApiError> {
    let Ok(path) = AssetPath::parse(folder) else {
        return Ok(());
    };
    if state.store.record(&path).await?.is_none() || state.store.has_records_below(folder).await? {
        return Ok(());
    }
    Err(ApiError::bad_request(
        "not_a_folder",
        format!(
            "{folder:?} is an asset, not a folder: {outcome} with PATCH /api/assets/{} and \
             {instead}",
            url_encode(folder)
        ),
    ))
}

/// The answer to removing a folder rule: 204 when an API rule went, 409 when the rule lives
/// in the config file (`in_config`), else 404.
fn rule_removed(
    removed: bool,
    in_config: bool,
    config_message: String,
    missing_message: String,
) -> Result<Response, ApiError> {
    if removed {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    if in_config {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "config_rule",
            config_message,
        ));
    }
    Err(ApiError::not_found(missing_message))
}

async fn put_policy(
    State(state): State<AppState>,
    uri: Uri,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Response, ApiError> {
    let folder = folder_from_uri(&uri)?;
    let policy = cache_control_field(body, false)?;
    if let Some(p) = policy {
        refuse_asset_path(
            &state,
            &folder,
            "a folder policy there would apply to nothing. Set the asset's own policy",
            json!({"cache_control": p}),
        )
        .await?;
    }
    let existed = state.store.set_folder_policy(&folder, policy).await?;
    tracing::info!(%folder, policy = ?policy, "folder policy set");
    let policies = state.store.policies().await;
    let rule = policies.rules().into_iter().find(|r| r.folder == folder);
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(rule)).into_response())
}

async fn delete_policy(State(state): State<AppState>, uri: Uri) -> Result<Response, ApiError> {
    let folder = folder_from_uri(&uri)?;
    let removed = state.store.set_folder_policy(&folder, None).await?;
    if removed {
        tracing::info!(%folder, "folder policy removed");
    }
    let in_config = state.store.policies().await.config.contains_key(&folder);
    rule_removed(
        removed,
        in_config,
        format!("the rule for {folder:?} is declared in the config file; change it there"),
        format!("no API rule for folder {folder:?}"),
    )
}

// ---- signed links -------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignRequest {
    path: String,
    /// Lifetime in seconds (default `signing.link_ttl_secs`).
    ttl_secs: Option<u64>,
}

/// `POST /api/sign`: a signed, expiring link to an asset.
async fn sign_link(
    State(state): State<AppState>,
    body: Result<Json<SignRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(req) = body.map_err(json_rejection)?;
    require_signing(&state)?;
    let path = AssetPath::parse(&req.path)?;
    // One set of keys for the whole request, even if SIGHUP replaces them meanwhile.
    let signer = state.signer.load_full();
    let ttl = req.ttl_secs.unwrap_or(signer.default_ttl());
    if ttl == 0 || ttl > crate::config::MAX_LINK_TTL_SECS {
        return Err(ApiError::bad_request(
            "invalid_ttl",
            format!(
                "ttl_secs must be between 1 and {}",
                crate::config::MAX_LINK_TTL_SECS
            ),
        ));
    }
    let record = state
        .store
        .record(&path)
        .await?
        .ok_or_else(|| ApiError::not_found("no asset at this path"))?;
    let policies = state.store.policies().await;
    let asset = view(&state, &policies, &record);
    let expires = crate::store::unix_now() + ttl;
    let Some(query) = signer.sign(path.as_str(), expires) else {
        // The keys were dropped by a reload since `require_signing`.
        return Err(not_configured());
    };
    let url = format!("{}?v={}&{query}", asset.url, record.version());
    let kind = record.kind().map_or("document", Kind::as_str);
    let mut media = json!({"link": url});
    if record.kind() == Some(Kind::Document) {
        media["filename"] = json!(record.filename);
    }
    Ok(Json(json!({
        "path": path.as_str(),
        "url": url,
        "expires_at": crate::http_date(expires),
        "expires": expires,
        "signed": asset.signed,
        "message": {"type": kind, kind: media},
        "message_voice": voice_message(&record, json!({"link": url})),
    }))
    .into_response())
}

fn access_folder(uri: &Uri) -> Result<String, ApiError> {
    folder_after(uri, "/access/")
}

/// `GET /api/access`: the signed-only folders, the key ids and the default link lifetime.
async fn list_access(State(state): State<AppState>) -> Response {
    let policies = state.store.policies().await;
    let folders: Vec<Value> = policies
        .signed_folders()
        .into_iter()
        .map(|(folder, source)| json!({"folder": folder, "signed": true, "source": source}))
        .collect();
    let signer = state.signer.load();
    Json(json!({
        "signed_folders": folders,
        "signing_configured": signer.is_configured(),
        "link_ttl_secs": signer.default_ttl(),
    }))
    .into_response()
}

/// `PUT /api/access/{folder}` with `{"signed": true}` (or `false` to lift the API's mark; 409
/// for a folder the config file marks, which would stay signed-only).
async fn put_access(
    State(state): State<AppState>,
    uri: Uri,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<Response, ApiError> {
    let folder = access_folder(&uri)?;
    let Json(body) = body.map_err(json_rejection)?;
    let signed = body
        .as_object()
        .filter(|o| o.len() == 1)
        .and_then(|o| o.get("signed"))
        .and_then(Value::as_bool)
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_json",
                "expected a JSON object with exactly one key, `signed` (true or false)",
            )
        })?;
    refuse_asset_path(
        &state,
        &folder,
        "marking it as a folder would apply to nothing. Set the asset's own signed-link \
         setting",
        json!({"signed": signed}),
    )
    .await?;
    if signed {
        require_signing(&state)?;
    } else {
        let policies = state.store.policies().await;
        if policies.signed_config.contains(&folder) {
            // Lifting only the API's mark would leave it signed-only: say so, change nothing.
            return Err(config_mark(&folder));
        }
        // Nor can a mark below a signed-only folder make anything public.
        if let (true, PolicySource::Folder(above)) = policies.signed_for(&folder, None) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "inherited_rule",
                format!(
                    "{above:?} is signed-only, and so is everything below it, {folder:?} \
                     included; lift the mark on {above:?} instead"
                ),
            ));
        }
    }
    let was = state.store.set_folder_signed(&folder, signed).await?;
    tracing::info!(%folder, signed, "folder access set");
    let status = if signed && !was {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(json!({"folder": folder, "signed": signed}))).into_response())
}

/// `DELETE /api/access/{folder}`: the folder's assets are public again (unless the config
/// file marks it).
async fn delete_access(State(state): State<AppState>, uri: Uri) -> Result<Response, ApiError> {
    let folder = access_folder(&uri)?;
    let removed = state.store.set_folder_signed(&folder, false).await?;
    if removed {
        tracing::info!(%folder, "folder access set to public");
    }
    let in_config = state.store.policies().await.signed_config.contains(&folder);
    rule_removed(
        removed,
        in_config,
        config_mark(&folder).message,
        format!("{folder:?} is not marked signed-only"),
    )
}

/// 409 `config_rule`: the config file marks `folder` signed-only, so the API cannot lift it.
fn config_mark(folder: &str) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "config_rule",
        format!(
            "{folder:?} is marked signed-only in the config file ([signing] folders); change it \
             there"
        ),
    )
}

// ---- WhatsApp media IDs -------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MediaRequest {
    path: String,
    phone_number_id: Option<String>,
    #[serde(default)]
    force: bool,
}

/// `POST /api/whatsapp/media`: a media ID for an asset, reused while valid.
async fn whatsapp_media(
    State(state): State<AppState>,
    body: Result<Json<MediaRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(req) = body.map_err(json_rejection)?;
    let path = AssetPath::parse(&req.path)?;
    let outcome = state
        .whatsapp
        .ensure(
            &state.store,
            &path,
            req.phone_number_id.as_deref(),
            req.force,
        )
        .await?;
    let policies = state.store.policies().await;
    let asset = view(&state, &policies, &outcome.record);
    let kind = outcome.record.kind().map_or("document", Kind::as_str);
    let mut media = json!({"id": outcome.media.media_id});
    if outcome.record.kind() == Some(Kind::Document) {
        media["filename"] = json!(outcome.record.filename);
    }
    let mut body = media_outcome(&outcome);
    body["path"] = json!(path.as_str());
    body["message"] = json!({"type": kind, kind: media});
    body["message_voice"] = json!(voice_message(
        &outcome.record,
        json!({"id": outcome.media.media_id})
    ));
    body["asset"] = json!(asset);
    Ok(Json(body).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshRequest {
    #[serde(default)]
    prefix: String,
    phone_number_id: Option<String>,
    /// Refresh IDs that expire within this many seconds (default: 3 days).
    #[serde(default = "default_within")]
    expiring_within_secs: u64,
}

fn default_within() -> u64 {
    3 * 86_400
}

/// `POST /api/whatsapp/refresh`: new media IDs for every asset under `prefix` whose ID is
/// missing, stale or expiring within the given time; a summary of what happened.
async fn whatsapp_refresh(
    State(state): State<AppState>,
    body: Result<Json<RefreshRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(req) = body.map_err(json_rejection)?;
    let prefix = list_prefix(&req.prefix)?;
    let report = state
        .whatsapp
        .refresh(
            &state.store,
            prefix,
            req.phone_number_id.as_deref(),
            req.expiring_within_secs,
        )
        .await?;
    Ok(Json(report).into_response())
}
