//! The admin API over real HTTP: authentication, records and their ready-to-paste message,
//! listing with pagination, deletion, and the URLs handed back.

use crate::common;

use std::sync::Arc;

use common::graph::GraphServer;
use common::{Backend, Storage, TOKEN, TestServer, fixtures};
use media_origin::asset::path::{MAX_SEGMENT_LEN, stored_len, url_encode};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn every_admin_route_needs_the_bearer_token(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    s.upload("a.jpg", "image/jpeg", fixtures::jpeg(100, 1))
        .await;
    let routes = [
        (Method::GET, "/api/assets"),
        (Method::POST, "/api/assets"),
        (Method::GET, "/api/assets/a.jpg"),
        (Method::PUT, "/api/assets/b.jpg"),
        (Method::PATCH, "/api/assets/a.jpg"),
        (Method::DELETE, "/api/assets/a.jpg"),
        (Method::GET, "/api/policies"),
        (Method::PUT, "/api/policies/promo"),
        (Method::DELETE, "/api/policies/promo"),
    ];
    let bad_auth: [Option<String>; 6] = [
        None,
        Some("Bearer wrong-token".into()),
        Some(format!("Basic {TOKEN}")),
        Some("Bearer".into()),
        Some("Bearer ".into()),
        Some(format!("Bearer {TOKEN}x")),
    ];
    for (method, route) in &routes {
        for auth in &bad_auth {
            let mut req = s
                .client
                .request(method.clone(), s.url(route))
                .header("content-type", "image/jpeg")
                .body(fixtures::jpeg(100, 2));
            if let Some(a) = auth {
                req = req.header("authorization", a);
            }
            let r = req.send().await.unwrap();
            assert_eq!(
                r.status(),
                StatusCode::UNAUTHORIZED,
                "{method} {route} {auth:?}"
            );
            assert_eq!(
                r.headers()["www-authenticate"],
                "Bearer realm=\"media-origin\""
            );
            let e: Value = r.json().await.unwrap();
            assert_eq!(e["error"]["code"], "unauthorized");
            assert!(!e.to_string().contains(TOKEN));
        }
    }
    // Nothing changed: b.jpg was never stored and a.jpg still serves.
    assert_eq!(
        s.get(&s.media("b.jpg")).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(s.get(&s.media("a.jpg")).await.status(), StatusCode::OK);
    // The scheme is case-insensitive.
    let r = s
        .client
        .get(s.url("/api/assets/a.jpg"))
        .header("authorization", format!("bearer {TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

async fn without_a_configured_token_one_is_generated_into_the_token_file(backend: Backend) {
    let dir = Storage::new(backend).await;
    let s = TestServer::start_with(Arc::clone(&dir), |c| c.admin.token = None).await;
    let file = dir.dir.path().join(".admin-token");
    let token = std::fs::read_to_string(&file).unwrap();
    assert_eq!(token.len(), 64);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let anon = s.client.get(s.url("/api/assets")).send().await.unwrap();
    assert_eq!(anon.status(), StatusCode::UNAUTHORIZED);
    let ok = s
        .client
        .get(s.url("/api/assets"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    // A restart keeps the same token.
    s.stop().await;
    let _s = TestServer::start_with(Arc::clone(&dir), |c| c.admin.token = None).await;
    assert_eq!(std::fs::read_to_string(&file).unwrap(), token);
}

async fn records_carry_urls_links_and_a_ready_to_paste_message(backend: Backend) {
    let dir = Storage::new(backend).await;
    let s = TestServer::start_with(dir, |c| {
        c.server.public_base_url = Some("https://media.example.com".into());
    })
    .await;
    let body = fixtures::pdf(2000, 5);
    let r = s
        .put("legal/Terms 2026.pdf", "application/pdf", body.clone())
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let rec: Value = r.json().await.unwrap();
    let sha = rec["sha256"].as_str().unwrap();
    assert_eq!(sha.len(), 64);
    assert_eq!(rec["path"], "legal/Terms 2026.pdf");
    assert_eq!(
        rec["url"],
        "https://media.example.com/media/legal/Terms%202026.pdf"
    );
    assert_eq!(
        rec["link"],
        format!(
            "https://media.example.com/media/legal/Terms%202026.pdf?v={}-{}",
            &sha[..12],
            httpdate::parse_http_date(rec["last_modified"].as_str().unwrap())
                .unwrap()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs()
        )
    );
    assert_eq!(rec["kind"], "document");
    assert_eq!(rec["content_type"], "application/pdf");
    assert_eq!(rec["size"], 2000);
    assert_eq!(rec["etag"], format!("\"{sha}\""));
    assert_eq!(rec["cache_control"], "max-age=86400");
    assert_eq!(rec["policy_source"], "default");
    assert_eq!(
        rec["message"],
        json!({"type": "document", "document": {"link": rec["link"], "filename": "Terms 2026.pdf"}})
    );
    // The encoded URL resolves to the asset, with exactly the headers the record lists.
    let r = s.get(&s.media("legal/Terms%202026.pdf")).await;
    let listed: Vec<(String, String)> = rec["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["name"].as_str().unwrap().into(),
                h["value"].as_str().unwrap().into(),
            )
        })
        .collect();
    let served: Vec<(String, String)> = r
        .headers()
        .iter()
        .filter(|(name, _)| !["x-request-id", "date"].contains(&name.as_str()))
        .map(|(n, v)| (n.as_str().into(), v.to_str().unwrap().into()))
        .collect();
    assert_eq!(listed, served);
    assert_eq!(listed[0], ("content-type".into(), "application/pdf".into()));
    assert!(listed.contains(&("cache-control".into(), "max-age=86400".into())));
    assert_eq!(r.bytes().await.unwrap().as_ref(), body.as_slice());

    let img: Value = s
        .upload("promo/banner.png", "image/png", fixtures::png(500, 1))
        .await;
    assert_eq!(
        img["message"],
        json!({"type": "image", "image": {"link": img["link"]}})
    );
    let sticker = s
        .upload("s/hi.webp", "image/webp", fixtures::webp(2000, 1))
        .await;
    assert_eq!(sticker["kind"], "sticker");
    assert_eq!(sticker["message"]["type"], "sticker");

    // GET returns the same record; replacing changes sha, link and Last-Modified.
    let got: Value = s.admin_json(Method::GET, "/assets/promo/banner.png").await;
    assert_eq!(got, img);
    let r = s
        .put("promo/banner.png", "image/png", fixtures::png(500, 2))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let replaced: Value = r.json().await.unwrap();
    assert_ne!(replaced["link"], img["link"]);
    assert_ne!(replaced["sha256"], img["sha256"]);
    assert_eq!(replaced["url"], img["url"]);
}

async fn listing_is_paginated_and_filtered_by_prefix(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let mut expected = Vec::new();
    for i in 0..7 {
        let p = format!("promo/{i:02}.jpg");
        s.upload(&p, "image/jpeg", fixtures::jpeg(100, i)).await;
        expected.push(p);
    }
    s.upload("promo/deep/x.jpg", "image/jpeg", fixtures::jpeg(100, 50))
        .await;
    expected.push("promo/deep/x.jpg".into());
    s.upload("promotions/no.jpg", "image/jpeg", fixtures::jpeg(100, 51))
        .await;
    s.upload("other.jpg", "image/jpeg", fixtures::jpeg(100, 52))
        .await;
    s.upload("promo/gone.jpg", "image/jpeg", fixtures::jpeg(100, 53))
        .await;
    s.admin(Method::DELETE, "/assets/promo/gone.jpg")
        .send()
        .await
        .unwrap();
    expected.sort();

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut url = "/assets?prefix=promo/&limit=3".to_owned();
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={}", urlencode(c)));
        }
        let page: Value = s.admin_json(Method::GET, &url).await;
        pages += 1;
        for a in page["assets"].as_array().unwrap() {
            assert!(a["url"].as_str().unwrap().contains("/media/promo/"));
            seen.push(a["path"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
        assert!(pages < 10);
    }
    assert_eq!(seen, expected);
    assert!(pages >= 3);

    let all: Value = s.admin_json(Method::GET, "/assets").await;
    assert_eq!(all["assets"].as_array().unwrap().len(), 10);
    assert!(all["next_cursor"].is_null());
    for bad in [
        "/assets?limit=0",
        "/assets?limit=5000",
        "/assets?prefix=../x",
        "/assets?bogus=1",
    ] {
        let r = s.admin(Method::GET, bad).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
}

async fn a_folder_lists_one_level_its_subfolders_and_pages_of_its_own_assets(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    for i in 0..5 {
        s.upload(
            &format!("promo/{i}.jpg"),
            "image/jpeg",
            fixtures::jpeg(100, i),
        )
        .await;
    }
    for p in [
        "promo/2026/a.jpg",
        "promo/2026/deep/b.jpg",
        "promo/Été [1]/c.jpg",
        "promotions/d.jpg",
        "top.jpg",
    ] {
        s.upload(p, "image/jpeg", fixtures::jpeg(100, 9)).await;
    }
    s.upload("promo/gone.jpg", "image/jpeg", fixtures::jpeg(100, 10))
        .await;
    s.admin(Method::DELETE, "/assets/promo/gone.jpg")
        .send()
        .await
        .unwrap();

    // The root: its folders and its own assets only.
    let root: Value = s.admin_json(Method::GET, "/assets?folder=").await;
    assert_eq!(root["folder"], "");
    assert_eq!(root["folders"], json!(["promo", "promotions"]));
    let paths = |page: &Value| -> Vec<String> {
        page["assets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["path"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(paths(&root), ["top.jpg"]);

    // A folder, page by page: every page carries all its subfolders; deleted assets are gone.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = "/assets?folder=/promo/&limit=2".to_owned();
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={}", urlencode(c)));
        }
        let page: Value = s.admin_json(Method::GET, &url).await;
        assert_eq!(page["folder"], "promo");
        assert_eq!(page["folders"], json!(["promo/2026", "promo/Été [1]"]));
        seen.extend(paths(&page));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
        assert!(seen.len() < 20);
    }
    assert_eq!(
        seen,
        [
            "promo/0.jpg",
            "promo/1.jpg",
            "promo/2.jpg",
            "promo/3.jpg",
            "promo/4.jpg"
        ]
    );
    let deeper: Value = s.admin_json(Method::GET, "/assets?folder=promo/2026").await;
    assert_eq!(deeper["folders"], json!(["promo/2026/deep"]));
    assert_eq!(paths(&deeper), ["promo/2026/a.jpg"]);
    let unicode: Value = s
        .admin_json(Method::GET, "/assets?folder=promo/%C3%89t%C3%A9%20%5B1%5D")
        .await;
    assert_eq!(paths(&unicode), ["promo/Été [1]/c.jpg"]);
    // A folder with nothing in it is an empty level, not an error.
    let empty: Value = s
        .admin_json(Method::GET, "/assets?folder=nothing/here")
        .await;
    assert_eq!(empty["folders"], json!([]));
    assert_eq!(empty["assets"], json!([]));

    for bad in [
        "/assets?folder=../x",
        "/assets?folder=x.json",
        "/assets?folder=promo&prefix=promo/",
    ] {
        let r = s.admin(Method::GET, bad).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn delete_makes_the_public_path_404_and_missing_assets_404(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    s.upload("a.jpg", "image/jpeg", fixtures::jpeg(100, 1))
        .await;
    let r = s
        .admin(Method::DELETE, "/assets/a.jpg")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    // RFC 9110 §8.6: no Content-Length on a 204.
    assert!(r.headers().get("content-length").is_none());
    assert_eq!(
        s.get(&s.media("a.jpg")).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.client
            .head(s.media("a.jpg"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    for (method, route) in [
        (Method::DELETE, "/assets/a.jpg"),
        (Method::GET, "/assets/a.jpg"),
        (Method::GET, "/assets/never.jpg"),
    ] {
        let r = s.admin(method, route).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{route}");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"]["code"], "not_found");
    }
    let r = s
        .admin(Method::PATCH, "/assets/a.jpg")
        .json(&json!({"cache_control": "no-store"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // After a restart it is still gone, and the path can be used again.
    let s = s.restart().await;
    assert_eq!(
        s.get(&s.media("a.jpg")).await.status(),
        StatusCode::NOT_FOUND
    );
    let r = s.put("a.jpg", "image/jpeg", fixtures::jpeg(100, 2)).await;
    assert_eq!(r.status(), StatusCode::CREATED);
}

async fn unknown_admin_methods_answer_405_with_allow(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let r = s.admin(Method::DELETE, "/assets").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    let allow = r.headers()["allow"].to_str().unwrap().to_owned();
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "method_not_allowed");
    let r = s
        .admin(Method::POST, "/policies/promo")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
}

/// Segments at the limit of `MAX_SEGMENT_LEN` (as stored: `é` is stored as `%C3%A9`, 6 bytes):
/// ASCII, accented, as a file and as a folder.
fn longest_segment_paths() -> Vec<String> {
    let ascii = format!("{}.jpg", "a".repeat(MAX_SEGMENT_LEN - 4));
    let accented = format!("{}aaaa.jpg", "é".repeat(32)); // 32 × 6 + 8
    let folder = format!("{}/x.jpg", "b".repeat(MAX_SEGMENT_LEN));
    for seg in [&ascii, &accented] {
        assert_eq!(stored_len(seg), MAX_SEGMENT_LEN, "{seg}");
    }
    vec![ascii, accented, folder]
}

/// The longest segment the path gate accepts can be stored: on disk the record is
/// `<segment>.json`, written first as `<segment>.json#<n>`, within the 255-byte name limit.
/// One byte more is a 400 `invalid_path` (not a 503 with Retry-After that a client would retry
/// forever), and nothing is stored.
async fn the_longest_accepted_segment_is_stored_and_one_byte_more_is_400(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let jpeg = fixtures::jpeg(300, 9);
    // One byte more, in the file name or in the folder.
    let over: Vec<String> = longest_segment_paths()
        .iter()
        .map(|p| match p.split_once('/') {
            Some((folder, name)) => format!("{folder}b/{name}"),
            None => format!("a{p}"),
        })
        .collect();
    let before = s.files();
    if backend == Backend::S3 {
        s.storage.s3().clear_requests();
    }
    for path in &over {
        let url = url_encode(path);
        let r = s.put(&url, "image/jpeg", jpeg.clone()).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{path}");
        assert!(r.headers().get("retry-after").is_none());
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"]["code"], "invalid_path", "{e}");
        assert!(
            e["error"]["message"]
                .as_str()
                .unwrap()
                .contains(&format!("longer than {MAX_SEGMENT_LEN} bytes")),
            "{e}"
        );
        let form = reqwest::multipart::Form::new()
            .text("path", path.clone())
            .part(
                "file",
                reqwest::multipart::Part::bytes(jpeg.clone())
                    .file_name("x.jpg")
                    .mime_str("image/jpeg")
                    .unwrap(),
            );
        let r = s
            .admin(Method::POST, "/assets")
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "form {path}");
        let r = s.get(&s.media(&url)).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "GET {path}");
        for method in [Method::GET, Method::DELETE] {
            let r = s
                .admin(method.clone(), &format!("/assets/{url}"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{method} {path}");
        }
    }
    assert_eq!(s.files(), before, "a refused path stored something");
    if backend == Backend::S3 {
        let asked: Vec<_> = s
            .storage
            .s3()
            .requests()
            .into_iter()
            .filter(|r| r.target.contains("/assets/"))
            .collect();
        assert!(asked.is_empty(), "S3 was asked: {asked:?}");
    }

    // The longest accepted segments store and serve. Not on the S3 test server: s3s-fs keeps
    // each object's metadata in a file named after the base64 of the whole key, so it cannot
    // hold a key over about 160 bytes (it answers 500), a limit of the test server alone (S3
    // takes keys up to 1024 bytes, with no limit per segment; paths are held to 900 bytes as
    // stored for that).
    if backend == Backend::S3 {
        return;
    }
    for path in longest_segment_paths() {
        let url = url_encode(&path);
        let r = s.put(&url, "image/jpeg", jpeg.clone()).await;
        assert_eq!(r.status(), StatusCode::CREATED, "{path}");
        let rec: Value = r.json().await.unwrap();
        assert_eq!(rec["path"], path.as_str());
        let r = s.get(&s.media(&url)).await;
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert_eq!(r.bytes().await.unwrap().as_ref(), jpeg.as_slice());
        let got: Value = s.admin_json(Method::GET, &format!("/assets/{url}")).await;
        assert_eq!(got["path"], path.as_str(), "{got}");
        // Replacing it writes the record again.
        let r = s.put(&url, "image/jpeg", fixtures::jpeg(300, 10)).await;
        assert_eq!(r.status(), StatusCode::OK, "{path}");
    }
    let all: Value = s.admin_json(Method::GET, "/assets").await;
    assert_eq!(all["assets"].as_array().unwrap().len(), 3, "{all}");
    // After a restart too (the records are read back from their files).
    let s = s.restart().await;
    for path in longest_segment_paths() {
        let r = s.get(&s.media(&url_encode(&path))).await;
        assert_eq!(r.status(), StatusCode::OK, "{path}");
    }
}

/// Policy and access folders are decoded once from the URL, then held to the folder rules of
/// the form's `folder` field: no segment may end in `.json` (no asset could live below it),
/// the last one included.
async fn policy_and_access_folders_follow_the_folder_rules(backend: Backend) {
    let dir = Storage::new(backend).await;
    let s = TestServer::start_with(dir, |c| {
        c.signing.keys = vec![media_origin::config::Secret::new(
            "k1:first-signing-secret-0123456789",
        )];
    })
    .await;
    let before = s.files();
    let refused = [
        "x.json",
        "x.json/",
        "promo/x.json",
        "promo/x%2Ejson",
        "x.json/a",
        "promo/a%5Cb",
        "a%25b",
        "a%3Ab",
        "%c0%ae",
    ];
    for folder in refused {
        for (method, route, body) in [
            (
                Method::PUT,
                "policies",
                Some(json!({"cache_control": "no-cache"})),
            ),
            (Method::DELETE, "policies", None),
            (Method::PUT, "access", Some(json!({"signed": true}))),
            (Method::PUT, "access", Some(json!({"signed": false}))),
            (Method::DELETE, "access", None),
        ] {
            let mut req = s.admin(method.clone(), &format!("/{route}/{folder}"));
            if let Some(body) = &body {
                req = req.json(body);
            }
            let r = req.send().await.unwrap();
            let what = format!("{method} /api/{route}/{folder} {body:?}");
            assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{what}");
            let e: Value = r.json().await.unwrap();
            assert_eq!(e["error"]["code"], "invalid_path", "{what}: {e}");
        }
    }
    assert_eq!(s.files(), before, "a refused folder stored something");
    let policies: Value = s.admin_json(Method::GET, "/policies").await;
    assert_eq!(policies["folders"], json!([]), "{policies}");
    let access: Value = s.admin_json(Method::GET, "/access").await;
    assert_eq!(access["signed_folders"], json!([]), "{access}");

    // What the rules take: surrounding slashes (encoded or not) dropped, `.json` inside a name.
    for (raw, folder) in [
        ("promo.jsonx", "promo.jsonx"),
        ("%2Fpromo%2F", "promo"),
        ("caf%C3%A9/x.json.d", "café/x.json.d"),
    ] {
        let r = s
            .admin(Method::PUT, &format!("/policies/{raw}"))
            .json(&json!({"cache_control": "no-cache"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED, "{raw}");
        let rule: Value = r.json().await.unwrap();
        assert_eq!(rule["folder"], folder, "{rule}");
        let r = s
            .admin(Method::PUT, &format!("/access/{raw}"))
            .json(&json!({"signed": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED, "{raw}");
        let rule: Value = r.json().await.unwrap();
        assert_eq!(rule, json!({"folder": folder, "signed": true}));
    }
}

/// Ogg Opus (mono, the only Ogg stored) is the one type WhatsApp sends as a voice note: its
/// record also carries `message_voice` (and `message_voice_by_id` with a valid media ID), and
/// over 512 KB (512,000 bytes) a warning that WhatsApp shows no play icon. Other audio: neither.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ogg_opus_records_offer_the_voice_note_and_warn_over_512_kb() {
    let g = GraphServer::start_default().await;
    let s = TestServer::start_with(Storage::new(Backend::Local).await, |c| {
        g.configure(c);
        c.server.public_base_url = Some("https://media.example.com".into());
    })
    .await;
    let upload = |path: &'static str, content_type: &'static str, body: Vec<u8>| {
        let s = &s;
        async move {
            let r = s
                .admin(Method::PUT, &format!("/assets/{path}?whatsapp=true"))
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::CREATED, "{path}");
            let rec: Value = r.json().await.unwrap();
            let id = rec["whatsapp_upload"]["media_id"]
                .as_str()
                .unwrap_or_else(|| panic!("no media ID: {rec}"))
                .to_owned();
            (rec, id)
        }
    };

    // At the limit (512,000 bytes), declared as plain audio/ogg: a voice note with its play
    // icon, by link and by ID, and no warning.
    let (rec, id) = upload(
        "voice/hello.ogg",
        "audio/ogg",
        fixtures::ogg_opus(512_000, 1),
    )
    .await;
    let link = rec["link"].as_str().unwrap().to_owned();
    assert!(
        link.starts_with("https://media.example.com/media/voice/hello.ogg?v="),
        "{link}"
    );
    assert_eq!(rec["content_type"], "audio/ogg; codecs=opus");
    assert_eq!(
        rec["message"],
        json!({"type": "audio", "audio": {"link": link}})
    );
    assert_eq!(
        rec["message_voice"],
        json!({"type": "audio", "audio": {"link": link, "voice": true}})
    );
    assert_eq!(
        rec["message_by_id"],
        json!({"type": "audio", "audio": {"id": id}})
    );
    assert_eq!(
        rec["message_voice_by_id"],
        json!({"type": "audio", "audio": {"id": id, "voice": true}})
    );
    assert_eq!(rec["warnings"], json!([]));
    // POST /api/whatsapp/media answers the voice note by ID beside its `message`.
    let r = s
        .admin(Method::POST, "/whatsapp/media")
        .json(&json!({"path": "voice/hello.ogg"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let got: Value = r.json().await.unwrap();
    assert_eq!(got["media_id"], id.as_str());
    assert_eq!(
        got["message"],
        json!({"type": "audio", "audio": {"id": id}})
    );
    assert_eq!(
        got["message_voice"],
        json!({"type": "audio", "audio": {"id": id, "voice": true}})
    );

    // One byte over: the same forms, and the warning.
    let (rec, id) = upload(
        "voice/long.ogg",
        "audio/ogg; codecs=opus",
        fixtures::ogg_opus(512_001, 2),
    )
    .await;
    let link = rec["link"].as_str().unwrap().to_owned();
    assert_eq!(
        rec["message_voice"],
        json!({"type": "audio", "audio": {"link": link, "voice": true}})
    );
    assert_eq!(
        rec["message_voice_by_id"],
        json!({"type": "audio", "audio": {"id": id, "voice": true}})
    );
    assert_eq!(
        rec["warnings"],
        json!([
            "voice note over 512 KB (512001 bytes, more than 512000): WhatsApp shows no play \
             icon for voice notes that large; send it as plain audio (`message`), or make it at \
             most 512000 bytes (shorter, or a lower bitrate) to send it as a voice note"
        ])
    );
    // The record read back says the same; without a valid media ID, no `id` forms.
    let got = s.admin_json(Method::GET, "/assets/voice/long.ogg").await;
    assert_eq!(got["message_voice"], rec["message_voice"]);
    assert_eq!(got["message_voice_by_id"], rec["message_voice_by_id"]);
    assert_eq!(got["warnings"], rec["warnings"]);
    let r = s
        .put(
            "voice/long.ogg",
            "audio/ogg; codecs=opus",
            fixtures::ogg_opus(600_000, 3),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let replaced: Value = r.json().await.unwrap();
    assert_eq!(replaced["message_by_id"], Value::Null);
    assert_eq!(replaced["message_voice_by_id"], Value::Null);
    assert_eq!(
        replaced["message_voice"],
        json!({"type": "audio", "audio": {"link": replaced["link"], "voice": true}})
    );
    assert!(
        replaced["warnings"][0]
            .as_str()
            .unwrap()
            .starts_with("voice note over 512 KB (600000 bytes, more than 512000): ")
    );

    // MP3 is audio, but never a voice note, whatever its size.
    let mut mp3 = b"ID3\x04\x00\x00\x00\x00\x00\x00\xff\xfb\x90\x64\x00".to_vec();
    mp3.resize(600_000, 0x55);
    let (rec, id) = upload("voice/song.mp3", "audio/mpeg", mp3).await;
    assert_eq!(rec["content_type"], "audio/mpeg");
    assert_eq!(
        rec["message"],
        json!({"type": "audio", "audio": {"link": rec["link"]}})
    );
    assert_eq!(
        rec["message_by_id"],
        json!({"type": "audio", "audio": {"id": id}})
    );
    assert_eq!(rec["message_voice"], Value::Null);
    assert_eq!(rec["message_voice_by_id"], Value::Null);
    assert_eq!(rec["warnings"], json!([]));
    let got = s
        .admin(Method::POST, "/whatsapp/media")
        .json(&json!({"path": "voice/song.mp3"}))
        .send()
        .await
        .unwrap();
    let got: Value = got.json().await.unwrap();
    assert_eq!(
        got["message"],
        json!({"type": "audio", "audio": {"id": id}})
    );
    assert_eq!(got["message_voice"], Value::Null);
    let members = rec.as_object().unwrap();
    assert!(members.contains_key("message_voice") && members.contains_key("warnings"));
}

/// A folder whose assets were all deleted is not a folder any more: not listed by its parent
/// (on S3 only its tombstones are left under it, on local disk those and its directory), while
/// a folder with one asset left, or a deeper one, still is. Uploading again brings it back.
async fn emptied_folders_are_not_listed(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    for p in [
        "spring/a.jpg",
        "spring/b.jpg",
        "summer/kept.jpg",
        "summer/gone.jpg",
        "autumn/2026/deep.jpg",
    ] {
        s.upload(p, "image/jpeg", fixtures::jpeg(100, 1)).await;
    }
    let folders = |listing: Value| listing["folders"].clone();
    assert_eq!(
        folders(s.admin_json(Method::GET, "/assets?folder=").await),
        json!(["autumn", "spring", "summer"])
    );
    for p in [
        "spring/a.jpg",
        "spring/b.jpg",
        "summer/gone.jpg",
        "autumn/2026/deep.jpg",
    ] {
        let r = s
            .admin(Method::DELETE, &format!("/assets/{p}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT, "{p}");
    }
    assert_eq!(
        folders(s.admin_json(Method::GET, "/assets?folder=").await),
        json!(["summer"])
    );
    let autumn = s.admin_json(Method::GET, "/assets?folder=autumn").await;
    assert_eq!(autumn["folders"], json!([]));
    assert_eq!(autumn["assets"], json!([]));
    // The tombstones are still stored (they keep Last-Modified moving): only the listing
    // leaves their folders out.
    assert!(
        s.files().iter().any(|f| f.starts_with("assets/spring/")),
        "{:?}",
        s.files()
    );
    s.upload("spring/again.jpg", "image/jpeg", fixtures::jpeg(100, 2))
        .await;
    assert_eq!(
        folders(s.admin_json(Method::GET, "/assets?folder=").await),
        json!(["spring", "summer"])
    );
}

on_both_backends! {
    emptied_folders_are_not_listed,
    the_longest_accepted_segment_is_stored_and_one_byte_more_is_400,
    policy_and_access_folders_follow_the_folder_rules,
    every_admin_route_needs_the_bearer_token,
    without_a_configured_token_one_is_generated_into_the_token_file,
    records_carry_urls_links_and_a_ready_to_paste_message,
    listing_is_paginated_and_filtered_by_prefix,
    a_folder_lists_one_level_its_subfolders_and_pages_of_its_own_assets,
    delete_makes_the_public_path_404_and_missing_assets_404,
    unknown_admin_methods_answer_405_with_allow,
}
