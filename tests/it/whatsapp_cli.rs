//! The binary with WhatsApp: `media-origin upload` against a real server and the fake Graph API
//! (links, media IDs and the JSON to paste, and what it refuses before sending anything), and the
//! access token kept out of the server's own logs, however verbose.

use crate::common;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use common::graph::{Fault, GRAPH_TOKEN, GraphServer, OTHER_PHONE_NUMBER_ID, PHONE_NUMBER_ID};
use common::{Backend, Storage, TOKEN, TestServer, fixtures};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const BIN: &str = env!("CARGO_BIN_EXE_media-origin");
const SIGNING_SECRET: &str = "signing-secret-never-logged-5150";
const META_TOKEN: &str = GRAPH_TOKEN;
const PHONE: &str = PHONE_NUMBER_ID;
const OTHER_PHONE: &str = OTHER_PHONE_NUMBER_ID;

async fn graph() -> Arc<GraphServer> {
    GraphServer::start_default().await
}

async fn server(g: &GraphServer) -> TestServer {
    TestServer::start_with(Storage::new(Backend::Local).await, |c| {
        g.configure(c);
    })
    .await
}

/// `media-origin upload ...` in `dir`, with nothing from the test's own environment that could
/// point it elsewhere.
async fn upload(dir: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir)
        .arg("upload")
        .args(args)
        .env_remove("MEDIA_ORIGIN_ADMIN_TOKEN")
        .env_remove("MEDIA_ORIGIN_URL")
        .env_remove("WHATSAPP_ACCESS_TOKEN");
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn sha256(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// The text after `label` on the first line that has it.
fn field<'a>(text: &'a str, label: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.trim_start().strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label:?} line in:\n{text}"))
        .trim()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn upload_prints_link_media_id_and_the_json_to_paste() {
    let g = graph().await;
    let s = server(&g).await;
    let dir = tempfile::tempdir().unwrap();
    let banner = fixtures::jpeg(48_000, 7);
    // Large enough to stream in many chunks (and to get a progress bar on a terminal).
    let video = fixtures::mp4(9_000_000, 8);
    std::fs::write(dir.path().join("banner.jpg"), &banner).unwrap();
    std::fs::write(dir.path().join("teaser.mp4"), &video).unwrap();

    let out = upload(
        dir.path(),
        &[
            "banner.jpg",
            "teaser.mp4",
            "--to",
            "promo/2026",
            "--cache",
            "max-age=3600",
            "--whatsapp",
            "--server",
            &s.base,
            "--token",
            TOKEN,
        ],
    )
    .await;
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));

    // Meta received both files, whole, with their exact types, on the default number.
    let ups = g.uploads();
    assert_eq!(ups.len(), 2, "{text}");
    assert_eq!(ups[0].phone_number_id, PHONE);
    assert_eq!(ups[0].type_field, "image/jpeg");
    assert_eq!(ups[0].sha256, sha256(&banner));
    assert_eq!(ups[1].type_field, "video/mp4");
    assert_eq!(ups[1].sha256, sha256(&video));

    // Each file's block: the link, the media ID Meta gave, both messages as JSON.
    let (first, second) = text.split_at(text.find("promo/2026/teaser.mp4").unwrap());
    assert!(first.starts_with("promo/2026/banner.jpg  (image/jpeg, 48000 bytes)"));
    let link = field(first, "link:");
    assert!(
        link.starts_with(&format!("{}/media/promo/2026/banner.jpg?v=", s.base)),
        "{link}"
    );
    assert_eq!(field(first, "cache:"), "max-age=3600 (asset)");
    let id = ups[0].media_id.as_str();
    assert!(
        field(first, "media id:").starts_with(&format!(
            "{id} (uploaded for phone number {PHONE}, valid until "
        )),
        "{first}"
    );
    let by_link: Value = serde_json::from_str(field(first, "message:")).unwrap();
    assert_eq!(by_link, json!({"type": "image", "image": {"link": link}}));
    let by_id: Value = serde_json::from_str(field(first, "by id:")).unwrap();
    assert_eq!(by_id, json!({"type": "image", "image": {"id": id}}));
    assert!(field(second, "media id:").starts_with(&ups[1].media_id));

    // The link serves the file's bytes with the asked-for policy.
    let r = s.get(link).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "max-age=3600");
    assert_eq!(r.bytes().await.unwrap(), banner);
    let r = s.get(&s.media("promo/2026/teaser.mp4")).await;
    assert_eq!(sha256(&r.bytes().await.unwrap()), sha256(&video));

    // Again, as JSON for a script, for the other number: a new ID there; the first number's
    // ID is kept on the record.
    let out = upload(
        dir.path(),
        &[
            "banner.jpg",
            "--to",
            "/promo/2026/",
            "--whatsapp",
            "--phone-number-id",
            OTHER_PHONE,
            "--json",
            "--server",
            &s.base,
            "--token",
            TOKEN,
        ],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let line: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(line["path"], "promo/2026/banner.jpg");
    assert_eq!(line["asset"]["sha256"], sha256(&banner));
    assert_eq!(line["whatsapp"]["phone_number_id"], OTHER_PHONE);
    assert_eq!(line["whatsapp"]["reused"], false);
    assert_eq!(
        line["whatsapp"]["media_id"],
        g.uploads()[2].media_id.as_str()
    );
    assert_eq!(line["asset"]["whatsapp"][PHONE]["media_id"], id);
    // The record is printed once, as it is after the upload: with the new number's ID in it.
    assert!(line["whatsapp"].get("asset").is_none(), "{line}");
    assert_eq!(
        line["asset"]["whatsapp"][OTHER_PHONE]["media_id"],
        line["whatsapp"]["media_id"]
    );
    // Same bytes, same number: reused, nothing more reaches Meta.
    let out = upload(
        dir.path(),
        &[
            "banner.jpg",
            "--to",
            "promo/2026",
            "--whatsapp",
            "--json",
            "--server",
            &s.base,
            "--token",
            TOKEN,
        ],
    )
    .await;
    let line: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(line["whatsapp"]["reused"], true);
    assert_eq!(line["whatsapp"]["media_id"], id);
    // The asset's `message_by_id` is the current one, not the null of before the media ID.
    assert_eq!(
        line["asset"]["message_by_id"],
        json!({"type": "image", "image": {"id": id}}),
        "{line}"
    );
    assert!(line["whatsapp"].get("asset").is_none(), "{line}");
    assert_eq!(g.upload_attempts(), 3);
}

/// Ogg Opus gets its voice-note forms (by link and by ID) and, over 512 KB, the warning that
/// WhatsApp shows no play icon; an MP3 gets neither.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn upload_prints_the_voice_note_json_for_ogg_opus() {
    let g = graph().await;
    let s = server(&g).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hello.ogg"), fixtures::ogg_opus(600_000, 4)).unwrap();
    let mut mp3 = b"ID3\x04\x00\x00\x00\x00\x00\x00\xff\xfb\x90\x64\x00".to_vec();
    mp3.resize(20_000, 0x55);
    std::fs::write(dir.path().join("song.mp3"), &mp3).unwrap();
    let out = upload(
        dir.path(),
        &[
            "hello.ogg",
            "song.mp3",
            "--to",
            "voice",
            "--whatsapp",
            "--server",
            &s.base,
            "--token",
            TOKEN,
        ],
    )
    .await;
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    let (ogg, mp3) = text.split_at(text.find("voice/song.mp3").unwrap());
    assert!(
        ogg.starts_with("voice/hello.ogg  (audio/ogg; codecs=opus, 600000 bytes)"),
        "{ogg}"
    );
    let link = field(ogg, "link:");
    let voice: Value = serde_json::from_str(field(ogg, "voice note:")).unwrap();
    assert_eq!(
        voice,
        json!({"type": "audio", "audio": {"link": link, "voice": true}})
    );
    assert_eq!(
        field(ogg, "warning:"),
        "voice note over 512 KB (600000 bytes, more than 512000): WhatsApp shows no play icon \
         for voice notes that large; send it as plain audio (`message`), or make it at most \
         512000 bytes (shorter, or a lower bitrate) to send it as a voice note"
    );
    let id = g.uploads()[0].media_id.clone();
    let by_id: Value = serde_json::from_str(field(ogg, "by id:")).unwrap();
    assert_eq!(by_id, json!({"type": "audio", "audio": {"id": id}}));
    let voice_id: Value = serde_json::from_str(field(ogg, "voice id:")).unwrap();
    assert_eq!(
        voice_id,
        json!({"type": "audio", "audio": {"id": id, "voice": true}})
    );
    // The MP3's block: the audio message by link and by ID, and nothing about voice notes.
    assert!(
        mp3.starts_with("voice/song.mp3  (audio/mpeg, 20000 bytes)"),
        "{mp3}"
    );
    let labels: Vec<&str> = mp3
        .lines()
        .skip(1)
        .map(|l| l.trim_start().split(':').next().unwrap())
        .collect();
    assert_eq!(
        labels,
        ["link", "cache", "message", "media id", "by id"],
        "{mp3}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn upload_finds_server_and_token_in_the_config() {
    let g = graph().await;
    let s = server(&g).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        format!(
            // The admin API's address is what the CLI needs, not the public one.
            "[server]\nbind = \"127.0.0.1:1\"\nadmin_bind = \"{}\"\n[admin]\ntoken = \"{TOKEN}\"\n",
            s.addr
        ),
    )
    .unwrap();
    std::fs::write(dir.path().join("note.pdf"), fixtures::pdf(2_000, 1)).unwrap();
    let out = upload(dir.path(), &["note.pdf", "--to", "/"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let message: Value = serde_json::from_str(field(&text, "message:")).unwrap();
    assert_eq!(
        message,
        json!({"type": "document", "document": {"link": field(&text, "link:"), "filename": "note.pdf"}})
    );
    assert_eq!(s.get(&s.media("note.pdf")).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn upload_refuses_before_sending_anything() {
    let g = graph().await;
    let s = server(&g).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ok.jpg"), fixtures::jpeg(10_000, 1)).unwrap();
    // Over the 5 MB image limit, and a type WhatsApp does not take.
    std::fs::write(dir.path().join("huge.jpg"), fixtures::jpeg(5_000_001, 2)).unwrap();
    std::fs::write(dir.path().join("tool.exe"), fixtures::noise(3_000, 3)).unwrap();
    let connect = ["--server", s.base.as_str(), "--token", TOKEN];

    let out = upload(
        dir.path(),
        &[
            &[
                "ok.jpg",
                "huge.jpg",
                "tool.exe",
                "missing.png",
                "--to",
                "promo",
                "--whatsapp",
            ][..],
            &connect[..],
        ]
        .concat(),
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("nothing was uploaded"), "{err}");
    assert!(
        err.contains(
            "huge.jpg: image too large: 5000001 bytes exceeds WhatsApp's limit of 5000000 bytes"
        ),
        "{err}"
    );
    assert!(
        err.contains("tool.exe: could not recognise the content"),
        "{err}"
    );
    assert!(err.contains("missing.png: No such file"), "{err}");

    // A bad folder, a bad policy, the same name twice.
    for (args, expect) in [
        (vec!["ok.jpg", "--to", "a/../b"], "--to \"a/../b\""),
        (
            vec!["ok.jpg", "--to", "a", "--cache", "max-age=soon"],
            "--cache \"max-age=soon\"",
        ),
        (
            vec!["ok.jpg", "ok.jpg", "--to", "a"],
            "a/ok.jpg is named twice",
        ),
    ] {
        let out = upload(dir.path(), &[&args[..], &connect[..]].concat()).await;
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stderr(&out).contains(expect), "{args:?}: {}", stderr(&out));
    }

    // A wrong token is reported as such, before any file is sent.
    let out = upload(
        dir.path(),
        &[
            "ok.jpg", "--to", "promo", "--server", &s.base, "--token", "wrong",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("the admin token was refused"),
        "{}",
        stderr(&out)
    );

    // A phone number the server does not have: refused before any file goes up.
    let out = upload(
        dir.path(),
        &[
            &[
                "ok.jpg",
                "--to",
                "promo",
                "--whatsapp",
                "--phone-number-id",
                "999",
            ][..],
            &connect[..],
        ]
        .concat(),
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(&format!(
            "nothing was uploaded: --phone-number-id 999: the server has no such phone \
             number; it has {PHONE}, {OTHER_PHONE}"
        )),
        "{}",
        stderr(&out)
    );

    // PNG bytes named x.jpg: the CLI gives the answer `curl -F file=@x.jpg` gets (curl, like a
    // browser, declares the type the name suggests), and stores nothing either.
    let png = fixtures::png(3_000, 4);
    std::fs::write(dir.path().join("x.jpg"), &png).unwrap();
    let out = upload(
        dir.path(),
        &[&["x.jpg", "--to", "promo"][..], &connect[..]].concat(),
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let form = reqwest::multipart::Form::new()
        .text("folder", "promo")
        .part(
            "file",
            reqwest::multipart::Part::bytes(png)
                .file_name("x.jpg")
                .mime_str("image/jpeg")
                .unwrap(),
        );
    let r = s.post_form(form).await;
    assert_eq!(r.status(), 422);
    let body: Value = r.json().await.unwrap();
    let (code, message) = (
        body["error"]["code"].as_str().unwrap(),
        body["error"]["message"].as_str().unwrap(),
    );
    assert_eq!(code, "content_type_mismatch");
    assert_eq!(message, "declared image/jpeg but the bytes are image/png");
    assert!(
        stderr(&out).contains(&format!(
            "x.jpg: {message} ({code})\n    fix: rename it to x.png"
        )),
        "{}",
        stderr(&out)
    );

    // Nothing was stored, nothing reached Meta.
    let list = s.admin_json(Method::GET, "/assets").await;
    assert_eq!(list["assets"], json!([]), "{list}");
    assert_eq!(g.upload_attempts(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn upload_reports_meta_refusal_but_keeps_the_asset() {
    let g = graph().await;
    let s = server(&g).await;
    let dir = tempfile::tempdir().unwrap();
    let body = fixtures::png(20_000, 4);
    std::fs::write(dir.path().join("card.png"), &body).unwrap();
    g.push_fault(Fault::Code {
        code: 100,
        subcode: Some(2_494_102),
        http_status: 400,
    });
    let out = upload(
        dir.path(),
        &[
            "card.png",
            "--to",
            "cards",
            "--whatsapp",
            "--server",
            &s.base,
            "--token",
            TOKEN,
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    // The link is printed; the media ID line says what Meta said, under our stable code.
    let text = stdout(&out);
    assert!(
        field(&text, "link:").contains("/media/cards/card.png?v="),
        "{text}"
    );
    let failure = field(&text, "media id:");
    assert!(failure.starts_with("FAILED: "), "{failure}");
    assert!(
        failure.ends_with("(#100) Invalid parameter (whatsapp_invalid_parameter)"),
        "{failure}"
    );
    assert!(stderr(&out).contains("1 of 1 failed"));
    let r = s.get(&s.media("cards/card.png")).await;
    assert_eq!(r.bytes().await.unwrap(), body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn upload_shows_metas_words_for_people_and_retries_what_it_marks_transient() {
    let g = graph().await;
    let s = server(&g).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("card.png"), fixtures::png(20_000, 5)).unwrap();
    let refusal = |is_transient| Fault::Detailed {
        code: 131053,
        subcode: Some(2_494_010),
        http_status: 400,
        is_transient,
        user_title: Some("Media upload failed".into()),
        user_msg: Some("The file could not be processed.".into()),
    };
    let args = [
        "card.png",
        "--to",
        "cards",
        "--whatsapp",
        "--server",
        &s.base,
        "--token",
        TOKEN,
    ];
    let mut json_args = args.to_vec();
    json_args.push("--json");

    // Final: the media ID line carries Meta's title and message for people.
    g.push_fault(refusal(None));
    let out = upload(dir.path(), &args).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let failure = field(&stdout(&out), "media id:").to_owned();
    assert!(
        failure.ends_with(
            "; Meta says: Media upload failed: The file could not be processed. \
             (whatsapp_media_upload_error)"
        ),
        "{failure}"
    );
    assert_eq!(g.upload_attempts(), 1);

    // As JSON: Meta's error whole, the two members included.
    g.push_fault(refusal(Some(false)));
    let out = upload(dir.path(), &json_args).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let line: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    let meta = &line["whatsapp_error"]["meta"];
    assert_eq!(meta["error_user_title"], "Media upload failed", "{line}");
    assert_eq!(
        meta["error_user_msg"], "The file could not be processed.",
        "{line}"
    );
    assert_eq!(meta["is_transient"], false, "{line}");
    assert_eq!(g.upload_attempts(), 2);

    // Marked transient: retried, and the upload goes through.
    g.push_fault(refusal(Some(true)));
    let out = upload(dir.path(), &args).await;
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let id = g.uploads().last().unwrap().media_id.clone();
    assert!(
        field(&stdout(&out), "media id:").starts_with(&format!("{id} (uploaded for")),
        "{}",
        stdout(&out)
    );
    assert_eq!(g.upload_attempts(), 4);
}

/// The access token must not reach the log at any level, on success, on retries or on Meta's
/// errors, and neither may the admin token.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn access_token_never_appears_in_the_server_log() {
    let g = graph().await;
    let dir = tempfile::tempdir().unwrap();
    let admin_token = "admin-secret-token-9876";
    let (mut child, addr, logs) = common::spawn_binary_logged(
        Command::new(BIN)
            .current_dir(dir.path())
            .args(["serve", "--storage", "data", "--bind", "127.0.0.1:0"])
            .env("RUST_LOG", "trace")
            .env("WHATSAPP_ACCESS_TOKEN", META_TOKEN)
            .env("MEDIA_ORIGIN_ADMIN_TOKEN", admin_token)
            .env("MEDIA_ORIGIN_SIGNING_KEYS", format!("k1:{SIGNING_SECRET}"))
            .env("MEDIA_ORIGIN__SIGNING__FOLDERS", "private")
            .env("MEDIA_ORIGIN__WHATSAPP__GRAPH_URL", g.base_url())
            .env("MEDIA_ORIGIN__WHATSAPP__PHONE_NUMBER_IDS", PHONE)
            .env("MEDIA_ORIGIN__WHATSAPP__RETRY_BUDGET_MS", "5000"),
    );
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let put = |path: &str, body: Vec<u8>| {
        client
            .put(format!("http://{addr}/api/assets/{path}?whatsapp=true"))
            .bearer_auth(admin_token)
            .body(body)
            .send()
    };
    // A clean upload; one after a 429 and a 500 (retried); one Meta refuses with 190.
    let r: Value = put("a.jpg", fixtures::jpeg(5_000, 1))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(r["whatsapp_upload"]["media_id"].is_string(), "{r}");
    g.push_fault(Fault::Http429 {
        retry_after: Some(0),
    });
    g.push_fault(Fault::Status500);
    let r: Value = put("b.jpg", fixtures::jpeg(5_000, 2))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(r["whatsapp_upload"]["media_id"].is_string(), "{r}");
    g.push_fault(Fault::Code {
        code: 190,
        subcode: Some(463),
        http_status: 401,
    });
    let r = put("c.jpg", fixtures::jpeg(5_000, 3)).await.unwrap();
    let text = r.text().await.unwrap();
    assert!(text.contains("access_token_invalid"), "{text}");
    assert!(!text.contains(META_TOKEN) && !text.contains(admin_token));
    // A wrong admin token is not echoed either.
    let r = client
        .get(format!("http://{addr}/api/assets"))
        .bearer_auth("guess-1234")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // A signed link is made, used, and forged; the key stays out of the log.
    let r: Value = put("private/d.jpg", fixtures::jpeg(5_000, 4))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let link = r["link"].as_str().unwrap().to_owned();
    assert_eq!(client.get(&link).send().await.unwrap().status(), 200);
    // A different last character of the signature (one in 16 signatures ends in '0').
    let last = if link.ends_with('0') { '1' } else { '0' };
    let forged = format!("{}{last}", &link[..link.len() - 1]);
    assert_eq!(client.get(&forged).send().await.unwrap().status(), 403);
    let r = client
        .post(format!("http://{addr}/api/sign"))
        .bearer_auth(admin_token)
        .json(&json!({"path": "private/d.jpg"}))
        .send()
        .await
        .unwrap();
    let text = r.text().await.unwrap();
    assert!(!text.contains(SIGNING_SECRET), "{text}");

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    for _ in 0..100 {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    // The reader thread drains stderr to its end once the process is gone.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let logs = logs.lock().unwrap().join("\n");
    // The log is verbose enough to have shown a token if anything printed one: it has Meta's
    // error details, the retries, and the client's connections to the Graph API.
    assert!(logs.contains("fbtrace_id"), "{logs}");
    assert!(logs.contains("retrying"), "{logs}");
    assert!(logs.contains("hyper_util::client"), "{logs}");
    for secret in [META_TOKEN, admin_token, "guess-1234", SIGNING_SECRET] {
        assert!(!logs.contains(secret), "{secret} appears in the log");
    }
    g.stop().await;
}

/// `--server` and `MEDIA_ORIGIN_URL` take the admin base URL with or without `/api` (the
/// README's `API` variable holds the latter); a server that cannot be reached is reported with
/// what to do; `--whatsapp` against a server without WhatsApp is refused before any upload.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn upload_finds_the_api_with_or_without_api_and_says_what_to_do_when_it_cannot() {
    let s = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.pdf"), fixtures::pdf(2_000, 1)).unwrap();
    for server in [format!("{}/api", s.base), format!("{}/api/", s.base)] {
        let out = upload(
            dir.path(),
            &[
                "a.pdf", "--to", "docs", "--server", &server, "--token", TOKEN,
            ],
        )
        .await;
        assert!(out.status.success(), "{server}: {}", stderr(&out));
        assert!(stdout(&out).starts_with("docs/a.pdf  (application/pdf, 2000 bytes)"));
    }
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir.path())
        .args(["upload", "a.pdf", "--to", "env", "--token", TOKEN])
        .env("MEDIA_ORIGIN_URL", format!("{}/api", s.base));
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(s.get(&s.media("env/a.pdf")).await.status(), 200);

    // Nobody listens there: the message says to start the server or pass --server.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let out = upload(
        dir.path(),
        &[
            "a.pdf",
            "--to",
            "docs",
            "--server",
            &format!("http://{closed}"),
            "--token",
            TOKEN,
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("the server could not be reached"), "{err}");
    assert!(
        err.contains(
            "fix: start it (media-origin serve), or pass --server URL (or set MEDIA_ORIGIN_URL)"
        ),
        "{err}"
    );

    // No WhatsApp on that server: --whatsapp is refused before the file goes up.
    let connect = ["--server", s.base.as_str(), "--token", TOKEN];
    let out = upload(
        dir.path(),
        &[&["a.pdf", "--to", "wa", "--whatsapp"][..], &connect[..]].concat(),
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains(
            "nothing was uploaded: --whatsapp: the server cannot get media IDs: WhatsApp \
             uploads are not configured: set the WHATSAPP_ACCESS_TOKEN environment variable"
        ),
        "{err}"
    );
    assert_eq!(s.get(&s.media("wa/a.pdf")).await.status(), 404);
}
