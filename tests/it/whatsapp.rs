//! Media IDs over the whole path: the admin API uploads to a faithful fake of Meta's Graph API
//! (tests/it/common/graph.rs checks version, token, multipart fields, bytes and type), keeps the ID
//! with the asset, reuses it, uploads again after expiry or new bytes, retries what Meta's table
//! says is transient and reports Meta's error details for the rest.

use crate::common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::graph::{Fault, GRAPH_TOKEN, GraphServer, OTHER_PHONE_NUMBER_ID, PHONE_NUMBER_ID};
use common::{Backend, Storage, TestServer, fixtures};
use media_origin::config::{Secret, TtlMinutes};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const META_TOKEN: &str = GRAPH_TOKEN;
const PHONE: &str = PHONE_NUMBER_ID;
const OTHER_PHONE: &str = OTHER_PHONE_NUMBER_ID;

async fn graph() -> Arc<GraphServer> {
    GraphServer::start_default().await
}

async fn start(
    backend: Backend,
    g: &GraphServer,
    tweak: impl FnOnce(&mut media_origin::config::Settings),
) -> TestServer {
    TestServer::start_with(Storage::new(backend).await, |c| {
        g.configure(c);
        tweak(c);
    })
    .await
}

async fn media(s: &TestServer, body: Value) -> (StatusCode, Value) {
    let r = s
        .admin(Method::POST, "/whatsapp/media")
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    assert!(
        !text.contains(META_TOKEN),
        "the access token leaked: {text}"
    );
    (status, serde_json::from_str(&text).unwrap())
}

fn sha256(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

async fn media_id_is_uploaded_kept_reused_and_renewed(backend: Backend) {
    let g = graph().await;
    let s = start(backend, &g, |_| {}).await;
    let body = fixtures::jpeg(48_000, 1);
    // Upload with whatsapp=true: stored, and uploaded to the Media API at once.
    let r = s
        .admin(Method::PUT, "/assets/promo/banner.jpg?whatsapp=true")
        .header("content-type", "image/jpeg")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let rec: Value = r.json().await.unwrap();
    let first = rec["whatsapp_upload"]["media_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(rec["whatsapp_upload"]["reused"], false);
    assert_eq!(rec["whatsapp_upload"]["phone_number_id"], PHONE);
    assert_eq!(rec["whatsapp"][PHONE]["media_id"], first.as_str());
    assert_eq!(rec["whatsapp"][PHONE]["valid"], true);
    assert_eq!(
        rec["message_by_id"],
        json!({"type": "image", "image": {"id": first}})
    );
    // What Meta received: the exact type, the bytes, the file name, on the default number.
    let ups = g.uploads();
    assert_eq!(ups.len(), 1);
    assert_eq!(ups[0].phone_number_id, PHONE);
    assert_eq!(ups[0].type_field, "image/jpeg");
    assert_eq!(ups[0].part_content_type, "image/jpeg");
    assert_eq!(ups[0].filename, "banner.jpg");
    assert_eq!(
        ups[0].ttl_minutes, None,
        "no ttl_minutes configured, none sent"
    );
    assert_eq!(ups[0].size, body.len() as u64);
    assert_eq!(ups[0].sha256, sha256(&body));
    assert!(
        ups[0]
            .header("content-type")
            .unwrap()
            .starts_with("multipart/form-data; boundary=")
    );

    // Asked again: the same ID, no request to Meta.
    let (status, got) = media(&s, json!({"path": "promo/banner.jpg"})).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(got["media_id"], first.as_str());
    assert_eq!(got["reused"], true);
    assert_eq!(
        got["message"],
        json!({"type": "image", "image": {"id": first}})
    );
    assert_eq!(g.upload_attempts(), 1);

    // Another number gets its own upload.
    let (_, other) = media(
        &s,
        json!({"path": "promo/banner.jpg", "phone_number_id": OTHER_PHONE}),
    )
    .await;
    assert_eq!(other["reused"], false);
    assert_eq!(g.uploads()[1].phone_number_id, OTHER_PHONE);

    // 28 days on, past the 27-day reuse window: a new upload.
    s.clock.advance(28 * 86_400);
    let (_, renewed) = media(&s, json!({"path": "promo/banner.jpg"})).await;
    assert_eq!(renewed["reused"], false);
    assert_ne!(renewed["media_id"], first.as_str());
    assert_eq!(g.upload_attempts(), 3);

    // New bytes at the path: the kept IDs go with the old bytes; the next ask uploads these.
    let new_body = fixtures::jpeg(30_000, 2);
    let rec = s
        .upload("promo/banner.jpg", "image/jpeg", new_body.clone())
        .await;
    assert_eq!(rec["whatsapp"], json!({}));
    assert_eq!(rec["message_by_id"], Value::Null);
    let (_, fresh) = media(&s, json!({"path": "promo/banner.jpg"})).await;
    assert_eq!(fresh["reused"], false);
    assert_eq!(g.uploads().last().unwrap().sha256, sha256(&new_body));
    // force uploads again even while valid.
    let (_, forced) = media(&s, json!({"path": "promo/banner.jpg", "force": true})).await;
    assert_eq!(forced["reused"], false);
    assert_ne!(forced["media_id"], fresh["media_id"]);
}

async fn documents_are_sent_by_id_with_their_file_name(backend: Backend) {
    let g = graph().await;
    let s = start(backend, &g, |_| {}).await;
    s.upload(
        "docs/terms.pdf",
        "application/pdf",
        fixtures::pdf(20_000, 3),
    )
    .await;
    let (status, got) = media(&s, json!({"path": "docs/terms.pdf"})).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(
        got["message"],
        json!({"type": "document", "document": {"id": got["media_id"], "filename": "terms.pdf"}})
    );
    assert_eq!(g.uploads()[0].type_field, "application/pdf");
    assert_eq!(g.uploads()[0].filename, "terms.pdf");
}

on_both_backends! {
    media_id_is_uploaded_kept_reused_and_renewed,
    documents_are_sent_by_id_with_their_file_name,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transient_failures_are_retried_honouring_retry_after() {
    let g = graph().await;
    let s = start(Backend::Local, &g, |_| {}).await;
    s.upload("a.png", "image/png", fixtures::png(10_000, 4))
        .await;
    g.push_fault(Fault::Http429 {
        retry_after: Some(1),
    });
    g.push_fault(Fault::Status500);
    g.push_fault(Fault::Code {
        code: 130429,
        subcode: None,
        http_status: 400,
    });
    let started = Instant::now();
    let (status, got) = media(&s, json!({"path": "a.png"})).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(got["reused"], false);
    assert_eq!(g.upload_attempts(), 4);
    assert_eq!(g.uploads().len(), 1);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After was not honoured"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn permanent_errors_stop_at_once_with_metas_details() {
    let g = graph().await;
    let s = start(Backend::Local, &g, |_| {}).await;
    s.upload("a.png", "image/png", fixtures::png(10_000, 4))
        .await;
    for (code, ours) in [
        (100, "whatsapp_invalid_parameter"),
        (131053, "whatsapp_media_upload_error"),
        (190, "whatsapp_access_token_invalid"),
    ] {
        let before = g.upload_attempts();
        g.push_fault(Fault::Code {
            code,
            subcode: Some(2494010),
            http_status: 400,
        });
        let (status, got) = media(&s, json!({"path": "a.png"})).await;
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{got}");
        assert_eq!(got["error"]["code"], ours, "{got}");
        assert_eq!(got["error"]["meta"]["code"], code, "{got}");
        assert_eq!(got["error"]["meta"]["error_subcode"], 2494010, "{got}");
        assert!(got["error"]["meta"]["fbtrace_id"].is_string(), "{got}");
        assert_eq!(got["error"]["attempts"], 1);
        assert_eq!(g.upload_attempts(), before + 1, "{code} was retried");
    }
    // Malformed JSON on a 200 is not retried: the upload may have landed.
    g.push_fault(Fault::MalformedJson);
    let before = g.upload_attempts();
    let (status, got) = media(&s, json!({"path": "a.png"})).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(got["error"]["code"], "whatsapp_bad_response");
    assert_eq!(g.upload_attempts(), before + 1);
    // Nothing was kept.
    let rec = s.admin_json(Method::GET, "/assets/a.png").await;
    assert_eq!(rec["whatsapp"], json!({}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wrong_token_is_reported_and_never_echoed() {
    let g = graph().await;
    let s = start(Backend::Local, &g, |c| {
        c.whatsapp.access_token = Some(Secret::new("EAAG-wrong-token"));
    })
    .await;
    s.upload("a.png", "image/png", fixtures::png(10_000, 4))
        .await;
    let r = s
        .admin(Method::POST, "/whatsapp/media")
        .json(&json!({"path": "a.png"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
    let text = r.text().await.unwrap();
    assert!(!text.contains("EAAG-wrong-token"), "{text}");
    let got: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(got["error"]["code"], "whatsapp_access_token_invalid");
    assert_eq!(got["error"]["meta"]["code"], 190);
    assert_eq!(got["error"]["meta"]["http_status"], 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn timeouts_and_exhausted_rate_limits_are_bounded() {
    let g = graph().await;
    let s = start(Backend::Local, &g, |c| {
        c.whatsapp.timeout_ms = 300;
        c.whatsapp.max_retries = 1;
    })
    .await;
    s.upload("a.png", "image/png", fixtures::png(10_000, 4))
        .await;
    g.push_faults(2, Fault::Hang(Duration::from_secs(3)));
    let started = Instant::now();
    let (status, got) = media(&s, json!({"path": "a.png"})).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{got}");
    assert_eq!(got["error"]["code"], "whatsapp_timeout");
    assert_eq!(got["error"]["attempts"], 2);
    assert!(started.elapsed() < Duration::from_secs(3));
    g.push_faults(
        2,
        Fault::Code {
            code: 4,
            subcode: None,
            http_status: 400,
        },
    );
    let (status, got) = media(&s, json!({"path": "a.png"})).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{got}");
    assert_eq!(got["error"]["code"], "whatsapp_rate_limited");
    assert_eq!(got["error"]["attempts"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refused_locally_unconfigured_and_unknown_numbers() {
    let g = graph().await;
    let s = start(Backend::Local, &g, |_| {}).await;
    let (status, got) = media(&s, json!({"path": "nothing.png"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{got}");
    s.upload("a.png", "image/png", fixtures::png(10_000, 4))
        .await;
    let (status, got) = media(&s, json!({"path": "a.png", "phone_number_id": "999"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(got["error"]["code"], "unknown_phone_number");
    let (status, got) = media(&s, json!({"pth": "a.png"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(got["error"]["code"], "invalid_json");
    assert_eq!(g.upload_attempts(), 0);
    let bare = TestServer::start().await;
    bare.upload("a.png", "image/png", fixtures::png(10_000, 4))
        .await;
    let (status, got) = media(&bare, json!({"path": "a.png"})).await;
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED);
    assert_eq!(got["error"]["code"], "whatsapp_not_configured");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bulk_refresh_uploads_what_expires_and_reports_the_rest() {
    let g = graph().await;
    let s = start(Backend::Local, &g, |_| {}).await;
    for (i, name) in ["a.png", "b.png", "c.png"].iter().enumerate() {
        s.upload(
            &format!("promo/{name}"),
            "image/png",
            fixtures::png(5_000, i as u64),
        )
        .await;
    }
    s.upload("other/d.png", "image/png", fixtures::png(5_000, 9))
        .await;
    media(&s, json!({"path": "promo/a.png"})).await;
    let refresh = |within: u64| {
        let s = &s;
        async move {
            let r = s
                .admin(Method::POST, "/whatsapp/refresh")
                .json(&json!({"prefix": "promo/", "expiring_within_secs": within}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            r.json::<Value>().await.unwrap()
        }
    };
    let report = refresh(86_400).await;
    assert_eq!(report["reused"], json!(["promo/a.png"]));
    let uploaded: Vec<&str> = report["uploaded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["path"].as_str().unwrap())
        .collect();
    assert_eq!(uploaded, ["promo/b.png", "promo/c.png"]);
    assert_eq!(report["failed"], json!([]));
    assert_eq!(g.uploads().len(), 3);
    // Each new ID's expiry is an HTTP-date, as everywhere else in the API: the record's.
    for u in report["uploaded"].as_array().unwrap() {
        let expires = u["expires_at"]
            .as_str()
            .expect("an HTTP-date, not a number");
        assert!(httpdate::parse_http_date(expires).is_ok(), "{expires}");
        let path = u["path"].as_str().unwrap();
        let rec = s.admin_json(Method::GET, &format!("/assets/{path}")).await;
        assert_eq!(rec["whatsapp"][PHONE]["expires_at"], expires, "{rec}");
        assert_eq!(rec["whatsapp"][PHONE]["media_id"], u["media_id"], "{rec}");
    }
    // The prefix is checked as the listing checks it, before anything is asked of Meta; a
    // leading slash is ignored there too.
    for bad in ["../promo/", "promo/%2e%2e/", "a\\b", "promo//x", "/.."] {
        let r = s
            .admin(Method::POST, "/whatsapp/refresh")
            .json(&json!({"prefix": bad}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"]["code"], "invalid_path", "{bad}: {e}");
        let listed = s
            .admin(Method::GET, "/assets")
            .query(&[("prefix", bad)])
            .send()
            .await
            .unwrap();
        assert_eq!(listed.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
    assert_eq!(g.upload_attempts(), 3);
    let r = s
        .admin(Method::POST, "/whatsapp/refresh")
        .json(&json!({"prefix": "/promo/", "expiring_within_secs": 86_400}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let report: Value = r.json().await.unwrap();
    assert_eq!(report["reused"].as_array().unwrap().len(), 3, "{report}");
    // 25 days on, everything expires within 3 days: all three again, one failing.
    s.clock.advance(25 * 86_400);
    g.push_fault(Fault::Code {
        code: 131053,
        subcode: None,
        http_status: 400,
    });
    let report = refresh(3 * 86_400).await;
    assert_eq!(report["uploaded"].as_array().unwrap().len(), 2, "{report}");
    assert_eq!(report["failed"][0]["path"], "promo/a.png");
    assert_eq!(report["failed"][0]["code"], "whatsapp_media_upload_error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replaced_and_deleted_assets_drop_their_ids_at_meta_when_configured() {
    let g = graph().await;
    let s = start(Backend::Local, &g, |c| c.whatsapp.delete_replaced = true).await;
    s.upload("a.png", "image/png", fixtures::png(5_000, 1))
        .await;
    let (_, first) = media(&s, json!({"path": "a.png"})).await;
    s.upload("a.png", "image/png", fixtures::png(5_000, 2))
        .await;
    let (_, second) = media(&s, json!({"path": "a.png"})).await;
    let status = s
        .admin(Method::DELETE, "/assets/a.png")
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::NO_CONTENT);
    let want = vec![
        first["media_id"].as_str().unwrap().to_owned(),
        second["media_id"].as_str().unwrap().to_owned(),
    ];
    let deadline = Instant::now() + Duration::from_secs(5);
    while g.deleted() != want {
        assert!(
            Instant::now() < deadline,
            "deleted at Meta: {:?}",
            g.deleted()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Seconds between two HTTP-dates of a record.
fn secs_between(from: &Value, to: &Value) -> u64 {
    let parse = |v: &Value| {
        httpdate::parse_http_date(v.as_str().unwrap_or_else(|| panic!("not a date: {v}"))).unwrap()
    };
    parse(to).duration_since(parse(from)).unwrap().as_secs()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn uploads_carry_the_ttl_of_their_number_and_the_canonical_file_name() {
    let g = graph().await;
    let s = start(Backend::Local, &g, |c| {
        c.whatsapp.ttl_minutes = Some(TtlMinutes::PerPhone(
            [(PHONE.to_owned(), 1440)].into_iter().collect(),
        ));
    })
    .await;
    // An asset path without an extension, stored as PNG.
    s.upload("promo/banner", "image/png", fixtures::png(10_000, 1))
        .await;
    let (status, got) = media(&s, json!({"path": "promo/banner"})).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    let (status, other) = media(
        &s,
        json!({"path": "promo/banner", "phone_number_id": OTHER_PHONE}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{other}");
    let ups = g.uploads();
    assert_eq!(ups.len(), 2);
    assert_eq!(ups[0].phone_number_id, PHONE);
    assert_eq!(ups[0].ttl_minutes.as_deref(), Some("1440"));
    assert_eq!(ups[0].filename, "banner.png");
    assert_eq!(ups[0].part_content_type, "image/png");
    // The number the table does not name sends none, and keeps Meta's 30 days.
    assert_eq!(ups[1].phone_number_id, OTHER_PHONE);
    assert_eq!(ups[1].ttl_minutes, None);
    assert_eq!(ups[1].filename, "banner.png");

    // Reuse windows: 27/30 of a day for the TTL number, 27 days for the other.
    let rec = s.admin_json(Method::GET, "/assets/promo/banner").await;
    let ids = &rec["whatsapp"];
    assert_eq!(
        secs_between(&ids[PHONE]["uploaded_at"], &ids[PHONE]["expires_at"]),
        77_760,
        "{rec}"
    );
    assert_eq!(got["expires_at"], ids[PHONE]["expires_at"]);
    assert_eq!(
        secs_between(
            &ids[OTHER_PHONE]["uploaded_at"],
            &ids[OTHER_PHONE]["expires_at"]
        ),
        27 * 86_400,
        "{rec}"
    );

    // Whatever the asset is called, Meta gets `<stem>.<canonical extension>` and the exact type.
    for (path, declared, bytes, sent, part_type) in [
        (
            "docs/terms.final.v2",
            "application/pdf",
            fixtures::pdf(5_000, 2),
            "terms.final.pdf",
            "application/pdf",
        ),
        (
            "voice/hello.opus",
            "audio/ogg",
            fixtures::ogg_opus(5_000, 4),
            "hello.ogg",
            "audio/ogg; codecs=opus",
        ),
        (
            "notes/read.me.bak",
            "text/plain",
            fixtures::text(500),
            "read.me.txt",
            "text/plain",
        ),
    ] {
        s.upload(path, declared, bytes).await;
        let (status, got) = media(&s, json!({"path": path})).await;
        assert_eq!(status, StatusCode::OK, "{path}: {got}");
        let u = g.uploads().pop().unwrap();
        assert_eq!(u.filename, sent, "{path}");
        assert_eq!(u.part_content_type, part_type, "{path}");
        assert_eq!(u.type_field, part_type, "{path}");
        assert_eq!(u.ttl_minutes.as_deref(), Some("1440"), "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_short_ttl_id_is_renewed_before_its_lifetime_ends_not_after_27_days() {
    let g = graph().await;
    let s = start(Backend::Local, &g, |c| {
        c.whatsapp.ttl_minutes = Some(TtlMinutes::All(60));
    })
    .await;
    s.upload("a.png", "image/png", fixtures::png(10_000, 1))
        .await;
    let (_, first) = media(&s, json!({"path": "a.png"})).await;
    assert_eq!(first["reused"], false, "{first}");
    // One value: every number sends it.
    media(&s, json!({"path": "a.png", "phone_number_id": OTHER_PHONE})).await;
    let seen: Vec<Option<String>> = g.uploads().into_iter().map(|u| u.ttl_minutes).collect();
    assert_eq!(seen, [Some("60".to_owned()), Some("60".to_owned())]);
    // Handed out for 54 of the 60 minutes.
    assert_eq!(
        secs_between(&first["uploaded_at"], &first["expires_at"]),
        54 * 60
    );

    // 50 minutes on: still the same ID.
    s.clock.advance(50 * 60);
    let (_, again) = media(&s, json!({"path": "a.png"})).await;
    assert_eq!(again["reused"], true, "{again}");
    assert_eq!(again["media_id"], first["media_id"]);
    let rec = s.admin_json(Method::GET, "/assets/a.png").await;
    assert_eq!(rec["whatsapp"][PHONE]["valid"], true, "{rec}");
    assert!(rec["message_by_id"].is_object(), "{rec}");

    // 55 minutes on, inside the safety margin: no longer handed out, anywhere...
    s.clock.advance(5 * 60);
    let rec = s.admin_json(Method::GET, "/assets/a.png").await;
    assert_eq!(rec["whatsapp"][PHONE]["valid"], false, "{rec}");
    assert_eq!(rec["message_by_id"], Value::Null, "{rec}");
    // ... and the next ask uploads anew, with the TTL again.
    let (_, renewed) = media(&s, json!({"path": "a.png"})).await;
    assert_eq!(renewed["reused"], false, "{renewed}");
    assert_ne!(renewed["media_id"], first["media_id"]);
    assert_eq!(g.upload_attempts(), 3);
    assert_eq!(g.uploads()[2].ttl_minutes.as_deref(), Some("60"));

    // A bulk refresh judges by the same lifetime: fresh now, due 50 minutes on when asked
    // for 5 minutes to spare.
    let refresh = |within: u64| {
        let s = &s;
        async move {
            let r = s
                .admin(Method::POST, "/whatsapp/refresh")
                .json(&json!({"prefix": "", "expiring_within_secs": within}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            r.json::<Value>().await.unwrap()
        }
    };
    let report = refresh(300).await;
    assert_eq!(report["reused"], json!(["a.png"]), "{report}");
    s.clock.advance(50 * 60);
    let report = refresh(300).await;
    assert_eq!(report["uploaded"][0]["path"], "a.png", "{report}");
    assert_eq!(g.upload_attempts(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_id_kept_from_before_ttl_minutes_was_set_lives_metas_default_hour() {
    let g = graph().await;
    let storage = Storage::new(Backend::Local).await;
    let s = TestServer::start_with(Arc::clone(&storage), |c| g.configure(c)).await;
    s.upload("a.png", "image/png", fixtures::png(10_000, 1))
        .await;
    let (_, first) = media(&s, json!({"path": "a.png"})).await;
    assert_eq!(g.uploads()[0].ttl_minutes, None);
    s.stop().await;

    // The number turns out to be a No-Storage one: the ID uploaded without a TTL lives an
    // hour at Meta, so it is handed out for 54 minutes, not 27 days.
    let s = TestServer::start_with(storage, |c| {
        g.configure(c);
        c.whatsapp.ttl_minutes = Some(TtlMinutes::PerPhone(
            [(PHONE.to_owned(), 43_200)].into_iter().collect(),
        ));
    })
    .await;
    let rec = s.admin_json(Method::GET, "/assets/a.png").await;
    let kept = &rec["whatsapp"][PHONE];
    assert_eq!(kept["valid"], true, "{rec}");
    assert_eq!(
        secs_between(&kept["uploaded_at"], &kept["expires_at"]),
        54 * 60,
        "{rec}"
    );
    let (_, again) = media(&s, json!({"path": "a.png"})).await;
    assert_eq!(again["reused"], true, "{again}");
    assert_eq!(again["expires_at"], kept["expires_at"]);
    s.clock.advance(55 * 60);
    let rec = s.admin_json(Method::GET, "/assets/a.png").await;
    assert_eq!(rec["whatsapp"][PHONE]["valid"], false, "{rec}");
    let (_, renewed) = media(&s, json!({"path": "a.png"})).await;
    assert_eq!(renewed["reused"], false, "{renewed}");
    assert_ne!(renewed["media_id"], first["media_id"]);
    assert_eq!(g.uploads()[1].ttl_minutes.as_deref(), Some("43200"));
    // Uploaded with the 30-day TTL: 27 days, like a number without one.
    assert_eq!(
        secs_between(&renewed["uploaded_at"], &renewed["expires_at"]),
        27 * 86_400
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn errors_meta_marks_transient_are_retried_and_its_words_for_people_are_shown() {
    let g = graph().await;
    let s = start(Backend::Local, &g, |_| {}).await;
    s.upload("a.png", "image/png", fixtures::png(10_000, 4))
        .await;
    let detailed = |code: i64, is_transient: Option<bool>| Fault::Detailed {
        code,
        subcode: None,
        http_status: 400,
        is_transient,
        user_title: Some("Upload failed".into()),
        user_msg: Some("Please try again later.".into()),
    };
    // 131053 and 100 are final by Meta's table, unless Meta says the error is transient.
    g.push_fault(detailed(131053, Some(true)));
    g.push_fault(detailed(100, Some(true)));
    let (status, got) = media(&s, json!({"path": "a.png"})).await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(got["reused"], false);
    assert_eq!(
        g.upload_attempts(),
        3,
        "two transient failures, then the upload"
    );
    assert_eq!(g.uploads().len(), 1);

    // Not transient: final at once, with Meta's words for people in the error JSON.
    for is_transient in [Some(false), None] {
        let before = g.upload_attempts();
        g.push_fault(detailed(131053, is_transient));
        let (status, got) = media(&s, json!({"path": "a.png", "force": true})).await;
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{got}");
        assert_eq!(
            g.upload_attempts(),
            before + 1,
            "{is_transient:?} was retried"
        );
        let e = &got["error"];
        assert_eq!(e["code"], "whatsapp_media_upload_error", "{got}");
        assert_eq!(e["attempts"], 1, "{got}");
        assert_eq!(e["meta"]["error_user_title"], "Upload failed", "{got}");
        assert_eq!(
            e["meta"]["error_user_msg"], "Please try again later.",
            "{got}"
        );
        assert_eq!(e["meta"]["is_transient"], json!(is_transient), "{got}");
        assert!(
            e["message"]
                .as_str()
                .unwrap()
                .ends_with("; Meta says: Upload failed: Please try again later."),
            "{got}"
        );
    }
    // Retries that never succeed stop within max_retries, and report Meta's last error.
    g.push_faults(10, detailed(131053, Some(true)));
    let s2 = start(Backend::Local, &g, |c| c.whatsapp.max_retries = 2).await;
    s2.upload("a.png", "image/png", fixtures::png(10_000, 4))
        .await;
    let before = g.upload_attempts();
    let (status, got) = media(&s2, json!({"path": "a.png"})).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{got}");
    assert_eq!(got["error"]["attempts"], 3, "{got}");
    assert_eq!(g.upload_attempts(), before + 3);
    assert_eq!(got["error"]["meta"]["is_transient"], true, "{got}");
}

/// Every asset record carries the `components` entry that makes it a template's media header,
/// beside `message`, by link at once and by ID once there is a valid one; audio and stickers,
/// which a template header cannot be, have none.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn records_carry_the_template_header_by_link_and_by_id() {
    let g = graph().await;
    let s = start(Backend::Local, &g, |_| {}).await;
    let header = |kind: &str, media: Value| json!({"type": "header", "parameters": [{"type": kind, kind: media}]});
    let image = s
        .upload("promo/banner.jpg", "image/jpeg", fixtures::jpeg(5000, 1))
        .await;
    assert_eq!(
        image["template_header"],
        header("image", json!({"link": image["link"]}))
    );
    assert_eq!(image["template_header"]["parameters"][0], image["message"]);
    assert_eq!(image["template_header_by_id"], Value::Null);
    let video = s
        .upload("promo/clip.mp4", "video/mp4", fixtures::mp4(50_000, 2))
        .await;
    assert_eq!(
        video["template_header"],
        header("video", json!({"link": video["link"]}))
    );
    let doc = s
        .upload(
            "docs/terms.pdf",
            "application/pdf",
            fixtures::pdf(20_000, 3),
        )
        .await;
    assert_eq!(
        doc["template_header"],
        header(
            "document",
            json!({"link": doc["link"], "filename": "terms.pdf"})
        )
    );
    let audio = s
        .upload("promo/jingle.m4a", "audio/mp4", fixtures::m4a(20_000, 4))
        .await;
    assert_eq!(audio["kind"], "audio");
    assert_eq!(audio["template_header"], Value::Null, "{audio}");
    let sticker = s
        .upload("promo/hi.webp", "image/webp", fixtures::webp(2000, 5))
        .await;
    assert_eq!(sticker["kind"], "sticker");
    assert_eq!(sticker["template_header"], Value::Null, "{sticker}");
    assert_eq!(sticker["template_header_by_id"], Value::Null);

    // By ID: once the asset has a valid media ID, in the same shape.
    for (path, kind) in [
        ("promo/banner.jpg", "image"),
        ("docs/terms.pdf", "document"),
    ] {
        let (status, got) = media(&s, json!({"path": path})).await;
        assert_eq!(status, StatusCode::OK, "{got}");
        let record = s.admin_json(Method::GET, &format!("/assets/{path}")).await;
        let mut by_id = json!({"id": got["media_id"]});
        if kind == "document" {
            by_id["filename"] = json!("terms.pdf");
        }
        assert_eq!(record["template_header_by_id"], header(kind, by_id));
        assert_eq!(
            record["template_header_by_id"]["parameters"][0],
            record["message_by_id"]
        );
        // The link form stays as it was.
        assert_eq!(
            record["template_header"]["parameters"][0],
            record["message"]
        );
    }
}

/// `GET /api/whatsapp` says whether media IDs can be had and, if not, what to set: what the
/// admin page disables "Get media ID" with.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_status_says_whether_media_ids_can_be_had() {
    let g = graph().await;
    let s = start(Backend::Local, &g, |_| {}).await;
    assert_eq!(
        s.admin_json(Method::GET, "/whatsapp").await,
        json!({
            "configured": true,
            "missing": null,
            "phone_number_ids": [PHONE, OTHER_PHONE],
            "default_phone_number_id": PHONE,
        })
    );
    let bare = TestServer::start().await;
    let status = bare.admin_json(Method::GET, "/whatsapp").await;
    assert_eq!(status["configured"], false);
    assert_eq!(
        status["missing"],
        "WhatsApp uploads are not configured: set the WHATSAPP_ACCESS_TOKEN environment variable"
    );
    assert_eq!(status["phone_number_ids"], json!([]));
    assert_eq!(status["default_phone_number_id"], Value::Null);
    // The same words as the 501 a media ID request gets there.
    bare.upload("a.png", "image/png", fixtures::png(10_000, 4))
        .await;
    let (code, got) = media(&bare, json!({"path": "a.png"})).await;
    assert_eq!(code, StatusCode::NOT_IMPLEMENTED);
    assert_eq!(got["error"]["message"], status["missing"]);
    // Nothing was asked of the Graph API to answer.
    assert_eq!(g.upload_attempts(), 0);
    assert!(g.requests().is_empty(), "{:?}", g.requests());
    // The token is needed, as for every /api route.
    let r = s
        .client
        .get(format!("http://{}/api/whatsapp", s.admin_addr))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}
