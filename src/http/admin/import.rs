//! `POST /api/whatsapp/import`: keep media a customer sent, by media ID or from a webhook
//! payload as Meta sent it (the domain is [`crate::whatsapp`]'s import).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::extract::ApiJson;
use super::view::{error_json, view};
use crate::asset::path::parse_folder;
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::whatsapp::webhook::{self, IncomingMedia};
use crate::whatsapp::{ImportOutcome, ImportRequest};

/// The body of a single import.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportBody {
    media_id: String,
    phone_number_id: Option<String>,
    folder: Option<String>,
    filename: Option<String>,
    #[serde(default = "signed_by_default")]
    signed: bool,
}

fn signed_by_default() -> bool {
    true
}

/// `POST /api/whatsapp/import`: one media ID (201 with the new asset, 200 with the one imported
/// before), or every media message of a webhook payload (200 with one result per message).
pub(super) async fn whatsapp_import(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    if webhook::is_webhook(&body) {
        return import_webhook(&state, &body).await;
    }
    let body: ImportBody = serde_json::from_value(body).map_err(|e| {
        ApiError::bad_request(
            "invalid_json",
            format!(
                "{e}: send {{\"media_id\": \"...\"}} (with optional phone_number_id, folder, \
                 filename, signed), or a webhook payload as Meta sent it"
            ),
        )
    })?;
    let folder = body.folder.as_deref().map(parse_folder).transpose()?;
    let outcome = state
        .whatsapp
        .import(
            &state.store,
            ImportRequest {
                media_id: body.media_id,
                phone_number_id: body.phone_number_id,
                folder,
                filename: body.filename,
                signed: body.signed,
                message_id: None,
                from: None,
            },
        )
        .await
        .map_err(with_fix)?;
    let status = if outcome.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(asset_json(&state, &outcome).await)).into_response())
}

async fn asset_json(state: &AppState, outcome: &ImportOutcome) -> Value {
    let policies = state.store.policies().await;
    let mut asset = json!(view(state, &policies, &outcome.record));
    asset["created"] = json!(outcome.created);
    asset
}

/// Every media message of a webhook payload, one after the other (the lookups share Meta's
/// budget, and a batch is a handful of messages).
async fn import_webhook(state: &AppState, body: &Value) -> Result<Response, ApiError> {
    let payload = webhook::parse(body).map_err(|e| ApiError::bad_request("invalid_webhook", e))?;
    let mut results = Vec::with_capacity(payload.media.len());
    let (mut imported, mut failed) = (0, 0);
    for media in payload.media {
        let result = import_one(state, &media).await;
        let mut entry = json!({
            "message_id": media.message_id,
            "type": media.kind,
            "media_id": media.media_id,
        });
        match result {
            Ok(outcome) => {
                imported += 1;
                entry["status"] = json!(if outcome.created { 201 } else { 200 });
                entry["asset"] = asset_json(state, &outcome).await;
            }
            Err(e) => {
                failed += 1;
                entry["status"] = json!(e.status.as_u16());
                entry["error"] = error_json(e);
            }
        }
        results.push(entry);
    }
    Ok(Json(json!({
        "imported": imported,
        "failed": failed,
        "skipped": payload.skipped,
        "results": results,
    }))
    .into_response())
}

async fn import_one(state: &AppState, media: &IncomingMedia) -> Result<ImportOutcome, ApiError> {
    let media_id = media.media_id.clone().ok_or_else(|| {
        ApiError::bad_request(
            "invalid_webhook",
            format!("the {} message has no media id", media.kind),
        )
    })?;
    state
        .whatsapp
        .import(
            &state.store,
            ImportRequest {
                media_id,
                phone_number_id: media.phone_number_id.clone(),
                folder: None,
                filename: media.filename.clone(),
                signed: true,
                message_id: Some(media.message_id.clone()).filter(|m| !m.is_empty()),
                from: media.from.clone(),
            },
        )
        .await
        .map_err(with_fix)
}

/// An import's error, with what to do where the code alone does not say it.
fn with_fix(e: crate::whatsapp::WaError) -> ApiError {
    let error = ApiError::from(e);
    let fix = match error.code {
        "whatsapp_invalid_parameter" => {
            "check the media ID and phone_number_id: Meta keeps media customers send for 7 days, \
             and a media ID is known only to the number it came in on"
        }
        "whatsapp_media_download_error" => {
            "Meta could not fetch the media from the customer's phone: ask them to send it again"
        }
        "whatsapp_download_corrupt" | "whatsapp_download_expired" => {
            "import the media ID again; nothing was stored"
        }
        _ => return error,
    };
    error.with("fix", json!(fix))
}
