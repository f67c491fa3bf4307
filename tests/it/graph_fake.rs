//! Self-tests of the fake Graph API (tests/it/common/graph.rs): it must check what Meta checks and
//! fail the way it is told to, or the client tests written against it prove nothing.

use crate::common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::fixtures;
use common::graph::{
    Fault, GRAPH_TOKEN, GRAPH_VERSION, GraphServer, PHONE_NUMBER_ID, SUPPORTED_TYPES,
};
use reqwest::multipart::{Form, Part};
use reqwest::{Client, Response};
use serde_json::Value;
use sha2::{Digest, Sha256};

async fn graph() -> Arc<GraphServer> {
    let g = GraphServer::start(GRAPH_TOKEN, GRAPH_VERSION).await;
    g.add_phone_number(PHONE_NUMBER_ID);
    g
}

fn client() -> Client {
    Client::builder().no_proxy().build().unwrap()
}

fn media_url(g: &GraphServer) -> String {
    format!("{}/{GRAPH_VERSION}/{PHONE_NUMBER_ID}/media", g.base_url())
}

/// A well-formed upload form.
fn form(type_field: &str, part_type: &str, filename: &str, bytes: Vec<u8>) -> Form {
    Form::new()
        .text("messaging_product", "whatsapp")
        .text("type", type_field.to_owned())
        .part(
            "file",
            Part::bytes(bytes)
                .file_name(filename.to_owned())
                .mime_str(part_type)
                .unwrap(),
        )
}

async fn post(g: &GraphServer, form: Form) -> Response {
    client()
        .post(media_url(g))
        .bearer_auth(GRAPH_TOKEN)
        .multipart(form)
        .send()
        .await
        .unwrap()
}

/// The status and the `error` object of an error answer, checked for Meta's shape.
async fn error_of(r: Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    let e = body["error"].clone();
    assert!(e["message"].is_string(), "{body}");
    assert!(e["type"].is_string(), "{body}");
    assert!(e["code"].is_i64(), "{body}");
    assert!(!e["fbtrace_id"].as_str().unwrap().is_empty(), "{body}");
    if !e["error_data"].is_null() {
        assert_eq!(e["error_data"]["messaging_product"], "whatsapp", "{body}");
        assert!(e["error_data"]["details"].is_string(), "{body}");
    }
    (status, e)
}

#[tokio::test]
async fn a_correct_upload_is_answered_with_an_id_and_recorded() {
    let g = graph().await;
    let bytes = fixtures::jpeg(50_000, 1);
    let r = post(
        &g,
        form("image/jpeg", "image/jpeg", "photo.jpg", bytes.clone()),
    )
    .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let id = body["id"].as_str().unwrap().to_owned();
    assert!(
        !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()),
        "{id}"
    );

    let uploads = g.uploads();
    assert_eq!(uploads.len(), 1);
    let u = &uploads[0];
    assert_eq!(u.media_id, id);
    assert_eq!(u.phone_number_id, PHONE_NUMBER_ID);
    assert_eq!(u.type_field, "image/jpeg");
    assert_eq!(u.filename, "photo.jpg");
    assert_eq!(u.part_content_type, "image/jpeg");
    assert_eq!(u.size, 50_000);
    assert_eq!(u.sha256, hex::encode(Sha256::digest(&bytes)));
    assert!(u.authorization_seen);
    assert_eq!(u.header("authorization"), Some("<redacted>"));
    assert!(
        u.header("content-type")
            .unwrap()
            .starts_with("multipart/form-data; boundary=")
    );
    assert_eq!(g.upload_attempts(), 1);
    assert_eq!(
        g.requests(),
        vec![(
            "POST".to_owned(),
            format!("/{GRAPH_VERSION}/{PHONE_NUMBER_ID}/media"),
            200
        )]
    );

    // Ids are unique.
    let r = post(&g, form("image/jpeg", "image/jpeg", "photo.jpg", bytes)).await;
    let second: Value = r.json().await.unwrap();
    assert_ne!(second["id"].as_str().unwrap(), id);
}

#[tokio::test]
async fn every_supported_kind_is_accepted_within_its_limit() {
    let g = graph().await;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("image/jpeg", fixtures::jpeg(5_000_000, 1)),
        ("image/png", fixtures::png(10_000, 2)),
        ("application/pdf", fixtures::pdf(10_000, 3)),
        ("video/mp4", fixtures::mp4(10_000, 4)),
        ("audio/ogg", fixtures::ogg_opus(10_000, 5)),
        ("image/webp", fixtures::webp(100_000, 6)),
        ("text/plain", fixtures::text(10_000)),
        ("audio/mpeg", fixtures::noise(10_000, 7)),
    ];
    for (t, bytes) in cases {
        let r = post(&g, form(t, t, "f", bytes)).await;
        assert_eq!(r.status(), 200, "{t}: {}", r.text().await.unwrap());
    }
    assert_eq!(g.uploads().len(), 8);
}

#[tokio::test]
async fn a_missing_or_wrong_token_is_401_code_190() {
    let g = graph().await;
    let bytes = fixtures::jpeg(1000, 1);
    for token in [None, Some("wrong"), Some("")] {
        let mut req = client().post(media_url(&g)).multipart(form(
            "image/jpeg",
            "image/jpeg",
            "a.jpg",
            bytes.clone(),
        ));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.unwrap();
        assert!(r.headers().contains_key("www-authenticate"));
        let (status, e) = error_of(r).await;
        assert_eq!(status, 401);
        assert_eq!(e["code"], 190);
        assert_eq!(e["type"], "OAuthException");
        assert_eq!(
            e["message"],
            "Invalid OAuth access token - Cannot parse access token"
        );
    }
    // Not `Bearer`, or the token elsewhere: refused too.
    let r = client()
        .post(media_url(&g))
        .header("authorization", GRAPH_TOKEN)
        .multipart(form("image/jpeg", "image/jpeg", "a.jpg", bytes))
        .send()
        .await
        .unwrap();
    let text = r.text().await.unwrap();
    assert!(!text.contains(GRAPH_TOKEN), "the token is never echoed");
    assert!(g.uploads().is_empty());
    assert_eq!(g.upload_attempts(), 4);
    assert!(g.requests().iter().all(|(_, _, s)| *s == 401));
}

#[tokio::test]
async fn the_version_and_the_phone_number_are_checked() {
    let g = graph().await;
    let bytes = fixtures::jpeg(1000, 1);
    let r = client()
        .post(format!("{}/v1.0/{PHONE_NUMBER_ID}/media", g.base_url()))
        .bearer_auth(GRAPH_TOKEN)
        .multipart(form("image/jpeg", "image/jpeg", "a.jpg", bytes.clone()))
        .send()
        .await
        .unwrap();
    let (status, e) = error_of(r).await;
    assert_eq!((status, e["code"].as_i64()), (400, Some(2500)));

    let r = client()
        .post(format!("{}/{GRAPH_VERSION}/999/media", g.base_url()))
        .bearer_auth(GRAPH_TOKEN)
        .multipart(form("image/jpeg", "image/jpeg", "a.jpg", bytes))
        .send()
        .await
        .unwrap();
    let (status, e) = error_of(r).await;
    assert_eq!(status, 400);
    assert_eq!(e["code"], 100);
    assert_eq!(e["error_subcode"], 33);
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("Object with ID '999' does not exist")
    );
}

#[tokio::test]
async fn a_body_that_is_not_multipart_with_a_boundary_is_code_100() {
    let g = graph().await;
    for (ct, body) in [
        ("application/json", r#"{"messaging_product":"whatsapp"}"#),
        ("multipart/form-data", "--x\r\n\r\n--x--\r\n"),
        (
            "application/x-www-form-urlencoded",
            "messaging_product=whatsapp",
        ),
    ] {
        let r = client()
            .post(media_url(&g))
            .bearer_auth(GRAPH_TOKEN)
            .header("content-type", ct)
            .body(body)
            .send()
            .await
            .unwrap();
        let (status, e) = error_of(r).await;
        assert_eq!(status, 400, "{ct}");
        assert_eq!(e["code"], 100, "{ct}");
        assert!(
            e["error_data"]["details"]
                .as_str()
                .unwrap()
                .contains("multipart"),
            "{ct}: {e}"
        );
    }
    assert!(g.uploads().is_empty());
}

#[tokio::test]
async fn missing_fields_are_code_100() {
    let g = graph().await;
    let file = || {
        Part::bytes(fixtures::jpeg(1000, 1))
            .file_name("a.jpg")
            .mime_str("image/jpeg")
            .unwrap()
    };
    let cases = [
        (
            Form::new().text("type", "image/jpeg").part("file", file()),
            "messaging_product",
        ),
        (
            Form::new()
                .text("messaging_product", "facebook")
                .text("type", "image/jpeg")
                .part("file", file()),
            "messaging_product",
        ),
        (
            Form::new()
                .text("messaging_product", "whatsapp")
                .part("file", file()),
            "type",
        ),
        (
            Form::new()
                .text("messaging_product", "whatsapp")
                .text("type", "image/jpeg"),
            "file",
        ),
        (
            Form::new()
                .text("messaging_product", "whatsapp")
                .text("type", "image/jpeg")
                .part(
                    "file",
                    Part::bytes(fixtures::jpeg(1000, 1))
                        .mime_str("image/jpeg")
                        .unwrap(),
                ),
            "filename",
        ),
        (
            Form::new()
                .text("messaging_product", "whatsapp")
                .text("type", "image/jpeg")
                .part("file", Part::bytes(fixtures::jpeg(1000, 1)).file_name("a")),
            "Content-Type",
        ),
    ];
    for (form, what) in cases {
        let (status, e) = error_of(post(&g, form).await).await;
        assert_eq!(status, 400, "{what}");
        assert_eq!(e["code"], 100, "{what}: {e}");
        assert!(
            e["error_data"]["details"].as_str().unwrap().contains(what),
            "{what}: {e}"
        );
    }
    assert!(g.uploads().is_empty());
}

#[tokio::test]
async fn a_type_meta_does_not_take_is_code_100_as_meta_words_it() {
    let g = graph().await;
    for (declared, part) in [
        ("application/octet-stream", "application/octet-stream"),
        ("image/gif", "image/gif"),
        // The part's own type decides, whatever `type` says.
        ("image/jpeg", "image/heic"),
        ("video/quicktime", "video/quicktime; codecs=hvc1"),
    ] {
        let r = post(&g, form(declared, part, "f", fixtures::noise(1000, 1))).await;
        let (status, e) = error_of(r).await;
        assert_eq!(status, 400, "{declared}/{part}");
        assert_eq!(e["code"], 100, "{part}: {e}");
        assert_eq!(e["type"], "OAuthException", "{part}: {e}");
        let received = part.split(';').next().unwrap();
        assert_eq!(
            e["message"],
            format!(
                "(#100) Param file must be a file with one of the following types: {}. \
                 Received file of type '{received}'.",
                SUPPORTED_TYPES.join(", ")
            ),
            "{part}"
        );
        assert!(e["error_data"].is_null(), "{part}: {e}");
    }
    // Meta's list, in Meta's order.
    assert_eq!(
        SUPPORTED_TYPES.join(", "),
        "audio/aac, audio/mp4, audio/mpeg, audio/amr, audio/ogg, audio/opus, \
         application/vnd.ms-powerpoint, application/msword, \
         application/vnd.openxmlformats-officedocument.wordprocessingml.document, \
         application/vnd.openxmlformats-officedocument.presentationml.presentation, \
         application/vnd.openxmlformats-officedocument.spreadsheetml.sheet, application/pdf, \
         text/plain, application/vnd.ms-excel, image/jpeg, image/png, image/webp, video/mp4, \
         video/3gpp"
    );
    // audio/opus is on it: Ogg Opus declared so is taken.
    let r = post(
        &g,
        form(
            "audio/opus",
            "audio/opus",
            "v.opus",
            fixtures::ogg_opus(1000, 1),
        ),
    )
    .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(g.uploads().len(), 1);
}

#[tokio::test]
async fn a_type_the_bytes_or_the_part_contradict_is_131053() {
    let g = graph().await;
    let cases = [
        // Declared PNG, JPEG bytes.
        ("image/png", "image/png", fixtures::jpeg(1000, 1), "match"),
        // The `type` field and the part's own type disagree.
        ("image/png", "image/jpeg", fixtures::jpeg(1000, 1), "match"),
        // A WebP called a JPEG.
        ("image/jpeg", "image/jpeg", fixtures::webp(1000, 1), "match"),
        // A signature-bearing type without its signature.
        ("video/mp4", "video/mp4", fixtures::text(1000), "match"),
        ("audio/opus", "audio/opus", fixtures::mp4(1000, 1), "match"),
    ];
    for (declared, part, bytes, says) in cases {
        let (status, e) = error_of(post(&g, form(declared, part, "f", bytes)).await).await;
        assert_eq!(status, 400, "{declared}/{part}");
        assert_eq!(e["code"], 131053, "{declared}/{part}: {e}");
        assert!(
            e["error_data"]["details"].as_str().unwrap().contains(says),
            "{declared}/{part}: {e}"
        );
    }
    assert!(g.uploads().is_empty());
}

#[tokio::test]
async fn ttl_minutes_is_recorded_and_checked_against_metas_range() {
    let g = graph().await;
    let bytes = fixtures::jpeg(2000, 1);
    let with_ttl = |ttl: &str| {
        Form::new()
            .text("messaging_product", "whatsapp")
            .text("type", "image/jpeg")
            .text("ttl_minutes", ttl.to_owned())
            .part(
                "file",
                Part::bytes(bytes.clone())
                    .file_name("banner.jpg")
                    .mime_str("image/jpeg")
                    .unwrap(),
            )
    };
    for ttl in ["60", "1440", "43200"] {
        let r = post(&g, with_ttl(ttl)).await;
        assert_eq!(r.status(), 200, "{ttl}: {}", r.text().await.unwrap());
    }
    // Without the field: none recorded.
    let r = post(&g, form("image/jpeg", "image/jpeg", "a.jpg", bytes.clone())).await;
    assert_eq!(r.status(), 200);
    let seen: Vec<Option<String>> = g.uploads().into_iter().map(|u| u.ttl_minutes).collect();
    assert_eq!(
        seen,
        [
            Some("60".to_owned()),
            Some("1440".to_owned()),
            Some("43200".to_owned()),
            None
        ]
    );
    for ttl in ["59", "43201", "0", "-60", "a day", "", "60.5"] {
        let (status, e) = error_of(post(&g, with_ttl(ttl)).await).await;
        assert_eq!(status, 400, "{ttl:?}");
        assert_eq!(e["code"], 100, "{ttl:?}: {e}");
        assert!(
            e["message"].as_str().unwrap().contains("ttl_minutes"),
            "{ttl:?}: {e}"
        );
        assert!(
            e["error_data"]["details"]
                .as_str()
                .unwrap()
                .contains("between 60 and 43200"),
            "{ttl:?}: {e}"
        );
    }
    assert_eq!(g.uploads().len(), 4);
}

#[tokio::test]
async fn sizes_over_the_limit_of_their_kind_are_131053() {
    let g = graph().await;
    let cases = [
        ("image/jpeg", fixtures::jpeg(5_000_001, 1)),
        ("image/webp", fixtures::webp(100_001, 2)),
        ("audio/ogg", fixtures::ogg_opus(16_000_001, 3)),
        ("video/mp4", fixtures::mp4(16_000_001, 4)),
    ];
    for (t, bytes) in cases {
        let (status, e) = error_of(post(&g, form(t, t, "f", bytes)).await).await;
        assert_eq!(
            (status, e["code"].as_i64()),
            (400, Some(131053)),
            "{t}: {e}"
        );
    }
    let (status, e) = error_of(post(&g, form("text/plain", "text/plain", "f", vec![])).await).await;
    assert_eq!(
        (status, e["code"].as_i64()),
        (400, Some(131053)),
        "empty: {e}"
    );
    assert!(g.uploads().is_empty());
}

#[tokio::test]
async fn faults_are_consumed_one_per_upload_request() {
    let g = graph().await;
    let bytes = fixtures::jpeg(2000, 1);
    let send = || post(&g, form("image/jpeg", "image/jpeg", "a.jpg", bytes.clone()));

    g.push_fault(Fault::Http429 {
        retry_after: Some(7),
    });
    g.push_fault(Fault::Code {
        code: 130429,
        subcode: None,
        http_status: 400,
    });
    g.push_fault(Fault::Code {
        code: 80007,
        subcode: Some(2494100),
        http_status: 400,
    });
    g.push_fault(Fault::Status500);
    g.push_fault(Fault::Status503);
    g.push_fault(Fault::MalformedJson);
    g.push_fault(Fault::Detailed {
        code: 131053,
        subcode: Some(2494010),
        http_status: 400,
        is_transient: Some(true),
        user_title: Some("Media upload failed".into()),
        user_msg: Some("Try again in a few minutes.".into()),
    });
    g.push_fault(Fault::Detailed {
        code: 100,
        subcode: None,
        http_status: 400,
        is_transient: None,
        user_title: None,
        user_msg: None,
    });
    assert_eq!(g.pending_faults(), 8);

    let r = send().await;
    assert_eq!(r.headers()["retry-after"], "7");
    let (status, e) = error_of(r).await;
    assert_eq!((status, e["code"].as_i64()), (429, Some(4)));
    assert_eq!(e["message"], "(#4) Application request limit reached");

    let (status, e) = error_of(send().await).await;
    assert_eq!((status, e["code"].as_i64()), (400, Some(130429)));

    let (status, e) = error_of(send().await).await;
    assert_eq!((status, e["code"].as_i64()), (400, Some(80007)));
    assert_eq!(e["error_subcode"], 2494100);

    let (status, e) = error_of(send().await).await;
    assert_eq!((status, e["code"].as_i64()), (500, Some(1)));
    assert_eq!(e["message"], "An unknown error occurred");

    let (status, e) = error_of(send().await).await;
    assert_eq!((status, e["code"].as_i64()), (503, Some(2)));

    let r = send().await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(serde_json::from_str::<Value>(&text).is_err(), "{text}");

    let (status, e) = error_of(send().await).await;
    assert_eq!((status, e["code"].as_i64()), (400, Some(131053)));
    assert_eq!(e["error_subcode"], 2494010);
    assert_eq!(e["is_transient"], true);
    assert_eq!(e["error_user_title"], "Media upload failed");
    assert_eq!(e["error_user_msg"], "Try again in a few minutes.");
    // Without them, none of the three members.
    let (status, e) = error_of(send().await).await;
    assert_eq!((status, e["code"].as_i64()), (400, Some(100)));
    for member in ["is_transient", "error_user_title", "error_user_msg"] {
        assert!(e.get(member).is_none(), "{member}: {e}");
    }

    assert!(g.uploads().is_empty());
    assert_eq!(send().await.status(), 200);
    assert_eq!(g.uploads().len(), 1);
    assert_eq!(g.upload_attempts(), 9);
    let statuses: Vec<u16> = g.requests().iter().map(|r| r.2).collect();
    assert_eq!(statuses, [429, 400, 400, 500, 503, 200, 400, 400, 200]);

    // Faults apply before any check, even to a request that would fail them.
    g.push_faults(2, Fault::Status500);
    let r = client().post(media_url(&g)).send().await.unwrap();
    assert_eq!(r.status(), 500);
    assert_eq!(send().await.status(), 500);
    assert_eq!(g.pending_faults(), 0);
    assert_eq!(send().await.status(), 200);
}

#[tokio::test]
async fn a_hang_delays_the_answer_past_a_client_timeout() {
    let g = graph().await;
    let bytes = fixtures::jpeg(2000, 1);
    g.push_fault(Fault::Hang(Duration::from_millis(1500)));
    let r = client()
        .post(media_url(&g))
        .bearer_auth(GRAPH_TOKEN)
        .timeout(Duration::from_millis(300))
        .multipart(form("image/jpeg", "image/jpeg", "a.jpg", bytes.clone()))
        .send()
        .await;
    assert!(r.unwrap_err().is_timeout());

    // Without a timeout, a hung request is answered late, and processed normally.
    g.push_fault(Fault::Hang(Duration::from_millis(500)));
    let started = Instant::now();
    let r = post(&g, form("image/jpeg", "image/jpeg", "a.jpg", bytes)).await;
    assert!(started.elapsed() >= Duration::from_millis(500));
    assert_eq!(r.status(), 200);
    assert_eq!(g.upload_attempts(), 2);
}

#[tokio::test]
async fn retrieve_and_delete_an_upload() {
    let g = graph().await;
    let bytes = fixtures::pdf(12_345, 1);
    let r = post(
        &g,
        form(
            "application/pdf",
            "application/pdf",
            "terms.pdf",
            bytes.clone(),
        ),
    )
    .await;
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let url = format!("{}/{GRAPH_VERSION}/{id}", g.base_url());

    let info: Value = client()
        .get(&url)
        .bearer_auth(GRAPH_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["messaging_product"], "whatsapp");
    assert_eq!(info["id"], id.as_str());
    assert_eq!(info["mime_type"], "application/pdf");
    assert_eq!(info["sha256"], hex::encode(Sha256::digest(&bytes)));
    assert_eq!(info["file_size"], 12_345);
    assert!(info["url"].as_str().unwrap().starts_with("http"));

    g.set_file_size_as_string(true);
    let info: Value = client()
        .get(format!("{url}?phone_number_id={PHONE_NUMBER_ID}"))
        .bearer_auth(GRAPH_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["file_size"], "12345");

    // Same auth checks.
    let (status, e) = error_of(client().get(&url).send().await.unwrap()).await;
    assert_eq!((status, e["code"].as_i64()), (401, Some(190)));
    let (status, e) = error_of(client().delete(&url).send().await.unwrap()).await;
    assert_eq!((status, e["code"].as_i64()), (401, Some(190)));

    let r = client()
        .delete(&url)
        .bearer_auth(GRAPH_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["success"], true);
    assert_eq!(g.deleted(), vec![id.clone()]);

    // Gone: both answer "does not exist".
    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let r = client()
            .request(method.clone(), &url)
            .bearer_auth(GRAPH_TOKEN)
            .send()
            .await
            .unwrap();
        let (status, e) = error_of(r).await;
        assert_eq!(status, 400, "{method}");
        assert_eq!(e["code"], 100, "{method}");
        assert_eq!(e["error_subcode"], 33, "{method}");
    }
    let unknown = format!("{}/{GRAPH_VERSION}/123456", g.base_url());
    let r = client()
        .get(&unknown)
        .bearer_auth(GRAPH_TOKEN)
        .send()
        .await
        .unwrap();
    let (_, e) = error_of(r).await;
    assert_eq!(e["error_subcode"], 33);
    assert_eq!(g.deleted(), vec![id]);
    assert_eq!(
        g.upload_attempts(),
        1,
        "GET and DELETE are not upload attempts"
    );
}

#[tokio::test]
async fn stop_refuses_connections() {
    let g = graph().await;
    g.stop().await;
    let r = client()
        .post(media_url(&g))
        .bearer_auth(GRAPH_TOKEN)
        .multipart(form(
            "image/jpeg",
            "image/jpeg",
            "a.jpg",
            fixtures::jpeg(100, 1),
        ))
        .send()
        .await;
    assert!(r.unwrap_err().is_connect());
}
