//! The admin web page as the server serves it: `/admin`, its stylesheet and every module of its
//! script with exact types, `no-cache` and a strong ETag (304 on a match), a
//! Content-Security-Policy that lets previews come from the public origin only, no token needed
//! for the page while the API still wants one, and every hook the browser test relies on
//! present in what is served.

use crate::common;

use common::{Storage, TOKEN, TestServer};
use media_origin::config::AdminBind;
use reqwest::{Method, StatusCode, header};
use serde_json::Value;
use sha2::{Digest, Sha256};

const HTML_TYPE: &str = "text/html; charset=utf-8";
const JS_TYPE: &str = "text/javascript; charset=utf-8";
const CSS_TYPE: &str = "text/css; charset=utf-8";

fn csp_for(origin: &str) -> String {
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
         img-src 'self' data: blob: {origin}; media-src {origin}; base-uri 'none'; \
         form-action 'none'; frame-ancestors 'none'"
    )
}

fn strong_etag(body: &[u8]) -> String {
    format!("\"{}\"", hex::encode(Sha256::digest(body)))
}

fn get_header(r: &reqwest::Response, name: header::HeaderName) -> &str {
    r.headers()
        .get(&name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

/// `GET url` with `extra` request headers.
async fn fetch(s: &TestServer, url: &str, extra: &[(&str, &str)]) -> reqwest::Response {
    let mut req = s.client.get(url);
    for (name, value) in extra {
        req = req.header(*name, *value);
    }
    req.send().await.unwrap()
}

/// The files of the page in the tree, by name, with the type each must be served with.
fn page_files() -> Vec<(String, &'static str)> {
    let mut files: Vec<(String, &'static str)> = std::fs::read_dir("src/http/admin_page")
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .map(|name| {
            let content_type = match name.rsplit_once('.').map(|(_, ext)| ext) {
                Some("html") => HTML_TYPE,
                Some("js") => JS_TYPE,
                Some("css") => CSS_TYPE,
                _ => panic!("{name}: what type is it served with?"),
            };
            (name, content_type)
        })
        .collect();
    files.sort();
    files
}

/// A file of the page answered 200 with `content_type`, `no-cache`, the page's policy `csp` and
/// the headers every answer has; its ETag is returned.
fn assert_page_file(r: &reqwest::Response, path: &str, content_type: &str, csp: &str) -> String {
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    assert_eq!(get_header(r, header::CONTENT_TYPE), content_type, "{path}");
    assert_eq!(get_header(r, header::CACHE_CONTROL), "no-cache", "{path}");
    assert_eq!(
        get_header(r, header::CONTENT_SECURITY_POLICY),
        csp,
        "{path}"
    );
    assert_eq!(get_header(r, header::REFERRER_POLICY), "no-referrer");
    assert_eq!(get_header(r, header::X_CONTENT_TYPE_OPTIONS), "nosniff");
    get_header(r, header::ETAG).to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn page_and_assets_have_exact_types_caching_and_policy() {
    let s = TestServer::start().await;
    let csp = csp_for(&s.base);
    let mut paths = vec![
        ("/admin".to_owned(), HTML_TYPE, "index.html".to_owned()),
        ("/admin/".to_owned(), HTML_TYPE, "index.html".to_owned()),
    ];
    for (name, content_type) in page_files() {
        if name != "index.html" {
            paths.push((format!("/admin/{name}"), content_type, name));
        }
    }
    assert!(paths.iter().any(|p| p.0 == "/admin/app.js"));
    assert!(paths.iter().any(|p| p.0 == "/admin/app.css"));
    for (path, content_type, file) in &paths {
        let (path, content_type) = (path.as_str(), *content_type);
        let r = fetch(&s, &s.url(path), &[]).await;
        let etag = assert_page_file(&r, path, content_type, &csp);
        let body = r.bytes().await.unwrap();
        // Exactly the file in the tree, tagged with its SHA-256.
        let on_disk = std::fs::read(format!("src/http/admin_page/{file}")).unwrap();
        assert_eq!(body.as_ref(), on_disk.as_slice(), "{path}");
        assert_eq!(etag, strong_etag(&body), "{path}");

        // Revalidation: the same tag (strong or weak, alone or in a list) or `*` → 304.
        for inm in [
            etag.clone(),
            format!("W/{etag}"),
            format!("\"x\", {etag}"),
            "*".to_owned(),
        ] {
            let r = fetch(&s, &s.url(path), &[("if-none-match", &inm)]).await;
            assert_eq!(r.status(), StatusCode::NOT_MODIFIED, "{path} {inm}");
            assert_eq!(get_header(&r, header::ETAG), etag);
            assert_eq!(get_header(&r, header::CACHE_CONTROL), "no-cache");
            assert!(r.headers().get(header::CONTENT_LENGTH).is_none());
            assert!(r.bytes().await.unwrap().is_empty());
        }
        let r = fetch(&s, &s.url(path), &[("if-none-match", "\"stale\"")]).await;
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert_eq!(r.bytes().await.unwrap().len(), on_disk.len());
    }
}

/// One module of the page's script, as served.
struct ServedModule {
    /// Its path on the server, e.g. `/admin/folder.js`.
    path: String,
    body: String,
}

/// The modules a module names in its static imports (`… from './x.js'`, `import './x.js'`).
fn imported_specifiers(script: &str) -> Vec<&str> {
    let mut found = Vec::new();
    for marker in [" from '", "import '"] {
        for (at, _) in script.match_indices(marker) {
            let rest = &script[at + marker.len()..];
            found.push(&rest[..rest.find('\'').unwrap()]);
        }
    }
    found
}

/// The page's script as a browser loads it: each `<script src>` of `/admin`, then every module
/// those import, resolved against the importing module's URL, each fetched once. Every one must
/// be served as the page's files are: 200, the JavaScript type, `no-cache`, the page's policy
/// and the SHA-256 of its bytes as its ETag.
async fn served_modules(s: &TestServer) -> Vec<ServedModule> {
    let csp = csp_for(&s.base);
    let html = fetch(s, &s.url("/admin"), &[]).await.text().await.unwrap();
    let mut queue: Vec<reqwest::Url> = html
        .match_indices("<script")
        .map(|(at, _)| {
            let tag = &html[at..at + html[at..].find('>').unwrap()];
            assert!(tag.contains("type=\"module\""), "not a module: {tag}");
            let src = &tag[tag.find("src=\"").expect("a script with src") + 5..];
            reqwest::Url::parse(&s.url(&src[..src.find('"').unwrap()])).unwrap()
        })
        .collect();
    assert_eq!(
        queue.len(),
        1,
        "the page loads one script, its entry module"
    );
    let mut modules: Vec<ServedModule> = Vec::new();
    while let Some(url) = queue.pop() {
        if modules.iter().any(|m| m.path == url.path()) {
            continue;
        }
        let r = fetch(s, url.as_str(), &[]).await;
        let path = url.path().to_owned();
        let etag = assert_page_file(&r, &path, JS_TYPE, &csp);
        let body = r.text().await.unwrap();
        assert_eq!(etag, strong_etag(body.as_bytes()), "{path}");
        for specifier in imported_specifiers(&body) {
            assert!(specifier.starts_with("./"), "{path} imports {specifier}");
            queue.push(url.join(specifier).unwrap());
        }
        modules.push(ServedModule { path, body });
    }
    modules
}

/// What the browser test sees run, checked without a browser: the entry module and all it
/// imports, transitively, are served (with the same headers as the page, and 304 on their tag),
/// and they are exactly the scripts in the tree.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_module_the_entry_imports_is_served() {
    let s = TestServer::start().await;
    let modules = served_modules(&s).await;
    assert_eq!(modules[0].path, "/admin/app.js", "the entry comes first");
    let mut served: Vec<&str> = modules.iter().map(|m| m.path.as_str()).collect();
    served.sort_unstable();
    let in_tree: Vec<String> = page_files()
        .into_iter()
        .filter(|(_, content_type)| *content_type == JS_TYPE)
        .map(|(name, _)| format!("/admin/{name}"))
        .collect();
    assert_eq!(
        served, in_tree,
        "every script in the tree is loaded, and no other"
    );
    for m in &modules {
        let name = m.path.strip_prefix("/admin/").unwrap();
        let on_disk = std::fs::read_to_string(format!("src/http/admin_page/{name}")).unwrap();
        assert_eq!(m.body, on_disk, "{}", m.path);
        let etag = strong_etag(m.body.as_bytes());
        let r = fetch(&s, &s.url(&m.path), &[("if-none-match", &etag)]).await;
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED, "{}", m.path);
        assert_eq!(get_header(&r, header::ETAG), etag);
    }
    assert!(modules.len() > 1, "the script is split into modules");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn head_answers_like_get_without_the_body() {
    let s = TestServer::start().await;
    let get = fetch(&s, &s.url("/admin"), &[]).await;
    let etag = get_header(&get, header::ETAG).to_owned();
    let len = get.bytes().await.unwrap().len();
    let r = s.client.head(s.url("/admin")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(get_header(&r, header::CONTENT_TYPE), HTML_TYPE);
    assert_eq!(get_header(&r, header::ETAG), etag);
    assert_eq!(get_header(&r, header::CONTENT_LENGTH), len.to_string());
    assert!(r.bytes().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn other_methods_get_the_json_405() {
    let s = TestServer::start().await;
    for (method, path) in [
        (Method::POST, "/admin"),
        (Method::PUT, "/admin/"),
        (Method::DELETE, "/admin/app.js"),
        (Method::PATCH, "/admin/app.css"),
    ] {
        let r = s
            .client
            .request(method.clone(), s.url(path))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        assert_eq!(get_header(&r, header::CONTENT_TYPE), "application/json");
        let allow = get_header(&r, header::ALLOW).to_owned();
        assert!(allow.contains("GET") && allow.contains("HEAD"), "{allow}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "method_not_allowed", "{body}");
    }
    // Unknown files under /admin are plain JSON 404s, not the page.
    let r = fetch(&s, &s.url("/admin/other.js"), &[]).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_page_needs_no_token_but_the_api_still_does() {
    let s = TestServer::start().await;
    // No token, or a wrong one: the page is static and holds no secret.
    assert_eq!(
        fetch(&s, &s.url("/admin"), &[]).await.status(),
        StatusCode::OK
    );
    let r = fetch(&s, &s.url("/admin"), &[("authorization", "Bearer wrong")]).await;
    assert_eq!(r.status(), StatusCode::OK);
    // What the page's sign-in calls: 401 with the API's message without the token ...
    let r = fetch(
        &s,
        &s.url("/api/policies"),
        &[("authorization", "Bearer wrong")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    assert!(!body["error"]["message"].as_str().unwrap().is_empty());
    let r = fetch(&s, &s.url("/api/assets"), &[]).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // ... and the answer with it.
    let r = s.admin(Method::GET, "/policies").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = s.admin(Method::GET, "/access").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

/// With its own admin listener, the page is there (and not on the public listener), and its
/// policy names the public origin, without the path of the public base URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_the_admin_listener_previews_come_from_the_public_origin() {
    let storage = Storage::new(common::Backend::Local).await;
    let s = TestServer::start_with(storage, |c| {
        c.server.admin_bind = AdminBind::Addr("127.0.0.1:0".parse().unwrap());
        c.server.public_base_url = Some("https://Media.Example.com:8443/wa/".into());
    })
    .await;
    assert_ne!(s.addr, s.admin_addr);
    let admin = |path: &str| format!("http://{}{path}", s.admin_addr);
    let r = fetch(&s, &admin("/admin"), &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        get_header(&r, header::CONTENT_SECURITY_POLICY),
        csp_for("https://media.example.com:8443")
    );
    for path in ["/admin/app.js", "/admin/app.css"] {
        assert_eq!(
            fetch(&s, &admin(path), &[]).await.status(),
            StatusCode::OK,
            "{path}"
        );
    }
    // The public listener serves media, not the admin page.
    for path in ["/admin", "/admin/app.js"] {
        assert_eq!(
            fetch(&s, &s.url(path), &[]).await.status(),
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    let r = fetch(&s, &admin("/api/assets"), &[]).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

/// The opening tag of the element with `id` in `html`; exactly one such element.
fn tag_with_id<'a>(html: &'a str, id: &str) -> &'a str {
    let needle = format!(" id=\"{id}\"");
    let mut found = html.match_indices(&needle);
    let (at, _) = found
        .next()
        .unwrap_or_else(|| panic!("no element with id {id:?} in the page"));
    assert!(found.next().is_none(), "id {id:?} appears twice");
    let start = html[..at].rfind('<').unwrap();
    let end = at + html[at..].find('>').unwrap();
    &html[start..=end]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_hook_of_the_browser_test_is_served() {
    let s = TestServer::start().await;
    let html = fetch(&s, &s.url("/admin"), &[]).await.text().await.unwrap();
    // The script: every module the page loads, as served.
    let js: String = served_modules(&s)
        .await
        .into_iter()
        .map(|m| m.body)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(html.contains("<script type=\"module\" src=\"/admin/app.js\"></script>"));
    assert!(html.contains("<link rel=\"stylesheet\" href=\"/admin/app.css\">"));

    // Elements in the markup, by id, with the tag (and attributes) the test drives.
    let hooks: &[(&str, &str, &[&str])] = &[
        ("token", "<input", &["type=\"password\""]),
        ("sign-in", "<button", &[]),
        ("sign-in-error", "<", &[]),
        ("app", "<main", &["hidden"]),
        ("current-folder", "<", &[]),
        ("go-folder", "<input", &[]),
        ("go-folder-btn", "<button", &[]),
        ("file-input", "<input", &["type=\"file\"", "multiple"]),
        ("drop-zone", "<", &[]),
        (
            "upload-cache-choice",
            "<select",
            &["data-picker=\"upload-cache\""],
        ),
        ("upload-cache", "<input", &["hidden"]),
        ("uploads-elsewhere", "<p", &["hidden"]),
        ("asset-detail", "<", &[]),
        ("detail-path", "<", &[]),
        ("detail-kind", "<", &[]),
        ("detail-size", "<", &[]),
        ("detail-type", "<", &[]),
        ("detail-policy", "<", &[]),
        ("detail-policy-source", "<", &[]),
        ("served-headers", "<table", &[]),
        ("fetch-log", "<", &[]),
        (
            "folder-policy-choice",
            "<select",
            &["data-picker=\"folder-policy\""],
        ),
        ("folder-policy", "<input", &["hidden"]),
        ("folder-policy-raw", "<code", &[]),
        ("folder-policy-save", "<button", &[]),
        ("folder-policy-remove", "<button", &[]),
        ("folder-policy-error", "<", &[]),
        ("folder-policy-current", "<", &[]),
        (
            "override-policy-choice",
            "<select",
            &["data-picker=\"override-policy\""],
        ),
        ("override-policy", "<input", &["hidden"]),
        ("list-filter", "<input", &["type=\"search\""]),
        ("list-sort", "<select", &[]),
        ("select-all", "<input", &["type=\"checkbox\""]),
        ("bulk-bar", "<div", &["hidden"]),
        ("bulk-delete", "<button", &[]),
        ("bulk-media", "<button", &[]),
        ("bulk-policy-choice", "<select", &[]),
        ("bulk-policy-save", "<button", &[]),
        ("bulk-status", "<", &[]),
        ("detail-empty", "<section", &[]),
        ("copy-template-header", "<button", &[]),
        ("copy-template-header-id", "<button", &[]),
        ("media-id-unavailable", "<p", &["hidden"]),
        ("confirm-replace", "<dialog", &[]),
        ("confirm-replace-yes", "<button", &[]),
        ("confirm-replace-no", "<button", &[]),
        ("override-save", "<button", &[]),
        ("override-remove", "<button", &[]),
        ("override-error", "<", &[]),
        ("copy-link", "<button", &[]),
        ("copy-link-json", "<button", &[]),
        ("copy-id-json", "<button", &[]),
        ("copy-status", "<", &[]),
        ("media-id-get", "<button", &[]),
        ("media-id-refresh", "<button", &[]),
        ("media-id", "<", &[]),
        ("media-id-error", "<", &[]),
        ("delete-asset", "<button", &[]),
        ("confirm-delete", "<dialog", &[]),
        ("confirm-delete-yes", "<button", &[]),
        ("confirm-delete-no", "<button", &[]),
    ];
    for (id, tag, attrs) in hooks {
        let found = tag_with_id(&html, id);
        assert!(found.starts_with(tag), "#{id} is {found}");
        for attr in *attrs {
            assert!(found.contains(attr), "#{id} lacks {attr}: {found}");
        }
    }
    // The pickers' choices, in plain words, each with the directive it sends.
    for (policy, words) in [
        ("max-age=3600", "re-use for 1 hour"),
        ("max-age=86400", "re-use for 1 day"),
        ("max-age=604800", "re-use for 7 days"),
        ("max-age=2592000", "re-use for 30 days"),
        ("no-cache", "always re-check when changed"),
        ("no-store", "never cache"),
        ("private", "personalised"),
    ] {
        let preset = format!("['{policy}', '{words}']");
        assert!(js.contains(&preset), "the script lacks the preset {preset}");
    }

    // What the script creates: the preview, the rows and their data attributes, the texts.
    for created in [
        "id: 'preview'",
        "testid: 'folder', folder: full",
        "testid: 'asset-row', path }",
        "testid: 'pick', path }",
        "testid: 'media-state', state: media.state }",
        "testid: 'upload', name: file.name",
        "testid: 'upload-status'",
        "header: h.name.toLowerCase()",
        "className: 'value'",
        "status.textContent = 'done'",
        "`error: ${message}`",
        "status.textContent = 'Copied'",
        "sessionStorage",
        "xhr.upload.onprogress",
        "navigator.clipboard.writeText",
    ] {
        assert!(
            js.contains(created),
            "the script does not create {created:?}"
        );
    }
    // Every element the script looks up by id exists in the markup.
    for (at, _) in js.match_indices("$('") {
        let id = &js[at + 3..at + 3 + js[at + 3..].find('\'').unwrap()];
        tag_with_id(&html, id);
    }
}

/// Whoever types the admin listener's address lands on the page: `/` answers 303 to `/admin`
/// (on a listener of its own, and when one listener serves both).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_admin_listeners_root_leads_to_the_page() {
    let no_redirects = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let separate = TestServer::start_with(Storage::new(common::Backend::Local).await, |c| {
        c.server.admin_bind = AdminBind::Addr("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let shared = TestServer::start().await;
    for (s, root) in [
        (&separate, format!("http://{}/", separate.admin_addr)),
        (&shared, shared.url("/")),
    ] {
        for method in [Method::GET, Method::HEAD] {
            let r = no_redirects
                .request(method.clone(), &root)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::SEE_OTHER, "{method} {root}");
            assert_eq!(r.headers()[header::LOCATION], "/admin", "{method} {root}");
        }
        // Followed, it is the page.
        let r = s.client.get(&root).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(get_header(&r, header::CONTENT_TYPE), HTML_TYPE);
    }
    // The public listener of a separate admin listener has no page, and no redirect to one.
    let r = no_redirects.get(separate.url("/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}
