//! `/api/assets`: upload (a raw `PUT`, or a form), read, list, change and delete assets; and
//! `/api/fetches`, an asset's recent public fetches.

use std::pin::pin;

use axum::Json;
use axum::body::Body;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{Multipart, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::access::require_signing;
use super::commit::commit;
use super::extract::{ApiJson, ApiQuery, AssetAt, present};
use super::view::{existing, view};
use super::{convert, form};
use crate::asset::AssetPath;
use crate::asset::path::parse_folder;
use crate::convert::Mode;
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::media_kind;
use crate::policy::CachePolicy;
use crate::store::{Staged, StoreError, UploadHints};

/// Largest page of a listing.
const MAX_PAGE: usize = 1000;
/// Default page size.
const DEFAULT_PAGE: usize = 100;

/// A prefix of asset paths to list, as `GET /api/assets?prefix=` and `POST
/// /api/whatsapp/refresh` take it: leading slashes dropped, and the rest, but for trailing
/// slashes, held to the rules of an asset path (400 `invalid_path`). Returns what to list.
pub(super) fn list_prefix(raw: &str) -> Result<&str, ApiError> {
    let prefix = raw.trim_start_matches('/');
    if !prefix.is_empty() {
        AssetPath::parse(prefix.trim_end_matches('/'))?;
    }
    Ok(prefix)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PutQuery {
    cache: Option<String>,
    /// Also upload to the Media API (default phone number).
    #[serde(default)]
    whatsapp: bool,
    /// `true`, `sticker` or `false`: convert what WhatsApp would refuse (see [`convert`]).
    convert: Option<String>,
}

/// `PUT /api/assets/{path}`: the body is the file.
pub(super) async fn put_asset(
    State(state): State<AppState>,
    AssetAt(path): AssetAt,
    ApiQuery(query): ApiQuery<PutQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let answer = put_asset_body(state, &path, query, headers, body).await;
    if let Err(e) = &answer {
        log_refused(Some(path.as_str()), e);
    }
    answer
}

/// An upload that was refused, with its reason, in the server's log: the client saw the
/// answer, the operator sees it here (with the request's ID from the span). A client's fault
/// is INFO, the server's (storage, say) WARN.
fn log_refused(path: Option<&str>, e: &ApiError) {
    let (status, code, reason) = (e.status.as_u16(), e.code, e.message.as_str());
    // A form refused before it named its asset has no path to log, rather than an empty one.
    let path = path.map(tracing::field::display);
    if e.status.is_server_error() {
        tracing::warn!(path, status, %code, %reason, "upload failed");
    } else {
        tracing::info!(path, status, %code, %reason, "upload refused");
    }
}

async fn put_asset_body(
    state: AppState,
    path: &AssetPath,
    query: PutQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let cache = query.cache.as_deref().map(str::parse).transpose()?;
    let declared = headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("invalid"));
    let mode = convert::mode(query.convert.as_deref(), &state, path.as_str())?;
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if mode != Mode::Off {
        let limit = state.converter.max_input();
        if let Some(length) = length.filter(|l| *l > limit) {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!(
                    "the upload is {length} bytes; this server converts at most {limit} bytes \
                     ([convert] max_input_mb)"
                ),
            ));
        }
        let req = convert::Request {
            path,
            mode,
            hints: UploadHints {
                content_type: declared,
                filename: Some(path.file_name()),
            },
            cache,
            filename: None,
            whatsapp: query.whatsapp,
        };
        return convert::upload(&state, body.into_data_stream(), req).await;
    }
    // Refuse what can be refused before reading a byte: an unsupported declared type, or a
    // Content-Length over the limit of the declared kind (or of any kind).
    let limit = media_kind::declared_limit(declared)?.unwrap_or(media_kind::MAX_UPLOAD_SIZE);
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
    commit(&state, path, staged, cache, None, query.whatsapp).await
}

/// `POST /api/assets` with `multipart/form-data`: see [`form`]. The file is streamed into the
/// store (or, with `convert`, into a conversion) as it comes, and discarded when the form is
/// refused.
pub(super) async fn upload_form(
    State(state): State<AppState>,
    form: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    let mut named = None;
    let answer = upload_form_body(&state, form, &mut named).await;
    if let Err(e) = &answer {
        log_refused(named.as_ref().map(AssetPath::as_str), e);
    }
    answer
}

/// [`upload_form`]; `named` is the asset path once the form has given one.
async fn upload_form_body(
    state: &AppState,
    form: Result<Multipart, MultipartRejection>,
    named: &mut Option<AssetPath>,
) -> Result<Response, ApiError> {
    let mut form = form::Reader::new(form)?;
    let mut taken = None;
    // The conversion mode the file was taken with, to check against the whole form's.
    let mut mode_used = Mode::Off;
    // A file the gate refused: the rest of the form is still read, so that a `convert` field
    // sent after the file is named as the cause rather than the refusal it led to.
    let mut refused = None;
    let read = async {
        while let Some(part) = form.next_part().await? {
            let form::Part::File(file) = part else {
                continue;
            };
            let file = *file;
            let hints = UploadHints {
                content_type: file.content_type.as_deref(),
                filename: file.file_name.as_deref(),
            };
            let path = file.path;
            mode_used = convert::mode(
                file.convert.as_deref(),
                state,
                path.as_deref().unwrap_or(""),
            )?;
            if mode_used != Mode::Off {
                let field = pin!(file.field);
                let outcome = convert::convert(state, field, mode_used, hints).await?;
                taken = Some(Taken::Converted(outcome));
                continue;
            }
            match state.store.stage(pin!(file.field), hints).await {
                Ok(staged) => taken = Some(Taken::Staged(staged)),
                Err(e @ StoreError::Media(_)) => refused = Some(ApiError::from(e)),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
    .await;
    let decided = read.and_then(|()| form.decide()).and_then(|upload| {
        let mode = convert::mode(upload.convert.as_deref(), state, upload.path.as_str())?;
        if mode != mode_used {
            return Err(ApiError::bad_request(
                "invalid_form",
                "send the `convert` field, and `path` or `folder`, before the `file` part: the \
                 file is converted as it arrives",
            ));
        }
        Ok(upload)
    });
    let decided = match (decided, refused) {
        (Ok(_), Some(refusal)) => Err(refusal),
        (decided, _) => decided,
    };
    match (decided, taken) {
        (Ok(upload), Some(Taken::Staged(s))) => {
            *named = Some(upload.path.clone());
            let filename = upload.filename.as_deref();
            commit(
                state,
                &upload.path,
                s,
                upload.cache,
                filename,
                upload.whatsapp,
            )
            .await
        }
        (Ok(upload), Some(Taken::Converted(outcome))) => {
            *named = Some(upload.path.clone());
            let req = convert::Request {
                path: &upload.path,
                mode: mode_used,
                hints: UploadHints::default(),
                cache: upload.cache,
                filename: upload.filename.as_deref(),
                whatsapp: upload.whatsapp,
            };
            convert::store(state, outcome, req).await
        }
        (Err(e), Some(Taken::Staged(s))) => {
            state.store.discard(s).await;
            Err(e)
        }
        (Err(e), _) => Err(e),
        (Ok(_), None) => unreachable!("a decided form always has a file"),
    }
}

/// A form's file, as it was taken.
enum Taken {
    Staged(Staged),
    Converted(crate::convert::Outcome),
}

/// `GET /api/assets/{path}`.
pub(super) async fn get_asset(
    State(state): State<AppState>,
    AssetAt(path): AssetAt,
) -> Result<Response, ApiError> {
    let record = existing(&state, &path).await?;
    let policies = state.store.policies().await;
    Ok(Json(view(&state, &policies, &record)).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
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
pub(super) async fn get_fetches(
    State(state): State<AppState>,
    AssetAt(path): AssetAt,
) -> Result<Response, ApiError> {
    let log = &state.observer.fetches;
    let fetches = log.get(path.as_str());
    Ok(Json(json!({
        "path": path.as_str(),
        "kept_per_asset": log.per_asset(),
        "fetches": fetches,
    }))
    .into_response())
}

/// `GET /api/assets`: everything under a prefix, or one folder level, a page at a time.
pub(super) async fn list_assets(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
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

/// The body of `PATCH /api/assets/{path}`: the asset's own settings, each left as it is when
/// absent and cleared by `null`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Overrides {
    /// A policy, or null to clear the override.
    #[serde(default, deserialize_with = "present")]
    cache_control: Option<Option<String>>,
    /// true, false, or null to follow the folder.
    #[serde(default, deserialize_with = "present")]
    signed: Option<Option<bool>>,
}

/// `PATCH /api/assets/{path}`: change the asset's own cache policy and signed-link setting.
pub(super) async fn patch_asset(
    State(state): State<AppState>,
    AssetAt(path): AssetAt,
    ApiJson(body): ApiJson<Overrides>,
) -> Result<Response, ApiError> {
    let Overrides {
        cache_control,
        signed,
    } = body;
    if cache_control.is_none() && signed.is_none() {
        return Err(ApiError::bad_request(
            "invalid_json",
            "expected a JSON object with `cache_control` (a policy, or null to clear the \
             override) and/or `signed` (true, false, or null to follow the folder)",
        ));
    }
    let cache = match cache_control {
        Some(Some(policy)) => Some(Some(policy.parse::<CachePolicy>()?)),
        Some(None) => Some(None),
        None => None,
    };
    if signed == Some(Some(true)) {
        require_signing(&state)?;
    }
    let record = state.store.set_overrides(&path, cache, signed).await?;
    let policies = state.store.policies().await;
    Ok(Json(view(&state, &policies, &record)).into_response())
}

/// `DELETE /api/assets/{path}`.
pub(super) async fn delete_asset(
    State(state): State<AppState>,
    AssetAt(path): AssetAt,
) -> Result<Response, ApiError> {
    let media_ids = state.store.delete(&path).await?;
    tracing::info!(path = %path, "asset deleted");
    state.whatsapp.forget(media_ids);
    Ok(StatusCode::NO_CONTENT.into_response())
}
