//! A router that remembers what it routes. axum cannot list a router's routes, so the routes
//! under `/api` register through [`Recorded`], which keeps each `(path template, method)` from
//! the very calls that build the router: the list cannot drift from the router, and
//! `tests/it/openapi.rs` compares it with the OpenAPI description ([`super::openapi::api_routes`]).

use axum::Router;
use axum::handler::Handler;
use axum::http::Method;
use axum::routing::MethodFilter;

use super::AppState;

/// Every `(path template, method)` a router routes.
pub type Table = Vec<(&'static str, Method)>;

/// A router that keeps, for every route it registers, the path template and the method.
///
/// Each call adds one method to a path; axum merges the method routers of one path, so the
/// router is the same as with `get(a).post(b)`.
pub struct Recorded<S = AppState> {
    router: Router<S>,
    table: Table,
}

impl<S: Clone + Send + Sync + 'static> Default for Recorded<S> {
    fn default() -> Self {
        Self {
            router: Router::new(),
            table: Vec::new(),
        }
    }
}

impl<S: Clone + Send + Sync + 'static> Recorded<S> {
    /// Route `method` requests for `path` (axum syntax, e.g. `/assets/{*path}`) to `handler`.
    /// A `GET` route also answers `HEAD`, as axum's `get` does.
    #[track_caller]
    pub fn route<H, T>(mut self, method: Method, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone()).expect("a method axum can route");
        self.router = self.router.route(path, axum::routing::on(filter, handler));
        self.table.push((path, method));
        self
    }

    /// The router, and every `(path template, method)` it routes.
    pub fn finish(self) -> (Router<S>, Table) {
        (self.router, self.table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_lists_each_route_as_registered() {
        let (_, table) = Recorded::<()>::default()
            .route(Method::GET, "/a/{*path}", || async {})
            .route(Method::PUT, "/a/{*path}", || async {})
            .route(Method::POST, "/b", || async {})
            .finish();
        assert_eq!(
            table,
            [
                ("/a/{*path}", Method::GET),
                ("/a/{*path}", Method::PUT),
                ("/b", Method::POST)
            ]
        );
    }
}
