//! `/api/access` (which folders are served only through signed links) and `/api/sign` (a
//! signed, expiring link to one asset).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::extract::{ApiJson, FolderAt};
use super::policies::{refuse_asset_path, rule_removed};
use super::view::{existing, message, view, voice_message};
use crate::asset::AssetPath;
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::policy::PolicySource;

/// Marking something signed-only without a key would make it unreachable.
pub(super) fn require_signing(state: &AppState) -> Result<(), ApiError> {
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

/// The body of `POST /api/sign`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SignRequest {
    path: String,
    /// Lifetime in seconds (default `signing.link_ttl_secs`).
    ttl_secs: Option<u64>,
}

/// `POST /api/sign`: a signed, expiring link to an asset.
pub(super) async fn sign_link(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<SignRequest>,
) -> Result<Response, ApiError> {
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
    let record = existing(&state, &path).await?;
    let policies = state.store.policies().await;
    let asset = view(&state, &policies, &record);
    let expires = crate::clock::unix_now() + ttl;
    let Some(query) = signer.sign(path.as_str(), expires) else {
        // The keys were dropped by a reload since `require_signing`.
        return Err(not_configured());
    };
    let url = format!("{}?v={}&{query}", asset.url, record.version());
    Ok(Json(json!({
        "path": path.as_str(),
        "url": url,
        "expires_at": crate::clock::http_date(expires),
        "expires": expires,
        "signed": asset.signed,
        "message": message(&record, json!({"link": url})),
        "message_voice": voice_message(&record, json!({"link": url})),
    }))
    .into_response())
}

/// `GET /api/access`: the signed-only folders, the key ids and the default link lifetime.
pub(super) async fn list_access(State(state): State<AppState>) -> Response {
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

/// The body of `PUT /api/access/{folder}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Access {
    signed: bool,
}

/// `PUT /api/access/{folder}` with `{"signed": true}` (or `false` to lift the API's mark; 409
/// for a folder the config file marks, which would stay signed-only).
pub(super) async fn put_access(
    State(state): State<AppState>,
    FolderAt(folder): FolderAt,
    ApiJson(Access { signed }): ApiJson<Access>,
) -> Result<Response, ApiError> {
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
pub(super) async fn delete_access(
    State(state): State<AppState>,
    FolderAt(folder): FolderAt,
) -> Result<Response, ApiError> {
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
