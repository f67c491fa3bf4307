//! Incoming media import (`POST /api/whatsapp/import`) against the fake Graph API and its
//! download host (tests/it/common/graph.rs): real media files from the ffmpeg corpus, a PDF,
//! a ZIP and an HTML "document", stored whole and signed-only, served with the headers that keep
//! customers' files from being rendered; the webhook payload form; idempotency; corrupt,
//! interrupted, stalled and refused downloads that store nothing; an expired download URL
//! retrieved again; and the failed-lookup budget. On both backends.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use common::graph::{GraphServer, Incoming, PHONE_NUMBER_ID};
use common::media::{self, Corpus};
use common::{Backend, Storage, TestServer, fixtures};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const PHONE: &str = PHONE_NUMBER_ID;

async fn start(
    backend: Backend,
    g: &GraphServer,
    tweak: impl FnOnce(&mut media_origin::config::Settings),
) -> TestServer {
    TestServer::start_with(Storage::new(backend).await, |c| {
        g.configure(c);
        c.signing.keys = vec![media_origin::config::Secret::new("k1:0123456789abcdef0123")];
        tweak(c);
    })
    .await
}

async fn import(s: &TestServer, body: Value) -> (StatusCode, Value, reqwest::header::HeaderMap) {
    let r = s
        .admin(Method::POST, "/whatsapp/import")
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    assert!(
        !text.contains(common::graph::GRAPH_TOKEN),
        "the access token leaked: {text}"
    );
    (status, serde_json::from_str(&text).unwrap(), headers)
}

fn sha256(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// A real ZIP archive (stored, one entry), written out by hand: PKZIP's local header, central
/// directory and end record.
fn zip_with(name: &str, data: &[u8]) -> Vec<u8> {
    let crc = {
        let mut crc = 0xffff_ffffu32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    };
    let (n, len) = (name.len() as u16, data.len() as u32);
    let mut z = Vec::new();
    let common = |z: &mut Vec<u8>| {
        z.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0x21, 0]);
        z.extend_from_slice(&crc.to_le_bytes());
        z.extend_from_slice(&len.to_le_bytes());
        z.extend_from_slice(&len.to_le_bytes());
        z.extend_from_slice(&n.to_le_bytes());
        z.extend_from_slice(&0u16.to_le_bytes());
    };
    z.extend_from_slice(b"PK\x03\x04");
    common(&mut z);
    z.extend_from_slice(name.as_bytes());
    z.extend_from_slice(data);
    let central = z.len() as u32;
    z.extend_from_slice(b"PK\x01\x02\x14\x00");
    common(&mut z);
    z.extend_from_slice(&[0; 12]); // comment length, disk, attributes
    z.extend_from_slice(&0u32.to_le_bytes()); // local header offset
    z.extend_from_slice(name.as_bytes());
    let size = z.len() as u32 - central;
    z.extend_from_slice(b"PK\x05\x06\0\0\0\0\x01\0\x01\0");
    z.extend_from_slice(&size.to_le_bytes());
    z.extend_from_slice(&central.to_le_bytes());
    z.extend_from_slice(&[0, 0]);
    z
}

const HTML: &[u8] = b"<!doctype html><html><body><script>document.cookie</script></body></html>\n";

/// Nothing under `tmp/`, and no blob or record beyond `before`.
fn assert_nothing_stored(s: &TestServer, before: &[String]) {
    let now = s.files();
    let added: Vec<_> = now.iter().filter(|f| !before.contains(f)).collect();
    assert!(added.is_empty(), "left behind: {added:?}");
}

async fn incoming_media_is_imported_whole_signed_and_served_safely(backend: Backend) {
    let g = GraphServer::start_default().await;
    let s = start(backend, &g, |_| {}).await;
    let pdf = fixtures::pdf(30_000, 7);
    let zip = zip_with("photos/a.txt", b"hello from a customer");
    // (bytes, Meta's mime_type, the sender's file name, extension, type stored)
    type Case<'a> = (&'a [u8], &'a str, Option<&'a str>, &'a str, &'a str);
    let cases: Vec<Case> = vec![
        (
            media::file(Corpus::PhotoJpg),
            "image/jpeg",
            None,
            "jpg",
            "image/jpeg",
        ),
        (
            media::file(Corpus::MonoOpusOgg),
            "audio/ogg; codecs=opus",
            None,
            "ogg",
            "audio/ogg; codecs=opus",
        ),
        (
            &pdf,
            "application/pdf",
            Some("Rechnung März.pdf"),
            "pdf",
            "application/pdf",
        ),
        (
            &zip,
            "application/zip",
            Some("photos.zip"),
            "zip",
            "application/zip",
        ),
        (HTML, "text/html", Some("angebot.html"), "html", "text/html"),
        (
            media::file(Corpus::H264AacMp4),
            "video/mp4",
            None,
            "mp4",
            "video/mp4",
        ),
        (
            media::file(Corpus::StickerWebp),
            "image/webp",
            None,
            "webp",
            "image/webp",
        ),
        // Not a type a business may send: kept as what it is, served as an attachment.
        (
            media::file(Corpus::BannerGif),
            "image/gif",
            None,
            "gif",
            "image/gif",
        ),
    ];
    g.set_file_size_as_string(true);
    for (bytes, mime, filename, ext, stored_type) in cases {
        let id = g.add_incoming(PHONE, bytes.to_vec(), mime);
        let mut body = json!({"media_id": id});
        if let Some(f) = filename {
            body["filename"] = json!(f);
        }
        let (status, asset, _) = import(&s, body).await;
        assert_eq!(status, StatusCode::CREATED, "{mime}: {asset}");
        let path = format!("inbox/{PHONE}/{id}.{ext}");
        assert_eq!(asset["path"], path);
        assert_eq!(asset["content_type"], stored_type);
        assert_eq!(asset["size"], bytes.len());
        assert_eq!(asset["sha256"], sha256(bytes));
        assert_eq!(asset["signed"], true);
        assert_eq!(asset["created"], true);
        assert_eq!(asset["imported"]["media_id"], id);
        assert_eq!(asset["imported"]["mime_type"], mime);
        assert_eq!(asset["imported"]["file_size"], bytes.len());
        assert_eq!(asset["imported"]["phone_number_id"], PHONE);
        let name = filename.map_or(format!("{id}.{ext}"), str::to_owned);
        assert_eq!(asset["filename"], name);

        // Private: the plain URL is refused, the signed link serves the bytes whole.
        let plain = s.get(asset["url"].as_str().unwrap()).await;
        assert_eq!(plain.status(), StatusCode::FORBIDDEN);
        let link = asset["link"].as_str().unwrap();
        assert!(link.contains("sig="), "{link}");
        let r = s.get(link).await;
        assert_eq!(r.status(), StatusCode::OK);
        let h = r.headers().clone();
        assert_eq!(r.bytes().await.unwrap(), bytes);
        assert_eq!(h["content-type"], stored_type);
        assert_eq!(h["x-content-type-options"], "nosniff");
        let untrusted = matches!(ext, "zip" | "html" | "gif");
        if untrusted {
            let disposition = h["content-disposition"].to_str().unwrap();
            assert!(
                disposition.starts_with("attachment; filename=\""),
                "{disposition}"
            );
            assert!(disposition.contains(&name), "{disposition}");
            assert_eq!(h["content-security-policy"], "sandbox");
        } else {
            assert!(h.get("content-disposition").is_none(), "{mime}");
            assert!(h.get("content-security-policy").is_none(), "{mime}");
        }
        // The admin API shows the headers served, from the same function.
        let shown: Vec<(String, String)> = asset["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                (
                    h["name"].as_str().unwrap().to_owned(),
                    h["value"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        for (name, value) in &shown {
            if name != "cache-control" {
                assert_eq!(h[name.as_str()].to_str().unwrap(), value, "{name}");
            }
        }
    }
    let html = "<!doctype";
    assert!(HTML.starts_with(html.as_bytes()));
    // Every download carried the token and media-origin's User-Agent.
    let downloads = g.downloads();
    assert_eq!(downloads.len(), 8);
    for d in &downloads {
        assert!(d.authorized);
        assert!(
            d.user_agent
                .as_deref()
                .unwrap()
                .starts_with("media-origin/"),
            "{d:?}"
        );
        assert_eq!(d.status, 200);
    }

    // The same media ID again: the asset imported before, no lookup, no download.
    let first = &downloads[0].media_id;
    let lookups = g.lookups(first);
    let (status, again, _) = import(&s, json!({"media_id": first})).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["created"], false);
    assert_eq!(again["path"], format!("inbox/{PHONE}/{first}.jpg"));
    assert_eq!(g.downloads().len(), 8);
    assert_eq!(g.lookups(first), lookups);

    // A folder of the caller's choice, public on request.
    let id = g.add_incoming(PHONE, media::file(Corpus::RgbPng).to_vec(), "image/png");
    let (status, asset, _) = import(
        &s,
        json!({"media_id": id, "folder": "tickets/4711", "signed": false, "phone_number_id": PHONE}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{asset}");
    assert_eq!(asset["path"], format!("tickets/4711/{id}.png"));
    assert_eq!(asset["signed"], false);
    assert_eq!(
        s.get(asset["url"].as_str().unwrap()).await.status(),
        StatusCode::OK
    );

    // Metrics: imports by outcome, bytes.
    let metrics = s
        .client
        .get(s.url("/metrics"))
        .bearer_auth(common::TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("media_origin_whatsapp_imports_total{outcome=\"imported\"} 9"),
        "{metrics}"
    );
    assert!(metrics.contains("media_origin_whatsapp_imports_total{outcome=\"existing\"} 1"));
}

async fn a_webhook_payload_imports_a_batch_and_reports_each_failure(backend: Backend) {
    let g = GraphServer::start_default().await;
    let s = start(backend, &g, |_| {}).await;
    let photo = media::file(Corpus::PhotoJpg);
    let voice = media::file(Corpus::MonoOpusOgg);
    let pdf = fixtures::pdf(5_000, 3);
    let photo_id = g.add_incoming(PHONE, photo.to_vec(), "image/jpeg");
    let voice_id = g.add_incoming(PHONE, voice.to_vec(), "audio/ogg; codecs=opus");
    let gone_id = g.add_incoming(PHONE, voice.to_vec(), "audio/ogg; codecs=opus");
    g.set_incoming(&gone_id, Incoming::LookupError(131052));
    let pdf_id = g.add_incoming(PHONE, pdf.clone(), "application/pdf");
    let message = |id: &str, kind: &str, media: Value| {
        let mut m = json!({"from": "491701234567", "id": format!("wamid.{id}"), "timestamp": "1700000000", "type": kind});
        m[kind] = media;
        m
    };
    let payload = json!({"object": "whatsapp_business_account", "entry": [{"id": "WABA", "changes": [{
        "field": "messages",
        "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550000000", "phone_number_id": PHONE},
            "contacts": [{"profile": {"name": "Kunde"}, "wa_id": "491701234567"}],
            "messages": [
                message(&photo_id, "image", json!({"mime_type": "image/jpeg", "sha256": sha256(photo), "id": photo_id, "caption": "Schaden"})),
                message("text", "text", json!({"body": "hallo"})),
                message(&voice_id, "audio", json!({"mime_type": "audio/ogg; codecs=opus", "sha256": sha256(voice), "id": voice_id, "voice": true})),
                message(&gone_id, "audio", json!({"mime_type": "audio/ogg; codecs=opus", "id": gone_id, "voice": true})),
                message(&pdf_id, "document", json!({"filename": "Vertrag.pdf", "mime_type": "application/pdf", "id": pdf_id})),
            ]
        }
    }]}]});
    let (status, report, _) = import(&s, payload.clone()).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["imported"], 3, "{report}");
    assert_eq!(report["failed"], 1);
    assert_eq!(report["skipped"], 1);
    let results = report["results"].as_array().unwrap();
    assert_eq!(results.len(), 4);
    assert_eq!(results[0]["message_id"], format!("wamid.{photo_id}"));
    assert_eq!(results[0]["status"], 201);
    assert_eq!(
        results[0]["asset"]["imported"]["message_id"],
        format!("wamid.{photo_id}")
    );
    assert_eq!(results[0]["asset"]["imported"]["from"], "491701234567");
    assert_eq!(
        results[1]["asset"]["content_type"],
        "audio/ogg; codecs=opus"
    );
    assert_eq!(results[1]["type"], "audio");
    let failure = &results[2];
    assert_eq!(failure["media_id"], gone_id);
    assert_eq!(failure["status"], 502);
    assert_eq!(failure["error"]["code"], "whatsapp_media_download_error");
    assert_eq!(failure["error"]["meta"]["code"], 131052);
    assert_eq!(failure["error"]["attempts"], 1, "131052 is not retried");
    assert_eq!(results[3]["asset"]["filename"], "Vertrag.pdf");
    assert_eq!(
        results[3]["asset"]["path"],
        format!("inbox/{PHONE}/{pdf_id}.pdf")
    );
    let r = s.get(results[3]["asset"]["link"].as_str().unwrap()).await;
    assert_eq!(r.bytes().await.unwrap(), pdf);

    // The same webhook again (Meta redelivers): nothing downloaded twice.
    let downloads = g.downloads().len();
    let (_, again, _) = import(&s, payload).await;
    assert_eq!(again["imported"], 3);
    let statuses: Vec<_> = again["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].clone())
        .collect();
    assert_eq!(statuses, [json!(200), json!(200), json!(502), json!(200)]);
    assert_eq!(g.downloads().len(), downloads);

    // Not a WhatsApp payload: a clear 400.
    let (status, e, _) = import(&s, json!({"object": "page", "entry": []})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(e["error"]["code"], "invalid_webhook");
}

async fn corrupt_interrupted_stalled_and_refused_downloads_store_nothing(backend: Backend) {
    let g = GraphServer::start_default().await;
    let s = start(backend, &g, |c| {
        c.whatsapp.timeout_ms = 500;
        c.whatsapp.max_retries = 1;
        c.whatsapp.retry_budget_ms = 5_000;
    })
    .await;
    let photo = media::file(Corpus::PhotoJpg).to_vec();
    let big = fixtures::pdf(200_000, 9);
    // Settle what a first import writes besides the asset (nothing else should appear).
    let before = s.files();

    let lying = g.add_incoming(PHONE, photo.clone(), "image/jpeg");
    g.set_incoming(&lying, Incoming::LieSha256);
    let (status, e, _) = import(&s, json!({"media_id": lying})).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{e}");
    assert_eq!(e["error"]["code"], "whatsapp_download_corrupt");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nothing was stored")
    );
    assert_nothing_stored(&s, &before);

    let cut = g.add_incoming(PHONE, big.clone(), "application/pdf");
    g.set_incoming(&cut, Incoming::Cut(70_000));
    let (status, e, _) = import(&s, json!({"media_id": cut})).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{e}");
    assert_eq!(e["error"]["code"], "whatsapp_download_interrupted");
    assert_eq!(e["error"]["attempts"], 2, "retried once: {e}");
    assert_eq!(
        g.downloads().iter().filter(|d| d.media_id == cut).count(),
        2
    );
    assert_nothing_stored(&s, &before);

    let stalled = g.add_incoming(PHONE, big.clone(), "application/pdf");
    g.set_incoming(&stalled, Incoming::Stall(10_000));
    let (status, e, _) = import(&s, json!({"media_id": stalled})).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{e}");
    assert_eq!(e["error"]["code"], "whatsapp_download_timeout");
    assert_nothing_stored(&s, &before);

    // A host refusing the User-Agent: reported, not retried.
    g.refuse_user_agent("media-origin");
    let refused = g.add_incoming(PHONE, photo.clone(), "image/jpeg");
    let (status, e, _) = import(&s, json!({"media_id": refused})).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{e}");
    assert_eq!(e["error"]["code"], "whatsapp_download_refused");
    assert_eq!(e["error"]["attempts"], 1);
    assert_nothing_stored(&s, &before);

    // Transient 503s are retried; the next import stores the file whole.
    let flaky = g.add_incoming(PHONE, big.clone(), "application/pdf");
    g.set_incoming(&flaky, Incoming::Unavailable(1));
    let s = {
        let storage = Arc::clone(&s.storage);
        s.stop().await;
        TestServer::start_with(storage, |c| {
            g.configure(c);
            c.signing.keys = vec![media_origin::config::Secret::new("k1:0123456789abcdef0123")];
            c.whatsapp.user_agent = "HelpdeskBot/2.0 (+https://example.com)".into();
        })
        .await
    };
    let (status, asset, _) = import(&s, json!({"media_id": flaky})).await;
    assert_eq!(status, StatusCode::CREATED, "{asset}");
    assert_eq!(asset["sha256"], sha256(&big));
    let tries: Vec<_> = g
        .downloads()
        .into_iter()
        .filter(|d| d.media_id == flaky)
        .collect();
    assert_eq!(
        tries.iter().map(|d| d.status).collect::<Vec<_>>(),
        [503, 200]
    );
    assert_eq!(
        tries[1].user_agent.as_deref(),
        Some("HelpdeskBot/2.0 (+https://example.com)")
    );
    let tmp: Vec<_> = s
        .files()
        .into_iter()
        .filter(|f| f.starts_with("tmp"))
        .collect();
    assert!(tmp.is_empty(), "{tmp:?}");
}

async fn an_expired_download_url_is_retrieved_again(backend: Backend) {
    let g = GraphServer::start_default().await;
    let s = start(backend, &g, |c| c.whatsapp.timeout_ms = 5_000).await;
    let photo = media::file(Corpus::PhotoJpg).to_vec();
    let id = g.add_incoming(PHONE, photo.clone(), "image/jpeg");
    // The first download comes in 301 s after the URL was handed out (the fake's clock moves).
    g.set_incoming(
        &id,
        Incoming::ArriveLate {
            secs: 301,
            times: 1,
        },
    );
    let (status, asset, _) = import(&s, json!({"media_id": id})).await;
    assert_eq!(status, StatusCode::CREATED, "{asset}");
    assert_eq!(asset["sha256"], sha256(&photo));
    let statuses: Vec<_> = g.downloads().iter().map(|d| d.status).collect();
    assert_eq!(statuses, [404, 200]);
    assert_eq!(g.lookups(&id), 2);

    // Every URL comes in stale: reported after one fresh URL, nothing stored.
    let before = s.files();
    let id = g.add_incoming(PHONE, photo.clone(), "image/jpeg");
    g.set_incoming(
        &id,
        Incoming::ArriveLate {
            secs: 301,
            times: usize::MAX,
        },
    );
    let (status, e, _) = import(&s, json!({"media_id": id})).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{e}");
    assert_eq!(e["error"]["code"], "whatsapp_download_expired");
    assert_eq!(g.lookups(&id), 2);
    assert_nothing_stored(&s, &before);

    // A download host that holds its answer within the timeout is waited for.
    let id = g.add_incoming(PHONE, photo.clone(), "image/jpeg");
    g.set_incoming(&id, Incoming::Hold(Duration::from_millis(700)));
    let (status, asset, _) = import(&s, json!({"media_id": id})).await;
    assert_eq!(status, StatusCode::CREATED, "{asset}");
}

async fn unknown_ids_are_reported_and_the_lookup_budget_holds(backend: Backend) {
    let g = GraphServer::start_default().await;
    let s = start(backend, &g, |c| {
        c.whatsapp.lookup_failures_per_hour = 3;
        c.whatsapp.import_max_bytes = 1_000_000;
    })
    .await;
    for n in 0..3 {
        let (status, e, _) = import(&s, json!({"media_id": format!("55500{n}")})).await;
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{e}");
        assert_eq!(e["error"]["code"], "whatsapp_invalid_parameter");
        assert_eq!(e["error"]["meta"]["code"], 100);
        assert_eq!(e["error"]["attempts"], 1, "not retried");
        assert!(
            e["error"]["fix"].as_str().unwrap().contains("7 days"),
            "{e}"
        );
    }
    let good = g.add_incoming(PHONE, media::file(Corpus::PhotoJpg).to_vec(), "image/jpeg");
    let (status, e, headers) = import(&s, json!({"media_id": good})).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{e}");
    assert_eq!(e["error"]["code"], "whatsapp_lookups_paused");
    let wait: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((3590..=3600).contains(&wait), "{wait}");
    assert_eq!(g.lookups(&good), 0, "Meta was not asked");
    assert!(g.downloads().is_empty());

    // An hour later lookups resume.
    s.clock.advance(3601);
    let (status, asset, _) = import(&s, json!({"media_id": good})).await;
    assert_eq!(status, StatusCode::CREATED, "{asset}");

    // Over import_max_bytes by Meta's file_size: refused before any download.
    let huge = g.add_incoming(PHONE, fixtures::pdf(1_000_001, 5), "application/pdf");
    let (status, e, _) = import(&s, json!({"media_id": huge})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(e["error"]["code"], "whatsapp_import_too_large");
    assert!(g.downloads().iter().all(|d| d.media_id != huge));

    // Bad requests: a clear 400 each, before any call.
    for (body, code) in [
        (json!({"media_id": "../etc"}), "invalid_media_id"),
        (json!({"media_id": "1", "folder": "../x"}), "invalid_path"),
        (
            json!({"media_id": "1", "phone_number_id": "999"}),
            "unknown_phone_number",
        ),
        (json!({"mediaid": "1"}), "invalid_json"),
    ] {
        let (status, e, _) = import(&s, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {e}");
        assert_eq!(e["error"]["code"], code, "{body}");
    }
}

on_both_backends!(
    incoming_media_is_imported_whole_signed_and_served_safely,
    a_webhook_payload_imports_a_batch_and_reports_each_failure,
    corrupt_interrupted_stalled_and_refused_downloads_store_nothing,
    an_expired_download_url_is_retrieved_again,
    unknown_ids_are_reported_and_the_lookup_budget_holds,
);

/// `media-origin import ...` against a running server.
async fn cli(args: &[&str]) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_media-origin"));
    cmd.arg("import")
        .args(args)
        .env_remove("MEDIA_ORIGIN_ADMIN_TOKEN")
        .env_remove("MEDIA_ORIGIN_URL")
        .env_remove("WHATSAPP_ACCESS_TOKEN");
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_import_command_prints_each_path_and_signed_link() {
    let g = GraphServer::start_default().await;
    let s = start(Backend::Local, &g, |_| {}).await;
    let photo = media::file(Corpus::PhotoJpg).to_vec();
    let voice = media::file(Corpus::MonoOpusOgg).to_vec();
    let a = g.add_incoming(PHONE, photo.clone(), "image/jpeg");
    let b = g.add_incoming(PHONE, voice.clone(), "audio/ogg; codecs=opus");
    let api = ["--server", &s.base, "--token", common::TOKEN];
    let mut args = vec![a.as_str(), b.as_str(), "--to", "tickets/4711"];
    args.extend(api);
    let out = cli(&args).await;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let lines: Vec<(&str, &str)> = stdout
        .lines()
        .map(|l| l.split_once('\t').unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert_eq!(lines[0].0, format!("tickets/4711/{a}.jpg"));
    assert_eq!(lines[1].0, format!("tickets/4711/{b}.ogg"));
    for ((_, link), bytes) in lines.iter().zip([&photo, &voice]) {
        assert!(link.contains("&sig="), "{link}");
        assert_eq!(&s.get(link).await.bytes().await.unwrap(), bytes);
    }
    assert!(
        stderr.contains(&format!("{a}: imported, image/jpeg")),
        "{stderr}"
    );

    // Again: imported before; an unknown ID fails (exit 1) while the others still go.
    let mut args = vec![a.as_str(), "777000777", "--to", "tickets/4711"];
    args.extend(api);
    let out = cli(&args).await;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("{a}: imported before")),
        "{stderr}"
    );
    assert!(
        stderr.contains("777000777: ") && stderr.contains("(whatsapp_invalid_parameter)"),
        "{stderr}"
    );

    // Bad arguments: nothing sent, exit 2.
    let mut args = vec!["../x"];
    args.extend(api);
    assert_eq!(cli(&args).await.status.code(), Some(2));
    let mut args = vec![a.as_str(), "--to", "../up"];
    args.extend(api);
    assert_eq!(cli(&args).await.status.code(), Some(2));
}
