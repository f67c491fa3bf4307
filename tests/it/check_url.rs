//! `media-origin check URL...`, the binary as an operator runs it before a broadcast: against the
//! real server (whose answers Meta can use and cache as declared), and against a small foreign
//! server that gets each of WHATSAPP_MEDIA.md's rules wrong once ("works against any server").

use crate::common;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Response, StatusCode, header};
use axum::routing::{MethodRouter, get};
use common::{TestServer, fixtures};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const BIN: &str = env!("CARGO_BIN_EXE_media-origin");
const LAST_MODIFIED: &str = "Tue, 22 Feb 2022 22:22:22 GMT";

/// What one run of `media-origin check ARGS...` gave.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Some line of the report starts (after its indentation) with `prefix`.
    fn line(&self, prefix: &str) -> &str {
        self.stdout
            .lines()
            .map(str::trim_start)
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| {
                panic!(
                    "no line starting with {prefix:?} in:\n{}\nstderr:\n{}",
                    self.stdout, self.stderr
                )
            })
    }

    fn exits(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "exit status\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

async fn check(args: &[&str]) -> Run {
    let out = tokio::process::Command::new(BIN)
        .arg("check")
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .await
        .unwrap();
    let run = Run {
        code: out.status.code().expect("exited"),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    cites_only_the_readme(&run.stdout);
    run
}

/// Every rule the report cites is a section of the README the user has, by its heading; no
/// citation of a document that is not shipped.
fn cites_only_the_readme(report: &str) {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let headings: Vec<&str> = readme
        .lines()
        .filter_map(|l| l.strip_prefix("## ").or_else(|| l.strip_prefix("### ")))
        .collect();
    assert!(!report.contains("WHATSAPP_MEDIA"), "{report}");
    for (i, _) in report.match_indices('§') {
        assert!(
            report[..i].ends_with("RFC 9110 "),
            "a § that is not RFC 9110's:\n{report}"
        );
    }
    for cited in report.split("README: ").skip(1) {
        let section = cited.split([')', ';', ',']).next().unwrap().trim();
        assert!(
            headings.contains(&section),
            "the report cites README section {section:?}, which the README lacks:\n{report}"
        );
    }
}

async fn set_policy(s: &TestServer, folder: &str, cache_control: &str) {
    let r = s
        .admin(Method::PUT, &format!("/policies/{folder}"))
        .json(&json!({ "cache_control": cache_control }))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn media_origin_answers_are_usable_and_cached_as_declared() {
    let s = TestServer::start().await;
    set_policy(&s, "fresh", "no-cache").await;
    set_policy(&s, "nostore", "no-store").await;
    set_policy(&s, "personal", "private").await;
    let jpeg = fixtures::jpeg(40_000, 1);
    s.upload("promo/banner.jpg", "image/jpeg", jpeg.clone())
        .await;
    s.upload("fresh/menu.png", "image/png", fixtures::png(30_000, 2))
        .await;
    s.upload(
        "nostore/terms.pdf",
        "application/pdf",
        fixtures::pdf(20_000, 3),
    )
    .await;
    s.upload(
        "personal/offer.jpg",
        "image/jpeg",
        fixtures::jpeg(10_000, 4),
    )
    .await;

    // The default policy: max-age=86400.
    let run = check(&[&s.media("promo/banner.jpg")]).await;
    run.exits(0);
    run.line("ok    status: 200 OK");
    run.line("ok    redirects: none");
    run.line("ok    content-type: image/jpeg: an exact type WhatsApp accepts (image, README: What is accepted)");
    run.line("ok    bytes: the bytes are image/jpeg, as declared");
    run.line("ok    size: 40000 bytes, within the image limit of 5000000 bytes");
    run.line("ok    cache-control: max-age=86400: Meta caches it by URL for 86400 s");
    run.line("ok    last-modified: ");
    run.line("ok    etag: ");
    assert!(run.line("ok    etag: ").contains("ignored by Meta"));
    // The test server is on loopback, which Meta could not reach: a warning, not a failure.
    run.line("WARN  address: 127.0.0.1 is not a public address");
    assert_eq!(
        run.line("VERDICT:"),
        "VERDICT: Meta can use this image; it will cache it for 86400 s"
    );

    let run = check(&[&s.media("fresh/menu.png")]).await;
    run.exits(0);
    run.line("ok    cache-control: no-cache: Meta may cache it and replaces its copy");
    run.line("ok    last-modified: ");
    assert!(
        run.line("ok    last-modified: ")
            .contains("Meta replaces its copy when this changes")
    );
    assert_eq!(
        run.line("VERDICT:"),
        "VERDICT: Meta can use this image; it may cache it, and refreshes it when \
         Last-Modified changes"
    );

    // Not cached, but as declared: still exit 0.
    let run = check(&[&s.media("nostore/terms.pdf")]).await;
    run.exits(0);
    run.line("ok    cache-control: no-store: Meta does not cache it");
    assert_eq!(
        run.line("VERDICT:"),
        "VERDICT: Meta can use this document; it will not cache it (no-store, as declared): \
         every send fetches it"
    );
    let run = check(&[&s.media("personal/offer.jpg")]).await;
    run.exits(0);
    run.line("ok    cache-control: private: Meta does not cache it");
    assert!(run.line("VERDICT:").contains("(private, as declared)"));

    // Several URLs at once, as JSON: one object per URL with every check.
    let run = check(&[
        "--json",
        &s.media("promo/banner.jpg"),
        &s.media("nostore/terms.pdf"),
    ])
    .await;
    run.exits(0);
    let reports: Vec<Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(reports.len(), 2, "{}", run.stdout);
    let banner = &reports[0];
    assert_eq!(banner["ok"], true);
    assert_eq!(banner["status"], 200);
    assert_eq!(banner["kind"], "image");
    assert_eq!(banner["content_type"], "image/jpeg");
    assert_eq!(banner["bytes"], 40_000);
    assert_eq!(banner["sha256"], hex::encode(Sha256::digest(&jpeg)));
    assert_eq!(banner["caching"], "max-age=86400");
    assert_eq!(banner["cached_for_secs"], 86_400);
    let names: Vec<&str> = banner["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for name in [
        "status",
        "redirects",
        "content-type",
        "bytes",
        "size",
        "cache-control",
        "last-modified",
        "etag",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    assert!(
        banner["checks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["level"] != "fail")
    );
    assert_eq!(reports[1]["kind"], "document");
    assert_eq!(reports[1]["caching"], "no-store");
    assert_eq!(reports[1]["cached_for_secs"], 0);

    // An asset that is not there.
    let run = check(&[&s.media("promo/gone.jpg")]).await;
    run.exits(1);
    run.line("FAIL  status: 404 Not Found");
    s.stop().await;
}

/// A route answering 200 with exactly these headers (no Content-Type unless given) and body.
fn asset(headers: &'static [(&'static str, &'static str)], body: Vec<u8>) -> MethodRouter {
    let body = bytes::Bytes::from(body);
    get(move || {
        let body = body.clone();
        async move {
            let mut r = Response::new(Body::from(body));
            for (name, value) in headers {
                r.headers_mut().append(
                    HeaderName::from_static(name),
                    HeaderValue::from_static(value),
                );
            }
            r
        }
    })
}

/// A foreign server with one mistake per route; returns its base URL.
async fn foreign_server() -> String {
    const GOOD: &[(&str, &str)] = &[
        ("content-type", "image/jpeg"),
        ("cache-control", "max-age=3600"),
        ("last-modified", LAST_MODIFIED),
        ("etag", "\"abc\""),
    ];
    let jpeg = || fixtures::jpeg(20_000, 7);
    let app = Router::new()
        .route("/good.jpg", asset(GOOD, jpeg()))
        .route(
            "/alias.jpg",
            asset(
                &[
                    ("content-type", "image/jpg"),
                    ("cache-control", "max-age=60"),
                ],
                jpeg(),
            ),
        )
        .route(
            "/octet.jpg",
            asset(
                &[
                    ("content-type", "application/octet-stream"),
                    ("cache-control", "max-age=60"),
                ],
                jpeg(),
            ),
        )
        .route(
            "/webp-as-jpeg.jpg",
            asset(
                &[
                    ("content-type", "image/jpeg"),
                    ("cache-control", "max-age=60"),
                ],
                fixtures::webp(20_000, 8),
            ),
        )
        .route(
            "/anim.gif",
            asset(
                &[
                    ("content-type", "image/gif"),
                    ("cache-control", "max-age=60"),
                ],
                [b"GIF89a".as_slice(), &fixtures::noise(5_000, 9)].concat(),
            ),
        )
        .route(
            "/big.jpg",
            asset(
                &[
                    ("content-type", "image/jpeg"),
                    ("cache-control", "max-age=60"),
                ],
                fixtures::jpeg(5_000_001, 10),
            ),
        )
        .route(
            "/no-cache-control.jpg",
            asset(&[("content-type", "image/jpeg")], jpeg()),
        )
        .route(
            "/etag-only.jpg",
            asset(
                &[("content-type", "image/jpeg"), ("etag", "\"e1\"")],
                jpeg(),
            ),
        )
        .route(
            "/multi.jpg",
            asset(
                &[
                    ("content-type", "image/jpeg"),
                    ("cache-control", "public, max-age=60, must-revalidate"),
                    ("last-modified", LAST_MODIFIED),
                ],
                jpeg(),
            ),
        )
        .route(
            "/cdn.jpg",
            asset(
                &[
                    ("content-type", "image/jpeg"),
                    ("cache-control", "public, max-age=604800, immutable"),
                    ("last-modified", LAST_MODIFIED),
                    ("etag", "\"cdn\""),
                ],
                jpeg(),
            ),
        )
        .route(
            "/multi-undocumented.jpg",
            asset(
                &[
                    ("content-type", "image/jpeg"),
                    ("cache-control", "public, must-revalidate"),
                    ("last-modified", LAST_MODIFIED),
                ],
                jpeg(),
            ),
        )
        .route(
            "/no-cache.jpg",
            asset(
                &[
                    ("content-type", "image/jpeg"),
                    ("cache-control", "no-cache"),
                ],
                jpeg(),
            ),
        )
        .route(
            "/redirect.jpg",
            get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/good.jpg")]) }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn any_server_each_broken_rule_fails_with_its_check() {
    let base = foreign_server().await;
    let url = |path: &str| format!("{base}{path}");

    // The foreign server can get it right too.
    let run = check(&[&url("/good.jpg")]).await;
    run.exits(0);
    assert!(run.line("ok    etag: \"abc\"").contains("ignored by Meta"));
    assert_eq!(
        run.line("VERDICT:"),
        "VERDICT: Meta can use this image; it will cache it for 3600 s"
    );

    // (path, the failing check line's start, the verdict's start)
    let refuse = "VERDICT: Meta will refuse this: ";
    let uncached = "VERDICT: Meta can use this image, but will not cache it as declared: ";
    let cases: &[(&str, &str, &str)] = &[
        (
            "/alias.jpg",
            "FAIL  content-type: image/jpg is not the exact media type Meta requires",
            refuse,
        ),
        (
            "/octet.jpg",
            "FAIL  content-type: application/octet-stream is not a media type",
            refuse,
        ),
        (
            "/webp-as-jpeg.jpg",
            "FAIL  bytes: declared image/jpeg but the bytes are image/webp",
            refuse,
        ),
        (
            "/anim.gif",
            "FAIL  content-type: image/gif is not accepted by WhatsApp",
            refuse,
        ),
        (
            "/big.jpg",
            "FAIL  size: image too large: 5000001 bytes exceeds WhatsApp's limit of 5000000 bytes",
            refuse,
        ),
        (
            "/no-cache-control.jpg",
            "FAIL  cache-control: missing: with none of Cache-Control, Last-Modified and ETag \
             Meta does not cache it at all",
            uncached,
        ),
        (
            "/multi-undocumented.jpg",
            "FAIL  cache-control: public, must-revalidate: several directives, none of them one \
             Meta documents",
            uncached,
        ),
        (
            "/no-cache.jpg",
            "FAIL  last-modified: missing: no-cache requires Last-Modified",
            uncached,
        ),
        (
            "/redirect.jpg",
            "FAIL  redirects: 302 to /good.jpg: Meta's fetch proxy does not follow redirects",
            "VERDICT: Meta will fail to fetch this: redirects: ",
        ),
        (
            "/missing.jpg",
            "FAIL  status: 404 Not Found",
            "VERDICT: Meta will fail to fetch this: status: ",
        ),
    ];
    for (path, failing, verdict) in cases {
        let run = check(&[&url(path)]).await;
        run.exits(1);
        run.line(failing);
        run.line(verdict);
    }

    // The details that make a failure actionable.
    let run = check(&[&url("/alias.jpg")]).await;
    assert!(
        run.line("FAIL  content-type:")
            .ends_with("serve `Content-Type: image/jpeg`")
    );
    let run = check(&[&url("/redirect.jpg")]).await;
    // The redirect's target is checked too, and the report says to link it directly.
    assert!(
        run.line("FAIL  redirects:")
            .ends_with(&format!("link {} directly", url("/good.jpg")))
    );
    run.line("ok    status: 200 OK");
    run.line("ok    cache-control: max-age=3600");
    let run = check(&["--json", &url("/redirect.jpg")]).await;
    run.exits(1);
    let report: Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(report["ok"], false);
    assert_eq!(report["redirects"][0]["status"], 302);
    assert_eq!(report["final_url"], url("/good.jpg"));

    // Documented, not refused: several directives with one of Meta's (the CDN default), and an
    // ETag alone. Warnings, exit 0, and the verdict says what is assumed or unknown.
    let assumed = " (assuming it reads the one documented directive among several in \
                   Cache-Control)";
    for (path, warning, verdict) in [
        (
            "/cdn.jpg",
            "WARN  cache-control: public, max-age=604800, immutable: several directives; Meta \
             documents a single one (max-age=N, no-cache, no-store or private; README: What each policy makes Meta do) and not how \
             it reads a list, so this assumes it reads `max-age=604800`: Meta caches it by URL \
             for 604800 s, then fetches it again (README: What each policy makes Meta do); a replaced asset needs a new URL to reach \
             customers sooner; to be sure, serve `Cache-Control: max-age=604800` alone"
                .to_owned(),
            format!("VERDICT: Meta can use this image; it will cache it for 604800 s{assumed}"),
        ),
        (
            "/multi.jpg",
            "WARN  cache-control: public, max-age=60, must-revalidate: several directives; Meta \
             documents a single one"
                .to_owned(),
            format!("VERDICT: Meta can use this image; it will cache it for 60 s{assumed}"),
        ),
        (
            "/etag-only.jpg",
            "WARN  cache-control: missing: with only an ETag Meta caches it by its own \
             undisclosed logic (README: What each policy makes Meta do), so how long it keeps a copy cannot be known; declare one of \
             `max-age=N`, `no-cache` (with Last-Modified), `no-store`, `private` to decide it"
                .to_owned(),
            "VERDICT: Meta can use this image; with only an ETag it caches it by its own \
             undisclosed logic, for a time no one can know"
                .to_owned(),
        ),
    ] {
        let run = check(&[&url(path)]).await;
        run.exits(0);
        run.line(&warning);
        assert_eq!(run.line("VERDICT:"), verdict, "{path}");
        assert!(!run.stdout.contains("FAIL"), "{}", run.stdout);
    }
    let run = check(&[&url("/etag-only.jpg")]).await;
    run.line("WARN  etag: \"e1\": used");
    let run = check(&["--json", &url("/cdn.jpg"), &url("/etag-only.jpg")]).await;
    run.exits(0);
    let reports: Vec<Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let caching: Vec<(&Value, &Value, &Value)> = reports
        .iter()
        .map(|r| (&r["ok"], &r["caching"], &r["cached_for_secs"]))
        .collect();
    assert_eq!(
        caching,
        [
            (&json!(true), &json!("max-age=604800"), &json!(604_800)),
            (&json!(true), &json!("undisclosed"), &Value::Null),
        ]
    );
    let levels: Vec<(&str, &str)> = reports[0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["level"] != "ok")
        .map(|c| (c["name"].as_str().unwrap(), c["level"].as_str().unwrap()))
        .collect();
    // The address warning: the test server is on loopback.
    assert_eq!(levels, [("address", "warn"), ("cache-control", "warn")]);

    // One bad URL among good ones fails the run; every URL is still reported.
    let run = check(&[&url("/good.jpg"), &url("/no-cache.jpg")]).await;
    run.exits(1);
    assert_eq!(run.stdout.matches("VERDICT:").count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unreachable_urls_fail_and_usage_errors_exit_2() {
    // Nothing listens on a port just released.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let run = check(&[&format!("http://127.0.0.1:{port}/a.jpg")]).await;
    run.exits(1);
    run.line("FAIL  fetch: ");
    run.line("VERDICT: Meta will fail to fetch this: fetch: ");

    for bad in ["ftp://example.com/a.jpg", "not a url"] {
        let run = check(&[bad]).await;
        run.exits(2);
        assert!(run.stdout.is_empty(), "{}", run.stdout);
        assert!(run.stderr.contains("media-origin check:"), "{}", run.stderr);
    }
    check(&[]).await.exits(2);
}
