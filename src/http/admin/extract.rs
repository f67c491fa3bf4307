//! What the admin handlers take from a request, each refused with the API's own error JSON:
//! the asset path or folder a route names ([`AssetAt`], [`FolderAt`]), the query
//! ([`ApiQuery`]) and the JSON body ([`ApiJson`]). A handler lists them in that order, so a
//! bad path is reported before a bad query, and both before a bad body.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use super::MAX_JSON_BODY;
use crate::asset::AssetPath;
use crate::asset::path::folder_from_url;
use crate::http::error::ApiError;

/// A JSON body of type `T`: 415 `unsupported_media_type` when it is not declared JSON, 413
/// `too_large` over [`MAX_JSON_BODY`] (when no `Content-Length` said so earlier), 400
/// `invalid_json` when it is not JSON or not a `T`.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(e) => Err(json_rejection(e)),
        }
    }
}

/// Why a JSON body was refused: 415 when it is not declared JSON, 413 over the limit, else 400.
fn json_rejection(e: JsonRejection) -> ApiError {
    match e {
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as JSON, with `Content-Type: application/json`",
        ),
        e if e.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("a JSON body may be at most {MAX_JSON_BODY} bytes"),
        ),
        e => ApiError::bad_request("invalid_json", e.body_text()),
    }
}

/// For an `Option<Option<T>>` field with `#[serde(default, deserialize_with = "present")]`:
/// absent is `None`, `null` is `Some(None)`, a value is `Some(Some(value))`. (Without it,
/// serde reads `null` as absent.)
pub fn present<'de, T, D>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// The query as a `T`: 400 `invalid_query` when it is not one (an unknown parameter, a
/// number that is not one).
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(Self(value)),
            Err(e) => Err(ApiError::bad_request("invalid_query", e.body_text())),
        }
    }
}

/// What follows a route's first segment, undecoded: `promo/a.jpg` of `/assets/promo/a.jpg`.
/// The router is nested under `/api`, so the URI here starts after it.
fn after_first_segment(parts: &Parts) -> &str {
    let path = parts.uri.path().strip_prefix('/').unwrap_or_default();
    path.split_once('/').map_or("", |(_, rest)| rest)
}

/// The asset path a route names after its first segment (`/assets/{*path}`,
/// `/fetches/{*path}`), decoded once and validated: 400 `invalid_path` otherwise.
#[derive(Debug)]
pub struct AssetAt(pub AssetPath);

impl<S: Send + Sync> FromRequestParts<S> for AssetAt {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Ok(Self(AssetPath::from_url(after_first_segment(parts))?))
    }
}

/// The folder a route names after its first segment (`/policies/{*folder}`,
/// `/access/{*folder}`), decoded once and held to the folder rules (those of the form's
/// `folder` field; a name ending in `.json` is refused): 400 `invalid_path` otherwise.
#[derive(Debug)]
pub struct FolderAt(pub String);

impl<S: Send + Sync> FromRequestParts<S> for FolderAt {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Ok(Self(folder_from_url(after_first_segment(parts))?))
    }
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::{Body, to_bytes};
    use axum::extract::DefaultBodyLimit;
    use axum::http::{Request, header};
    use axum::response::{IntoResponse, Response};
    use axum::routing::{get, post};
    use serde_json::{Value, json};
    use tower::ServiceExt;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body1 {
        name: String,
        #[serde(default, deserialize_with = "present")]
        note: Option<Option<String>>,
    }

    fn app() -> Router {
        async fn echo(ApiJson(b): ApiJson<Body1>) -> Response {
            axum::Json(json!({"name": b.name, "note": format!("{:?}", b.note)})).into_response()
        }
        async fn query(ApiQuery(q): ApiQuery<std::collections::BTreeMap<String, u32>>) -> String {
            format!("{q:?}")
        }
        async fn asset(AssetAt(p): AssetAt, ApiJson(b): ApiJson<Body1>) -> String {
            format!("{} {}", p.as_str(), b.name)
        }
        async fn folder(FolderAt(f): FolderAt) -> String {
            f
        }
        Router::new()
            .route("/echo", post(echo))
            .route("/query", get(query))
            .route("/assets/{*path}", post(asset))
            .route("/policies/{*folder}", get(folder))
            .layer(DefaultBodyLimit::max(MAX_JSON_BODY))
    }

    async fn send(req: Request<Body>) -> (StatusCode, Value) {
        let response = app().oneshot(req).await.unwrap();
        let status = response.status();
        let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        (status, body)
    }

    fn post_json(uri: &str, ctype: Option<&str>, body: impl Into<Body>) -> Request<Body> {
        let mut req = Request::post(uri);
        if let Some(t) = ctype {
            req = req.header(header::CONTENT_TYPE, t);
        }
        req.body(body.into()).unwrap()
    }

    fn code(body: &Value) -> &str {
        body["error"]["code"].as_str().unwrap_or_default()
    }

    #[tokio::test]
    async fn a_json_body_of_the_type_is_taken() {
        let (status, body) = send(post_json(
            "/echo",
            Some("application/json"),
            r#"{"name":"a"}"#,
        ))
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, json!({"name": "a", "note": "None"}));
        // A structured suffix is JSON too.
        let req = post_json(
            "/echo",
            Some("application/merge-patch+json"),
            r#"{"name":"a"}"#,
        );
        assert_eq!(send(req).await.0, StatusCode::OK);
    }

    #[tokio::test]
    async fn absent_null_and_a_value_are_three_answers() {
        for (json, note) in [
            (r#"{"name":"a"}"#, "None"),
            (r#"{"name":"a","note":null}"#, "Some(None)"),
            (r#"{"name":"a","note":"x"}"#, "Some(Some(\"x\"))"),
        ] {
            let (status, body) = send(post_json("/echo", Some("application/json"), json)).await;
            assert_eq!(status, StatusCode::OK, "{json}: {body}");
            assert_eq!(body["note"], note, "{json}");
        }
        // `null` is not a string: the helper reads `Option<T>`, nothing looser.
        let bad = post_json(
            "/echo",
            Some("application/json"),
            r#"{"name":"a","note":5}"#,
        );
        let (status, body) = send(bad).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::BAD_REQUEST, "invalid_json")
        );
    }

    #[tokio::test]
    async fn a_body_not_declared_json_is_415() {
        for ctype in [None, Some("text/plain"), Some("application/jsonx")] {
            let (status, body) = send(post_json("/echo", ctype, r#"{"name":"a"}"#)).await;
            assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ctype:?}");
            assert_eq!(code(&body), "unsupported_media_type", "{ctype:?}");
            assert!(
                body["error"]["message"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty())
            );
        }
    }

    #[tokio::test]
    async fn a_body_that_is_not_json_or_not_the_type_is_400_invalid_json() {
        for bad in [
            "",
            "name=a",
            r#"{"name":"a"} x"#,
            "null",
            "[]",
            r#"{"name":5}"#,
            "{}",
            r#"{"name":"a","x":1}"#,
        ] {
            let (status, body) = send(post_json("/echo", Some("application/json"), bad)).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{bad:?}: {body}");
            assert_eq!(code(&body), "invalid_json", "{bad:?}");
            assert!(
                body["error"]["message"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty())
            );
        }
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_413_too_large() {
        let big = format!(r#"{{"name":"{}"}}"#, "a".repeat(MAX_JSON_BODY));
        // Streamed, so that no Content-Length tells: the extractor finds out reading.
        let chunks = futures::stream::iter([Ok::<_, std::io::Error>(big)]);
        let req = post_json("/echo", Some("application/json"), Body::from_stream(chunks));
        let (status, body) = send(req).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::PAYLOAD_TOO_LARGE, "too_large")
        );
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(&MAX_JSON_BODY.to_string()), "{message}");
    }

    #[tokio::test]
    async fn a_bad_query_is_400_invalid_query() {
        let get = |uri: &str| Request::get(uri).body(Body::empty()).unwrap();
        let (status, body) = send(get("/query?a=1")).await;
        assert_eq!((status, body), (StatusCode::OK, json!({"a": 1})));
        let (status, body) = send(get("/query?a=x")).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::BAD_REQUEST, "invalid_query")
        );
    }

    #[tokio::test]
    async fn the_path_is_checked_before_the_body() {
        let ok = post_json(
            "/assets/promo/a%20b.jpg",
            Some("application/json"),
            r#"{"name":"n"}"#,
        );
        assert_eq!(send(ok).await, (StatusCode::OK, json!("promo/a b.jpg n")));
        // A bad path and a body of no declared type: the path is what is reported.
        let (status, body) = send(post_json("/assets/promo/../x.jpg", None, "{}")).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::BAD_REQUEST, "invalid_path")
        );
    }

    #[tokio::test]
    async fn a_folder_is_held_to_the_folder_rules() {
        let get = |uri: &str| Request::get(uri).body(Body::empty()).unwrap();
        assert_eq!(
            send(get("/policies/promo/2024")).await,
            (StatusCode::OK, json!("promo/2024"))
        );
        let (status, body) = send(get("/policies/promo.json")).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::BAD_REQUEST, "invalid_path")
        );
    }
}
