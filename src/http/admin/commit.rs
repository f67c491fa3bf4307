//! Committing a staged upload, converted or not: the one place an upload becomes the asset
//! (and, when asked, gets its media ID), shared by the raw and form uploads and by conversion.

use std::sync::Arc;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::view::{error_json, media_outcome, view};
use crate::asset::AssetPath;
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::policy::CachePolicy;
use crate::store::Staged;

/// Make the staged upload the asset, then, when asked, get it a media ID. The asset is stored
/// whatever the Media API says: its answer (`whatsapp_upload`) or error (`whatsapp_error`)
/// rides along with the record.
pub(super) async fn commit(
    state: &AppState,
    path: &AssetPath,
    staged: Staged,
    cache: Option<CachePolicy>,
    filename: Option<&str>,
    whatsapp: bool,
) -> Result<Response, ApiError> {
    let done = state.store.commit(path, staged, cache, filename).await?;
    state.observer.metrics.upload(done.record.size);
    // A converted upload's line names what it was converted from.
    let converted_from = done
        .record
        .converted_from
        .as_ref()
        .map(|c| c.content_type.as_str());
    if done.unchanged {
        tracing::info!(path = %path, sha256 = %done.record.sha256, converted_from, "asset uploaded again unchanged; its version stays");
    } else {
        tracing::info!(path = %path, sha256 = %done.record.sha256, size = done.record.size, created = done.created, converted_from, "asset stored");
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
