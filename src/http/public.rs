//! Public serving: `GET` and `HEAD /media/{path}` for Meta's media fetcher, CDNs and browsers.
//!
//! Every answer is direct (200, 206, 304, 412 or 416: never a redirect, which Meta's fetch proxy
//! does not follow) and carries the asset's policy as `Cache-Control`, plus `Last-Modified` and a
//! content-hash `ETag`, so Meta caches exactly as WHATSAPP_MEDIA.md §2 describes. A 304 repeats
//! the three headers of the 200 (RFC 9110 §15.4.5). The body streams from storage; only the
//! bytes a range asks for are read.

use std::borrow::Cow;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::AppState;
use super::conditional::{Conditions, Outcome, Validators, evaluate};
use super::error::ApiError;
use crate::policy::CachePolicy;
use crate::signing::LinkError;
use crate::store::{AssetPath, AssetRecord, BlobBody, StoreError};

/// Prefix of public asset URLs.
pub const MEDIA_PREFIX: &str = "/media/";

/// `GET`/`HEAD` only: axum answers other methods with 405 and `Allow: GET,HEAD`.
pub fn routes() -> Router<AppState> {
    Router::new().route("/media/{*path}", get(serve))
}

/// A header's value; several occurrences joined with ", " as RFC 9110 §5.3 allows for lists.
/// A value that is not visible ASCII becomes "", which every parser treats as malformed.
fn header_value(headers: &HeaderMap, name: HeaderName) -> Option<Cow<'_, str>> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?.to_str().unwrap_or("");
    let Some(second) = values.next() else {
        // The usual case: one occurrence, borrowed.
        return Some(Cow::Borrowed(first));
    };
    let mut out = first.to_owned();
    for more in std::iter::once(second).chain(values) {
        out.push_str(", ");
        out.push_str(more.to_str().unwrap_or(""));
    }
    Some(Cow::Owned(out))
}

async fn serve(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    match respond(&state, &method, &uri, &headers).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn respond(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let raw = uri.path().strip_prefix(MEDIA_PREFIX).unwrap_or_default();
    let path = AssetPath::from_url(raw)?;
    let record = state
        .store
        .record(&path)
        .await?
        .ok_or_else(|| ApiError::not_found("no asset at this path"))?;
    let policies = state.store.policies().await;
    let (policy, _) = policies.resolve(path.as_str(), record.cache_control);
    // A signed-only asset answers nothing, not even a 304, without a valid link.
    if policies.signed_for(path.as_str(), record.signed).0 {
        let params = crate::signing::LinkParams::from_query(uri.query());
        if let Err(e) = state
            .signer
            .verify(path.as_str(), params, crate::store::unix_now())
        {
            let code = match e {
                LinkError::Expired => "link_expired",
                LinkError::Missing => "signature_required",
                _ => "bad_signature",
            };
            return Err(ApiError::new(StatusCode::FORBIDDEN, code, e.to_string())
                .with_header(header::CACHE_CONTROL, "no-store"));
        }
    }

    let etag = record.etag();
    let validators = Validators {
        etag: &etag,
        last_modified: record.last_modified,
        len: record.size,
    };
    let values = [
        header::IF_MATCH,
        header::IF_UNMODIFIED_SINCE,
        header::IF_NONE_MATCH,
        header::IF_MODIFIED_SINCE,
        header::RANGE,
        header::IF_RANGE,
    ]
    .map(|name| header_value(headers, name));
    let conditions = Conditions {
        if_match: values[0].as_deref(),
        if_unmodified_since: values[1].as_deref(),
        if_none_match: values[2].as_deref(),
        if_modified_since: values[3].as_deref(),
        range: values[4].as_deref(),
        if_range: values[5].as_deref(),
    };
    let is_get = method == Method::GET;
    let outcome = evaluate(&conditions, &validators, is_get);

    let mut response = match outcome {
        Outcome::PreconditionFailed => {
            return Err(ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                "precondition_failed",
                "the asset does not satisfy If-Match or If-Unmodified-Since",
            ));
        }
        Outcome::Unsatisfiable => {
            // No caching headers: a 416 must not be stored in place of the asset.
            let mut r = ApiError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range_not_satisfiable",
                format!(
                    "the range starts past the end of the {}-byte asset",
                    record.size
                ),
            )
            .into_response();
            r.headers_mut().insert(
                header::CONTENT_RANGE,
                value(&format!("bytes */{}", record.size)),
            );
            return Ok(r);
        }
        Outcome::Full | Outcome::Partial { .. } => {
            let (status, range) = match outcome {
                Outcome::Partial { start, end } => {
                    (StatusCode::PARTIAL_CONTENT, Some((start, end)))
                }
                _ => (StatusCode::OK, None),
            };
            let len = range.map_or(record.size, |(s, e)| e - s + 1);
            let body = if is_get {
                match state
                    .store
                    .blob_body(&record.sha256, record.size, range.map(|(s, e)| s..e + 1))
                    .await
                    .map_err(|e| blob_error(&record, e))?
                {
                    BlobBody::Bytes(bytes) => Body::from(bytes),
                    BlobBody::Stream(stream) => Body::from_stream(stream),
                }
            } else {
                Body::empty()
            };
            let mut r = Response::new(body);
            *r.status_mut() = status;
            // Room for the eight headers of a 200 with its request ID, without growing. (A 304's
            // six fit in the map's first allocation; asking for more there costs more.)
            *r.headers_mut() = HeaderMap::with_capacity(8);
            let h = r.headers_mut();
            h.insert(header::CONTENT_TYPE, value(&record.content_type));
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
            if let Some((start, end)) = range {
                h.insert(
                    header::CONTENT_RANGE,
                    value(&format!("bytes {start}-{end}/{}", record.size)),
                );
            }
            r
        }
        Outcome::NotModified => {
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::NOT_MODIFIED;
            r
        }
    };
    add_representation_headers(response.headers_mut(), &record, policy, &etag);
    Ok(response)
}

/// The headers of a full `200` for the asset under `policy`, in the order they are sent (the
/// request ID aside): what the admin API and page show as "served with", from the same code
/// that serves it.
pub fn served_headers(record: &AssetRecord, policy: CachePolicy) -> HeaderMap {
    let mut h = HeaderMap::with_capacity(8);
    h.insert(header::CONTENT_TYPE, value(&record.content_type));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(record.size));
    add_representation_headers(&mut h, record, policy, &record.etag());
    h
}

/// The headers every answer about the asset carries: the caching trio, range support and
/// `nosniff` (the type is exact, so browsers have nothing to guess).
fn add_representation_headers(
    h: &mut HeaderMap,
    record: &AssetRecord,
    policy: CachePolicy,
    etag: &str,
) {
    h.insert(header::CACHE_CONTROL, value(&policy.to_string()));
    h.insert(header::ETAG, value(etag));
    h.insert(
        header::LAST_MODIFIED,
        value(&crate::http_date(record.last_modified)),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}

fn value(s: &str) -> HeaderValue {
    // Stored types, dates, tags and policies are ASCII by construction.
    HeaderValue::from_str(s).expect("header value is visible ASCII")
}

fn blob_error(record: &AssetRecord, e: StoreError) -> ApiError {
    match e {
        StoreError::Backend(object_store::Error::NotFound { .. }) => {
            tracing::error!(path = %record.path, sha256 = %record.sha256, "blob missing for a live record");
            ApiError::internal()
        }
        other => other.into(),
    }
}
