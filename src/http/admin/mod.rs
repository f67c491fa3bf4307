//! The admin API (bearer token, JSON in and out): upload and manage assets, set folder policies,
//! and get back URLs ready to paste into a message's `link` field.
//!
//! Every answer that shows an asset shows its effective policy and where that came from, so an
//! operator can see why Meta caches an asset the way it does ([`view`]).
//!
//! One file per resource: [`assets`] (with the upload [`form`]), [`policies`], [`access`]
//! (signed links), [`whatsapp`] (media IDs), [`import`] (incoming media). [`extract`] takes paths, queries and JSON bodies
//! from requests with the API's own errors. Here: the routes, and how large a body each takes.

mod access;
mod assets;
mod commit;
mod convert;
mod extract;
mod form;
mod import;
mod policies;
mod view;
mod whatsapp;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::handler::Handler;
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::ApiError;
use super::routes::{Recorded, Table};
pub use view::AssetView;

/// Largest JSON body accepted (policies, overrides, media-ID and signing requests are tiny).
pub const MAX_JSON_BODY: usize = 64 * 1024;

/// Routes relative to `/api`.
pub fn routes() -> Router<AppState> {
    registered().0
}

/// Every `(path template, method)` that [`routes`] routes, taken from the same calls that
/// build it: what `tests/it/openapi.rs` compares with the OpenAPI description.
pub fn route_table() -> Table {
    registered().1
}

/// Every route, with the body it takes.
fn registered() -> (Router<AppState>, Table) {
    use BodySize::{Form, Json, Media};
    Recorded::default()
        .route(Method::GET, "/assets", sized(Json, assets::list_assets))
        .route(Method::POST, "/assets", sized(Form, assets::upload_form))
        .route(
            Method::GET,
            "/assets/{*path}",
            sized(Json, assets::get_asset),
        )
        .route(
            Method::PUT,
            "/assets/{*path}",
            sized(Media, assets::put_asset),
        )
        .route(
            Method::PATCH,
            "/assets/{*path}",
            sized(Json, assets::patch_asset),
        )
        .route(
            Method::DELETE,
            "/assets/{*path}",
            sized(Json, assets::delete_asset),
        )
        .route(
            Method::GET,
            "/fetches/{*path}",
            sized(Json, assets::get_fetches),
        )
        .route(
            Method::GET,
            "/policies",
            sized(Json, policies::list_policies),
        )
        .route(
            Method::PUT,
            "/policies/{*folder}",
            sized(Json, policies::put_policy),
        )
        .route(
            Method::DELETE,
            "/policies/{*folder}",
            sized(Json, policies::delete_policy),
        )
        .route(
            Method::GET,
            "/capabilities",
            sized(Json, convert::capabilities),
        )
        .route(Method::GET, "/access", sized(Json, access::list_access))
        .route(
            Method::PUT,
            "/access/{*folder}",
            sized(Json, access::put_access),
        )
        .route(
            Method::DELETE,
            "/access/{*folder}",
            sized(Json, access::delete_access),
        )
        .route(Method::POST, "/sign", sized(Json, access::sign_link))
        .route(
            Method::GET,
            "/whatsapp",
            sized(Json, whatsapp::whatsapp_status),
        )
        .route(
            Method::POST,
            "/whatsapp/media",
            sized(Json, whatsapp::whatsapp_media),
        )
        .route(
            Method::POST,
            "/whatsapp/refresh",
            sized(Json, whatsapp::whatsapp_refresh),
        )
        .route(
            Method::POST,
            "/whatsapp/import",
            sized(Json, import::whatsapp_import),
        )
        .finish()
}

/// How large a body a route takes; [`registered`] says it once for every route.
#[derive(Clone, Copy, Debug)]
enum BodySize {
    /// A small JSON body, or none: at most [`MAX_JSON_BODY`] bytes.
    Json,
    /// A form upload: at most [`super::MAX_UPLOAD_BODY`] bytes, the largest media plus
    /// multipart framing (the store then holds the file to its own kind's limit).
    Form,
    /// A raw upload, streamed: the handler holds a `Content-Length` to the declared kind's own
    /// limit before reading, and the store limits what arrives.
    Media,
}

impl BodySize {
    /// The most bytes the route reads, if it says so here.
    fn max(self) -> Option<u64> {
        match self {
            Self::Json => Some(MAX_JSON_BODY as u64),
            Self::Form => Some(super::MAX_UPLOAD_BODY),
            Self::Media => None,
        }
    }
}

/// `handler`, taking bodies of `size`: a declared `Content-Length` over it is answered 413
/// before the body is read, and the extractors that read a body (JSON, forms) stop at it.
/// (Inside the token check, which the router adds around every route: a request without the
/// token learns nothing of the routes' limits.)
fn sized<H, T>(size: BodySize, handler: H) -> impl Handler<T, AppState>
where
    H: Handler<T, AppState>,
    T: 'static,
{
    let read_limit = match size.max() {
        Some(max) => DefaultBodyLimit::max(usize::try_from(max).unwrap_or(usize::MAX)),
        None => DefaultBodyLimit::disable(),
    };
    handler.layer(
        tower::ServiceBuilder::new()
            .layer(axum::middleware::from_fn_with_state(
                size,
                refuse_declared_oversize,
            ))
            .layer(read_limit),
    )
}

/// Answer 413 before reading a body whose declared length is over what the route accepts.
async fn refuse_declared_oversize(
    State(size): State<BodySize>,
    req: Request,
    next: Next,
) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if let (Some(length), Some(limit)) = (declared, size.max())
        && length > limit
    {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the body is {length} bytes; this route accepts at most {limit}"),
        )
        .into_response();
    }
    next.run(req).await
}
