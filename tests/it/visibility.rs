//! Visibility: `/metrics` (what it counts, and who may read it), the per-asset fetch log,
//! `X-Request-Id`, and JSON logs.

use crate::common;

use std::collections::HashMap;

use common::{Backend, Storage, TOKEN, TestServer, fixtures};
use reqwest::{Method, StatusCode};

/// The samples of an OpenMetrics text, by series (`name{labels}`), comments skipped.
fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            (series.to_owned(), value.parse().unwrap())
        })
        .collect()
}

async fn scrape(s: &TestServer) -> HashMap<String, f64> {
    let r = s
        .client
        .get(format!("http://{}/metrics", s.admin_addr))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    samples(&r.text().await.unwrap())
}

fn value(m: &HashMap<String, f64>, series: &str) -> f64 {
    m.get(series).copied().unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metrics_count_requests_bytes_meta_uploads_and_storage() {
    let s = TestServer::start_with(Storage::new(Backend::Local).await, |_| {}).await;
    let body = fixtures::jpeg(5000, 1);
    let record = s.upload("promo/a.jpg", "image/jpeg", body.clone()).await;
    let etag = record["etag"].as_str().unwrap().to_owned();
    let url = s.media("promo/a.jpg");
    for _ in 0..2 {
        assert_eq!(s.get(&url).await.status(), 200);
    }
    let r = s
        .client
        .get(&url)
        .header("if-none-match", &etag)
        .header("user-agent", "WhatsApp/2.23.20.0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    let r = s
        .client
        .get(&url)
        .header("range", "bytes=0-99")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    let r = s
        .client
        .get(&url)
        .header(
            "user-agent",
            "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // HEAD: counted, but no body bytes.
    let r = s.client.head(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(s.get(&s.media("promo/missing.jpg")).await.status(), 404);
    assert_eq!(s.get(&s.url("/healthz")).await.status(), 200);
    assert_eq!(s.get(&s.url("/nothing-here")).await.status(), 404);

    let m = scrape(&s).await;
    let req = |route: &str, status: u16| {
        value(
            &m,
            &format!("media_origin_http_requests_total{{route=\"{route}\",status=\"{status}\"}}"),
        )
    };
    assert_eq!(req("media", 200), 4.0, "{m:#?}");
    assert_eq!(req("media", 304), 1.0);
    assert_eq!(req("media", 206), 1.0);
    assert_eq!(req("media", 404), 1.0);
    assert_eq!(req("admin", 201), 1.0);
    assert_eq!(req("health", 200), 1.0);
    assert_eq!(req("other", 404), 1.0);
    let len = body.len() as f64;
    assert_eq!(
        value(&m, "media_origin_media_sent_bytes_total"),
        3.0 * len + 100.0
    );
    assert_eq!(
        value(
            &m,
            "media_origin_meta_fetcher_requests_total{status=\"200\"}"
        ),
        1.0
    );
    assert_eq!(
        value(
            &m,
            "media_origin_meta_fetcher_requests_total{status=\"304\"}"
        ),
        1.0
    );
    assert_eq!(value(&m, "media_origin_uploads_total"), 1.0);
    assert_eq!(value(&m, "media_origin_upload_bytes_total"), len);
    // On local disk a blob is opened (mapped), never read into memory: that is S3's blob memory.
    for op in ["commit", "record_read", "blob_open"] {
        assert!(
            value(
                &m,
                &format!(
                    "media_origin_storage_operation_duration_seconds_count{{operation=\"{op}\"}}"
                )
            ) >= 1.0,
            "{op}: {m:#?}"
        );
    }
    // The scrape itself is counted once it is answered.
    let again = scrape(&s).await;
    assert_eq!(
        value(
            &again,
            "media_origin_http_requests_total{route=\"admin\",status=\"200\"}"
        ),
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metrics_count_media_api_calls_outcomes_and_retries() {
    use common::graph::{Fault, GraphServer};
    let g = GraphServer::start_default().await;
    let s = TestServer::start_with(Storage::new(Backend::Local).await, |c| g.configure(c)).await;
    s.upload("a.png", "image/png", fixtures::png(10_000, 4))
        .await;
    let media = |force: bool| {
        s.admin(Method::POST, "/whatsapp/media")
            .json(&serde_json::json!({"path": "a.png", "force": force}))
            .send()
    };
    // Two transient failures, then success: one call, two retries.
    g.push_fault(Fault::Status500);
    g.push_fault(Fault::Status503);
    assert_eq!(media(false).await.unwrap().status(), 200);
    // A permanent error: one failed call, no retry.
    g.push_fault(Fault::Code {
        code: 100,
        subcode: None,
        http_status: 400,
    });
    assert_eq!(media(true).await.unwrap().status(), 502);
    let m = scrape(&s).await;
    assert_eq!(
        value(
            &m,
            "media_origin_whatsapp_calls_total{call=\"upload\",outcome=\"success\"}"
        ),
        1.0,
        "{m:#?}"
    );
    assert_eq!(
        value(
            &m,
            "media_origin_whatsapp_calls_total{call=\"upload\",outcome=\"whatsapp_invalid_parameter\"}"
        ),
        1.0
    );
    assert_eq!(
        value(&m, "media_origin_whatsapp_retries_total{call=\"upload\"}"),
        2.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metrics_need_the_token_on_the_public_listener() {
    // TestServer puts the admin API on the public listener (admin_bind = "public").
    let s = TestServer::start_with(Storage::new(Backend::Local).await, |_| {}).await;
    let r = s.get(&s.url("/metrics")).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().contains_key("www-authenticate"));
    let r = s
        .client
        .get(s.url("/metrics"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = s
        .client
        .get(s.url("/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    assert!(r.text().await.unwrap().ends_with("# EOF\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metrics_are_open_on_the_admin_listener_only() {
    let s = TestServer::start_with(Storage::new(Backend::Local).await, |c| {
        c.server.admin_bind = media_origin::config::AdminBind::Addr("127.0.0.1:0".parse().unwrap());
    })
    .await;
    assert_ne!(s.addr, s.admin_addr);
    let r = s.get(&format!("http://{}/metrics", s.admin_addr)).await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(
        text.contains("# TYPE media_origin_storage_operation_duration_seconds histogram"),
        "{text}"
    );
    // Not on the public listener at all.
    assert_eq!(s.get(&s.url("/metrics")).await.status(), 404);
    // The rest of the admin listener still needs the token.
    let r = s.get(&format!("http://{}/api/assets", s.admin_addr)).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fetch_log_keeps_the_last_fetches_of_each_asset() {
    let s = TestServer::start_with(Storage::new(Backend::Local).await, |c| {
        c.fetch_log.per_asset = 5;
    })
    .await;
    let body = fixtures::jpeg(3000, 2);
    let record = s.upload("promo/b c.jpg", "image/jpeg", body.clone()).await;
    let etag = record["etag"].as_str().unwrap().to_owned();
    let url = s.media("promo/b%20c.jpg");
    // Four plain fetches by a browser, then Meta: a full fetch, a revalidation, a range, a
    // HEAD; the first three must have been pushed out.
    for i in 0..4 {
        let r = s
            .client
            .get(&url)
            .header("user-agent", format!("browser/{i}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let meta = "facebookexternalhit/1.1";
    for (headers, status) in [
        (vec![], 200),
        (vec![("if-none-match", etag.as_str())], 304),
        (vec![("range", "bytes=10-19")], 206),
    ] {
        let mut rq = s.client.get(&url).header("user-agent", meta);
        for (k, v) in headers {
            rq = rq.header(k, v);
        }
        assert_eq!(rq.send().await.unwrap().status(), status);
    }
    let r = s
        .client
        .head(&url)
        .header("user-agent", meta)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let log = s.admin_json(Method::GET, "/fetches/promo/b%20c.jpg").await;
    assert_eq!(log["path"], "promo/b c.jpg");
    assert_eq!(log["kept_per_asset"], 5);
    let fetches = log["fetches"].as_array().unwrap();
    assert_eq!(fetches.len(), 5, "{log:#}");
    let summary: Vec<(String, u64, u64, bool, bool, String)> = fetches
        .iter()
        .map(|f| {
            (
                f["method"].as_str().unwrap().to_owned(),
                f["status"].as_u64().unwrap(),
                f["bytes"].as_u64().unwrap(),
                f["conditional"].as_bool().unwrap(),
                f["meta"].as_bool().unwrap(),
                f["user_agent"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let len = body.len() as u64;
    let m = meta.to_owned();
    assert_eq!(
        summary,
        [
            ("HEAD".into(), 200, 0, false, true, m.clone()),
            ("GET".into(), 206, 10, true, true, m.clone()),
            ("GET".into(), 304, 0, true, true, m.clone()),
            ("GET".into(), 200, len, false, true, m.clone()),
            ("GET".into(), 200, len, false, false, "browser/3".into()),
        ]
    );
    // Newest first, with a time.
    let times: Vec<u64> = fetches
        .iter()
        .map(|f| f["at_unix_ms"].as_u64().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]));
    assert!(fetches[0]["at"].as_str().unwrap().ends_with(" GMT"));

    // A path never fetched (or not an asset) has no fetches; probes leave no entry.
    assert_eq!(s.get(&s.media("nothing.jpg")).await.status(), 404);
    let empty = s.admin_json(Method::GET, "/fetches/nothing.jpg").await;
    assert_eq!(empty["fetches"], serde_json::json!([]));
    // The path is validated like any other.
    let r = s
        .admin(Method::GET, "/fetches/a//b.jpg")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // And the route needs the token.
    let r = s
        .get(&format!(
            "http://{}/api/fetches/promo/b%20c.jpg",
            s.admin_addr
        ))
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

/// Meta's fetcher by default: `facebookexternalua` (its webhook agent, also seen fetching
/// media), `facebookexternalhit` and `WhatsApp`, in any case; other agents are not.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn meta_fetcher_agents_are_recognised_in_any_case() {
    let s = TestServer::start_with(Storage::new(Backend::Local).await, |_| {}).await;
    s.upload("promo/ua.jpg", "image/jpeg", fixtures::jpeg(2000, 3))
        .await;
    let url = s.media("promo/ua.jpg");
    let agents = [
        ("facebookexternalua", true),
        ("FacebookExternalUA/1.1", true),
        ("FACEBOOKEXTERNALHIT/1.1", true),
        ("whatsapp/2.24.1.0", true),
        ("Mozilla/5.0 (X11; Linux x86_64)", false),
        ("facebookexternal", false),
    ];
    for (agent, _) in agents {
        let r = s
            .client
            .get(&url)
            .header("user-agent", agent)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{agent}");
    }

    let m = scrape(&s).await;
    assert_eq!(
        value(
            &m,
            "media_origin_meta_fetcher_requests_total{status=\"200\"}"
        ),
        4.0,
        "{m:#?}"
    );
    assert_eq!(
        value(
            &m,
            "media_origin_http_requests_total{route=\"media\",status=\"200\"}"
        ),
        6.0
    );

    let log = s.admin_json(Method::GET, "/fetches/promo/ua.jpg").await;
    let marked: Vec<(String, bool)> = log["fetches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["user_agent"].as_str().unwrap().to_owned(),
                f["meta"].as_bool().unwrap(),
            )
        })
        .collect();
    let expected: Vec<(String, bool)> = agents
        .iter()
        .rev()
        .map(|(agent, meta)| ((*agent).to_owned(), *meta))
        .collect();
    assert_eq!(marked, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn request_ids_are_echoed_or_generated() {
    let s = TestServer::start_with(Storage::new(Backend::Local).await, |_| {}).await;
    s.upload("r.jpg", "image/jpeg", fixtures::jpeg(500, 3))
        .await;
    let is_uuid = |v: &str| {
        v.len() == 36
            && v.split('-').map(str::len).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
            && v.chars().all(|c| c == '-' || c.is_ascii_hexdigit())
    };
    for url in [
        s.media("r.jpg"),
        s.media("none.jpg"),
        s.url("/healthz"),
        s.url("/x"),
    ] {
        // Generated when absent.
        let r = s.get(&url).await;
        let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert!(is_uuid(&id), "{url}: {id}");
        // A fresh one each time.
        let r = s.get(&url).await;
        assert_ne!(r.headers()["x-request-id"].to_str().unwrap(), id);
        // Echoed when sane.
        let r = s
            .client
            .get(&url)
            .header("x-request-id", "trace-42.abc:7")
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["x-request-id"], "trace-42.abc:7");
        // Replaced when not.
        for bad in ["has space", "quote\"d", &"a".repeat(200)] {
            let r = s
                .client
                .get(&url)
                .header("x-request-id", bad)
                .send()
                .await
                .unwrap();
            let got = r.headers()["x-request-id"].to_str().unwrap();
            assert!(is_uuid(got), "{bad:?} gave {got}");
        }
    }
    // Admin answers too, errors included.
    let r = s
        .admin(Method::GET, "/assets/r.jpg")
        .header("x-request-id", "admin-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-request-id"], "admin-1");
    let r = s.get(&s.url("/api/assets/r.jpg")).await;
    assert_eq!(r.status(), 401);
    assert!(is_uuid(r.headers()["x-request-id"].to_str().unwrap()));
}

#[test]
fn json_logs_are_one_object_per_line_with_the_request_id() {
    use std::io::{BufRead, BufReader};
    use std::sync::{Arc, Mutex};
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        "[server]\nbind = \"127.0.0.1:0\"\nadmin_bind = \"public\"\n[log]\nformat = \"json\"\n",
    )
    .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_media-origin"))
        .args(["serve", "--config"])
        .arg(&config)
        .arg("--storage")
        .arg(dir.path().join("data"))
        .env("RUST_LOG", "info")
        .env("MEDIA_ORIGIN_ADMIN_TOKEN", TOKEN)
        .env_remove("MEDIA_ORIGIN__SERVER__ADMIN_BIND")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lines: Arc<Mutex<Vec<String>>> = Arc::default();
    let kept = Arc::clone(&lines);
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                && v["message"] == "serving"
            {
                let _ = tx.send(v["addr"].as_str().unwrap().to_owned());
            }
            kept.lock().unwrap().push(line);
        }
    });
    let addr = rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .unwrap_or_else(|_| panic!("no JSON `serving` line in {:?}", lines.lock().unwrap()));
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let r = client
            .get(format!("http://{addr}/api/policies"))
            .bearer_auth(TOKEN)
            .header("x-request-id", "json-log-test-1")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    });
    // The admin request is logged at INFO, with its ID and status.
    let mut found = None;
    for _ in 0..50 {
        found = lines.lock().unwrap().iter().find_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            (v["request_id"] == "json-log-test-1").then_some(v)
        });
        if found.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    let v = found.unwrap_or_else(|| panic!("no request line in {:?}", lines.lock().unwrap()));
    assert_eq!(v["level"], "INFO");
    assert_eq!(v["message"], "request");
    assert_eq!(v["method"], "GET");
    assert_eq!(v["path"], "/api/policies");
    assert_eq!(v["status"], 200);
    assert!(v["timestamp"].is_string());
    // Every line is JSON.
    for line in lines.lock().unwrap().iter() {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    }
}
