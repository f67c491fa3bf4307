//! Housekeeping over a real storage directory: what interrupted uploads leave is removed at
//! start, and blobs no record references are collected after their grace period, never the
//! ones still in use.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{TestServer, fixtures};
use media_origin::policy::CachePolicy;
use media_origin::store::Store;
use reqwest::StatusCode;

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

#[tokio::test]
async fn garbage_collection_removes_only_unreferenced_blobs_past_their_grace() {
    let s = TestServer::start().await;
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
    let store = Store::local(
        &root,
        Duration::from_millis(10),
        CachePolicy::NoCache,
        BTreeMap::new(),
    )
    .unwrap();
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
