//! Housekeeping over real storage: what interrupted uploads leave is removed at start (on S3,
//! after a real crash of the binary mid-upload, the multipart upload too), and blobs no record
//! references are collected after their grace period, never the ones still in use.

use crate::common;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Backend, Storage, TOKEN, TestServer, fixtures};
use media_origin::config::Settings;
use media_origin::policy::CachePolicy;
use media_origin::store::Store;
use reqwest::StatusCode;
use tokio::io::AsyncWriteExt;

#[tokio::test]
async fn start_up_removes_leftovers_of_interrupted_uploads() {
    let s = TestServer::start().await;
    s.upload("promo/a.jpg", "image/jpeg", fixtures::jpeg(1000, 1))
        .await;
    let before = s.files();
    let root = s.root();
    let dir = std::sync::Arc::clone(&s.storage);
    s.stop().await;
    // What a crash mid-upload leaves: a temporary object, object_store's staging files next to
    // a temporary object and next to a record being rewritten.
    std::fs::create_dir_all(root.join("tmp")).unwrap();
    std::fs::write(root.join("tmp/0b3c-upload"), b"partial").unwrap();
    std::fs::write(root.join("tmp/0b3c-upload#1"), b"partial").unwrap();
    std::fs::write(root.join("assets/promo/a.jpg.json#7"), b"{\"half\":").unwrap();
    let s = TestServer::start_with(dir, |_| {}).await;
    let after: Vec<String> = s
        .files()
        .into_iter()
        .filter(|f| !f.starts_with("tmp"))
        .collect();
    assert_eq!(after, before);
    assert!(s.files().iter().all(|f| !f.starts_with("tmp/")));
    assert_eq!(
        s.get(&s.media("promo/a.jpg")).await.status(),
        StatusCode::OK
    );
}

async fn garbage_collection_removes_only_unreferenced_blobs_past_their_grace(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    let old = s
        .upload("a.jpg", "image/jpeg", fixtures::jpeg(1000, 1))
        .await;
    let shared = s
        .upload("b.jpg", "image/jpeg", fixtures::jpeg(1000, 2))
        .await;
    s.upload("c.jpg", "image/jpeg", fixtures::jpeg(1000, 2))
        .await; // same bytes as b.jpg
    let new = s
        .upload("a.jpg", "image/jpeg", fixtures::jpeg(1000, 3))
        .await; // replaces a.jpg
    s.upload("d.jpg", "image/jpeg", fixtures::jpeg(1000, 4))
        .await;
    assert_eq!(
        s.admin(reqwest::Method::DELETE, "/assets/d.jpg")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NO_CONTENT
    );
    let root = s.root();
    let blob = |rec: &serde_json::Value| {
        let sha = rec["sha256"].as_str().unwrap();
        format!("blobs/sha256/{}/{sha}", &sha[..2])
    };
    // A second store over the same storage: what a collector on another instance sees.
    let mut settings = Settings::default();
    s.storage.configure(&mut settings);
    let store = Store::open(&settings.storage, CachePolicy::NoCache, BTreeMap::new()).unwrap();
    // Within the grace period nothing goes.
    let report = store
        .collect_garbage(Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(report.blobs, 0);
    assert!(root.join(blob(&old)).exists());
    // Past it, the replaced and the deleted bytes go; what records reference stays.
    let report = store.collect_garbage(Duration::ZERO).await.unwrap();
    assert_eq!(report.blobs, 2);
    assert!(!root.join(blob(&old)).exists());
    assert!(root.join(blob(&new)).exists());
    assert!(root.join(blob(&shared)).exists());
    for path in ["a.jpg", "b.jpg", "c.jpg"] {
        let r = s.get(&s.media(path)).await;
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert_eq!(r.bytes().await.unwrap().len(), 1000);
    }
    assert_eq!(
        s.get(&s.media("d.jpg")).await.status(),
        StatusCode::NOT_FOUND
    );
}

on_both_backends! {
    garbage_collection_removes_only_unreferenced_blobs_past_their_grace,
}

/// Poll `cond` every 20 ms for up to 10 s.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_s3_upload_killed_with_the_server_is_cleaned_up_once_stale() {
    let storage = Storage::new(Backend::S3).await;
    let s3 = storage.s3();
    // The real binary, over the bucket, configured from the environment alone.
    let (mut child, addr) = common::spawn_binary(
        Command::new(env!("CARGO_BIN_EXE_media-origin"))
            .args(["serve", "--bind", "127.0.0.1:0"])
            .current_dir(storage.dir.path())
            .env("MEDIA_ORIGIN_ADMIN_TOKEN", TOKEN)
            .env("MEDIA_ORIGIN__STORAGE__BACKEND", "s3")
            .env("MEDIA_ORIGIN__STORAGE__BUCKET", common::s3::BUCKET)
            .env("MEDIA_ORIGIN__STORAGE__ENDPOINT", s3.endpoint())
            .env("MEDIA_ORIGIN__STORAGE__ALLOW_HTTP", "true")
            .env("AWS_ACCESS_KEY_ID", common::s3::ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", common::s3::SECRET_KEY),
    );

    // 12 MB announced, 8 MB sent: the first 5 MiB part is uploaded, then the server dies.
    let body = fixtures::pdf(12 << 20, 9);
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "PUT /api/assets/big.pdf HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/pdf\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp.write_all(&body[..8 << 20]).await.unwrap();
    let tmp = |root: &std::path::Path| -> Vec<String> {
        common::files_under(root)
            .into_iter()
            .filter(|f| f.starts_with("tmp/"))
            .collect()
    };
    eventually("a marked multipart upload", || {
        !s3.pending_multipart_uploads().is_empty()
            && tmp(&storage.root())
                .iter()
                .any(|f| f.ends_with(".multipart"))
    })
    .await;
    child.kill().unwrap(); // SIGKILL: no clean-up of its own
    child.wait().unwrap();
    drop(tcp);
    let left = s3.pending_multipart_uploads();
    assert!(!left.is_empty());

    // Another instance starting now cannot tell a crashed upload from one in flight on a third
    // instance: young leftovers stay.
    let s = TestServer::start_with(std::sync::Arc::clone(&storage), |_| {}).await;
    assert_eq!(s3.pending_multipart_uploads(), left);
    assert!(!tmp(&storage.root()).is_empty());
    s.stop().await;
    // Once older than stale_upload_secs, the clean-up at start aborts the upload and removes
    // the marker.
    let s = TestServer::start_with(std::sync::Arc::clone(&storage), |c| {
        c.storage.stale_upload_secs = 0;
    })
    .await;
    assert_eq!(s3.pending_multipart_uploads(), Vec::<String>::new());
    assert_eq!(tmp(&storage.root()), Vec::<String>::new());
    assert_eq!(
        s.admin(reqwest::Method::GET, "/assets/big.pdf")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.get(&s.media("big.pdf")).await.status(),
        StatusCode::NOT_FOUND
    );
}

/// A range of a blob served from a memory map completes while garbage collection deletes the
/// blob: a mapping (and an open file) keeps the unlinked bytes. 3 MiB is mapped whole and kept;
/// 33 MiB, over the 32 MiB kept whole, streams in 1 MiB maps of the open file.
#[tokio::test]
async fn a_range_of_a_mapped_blob_completes_while_garbage_collection_deletes_it() {
    for size in [3 << 20, 33 << 20] {
        let s = TestServer::start().await;
        let bytes = fixtures::pdf(size, 7);
        let record = s.upload("big.pdf", "application/pdf", bytes.clone()).await;
        let sha = record["sha256"].as_str().unwrap().to_owned();
        let blob = s.root().join(format!("blobs/sha256/{}/{sha}", &sha[..2]));
        let (start, end) = (1000, size - 1001);
        let mut r = s
            .client
            .get(s.media("big.pdf"))
            .header("range", format!("bytes={start}-{end}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT, "{size}");
        let mut got = r.chunk().await.unwrap().unwrap().to_vec();
        assert!(got.len() < end - start + 1, "{size}: all sent at once");

        let deleted = s
            .admin(reqwest::Method::DELETE, "/assets/big.pdf")
            .send()
            .await
            .unwrap();
        assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
        let mut settings = Settings::default();
        s.storage.configure(&mut settings);
        let store = Store::open(&settings.storage, CachePolicy::NoCache, BTreeMap::new()).unwrap();
        let report = store.collect_garbage(Duration::ZERO).await.unwrap();
        assert_eq!(report.blobs, 1, "{size}");
        assert!(!blob.exists(), "{size}: the blob is deleted");

        while let Some(chunk) = r.chunk().await.unwrap() {
            got.extend_from_slice(&chunk);
        }
        assert_eq!(got.len(), end - start + 1, "{size}");
        assert!(got == bytes[start..=end], "{size}: the bytes of the range");
        // A new request finds no asset.
        assert_eq!(
            s.get(&s.media("big.pdf")).await.status(),
            StatusCode::NOT_FOUND
        );
    }
}

/// Local blobs go to the socket with sendfile(2) from their files: on one connection that
/// alternates assets, whole and by range, every byte is the asset's; and a blob file removed
/// by hand while its mapping is still cached is served whole from the mapping.
#[tokio::test]
async fn blobs_sent_from_their_files_are_exact_and_survive_a_removed_file() {
    let s = TestServer::start().await;
    let pdf = fixtures::pdf(300_000, 21);
    let jpeg = fixtures::jpeg(70_000, 22);
    let pdf_sha = s.upload("sf/a.pdf", "application/pdf", pdf.clone()).await["sha256"]
        .as_str()
        .unwrap()
        .to_owned();
    s.upload("sf/b.jpg", "image/jpeg", jpeg.clone()).await;
    // One connection for every request.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()
        .unwrap();
    for _ in 0..3 {
        for (path, body) in [("sf/a.pdf", &pdf), ("sf/b.jpg", &jpeg)] {
            let r = client.get(s.media(path)).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            assert!(r.bytes().await.unwrap() == body[..], "{path}: whole");
            let r = client
                .get(s.media(path))
                .header("range", "bytes=1234-56788")
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
            assert!(
                r.bytes().await.unwrap() == body[1234..56789],
                "{path}: range"
            );
        }
    }
    let blob = s
        .root()
        .join(format!("blobs/sha256/{}/{pdf_sha}", &pdf_sha[..2]));
    std::fs::remove_file(&blob).unwrap();
    // A new connection has no file open: it finds none, and sends the mapped bytes.
    let r = reqwest::Client::new()
        .get(s.media("sf/a.pdf"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.bytes().await.unwrap() == pdf[..], "from the mapping");
}
