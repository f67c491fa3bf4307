//! SIGHUP on the real binary: it reloads the `[cache]` rules, the `[signing]` keys and
//! folders, the admin token and the log level from the config file, logs one line per changed
//! part (and never a secret), keeps the running configuration whole when the file is bad, and
//! names the keys that need a restart. Without it, SIGHUP's default ends the process.

use crate::common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::Client;

const BIN: &str = env!("CARGO_BIN_EXE_media-origin");

const OLD_TOKEN: &str = "old-admin-token-0001";
const NEW_TOKEN: &str = "new-admin-token-0002";
const OLD_KEY: &str = "k1:old-signing-secret-0001";
const NEW_KEY: &str = "k2:new-signing-secret-0002";

/// The config file the servers start with: `promo` at 60 s, `private` signed-only with `k1`.
fn first_config() -> String {
    config(
        "127.0.0.1:0",
        "max-age=86400",
        "max-age=60",
        OLD_KEY,
        "\"private\"",
        OLD_TOKEN,
        "info",
    )
}

fn config(
    bind: &str,
    default: &str,
    promo: &str,
    key: &str,
    signed_folders: &str,
    token: &str,
    level: &str,
) -> String {
    format!(
        "[server]\nbind = \"{bind}\"\n\
         [cache]\ndefault = \"{default}\"\n[cache.folders]\n\"promo\" = \"{promo}\"\n\
         [signing]\nkeys = [\"{key}\"]\nfolders = [{signed_folders}]\n\
         [admin]\ntoken = \"{token}\"\n\
         [log]\nlevel = \"{level}\"\n"
    )
}

struct Running {
    child: common::Spawned,
    addr: String,
    logs: common::Logs,
    client: Client,
    dir: tempfile::TempDir,
}

/// The binary on `first_config()`, with `promo/a.txt`, `private/b.txt` and `vip/c.txt` stored.
async fn start() -> Running {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.toml"), first_config()).unwrap();
    let (child, addr, logs) = common::spawn_binary_logged(
        Command::new(BIN)
            .current_dir(dir.path())
            .args(["serve", "--storage", "data"])
            .env_remove("MEDIA_ORIGIN_ADMIN_TOKEN")
            .env_remove("MEDIA_ORIGIN_SIGNING_KEYS"),
    );
    let server = Running {
        child,
        addr,
        logs,
        client: Client::builder().no_proxy().build().unwrap(),
        dir,
    };
    for path in ["promo/a.txt", "private/b.txt", "vip/c.txt"] {
        let r = server
            .client
            .put(server.url(&format!("/api/assets/{path}")))
            .bearer_auth(OLD_TOKEN)
            .header("content-type", "text/plain")
            .body("hello")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{path}");
    }
    server
}

impl Running {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn write_config(&self, text: &str) {
        std::fs::write(self.dir.path().join("config.toml"), text).unwrap();
    }

    /// `kill -HUP`, then wait for `done` to hold for the log lines written after it.
    fn hup_until(&self, what: &str, done: impl Fn(&[String]) -> bool) -> Vec<String> {
        let before = self.logs.lock().unwrap().len();
        let status = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let start = Instant::now();
        loop {
            let after: Vec<String> = self.logs.lock().unwrap()[before..].to_vec();
            if done(&after) {
                return after;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "no {what} in the log after SIGHUP: {after:#?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn alive(&mut self) {
        assert_eq!(
            self.child.try_wait().unwrap(),
            None,
            "the server exited on SIGHUP"
        );
    }

    async fn cache_control(&self, path: &str) -> String {
        let r = self
            .client
            .get(self.url(&format!("/media/{path}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        r.headers()["cache-control"].to_str().unwrap().to_owned()
    }

    /// The status of an admin API call with `token`.
    async fn admin_status(&self, token: &str) -> u16 {
        self.client
            .get(self.url("/api/assets/promo/a.txt"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// A signed link to `path` from the API's sign endpoint.
    async fn sign(&self, token: &str, path: &str) -> String {
        let r = self
            .client
            .post(self.url("/api/sign"))
            .bearer_auth(token)
            .json(&serde_json::json!({"path": path, "ttl_secs": 600}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let answer: serde_json::Value = r.json().await.unwrap();
        answer["url"].as_str().unwrap().to_owned()
    }

    /// The status and error code of a GET of `url`.
    async fn fetch(&self, url: &str) -> (u16, String) {
        let r = self.client.get(url).send().await.unwrap();
        let status = r.status().as_u16();
        let body: serde_json::Value = r.json().await.unwrap_or_default();
        let code = body["error"]["code"].as_str().unwrap_or("").to_owned();
        (status, code)
    }

    /// Every log line so far.
    fn log(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    fn sigterm_and_wait(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        for _ in 0..100 {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "{status}");
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the server did not exit after SIGTERM");
    }
}

/// The messages of `lines` logged by the reload module, without time, level and target.
fn reload_messages(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|l| {
            l.split_once("media_origin::reload: ")
                .map(|(_, m)| m.to_owned())
        })
        .collect()
}

fn has_message(lines: &[String], prefix: &str) -> bool {
    reload_messages(lines).iter().any(|m| m.starts_with(prefix))
}

fn assert_no_secret(lines: &[String]) {
    for line in lines {
        for secret in [
            OLD_TOKEN,
            NEW_TOKEN,
            "old-signing-secret",
            "new-signing-secret",
            "unused-token-0003",
            "too-short",
            "other-signing-secret",
        ] {
            assert!(!line.contains(secret), "a secret in the log: {line}");
        }
    }
}

/// A public GET of `path` was logged at DEBUG.
fn public_get_logged(lines: &[String], path: &str) -> bool {
    lines
        .iter()
        .any(|l| l.contains(" DEBUG ") && l.contains(&format!("path=/media/{path} ")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_cache_rules_signing_admin_token_and_log_level() {
    let mut server = start().await;
    assert_eq!(server.cache_control("promo/a.txt").await, "max-age=60");
    let old_link = server.sign(OLD_TOKEN, "private/b.txt").await;
    assert!(old_link.contains("&kid=k1&"), "{old_link}");
    assert_eq!(server.fetch(&old_link).await, (200, String::new()));
    assert_eq!(server.cache_control("vip/c.txt").await, "max-age=86400");
    // At `info`, public requests are not logged.
    assert!(!public_get_logged(&server.log(), "promo/a.txt"));

    server.write_config(&config(
        "127.0.0.1:0",
        "no-cache",
        "max-age=3600",
        NEW_KEY,
        "\"private\", \"vip\"",
        NEW_TOKEN,
        "info,media_origin=debug",
    ));
    let after = server.hup_until("reload", |l| has_message(l, "reloaded log level"));
    server.alive();
    assert_eq!(
        reload_messages(&after),
        [
            "SIGHUP: reloading the configuration",
            "reloaded [cache]: default no-cache (was max-age=86400); \
             folder \"promo\" max-age=3600 (was max-age=60)",
            "reloaded [signing]: keys k2 (was k1); folders private, vip (was private)",
            "reloaded admin token: replaced, now from admin.token",
            "reloaded log level: info,media_origin=debug (was info)",
        ]
    );

    // The new rule, and the new default below no rule.
    assert_eq!(server.cache_control("promo/a.txt").await, "max-age=3600");
    // The old token is refused, the new one works.
    assert_eq!(server.admin_status(OLD_TOKEN).await, 401);
    assert_eq!(server.admin_status(NEW_TOKEN).await, 200);
    // A link signed with the dropped key is refused; one signed with the new key is served.
    assert_eq!(
        server.fetch(&old_link).await,
        (403, "bad_signature".to_owned())
    );
    let new_link = server.sign(NEW_TOKEN, "private/b.txt").await;
    assert!(new_link.contains("&kid=k2&"), "{new_link}");
    assert_eq!(server.fetch(&new_link).await, (200, String::new()));
    // `vip` became signed-only.
    assert_eq!(
        server.fetch(&server.url("/media/vip/c.txt")).await,
        (403, "signature_required".to_owned())
    );
    let vip_link = server.sign(NEW_TOKEN, "vip/c.txt").await;
    assert_eq!(server.fetch(&vip_link).await, (200, String::new()));
    // At `media_origin=debug`, public requests are logged.
    let r = server
        .client
        .get(server.url("/media/promo/a.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let start = Instant::now();
    while !public_get_logged(&server.log(), "promo/a.txt") {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "no DEBUG line: {:#?}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // The same file again: nothing to do.
    let after = server.hup_until("reload", |l| has_message(l, "reloaded: nothing"));
    assert_eq!(
        reload_messages(&after),
        [
            "SIGHUP: reloading the configuration",
            "reloaded: nothing changed"
        ]
    );
    server.alive();
    assert_no_secret(&server.log());
    // SIGTERM still stops it gracefully.
    server.sigterm_and_wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_file_keeps_the_whole_running_configuration_and_says_why() {
    let mut server = start().await;
    let old_link = server.sign(OLD_TOKEN, "private/b.txt").await;
    // Each file also changes the rule, the key and the token validly: none of it may apply.
    let good = |level: &str, key: &str, default: &str| {
        config(
            "127.0.0.1:0",
            default,
            "max-age=3600",
            key,
            "\"private\"",
            "unused-token-0003",
            level,
        )
    };
    let other_key = "k2:other-signing-secret";
    for (text, reason) in [
        (
            "[cache\ndefault = \"no-cache\"\n".to_owned(),
            "invalid configuration: ",
        ),
        (
            good("info", other_key, "public"),
            "invalid cache policy \"public\": unknown directive",
        ),
        (
            good("info", "k2:short", "no-cache"),
            "signing key \"k2\": the secret must be at least 16 characters",
        ),
        (
            config(
                "127.0.0.1:0",
                "no-cache",
                "max-age=3600",
                other_key,
                "\"private\"",
                "too-short",
                "info",
            ),
            "the admin token must be at least 16 characters",
        ),
        (
            good("loud", other_key, "no-cache"),
            "log.level \"loud\": \"loud\" is not a level (trace, debug, info, warn, error, off) \
             nor target=level",
        ),
        (
            good("info", other_key, "no-cache") + "[server]\nbindd = \"127.0.0.1:1\"\n",
            "invalid configuration: ",
        ),
    ] {
        server.write_config(&text);
        let after = server.hup_until("refusal", |l| has_message(l, "reload refused"));
        server.alive();
        let messages = reload_messages(&after);
        assert_eq!(messages.len(), 2, "{messages:#?}");
        assert_eq!(messages[0], "SIGHUP: reloading the configuration");
        let refusal = messages[1]
            .strip_prefix("reload refused, the running configuration is kept: ")
            .unwrap_or_else(|| panic!("{messages:#?}"));
        assert!(refusal.contains(reason), "{text}: {refusal}");
        assert!(after.iter().any(|l| l.contains(" ERROR ")), "{after:#?}");

        // Everything as it was.
        assert_eq!(server.cache_control("promo/a.txt").await, "max-age=60");
        assert_eq!(server.cache_control("vip/c.txt").await, "max-age=86400");
        assert_eq!(server.admin_status(OLD_TOKEN).await, 200);
        assert_eq!(server.admin_status("unused-token-0003").await, 401);
        assert_eq!(server.fetch(&old_link).await, (200, String::new()));
        assert!(
            server
                .sign(OLD_TOKEN, "private/b.txt")
                .await
                .contains("&kid=k1&")
        );
        assert!(!public_get_logged(&server.log(), "promo/a.txt"));
    }
    // A good file after the bad ones applies as usual.
    server.write_config(&first_config().replace("max-age=60", "max-age=61"));
    let after = server.hup_until("reload", |l| has_message(l, "reloaded ["));
    assert_eq!(
        reload_messages(&after)[1..],
        ["reloaded [cache]: folder \"promo\" max-age=61 (was max-age=60)"]
    );
    assert_eq!(server.cache_control("promo/a.txt").await, "max-age=61");
    assert_no_secret(&server.log());
    server.sigterm_and_wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_bind_address_is_logged_as_needing_a_restart() {
    let mut server = start().await;
    // Find a free port for the address the file will ask for.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let other = free.local_addr().unwrap().to_string();
    drop(free);
    let text = first_config()
        .replace("127.0.0.1:0", &other)
        .replace("max-age=60", "no-store")
        + "[fetch_log]\nper_asset = 5\n";
    server.write_config(&text);
    let after = server.hup_until("restart warning", |l| has_message(l, "not reloaded"));
    server.alive();
    assert_eq!(
        reload_messages(&after),
        [
            "SIGHUP: reloading the configuration",
            "reloaded [cache]: folder \"promo\" no-store (was max-age=60)",
            "not reloaded, changed but read only at start (restart to apply): \
             fetch_log.per_asset, server.bind",
        ]
    );
    assert!(after.iter().any(|l| l.contains(" WARN ")), "{after:#?}");
    // Still on the old address, with the reloadable part applied; nothing on the new one.
    assert_eq!(server.cache_control("promo/a.txt").await, "no-store");
    let r = server
        .client
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(std::net::TcpStream::connect(&other).is_err());
    server.sigterm_and_wait();
}

#[test]
fn the_config_file_of_these_tests_loads() {
    // Guards the helpers: the starting file is what the server would accept at start.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.toml");
    std::fs::write(&file, first_config()).unwrap();
    let settings = media_origin::config::Settings::load(Some(Path::new(&file))).unwrap();
    assert_eq!(settings.log.level.as_deref(), Some("info"));
    assert_eq!(settings.signing.folders, ["private"]);
}
