//! Public serving: `GET` and `HEAD /media/{path}` for Meta's media fetcher, CDNs and browsers.
//!
//! Every answer is direct (200, 206, 304, 412 or 416: never a redirect, which Meta's fetch proxy
//! does not follow) and carries the asset's policy as `Cache-Control`, plus `Last-Modified` and a
//! content-hash `ETag`, so Meta caches exactly as WHATSAPP_MEDIA.md §2 describes. A 304 repeats
//! the three headers of the 200 (RFC 9110 §15.4.5). The body streams from storage; only the
//! bytes a range asks for are read.

use std::borrow::Cow;
use std::ops::Range;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;

use super::AppState;
use super::conditional::{Conditions, EntityTag, Outcome, Validators, evaluate, parse_entity_tag};
use super::error::ApiError;
use crate::asset::{AssetPath, AssetRecord};
use crate::policy::CachePolicy;
use crate::signing::LinkError;
use crate::store::{BlobBody, StoreError};

/// Prefix of public asset URLs.
pub const MEDIA_PREFIX: &str = "/media/";

/// `GET`/`HEAD` only: axum answers other methods with 405 and `Allow: GET,HEAD`.
pub fn routes() -> Router<AppState> {
    Router::new().route("/media/{*path}", get(serve))
}

/// The request headers [`Conditions`] reads, in that order.
const CONDITION_HEADERS: [HeaderName; 6] = [
    header::IF_MATCH,
    header::IF_UNMODIFIED_SINCE,
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
    header::RANGE,
    header::IF_RANGE,
];

/// The values of [`CONDITION_HEADERS`], found in one pass over the header map (cheaper than a
/// hashed lookup for each when, as usual, a request has a handful of headers). Several
/// occurrences of one are joined with ", " as RFC 9110 §5.3 allows for lists. A value that is
/// not visible ASCII becomes "", which every parser treats as malformed.
fn condition_values(headers: &HeaderMap) -> [Option<Cow<'_, str>>; 6] {
    let mut values: [Option<Cow<'_, str>>; 6] = Default::default();
    for (name, value) in headers {
        let Some(i) = CONDITION_HEADERS.iter().position(|n| n == name) else {
            continue;
        };
        let value = value.to_str().unwrap_or("");
        match &mut values[i] {
            // The usual case: one occurrence, borrowed.
            None => values[i] = Some(Cow::Borrowed(value)),
            Some(joined) => {
                let joined = joined.to_mut();
                joined.push_str(", ");
                joined.push_str(value);
            }
        }
    }
    values
}

// The request whole rather than its method, URI and headers as extractors: those would be cloned
// out of it (the header map with every value), for nothing. Requests reach this only where
// [`super::media_first`] does not answer them first.
async fn serve(State(state): State<AppState>, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    answer(&state, &parts).await
}

/// The answer to a `GET` or `HEAD` of `/media/...`.
pub async fn answer(state: &AppState, parts: &Parts) -> Response {
    match respond(state, &parts.method, &parts.uri, &parts.headers).await {
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
    // A cached path is parsed already: see `Store::cached_record_of_url`.
    let parsed;
    let (path, cached) = match state.store.cached_record_of_url(raw) {
        Some(hit) => (raw, hit),
        None => {
            parsed = AssetPath::from_url(raw)?;
            let cached = state.store.cached_record(&parsed).await?;
            (parsed.as_str(), cached)
        }
    };
    let record = cached.as_ref().map(|c| &c.record);
    let policies = state.store.policies().await;
    // A signed-only asset answers nothing, not even a 304, without a valid link. Whether the
    // path is signed-only is decided before whether it exists (a missing asset follows its
    // folder), so in a signed-only folder a name without a valid link answers the same whether
    // or not an asset has it: private names cannot be probed.
    let mut link_left = None;
    if policies.is_signed(path, record.as_ref().and_then(|r| r.signed)) {
        let params = crate::signing::LinkParams::from_query(uri.query());
        let now = crate::signing::now();
        match state.signer.load().verify(path, params, now.as_secs()) {
            Ok(expires) => link_left = Some(crate::signing::seconds_left(expires, now)),
            Err(e) => {
                let code = match e {
                    LinkError::Expired => "link_expired",
                    LinkError::Missing => "signature_required",
                    _ => "bad_signature",
                };
                return Err(ApiError::new(StatusCode::FORBIDDEN, code, e.to_string())
                    .with_header(header::CACHE_CONTROL, "no-store"));
            }
        }
    }
    let cached = cached.ok_or_else(|| ApiError::not_found("no asset at this path"))?;
    let record = &cached.record;
    let policy = policies.policy_for(path, record.cache_control);
    // A cache in front must not keep a signed answer past the link's expiry: its `max-age` is
    // at most what is left of the link. The cached record keeps the policy's own headers; the
    // capped value is set on this response alone.
    let capped = link_left
        .map(|left| crate::signing::within_link(policy, left))
        .filter(|capped| *capped != policy)
        .map(|capped| value(&capped.to_string()));

    // Built once per version and policy, kept with the cached record.
    let rep = cached
        .derived
        .get_or_make(policy, || Representation::new(record, policy));
    let validators = rep.validators(record);
    let values = condition_values(headers);
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
                    .map_err(|e| blob_error(record, e))?
                {
                    BlobBody::Bytes(bytes) => Body::from(bytes),
                    BlobBody::Stream(stream) => Body::from_stream(stream),
                }
            } else {
                Body::empty()
            };
            let mut r = Response::new(body);
            *r.status_mut() = status;
            *r.headers_mut() = match range {
                None => rep.full.clone(),
                Some((start, end)) => {
                    // The full answer's headers, with the part's length and where it lies.
                    let mut h = HeaderMap::with_capacity(9);
                    for (name, v) in &rep.full {
                        if name == header::CONTENT_LENGTH {
                            h.append(header::CONTENT_LENGTH, HeaderValue::from(len));
                            h.append(
                                header::CONTENT_RANGE,
                                value(&format!("bytes {start}-{end}/{}", record.size)),
                            );
                        } else {
                            h.append(name.clone(), v.clone());
                        }
                    }
                    h
                }
            };
            r
        }
        Outcome::NotModified => {
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::NOT_MODIFIED;
            // Copied into a map of the first allocation's size rather than cloned: a clone has
            // no room left, and the `Content-Length` axum adds and the request ID would grow it.
            let h = r.headers_mut();
            for (name, v) in &rep.not_modified {
                h.append(name.clone(), v.clone());
            }
            r
        }
    };
    if let Some(capped) = capped {
        response.headers_mut().insert(header::CACHE_CONTROL, capped);
    }
    Ok(response)
}

/// The headers of a full `200` for the asset under `policy`, in the order they are sent (the
/// request ID aside): what the admin API and page show as "served with", from the same code
/// that serves it.
pub fn served_headers(record: &AssetRecord, policy: CachePolicy) -> HeaderMap {
    Representation::new(record, policy).full
}

/// The headers of the answers about one version of an asset under one policy, built once and
/// kept with the cached record ([`crate::store::Derived`]): cloning a map of them costs an
/// allocation or two and a reference count per value, where building one costs a hashed insert
/// and, for most values, formatting and an allocation.
struct Representation {
    /// The entity tag, quoted.
    etag: Box<str>,
    /// Where in `etag` its opaque part lies, and whether it is weak; `None` when `etag` is not
    /// a well-formed entity tag. Parsed once here rather than for every conditional request.
    tag: Option<(bool, Range<usize>)>,
    /// The headers of a full `200` (and of a `HEAD`), in the order they are sent.
    full: HeaderMap,
    /// The headers of a `304`: those of the `200` but the type and length (RFC 9110 §15.4.5).
    not_modified: HeaderMap,
}

impl Representation {
    fn new(record: &AssetRecord, policy: CachePolicy) -> Self {
        let etag = record.etag();
        // The headers every answer about the asset carries: the caching trio, range support and
        // `nosniff` (the type is exact, so browsers have nothing to guess).
        let common = [
            (header::CACHE_CONTROL, shared_value(policy.to_string())),
            (header::ETAG, shared_value(etag.clone())),
            (
                header::LAST_MODIFIED,
                shared_value(crate::clock::http_date(record.last_modified)),
            ),
            (header::ACCEPT_RANGES, HeaderValue::from_static("bytes")),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ];
        let mut full = HeaderMap::with_capacity(8);
        full.insert(
            header::CONTENT_TYPE,
            shared_value(record.content_type.clone()),
        );
        full.insert(header::CONTENT_LENGTH, HeaderValue::from(record.size));
        if record.kind().is_none() {
            // A type WhatsApp does not accept can only be a customer's file (an import): never
            // rendered by the public origin, whatever it holds (HTML, SVG, script).
            full.insert(
                header::CONTENT_DISPOSITION,
                shared_value(attachment(&record.filename)),
            );
            full.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("sandbox"),
            );
        }
        let mut not_modified = HeaderMap::new();
        for (name, v) in common {
            full.insert(name.clone(), v.clone());
            not_modified.insert(name, v);
        }
        let tag = parse_entity_tag(&etag).map(|tag| {
            let start = tag.opaque.as_ptr().addr() - etag.as_ptr().addr();
            (tag.weak, start..start + tag.opaque.len())
        });
        Self {
            etag: etag.into_boxed_str(),
            tag,
            full,
            not_modified,
        }
    }

    /// What the conditions of a request about `record` are evaluated against.
    fn validators<'a>(&'a self, record: &AssetRecord) -> Validators<'a> {
        Validators {
            etag: &self.etag,
            current: self.tag.clone().map(|(weak, opaque)| EntityTag {
                weak,
                opaque: &self.etag[opaque],
            }),
            last_modified: record.last_modified,
            len: record.size,
        }
    }
}

/// `attachment` with the file name: an ASCII fallback (`filename`) and the exact name in UTF-8
/// (`filename*`, RFC 6266 §4.3 with RFC 8187's encoding).
fn attachment(filename: &str) -> String {
    /// RFC 8187 `attr-char` is what stays as it is; everything else is percent-encoded.
    const NOT_ATTR_CHAR: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'!')
        .remove(b'#')
        .remove(b'$')
        .remove(b'&')
        .remove(b'+')
        .remove(b'-')
        .remove(b'.')
        .remove(b'^')
        .remove(b'_')
        .remove(b'`')
        .remove(b'|')
        .remove(b'~');
    if filename.is_empty() {
        return "attachment".to_owned();
    }
    let fallback: String = filename
        .chars()
        .map(|c| match c {
            ' ' | '!' | '#'..='[' | ']'..='~' => c,
            _ => '_',
        })
        .collect();
    let exact = percent_encoding::utf8_percent_encode(filename, NOT_ATTR_CHAR);
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{exact}")
}

/// A header value whose clones share its bytes.
fn shared_value(s: String) -> HeaderValue {
    // Stored types, dates, tags and policies are ASCII by construction.
    HeaderValue::from_maybe_shared(Bytes::from(s)).expect("header value is visible ASCII")
}

fn value(s: &str) -> HeaderValue {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn record(sha: char, last_modified: u64) -> Arc<AssetRecord> {
        Arc::new(AssetRecord {
            path: "promo/banner.jpg".into(),
            sha256: sha.to_string().repeat(64),
            size: 48_213,
            content_type: "image/jpeg".into(),
            last_modified,
            cache_control: None,
            filename: "banner.jpg".into(),
            uploaded_at: last_modified,
            deleted: false,
            whatsapp: Default::default(),
            signed: None,
            converted_from: None,
            imported: None,
        })
    }

    /// The tag parsed once with the representation is the tag parsed afresh: the same opaque
    /// part and strength, and none for a record whose hash makes no valid tag.
    #[test]
    fn a_representation_keeps_its_tag_parsed() {
        let day: CachePolicy = "max-age=86400".parse().unwrap();
        let good = record('a', 1_700_000_000);
        let rep = Representation::new(&good, day);
        let v = rep.validators(&good);
        assert_eq!(v.current, parse_entity_tag(&rep.etag));
        assert_eq!(v.current.unwrap().opaque, "a".repeat(64));
        assert!(!v.current.unwrap().weak);
        assert_eq!((v.last_modified, v.len), (1_700_000_000, 48_213));
        // A hand-edited record with a quote in its hash: not a tag, so no tag matches it.
        let bad = record('"', 1_700_000_000);
        let rep = Representation::new(&bad, day);
        assert_eq!(rep.validators(&bad).current, None);
    }

    fn header(h: &HeaderMap, name: HeaderName) -> &str {
        h.get(name).unwrap().to_str().unwrap()
    }

    /// A representation carries its version's tag and date and its policy; the 304's headers
    /// are the 200's caching headers; the admin API's list is the served 200's.
    #[test]
    fn representations_follow_the_record_and_the_policy() {
        let day: CachePolicy = "max-age=86400".parse().unwrap();
        let no_cache: CachePolicy = "no-cache".parse().unwrap();
        let v1 = record('a', 1_700_000_000);
        let first = Representation::new(&v1, day);
        assert_eq!(header(&first.full, header::CACHE_CONTROL), "max-age=86400");

        // Same record, another policy: new headers.
        let other = Representation::new(&v1, no_cache);
        assert_eq!(header(&other.full, header::CACHE_CONTROL), "no-cache");
        assert_eq!(
            header(&other.not_modified, header::CACHE_CONTROL),
            "no-cache"
        );

        // A replaced asset: its own tag and date, even at the same path.
        let v2 = record('b', 1_700_000_100);
        let replaced = Representation::new(&v2, no_cache);
        assert_eq!(&*replaced.etag, format!("\"{}\"", "b".repeat(64)));
        assert_eq!(header(&replaced.full, header::ETAG), &*replaced.etag);
        assert_eq!(
            header(&replaced.full, header::LAST_MODIFIED),
            "Tue, 14 Nov 2023 22:15:00 GMT"
        );

        // The 304 carries the 200's caching headers, without type and length.
        assert!(first.not_modified.get(header::CONTENT_TYPE).is_none());
        assert!(first.not_modified.get(header::CONTENT_LENGTH).is_none());
        for name in [header::CACHE_CONTROL, header::ETAG, header::LAST_MODIFIED] {
            assert_eq!(first.not_modified.get(&name), first.full.get(&name));
        }
        // A customer's HTML is an attachment in a sandbox, under its own name.
        let html = Arc::new(AssetRecord {
            content_type: "text/html".into(),
            filename: "Preisliste \"2026\" é.html".into(),
            ..(*v1).clone()
        });
        let rep = Representation::new(&html, day);
        assert_eq!(
            header(&rep.full, header::CONTENT_DISPOSITION),
            "attachment; filename=\"Preisliste _2026_ _.html\"; \
             filename*=UTF-8''Preisliste%20%222026%22%20%C3%A9.html"
        );
        assert_eq!(
            header(&rep.full, header::CONTENT_SECURITY_POLICY),
            "sandbox"
        );
        assert!(first.full.get(header::CONTENT_DISPOSITION).is_none());
        // And the admin API's list is the served 200's.
        assert_eq!(served_headers(&v1, day), first.full);
    }
}
