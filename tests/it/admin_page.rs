//! The admin page end to end, in a real headless Chromium driven over WebDriver: sign in, upload
//! by the file picker with a progress bar per file, set a folder policy (a bad one first, whose
//! error shows beside its field), copy the link from the real clipboard, then fetch that link
//! from the public listener and see the served headers change. Then a media ID from the fake
//! Graph API, an asset override, and a delete behind its confirmation. Last, choosing another
//! asset: the panel's actions wait until that asset's record is on screen. A second walk goes
//! through a folder as a marketer would (thumbnails, filter and sort, media-ID states, bulk
//! actions, the replace question, template headers, phone width), and a third shows what a
//! server without WhatsApp settings and a token it no longer takes look like.
//!
//! Each main view is kept as a screenshot in `target/tmp/screenshots/` (the test prints where).
//!
//! Chromium and ChromeDriver come from Debian's packages; `scripts/install-chromium.sh`
//! installs them when they are missing, so the test needs nothing installed by hand. The
//! server runs as in production: the admin listener apart from the public one, so the page's
//! previews and Content-Security-Policy cross origins as they do for users.

use crate::common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::graph::GraphServer;
use common::{Storage, TOKEN, TestServer, fixtures};
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// How long a step may take before the test fails with what it was waiting for.
const STEP: Duration = Duration::from_secs(20);

/// The asset panel's buttons that act on the asset shown (a JavaScript array of their ids).
const ACTIONS: &str = "['override-save', 'override-remove', 'media-id-get', 'media-id-refresh', \
                       'delete-asset', 'copy-link', 'copy-link-json', 'fetch-log-reload']";

/// A 1×1 PNG that browsers decode, so the preview can be seen to load.
const PNG_1X1: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xf0,
    0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x89, 0x99, 0x3d, 0x1d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

/// Chromium's flags for a machine with a closed network and no display: without the
/// background-networking ones it keeps trying to reach Google's hosts.
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,1000",
];

/// Runs the project's install script (a no-op when both are there).
fn install_chromium() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/install-chromium.sh");
    let status = Command::new("bash")
        .arg(script)
        .status()
        .expect("run scripts/install-chromium.sh");
    assert!(
        status.success(),
        "scripts/install-chromium.sh failed ({status}): the admin page test needs Debian's \
         chromium and chromium-driver"
    );
}

/// ChromeDriver on a free port, killed with the test.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let url = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let deadline = Instant::now() + STEP;
        loop {
            if let Ok(r) = client.get(format!("{url}/status")).send().await
                && let Ok(status) = r.json::<Value>().await
                && status["value"]["ready"] == true
            {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not get ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self { child, url }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// WebDriver's Set Permission (W3C Permissions extension), which fantoccini has no method for:
/// the test reads the clipboard back, and reading it needs `clipboard-read`.
#[derive(Debug)]
struct SetPermission(&'static str);

impl WebDriverCompatibleCommand for SetPermission {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!("session/{}/permissions", session_id.unwrap_or("")))
    }

    fn method_and_body(&self, _: &url::Url) -> (axum::http::Method, Option<String>) {
        let body = json!({"descriptor": {"name": self.0}, "state": "granted"});
        (axum::http::Method::POST, Some(body.to_string()))
    }
}

/// Chromium's console (ChromeDriver's log endpoint), to fail on script errors and CSP
/// violations the page would otherwise swallow.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!("session/{}/se/log", session_id.unwrap_or("")))
    }

    fn method_and_body(&self, _: &url::Url) -> (axum::http::Method, Option<String>) {
        (
            axum::http::Method::POST,
            Some(json!({"type": "browser"}).to_string()),
        )
    }
}

async fn browser(driver: &Driver, profile: &std::path::Path) -> Client {
    let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|s| s.to_string()).collect();
    args.push(format!("--user-data-dir={}", profile.display()));
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args},
        "goog:loggingPrefs": {"browser": "ALL"},
    });
    let serde_json::Value::Object(caps) = caps else {
        unreachable!()
    };
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a Chromium session")
}

/// A server as in production: the admin listener apart from the public one, so the page's
/// previews and Content-Security-Policy cross origins; with `graph`, its `[whatsapp]` settings
/// point at the fake Graph API.
async fn start_server(graph: Option<&GraphServer>) -> TestServer {
    TestServer::start_with(Storage::new(common::Backend::Local).await, |c| {
        c.server.admin_bind = media_origin::config::AdminBind::Addr("127.0.0.1:0".parse().unwrap());
        if let Some(graph) = graph {
            graph.configure(c);
        }
    })
    .await
}

/// Lets the page write the clipboard and the test read it back.
async fn allow_clipboard(c: &Client) {
    c.issue_cmd(SetPermission("clipboard-read")).await.unwrap();
    c.issue_cmd(SetPermission("clipboard-write")).await.unwrap();
}

/// Runs `script` (its last expression is returned) until it gives something truthy, or fails
/// the test naming `what`.
async fn until(c: &Client, what: &str, script: &str) -> Value {
    let deadline = Instant::now() + STEP;
    let mut last;
    loop {
        match c.execute(script, vec![]).await {
            Ok(v) if !matches!(&v, Value::Null | Value::Bool(false)) && v != json!("") => {
                return v;
            }
            Ok(v) => last = v,
            Err(e) => last = json!(e.to_string()),
        }
        if Instant::now() > deadline {
            let page = c
                .execute("return document.body.innerText", vec![])
                .await
                .unwrap_or_default();
            panic!("timed out waiting for {what} (last: {last}); the page reads:\n{page}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the element's trimmed text is exactly `expected`.
async fn until_text(c: &Client, selector: &str, expected: &str) {
    let script = format!(
        "const e = document.querySelector({}); return !!e && e.textContent.trim() === {}",
        json!(selector),
        json!(expected)
    );
    if until(c, &format!("{selector} to read {expected:?}"), &script)
        .await
        .as_bool()
        != Some(true)
    {
        unreachable!()
    }
}

/// The text of `selector` once it is not empty.
async fn nonempty_text(c: &Client, selector: &str) -> String {
    let script = format!(
        "const e = document.querySelector({}); return e ? e.textContent.trim() : ''",
        json!(selector)
    );
    until(c, &format!("text in {selector}"), &script)
        .await
        .as_str()
        .unwrap()
        .to_owned()
}

async fn click(c: &Client, selector: &str) {
    let deadline = Instant::now() + STEP;
    loop {
        // Waits out re-renders: the element may be replaced between finding and clicking.
        let attempt = async {
            let e = c.find(Locator::Css(selector)).await?;
            e.click().await
        };
        match attempt.await {
            Ok(()) => return,
            Err(e) if Instant::now() > deadline => panic!("cannot click {selector}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Types `text` into the field at `selector` in place of what it holds, once the field can be
/// typed into (it may still be hidden, e.g. while signing in finishes).
async fn fill(c: &Client, selector: &str, text: &str) {
    let deadline = Instant::now() + STEP;
    loop {
        let attempt = async {
            let e = c.find(Locator::Css(selector)).await?;
            e.clear().await?;
            e.send_keys(text).await
        };
        match attempt.await {
            Ok(()) => return,
            Err(e) if Instant::now() > deadline => panic!("cannot type into {selector}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Chooses `value` in the `<select>` at `selector` (a policy picker, the sort), as a person
/// would: the option is clicked, so the page sees its `change` event.
async fn choose(c: &Client, selector: &str, value: &str) {
    let e = c
        .wait()
        .at_most(STEP)
        .for_element(Locator::Css(selector))
        .await
        .unwrap();
    e.select_by_value(value).await.unwrap();
}

/// Drops a file named `name` holding `bytes` on the drop zone: the drop event a browser fires
/// for a file dragged from the desktop, built in the page (WebDriver cannot drag from outside).
async fn drop_file(c: &Client, name: &str, bytes: &[u8]) {
    c.execute(
        "const bytes = Uint8Array.from(arguments[0]); \
         const dt = new DataTransfer(); \
         dt.items.add(new File([bytes], arguments[1])); \
         const zone = document.querySelector('#drop-zone'); \
         zone.dispatchEvent(new DragEvent('dragover', {dataTransfer: dt, bubbles: true, cancelable: true})); \
         zone.dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));",
        vec![json!(bytes), json!(name)],
    )
    .await
    .unwrap();
}

/// Keeps a picture of what the browser shows as `target/tmp/screenshots/<name>.png` (the
/// README's admin-page section says where), and says where it went.
async fn keep_screenshot(c: &Client, name: &str) {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.png"));
    let png = c.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a screenshot is a PNG");
    std::fs::write(&path, png).unwrap();
    println!("screenshot of the admin page kept: {}", path.display());
}

/// Fails on script errors and CSP violations in the browser's console; failed loads whose
/// status the test caused on purpose (`expected`, e.g. "status of 400") are let through.
async fn assert_quiet_console(c: &Client, expected: &[&str]) {
    let log = c.issue_cmd(BrowserLog).await.unwrap();
    let severe: Vec<&Value> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["level"] == "SEVERE")
        .filter(|e| {
            let m = e["message"].as_str().unwrap_or("");
            !expected.iter().any(|expected| m.contains(expected))
        })
        .collect();
    assert!(
        severe.is_empty(),
        "the browser console shows errors: {severe:#?}"
    );
}

/// Clicks a copy button, waits for the page to say so, and returns what the clipboard holds.
async fn copy(c: &Client, button: &str) -> String {
    c.execute(
        "document.querySelector('#copy-status').textContent = ''",
        vec![],
    )
    .await
    .unwrap();
    click(c, button).await;
    until_text(c, "#copy-status", "Copied").await;
    clipboard(c).await
}

/// Clicks a copy button and parses what lands on the clipboard as JSON.
async fn copy_json(c: &Client, button: &str) -> Value {
    let copied = copy(c, button).await;
    serde_json::from_str(&copied)
        .unwrap_or_else(|e| panic!("{button} copied no JSON ({e}): {copied}"))
}

/// Waits until the dialog with `id` is open.
async fn until_open(c: &Client, id: &str) {
    let script = format!("return document.getElementById({}).open", json!(id));
    until(c, &format!("the dialog #{id} to open"), &script).await;
}

/// Waits until the element with `id` is enabled (`true`) or disabled (`false`).
async fn until_enabled(c: &Client, id: &str, enabled: bool) {
    let script = format!(
        "const e = document.getElementById({}); return !!e && e.disabled === {}",
        json!(id),
        !enabled
    );
    until(c, &format!("#{id} enabled: {enabled}"), &script).await;
}

/// What the system clipboard holds, read as a page would (needs `clipboard-read`).
async fn clipboard(c: &Client) -> String {
    let text = c
        .execute_async(
            "const done = arguments[arguments.length - 1]; \
             navigator.clipboard.readText().then(done, e => done('clipboard: ' + e))",
            vec![],
        )
        .await
        .unwrap();
    text.as_str().unwrap().to_owned()
}

/// The value the served-headers table shows for `name`.
async fn shown_header(c: &Client, name: &str) -> String {
    nonempty_text(
        c,
        &format!("#served-headers tr[data-header=\"{name}\"] td.value"),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_upload_set_a_folder_policy_copy_the_link_and_see_the_headers_change() {
    install_chromium();
    let graph = GraphServer::start_default().await;
    let s = start_server(Some(&graph)).await;
    assert_ne!(s.addr, s.admin_addr, "the page runs on the admin listener");
    let files = tempfile::tempdir().unwrap();
    let banner = files.path().join("banner.png");
    std::fs::write(&banner, PNG_1X1).unwrap();
    let clip_bytes = fixtures::mp4(300_000, 7);
    let clip = files.path().join("clip.mp4");
    std::fs::write(&clip, &clip_bytes).unwrap();
    // Bytes of no type WhatsApp takes: refused, with the API's reason on the file's row.
    let notes = files.path().join("setup.bin");
    std::fs::write(&notes, fixtures::noise(5000, 3)).unwrap();
    // A GIF: refused, and its row shows the command that makes it acceptable.
    let gif = files.path().join("offer.gif");
    let mut gif_bytes = b"GIF89a".to_vec();
    gif_bytes.extend(fixtures::noise(2000, 4));
    std::fs::write(&gif, gif_bytes).unwrap();

    let driver = Driver::start().await;
    let profile = tempfile::tempdir().unwrap();
    let c = browser(&driver, profile.path()).await;
    let admin = format!("http://{}", s.admin_addr);
    c.goto(&format!("{admin}/admin")).await.unwrap();

    // A wrong token is refused, in a sentence that says what to do.
    keep_screenshot(&c, "sign-in").await;
    fill(&c, "#token", "not-the-token").await;
    click(&c, "#sign-in").await;
    let refusal = nonempty_text(&c, "#sign-in-error").await;
    assert_eq!(
        refusal,
        "That is not the admin token this server expects. Paste it again exactly as you were \
         given it (nothing missing, no spaces around it), or ask whoever runs the server for \
         the current one."
    );
    fill(&c, "#token", TOKEN).await;
    click(&c, "#sign-in").await;
    until(
        &c,
        "the signed-in page",
        "const a = document.querySelector('#app'); return !!a && a.offsetParent !== null \
         && document.querySelector('#sign-in').offsetParent === null",
    )
    .await;

    // Into a folder that does not exist yet, then four files through the picker at once.
    fill(&c, "#go-folder", "promo").await;
    click(&c, "#go-folder-btn").await;
    until_text(&c, "#current-folder", "promo").await;
    let picker = c.find(Locator::Css("#file-input")).await.unwrap();
    let chosen = [&banner, &clip, &notes, &gif]
        .map(|p| p.display().to_string())
        .join("\n");
    picker.send_keys(&chosen).await.unwrap();
    for name in ["banner.png", "clip.mp4"] {
        let row = format!("[data-testid=upload][data-name=\"{name}\"]");
        until_text(&c, &format!("{row} [data-testid=upload-status]"), "done").await;
        // The bar ran to its end.
        let full = c
            .execute(
                &format!(
                    "const p = document.querySelector({}); return p.max > 0 && p.value === p.max",
                    json!(format!("{row} progress"))
                ),
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(full, json!(true), "{name}'s progress bar is not full");
    }
    let refused = until(
        &c,
        "setup.bin's row to show the refusal",
        "const e = document.querySelector('[data-testid=upload][data-name=\"setup.bin\"] \
         [data-testid=upload-status]'); \
         return e && e.textContent.startsWith('error:') ? e.textContent : null",
    )
    .await;
    assert!(refused.as_str().unwrap().contains("type"), "{refused}");
    let fix = until(
        &c,
        "offer.gif's row to show the fix",
        "const e = document.querySelector('[data-testid=upload][data-name=\"offer.gif\"] \
         [data-testid=upload-fix]'); return e ? e.textContent : null",
    )
    .await;
    assert_eq!(
        fix,
        json!("ffmpeg -i in.gif -frames:v 1 -pix_fmt rgba out.png")
    );
    // What the page uploaded is stored whole; the refused file is not stored at all.
    let r = s.get(&s.media("promo/clip.mp4")).await;
    assert_eq!(r.bytes().await.unwrap().as_ref(), clip_bytes.as_slice());
    let r = s.get(&s.media("promo/banner.png")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "max-age=86400");
    assert_eq!(r.bytes().await.unwrap().as_ref(), PNG_1X1);
    let listed: Value = s
        .admin_json(reqwest::Method::GET, "/assets?prefix=promo/")
        .await;
    assert!(!listed.to_string().contains("setup.bin"), "{listed}");

    // A file dropped on the drop zone goes the same way (the drop event a browser fires for a
    // file dragged from the desktop, built in the page: WebDriver cannot drag from outside).
    drop_file(&c, "dropped.png", PNG_1X1).await;
    until_text(
        &c,
        "[data-testid=upload][data-name=\"dropped.png\"] [data-testid=upload-status]",
        "done",
    )
    .await;
    let r = s.get(&s.media("promo/dropped.png")).await;
    assert_eq!(r.bytes().await.unwrap().as_ref(), PNG_1X1);

    // Browsing: from the root, the folder is listed and leads back to its assets.
    click(&c, "[data-testid=crumb][data-folder=\"\"]").await;
    until_text(&c, "#current-folder", "/").await;
    click(&c, "[data-testid=folder][data-folder=\"promo\"]").await;
    until_text(&c, "#current-folder", "promo").await;

    // The asset's details: what it is, and exactly how it is served.
    click(
        &c,
        "[data-testid=asset-row][data-path=\"promo/banner.png\"]",
    )
    .await;
    until_text(&c, "#detail-path", "promo/banner.png").await;
    until_text(&c, "#detail-kind", "image").await;
    until_text(&c, "#detail-type", "image/png").await;
    let size = nonempty_text(&c, "#detail-size").await;
    assert!(size.contains(&format!("{} bytes", PNG_1X1.len())), "{size}");
    until_text(&c, "#detail-policy", "max-age=86400").await;
    assert_eq!(shown_header(&c, "cache-control").await, "max-age=86400");
    let record: Value = s
        .admin_json(reqwest::Method::GET, "/assets/promo/banner.png")
        .await;
    assert_eq!(shown_header(&c, "etag").await, record["etag"]);
    assert_eq!(
        shown_header(&c, "last-modified").await,
        record["last_modified"]
    );
    assert_eq!(
        shown_header(&c, "content-length").await,
        PNG_1X1.len().to_string()
    );
    // The preview loads from the public listener (another origin, allowed by the page's CSP).
    until(
        &c,
        "the image preview to load",
        "const p = document.querySelector('#preview'); \
         return !!p && p.tagName === 'IMG' && p.complete && p.naturalWidth === 1",
    )
    .await;

    // A policy the API refuses: its reason appears beside the field, and nothing changes.
    choose(&c, "#folder-policy-choice", "custom").await;
    fill(&c, "#folder-policy", "max-age=forever").await;
    until_text(&c, "#folder-policy-raw", "max-age=forever").await;
    click(&c, "#folder-policy-save").await;
    let why = nonempty_text(&c, "#folder-policy-error").await;
    assert!(why.contains("max-age"), "{why}");
    let policies: Value = s.admin_json(reqwest::Method::GET, "/policies").await;
    assert!(!policies.to_string().contains("promo"), "{policies}");

    // A good one, in plain words: the folder's rule, the asset's policy and its served headers
    // all follow.
    choose(&c, "#folder-policy-choice", "no-cache").await;
    until_text(&c, "#folder-policy-raw", "no-cache").await;
    click(&c, "#folder-policy-save").await;
    until_text(&c, "#folder-policy-current", "no-cache").await;
    until_text(&c, "#folder-policy-words", "always re-check when changed").await;
    until_text(&c, "#detail-policy-words", "always re-check when changed").await;
    until_text(&c, "#folder-policy-error", "").await;
    until_text(&c, "#detail-policy", "no-cache").await;
    let source = nonempty_text(&c, "#detail-policy-source").await;
    assert!(source.starts_with("folder"), "{source}");
    until_text(
        &c,
        "#served-headers tr[data-header=\"cache-control\"] td.value",
        "no-cache",
    )
    .await;

    // Copy the link: what lands on the clipboard is the record's link, and fetching it from
    // the public listener shows the new policy.
    allow_clipboard(&c).await;
    let copied = copy(&c, "#copy-link").await;
    let record: Value = s
        .admin_json(reqwest::Method::GET, "/assets/promo/banner.png")
        .await;
    assert_eq!(copied, record["link"].as_str().unwrap());
    let link = copied.as_str();
    assert!(link.starts_with(&format!("http://{}/media/promo/banner.png?v=", s.addr)));
    let r = s.get(link).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-cache");
    assert_eq!(r.headers()["etag"], record["etag"].as_str().unwrap());
    assert_eq!(
        r.headers()["last-modified"],
        record["last_modified"].as_str().unwrap()
    );
    assert_eq!(r.bytes().await.unwrap().as_ref(), PNG_1X1);

    // The page's fetch log is the server's: every public fetch so far, the one above included
    // (the test's own GETs, and the browser loading the preview).
    let log: Value = s
        .admin_json(reqwest::Method::GET, "/fetches/promo/banner.png")
        .await;
    let kept = log["fetches"].as_array().unwrap().len();
    assert!(kept >= 3, "{log}");
    click(&c, "#fetch-log-reload").await;
    until(
        &c,
        "the fetch log to list every fetch",
        &format!(
            "return document.querySelectorAll('#fetch-log [data-testid=fetch]').length === {kept}"
        ),
    )
    .await;

    // The `link` JSON, ready to paste into a message.
    let pasted = copy_json(&c, "#copy-link-json").await;
    assert_eq!(pasted, record["message"]);

    // A media ID from the (fake) Cloud API.
    click(&c, "#media-id-get").await;
    let shown_id = nonempty_text(&c, "#media-id").await;
    assert_eq!(graph.uploads().len(), 1);
    let record: Value = s
        .admin_json(reqwest::Method::GET, "/assets/promo/banner.png")
        .await;
    let stored_id = record["whatsapp"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap()["media_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(shown_id.contains(&stored_id), "{shown_id} vs {stored_id}");
    // Refresh uploads the bytes again for a new ID.
    click(&c, "#media-id-refresh").await;
    let refreshed = until(
        &c,
        "a new media ID",
        &format!(
            "const t = document.querySelector('#media-id').textContent.trim(); \
             return t && t !== {} ? t : null",
            json!(shown_id)
        ),
    )
    .await;
    assert_eq!(graph.uploads().len(), 2);
    let record: Value = s
        .admin_json(reqwest::Method::GET, "/assets/promo/banner.png")
        .await;
    assert_eq!(
        record["message_by_id"]["image"]["id"], refreshed,
        "the page shows the ID the record now holds"
    );
    // And the `id` message JSON for it.
    let pasted = copy_json(&c, "#copy-id-json").await;
    assert_eq!(pasted, record["message_by_id"]);

    // An override on the asset wins over the folder, and removing it gives the folder back.
    choose(&c, "#override-policy-choice", "max-age=3600").await;
    click(&c, "#override-save").await;
    until_text(&c, "#detail-policy", "max-age=3600").await;
    until_text(&c, "#override-words", "re-use for 1 hour").await;
    // "custom…" starts from the current directive, all selected: what is typed replaces it.
    choose(&c, "#override-policy-choice", "custom").await;
    let custom = until(
        &c,
        "the custom field, focused, its text selected",
        "const f = document.getElementById('override-policy'); \
         return document.activeElement === f && f.selectionStart === 0 \
           && f.selectionEnd === f.value.length ? f.value : null",
    )
    .await;
    assert_eq!(custom, json!("max-age=3600"));
    c.active_element()
        .await
        .unwrap()
        .send_keys("max-age=60")
        .await
        .unwrap();
    until_text(&c, "#override-policy-raw", "max-age=60").await;
    click(&c, "#override-save").await;
    until_text(&c, "#detail-policy", "max-age=60").await;
    until_text(&c, "#detail-policy-source", "asset").await;
    until_text(&c, "#override-words", "re-use for 1 minute").await;
    assert_eq!(
        s.get(&s.media("promo/banner.png")).await.headers()["cache-control"],
        "max-age=60"
    );
    click(&c, "#override-remove").await;
    until_text(&c, "#detail-policy", "no-cache").await;

    // Delete asks first; Cancel keeps the asset, Delete removes it.
    click(&c, "#delete-asset").await;
    until_open(&c, "confirm-delete").await;
    click(&c, "#confirm-delete-no").await;
    assert_eq!(
        s.get(&s.media("promo/banner.png")).await.status(),
        StatusCode::OK
    );
    click(&c, "#delete-asset").await;
    click(&c, "#confirm-delete-yes").await;
    until(
        &c,
        "the row to go",
        "return !document.querySelector('[data-testid=asset-row][data-path=\"promo/banner.png\"]')",
    )
    .await;
    assert_eq!(
        s.get(&s.media("promo/banner.png")).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.get(&s.media("promo/clip.mp4")).await.status(),
        StatusCode::OK
    );

    // Choosing another asset: until its record is on screen the panel still shows the previous
    // one, so its actions wait. The new record's request is held in the page (not timed), then
    // let go.
    click(
        &c,
        "[data-testid=asset-row][data-path=\"promo/dropped.png\"]",
    )
    .await;
    until_text(&c, "#detail-path", "promo/dropped.png").await;
    until(
        &c,
        "the actions on promo/dropped.png to be enabled",
        &format!("return {ACTIONS}.every(id => !document.getElementById(id).disabled)"),
    )
    .await;
    c.execute(
        "window.heldLoads = []; window.pageFetch = window.fetch; \
         window.fetch = (url, init) => String(url).endsWith('/api/assets/promo/clip.mp4') \
           ? new Promise(go => window.heldLoads.push(go)).then(() => window.pageFetch(url, init)) \
           : window.pageFetch(url, init);",
        vec![],
    )
    .await
    .unwrap();
    click(&c, "[data-testid=asset-row][data-path=\"promo/clip.mp4\"]").await;
    until(
        &c,
        "the page to ask for promo/clip.mp4",
        "return window.heldLoads.length === 1",
    )
    .await;
    let waiting = c
        .execute(
            &format!(
                "return {{shown: document.getElementById('detail-path').textContent, \
                 loading: document.getElementById('asset-detail').classList.contains('loading'), \
                 enabled: {ACTIONS}.filter(id => !document.getElementById(id).disabled)}}"
            ),
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        waiting,
        json!({"shown": "promo/dropped.png", "loading": true, "enabled": []}),
        "while promo/clip.mp4 loads"
    );
    c.execute(
        "window.fetch = window.pageFetch; window.heldLoads.forEach(go => go());",
        vec![],
    )
    .await
    .unwrap();
    until_text(&c, "#detail-path", "promo/clip.mp4").await;
    until(
        &c,
        "the actions on promo/clip.mp4 to be enabled",
        &format!(
            "return !document.getElementById('asset-detail').classList.contains('loading') \
             && {ACTIONS}.every(id => !document.getElementById(id).disabled)"
        ),
    )
    .await;
    // A video previews as a player of its link on the public listener.
    until_text(&c, "#detail-kind", "video").await;
    let preview = until(
        &c,
        "the video preview",
        "const p = document.querySelector('#preview'); \
         return p && p.tagName === 'VIDEO' && p.controls ? p.src : null",
    )
    .await;
    assert!(
        preview
            .as_str()
            .unwrap()
            .starts_with(&format!("http://{}/media/promo/clip.mp4?v=", s.addr)),
        "{preview}"
    );

    // Nothing went wrong in the page itself: no script errors, no CSP violations. (The
    // deliberate 400, 401 and 415 above are logged by Chromium as failed loads; only those.)
    assert_quiet_console(&c, &["status of 400", "status of 401", "status of 415"]).await;
    c.close().await.unwrap();
}

/// An Ogg Opus asset over 512 KB: the page offers its voice-note JSON beside the other copy
/// buttons and shows the record's warning; an image has neither.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voice_note_offers_its_json_and_shows_its_warning() {
    install_chromium();
    let s = start_server(None).await;
    let voice = s
        .upload(
            "voice/long.ogg",
            "audio/ogg; codecs=opus",
            fixtures::ogg_opus(600_000, 1),
        )
        .await;
    let warning = voice["warnings"][0].as_str().unwrap().to_owned();
    assert!(warning.starts_with("voice note over 512 KB"), "{warning}");
    s.upload("voice/cover.png", "image/png", PNG_1X1.to_vec())
        .await;

    let driver = Driver::start().await;
    let profile = tempfile::tempdir().unwrap();
    let c = browser(&driver, profile.path()).await;
    c.goto(&format!("http://{}/admin", s.admin_addr))
        .await
        .unwrap();
    allow_clipboard(&c).await;
    fill(&c, "#token", TOKEN).await;
    click(&c, "#sign-in").await;
    fill(&c, "#go-folder", "voice").await;
    click(&c, "#go-folder-btn").await;
    until_text(&c, "#current-folder", "voice").await;

    click(&c, "[data-testid=asset-row][data-path=\"voice/long.ogg\"]").await;
    until_text(&c, "#detail-path", "voice/long.ogg").await;
    until(
        &c,
        "the voice-note button",
        "return document.getElementById('copy-voice-json').offsetParent !== null",
    )
    .await;
    until_text(&c, "#detail-warnings li", &warning).await;
    // This server has no WhatsApp settings: "Get media ID" is disabled, and says why, before
    // anyone clicks; so is the listing's bulk "Get media IDs".
    let reason = nonempty_text(&c, "#media-id-unavailable").await;
    assert_eq!(
        reason,
        "Media IDs are not available: this server is not connected to WhatsApp yet (WhatsApp \
         uploads are not configured: set the WHATSAPP_ACCESS_TOKEN environment variable). Ask \
         whoever runs it to set that up; the link works without a media ID."
    );
    let disabled = c
        .execute(
            "return ['media-id-get', 'media-id-refresh'].map(id => { \
               const b = document.getElementById(id); return [b.disabled, b.title]; })",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(disabled, json!([[true, reason], [true, reason]]));
    click(&c, "[data-testid=pick][data-path=\"voice/long.ogg\"]").await;
    until_text(&c, "#bulk-count", "1 asset selected").await;
    until_text(&c, "#bulk-media-note", &reason).await;
    let bulk = c
        .execute(
            "const b = document.getElementById('bulk-media'); return [b.disabled, b.title]",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(bulk, json!([true, reason]));
    // An audio file is no template header: its button says why it is off.
    let header = c
        .execute(
            "const b = document.getElementById('copy-template-header'); return [b.disabled, b.title]",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        header,
        json!([
            true,
            "A template header is an image, a video or a document, not audio"
        ])
    );
    let pasted = copy_json(&c, "#copy-voice-json").await;
    assert_eq!(pasted, voice["message_voice"]);
    assert_eq!(
        pasted,
        json!({"type": "audio", "audio": {"link": voice["link"], "voice": true}})
    );

    click(&c, "[data-testid=asset-row][data-path=\"voice/cover.png\"]").await;
    until_text(&c, "#detail-path", "voice/cover.png").await;
    until(
        &c,
        "no voice-note button and no warnings for an image",
        "const w = document.getElementById('detail-warnings'); \
         return document.getElementById('copy-voice-json').offsetParent === null \
         && w.offsetParent === null && w.children.length === 0",
    )
    .await;

    // The server stops taking the token (changed, or a restart with a new one): the next call
    // gets the API's 401, and the page says what happened in words, back at sign-in. (The
    // 401 is the server's own, for a token it does not take, sent in place of the page's.)
    c.execute(
        "const wrong = 'Bearer no-longer-the-token'; window.pageFetch = window.fetch; \
         window.fetch = (url, init) => window.pageFetch(url, \
           {...init, headers: {...init.headers, Authorization: wrong}});",
        vec![],
    )
    .await
    .unwrap();
    click(&c, "#fetch-log-reload").await;
    until_text(
        &c,
        "#sign-in-error",
        "You were signed out: the server no longer accepts the token this page was using (it \
         was changed, or the server started again with a new one). Sign in with the current \
         admin token.",
    )
    .await;
    c.close().await.unwrap();
}

/// The sort order the listing shows, as asset paths.
async fn listed(c: &Client) -> Vec<String> {
    let rows = c
        .execute(
            "return [...document.querySelectorAll('[data-testid=asset-row]')] \
               .filter(r => r.offsetParent !== null).map(r => r.dataset.path)",
            vec![],
        )
        .await
        .unwrap();
    serde_json::from_value(rows).unwrap()
}

/// What a marketer does in a folder: sees thumbnails, plain-words policies and media-ID states,
/// filters and sorts, ticks several assets to get their media IDs, set their policy or delete
/// them; is asked before a dropped file replaces one; copies a template header; and finds the
/// page usable at phone width. A folder emptied elsewhere is not listed. One screenshot of each
/// main view is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_marketer_works_through_a_folder() {
    install_chromium();
    let graph = GraphServer::start_default().await;
    let s = start_server(Some(&graph)).await;
    let long = "spring/a-very-long-campaign-banner-name-without-any-spaces-for-the-2026-spring-sale-final-v3.png";
    let clip_bytes = fixtures::mp4(300_000, 7);
    s.upload("spring/banner.png", "image/png", PNG_1X1.to_vec())
        .await;
    s.upload(long, "image/png", PNG_1X1.to_vec()).await;
    s.upload("spring/clip.mp4", "video/mp4", clip_bytes.clone())
        .await;
    s.upload(
        "spring/terms.pdf",
        "application/pdf",
        fixtures::pdf(20_000, 3),
    )
    .await;
    s.upload("summer/old.png", "image/png", PNG_1X1.to_vec())
        .await;

    let driver = Driver::start().await;
    let profile = tempfile::tempdir().unwrap();
    let c = browser(&driver, profile.path()).await;
    c.goto(&format!("http://{}/", s.admin_addr)).await.unwrap();
    // The admin listener's root leads to the page.
    until(
        &c,
        "the page at /admin",
        "return location.pathname === '/admin' && !!document.getElementById('token')",
    )
    .await;
    allow_clipboard(&c).await;
    fill(&c, "#token", TOKEN).await;
    click(&c, "#sign-in").await;
    until_text(&c, "#current-folder", "/").await;

    // Before an asset is chosen, the right side says what to do.
    until(
        &c,
        "the empty state beside the listing",
        "const e = document.getElementById('detail-empty'); \
         return e.offsetParent !== null && document.getElementById('asset-detail').hidden",
    )
    .await;
    let empty = nonempty_text(&c, "#detail-empty").await;
    assert!(empty.contains("Choose an asset"), "{empty}");
    // A folder emptied by a delete elsewhere is not listed once the page reads the folder again.
    until(
        &c,
        "both folders",
        "return document.querySelectorAll('[data-testid=folder]').length === 2",
    )
    .await;
    let r = s
        .admin(reqwest::Method::DELETE, "/assets/summer/old.png")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    fill(&c, "#go-folder", "/").await;
    click(&c, "#go-folder-btn").await;
    until(
        &c,
        "spring alone to be listed",
        "const f = [...document.querySelectorAll('[data-testid=folder]')].map(b => b.dataset.folder); \
         return f.length === 1 && f[0] === 'spring'",
    )
    .await;
    keep_screenshot(&c, "empty-state").await;

    // The listing: a thumbnail per image, policies in words, media-ID state.
    click(&c, "[data-testid=folder][data-folder=\"spring\"]").await;
    until_text(&c, "#current-folder", "spring").await;
    until(
        &c,
        "the image thumbnails to load",
        "const t = [...document.querySelectorAll('[data-testid=thumb]')]; \
         return t.length === 2 && t.every(i => i.complete && i.naturalWidth === 1)",
    )
    .await;
    let banner_row = "[data-testid=asset-row][data-path=\"spring/banner.png\"]";
    until_text(
        &c,
        &format!("{banner_row} [data-testid=row-policy] .policy-words"),
        "re-use for 1 day",
    )
    .await;
    until_text(
        &c,
        &format!("{banner_row} [data-testid=row-policy] code"),
        "max-age=86400",
    )
    .await;
    until_text(
        &c,
        &format!("{banner_row} [data-testid=media-state]"),
        "none",
    )
    .await;

    // Filter and sort.
    assert_eq!(
        listed(&c).await,
        [
            long,
            "spring/banner.png",
            "spring/clip.mp4",
            "spring/terms.pdf"
        ]
    );
    fill(&c, "#list-filter", "BAN").await;
    until(
        &c,
        "the filter to leave two rows",
        "return [...document.querySelectorAll('[data-testid=asset-row]')].length === 2",
    )
    .await;
    assert_eq!(listed(&c).await, [long, "spring/banner.png"]);
    fill(&c, "#list-filter", "zzz").await;
    until_text(&c, "#list-no-match", "No asset name here contains \"zzz\".").await;
    fill(&c, "#list-filter", "").await;
    c.execute(
        "document.getElementById('list-filter').dispatchEvent(new Event('input'))",
        vec![],
    )
    .await
    .unwrap();
    choose(&c, "#list-sort", "size-desc").await;
    let by_size = listed(&c).await;
    assert_eq!(by_size[..2], ["spring/clip.mp4", "spring/terms.pdf"]);
    choose(&c, "#list-sort", "name-desc").await;
    assert_eq!(
        listed(&c).await,
        [
            "spring/terms.pdf",
            "spring/clip.mp4",
            "spring/banner.png",
            long
        ]
    );
    choose(&c, "#list-sort", "name").await;

    // Tick two: media IDs for both at once, then a policy for both.
    click(&c, "[data-testid=pick][data-path=\"spring/banner.png\"]").await;
    click(&c, "[data-testid=pick][data-path=\"spring/clip.mp4\"]").await;
    until_text(&c, "#bulk-count", "2 assets selected").await;
    // A ticked asset the filter hides is still ticked, and the count says so.
    fill(&c, "#list-filter", "clip").await;
    until_text(
        &c,
        "#bulk-count",
        "2 assets selected (1 hidden by the filter)",
    )
    .await;
    fill(&c, "#list-filter", "").await;
    c.execute(
        "document.getElementById('list-filter').dispatchEvent(new Event('input'))",
        vec![],
    )
    .await
    .unwrap();
    until_text(&c, "#bulk-count", "2 assets selected").await;
    click(&c, "#bulk-media").await;
    until_text(&c, "#bulk-status", "Media IDs: 2 of 2 done.").await;
    assert_eq!(graph.uploads().len(), 2);
    for path in ["spring/banner.png", "spring/clip.mp4"] {
        let state = nonempty_text(
            &c,
            &format!("[data-testid=asset-row][data-path=\"{path}\"] [data-testid=media-state][data-state=valid]"),
        )
        .await;
        assert!(state.starts_with("valid until "), "{path}: {state}");
    }
    until_text(
        &c,
        "[data-testid=asset-row][data-path=\"spring/terms.pdf\"] [data-testid=media-state]",
        "none",
    )
    .await;
    choose(&c, "#bulk-policy-choice", "no-store").await;
    until_text(&c, "#bulk-policy-raw", "no-store").await;
    click(&c, "#bulk-policy-save").await;
    until_text(
        &c,
        "#bulk-status",
        "Cache policy never cache (no-store): 2 of 2 done.",
    )
    .await;
    until_text(
        &c,
        &format!("{banner_row} [data-testid=row-policy] .policy-words"),
        "never cache",
    )
    .await;
    for path in ["spring/banner.png", "spring/clip.mp4"] {
        let r = s.get(&s.media(path)).await;
        assert_eq!(r.headers()["cache-control"], "no-store", "{path}");
    }
    assert_eq!(
        s.get(&s.media("spring/terms.pdf")).await.headers()["cache-control"],
        "max-age=86400"
    );
    keep_screenshot(&c, "listing").await;

    // Dropping a file whose name is taken asks first and says what replacing does; keeping
    // uploads nothing.
    let new_bytes = fixtures::png(600, 5);
    drop_file(&c, "banner.png", &new_bytes).await;
    until_open(&c, "confirm-replace").await;
    until_text(
        &c,
        "#confirm-replace-title",
        "spring already has a file named banner.png. Replace it?",
    )
    .await;
    let said = nonempty_text(&c, "#confirm-replace").await;
    let said = said.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        said.contains("links already sent serve the new file")
            && said.contains("makes Meta fetch the new file at once"),
        "{said}"
    );
    click(&c, "#confirm-replace-no").await;
    until_text(
        &c,
        "[data-testid=upload][data-state=kept] [data-testid=upload-status]",
        "not uploaded: the existing file was kept",
    )
    .await;
    let r = s.get(&s.media("spring/banner.png")).await;
    assert_eq!(r.bytes().await.unwrap().as_ref(), PNG_1X1);
    drop_file(&c, "banner.png", &new_bytes).await;
    until_open(&c, "confirm-replace").await;
    click(&c, "#confirm-replace-yes").await;
    until_text(
        &c,
        "[data-testid=upload][data-state=done] [data-testid=upload-status]",
        "done",
    )
    .await;
    let r = s.get(&s.media("spring/banner.png")).await;
    assert_eq!(r.bytes().await.unwrap().as_ref(), new_bytes.as_slice());
    // A new name goes at once, without a question.
    drop_file(&c, "fresh.png", PNG_1X1).await;
    until_text(
        &c,
        "[data-testid=upload][data-name=\"fresh.png\"] [data-testid=upload-status]",
        "done",
    )
    .await;
    assert_eq!(
        c.execute(
            "return document.getElementById('confirm-replace').open",
            vec![]
        )
        .await
        .unwrap(),
        json!(false)
    );

    // (The replacing upload's row took the place of the kept one: one row per path.)
    // Upload results belong to their folder: elsewhere they are not shown, only counted.
    click(&c, "[data-testid=crumb][data-folder=\"\"]").await;
    until_text(&c, "#current-folder", "/").await;
    until(
        &c,
        "spring's upload rows to be hidden at the root",
        "return [...document.querySelectorAll('[data-testid=upload]')].every(r => r.offsetParent === null)",
    )
    .await;
    until_text(
        &c,
        "#uploads-elsewhere",
        "2 uploads made in other folders are listed there.",
    )
    .await;
    click(&c, "[data-testid=folder][data-folder=\"spring\"]").await;
    until(
        &c,
        "spring's upload rows back",
        "const rows = [...document.querySelectorAll('[data-testid=upload]')]; \
         return rows.length === 2 && rows.every(r => r.offsetParent !== null)",
    )
    .await;

    // Copy as template header, by link and by ID: the record's own entries.
    click(&c, banner_row).await;
    until_text(&c, "#detail-path", "spring/banner.png").await;
    until_enabled(&c, "copy-template-header", true).await;
    let record: Value = s
        .admin_json(reqwest::Method::GET, "/assets/spring/banner.png")
        .await;
    let pasted = copy_json(&c, "#copy-template-header").await;
    assert_eq!(
        pasted,
        json!({"type": "header", "parameters": [{"type": "image", "image": {"link": record["link"]}}]})
    );
    assert_eq!(pasted, record["template_header"]);
    // New bytes dropped the media ID: the id form waits for a new one.
    until_enabled(&c, "copy-template-header-id", false).await;
    until_text(
        &c,
        &format!("{banner_row} [data-testid=media-state]"),
        "none",
    )
    .await;
    click(&c, "#media-id-get").await;
    until_enabled(&c, "copy-template-header-id", true).await;
    let record: Value = s
        .admin_json(reqwest::Method::GET, "/assets/spring/banner.png")
        .await;
    let pasted = copy_json(&c, "#copy-template-header-id").await;
    assert_eq!(
        pasted,
        json!({"type": "header", "parameters": [{"type": "image", "image": {"id": record["message_by_id"]["image"]["id"]}}]})
    );
    assert_eq!(pasted, record["template_header_by_id"]);
    keep_screenshot(&c, "asset").await;

    // Expired: past Meta's 30 days the listing says so.
    s.clock.advance(31 * 86_400);
    fill(&c, "#go-folder", "spring").await;
    click(&c, "#go-folder-btn").await;
    until_text(
        &c,
        "[data-testid=asset-row][data-path=\"spring/clip.mp4\"] [data-testid=media-state]",
        "expired",
    )
    .await;

    // Tick two and delete them behind one confirmation that names them.
    // (Going to another folder and back cleared the ticks: the bar is gone.)
    until(
        &c,
        "no ticks left",
        "return document.getElementById('bulk-bar').hidden",
    )
    .await;
    click(&c, "[data-testid=pick][data-path=\"spring/clip.mp4\"]").await;
    click(&c, "[data-testid=pick][data-path=\"spring/terms.pdf\"]").await;
    until_text(&c, "#bulk-count", "2 assets selected").await;
    click(&c, "#bulk-delete").await;
    until_text(&c, "#confirm-delete-text", "Delete these 2 assets?").await;
    let named = c
        .execute(
            "return [...document.querySelectorAll('#confirm-delete-list li')].map(l => l.textContent)",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(named, json!(["spring/clip.mp4", "spring/terms.pdf"]));
    click(&c, "#confirm-delete-yes").await;
    until_text(&c, "#bulk-status", "Deleted: 2 of 2 done.").await;
    until(
        &c,
        "the deleted rows to go",
        "return !document.querySelector('[data-testid=asset-row][data-path=\"spring/clip.mp4\"]') \
         && !document.querySelector('[data-testid=asset-row][data-path=\"spring/terms.pdf\"]')",
    )
    .await;
    for path in ["spring/clip.mp4", "spring/terms.pdf"] {
        assert_eq!(
            s.get(&s.media(path)).await.status(),
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    assert_eq!(
        s.get(&s.media("spring/banner.png")).await.status(),
        StatusCode::OK
    );

    // Phone width: nothing wider than the screen; the long name wraps inside its cell.
    c.set_window_size(390, 844).await.unwrap();
    click(
        &c,
        &format!("[data-testid=asset-row][data-path=\"{long}\"]"),
    )
    .await;
    until_text(&c, "#detail-path", long).await;
    until(
        &c,
        "the window to be phone-sized",
        "return document.documentElement.clientWidth < 500",
    )
    .await;
    // What sticks out past the right edge, if anything, and how the long name lies.
    let fit = c
        .execute(
            &format!(
                "const w = document.documentElement.clientWidth; \
                 const wide = [...document.querySelectorAll('body *')] \
                   .filter(e => e.offsetParent !== null && e.getBoundingClientRect().right > w + 0.5) \
                   .map(e => e.tagName + (e.id ? '#' + e.id : '') + '.' + e.className); \
                 const name = document.querySelector('[data-testid=asset-row][data-path=\"{long}\"] td.name button'); \
                 return {{scroll: document.documentElement.scrollWidth <= w, wide, \
                   name_fits: name.getBoundingClientRect().right <= w, \
                   name_wraps: name.getBoundingClientRect().height > 30}}"
            ),
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        fit,
        json!({"scroll": true, "wide": [], "name_fits": true, "name_wraps": true}),
        "at phone width"
    );
    keep_screenshot(&c, "phone").await;

    assert_quiet_console(&c, &[]).await;
    c.close().await.unwrap();
}
