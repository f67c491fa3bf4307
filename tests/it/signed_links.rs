//! Signed, expiring links for assets that must not be public: folders and assets marked
//! signed-only answer 403 without a valid HMAC signature and expiry, keep their cache headers
//! with one, and keep working across a key rotation.

use crate::common;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::{Backend, Storage, TOKEN, TestServer, fixtures};
use media_origin::config::{Secret, Settings};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_media-origin");
const K1: &str = "k1:first-signing-secret-0123456789";
const K2: &str = "k2:second-signing-secret-987654321";

fn with_keys(keys: &'static [&'static str]) -> impl FnOnce(&mut Settings) {
    move |c: &mut Settings| c.signing.keys = keys.iter().map(|k| Secret::new(*k)).collect()
}

fn header<'a>(r: &'a reqwest::Response, name: &str) -> &'a str {
    r.headers()
        .get(name)
        .map_or("", |v| v.to_str().unwrap_or(""))
}

/// A 403 for a signed-only asset: the code, `no-store`, `nosniff`, a JSON body.
async fn assert_forbidden(r: reqwest::Response, code: &str) {
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(header(&r, "cache-control"), "no-store");
    assert_eq!(header(&r, "x-content-type-options"), "nosniff");
    assert!(
        header(&r, "etag").is_empty(),
        "a 403 tells nothing about the asset"
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], code, "{body}");
}

async fn patch(s: &TestServer, path: &str, body: Value) -> Value {
    let r = s
        .admin(Method::PATCH, &format!("/assets/{path}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

async fn sign(s: &TestServer, body: Value) -> Value {
    let r = s
        .admin(Method::POST, "/sign")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

async fn signed_folders_need_a_valid_unexpired_link(backend: Backend) {
    let s = TestServer::start_with(Storage::new(backend).await, with_keys(&[K1])).await;
    let doc = fixtures::pdf(20_000, 1);
    let img = fixtures::jpeg(10_000, 2);
    s.upload("private/a.pdf", "application/pdf", doc.clone())
        .await;
    s.upload("promo/b.jpg", "image/jpeg", img.clone()).await;
    let r = s
        .admin(Method::PUT, "/policies/private")
        .json(&json!({"cache_control": "no-cache"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);

    let r = s
        .admin(Method::PUT, "/access/private")
        .json(&json!({"signed": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let access = s.admin_json(Method::GET, "/access").await;
    assert_eq!(
        access["signed_folders"],
        json!([{"folder": "private", "signed": true, "source": "api"}])
    );

    // Without a signature: 403, even for a conditional request that would be a 304.
    assert_forbidden(s.get(&s.media("private/a.pdf")).await, "signature_required").await;
    let record = s.admin_json(Method::GET, "/assets/private/a.pdf").await;
    let etag = record["etag"].as_str().unwrap().to_owned();
    let r = s
        .client
        .get(s.media("private/a.pdf"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_forbidden(r, "signature_required").await;

    // The record's link is signed and works, with the folder's cache headers.
    assert_eq!(record["signed"], true);
    assert_eq!(record["signed_source"], "folder:private");
    let link = record["link"].as_str().unwrap().to_owned();
    assert!(
        link.contains("&expires=") && link.contains("&kid=k1&sig="),
        "{link}"
    );
    assert!(record["link_expires_at"].is_string());
    assert_eq!(record["message"]["document"]["link"], link.as_str());
    let r = s.get(&link).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "cache-control"), "no-cache");
    assert_eq!(header(&r, "etag"), etag);
    assert!(!header(&r, "last-modified").is_empty());
    assert_eq!(r.bytes().await.unwrap(), doc);
    let r = s
        .client
        .get(&link)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    let r = s
        .client
        .get(&link)
        .header("range", "bytes=0-9")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.bytes().await.unwrap(), &doc[..10]);

    // A changed signature, a signature for another asset, another key id: refused.
    let sig_at = link.find("sig=").unwrap() + 4;
    let mut flipped = link.clone().into_bytes();
    flipped[sig_at] = if flipped[sig_at] == b'a' { b'b' } else { b'a' };
    let flipped = String::from_utf8(flipped).unwrap();
    assert_forbidden(s.get(&flipped).await, "bad_signature").await;
    let other = sign(&s, json!({"path": "promo/b.jpg"})).await;
    let query = other["url"].as_str().unwrap().split_once('?').unwrap().1;
    assert_forbidden(
        s.get(&format!("{}?{query}", s.media("private/a.pdf")))
            .await,
        "bad_signature",
    )
    .await;
    assert_forbidden(
        s.get(&link.replace("kid=k1", "kid=k9")).await,
        "bad_signature",
    )
    .await;

    // A short-lived link works, then expires.
    let short = sign(&s, json!({"path": "private/a.pdf", "ttl_secs": 1})).await;
    let short_url = short["url"].as_str().unwrap().to_owned();
    assert_eq!(short["message"]["document"]["link"], short_url.as_str());
    assert_eq!(s.get(&short_url).await.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_forbidden(s.get(&short_url).await, "link_expired").await;

    // Public assets need nothing.
    let r = s.get(&s.media("promo/b.jpg")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.unwrap(), img);

    // Asset settings: public inside a signed folder; signed inside a public one; back.
    let rec = patch(&s, "private/a.pdf", json!({"signed": false})).await;
    assert_eq!(
        (rec["signed"].clone(), rec["signed_source"].clone()),
        (json!(false), json!("asset"))
    );
    assert_eq!(
        s.get(&s.media("private/a.pdf")).await.status(),
        StatusCode::OK
    );
    patch(&s, "private/a.pdf", json!({"signed": null})).await;
    assert_forbidden(s.get(&s.media("private/a.pdf")).await, "signature_required").await;
    let rec = patch(
        &s,
        "promo/b.jpg",
        json!({"signed": true, "cache_control": "max-age=60"}),
    )
    .await;
    assert_eq!(rec["signed_override"], true);
    assert_eq!(rec["cache_control"], "max-age=60");
    assert_forbidden(s.get(&s.media("promo/b.jpg")).await, "signature_required").await;
    let r = s.get(rec["link"].as_str().unwrap()).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "cache-control"), "max-age=60");
    // A replacement keeps the asset's own setting.
    s.upload("promo/b.jpg", "image/jpeg", fixtures::jpeg(11_000, 3))
        .await;
    assert_forbidden(s.get(&s.media("promo/b.jpg")).await, "signature_required").await;

    // Lifting the folder's mark makes it public again; a second lift is 404.
    let r = s
        .admin(Method::DELETE, "/access/private")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        s.get(&s.media("private/a.pdf")).await.status(),
        StatusCode::OK
    );
    let r = s
        .admin(Method::DELETE, "/access/private")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keys_rotate_without_breaking_links_signed_with_the_previous_key() {
    let storage = Storage::new(Backend::Local).await;
    let s = TestServer::start_with(Arc::clone(&storage), with_keys(&[K1])).await;
    s.upload("vip/a.jpg", "image/jpeg", fixtures::jpeg(5_000, 1))
        .await;
    s.admin(Method::PUT, "/access/vip")
        .json(&json!({"signed": true}))
        .send()
        .await
        .unwrap();
    // Kept without the origin: the restarted server listens on another port.
    let old = sign(&s, json!({"path": "vip/a.jpg"})).await["url"]
        .as_str()
        .unwrap()
        .split_once("/media/")
        .unwrap()
        .1
        .to_owned();
    s.stop().await;

    // The new key first: it signs; the old one still verifies.
    let s = TestServer::start_with(Arc::clone(&storage), with_keys(&[K2, K1])).await;
    assert_eq!(s.get(&s.media(&old)).await.status(), StatusCode::OK);
    let new = sign(&s, json!({"path": "vip/a.jpg"})).await["url"]
        .as_str()
        .unwrap()
        .split_once("/media/")
        .unwrap()
        .1
        .to_owned();
    assert!(new.contains("kid=k2"), "{new}");
    assert_eq!(s.get(&s.media(&new)).await.status(), StatusCode::OK);
    s.stop().await;

    // The old key dropped: its links stop working, the new ones do not.
    let s = TestServer::start_with(Arc::clone(&storage), with_keys(&[K2])).await;
    assert_forbidden(s.get(&s.media(&old)).await, "bad_signature").await;
    assert_eq!(s.get(&s.media(&new)).await.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_a_key_nothing_can_be_made_signed_only() {
    let s = TestServer::start().await;
    s.upload("a.jpg", "image/jpeg", fixtures::jpeg(5_000, 1))
        .await;
    for (method, path, body) in [
        (Method::PUT, "/access/private", json!({"signed": true})),
        (Method::POST, "/sign", json!({"path": "a.jpg"})),
        (Method::PATCH, "/assets/a.jpg", json!({"signed": true})),
    ] {
        let r = s
            .admin(method.clone(), path)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{method} {path}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "signing_not_configured");
    }
    assert_eq!(s.get(&s.media("a.jpg")).await.status(), StatusCode::OK);

    // Config: signed folders without a key, or a weak key, are refused at start.
    let mut c = Settings::default();
    c.signing.folders = vec!["private".into()];
    let e = c.validate().unwrap_err().to_string();
    assert!(e.contains("no key"), "{e}");
    let mut c = Settings::default();
    c.signing.keys = vec![Secret::new("k1:short")];
    let e = c.validate().unwrap_err().to_string();
    assert!(e.contains("at least 16") && !e.contains("short"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn config_folders_are_signed_only_and_cannot_be_lifted_through_the_api() {
    let s = TestServer::start_with(Storage::new(Backend::Local).await, |c| {
        c.signing.keys = vec![Secret::new(K1)];
        c.signing.folders = vec!["/legal/".into()];
        c.signing.link_ttl_secs = 3600;
    })
    .await;
    s.upload(
        "legal/terms.pdf",
        "application/pdf",
        fixtures::pdf(3_000, 1),
    )
    .await;
    assert_forbidden(
        s.get(&s.media("legal/terms.pdf")).await,
        "signature_required",
    )
    .await;
    let access = s.admin_json(Method::GET, "/access").await;
    assert_eq!(
        access["signed_folders"],
        json!([{"folder": "legal", "signed": true, "source": "config"}])
    );
    assert_eq!(access["link_ttl_secs"], 3600);
    let r = s
        .admin(Method::DELETE, "/access/legal")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_forbidden(
        s.get(&s.media("legal/terms.pdf")).await,
        "signature_required",
    )
    .await;
    // Nor by `{"signed": false}`, which must not answer that it did, with or without an API
    // mark of the same folder beside the config's; nothing changes.
    for api_mark in [false, true] {
        if api_mark {
            let r = s
                .admin(Method::PUT, "/access/legal")
                .json(&json!({"signed": true}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::CREATED);
        }
        let before = s.admin_json(Method::GET, "/access").await;
        let r = s
            .admin(Method::PUT, "/access/legal/")
            .json(&json!({"signed": false}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CONFLICT, "API mark: {api_mark}");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"]["code"], "config_rule", "{e}");
        let message = e["error"]["message"].as_str().unwrap();
        assert!(message.contains("config file"), "{message}");
        assert_eq!(s.admin_json(Method::GET, "/access").await, before);
        assert_forbidden(
            s.get(&s.media("legal/terms.pdf")).await,
            "signature_required",
        )
        .await;
    }
    // Nor can a folder below a signed-only one be made public by a mark of its own: 409, and
    // nothing changes.
    let before = s.admin_json(Method::GET, "/access").await;
    let r = s
        .admin(Method::PUT, "/access/legal/archive")
        .json(&json!({"signed": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "inherited_rule", "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("\"legal\""),
        "{e}"
    );
    assert_eq!(s.admin_json(Method::GET, "/access").await, before);

    // The API's mark stays (the listing names it, the config's lies beneath).
    let access = s.admin_json(Method::GET, "/access").await;
    assert_eq!(
        access["signed_folders"],
        json!([{"folder": "legal", "signed": true, "source": "api"}])
    );

    // The CLI prints a link that works.
    let server = format!("http://{}", s.admin_addr);
    let out = tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .args([
                "sign",
                "legal/terms.pdf",
                "--ttl",
                "600",
                "--server",
                &server,
            ])
            .env("MEDIA_ORIGIN_ADMIN_TOKEN", TOKEN)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let url = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(url.contains("kid=k1"), "{url}");
    assert_eq!(s.get(&url).await.status(), StatusCode::OK);
}

/// The `max-age` of an answer's `Cache-Control`, if that is what it is.
fn max_age(r: &reqwest::Response) -> Option<u64> {
    header(r, "cache-control")
        .strip_prefix("max-age=")
        .map(|n| n.parse().unwrap())
}

/// The `expires` of a signed link.
fn expires_of(url: &str) -> u64 {
    url.split(['?', '&'])
        .find_map(|p| p.strip_prefix("expires="))
        .unwrap()
        .parse()
        .unwrap()
}

fn since_epoch() -> Duration {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
}

/// GET `url` (with `extra` headers), and the whole seconds its link had left just before the
/// request and just after the answer: a capped `max-age` lies between the two.
async fn fetch_timed(
    s: &TestServer,
    url: &str,
    extra: &[(&str, &str)],
) -> (reqwest::Response, u64, u64) {
    let expires = Duration::from_secs(expires_of(url));
    let before = expires.saturating_sub(since_epoch()).as_secs();
    let mut req = s.client.get(url);
    for (name, value) in extra {
        req = req.header(*name, *value);
    }
    let r = req.send().await.unwrap();
    let after = expires.saturating_sub(since_epoch()).as_secs();
    (r, after, before)
}

async fn a_signed_answer_is_cached_no_longer_than_its_link_lives(backend: Backend) {
    let s = TestServer::start_with(Storage::new(backend).await, with_keys(&[K1])).await;
    let body = fixtures::jpeg(10_000, 1);
    let rec = s.upload("private/a.jpg", "image/jpeg", body.clone()).await;
    assert_eq!(rec["cache_control"], "max-age=86400");
    let r = s
        .admin(Method::PUT, "/access/private")
        .json(&json!({"signed": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let etag = rec["etag"].as_str().unwrap();

    // A link signed for 60 s: every answer through it may be kept 60 s at most (rounded down
    // to whole seconds left), not the asset's day; the other headers are the asset's own.
    let link = sign(&s, json!({"path": "private/a.jpg", "ttl_secs": 60})).await["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let (r, low, high) = fetch_timed(&s, &link, &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
    let age = max_age(&r).unwrap();
    assert!(
        (low..=high).contains(&age) && high <= 60,
        "{age} not in {low}..={high}"
    );
    let mut served: Vec<(String, String)> = r
        .headers()
        .iter()
        .filter(|(n, _)| !["x-request-id", "date"].contains(&n.as_str()))
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned()))
        .collect();
    let mut expected: Vec<(String, String)> = rec["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            let name = h["name"].as_str().unwrap().to_owned();
            let value = if name == "cache-control" {
                format!("max-age={age}")
            } else {
                h["value"].as_str().unwrap().to_owned()
            };
            (name, value)
        })
        .collect();
    served.sort();
    expected.sort();
    assert_eq!(served, expected);
    assert_eq!(r.bytes().await.unwrap(), body);
    // So are a 304, a 206 and a HEAD.
    let (r, low, high) = fetch_timed(&s, &link, &[("if-none-match", etag)]).await;
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    let age = max_age(&r).unwrap();
    assert!(
        (low..=high).contains(&age) && high <= 60,
        "{age} not in {low}..={high}"
    );
    assert_eq!(header(&r, "etag"), etag);
    let (r, low, high) = fetch_timed(&s, &link, &[("range", "bytes=0-9")]).await;
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    let age = max_age(&r).unwrap();
    assert!(
        (low..=high).contains(&age) && high <= 60,
        "{age} not in {low}..={high}"
    );
    assert_eq!(header(&r, "content-range"), "bytes 0-9/10000");
    let r = s.client.head(&link).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(max_age(&r).unwrap() <= 60);

    // A link that outlives the policy keeps the policy's own max-age; the shorter one served
    // in between left nothing behind, here or in the record's headers.
    let long = sign(&s, json!({"path": "private/a.jpg", "ttl_secs": 3 * 86_400})).await["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = s.get(&long).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "cache-control"), "max-age=86400");
    let r = s
        .client
        .get(&long)
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(header(&r, "cache-control"), "max-age=86400");
    let again = s.admin_json(Method::GET, "/assets/private/a.jpg").await;
    assert_eq!(again["headers"], rec["headers"]);

    // In the last second of its life a link's answers may not be kept at all: max-age=0.
    let short = sign(&s, json!({"path": "private/a.jpg", "ttl_secs": 2})).await["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let last_second = Duration::from_secs(expires_of(&short)) + Duration::from_millis(200);
    tokio::time::sleep(last_second.saturating_sub(since_epoch())).await;
    let r = s.get(&short).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "cache-control"), "max-age=0");

    // Policies that keep shared caches from reusing an answer unchecked stay as they are.
    for policy in ["no-cache", "no-store", "private"] {
        patch(&s, "private/a.jpg", json!({"cache_control": policy})).await;
        let r = s.get(&link).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(header(&r, "cache-control"), policy);
    }
    // And a shorter max-age than the link's life is kept.
    patch(&s, "private/a.jpg", json!({"cache_control": "max-age=30"})).await;
    let r = s.get(&link).await;
    assert_eq!(header(&r, "cache-control"), "max-age=30");

    // Public again: no link, the policy's own max-age.
    patch(
        &s,
        "private/a.jpg",
        json!({"cache_control": null, "signed": false}),
    )
    .await;
    let r = s.get(&s.media("private/a.jpg")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "cache-control"), "max-age=86400");
}

/// Everything of an answer but the request ID and the date: two answers that agree on this
/// tell a client nothing apart.
async fn answer(r: reqwest::Response) -> (StatusCode, Vec<(String, String)>, bytes::Bytes) {
    let mut headers: Vec<(String, String)> = r
        .headers()
        .iter()
        .filter(|(n, _)| !["x-request-id", "date"].contains(&n.as_str()))
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_owned()))
        .collect();
    headers.sort();
    (r.status(), headers, r.bytes().await.unwrap())
}

async fn private_names_cannot_be_probed_without_a_valid_link(backend: Backend) {
    let s = TestServer::start_with(Storage::new(backend).await, with_keys(&[K1])).await;
    s.upload("private/a.pdf", "application/pdf", fixtures::pdf(5_000, 1))
        .await;
    s.upload(
        "private/x/b.pdf",
        "application/pdf",
        fixtures::pdf(5_000, 2),
    )
    .await;
    let r = s
        .admin(Method::PUT, "/access/private")
        .json(&json!({"signed": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    // Links made with the server's key, as anyone who once got one holds: for other names,
    // and expired.
    let signer =
        media_origin::signing::Signer::from_settings(&media_origin::config::SigningSettings {
            keys: vec![Secret::new(K1)],
            ..Default::default()
        })
        .unwrap();
    let now = since_epoch().as_secs();
    let other = signer.sign("promo/public.jpg", now + 600).unwrap();
    let expired = |path: &str| signer.sign(path, now - 10).unwrap();

    for (existing, missing) in [
        ("private/a.pdf", "private/nope.pdf"),
        ("private/x/b.pdf", "private/x/nope.pdf"),
    ] {
        for what in [
            "no link",
            "another name's link",
            "an expired link",
            "a forged signature",
        ] {
            let query = |path: &str| match what {
                "no link" => String::new(),
                "another name's link" => format!("?{other}"),
                "an expired link" => format!("?{}", expired(path)),
                _ => format!("?expires={}&kid=k1&sig={}", now + 600, "ab".repeat(32)),
            };
            for extra in [
                None,
                Some(("if-none-match", "\"x\"")),
                Some(("range", "bytes=0-9")),
            ] {
                let get = |path: &str| {
                    let mut req = s.client.get(format!("{}{}", s.media(path), query(path)));
                    if let Some((name, value)) = extra {
                        req = req.header(name, value);
                    }
                    req.send()
                };
                let there = answer(get(existing).await.unwrap()).await;
                let not_there = answer(get(missing).await.unwrap()).await;
                assert_eq!(
                    there.0,
                    StatusCode::FORBIDDEN,
                    "{existing}, {what}, {extra:?}"
                );
                assert_eq!(
                    there, not_there,
                    "{existing} and {missing} tell apart with {what}, {extra:?}"
                );
                let code = match what {
                    "no link" => "signature_required",
                    "an expired link" => "link_expired",
                    _ => "bad_signature",
                };
                let body: Value = serde_json::from_slice(&there.2).unwrap();
                assert_eq!(body["error"]["code"], code, "{what}");
            }
            let head = |path: &str| {
                s.client
                    .head(format!("{}{}", s.media(path), query(path)))
                    .send()
            };
            let there = answer(head(existing).await.unwrap()).await;
            let not_there = answer(head(missing).await.unwrap()).await;
            assert_eq!(there.0, StatusCode::FORBIDDEN);
            assert_eq!(there, not_there, "HEAD, {what}");
        }
    }
    // With a valid link the name is the signer's to know: the asset, or 404.
    let valid = |path: &str| {
        format!(
            "{}?{}",
            s.media(path),
            signer.sign(path, now + 600).unwrap()
        )
    };
    assert_eq!(
        s.get(&valid("private/a.pdf")).await.status(),
        StatusCode::OK
    );
    let r = s.get(&valid("private/nope.pdf")).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"error": {"code": "not_found", "message": "no asset at this path"}})
    );
    // An asset made public inside the folder is served to all; a name beside it that has no
    // asset still answers as a signed-only one does.
    patch(&s, "private/a.pdf", json!({"signed": false})).await;
    assert_eq!(
        s.get(&s.media("private/a.pdf")).await.status(),
        StatusCode::OK
    );
    assert_forbidden(
        s.get(&s.media("private/nope.pdf")).await,
        "signature_required",
    )
    .await;
    // Outside signed-only folders nothing changed: a missing name is 404.
    assert_eq!(
        s.get(&s.media("promo/nope.jpg")).await.status(),
        StatusCode::NOT_FOUND
    );
}

async fn folder_rules_on_an_asset_path_are_refused(backend: Backend) {
    let s = TestServer::start_with(Storage::new(backend).await, with_keys(&[K1])).await;
    s.upload("promo/red.jpg", "image/jpeg", fixtures::jpeg(5_000, 1))
        .await;
    let refused = |message: &str| json!({"error": {"code": "not_a_folder", "message": message}});
    let access_before = s.admin_json(Method::GET, "/access").await;
    let policies_before = s.admin_json(Method::GET, "/policies").await;
    for signed in [true, false] {
        let r = s
            .admin(Method::PUT, "/access/promo/red.jpg")
            .json(&json!({"signed": signed}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            r.json::<Value>().await.unwrap(),
            refused(&format!(
                "\"promo/red.jpg\" is an asset, not a folder: marking it as a folder would apply \
                 to nothing. Set the asset's own signed-link setting with PATCH \
                 /api/assets/promo/red.jpg and {{\"signed\":{signed}}}"
            ))
        );
    }
    let r = s
        .admin(Method::PUT, "/policies/promo/red.jpg")
        .json(&json!({"cache_control": "no-store"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        refused(
            "\"promo/red.jpg\" is an asset, not a folder: a folder policy there would apply to \
             nothing. Set the asset's own policy with PATCH /api/assets/promo/red.jpg and \
             {\"cache_control\":\"no-store\"}"
        )
    );
    // Nothing changed.
    assert_eq!(s.admin_json(Method::GET, "/access").await, access_before);
    assert_eq!(
        s.admin_json(Method::GET, "/policies").await,
        policies_before
    );
    let r = s.get(&s.media("promo/red.jpg")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "cache-control"), "max-age=86400");
    // What the message says does it.
    let rec = patch(
        &s,
        "promo/red.jpg",
        json!({"signed": true, "cache_control": "no-store"}),
    )
    .await;
    assert_eq!(rec["signed_source"], "asset");
    assert_eq!(rec["policy_source"], "asset");
    assert_forbidden(s.get(&s.media("promo/red.jpg")).await, "signature_required").await;

    // A name that is both an asset and a folder of assets is a folder too: its rules apply to
    // what lies below it. A folder with no assets yet takes rules as before.
    s.upload("promo/banner", "image/jpeg", fixtures::jpeg(5_000, 2))
        .await;
    s.upload("promo/banner/a.jpg", "image/jpeg", fixtures::jpeg(5_000, 3))
        .await;
    for (folder, status) in [
        ("promo/banner", StatusCode::CREATED),
        ("promo/new", StatusCode::CREATED),
    ] {
        let r = s
            .admin(Method::PUT, &format!("/policies/{folder}"))
            .json(&json!({"cache_control": "no-cache"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{folder}");
        let r = s
            .admin(Method::PUT, &format!("/access/{folder}"))
            .json(&json!({"signed": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{folder}");
    }
    let rec = s
        .admin_json(Method::GET, "/assets/promo/banner/a.jpg")
        .await;
    assert_eq!(
        (rec["policy_source"].clone(), rec["signed_source"].clone()),
        (json!("folder:promo/banner"), json!("folder:promo/banner"))
    );
}

on_both_backends! {
    signed_folders_need_a_valid_unexpired_link,
    a_signed_answer_is_cached_no_longer_than_its_link_lives,
    private_names_cannot_be_probed_without_a_valid_link,
    folder_rules_on_an_asset_path_are_refused,
}
