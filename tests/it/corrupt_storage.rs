//! Corrupt or foreign data in storage: a record that is not JSON, or whose fields the server
//! cannot serve (a hash that is not one, a type it does not store, an impossible size or date, a
//! record copied under another path's key), is skipped by listings (and named in their
//! `errors`) and by garbage collection (counted and logged, the blobs it names kept), and answers
//! 500 JSON wherever it is asked for by path: never a panic, a reset or a half-sent body.

use crate::common;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Backend, Storage, TOKEN, TestServer, fixtures};
use media_origin::asset::AssetRecord;
use media_origin::config::Settings;
use media_origin::policy::CachePolicy;
use media_origin::store::Store;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The body of every 500: nothing about the cause, which the log has.
fn internal() -> Value {
    json!({"error": {"code": "internal", "message": "internal error; the server log has the details"}})
}

async fn assert_internal(r: reqwest::Response, what: &str) {
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR, "{what}");
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        "application/json",
        "{what}"
    );
    assert_eq!(r.headers()["x-content-type-options"], "nosniff", "{what}");
    assert_eq!(r.json::<Value>().await.unwrap(), internal(), "{what}");
}

/// Write an object's bytes straight into storage, as another program (or a damaged disk) would:
/// on S3 the test server's bucket is a directory of objects by key.
fn put_object(storage: &Storage, key: &str, bytes: &[u8]) {
    let file = storage.root().join(key);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(file, bytes).unwrap();
}

fn read_object(storage: &Storage, key: &str) -> Vec<u8> {
    std::fs::read(storage.root().join(key)).unwrap()
}

fn blob(root: &Path, record: &Value) -> std::path::PathBuf {
    let sha = record["sha256"].as_str().unwrap();
    root.join(format!("blobs/sha256/{}/{sha}", &sha[..2]))
}

fn paths(page: &Value) -> Vec<&str> {
    page["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["path"].as_str().unwrap())
        .collect()
}

/// The samples of an OpenMetrics text, by series, comments skipped.
async fn scrape(s: &TestServer) -> HashMap<String, f64> {
    let r = s
        .client
        .get(format!("http://{}/metrics", s.admin_addr))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.text()
        .await
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            (series.to_owned(), value.parse().unwrap())
        })
        .collect()
}

/// Poll `cond` every 20 ms for up to 10 s.
async fn eventually(what: &str, mut cond: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond().await {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

const UNREADABLE: &str = "media_origin_gc_unreadable_records_total";

async fn records_that_are_not_json_are_skipped_and_named(backend: Backend) {
    let storage = Storage::new(backend).await;
    let s = TestServer::start_with(Arc::clone(&storage), |_| {}).await;
    let a = fixtures::jpeg(1000, 1);
    let b = fixtures::jpeg(1000, 2);
    s.upload("promo/a.jpg", "image/jpeg", a.clone()).await;
    let b_record = s.upload("promo/b.jpg", "image/jpeg", b.clone()).await;
    s.upload("promo/c.jpg", "image/jpeg", fixtures::jpeg(1000, 3))
        .await;
    let replaced = s
        .upload("promo/old.jpg", "image/jpeg", fixtures::jpeg(1000, 4))
        .await;
    s.upload("promo/old.jpg", "image/jpeg", fixtures::jpeg(1000, 5))
        .await;
    s.stop().await;

    // b's record lost its last bytes (a disk that filled up under another program, a bad
    // copy); a foreign object beside it is no JSON at all.
    let b_key = "assets/promo/b.jpg.json";
    let whole = read_object(&storage, b_key);
    let cut = &whole[..whole.len() - 2];
    put_object(&storage, b_key, cut);
    let notes_key = "assets/promo/notes.txt.json";
    put_object(&storage, notes_key, b"remember to rotate the keys");
    let reason = |bytes: &[u8]| {
        serde_json::from_slice::<AssetRecord>(bytes)
            .unwrap_err()
            .to_string()
    };
    let errors = json!([
        {"path": "promo/b.jpg", "key": b_key, "reason": reason(cut)},
        {"path": "promo/notes.txt", "key": notes_key, "reason": reason(b"remember to rotate the keys")},
    ]);

    // The server starts (and collects garbage at once) over them.
    let s = TestServer::start_with(Arc::clone(&storage), |_| {}).await;

    // Listings answer, without them, and name them.
    for target in ["/assets?prefix=promo/", "/assets", "/assets?folder=promo"] {
        let r = s.admin(Method::GET, target).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{target}");
        let page: Value = r.json().await.unwrap();
        assert_eq!(
            paths(&page),
            ["promo/a.jpg", "promo/c.jpg", "promo/old.jpg"],
            "{target}"
        );
        assert_eq!(page["errors"], errors, "{target}");
        assert_eq!(page["next_cursor"], Value::Null, "{target}");
    }
    // Page by page, each is named once, on the page its path falls in.
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let target = match &cursor {
            None => "/assets?prefix=promo/&limit=2".to_owned(),
            Some(c) => format!("/assets?prefix=promo/&limit=2&cursor={c}"),
        };
        let page = s.admin_json(Method::GET, &target).await;
        pages.push((
            paths(&page)
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>(),
            page["errors"].clone(),
        ));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(
        pages,
        [
            (vec!["promo/a.jpg".to_owned()], json!([errors[0]])),
            (vec!["promo/c.jpg".to_owned()], json!([errors[1]])),
            (vec!["promo/old.jpg".to_owned()], json!([])),
        ]
    );

    // Asked for by path: 500 JSON with nothing internal in it, on both listeners' routes.
    for path in ["promo/b.jpg", "promo/notes.txt"] {
        assert_internal(s.get(&s.media(path)).await, path).await;
        let r = s.client.head(s.media(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let r = s
            .admin(Method::GET, &format!("/assets/{path}"))
            .send()
            .await
            .unwrap();
        assert_internal(r, path).await;
    }
    let r = s.get(&s.media("promo/a.jpg")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.unwrap(), a);

    // The collection at start skipped and counted both.
    eventually("the start-up collection counted both records", async || {
        scrape(&s).await.get(UNREADABLE) == Some(&2.0)
    })
    .await;

    // Garbage collection (here by a second instance's store, past every grace period) skips
    // them, removes what is really unreferenced, and keeps the blob b's bytes still name.
    let mut settings = Settings::default();
    storage.configure(&mut settings);
    let store = Store::open(&settings.storage, CachePolicy::NoCache, Default::default()).unwrap();
    let report = store.collect_garbage(Duration::ZERO).await.unwrap();
    assert_eq!(
        format!("{report:?}"),
        "GcReport { blobs: 1, tombstones: 0, unreadable_records: 2 }"
    );
    assert!(!blob(&storage.root(), &replaced).exists());
    assert!(blob(&storage.root(), &b_record).exists());

    // Nor can it be replaced or deleted through the API meanwhile: nothing is changed.
    let before = common::files_under(&storage.root());
    let r = s
        .put("promo/b.jpg", "image/jpeg", fixtures::jpeg(1000, 6))
        .await;
    assert_internal(r, "PUT promo/b.jpg").await;
    let r = s
        .admin(Method::DELETE, "/assets/promo/b.jpg")
        .send()
        .await
        .unwrap();
    assert_internal(r, "DELETE promo/b.jpg").await;
    assert_eq!(common::files_under(&storage.root()), before);
    assert_eq!(read_object(&storage, b_key), cut);

    // So an operator who repairs the record has the asset back as it was.
    put_object(&storage, b_key, &whole);
    let r = s.get(&s.media("promo/b.jpg")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()["last-modified"],
        b_record["last_modified"].as_str().unwrap()
    );
    assert_eq!(r.bytes().await.unwrap(), b);
    let page = s.admin_json(Method::GET, "/assets?prefix=promo/").await;
    assert_eq!(page["errors"], json!([errors[1]]));
}

/// Records whose JSON is fine but whose fields are not what the server writes: each panicked a
/// request task (or sent a body shorter than its `Content-Length`) before records were checked
/// as they are read.
async fn records_with_invalid_fields_answer_500(backend: Backend) {
    let storage = Storage::new(backend).await;
    let s = TestServer::start_with(Arc::clone(&storage), |_| {}).await;
    let good = s
        .upload("promo/a.jpg", "image/jpeg", fixtures::jpeg(1000, 1))
        .await;
    s.stop().await;
    let template: Value =
        serde_json::from_slice(&read_object(&storage, "assets/promo/a.jpg.json")).unwrap();
    let cases: [(&str, &str, Value, String); 5] = [
        (
            "header.jpg",
            "content_type",
            json!("image/jpeg\r\nSet-Cookie: session=stolen"),
            r#"content_type "image/jpeg\r\nSet-Cookie: session=stolen" is not a type media-origin stores"#
                .to_owned(),
        ),
        (
            "huge.jpg",
            "size",
            json!(u64::MAX),
            format!(
                "size {} is not between 1 and 5000000, the largest image WhatsApp accepts",
                u64::MAX
            ),
        ),
        (
            "far-future.jpg",
            "last_modified",
            json!(u64::MAX),
            format!(
                "last_modified {} is after the year 9999, the last an HTTP date can show",
                u64::MAX
            ),
        ),
        (
            "short-hash.jpg",
            "sha256",
            json!("3a7b"),
            r#"sha256 "3a7b" is not 64 lowercase hex digits"#.to_owned(),
        ),
        (
            "copied.jpg",
            "path",
            json!("promo/a.jpg"),
            r#"its path is "promo/a.jpg", but its key is that of "bad/copied.jpg""#.to_owned(),
        ),
    ];
    let mut errors = Vec::new();
    for (name, field, value, reason) in &cases {
        let mut record = template.clone();
        record["path"] = json!(format!("bad/{name}"));
        record[*field] = value.clone();
        let key = format!("assets/bad/{name}.json");
        put_object(&storage, &key, &serde_json::to_vec_pretty(&record).unwrap());
        errors.push(json!({"path": format!("bad/{name}"), "key": key, "reason": reason}));
    }
    errors.sort_by(|a, b| a["path"].as_str().cmp(&b["path"].as_str()));

    let s = TestServer::start_with(Arc::clone(&storage), |_| {}).await;
    for (name, ..) in &cases {
        let path = format!("bad/{name}");
        assert_internal(s.get(&s.media(&path)).await, &path).await;
        let r = s
            .client
            .get(s.media(&path))
            .header("range", "bytes=0-9")
            .send()
            .await
            .unwrap();
        assert_internal(r, &path).await;
        let r = s.client.head(s.media(&path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR, "{path}");
        let r = s
            .admin(Method::GET, &format!("/assets/{path}"))
            .send()
            .await
            .unwrap();
        assert_internal(r, &path).await;
    }
    for target in ["/assets?prefix=bad/", "/assets?folder=bad"] {
        let page = s.admin_json(Method::GET, target).await;
        assert_eq!(page["assets"], json!([]), "{target}");
        assert_eq!(page["errors"], json!(errors), "{target}");
    }
    let page = s.admin_json(Method::GET, "/assets").await;
    assert_eq!(paths(&page), ["promo/a.jpg"]);
    assert_eq!(page["errors"], json!(errors));
    // The good asset is untouched, and the server still serves.
    let r = s.get(&s.media("promo/a.jpg")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["etag"], good["etag"].as_str().unwrap());
}

/// `media-origin serve` over `storage`, configured from flags and the environment alone.
fn serve_command(storage: &Storage) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_media-origin"));
    cmd.args(["serve", "--bind", "127.0.0.1:0"])
        .current_dir(storage.dir.path())
        .env("MEDIA_ORIGIN_ADMIN_TOKEN", TOKEN)
        .env("RUST_LOG", "info");
    match &storage.s3 {
        None => {
            cmd.arg("--storage").arg(storage.dir.path());
        }
        Some(s3) => {
            cmd.env("MEDIA_ORIGIN__STORAGE__BACKEND", "s3")
                .env("MEDIA_ORIGIN__STORAGE__BUCKET", common::s3::BUCKET)
                .env("MEDIA_ORIGIN__STORAGE__ENDPOINT", s3.endpoint())
                .env("MEDIA_ORIGIN__STORAGE__ALLOW_HTTP", "true")
                .env("AWS_ACCESS_KEY_ID", common::s3::ACCESS_KEY)
                .env("AWS_SECRET_ACCESS_KEY", common::s3::SECRET_KEY);
        }
    }
    cmd
}

/// The binary's log names each unreadable record's key, at the collection (WARN) and when it
/// is asked for (ERROR), and nothing panics.
async fn the_log_names_unreadable_records_and_nothing_panics(backend: Backend) {
    let storage = Storage::new(backend).await;
    let s = TestServer::start_with(Arc::clone(&storage), |_| {}).await;
    s.upload("promo/a.jpg", "image/jpeg", fixtures::jpeg(1000, 1))
        .await;
    s.stop().await;
    let good = read_object(&storage, "assets/promo/a.jpg.json");
    put_object(&storage, "assets/promo/b.jpg.json", &good[..good.len() / 2]);
    let mut bad: Value = serde_json::from_slice(&good).unwrap();
    bad["path"] = json!("promo/c.jpg");
    // Not a hash, and a slice of its first two bytes cuts a character in half.
    bad["sha256"] = json!("aé");
    put_object(
        &storage,
        "assets/promo/c.jpg.json",
        &serde_json::to_vec(&bad).unwrap(),
    );

    let (_child, addr, logs) = common::spawn_binary_logged(&mut serve_command(&storage));
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let metrics = async || -> String {
        client
            .get(format!("http://{addr}/metrics"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    for path in ["promo/b.jpg", "promo/c.jpg"] {
        let r = client
            .get(format!("http://{addr}/media/{path}"))
            .send()
            .await
            .unwrap();
        assert_internal(r, path).await;
    }
    let r = client
        .get(format!("http://{addr}/api/assets"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let page: Value = r.json().await.unwrap();
    assert_eq!(paths(&page), ["promo/a.jpg"]);
    assert_eq!(
        page["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["key"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["assets/promo/b.jpg.json", "assets/promo/c.jpg.json"]
    );

    // The collection at start skipped and counted both.
    eventually("the start-up collection", async || {
        metrics().await.lines().any(|l| l.starts_with(UNREADABLE))
    })
    .await;
    let text = metrics().await;
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with(UNREADABLE))
            .collect::<Vec<_>>(),
        [format!("{UNREADABLE} 2")]
    );

    // The metric is counted as the collection goes, its summary logged at the end; the log is
    // read on a thread, in order, so once the last request's line is in, so are the others.
    eventually(
        "the collection's summary and the listing in the log",
        async || {
            let logs = logs.lock().unwrap();
            logs.iter().any(|l| l.contains("garbage collection done"))
                && logs.iter().any(|l| {
                    l.contains("a listing skipped") && l.contains("key=assets/promo/c.jpg.json")
                })
        },
    )
    .await;
    let logs = logs.lock().unwrap().clone();
    let lines = |level: &str, needle: &str, key: &str| {
        logs.iter()
            .filter(|l| l.contains(level) && l.contains(needle) && l.contains(key))
            .count()
    };
    for key in ["assets/promo/b.jpg.json", "assets/promo/c.jpg.json"] {
        assert_eq!(
            lines(
                "WARN",
                "garbage collection skipped an unreadable record",
                &format!("key={key}")
            ),
            1,
            "{key}: {logs:#?}"
        );
        assert_eq!(
            lines(
                "ERROR",
                "corrupt stored data",
                &format!("stored record {key}")
            ),
            1,
            "{key}: {logs:#?}"
        );
        assert_eq!(
            lines(
                "WARN",
                "a listing skipped an unreadable record",
                &format!("key={key}")
            ),
            1,
            "{key}: {logs:#?}"
        );
    }
    assert_eq!(
        logs.iter()
            .filter(|l| l.contains("garbage collection done") && l.contains("unreadable_records=2"))
            .count(),
        1,
        "{logs:#?}"
    );
    assert!(!logs.iter().any(|l| l.contains("panicked")), "{logs:#?}");
}

on_both_backends! {
    records_that_are_not_json_are_skipped_and_named,
    records_with_invalid_fields_answer_500,
    the_log_names_unreadable_records_and_nothing_panics,
}
