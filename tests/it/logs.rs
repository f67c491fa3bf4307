//! What the server's log says, read from the real binary's stderr as an operator sees it: a
//! refused upload with its reason, field values as plain text (not Rust's debug output), and
//! JSON lines with each event's fields at the top level.

use crate::common;

use std::process::Command;
use std::time::Duration;

use common::{Logs, TOKEN, fixtures};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_media-origin");

fn start(dir: &std::path::Path, json: bool) -> (common::Spawned, String, Logs) {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir)
        .args(["serve", "--storage", "data", "--bind", "127.0.0.1:0"])
        .env("MEDIA_ORIGIN_ADMIN_TOKEN", TOKEN);
    if json {
        cmd.env("MEDIA_ORIGIN__LOG__FORMAT", "json");
    }
    common::spawn_binary_logged(&mut cmd)
}

/// The first line `find` picks, waiting up to 5 s for it to be logged.
fn line_with(logs: &Logs, find: impl Fn(&str) -> bool) -> String {
    for _ in 0..50 {
        if let Some(line) = logs.lock().unwrap().iter().find(|l| find(l)) {
            return line.clone();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no such line in:\n{}", logs.lock().unwrap().join("\n"));
}

/// A PNG declared as JPEG: refused, and the answer's error.
async fn refused_upload(addr: &str) -> Value {
    let r = reqwest::Client::new()
        .put(format!("http://{addr}/api/assets/promo/x.jpg"))
        .bearer_auth(TOKEN)
        .header("content-type", "image/jpeg")
        .body(fixtures::png(3_000, 1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    r.json::<Value>().await.unwrap()["error"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_uploads_are_logged_with_their_reason_in_plain_values() {
    let dir = tempfile::tempdir().unwrap();
    // `addr` below is the address logged in the same plain form (`addr=127.0.0.1:PORT`).
    let (_server, addr, logs) = start(dir.path(), false);
    let error = refused_upload(&addr).await;
    let line = line_with(&logs, |l| l.contains("upload refused"));
    assert!(line.contains(" INFO "), "{line}");
    assert!(
        line.ends_with(&format!(
            "upload refused path=promo/x.jpg status=422 code=content_type_mismatch reason={}",
            error["message"].as_str().unwrap()
        )),
        "{line}"
    );
    // A form refused while its file streams in has named no asset yet: no empty path.
    let form = reqwest::multipart::Form::new()
        .text("folder", "promo")
        .part(
            "file",
            reqwest::multipart::Part::bytes(fixtures::png(3_000, 2))
                .file_name("y.jpg")
                .mime_str("image/jpeg")
                .unwrap(),
        );
    let r = reqwest::Client::new()
        .post(format!("http://{addr}/api/assets"))
        .bearer_auth(TOKEN)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let line = line_with(&logs, |l| {
        l.contains("upload refused") && !l.contains("path=promo/x.jpg")
    });
    assert!(
        line.ends_with(
            "upload refused status=422 code=content_type_mismatch \
             reason=declared image/jpeg but the bytes are image/png"
        ),
        "{line}"
    );
    // A folder policy is logged as the header value it sets.
    let r = reqwest::Client::new()
        .put(format!("http://{addr}/api/policies/promo"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"cache_control": "max-age=604800"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let line = line_with(&logs, |l| l.contains("folder policy set"));
    assert!(
        line.ends_with("folder policy set folder=promo policy=max-age=604800"),
        "{line}"
    );
    // No value anywhere is Rust's debug output of an Option, an enum or a string.
    for line in logs.lock().unwrap().iter() {
        for debug in ["Some(", "MaxAge(", "None", "=\""] {
            assert!(!line.contains(debug), "{debug:?} in {line}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_lines_put_the_fields_at_the_top_level() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, addr, logs) = start(dir.path(), true);
    let error = refused_upload(&addr).await;
    let line = line_with(&logs, |l| l.contains("upload refused"));
    let v: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["level"], "INFO");
    assert_eq!(v["message"], "upload refused");
    assert_eq!(v["path"], "promo/x.jpg");
    assert_eq!(v["status"], 422);
    assert_eq!(v["code"], "content_type_mismatch");
    assert_eq!(v["reason"], error["message"]);
    assert!(v.get("fields").is_none(), "{v}");
    // The request's ID rides along in its span.
    assert!(v["span"]["request_id"].is_string(), "{v}");
}
