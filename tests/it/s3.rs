//! The S3 backend and several instances over one bucket: what each instance serves, how soon a
//! write through one instance shows on another (the `cache_ttl_ms` bound), what is asked of S3
//! (record caching, ranged blob reads), S3 outages and slowness (bounded 503s, recovery
//! without a restart), interrupted multipart uploads, concurrent writers, and key prefixes.

use crate::common;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Backend, Storage, TOKEN, TestServer, files_under, fixtures};
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

// ---- helpers ------------------------------------------------------------------------------

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn header<'a>(r: &'a Response, name: &str) -> &'a str {
    r.headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header in {:?}", r.headers()))
        .to_str()
        .unwrap()
}

/// Poll `check` every 50 ms until it holds; the time it took, or `None` after `limit`.
async fn time_until<F, Fut>(limit: Duration, mut check: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return Some(start.elapsed());
        }
        if start.elapsed() > limit {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Like [`time_until`], but fail the test with `what` when it does not happen.
async fn eventually<F, Fut>(what: &str, limit: Duration, check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    time_until(limit, check)
        .await
        .unwrap_or_else(|| panic!("not within {limit:?}: {what}"))
}

async fn set_folder(s: &TestServer, folder: &str, policy: &str) -> Response {
    s.admin(Method::PUT, &format!("/policies/{folder}"))
        .json(&json!({"cache_control": policy}))
        .send()
        .await
        .unwrap()
}

/// A GET and how long its answer took.
async fn timed_get(s: &TestServer, url: &str) -> (Response, Duration) {
    let start = Instant::now();
    let r = s.get(url).await;
    let took = start.elapsed();
    eprintln!("GET {url}: {} after {took:?}", r.status());
    (r, took)
}

/// Assert `r` is the 503 a client can act on: `Retry-After` and code `storage_unavailable`.
async fn assert_storage_unavailable(r: Response, what: &str) {
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE, "{what}");
    assert_eq!(header(&r, "retry-after"), "5", "{what}");
    assert!(
        header(&r, "content-type").starts_with("application/json"),
        "{what}"
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["error"]["code"], "storage_unavailable",
        "{what}: {body}"
    );
    assert!(body["error"]["message"].is_string(), "{what}: {body}");
}

/// The caching trio and type of a 200, with its body.
#[derive(Debug, PartialEq, Eq)]
struct Served {
    content_type: String,
    content_length: String,
    etag: String,
    last_modified: String,
    cache_control: String,
    body: Vec<u8>,
}

async fn served(s: &TestServer, path: &str) -> Served {
    let r = s.get(&s.media(path)).await;
    assert_eq!(r.status(), StatusCode::OK, "GET {path} through {}", s.addr);
    Served {
        content_type: header(&r, "content-type").to_owned(),
        content_length: header(&r, "content-length").to_owned(),
        etag: header(&r, "etag").to_owned(),
        last_modified: header(&r, "last-modified").to_owned(),
        cache_control: header(&r, "cache-control").to_owned(),
        body: r.bytes().await.unwrap().to_vec(),
    }
}

/// The `Cache-Control` (200) or `None` (anything else) of a GET.
async fn cache_control_of(s: &TestServer, path: &str) -> Option<String> {
    let r = s.get(&s.media(path)).await;
    (r.status() == StatusCode::OK).then(|| header(&r, "cache-control").to_owned())
}

async fn status_of(s: &TestServer, path: &str) -> u16 {
    s.get(&s.media(path)).await.status().as_u16()
}

async fn etag_of(s: &TestServer, path: &str) -> Option<String> {
    let r = s.get(&s.media(path)).await;
    (r.status() == StatusCode::OK).then(|| header(&r, "etag").to_owned())
}

/// The GETs of blobs S3 has answered since the log was last cleared.
fn s3_blob_gets(storage: &Storage) -> Vec<common::s3::S3Request> {
    storage
        .s3()
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.target.contains("/blobs/sha256/"))
        .collect()
}

/// Files under `dir/` of the bucket.
fn bucket_files(storage: &Storage, dir: &str) -> Vec<String> {
    files_under(&storage.root())
        .into_iter()
        .filter(|f| f.starts_with(dir))
        .collect()
}

/// Open a `PUT` of `body` as `video/mp4` declaring its whole length and send only its first
/// `sent` bytes; the caller drops the socket to cut the upload off.
async fn start_cut_upload(s: &TestServer, path: &str, body: &[u8], sent: usize) -> TcpStream {
    let mut tcp = TcpStream::connect(s.addr).await.unwrap();
    let head = format!(
        "PUT /api/assets/{path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: video/mp4\r\nContent-Length: {}\r\n\r\n",
        s.addr,
        body.len()
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp.write_all(&body[..sent]).await.unwrap();
    tcp.flush().await.unwrap();
    tcp
}

/// Wait until a multipart upload is in flight: its marker under `tmp_dir` (a bucket path) and,
/// in S3, the upload with its first part stored.
async fn multipart_in_flight(storage: &Storage, tmp_dir: &str) {
    eventually(
        "a marked multipart upload with its first part is in flight",
        Duration::from_secs(10),
        || async {
            let marked = bucket_files(storage, tmp_dir)
                .iter()
                .any(|f| f.ends_with(".multipart"));
            let pending = storage.s3().pending_multipart_uploads();
            marked && pending.iter().any(|p| p.contains(".part-"))
        },
    )
    .await;
}

// ---- 1. one bucket, two instances ---------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_serve_the_same_bytes_etag_and_last_modified() {
    let storage = Storage::new(Backend::S3).await;
    let a = TestServer::start_with(Arc::clone(&storage), |_| {}).await;
    let b = TestServer::start_with(Arc::clone(&storage), |_| {}).await;

    let body = fixtures::jpeg(300_000, 11);
    let rec = a
        .upload("shared/banner.jpg", "image/jpeg", body.clone())
        .await;

    let from_a = served(&a, "shared/banner.jpg").await;
    let from_b = served(&b, "shared/banner.jpg").await;
    assert_eq!(from_a.body, body);
    assert_eq!(from_a.etag, format!("\"{}\"", sha256(&body)));
    assert_eq!(from_a.last_modified, rec["last_modified"].as_str().unwrap());
    assert_eq!(from_a.cache_control, "max-age=86400");
    assert_eq!(from_a.content_type, "image/jpeg");
    assert_eq!(from_a.content_length, "300000");
    assert_eq!(from_a, from_b);

    // HEAD agrees too, and the admin view through B is A's record.
    for s in [&a, &b] {
        let r = s
            .client
            .head(s.media("shared/banner.jpg"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(header(&r, "etag"), from_a.etag);
        assert_eq!(header(&r, "last-modified"), from_a.last_modified);
        assert_eq!(header(&r, "cache-control"), from_a.cache_control);
        assert_eq!(header(&r, "content-length"), "300000");
    }
    let rec_b = b.admin_json(Method::GET, "/assets/shared/banner.jpg").await;
    for field in ["sha256", "size", "etag", "last_modified", "content_type"] {
        assert_eq!(rec_b[field], rec[field], "{field}");
    }
    // Each instance writes its own base URL into links, with the same version tag.
    let version = |r: &Value| {
        let link = r["link"].as_str().unwrap();
        link.rsplit_once("?v=").unwrap().1.to_owned()
    };
    assert_eq!(version(&rec_b), version(&rec));
    assert!(rec_b["link"].as_str().unwrap().starts_with(&b.base));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn changes_through_one_instance_show_on_the_other_within_the_cache_ttl() {
    const TTL_MS: u64 = 1000;
    let ttl = Duration::from_millis(TTL_MS);
    let bound = ttl + Duration::from_secs(1);
    let storage = Storage::new(Backend::S3).await;
    let a = TestServer::start_with(Arc::clone(&storage), |c| c.storage.cache_ttl_ms = TTL_MS).await;
    let b = TestServer::start_with(Arc::clone(&storage), |c| c.storage.cache_ttl_ms = TTL_MS).await;

    let old = fixtures::jpeg(20_000, 1);
    let new = fixtures::jpeg(21_000, 2);
    a.upload("ttl/replaced.jpg", "image/jpeg", old.clone())
        .await;
    a.upload("ttl/deleted.jpg", "image/jpeg", old.clone()).await;
    a.upload("ttl/overridden.jpg", "image/jpeg", old.clone())
        .await;
    a.upload("ttlfolder/ruled.jpg", "image/jpeg", old.clone())
        .await;

    // B caches the old state of everything, the absence of the new path included.
    let filled = Instant::now();
    assert_eq!(status_of(&b, "ttl/new.jpg").await, 404);
    let old_etag = format!("\"{}\"", sha256(&old));
    assert_eq!(
        etag_of(&b, "ttl/replaced.jpg").await,
        Some(old_etag.clone())
    );
    assert_eq!(status_of(&b, "ttl/deleted.jpg").await, 200);
    let default_cc = Some("max-age=86400".to_owned());
    assert_eq!(cache_control_of(&b, "ttl/overridden.jpg").await, default_cc);
    assert_eq!(
        cache_control_of(&b, "ttlfolder/ruled.jpg").await,
        default_cc
    );

    // Each change through A, then how long B takes to show it. All at once, so the whole
    // test takes about one TTL.
    let new_etag = format!("\"{}\"", sha256(&new));
    let (a, b) = (&a, &b);
    let upload = async {
        a.upload("ttl/new.jpg", "image/jpeg", new.clone()).await;
        let done = Instant::now();
        let stale = status_of(b, "ttl/new.jpg").await == 404;
        let t = time_until(bound + ttl, || async {
            status_of(b, "ttl/new.jpg").await == 200
        });
        (
            "upload of a new path",
            done - filled,
            stale,
            t.await.map(|_| done.elapsed()),
        )
    };
    let replace = async {
        let r = a.put("ttl/replaced.jpg", "image/jpeg", new.clone()).await;
        assert_eq!(r.status(), StatusCode::OK);
        let done = Instant::now();
        let stale = etag_of(b, "ttl/replaced.jpg").await == Some(old_etag.clone());
        let t = time_until(bound + ttl, || async {
            etag_of(b, "ttl/replaced.jpg").await == Some(new_etag.clone())
        });
        (
            "replacement",
            done - filled,
            stale,
            t.await.map(|_| done.elapsed()),
        )
    };
    let delete = async {
        let r = a
            .admin(Method::DELETE, "/assets/ttl/deleted.jpg")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        let done = Instant::now();
        let stale = status_of(b, "ttl/deleted.jpg").await == 200;
        let t = time_until(bound + ttl, || async {
            status_of(b, "ttl/deleted.jpg").await == 404
        });
        (
            "deletion",
            done - filled,
            stale,
            t.await.map(|_| done.elapsed()),
        )
    };
    let policy = async {
        let r = set_folder(a, "ttlfolder", "max-age=60").await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let done = Instant::now();
        let stale = cache_control_of(b, "ttlfolder/ruled.jpg").await == default_cc;
        let t = time_until(bound + ttl, || async {
            cache_control_of(b, "ttlfolder/ruled.jpg").await.as_deref() == Some("max-age=60")
        });
        (
            "folder policy",
            done - filled,
            stale,
            t.await.map(|_| done.elapsed()),
        )
    };
    let patch = async {
        let r = a
            .admin(Method::PATCH, "/assets/ttl/overridden.jpg")
            .json(&json!({"cache_control": "no-store"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let done = Instant::now();
        let stale = cache_control_of(b, "ttl/overridden.jpg").await == default_cc;
        let t = time_until(bound + ttl, || async {
            cache_control_of(b, "ttl/overridden.jpg").await.as_deref() == Some("no-store")
        });
        (
            "asset override",
            done - filled,
            stale,
            t.await.map(|_| done.elapsed()),
        )
    };
    let results = tokio::join!(upload, replace, delete, policy, patch);
    let results = [results.0, results.1, results.2, results.3, results.4];
    for (what, since_fill, stale, shown) in results {
        eprintln!(
            "{what}: written {since_fill:?} after B cached; stale at first: {stale}; shown on B after {shown:?}"
        );
        let shown = shown.unwrap_or_else(|| panic!("{what} never showed on B"));
        assert!(
            shown <= bound,
            "{what} took {shown:?} to show on B; the bound is cache_ttl_ms ({ttl:?}) + 1 s"
        );
        // A write that landed well inside B's TTL is not seen at once: B really caches, so
        // the bound above is the cache's, not a lucky miss.
        if since_fill < ttl / 2 {
            assert!(
                stale,
                "{what}: B showed the change at once, without caching"
            );
        }
    }
    // And A, which made the changes, shows every one of them at once.
    assert_eq!(etag_of(a, "ttl/replaced.jpg").await, Some(new_etag));
    assert_eq!(status_of(a, "ttl/deleted.jpg").await, 404);
    assert_eq!(status_of(a, "ttl/new.jpg").await, 200);
}

// ---- 2. what is asked of S3 ---------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hot_asset_costs_no_s3_round_trip_for_its_record_or_bytes() {
    let storage = Storage::new(Backend::S3).await;
    let a = TestServer::start_with(Arc::clone(&storage), |_| {}).await;
    // B has never seen the asset: its first GET must read the record from S3.
    let b = TestServer::start_with(Arc::clone(&storage), |_| {}).await;
    let body = fixtures::png(10_000, 3);
    a.upload("hot/logo.png", "image/png", body.clone()).await;

    storage.s3().clear_requests();
    let start = Instant::now();
    for _ in 0..50 {
        let r = b.get(&b.media("hot/logo.png")).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.bytes().await.unwrap().as_ref(), body.as_slice());
    }
    let elapsed = start.elapsed();
    let log = storage.s3().requests();
    let record_gets: Vec<_> = log
        .iter()
        .filter(|r| {
            r.method == "GET" && r.target.contains("/assets/") && r.target.ends_with(".json")
        })
        .collect();
    let policy_gets = log
        .iter()
        .filter(|r| r.method == "GET" && r.target.ends_with("/policies.json"))
        .count();
    let blob_gets = log
        .iter()
        .filter(|r| r.method == "GET" && r.target.contains("/blobs/sha256/"))
        .count();
    eprintln!(
        "50 GETs in {elapsed:?}: {} record GETs, {policy_gets} policy GETs, {blob_gets} blob GETs, {} S3 requests in all",
        record_gets.len(),
        log.len()
    );
    // One read fills the cache; a second only if the 2 s TTL ran out during the loop.
    let allowed = if elapsed < Duration::from_secs(2) {
        1
    } else {
        2
    };
    assert!(
        !record_gets.is_empty() && record_gets.len() <= allowed,
        "{} record GETs for 50 requests in {elapsed:?}: {record_gets:?}",
        record_gets.len()
    );
    assert!(policy_gets <= allowed, "{policy_gets} policy GETs");
    // Blobs never change: the small blob's bytes are read once, then served from memory.
    assert_eq!(blob_gets, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_the_blob_cache_every_get_reads_the_blob() {
    let storage = Storage::new(Backend::S3).await;
    let s = TestServer::start_with(Arc::clone(&storage), |c| c.storage.blob_cache_mb = 0).await;
    let body = fixtures::png(10_000, 5);
    s.upload("cold/logo.png", "image/png", body.clone()).await;
    storage.s3().clear_requests();
    for _ in 0..5 {
        let r = s.get(&s.media("cold/logo.png")).await;
        assert_eq!(r.bytes().await.unwrap().as_ref(), body.as_slice());
    }
    assert_eq!(s3_blob_gets(&storage).len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn blobs_over_the_cache_object_limit_are_streamed_every_time() {
    let storage = Storage::new(Backend::S3).await;
    let s = TestServer::start_with(Arc::clone(&storage), |c| {
        c.storage.blob_cache_object_kb = 8;
    })
    .await;
    let small = fixtures::png(8 * 1024, 6);
    let large = fixtures::png(8 * 1024 + 1, 7);
    s.upload("edge/small.png", "image/png", small.clone()).await;
    s.upload("edge/large.png", "image/png", large.clone()).await;
    storage.s3().clear_requests();
    for _ in 0..3 {
        for (path, body) in [("edge/small.png", &small), ("edge/large.png", &large)] {
            let r = s.get(&s.media(path)).await;
            assert_eq!(r.bytes().await.unwrap().as_ref(), body.as_slice());
        }
    }
    let gets = s3_blob_gets(&storage);
    let of = |b: &[u8]| {
        gets.iter()
            .filter(|r| r.target.ends_with(&sha256(b)))
            .count()
    };
    assert_eq!((of(&small), of(&large)), (1, 3), "{gets:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_range_request_asks_s3_only_for_those_bytes() {
    let storage = Storage::new(Backend::S3).await;
    let s = TestServer::start_with(Arc::clone(&storage), |_| {}).await;
    // Over the 1 MiB blob-cache limit, so every read goes to S3.
    let body = fixtures::mp4(2_097_152, 4);
    s.upload("clips/intro.mp4", "video/mp4", body.clone()).await;

    storage.s3().clear_requests();
    let r = s
        .client
        .get(s.media("clips/intro.mp4"))
        .header("range", "bytes=1000-1999")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(header(&r, "content-range"), "bytes 1000-1999/2097152");
    assert_eq!(header(&r, "content-length"), "1000");
    assert_eq!(header(&r, "content-type"), "video/mp4");
    assert_eq!(header(&r, "etag"), format!("\"{}\"", sha256(&body)));
    assert_eq!(r.bytes().await.unwrap().as_ref(), &body[1000..2000]);

    let blob_gets = s3_blob_gets(&storage);
    assert_eq!(blob_gets.len(), 1, "{blob_gets:?}");
    assert_eq!(blob_gets[0].range.as_deref(), Some("bytes=1000-1999"));
    assert_eq!(blob_gets[0].status, 206);

    // A suffix range is resolved against the record's size before S3 is asked.
    storage.s3().clear_requests();
    let r = s
        .client
        .get(s.media("clips/intro.mp4"))
        .header("range", "bytes=-500")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(header(&r, "content-range"), "bytes 2096652-2097151/2097152");
    assert_eq!(r.bytes().await.unwrap().as_ref(), &body[2_096_652..]);
    let blob_gets = s3_blob_gets(&storage);
    assert_eq!(blob_gets.len(), 1, "{blob_gets:?}");
    assert_eq!(blob_gets[0].range.as_deref(), Some("bytes=2096652-2097151"));

    // A full GET asks for the whole object, without a Range.
    storage.s3().clear_requests();
    let r = s.get(&s.media("clips/intro.mp4")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.unwrap().len(), body.len());
    let blob_gets = s3_blob_gets(&storage);
    assert_eq!(blob_gets.len(), 1, "{blob_gets:?}");
    assert_eq!(blob_gets[0].range, None);
}

// ---- 3. outages and slowness --------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_stopped_mid_run_answers_503_then_recovers() {
    let storage = Storage::new(Backend::S3).await;
    let s = TestServer::start_with(Arc::clone(&storage), |c| {
        c.storage.timeout_ms = 500;
        c.storage.retries = 1;
        c.storage.connect_timeout_ms = 500;
        c.storage.cache_ttl_ms = 200;
    })
    .await;
    let body = fixtures::jpeg(50_000, 5);
    s.upload("down/a.jpg", "image/jpeg", body.clone()).await;
    assert_eq!(served(&s, "down/a.jpg").await.body, body);
    let before = files_under(&storage.root());

    storage.s3().stop().await;
    // Past the cache TTL, so the record must come from S3.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let bound = Duration::from_secs(3);
    let (r, took) = timed_get(&s, &s.media("down/a.jpg")).await;
    assert_storage_unavailable(r, "GET /media while S3 is down").await;
    assert!(took < bound, "GET /media took {took:?} to fail");
    let r = s.client.head(s.media("down/a.jpg")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(header(&r, "retry-after"), "5");
    let start = Instant::now();
    let r = s
        .admin(Method::GET, "/assets/down/a.jpg")
        .send()
        .await
        .unwrap();
    assert_storage_unavailable(r, "GET /api/assets while S3 is down").await;
    assert!(start.elapsed() < bound);

    let (r, took) = timed_get(&s, &s.url("/readyz")).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(took < bound, "/readyz took {took:?}");
    assert_eq!(s.get(&s.url("/healthz")).await.status(), StatusCode::OK);

    let start = Instant::now();
    let r = s
        .put("down/b.jpg", "image/jpeg", fixtures::jpeg(30_000, 6))
        .await;
    let took = start.elapsed();
    eprintln!("PUT while S3 is down: answered after {took:?}");
    assert_storage_unavailable(r, "PUT while S3 is down").await;
    assert!(took < bound, "PUT took {took:?} to fail");

    storage.s3().resume().await;
    let took = eventually(
        "GET /media answers 200 again",
        Duration::from_secs(5),
        || async { s.get(&s.media("down/a.jpg")).await.status() == StatusCode::OK },
    )
    .await;
    eprintln!("recovered {took:?} after S3 came back");
    let again = served(&s, "down/a.jpg").await;
    assert_eq!(again.body, body);
    assert_eq!(again.etag, format!("\"{}\"", sha256(&body)));
    eventually(
        "/readyz answers 200 again",
        Duration::from_secs(5),
        || async { s.get(&s.url("/readyz")).await.status() == StatusCode::OK },
    )
    .await;
    // The failed upload left nothing behind, and is not there.
    assert_eq!(files_under(&storage.root()), before);
    assert_eq!(status_of(&s, "down/b.jpg").await, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_instance_starts_while_s3_is_down_and_becomes_ready_when_it_returns() {
    let storage = Storage::new(Backend::S3).await;
    storage.s3().stop().await;
    let s = TestServer::start_with(Arc::clone(&storage), |c| {
        c.storage.timeout_ms = 500;
        c.storage.retries = 1;
    })
    .await;
    assert_eq!(
        s.get(&s.url("/readyz")).await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(s.get(&s.url("/healthz")).await.status(), StatusCode::OK);
    storage.s3().resume().await;
    eventually("/readyz answers 200", Duration::from_secs(5), || async {
        s.get(&s.url("/readyz")).await.status() == StatusCode::OK
    })
    .await;
    let body = fixtures::png(20_000, 4);
    s.upload("late/a.png", "image/png", body.clone()).await;
    assert_eq!(served(&s, "late/a.png").await.body, body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_s3_is_cut_off_by_the_timeouts() {
    let storage = Storage::new(Backend::S3).await;
    let a = TestServer::start_with(Arc::clone(&storage), |_| {}).await;
    let s = TestServer::start_with(Arc::clone(&storage), |c| {
        c.storage.timeout_ms = 300;
        c.storage.retries = 1;
        // Bytes from memory would not wait on S3; this is about reads that do.
        c.storage.blob_cache_mb = 0;
    })
    .await;
    let body = fixtures::jpeg(40_000, 7);
    a.upload("slow/cached.jpg", "image/jpeg", body.clone())
        .await;
    a.upload("slow/cold.jpg", "image/jpeg", body.clone()).await;
    // The slow instance has read one record (and the policies), not the other.
    assert_eq!(served(&s, "slow/cached.jpg").await.body, body);

    storage.s3().set_delay(Duration::from_secs(5));
    let bound = Duration::from_millis(2500);

    // A cached record, but the blob does not come: the first-byte bound cuts it off.
    let (r, took) = timed_get(&s, &s.media("slow/cached.jpg")).await;
    assert_storage_unavailable(r, "GET of a cached record whose blob is slow").await;
    assert!(took < bound, "took {took:?}");

    // A record not cached: the control client's timeout (and one retry) cuts it off.
    let (r, took) = timed_get(&s, &s.media("slow/cold.jpg")).await;
    assert_storage_unavailable(r, "GET of an uncached record while S3 is slow").await;
    assert!(took < bound, "took {took:?}");

    let (r, took) = timed_get(&s, &s.url("/readyz")).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(took < bound, "/readyz took {took:?}");

    storage.s3().set_delay(Duration::ZERO);
    eventually("GET answers 200 again", Duration::from_secs(5), || async {
        s.get(&s.media("slow/cold.jpg")).await.status() == StatusCode::OK
    })
    .await;
    assert_eq!(served(&s, "slow/cold.jpg").await.body, body);
    assert_eq!(served(&s, "slow/cached.jpg").await.body, body);
    assert_eq!(s.get(&s.url("/readyz")).await.status(), StatusCode::OK);
}

// ---- 4. interrupted multipart uploads -----------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_upload_cut_off_mid_stream_leaves_nothing_behind() {
    let storage = Storage::new(Backend::S3).await;
    let s = TestServer::start_with(Arc::clone(&storage), |_| {}).await;
    let before = files_under(&storage.root());
    let big = fixtures::mp4(12_000_000, 8);

    // 8 MB of a declared 12 MB: past the first 5 MiB part, so the write is multipart.
    let tcp = start_cut_upload(&s, "cut/big.mp4", &big, 8_000_000).await;
    // A marked multipart upload exists, its first part stored.
    multipart_in_flight(&storage, "tmp/").await;
    drop(tcp);

    eventually(
        "the interrupted upload is cleaned up, without a restart",
        Duration::from_secs(10),
        || async {
            storage.s3().pending_multipart_uploads().is_empty()
                && bucket_files(&storage, "tmp/").is_empty()
        },
    )
    .await;
    assert_eq!(files_under(&storage.root()), before);
    assert_eq!(status_of(&s, "cut/big.mp4").await, 404);
    let r = s
        .admin(Method::GET, "/assets/cut/big.mp4")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // The same upload sent whole afterwards works.
    let rec = s.upload("cut/big.mp4", "video/mp4", big.clone()).await;
    assert_eq!(rec["sha256"], sha256(&big));
    assert_eq!(served(&s, "cut/big.mp4").await.body, big);
    assert!(storage.s3().pending_multipart_uploads().is_empty());
    assert!(bucket_files(&storage, "tmp/").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_upload_abandoned_while_s3_was_down_is_swept_by_the_next_instance() {
    // With and without a key prefix: the multipart API is addressed by the full key.
    for prefix in [None, Some("tenant-a")] {
        let storage = Storage::new(Backend::S3).await;
        let under = |dir: &str| prefix.map_or(dir.to_owned(), |p| format!("{p}/{dir}"));
        let a = TestServer::start_with(Arc::clone(&storage), |c| {
            c.storage.prefix = prefix.map(Into::into)
        })
        .await;
        let big = fixtures::mp4(12_000_000, 12);
        let tcp = start_cut_upload(&a, "cut/big.mp4", &big, 8_000_000).await;
        multipart_in_flight(&storage, &under("tmp/")).await;
        // S3 goes away, the client too: the instance cannot abort its multipart upload.
        storage.s3().stop().await;
        drop(tcp);
        a.stop().await;
        storage.s3().resume().await;
        let pending = storage.s3().pending_multipart_uploads();
        let markers = bucket_files(&storage, &under("tmp/"));
        assert!(
            pending.iter().any(|p| p.contains(".part-")) && markers.len() == 1,
            "{prefix:?}: the abandoned upload is still there: {pending:?} {markers:?}"
        );

        // The next instance to start sweeps what is older than stale_upload_secs.
        let b = TestServer::start_with(Arc::clone(&storage), |c| {
            c.storage.prefix = prefix.map(Into::into);
            c.storage.stale_upload_secs = 0;
        })
        .await;
        assert_eq!(
            storage.s3().pending_multipart_uploads(),
            Vec::<String>::new()
        );
        assert_eq!(files_under(&storage.root()), Vec::<String>::new());
        assert_eq!(status_of(&b, "cut/big.mp4").await, 404);
    }
}

// ---- 5. concurrent writers ----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_from_two_instances_lose_nothing() {
    let storage = Storage::new(Backend::S3).await;
    let a = TestServer::start_with(Arc::clone(&storage), |_| {}).await;
    let b = TestServer::start_with(Arc::clone(&storage), |_| {}).await;
    let (a, b) = (&a, &b);

    // Twenty folder policies, ten through each instance, at the same time.
    let policies = async {
        let via_a = futures::future::join_all(
            (0..10).map(|i| async move { set_folder(a, &format!("fa{i}"), "max-age=60").await }),
        );
        let via_b = futures::future::join_all(
            (0..10).map(|i| async move { set_folder(b, &format!("fb{i}"), "no-cache").await }),
        );
        let (ra, rb) = tokio::join!(via_a, via_b);
        for r in ra.into_iter().chain(rb) {
            let status = r.status();
            let text = r.text().await.unwrap();
            assert_eq!(status, StatusCode::CREATED, "{text}");
        }
    };

    // Three uploads of different bytes to one path through each instance, at the same time.
    let bodies: Vec<Vec<u8>> = (0..6)
        .map(|i| fixtures::jpeg(30_000 + i * 100, 20 + i as u64))
        .collect();
    let hashes: Vec<String> = bodies.iter().map(|b| sha256(b)).collect();
    let uploads = futures::future::join_all(bodies.iter().enumerate().map(|(i, body)| {
        let s = if i % 2 == 0 { a } else { b };
        async move {
            let r = s.put("race/one.jpg", "image/jpeg", body.clone()).await;
            let status = r.status().as_u16();
            let rec: Value = r.json().await.unwrap();
            (status, rec)
        }
    }));
    let ((), results) = tokio::join!(policies, uploads);

    // The policies: all twenty in the stored file at once, and on both instances within the
    // cache TTL.
    let file: Value =
        serde_json::from_slice(&std::fs::read(storage.root().join("policies.json")).unwrap())
            .unwrap();
    let stored = file["folders"].as_object().unwrap();
    assert_eq!(stored.len(), 20, "{file}");
    for s in [a, b] {
        eventually(
            "GET /api/policies lists all twenty folders",
            Duration::from_secs(3),
            || async {
                let list = s.admin_json(Method::GET, "/policies").await;
                list["folders"].as_array().unwrap().len() == 20
            },
        )
        .await;
        let list = s.admin_json(Method::GET, "/policies").await;
        for i in 0..10 {
            let find = |f: String| {
                list["folders"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|r| r["folder"] == f.as_str())
                    .unwrap_or_else(|| panic!("{f} missing from {list}"))
                    .clone()
            };
            assert_eq!(find(format!("fa{i}"))["cache_control"], "max-age=60");
            assert_eq!(find(format!("fb{i}"))["cache_control"], "no-cache");
        }
    }

    // The uploads: each succeeded, exactly one created the path, each with its own
    // Last-Modified; the stored record is the one with the latest.
    let statuses: Vec<u16> = results.iter().map(|(st, _)| *st).collect();
    assert!(
        statuses.iter().all(|&st| st == 200 || st == 201),
        "{results:?}"
    );
    assert_eq!(
        statuses.iter().filter(|&&st| st == 201).count(),
        1,
        "{statuses:?}"
    );
    let mut stamps: Vec<(u64, String)> = results
        .iter()
        .map(|(_, rec)| {
            let lm = rec["last_modified"].as_str().unwrap();
            let secs = httpdate::parse_http_date(lm)
                .unwrap()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            (secs, rec["sha256"].as_str().unwrap().to_owned())
        })
        .collect();
    for (i, (_, sha)) in stamps.iter().enumerate() {
        assert_eq!(*sha, hashes[i], "each response describes its own upload");
    }
    stamps.sort();
    let mut distinct: Vec<u64> = stamps.iter().map(|(t, _)| *t).collect();
    distinct.dedup();
    assert_eq!(distinct.len(), 6, "Last-Modified values: {stamps:?}");
    let (last_lm, last_sha) = stamps.last().unwrap().clone();

    let record: Value = serde_json::from_slice(
        &std::fs::read(storage.root().join("assets/race/one.jpg.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(record["sha256"], last_sha.as_str());
    assert_eq!(record["last_modified"], last_lm);
    let want = format!("\"{last_sha}\"");
    for s in [a, b] {
        eventually(
            "both instances serve the last write",
            Duration::from_secs(3),
            || async { etag_of(s, "race/one.jpg").await.as_deref() == Some(want.as_str()) },
        )
        .await;
    }
    let i = hashes.iter().position(|h| *h == last_sha).unwrap();
    assert_eq!(served(b, "race/one.jpg").await.body, bodies[i]);
}

// ---- 6. key prefixes ----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_key_prefix_keeps_everything_under_it() {
    let storage = Storage::new(Backend::S3).await;
    let a = TestServer::start_with(Arc::clone(&storage), |c| {
        c.storage.prefix = Some("tenant-a".into())
    })
    .await;
    let small = fixtures::jpeg(20_000, 9);
    let large = fixtures::mp4(6_000_000, 10); // past one 5 MiB part: a multipart write
    a.upload("promo/a.jpg", "image/jpeg", small.clone()).await;
    a.upload("promo/b.mp4", "video/mp4", large.clone()).await;
    assert_eq!(
        set_folder(&a, "promo", "no-cache").await.status(),
        StatusCode::CREATED
    );

    let files = files_under(&storage.root());
    assert!(!files.is_empty());
    for f in &files {
        assert!(
            f.starts_with("tenant-a/"),
            "{f} is outside the prefix: {files:?}"
        );
    }
    for want in [
        "tenant-a/assets/promo/a.jpg.json".to_owned(),
        "tenant-a/assets/promo/b.mp4.json".to_owned(),
        format!(
            "tenant-a/blobs/sha256/{}/{}",
            &sha256(&small)[..2],
            sha256(&small)
        ),
        format!(
            "tenant-a/blobs/sha256/{}/{}",
            &sha256(&large)[..2],
            sha256(&large)
        ),
        "tenant-a/policies.json".to_owned(),
    ] {
        assert!(files.contains(&want), "{want} missing from {files:?}");
    }
    assert!(storage.s3().pending_multipart_uploads().is_empty());

    // Another instance of the same tenant sees it all; another tenant sees none of it.
    let a2 = TestServer::start_with(Arc::clone(&storage), |c| {
        c.storage.prefix = Some("tenant-a".into())
    })
    .await;
    let got = served(&a2, "promo/b.mp4").await;
    assert_eq!(got.body, large);
    assert_eq!(got.cache_control, "no-cache");
    let b = TestServer::start_with(Arc::clone(&storage), |c| {
        c.storage.prefix = Some("tenant-b".into())
    })
    .await;
    for p in ["promo/a.jpg", "promo/b.mp4"] {
        assert_eq!(status_of(&b, p).await, 404, "{p}");
        let r = b
            .admin(Method::GET, &format!("/assets/{p}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }
    let list = b.admin_json(Method::GET, "/assets").await;
    assert_eq!(list["assets"], json!([]), "{list}");
    let policies = b.admin_json(Method::GET, "/policies").await;
    assert_eq!(policies["folders"], json!([]), "{policies}");

    // tenant-b's own upload lands under its prefix and stays out of tenant-a.
    b.upload("promo/a.jpg", "image/jpeg", fixtures::jpeg(20_000, 99))
        .await;
    assert!(
        storage
            .root()
            .join("tenant-b/assets/promo/a.jpg.json")
            .is_file()
    );
    assert_eq!(served(&a2, "promo/a.jpg").await.body, small);
    for f in files_under(&storage.root()) {
        assert!(
            f.starts_with("tenant-a/") || f.starts_with("tenant-b/"),
            "{f}"
        );
    }
}
