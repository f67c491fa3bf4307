//! Public serving over real HTTP: the exact caching headers of each policy, policy resolution,
//! Last-Modified and ETag across replacements and restarts, and every conditional and range
//! case of RFC 9110 §13 and §14, GET and HEAD.

use crate::common;

use common::{Backend, Storage, TestServer, fixtures};
use media_origin::policy::CachePolicy;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

fn header<'a>(r: &'a reqwest::Response, name: &str) -> &'a str {
    r.headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

async fn set_folder(s: &TestServer, folder: &str, policy: &str) -> reqwest::Response {
    s.admin(Method::PUT, &format!("/policies/{folder}"))
        .json(&json!({"cache_control": policy}))
        .send()
        .await
        .unwrap()
}

async fn each_policy_yields_its_exact_headers(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let body = fixtures::jpeg(4096, 7);
    let sha = hex::encode(Sha256::digest(&body));
    for (i, policy) in ["max-age=3600", "no-cache", "no-store", "private"]
        .iter()
        .enumerate()
    {
        let path = format!("p{i}/banner.jpg");
        let rec = s
            .upload(
                &format!("{path}?cache={policy}"),
                "image/jpeg",
                body.clone(),
            )
            .await;
        assert_eq!(rec["cache_control"], *policy);
        assert_eq!(rec["policy_source"], "asset");
        for method in [Method::GET, Method::HEAD] {
            let r = s
                .client
                .request(method.clone(), s.media(&path))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            assert_eq!(header(&r, "cache-control"), *policy);
            assert_eq!(header(&r, "content-type"), "image/jpeg");
            assert_eq!(header(&r, "content-length"), "4096");
            assert_eq!(header(&r, "accept-ranges"), "bytes");
            assert_eq!(header(&r, "etag"), format!("\"{sha}\""));
            assert_eq!(
                header(&r, "last-modified"),
                rec["last_modified"].as_str().unwrap()
            );
            assert_eq!(header(&r, "x-content-type-options"), "nosniff");
            assert!(httpdate::parse_http_date(header(&r, "last-modified")).is_ok());
            assert!(httpdate::parse_http_date(header(&r, "date")).is_ok());
            assert!(r.headers().get("location").is_none());
            let got = r.bytes().await.unwrap();
            if method == Method::GET {
                assert_eq!(got.as_ref(), body.as_slice());
            } else {
                assert!(got.is_empty());
            }
        }
    }
}

async fn folder_asset_and_default_resolution_on_folder_boundaries(backend: Backend) {
    let dir = Storage::new(backend).await;
    let s = TestServer::start_with(dir, |c| {
        c.cache.default = CachePolicy::MaxAge(600);
        c.cache
            .folders
            .insert("promo".into(), CachePolicy::MaxAge(60));
        c.cache
            .folders
            .insert("promo/x".into(), CachePolicy::NoStore);
    })
    .await;
    let img = || fixtures::jpeg(100, 1);
    for p in [
        "promo/a.jpg",
        "promo/x/b.jpg",
        "promo/xy/c.jpg",
        "promotions/a.jpg",
        "top.jpg",
    ] {
        s.upload(p, "image/jpeg", img()).await;
    }
    let expect = [
        ("promo/a.jpg", "max-age=60", "folder:promo"),
        ("promo/x/b.jpg", "no-store", "folder:promo/x"),
        ("promo/xy/c.jpg", "max-age=60", "folder:promo"),
        ("promotions/a.jpg", "max-age=600", "default"),
        ("top.jpg", "max-age=600", "default"),
    ];
    for (path, cc, source) in expect {
        let r = s.get(&s.media(path)).await;
        assert_eq!(header(&r, "cache-control"), cc, "{path}");
        let rec: Value = s.admin_json(Method::GET, &format!("/assets/{path}")).await;
        assert_eq!(rec["cache_control"], cc, "{path}");
        assert_eq!(rec["policy_source"], source, "{path}");
    }
    // An API rule for a deeper folder wins; an API rule shadows the config rule of its folder.
    assert_eq!(
        set_folder(&s, "promo/xy", "private").await.status(),
        StatusCode::CREATED
    );
    assert_eq!(
        set_folder(&s, "promo", "no-cache").await.status(),
        StatusCode::CREATED
    );
    assert_eq!(
        header(&s.get(&s.media("promo/xy/c.jpg")).await, "cache-control"),
        "private"
    );
    assert_eq!(
        header(&s.get(&s.media("promo/a.jpg")).await, "cache-control"),
        "no-cache"
    );
    // An asset override beats every folder rule, and clearing it falls back.
    let r = s
        .admin(Method::PATCH, "/assets/promo/a.jpg")
        .json(&json!({"cache_control": "max-age=5"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let rec: Value = r.json().await.unwrap();
    assert_eq!(
        (rec["cache_control"].as_str(), rec["policy_source"].as_str()),
        (Some("max-age=5"), Some("asset"))
    );
    assert_eq!(
        header(&s.get(&s.media("promo/a.jpg")).await, "cache-control"),
        "max-age=5"
    );
    let r = s
        .admin(Method::PATCH, "/assets/promo/a.jpg")
        .json(&json!({"cache_control": null}))
        .send()
        .await
        .unwrap();
    let rec: Value = r.json().await.unwrap();
    assert_eq!(rec["policy_source"], "folder:promo");
    assert_eq!(
        header(&s.get(&s.media("promo/a.jpg")).await, "cache-control"),
        "no-cache"
    );
    // Policy changes do not touch content validators.
    let served = s.get(&s.media("promo/a.jpg")).await;
    assert_eq!(
        header(&served, "last-modified"),
        rec["last_modified"].as_str().unwrap()
    );
    assert_eq!(header(&served, "etag"), rec["etag"].as_str().unwrap());

    let list: Value = s.admin_json(Method::GET, "/policies").await;
    assert_eq!(list["default"]["cache_control"], "max-age=600");
    let folders = list["folders"].as_array().unwrap();
    let promo = folders.iter().find(|r| r["folder"] == "promo").unwrap();
    assert_eq!(promo["source"], "api");
    assert_eq!(promo["cache_control"], "no-cache");
    assert_eq!(promo["shadows_config"], "max-age=60");
    let px = folders.iter().find(|r| r["folder"] == "promo/x").unwrap();
    assert_eq!(px["source"], "config");

    // Removing the API rule brings the config rule back; a config rule cannot be removed.
    let r = s
        .admin(Method::DELETE, "/policies/promo")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        header(&s.get(&s.media("promo/a.jpg")).await, "cache-control"),
        "max-age=60"
    );
    let r = s
        .admin(Method::DELETE, "/policies/promo")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "config_rule");
    let r = s
        .admin(Method::DELETE, "/policies/nothing-here")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

async fn invalid_policies_are_refused_with_the_accepted_forms(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    s.upload("a.jpg", "image/jpeg", fixtures::jpeg(100, 1))
        .await;
    for bad in [
        "public",
        "max-age=-1",
        "max-age=abc",
        "no-cache, max-age=5",
        "",
    ] {
        let r = set_folder(&s, "promo", bad).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"]["code"], "invalid_policy");
        assert!(
            e["error"]["message"]
                .as_str()
                .unwrap()
                .contains("max-age=N")
        );
        let r = s
            .admin(Method::PATCH, "/assets/a.jpg")
            .json(&json!({"cache_control": bad}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    }
    for bad_body in [
        json!({}),
        json!({"cache_control": 5}),
        json!({"cache": "no-store"}),
        json!("no-store"),
    ] {
        let r = s
            .admin(Method::PUT, "/policies/promo")
            .json(&bad_body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad_body}");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"]["code"], "invalid_json");
    }
    let r = s
        .admin(Method::PUT, "/policies/promo")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = s
        .admin(Method::PUT, "/policies/..%2fetc")
        .json(&json!({"cache_control": "no-store"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // The largest max-age (a year and far more) is accepted.
    assert_eq!(
        set_folder(&s, "year", "max-age=31536000").await.status(),
        StatusCode::CREATED
    );
    assert_eq!(
        set_folder(&s, "year", "max-age=63072000").await.status(),
        StatusCode::OK
    );
    let r = s.admin(Method::GET, "/policies").send().await.unwrap();
    let list: Value = r.json().await.unwrap();
    assert!(
        list["folders"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["folder"] != "promo")
    );
}

async fn runtime_policies_and_validators_survive_a_restart(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let rec = s
        .upload("promo/a.jpg", "image/jpeg", fixtures::jpeg(1000, 3))
        .await;
    set_folder(&s, "promo", "no-cache").await;
    let before = s.get(&s.media("promo/a.jpg")).await;
    let (etag, lm) = (
        header(&before, "etag").to_owned(),
        header(&before, "last-modified").to_owned(),
    );
    let s = s.restart().await;
    let after = s.get(&s.media("promo/a.jpg")).await;
    assert_eq!(header(&after, "cache-control"), "no-cache");
    assert_eq!(header(&after, "etag"), etag);
    assert_eq!(header(&after, "last-modified"), lm);
    assert_eq!(lm, rec["last_modified"].as_str().unwrap());
    // The same bytes under another path and on another server get the same ETag.
    let other = s
        .upload("elsewhere/b.jpg", "image/jpeg", fixtures::jpeg(1000, 3))
        .await;
    assert_eq!(other["etag"], etag.as_str());
}

async fn last_modified_strictly_increases_across_rapid_replacements_and_restores(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let a = fixtures::jpeg(500, 1);
    let b = fixtures::jpeg(500, 2);
    let mut seen = Vec::new();
    let mut links = Vec::new();
    for body in [&a, &b, &a, &a, &b, &a] {
        let rec = s.upload("x.jpg", "image/jpeg", body.clone()).await;
        let served = s.get(&s.media("x.jpg")).await;
        let lm = httpdate::parse_http_date(header(&served, "last-modified")).unwrap();
        assert_eq!(
            header(&served, "last-modified"),
            rec["last_modified"].as_str().unwrap()
        );
        seen.push(lm);
        links.push(rec["link"].as_str().unwrap().to_owned());
    }
    // Every change moves it forward; the same bytes uploaded over themselves change nothing.
    let bodies = [&a, &b, &a, &a, &b, &a];
    for (i, pair) in seen.windows(2).enumerate() {
        if bodies[i] == bodies[i + 1] {
            assert_eq!(pair[1], pair[0], "the same bytes again: {seen:?}");
            assert_eq!(links[i], links[i + 1]);
        } else {
            assert!(
                pair[1] > pair[0],
                "Last-Modified must move forward: {seen:?}"
            );
        }
    }
    // The link follows the content: different bytes, different link; old links still answer.
    assert_ne!(links[0], links[1]);
    for link in &links {
        assert_eq!(s.get(link).await.status(), StatusCode::OK);
    }
    // Deleting and uploading again within the same second still moves forward.
    let last = *seen.last().unwrap();
    assert_eq!(
        s.admin(Method::DELETE, "/assets/x.jpg")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.get(&s.media("x.jpg")).await.status(),
        StatusCode::NOT_FOUND
    );
    s.upload("x.jpg", "image/jpeg", a.clone()).await;
    let lm = httpdate::parse_http_date(header(&s.get(&s.media("x.jpg")).await, "last-modified"))
        .unwrap();
    assert!(lm > last);
}

/// A 1000-byte asset with known validators, for the conditional and range cases.
async fn conditional_fixture(backend: Backend) -> (TestServer, Vec<u8>, String, String) {
    let s = TestServer::start_on(backend).await;
    let body = fixtures::pdf(1000, 9);
    let rec = s
        .upload("doc.pdf?cache=max-age=60", "application/pdf", body.clone())
        .await;
    let etag = rec["etag"].as_str().unwrap().to_owned();
    let lm = rec["last_modified"].as_str().unwrap().to_owned();
    (s, body, etag, lm)
}

fn shift(date: &str, secs: i64) -> String {
    let t = httpdate::parse_http_date(date).unwrap();
    let t = if secs >= 0 {
        t + std::time::Duration::from_secs(secs as u64)
    } else {
        t - std::time::Duration::from_secs((-secs) as u64)
    };
    httpdate::fmt_http_date(t)
}

async fn conditional_requests_follow_rfc_9110_order(backend: Backend) {
    let (s, body, etag, lm) = conditional_fixture(backend).await;
    let weak = format!("W/{etag}");
    let list = format!("\"a\", {etag}, \"b\"");
    let later = shift(&lm, 10);
    let earlier = shift(&lm, -10);
    // (headers, expected status)
    let cases: Vec<(Vec<(&str, &str)>, u16)> = vec![
        (vec![], 200),
        // If-Match: strong comparison.
        (vec![("if-match", &etag)], 200),
        (vec![("if-match", "*")], 200),
        (vec![("if-match", "\"other\"")], 412),
        (vec![("if-match", &weak)], 412),
        (vec![("if-match", "garbage")], 412),
        // If-Unmodified-Since.
        (vec![("if-unmodified-since", &earlier)], 412),
        (vec![("if-unmodified-since", &lm)], 200),
        (vec![("if-unmodified-since", "not a date")], 200),
        // If-Match present: If-Unmodified-Since is not evaluated.
        (
            vec![("if-match", &etag), ("if-unmodified-since", &earlier)],
            200,
        ),
        // If-None-Match: weak comparison, lists, *.
        (vec![("if-none-match", &etag)], 304),
        (vec![("if-none-match", &weak)], 304),
        (vec![("if-none-match", "*")], 304),
        (vec![("if-none-match", &list)], 304),
        (vec![("if-none-match", "\"a\", \"b\"")], 200),
        // If-Modified-Since only without If-None-Match; ignored on an invalid date.
        (vec![("if-modified-since", &lm)], 304),
        (vec![("if-modified-since", &later)], 304),
        (vec![("if-modified-since", &earlier)], 200),
        (vec![("if-modified-since", "yesterday")], 200),
        (
            vec![
                ("if-none-match", "\"other\""),
                ("if-modified-since", &later),
            ],
            200,
        ),
        // 412 wins over 304.
        (
            vec![("if-match", "\"other\""), ("if-none-match", &etag)],
            412,
        ),
        // 304 wins over a range.
        (vec![("if-none-match", &etag), ("range", "bytes=0-9")], 304),
    ];
    for method in [Method::GET, Method::HEAD] {
        for (headers, want) in &cases {
            let mut req = s.client.request(method.clone(), s.media("doc.pdf"));
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            let r = req.send().await.unwrap();
            assert_eq!(r.status().as_u16(), *want, "{method} {headers:?}");
            match want {
                304 => {
                    // A 304 carries the same caching headers as the 200.
                    assert_eq!(header(&r, "cache-control"), "max-age=60");
                    assert_eq!(header(&r, "etag"), etag);
                    assert_eq!(header(&r, "last-modified"), lm);
                    // No `Content-Length: 0`, which a cache could take as the asset's length.
                    assert!(r.headers().get("content-length").is_none(), "{headers:?}");
                    assert!(r.bytes().await.unwrap().is_empty());
                }
                200 => {
                    assert_eq!(header(&r, "etag"), etag);
                    let got = r.bytes().await.unwrap();
                    if method == Method::GET {
                        assert_eq!(got.as_ref(), body.as_slice());
                    }
                }
                412 => {
                    if method == Method::GET {
                        let e: Value = r.json().await.unwrap();
                        assert_eq!(e["error"]["code"], "precondition_failed");
                    }
                }
                _ => unreachable!(),
            }
        }
    }
}

/// What a range request must get.
enum Expect {
    /// 206 with these inclusive bounds.
    Partial(usize, usize),
    /// 200 with the whole body.
    Whole,
    /// 416.
    Unsatisfiable,
}

async fn byte_ranges_follow_rfc_9110(backend: Backend) {
    use Expect::*;
    let (s, body, etag, lm) = conditional_fixture(backend).await;
    let weak = format!("W/{etag}");
    let other_date = shift(&lm, -10);
    let cases: Vec<(&str, Option<&str>, Expect)> = vec![
        ("bytes=0-99", None, Partial(0, 99)),
        ("bytes=100-", None, Partial(100, 999)),
        ("bytes=-100", None, Partial(900, 999)),
        ("bytes=990-5000", None, Partial(990, 999)),
        ("bytes=999-999", None, Partial(999, 999)),
        ("bytes=-5000", None, Partial(0, 999)),
        ("BYTES=0-0", None, Partial(0, 0)),
        ("bytes=1000-", None, Unsatisfiable),
        ("bytes=5000-6000", None, Unsatisfiable),
        ("bytes=-0", None, Unsatisfiable),
        // Multi-range: the whole body with 200.
        ("bytes=0-1,5-6", None, Whole),
        // Malformed: ignored.
        ("bytes=5-2", None, Whole),
        ("bytes=abc", None, Whole),
        ("items=0-5", None, Whole),
        ("bytes 0-5", None, Whole),
        ("bytes=", None, Whole),
        // If-Range: strong ETag match or exact date applies the range; otherwise 200.
        ("bytes=0-9", Some(&etag), Partial(0, 9)),
        ("bytes=0-9", Some(&weak), Whole),
        ("bytes=0-9", Some("\"other\""), Whole),
        ("bytes=0-9", Some(&lm), Partial(0, 9)),
        ("bytes=0-9", Some(&other_date), Whole),
        ("bytes=0-9", Some("nonsense"), Whole),
    ];
    for (range, if_range, want) in cases {
        let mut req = s.client.get(s.media("doc.pdf")).header("range", range);
        if let Some(v) = if_range {
            req = req.header("if-range", v);
        }
        let r = req.send().await.unwrap();
        let ctx = format!("{range} / {if_range:?}");
        match want {
            Partial(start, end) => {
                assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT, "{ctx}");
                assert_eq!(
                    header(&r, "content-range"),
                    format!("bytes {start}-{end}/1000"),
                    "{ctx}"
                );
                assert_eq!(
                    header(&r, "content-length"),
                    (end - start + 1).to_string(),
                    "{ctx}"
                );
                assert_eq!(header(&r, "cache-control"), "max-age=60");
                assert_eq!(header(&r, "etag"), etag);
                assert_eq!(header(&r, "content-type"), "application/pdf");
                assert_eq!(
                    r.bytes().await.unwrap().as_ref(),
                    &body[start..=end],
                    "{ctx}"
                );
            }
            Whole => {
                assert_eq!(r.status(), StatusCode::OK, "{ctx}");
                assert!(r.headers().get("content-range").is_none());
                assert_eq!(r.bytes().await.unwrap().as_ref(), body.as_slice(), "{ctx}");
            }
            Unsatisfiable => {
                assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE, "{ctx}");
                assert_eq!(header(&r, "content-range"), "bytes */1000", "{ctx}");
            }
        }
    }
    // HEAD: preconditions as GET, but Range is only defined for GET (RFC 9110 §14.2).
    let r = s
        .client
        .head(s.media("doc.pdf"))
        .header("range", "bytes=0-9")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "content-length"), "1000");
}

async fn head_has_exactly_the_headers_of_get(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    s.upload(
        "v.mp4?cache=no-cache",
        "video/mp4",
        fixtures::mp4(70_000, 2),
    )
    .await;
    let get = s.get(&s.media("v.mp4")).await;
    let head = s.client.head(s.media("v.mp4")).send().await.unwrap();
    let strip = |r: &reqwest::Response| {
        let mut v: Vec<(String, String)> = r
            .headers()
            .iter()
            // Both are per request: the time, and the request ID (tests/visibility.rs).
            .filter(|(k, _)| k.as_str() != "date" && k.as_str() != "x-request-id")
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
            .collect();
        v.sort();
        v
    };
    assert_eq!(strip(&get), strip(&head));
    assert_eq!(get.bytes().await.unwrap().len(), 70_000);
}

async fn unknown_paths_methods_and_bad_paths(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    s.upload("a.jpg", "image/jpeg", fixtures::jpeg(100, 1))
        .await;
    let r = s.get(&s.media("missing.jpg")).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "not_found");
    for method in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
        let r = s
            .client
            .request(method.clone(), s.media("a.jpg"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert_eq!(header(&r, "allow"), "GET,HEAD");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"]["code"], "method_not_allowed");
    }
    for bad in [
        "%2e%2e/a.jpg",
        "x/%2E%2E/%2E%2E/a.jpg",
        "..%2fa.jpg",
        "a%5c..%5cb",
        "%2fetc%2fpasswd",
        "a%00.jpg",
        "%252e%252e/a.jpg",
    ] {
        let (status, text) = s.raw("GET", &format!("/media/{bad}"), "").await;
        assert_eq!(status, 400, "{bad}: {text}");
        assert!(text.contains("invalid_path"), "{text}");
    }
    assert_eq!(
        s.get(&s.url("/nothing")).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(s.get(&s.url("/healthz")).await.status(), StatusCode::OK);
    assert_eq!(s.get(&s.url("/readyz")).await.status(), StatusCode::OK);
    // Query strings (the link's version) do not change what is served.
    assert_eq!(
        s.get(&s.media("a.jpg?v=anything")).await.status(),
        StatusCode::OK
    );
}

async fn readyz_reports_storage_down_while_healthz_stays_up(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    assert_eq!(s.get(&s.url("/readyz")).await.status(), StatusCode::OK);
    match backend {
        Backend::Local => std::fs::remove_dir_all(s.root()).unwrap(),
        Backend::S3 => s.storage.s3().stop().await,
    }
    assert_eq!(
        s.get(&s.url("/readyz")).await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(s.get(&s.url("/healthz")).await.status(), StatusCode::OK);
}

/// Bytes come from two places: memory for blobs up to `blob_cache_object_kb`, storage (read in
/// large chunks on disk) for the rest. Both must serve every range byte for byte, including
/// ranges that cross the local reader's 256 KiB chunk boundaries and the cache limit itself.
async fn bytes_are_exact_from_memory_and_from_storage(backend: Backend) {
    let s = TestServer::start_with(Storage::new(backend).await, |c| {
        c.storage.blob_cache_object_kb = 64;
    })
    .await;
    let small = fixtures::mp4(64 * 1024, 11); // exactly the limit: kept in memory
    let large = fixtures::mp4(3_000_000, 12); // streamed
    s.upload("bytes/small.mp4", "video/mp4", small.clone())
        .await;
    s.upload("bytes/large.mp4", "video/mp4", large.clone())
        .await;
    for (path, body) in [("bytes/small.mp4", &small), ("bytes/large.mp4", &large)] {
        let len = body.len();
        // Twice: the first read fills the cache, the second is served from it.
        for _ in 0..2 {
            let r = s.get(&s.media(path)).await;
            assert_eq!(header(&r, "content-length"), len.to_string());
            let got = r.bytes().await.unwrap();
            assert!(
                got.as_ref() == body.as_slice(),
                "{path}: whole body differs"
            );
            for (range, start, end) in [
                ("bytes=0-0".to_owned(), 0, 0),
                ("bytes=262143-262144".to_owned(), 262_143, 262_144),
                ("bytes=1000-".to_owned(), 1000, len - 1),
                (
                    "bytes=-70000".to_owned(),
                    len.saturating_sub(70_000),
                    len - 1,
                ),
                (format!("bytes={}-{}", len - 1, len + 500), len - 1, len - 1),
            ] {
                if start >= len {
                    continue;
                }
                let r = s
                    .client
                    .get(s.media(path))
                    .header("range", &range)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT, "{path} {range}");
                assert_eq!(
                    header(&r, "content-range"),
                    format!("bytes {start}-{end}/{len}"),
                    "{path} {range}"
                );
                let got = r.bytes().await.unwrap();
                assert!(
                    got.as_ref() == &body[start..=end],
                    "{path} {range}: bytes differ"
                );
            }
        }
    }
}

on_both_backends! {
    bytes_are_exact_from_memory_and_from_storage,
    each_policy_yields_its_exact_headers,
    folder_asset_and_default_resolution_on_folder_boundaries,
    invalid_policies_are_refused_with_the_accepted_forms,
    runtime_policies_and_validators_survive_a_restart,
    last_modified_strictly_increases_across_rapid_replacements_and_restores,
    conditional_requests_follow_rfc_9110_order,
    byte_ranges_follow_rfc_9110,
    head_has_exactly_the_headers_of_get,
    unknown_paths_methods_and_bad_paths,
    readyz_reports_storage_down_while_healthz_stays_up,
}
