//! The admin web page at `/admin`: one HTML file, one stylesheet and a script in a handful of
//! ES modules, which drive the admin API from a browser, for the people who would otherwise
//! paste curl commands.
//!
//! Why it is served the way it is:
//!
//! - **Compiled in** (`include_str!`): the binary stays the one thing to deploy, and the page
//!   always matches the API it was built with. Plain HTML, CSS and JavaScript: no build step,
//!   no framework, nothing fetched from a CDN.
//! - **A fixed table of files** ([`FILES`]): each is served at `/admin/NAME` with its exact
//!   type and nothing else is (an unknown name stays the router's JSON 404), and the unit tests
//!   walk the same table, so a file added to the page is checked like the others.
//! - **The script as ES modules.** `index.html` loads only the entry module `app.js`, which
//!   imports the others by relative path (`./folder.js`), each module one concern short enough
//!   to read whole. No bundler is needed for that: browsers load modules natively, and
//!   `script-src 'self'` covers them, since they come from the page's own origin.
//! - **No token to load it.** The page holds no secret: it asks for the admin token, keeps it
//!   in `sessionStorage` for the tab's life and sends it as a bearer token on every API call,
//!   so the API is exactly as protected as without the page.
//! - **A strict Content-Security-Policy.** The page handles the admin token and shows names
//!   that uploaders chose, so only its own scripts and stylesheet may run, it talks only to its
//!   own origin, and no other site may frame it. Previews are the assets' public links, served
//!   by the public listener (usually another origin than the admin listener), so images and
//!   media may come from that one origin too, and from nowhere else.
//! - **`no-cache` with a strong ETag** (the SHA-256 of the bytes, computed once): a browser
//!   revalidates every file on every load, so a new release shows at once, and otherwise costs
//!   a 304 per file. Each module is revalidated on its own, and its tag comes from its own
//!   content, so a browser never runs a module of one release with a module of another: a
//!   module that changed fails the match and comes anew, one that did not is the same bytes.
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

/// The exact types the files are served with.
const HTML: &str = "text/html; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

/// The page's markup, served at `/admin` and `/admin/`.
pub const INDEX_HTML: &str = include_str!("admin_page/index.html");

/// `(name, content, content type)` of a file of `admin_page/`, compiled in.
macro_rules! page_file {
    ($name:literal, $content_type:expr) => {
        (
            $name,
            include_str!(concat!("admin_page/", $name)),
            $content_type,
        )
    };
}

/// Every other file of the page, served at `/admin/NAME`: the stylesheet, then the modules of
/// the script from the ground up, each importing only modules listed before it (so no two
/// import each other), and last the entry module `app.js`, the one script `index.html` loads.
pub const FILES: &[(&str, &str, &str)] = &[
    page_file!("app.css", CSS),
    page_file!("dom.js", JS),
    page_file!("format.js", JS),
    page_file!("state.js", JS),
    page_file!("policy.js", JS),
    page_file!("api.js", JS),
    page_file!("copy.js", JS),
    page_file!("selection.js", JS),
    page_file!("detail.js", JS),
    page_file!("assets.js", JS),
    page_file!("folder.js", JS),
    page_file!("refresh.js", JS),
    page_file!("rules.js", JS),
    page_file!("uploads.js", JS),
    page_file!("actions.js", JS),
    page_file!("bulk.js", JS),
    page_file!("delete.js", JS),
    page_file!("session.js", JS),
    page_file!("app.js", JS),
];

/// One compiled-in file with its exact type and entity tag.
struct StaticFile {
    name: &'static str,
    body: &'static str,
    content_type: HeaderValue,
    etag: HeaderValue,
}

impl StaticFile {
    fn new(name: &'static str, body: &'static str, content_type: &'static str) -> Self {
        let etag = format!("\"{}\"", hex::encode(Sha256::digest(body.as_bytes())));
        Self {
            name,
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
    LazyLock::new(|| StaticFile::new("index.html", INDEX_HTML, HTML));
static SERVED: LazyLock<Vec<StaticFile>> = LazyLock::new(|| {
    FILES
        .iter()
        .map(|&(name, body, content_type)| StaticFile::new(name, body, content_type))
        .collect()
});

/// `GET`/`HEAD` of the page and of its files, and `/` redirecting to the page. `public_base`
/// is where the previews come from (see [`content_security_policy`]). Other methods get the
/// router's JSON 405, other names under `/admin/` its JSON 404.
pub fn routes(public_base: &str) -> Router<AppState> {
    let csp = HeaderValue::from_str(&content_security_policy(public_base))
        .expect("the policy is built from checked characters only");
    let serve = |file: &'static StaticFile| -> MethodRouter<AppState> {
        let csp = csp.clone();
        get(move |headers: HeaderMap| {
            let csp = csp.clone();
            async move { respond(file, &csp, &headers) }
        })
    };
    let index: &'static StaticFile = &INDEX;
    let router = Router::new()
        .route("/", get(|| async { Redirect::to("/admin") }))
        .route("/admin", serve(index))
        .route("/admin/", serve(index));
    LazyLock::force(&SERVED)
        .iter()
        .fold(router, |router, file| {
            router.route(&format!("/admin/{}", file.name), serve(file))
        })
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
        assert_eq!(SERVED.len(), FILES.len());
        for file in std::iter::once(&*INDEX).chain(SERVED.iter()) {
            let want = format!("\"{}\"", hex::encode(Sha256::digest(file.body.as_bytes())));
            assert_eq!(file.etag, want.as_str(), "{}", file.name);
            assert_eq!(file.opaque().len(), 64);
        }
        // Each module has a tag of its own: a changed module is never taken for another.
        let tags: std::collections::HashSet<_> = SERVED.iter().map(|f| &f.etag).collect();
        assert_eq!(tags.len(), SERVED.len());
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

    /// `file` answers 200 with its type, `no-cache`, its tag and the policy, and 304 on its tag.
    fn assert_served(file: &StaticFile, content_type: &str) {
        let r = respond(file, &csp(), &HeaderMap::new());
        assert_eq!(r.status(), StatusCode::OK, "{}", file.name);
        let h = r.headers();
        assert_eq!(h[header::CONTENT_TYPE], content_type, "{}", file.name);
        assert_eq!(h[header::CACHE_CONTROL], "no-cache");
        assert_eq!(h[header::ETAG], file.etag);
        assert_eq!(h[header::REFERRER_POLICY], "no-referrer");
        assert_eq!(h[header::CONTENT_SECURITY_POLICY], csp());

        let mut request = HeaderMap::new();
        request.insert(header::IF_NONE_MATCH, file.etag.clone());
        let r = respond(file, &csp(), &request);
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED, "{}", file.name);
        assert_eq!(r.headers()[header::ETAG], file.etag);
        assert_eq!(r.headers()[header::CACHE_CONTROL], "no-cache");
        assert!(!r.headers().contains_key(header::CONTENT_TYPE));
    }

    #[test]
    fn full_answer_and_not_modified() {
        assert_served(&INDEX, "text/html; charset=utf-8");
        assert_served(served("app.css"), "text/css; charset=utf-8");
        // Every module the same way, with its own tag.
        for file in SERVED.iter().filter(|f| f.name.ends_with(".js")) {
            assert_served(file, "text/javascript; charset=utf-8");
        }

        // Another file's tag does not match.
        let mut request = HeaderMap::new();
        request.insert(header::IF_NONE_MATCH, INDEX.etag.clone());
        let r = respond(served("app.js"), &csp(), &request);
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            r.headers()[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
    }

    fn served(name: &str) -> &'static StaticFile {
        SERVED
            .iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("{name} is not in FILES"))
    }

    /// The policy forbids inline script and style: the markup must not need them, and it
    /// loads one script, the entry module.
    #[test]
    fn markup_needs_nothing_the_policy_forbids() {
        let html = INDEX_HTML.to_ascii_lowercase();
        assert!(!html.contains("<style"), "inline <style>");
        assert!(!html.contains(" style="), "style attribute");
        assert!(!html.contains("javascript:"), "javascript: URL");
        let scripts: Vec<&str> = html
            .match_indices("<script")
            .map(|(i, _)| &html[i..i + html[i..].find('>').unwrap()])
            .collect();
        assert_eq!(
            scripts,
            ["<script type=\"module\" src=\"/admin/app.js\""],
            "the entry module only, and no inline script"
        );
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
    }

    /// Every file of the table is held to what the policy allows: the table is walked, so a
    /// file added to the page cannot escape, and a new kind of file needs its checks here.
    #[test]
    fn every_file_needs_nothing_the_policy_forbids() {
        for &(name, body, content_type) in FILES {
            match content_type {
                JS => {
                    for (forbidden, why) in [
                        ("eval(", "eval needs 'unsafe-eval'"),
                        ("new Function", "Function needs 'unsafe-eval'"),
                        ("innerHTML", "build nodes, never parse names as markup"),
                        ("outerHTML", "build nodes, never parse names as markup"),
                        (
                            "insertAdjacentHTML",
                            "build nodes, never parse names as markup",
                        ),
                        ("document.write", "build nodes, never parse names as markup"),
                        ("setAttribute('style'", "inline style needs 'unsafe-inline'"),
                        (
                            "setAttribute('on",
                            "handler attributes need 'unsafe-inline'",
                        ),
                        ("javascript:", "javascript: URLs need 'unsafe-inline'"),
                        (
                            "import(",
                            "modules are imported statically, as FILES lists them",
                        ),
                    ] {
                        assert!(!body.contains(forbidden), "{name}: {forbidden}: {why}");
                    }
                }
                CSS => {
                    assert!(!body.contains("@import"), "{name}: one stylesheet");
                    assert!(
                        !body.contains("url("),
                        "{name}: nothing loaded from elsewhere"
                    );
                }
                other => panic!("{name}: no checks for {other} files yet"),
            }
        }
    }

    /// The relative modules a script imports statically (`import … from './x.js';`, also
    /// spread over several lines, and `import './x.js';`).
    fn imports(script: &str) -> Vec<&str> {
        script
            .lines()
            .filter_map(|line| {
                let from = line
                    .strip_prefix("import '")
                    .or_else(|| {
                        line.strip_prefix("import {")
                            .and_then(|l| l.split(" from '").nth(1))
                    })
                    .or_else(|| line.strip_prefix("} from '"))?;
                Some(from.split('\'').next().unwrap())
            })
            .collect()
    }

    #[test]
    fn imports_are_read_from_every_form() {
        let script = "import { a } from './a.js';\nimport {\n  b,\n} from './b.js';\n\
                      import './c.js';\n// import { d } from './d.js';\nconst from = 'x';\n";
        assert_eq!(imports(script), ["./a.js", "./b.js", "./c.js"]);
    }

    /// The modules form floors, in the order FILES lists them: each imports only modules listed
    /// before it (so none imports one that imports it back), `app.js` comes last and reaches
    /// every other, and every file of `admin_page/` is in the table.
    #[test]
    fn modules_are_the_table_from_the_bottom_up() {
        let scripts: Vec<(&str, &str)> = FILES
            .iter()
            .filter(|f| f.2 == JS)
            .map(|&(name, body, _)| (name, body))
            .collect();
        for (at, (name, body)) in scripts.iter().enumerate() {
            for import in imports(body) {
                let target = import
                    .strip_prefix("./")
                    .filter(|t| !t.contains('/'))
                    .unwrap_or_else(|| panic!("{name} imports {import}: not a sibling module"));
                let position = scripts.iter().position(|(n, _)| *n == target);
                assert!(
                    position.is_some_and(|p| p < at),
                    "{name} imports {target}, which FILES does not list before it"
                );
            }
        }
        assert_eq!(
            scripts.last().map(|s| s.0),
            Some("app.js"),
            "the entry is the top floor"
        );
        let mut reached = vec!["app.js"];
        let mut next = 0;
        while let Some(name) = reached.get(next).copied() {
            next += 1;
            let body = scripts.iter().find(|(n, _)| *n == name).unwrap().1;
            for import in imports(body) {
                let target = &import[2..];
                if !reached.contains(&target) {
                    reached.push(target);
                }
            }
        }
        let mut reached_sorted = reached.clone();
        reached_sorted.sort_unstable();
        let mut listed: Vec<&str> = scripts.iter().map(|s| s.0).collect();
        listed.sort_unstable();
        assert_eq!(
            reached_sorted, listed,
            "every module is loaded by the entry"
        );

        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/http/admin_page");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n != "index.html")
            .collect();
        on_disk.sort_unstable();
        let mut in_table: Vec<&str> = FILES.iter().map(|f| f.0).collect();
        in_table.sort_unstable();
        assert_eq!(on_disk, in_table, "every file of admin_page/ is served");
    }
}
