//! The HTTP surface: public serving under `/media`, the admin API under `/api`, its web page
//! under `/admin` ([`page`]), and health.
//!
//! Handlers stay thin: they turn requests into calls on [`crate::store::Store`] and the pure
//! functions of [`conditional`], and turn the results into responses. Every error leaves as
//! JSON through [`error::ApiError`].

pub mod admin;
pub mod auth;
pub mod conditional;
pub mod error;
pub mod host;
pub mod observe;
pub mod openapi;
pub mod page;
pub mod public;
pub mod routes;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::media_kind::MAX_UPLOAD_SIZE;
use crate::store::Store;
use error::ApiError;

/// What every handler shares. axum clones the state for every request, so it is one `Arc`.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    /// Share `shared` with every handler.
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The parts of [`AppState`].
pub struct Shared {
    /// The assets.
    pub store: Store,
    /// Digest of the admin token (replaced on SIGHUP).
    pub admin_token: auth::AdminToken,
    /// Scheme, host and prefix for the URLs handed out, without a trailing slash.
    pub public_base: Arc<str>,
    /// Media IDs at the Cloud API.
    pub whatsapp: crate::whatsapp::WhatsApp,
    /// Signs and checks links to signed-only assets; replaced whole on SIGHUP, so a handler
    /// that loads it once signs and checks with one set of keys.
    pub signer: arc_swap::ArcSwap<crate::signing::Signer>,
    /// Metrics and the fetch log.
    pub observer: Arc<observe::Observer>,
    /// Conversion on upload (`convert=true`).
    pub converter: Arc<crate::convert::Converter>,
}

/// An application as a listener serves it: the routes behind the `Host` check ([`host`]),
/// observed (request IDs, metrics, fetch log, request logs; see [`observe`]).
pub type App = observe::Observe<host::CheckHost<Router>>;

/// The public application: `/media`, health, and JSON errors for everything else.
pub fn public_router(state: AppState) -> App {
    finish(public::routes(), state, host::HostRule::Any)
}

/// The admin application: `/api` behind the bearer token, plus health so a load balancer can
/// check the admin listener too. An upload body that sends nothing for `body_idle_timeout` is
/// cut off (the upload fails and nothing is stored), so a stalled client cannot hold it open.
///
/// `GET /metrics` needs no token here: the admin listener is loopback or internal, and
/// Prometheus scrapers rarely carry one. Nor does the web page at `/admin`, on both admin
/// routers: it is static and signs in to the API with the token itself. Every route answers only
/// to the names in `hosts` (see [`host`]), so a web page cannot reach them through DNS
/// rebinding.
pub fn admin_router(
    state: AppState,
    body_idle_timeout: Duration,
    hosts: Arc<host::AllowedHosts>,
) -> App {
    let api = Router::new()
        .route("/metrics", get(metrics))
        .merge(page::routes(&state.public_base))
        .nest("/api", admin_api(&state, body_idle_timeout));
    finish(api, state, host::HostRule::Only(hosts))
}

/// Both on one listener (`server.admin_bind = "public"`). `/metrics` is then on the public
/// listener, so it needs the admin token like the rest of the admin API. With `hosts`
/// (`admin.allowed_hosts` is set), every route but `/media` and health answers only to those
/// names; without, any name (see [`host`] for why).
pub fn combined_router(
    state: AppState,
    body_idle_timeout: Duration,
    hosts: Option<Arc<host::AllowedHosts>>,
) -> App {
    let both = public::routes()
        .merge(page::routes(&state.public_base))
        .route(
            "/metrics",
            get(metrics).route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                auth::require_admin,
            )),
        )
        .nest("/api", admin_api(&state, body_idle_timeout));
    let rule = hosts.map_or(host::HostRule::Any, host::HostRule::AdminRoutes);
    finish(both, state, rule)
}

/// The metrics in the OpenMetrics text format, which Prometheus scrapes.
async fn metrics(State(state): State<AppState>) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        state.observer.metrics.encode(),
    )
        .into_response()
}

/// Health checks, JSON for unknown routes and unrouted methods, the state, the `Host` check by
/// `hosts`, and, around it all, so that it sees every answer as sent, [`observe::Observe`].
fn finish(routes: Router<AppState>, state: AppState, hosts: host::HostRule) -> App {
    let observer = Arc::clone(&state.observer);
    let router = routes
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(|| async { ApiError::not_found("no such route") })
        .layer(axum::middleware::map_response(json_method_not_allowed))
        // Every answer, errors included: the types are exact, browsers have nothing to guess.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .with_state(state);
    observe::Observe::new(host::CheckHost::new(router, hosts), observer)
}

fn admin_api(state: &AppState, body_idle_timeout: Duration) -> Router<AppState> {
    // Each route's body size is decided where the route is (`admin::routes`), inside this
    // token check: a request without the token learns nothing of the routes' limits.
    admin::routes()
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_admin,
        ))
        // The API's description needs no token: merged after the token check is layered.
        .merge(openapi::routes())
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            body_idle_timeout,
        ))
}

/// Largest upload body: the largest media plus multipart framing.
pub const MAX_UPLOAD_BODY: u64 = MAX_UPLOAD_SIZE + 1024 * 1024;

async fn healthz() -> impl IntoResponse {
    axum::Json(json!({"status": "ok"}))
}

async fn readyz(State(state): State<AppState>) -> Response {
    match state.store.check_ready().await {
        Ok(()) => axum::Json(json!({"status": "ready"})).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(json!({"status": "unavailable", "reason": "storage does not answer"})),
            )
                .into_response()
        }
    }
}

/// axum answers a known path with an unrouted method by an empty 405 (and adds `Allow` after
/// this layer runs); give it the JSON body every other error has.
async fn json_method_not_allowed(response: Response) -> Response {
    if response.status() != StatusCode::METHOD_NOT_ALLOWED
        || response.headers().contains_key(header::CONTENT_TYPE)
    {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    let json = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this method is not allowed here; the Allow header lists the ones that are",
    )
    .into_response();
    let (json_parts, body) = json.into_parts();
    for (name, value) in json_parts.headers {
        if let Some(name) = name {
            parts.headers.insert(name, value);
        }
    }
    Response::from_parts(parts, body)
}
