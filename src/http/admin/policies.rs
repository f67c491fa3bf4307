//! `/api/policies`: the cache policies of folders, as the config file and the API set them.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::extract::{ApiJson, FolderAt};
use crate::asset::AssetPath;
use crate::asset::path::url_encode;
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::policy::{CachePolicy, RuleSource};

/// `GET /api/policies`: the default and every folder rule, with where each comes from.
pub(super) async fn list_policies(State(state): State<AppState>) -> Response {
    let policies = state.store.policies().await;
    Json(json!({
        "default": {"cache_control": policies.default, "source": RuleSource::Config},
        "folders": policies.rules(),
    }))
    .into_response()
}

/// 400 `not_a_folder` when `folder` names an asset and no assets lie below it: a folder rule or
/// mark there would apply to nothing, and answering success would say it did. The message
/// names the asset's own route and the body that does what was asked (`outcome` says why, and
/// what that sets).
pub(super) async fn refuse_asset_path(
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
pub(super) fn rule_removed(
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

/// The body of `PUT /api/policies/{folder}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FolderPolicy {
    /// A policy (no `null`: that clears an asset's override, but is no folder rule).
    cache_control: String,
}

/// `PUT /api/policies/{folder}`: set the folder's rule; 201 when it had none.
pub(super) async fn put_policy(
    State(state): State<AppState>,
    FolderAt(folder): FolderAt,
    ApiJson(body): ApiJson<FolderPolicy>,
) -> Result<Response, ApiError> {
    let policy: CachePolicy = body.cache_control.parse()?;
    refuse_asset_path(
        &state,
        &folder,
        "a folder policy there would apply to nothing. Set the asset's own policy",
        json!({"cache_control": policy}),
    )
    .await?;
    let existed = state.store.set_folder_policy(&folder, Some(policy)).await?;
    tracing::info!(%folder, %policy, "folder policy set");
    let policies = state.store.policies().await;
    let rule = policies.rules().into_iter().find(|r| r.folder == folder);
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(rule)).into_response())
}

/// `DELETE /api/policies/{folder}`: remove the API's rule for the folder.
pub(super) async fn delete_policy(
    State(state): State<AppState>,
    FolderAt(folder): FolderAt,
) -> Result<Response, ApiError> {
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
