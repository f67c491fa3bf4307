//! The OpenAPI 3.1 description of the admin API, served at `GET /api/openapi.json` without a
//! token (it is a description, nothing secret; Swagger UI and schemathesis fetch it), and the
//! route table it is checked against.
//!
//! The description is hand-written JSON (`openapi.json` beside this file, embedded): the
//! handlers build most bodies with `json!`, so a derive-based generator such as utoipa would
//! need a type for each body (a rewrite of the handlers) and would still describe types, not
//! what is sent. What keeps the JSON true is `tests/it/openapi.rs`, against the real server:
//!
//! - Its paths and methods equal the routes registered under `/api`, both ways. axum cannot
//!   list its routes, so the routes register through [`super::routes::Recorded`], which keeps
//!   each `(path template, method)` from the very calls that build the router; the list cannot
//!   drift from the router, and the test compares it with the description.
//! - Every described operation is routed (never the fallback 404 or a 405), and every method a
//!   path does not describe answers 405 with an `Allow` listing exactly the described ones.
//!   This also covers `/metrics`, `/healthz` and `/readyz`, which live outside `/api`.
//! - Real responses from a scenario over every operation have a documented status and
//!   content type, and their JSON validates against the documented schema.

use std::sync::OnceLock;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::routes::{Recorded, Table};

/// The description as written; `info.version` is set to this build's version when served.
const SOURCE: &str = include_str!("openapi.json");

/// Where the description is served, relative to `/api`.
pub const PATH: &str = "/openapi.json";

fn registered() -> (Router<AppState>, Table) {
    Recorded::default().route(Method::GET, PATH, serve).finish()
}

/// `GET /openapi.json`, relative to `/api`. Mounted beside the admin routes, outside the
/// token check.
pub fn routes() -> Router<AppState> {
    registered().0
}

/// Every route under `/api` with its method, templates written as OpenAPI writes them
/// (`/api/assets/{path}` for axum's `/assets/{*path}`): the admin routes and this one.
pub fn api_routes() -> Vec<(String, Method)> {
    super::admin::route_table()
        .into_iter()
        .chain(registered().1)
        .map(|(path, method)| (format!("/api{}", path.replace("{*", "{")), method))
        .collect()
}

/// The description as served: the embedded JSON with `info.version` set.
pub fn document() -> &'static Bytes {
    static DOCUMENT: OnceLock<Bytes> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let mut doc: serde_json::Value =
            serde_json::from_str(SOURCE).expect("openapi.json is valid JSON");
        doc["info"]["version"] = env!("CARGO_PKG_VERSION").into();
        Bytes::from(serde_json::to_vec(&doc).expect("a Value serializes"))
    })
}

async fn serve() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            // Revalidate: it changes with the server's version.
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        document().clone(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_parses_and_carries_this_version() {
        let doc: serde_json::Value = serde_json::from_slice(document()).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    }

    #[test]
    fn api_routes_are_written_as_openapi_templates() {
        let routes = api_routes();
        assert!(routes.contains(&("/api/assets/{path}".to_owned(), Method::PUT)));
        assert!(routes.contains(&("/api/openapi.json".to_owned(), Method::GET)));
        assert!(routes.iter().all(|(p, _)| !p.contains('*')));
    }
}
