//! The admin web page at `/admin`: one HTML file, one script and one stylesheet that drive the
//! admin API from a browser, for the people who would otherwise paste curl commands.
//!
//! Why it is served the way it is:
//!
//! - **Compiled in** (`include_str!`): the binary stays the one thing to deploy, and the page
//!   always matches the API it was built with. Plain HTML, CSS and JavaScript: no build step,
//!   no framework, nothing fetched from a CDN.
//! - **No token to load it.** The page holds no secret: it asks for the admin token, keeps it
//!   in `sessionStorage` for the tab's life and sends it as a bearer token on every API call,
//!   so the API is exactly as protected as without the page.
//! - **A strict Content-Security-Policy.** The page handles the admin token and shows names
//!   that uploaders chose, so only its own script and stylesheet may run, it talks only to its
//!   own origin, and no other site may frame it. Previews are the assets' public links, served
//!   by the public listener (usually another origin than the admin listener), so images and
//!   media may come from that one origin too, and from nowhere else.
//! - **`no-cache` with a strong ETag** (the SHA-256 of the bytes, computed once): a browser
//!   revalidates on every load, so a new release shows at once, and otherwise costs a 304.
//! - **`/` leads here** (303 to `/admin`): whoever types the admin listener's address into a
//!   browser lands on the page rather than on a JSON 404.

use std::sync::LazyLock;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{MethodRouter, get};
use sha2::{Digest, Sha256};

use super::AppState;
use super::conditional::{EtagList, parse_etag_list};

/// The page's markup.
pub const INDEX_HTML: &str = include_str!("admin_page/index.html");
/// The page's script (an ES module).
pub const APP_JS: &str = include_str!("admin_page/app.js");
/// The page's stylesheet.
pub const APP_CSS: &str = include_str!("admin_page/app.css");

/// One compiled-in file with its exact type and entity tag.
struct StaticFile {
    body: &'static str,
    content_type: HeaderValue,
    etag: HeaderValue,
}

impl StaticFile {
    fn new(body: &'static str, content_type: &'static str) -> Self {
        let etag = format!("\"{}\"", hex::encode(Sha256::digest(body.as_bytes())));
        Self {
            body,
            content_type: HeaderValue::from_static(content_type),
            etag: HeaderValue::from_str(&etag).expect("a quoted hex digest is a header value"),
        }
    }

    /// The opaque part of the entity tag, without quotes.
    fn opaque(&self) -> &str {
        let tag = self.etag.to_str().expect("built from ASCII");
        &tag[1..tag.len() - 1]
    }
}

static INDEX: LazyLock<StaticFile> =
    LazyLock::new(|| StaticFile::new(INDEX_HTML, "text/html; charset=utf-8"));
static SCRIPT: LazyLock<StaticFile> =
    LazyLock::new(|| StaticFile::new(APP_JS, "text/javascript; charset=utf-8"));
static STYLE: LazyLock<StaticFile> =
    LazyLock::new(|| StaticFile::new(APP_CSS, "text/css; charset=utf-8"));

/// `GET`/`HEAD` of the page and its two assets, and `/` redirecting to the page. `public_base`
/// is where the previews come from (see [`content_security_policy`]). Other methods get the
/// router's JSON 405.
pub fn routes(public_base: &str) -> Router<AppState> {
    let csp = HeaderValue::from_str(&content_security_policy(public_base))
        .expect("the policy is built from checked characters only");
    let serve = |file: &'static LazyLock<StaticFile>| -> MethodRouter<AppState> {
        let csp = csp.clone();
        get(move |headers: HeaderMap| {
            let csp = csp.clone();
            async move { respond(file, &csp, &headers) }
        })
    };
    Router::new()
        .route("/", get(|| async { Redirect::to("/admin") }))
        .route("/admin", serve(&INDEX))
        .route("/admin/", serve(&INDEX))
        .route("/admin/app.js", serve(&SCRIPT))
        .route("/admin/app.css", serve(&STYLE))
}

fn respond(file: &StaticFile, csp: &HeaderValue, request: &HeaderMap) -> Response {
    let common = [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (header::ETAG, file.etag.clone()),
        (header::CONTENT_SECURITY_POLICY, csp.clone()),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
    ];
    let if_none_match = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok());
    if if_none_match.is_some_and(|v| matches_etag(v, file.opaque())) {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (
        common,
        [(header::CONTENT_TYPE, file.content_type.clone())],
        file.body,
    )
        .into_response()
}

/// `If-None-Match` uses the weak comparison (RFC 9110 §13.1.2): `*`, or any listed tag with
/// the same opaque part. A malformed value counts as absent.
fn matches_etag(if_none_match: &str, opaque: &str) -> bool {
    match parse_etag_list(if_none_match) {
        Some(EtagList::Any) => true,
        Some(EtagList::Tags(tags)) => tags.iter().any(|t| t.opaque == opaque),
        None => false,
    }
}

/// The page's policy: its own script, stylesheet and API only; previews from the public
/// origin of `public_base` (`'self'` when it cannot be read as an origin).
pub fn content_security_policy(public_base: &str) -> String {
    let media = public_origin(public_base).unwrap_or_else(|| "'self'".to_owned());
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
         img-src 'self' data: blob: {media}; media-src {media}; base-uri 'none'; \
         form-action 'none'; frame-ancestors 'none'"
    )
}

/// The scheme, host and port of an `http(s)://` base URL (whatever path follows dropped),
/// in lower case; `None` for anything that is not plainly one, so nothing can end up in the
/// policy that would change its meaning (`;`, `,`, spaces, quotes).
pub fn public_origin(base: &str) -> Option<String> {
    let (scheme, rest) = base.trim().split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    // Credentials in a URL are not part of its origin.
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let plain =
        |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']');
    if host.is_empty() || host.starts_with(':') || !host.chars().all(plain) {
        return None;
    }
    Some(format!("{scheme}://{}", host.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_of_a_base_url() {
        let cases = [
            ("http://127.0.0.1:8080", Some("http://127.0.0.1:8080")),
            (
                "https://media.example.com",
                Some("https://media.example.com"),
            ),
            (
                "https://Media.Example.com:8443/cdn/wa",
                Some("https://media.example.com:8443"),
            ),
            (
                "https://user:pw@media.example.com/x",
                Some("https://media.example.com"),
            ),
            ("http://[::1]:8080/", Some("http://[::1]:8080")),
            ("HTTPS://a.example?x=1", Some("https://a.example")),
            ("ftp://media.example.com", None),
            ("media.example.com", None),
            ("https://", None),
            ("https://:8080", None),
            ("https://a.example;script-src *", None),
            ("https://a.example, *", None),
            ("https://a\"b", None),
        ];
        for (base, want) in cases {
            assert_eq!(public_origin(base).as_deref(), want, "{base}");
        }
    }

    #[test]
    fn policy_allows_previews_from_the_public_origin_only() {
        assert_eq!(
            content_security_policy("https://media.example.com/prefix"),
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
             img-src 'self' data: blob: https://media.example.com; \
             media-src https://media.example.com; base-uri 'none'; form-action 'none'; \
             frame-ancestors 'none'"
        );
        let fallback = content_security_policy("not a url");
        assert!(fallback.contains("img-src 'self' data: blob: 'self';"));
        assert!(fallback.contains("media-src 'self';"));
        assert!(HeaderValue::from_str(&fallback).is_ok());
    }

    #[test]
    fn etag_is_the_sha256_of_the_bytes() {
        for (file, body) in [(&INDEX, INDEX_HTML), (&SCRIPT, APP_JS), (&STYLE, APP_CSS)] {
            let want = format!("\"{}\"", hex::encode(Sha256::digest(body.as_bytes())));
            assert_eq!(file.etag, want.as_str());
            assert_eq!(file.opaque().len(), 64);
        }
    }

    #[test]
    fn if_none_match_uses_weak_comparison() {
        let opaque = INDEX.opaque();
        assert!(matches_etag("*", opaque));
        assert!(matches_etag(&format!("\"{opaque}\""), opaque));
        assert!(matches_etag(&format!("W/\"{opaque}\""), opaque));
        assert!(matches_etag(&format!("\"other\", \"{opaque}\""), opaque));
        assert!(!matches_etag("\"other\"", opaque));
        assert!(!matches_etag(opaque, opaque), "unquoted is malformed");
        assert!(!matches_etag("", opaque));
    }

    fn csp() -> HeaderValue {
        HeaderValue::from_str(&content_security_policy("http://127.0.0.1:8080")).unwrap()
    }

    #[test]
    fn full_answer_and_not_modified() {
        let r = respond(&INDEX, &csp(), &HeaderMap::new());
        assert_eq!(r.status(), StatusCode::OK);
        let h = r.headers();
        assert_eq!(h[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert_eq!(h[header::CACHE_CONTROL], "no-cache");
        assert_eq!(h[header::ETAG], INDEX.etag);
        assert_eq!(h[header::REFERRER_POLICY], "no-referrer");
        assert_eq!(h[header::CONTENT_SECURITY_POLICY], csp());

        let mut request = HeaderMap::new();
        request.insert(header::IF_NONE_MATCH, INDEX.etag.clone());
        let r = respond(&INDEX, &csp(), &request);
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(r.headers()[header::ETAG], INDEX.etag);
        assert_eq!(r.headers()[header::CACHE_CONTROL], "no-cache");
        assert!(!r.headers().contains_key(header::CONTENT_TYPE));

        // Another file's tag does not match.
        let r = respond(&SCRIPT, &csp(), &request);
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            r.headers()[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
        let r = respond(&STYLE, &csp(), &HeaderMap::new());
        assert_eq!(r.headers()[header::CONTENT_TYPE], "text/css; charset=utf-8");
    }

    /// The policy forbids inline script and style: the markup must not need them.
    #[test]
    fn markup_needs_nothing_the_policy_forbids() {
        let html = INDEX_HTML.to_ascii_lowercase();
        assert!(!html.contains("<style"), "inline <style>");
        assert!(!html.contains(" style="), "style attribute");
        assert!(!html.contains("javascript:"), "javascript: URL");
        for (i, _) in html.match_indices("<script") {
            let tag = &html[i..i + html[i..].find('>').unwrap()];
            assert!(
                tag.contains("src=\"/admin/app.js\""),
                "inline script: {tag}"
            );
        }
        // Event handler attributes (` onclick=` and the like).
        let bytes = html.as_bytes();
        for (i, _) in html.match_indices(" on") {
            let name: String = html[i + 1..]
                .chars()
                .take_while(|c| c.is_ascii_alphabetic())
                .collect();
            let after = bytes.get(i + 1 + name.len()).copied();
            assert!(
                !(name.len() > 2 && after == Some(b'=')),
                "event handler attribute {name}"
            );
        }
        assert!(html.contains("href=\"/admin/app.css\""));
        assert!(!APP_JS.contains("eval("), "eval needs 'unsafe-eval'");
        assert!(
            !APP_JS.contains("innerHTML"),
            "build nodes, never parse names as markup"
        );
    }
}
