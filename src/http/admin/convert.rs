//! Uploads with `convert=true` or `convert=sticker` ([`crate::convert`]): the upload is
//! converted (or found acceptable as it is), then staged and committed like any upload, at a
//! path whose extension names the stored type (`clip.mov` becomes `clip.mp4`). The answer is
//! the usual asset JSON, with a `Location` header naming the asset's API resource.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use futures::Stream;

use super::commit::commit;
use crate::asset::AssetPath;
use crate::asset::path::url_encode;
use crate::convert::{ConvertError, Mode, Outcome};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::media_kind;
use crate::policy::CachePolicy;
use crate::store::{StoreError, UploadHints};

/// The mode an upload to `path` gets: the request's `convert` (`true`, `sticker`, `false`),
/// else its folder's rule in `[convert] folders`.
pub(super) fn mode(explicit: Option<&str>, state: &AppState, path: &str) -> Result<Mode, ApiError> {
    match explicit {
        None => Ok(state.converter.folder_mode(path)),
        Some(value) => Mode::parse(value).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_query",
                format!("convert must be true, sticker or false, not {value:?}"),
            )
        }),
    }
}

/// `GET /api/capabilities`: what this server can do that depends on its machine: whether
/// conversion is available (ffmpeg found, with the encoders it needs), and its bounds.
pub(super) async fn capabilities(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "convert": state.converter.capabilities() }))
}

/// What an upload with conversion asks for besides the file.
pub(super) struct Request<'a> {
    pub path: &'a AssetPath,
    pub mode: Mode,
    pub hints: UploadHints<'a>,
    pub cache: Option<CachePolicy>,
    pub filename: Option<&'a str>,
    pub whatsapp: bool,
}

/// Convert `body` as `req` asks, then store the result.
pub(super) async fn upload<S, E>(
    state: &AppState,
    body: S,
    req: Request<'_>,
) -> Result<Response, ApiError>
where
    S: Stream<Item = Result<bytes::Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let outcome = convert(state, body, req.mode, req.hints).await?;
    store(state, outcome, req).await
}

/// Convert `body` (the first half of [`upload`], for a form, whose path may come after it).
pub(super) async fn convert<S, E>(
    state: &AppState,
    body: S,
    mode: Mode,
    hints: UploadHints<'_>,
) -> Result<Outcome, ApiError>
where
    S: Stream<Item = Result<bytes::Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    // A refusal is logged with the other upload refusals (`assets::log_refused`).
    Ok(state
        .converter
        .convert(body, hints.content_type, hints.filename, mode)
        .await?)
}

/// Store what [`convert`] made, as `req` asks (its `mode` and `hints` are not used again).
pub(super) async fn store(
    state: &AppState,
    outcome: Outcome,
    req: Request<'_>,
) -> Result<Response, ApiError> {
    let converted = outcome.converted_from.is_some();
    let path = if converted {
        renamed(req.path, &outcome.media.content_type)?
    } else {
        req.path.clone()
    };
    // A form's file name follows the conversion too: `voice.wav` is sent as `voice.ogg`.
    let filename = req
        .filename
        .map(|f| renamed_name(f, &outcome.media.content_type));
    let file = tokio::fs::File::open(&outcome.file)
        .await
        .map_err(ConvertError::Io)?;
    let hints = UploadHints {
        content_type: Some(&outcome.media.content_type),
        filename: Some(path.file_name()),
    };
    let stream = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024);
    let mut staged = state
        .store
        .stage(stream, hints)
        .await
        .map_err(|e| match e {
            // Checked before: only a gate that changed its mind between two reads gets here.
            StoreError::Media(m) if converted => ConvertError::BadOutput(m.to_string()).into(),
            e => ApiError::from(e),
        })?;
    if let Some(from) = &outcome.converted_from {
        tracing::info!(
            path = %path,
            from = %from.content_type,
            from_size = from.size,
            to = %outcome.media.content_type,
            size = outcome.size,
            "upload converted"
        );
    }
    staged.converted_from = outcome.converted_from.clone();
    drop(outcome);
    let mut response = commit(
        state,
        &path,
        staged,
        req.cache,
        filename.as_deref(),
        req.whatsapp,
    )
    .await?;
    let location = format!("/api/assets/{}", url_encode(path.as_str()));
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

/// The extensions a stored type may keep; the first is the one given when it changes.
fn extensions(content_type: &str) -> &'static [&'static str] {
    match content_type {
        "video/mp4" => &["mp4"],
        "image/jpeg" => &["jpg", "jpeg"],
        "image/png" => &["png"],
        "image/webp" => &["webp"],
        t if t == media_kind::OGG_OPUS => &["ogg", "opus"],
        _ => &[],
    }
}

/// `name` with the extension of `content_type`, when its own does not name that type.
fn renamed_name(name: &str, content_type: &str) -> String {
    let allowed = extensions(content_type);
    let Some(&canonical) = allowed.first() else {
        return name.to_owned();
    };
    let (stem, ext) = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => (stem, Some(ext)),
        _ => (name, None),
    };
    match ext {
        Some(ext) if allowed.contains(&ext.to_ascii_lowercase().as_str()) => name.to_owned(),
        _ => format!("{stem}.{canonical}"),
    }
}

/// `path` with its file name's extension made `content_type`'s.
fn renamed(path: &AssetPath, content_type: &str) -> Result<AssetPath, ApiError> {
    let name = renamed_name(path.file_name(), content_type);
    let full = match path.as_str().rsplit_once('/') {
        Some((folder, _)) => format!("{folder}/{name}"),
        None => name,
    };
    AssetPath::parse(&full).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_path",
            format!("the converted asset's path {full:?} is not valid: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_extension_follows_the_type() {
        let p = |s| AssetPath::parse(s).unwrap();
        assert_eq!(
            renamed(&p("a/clip.mov"), "video/mp4").unwrap().as_str(),
            "a/clip.mp4"
        );
        assert_eq!(
            renamed(&p("voice.wav"), media_kind::OGG_OPUS)
                .unwrap()
                .as_str(),
            "voice.ogg"
        );
        assert_eq!(
            renamed(&p("v/voice.OPUS"), media_kind::OGG_OPUS)
                .unwrap()
                .as_str(),
            "v/voice.OPUS"
        );
        assert_eq!(
            renamed(&p("x/banner"), "image/jpeg").unwrap().as_str(),
            "x/banner.jpg"
        );
        assert_eq!(
            renamed(&p("logo.png"), "image/png").unwrap().as_str(),
            "logo.png"
        );
        assert_eq!(renamed_name(".hidden", "image/jpeg"), ".hidden.jpg");
        assert_eq!(renamed_name("photo.JPEG", "image/jpeg"), "photo.JPEG");
    }
}
