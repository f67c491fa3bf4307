//! `/api/whatsapp`: media IDs at the Cloud API for assets, one at a time or a prefix at once.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::assets::list_prefix;
use super::extract::ApiJson;
use super::view::{media_outcome, message, view, voice_message};
use crate::asset::AssetPath;
use crate::http::AppState;
use crate::http::error::ApiError;

/// `GET /api/whatsapp`: whether media IDs can be had here and, if not, what to set, so a
/// client (the admin page) can say so before anyone clicks, instead of after a 501.
pub(super) async fn whatsapp_status(State(state): State<AppState>) -> Response {
    let wa = &state.whatsapp;
    let missing = wa
        .missing()
        .map(|what| format!("WhatsApp uploads are not configured: {what}"));
    Json(json!({
        "configured": missing.is_none(),
        "missing": missing,
        "phone_number_ids": wa.phones(),
        "default_phone_number_id": wa.default_phone(),
    }))
    .into_response()
}

/// The body of `POST /api/whatsapp/media`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MediaRequest {
    path: String,
    phone_number_id: Option<String>,
    #[serde(default)]
    force: bool,
}

/// `POST /api/whatsapp/media`: a media ID for an asset, reused while valid.
pub(super) async fn whatsapp_media(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<MediaRequest>,
) -> Result<Response, ApiError> {
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
    let by_id = || json!({"id": outcome.media.media_id});
    let mut body = media_outcome(&outcome);
    body["path"] = json!(path.as_str());
    body["message"] = message(&outcome.record, by_id());
    body["message_voice"] = json!(voice_message(&outcome.record, by_id()));
    body["asset"] = json!(asset);
    Ok(Json(body).into_response())
}

/// The body of `POST /api/whatsapp/refresh`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RefreshRequest {
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
pub(super) async fn whatsapp_refresh(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> Result<Response, ApiError> {
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
