//! What an operator installs: the systemd unit under `deploy/` (its promises, and
//! `systemd-analyze verify` when the tool is there), the readiness it relies on (the real binary
//! sends READY=1 only once both listeners take connections, RELOADING=1 and READY=1 around a
//! SIGHUP, STOPPING=1 on SIGTERM), and the LICENSE and CHANGELOG beside Cargo.toml.

use std::collections::BTreeMap;
use std::net::TcpStream;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_media-origin");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const TOKEN: &str = "deploy-test-token-0123456789";

fn unit_text() -> String {
    std::fs::read_to_string(Path::new(ROOT).join("deploy/media-origin.service")).unwrap()
}

/// The unit's `[Service]` entries, every value of each key in order.
fn service() -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut section = String::new();
    for line in unit_text().lines().map(str::trim) {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if line.starts_with('[') {
            section = line.to_owned();
        } else if section == "[Service]" {
            let (key, value) = line.split_once('=').expect("key=value");
            out.entry(key.to_owned())
                .or_default()
                .push(value.to_owned());
        }
    }
    out
}

fn one(service: &BTreeMap<String, Vec<String>>, key: &str) -> String {
    match service.get(key).map(Vec::as_slice) {
        Some([value]) => value.clone(),
        other => panic!("{key}: expected one value, got {other:?}"),
    }
}

#[test]
fn the_unit_is_notify_reloads_by_sighup_and_confines_the_server_to_its_storage() {
    let s = service();
    assert_eq!(one(&s, "Type"), "notify");
    assert_eq!(one(&s, "NotifyAccess"), "main");
    assert_eq!(one(&s, "ExecReload"), "kill -HUP $MAINPID");
    assert!(
        one(&s, "ExecStart")
            .ends_with("/media-origin serve --config /etc/media-origin/config.toml")
    );
    let user = one(&s, "User");
    assert_eq!(user, "media-origin");
    assert_eq!(one(&s, "Group"), "media-origin");
    assert_eq!(one(&s, "NoNewPrivileges"), "yes");
    assert_eq!(one(&s, "ProtectSystem"), "strict");
    // The storage root is the one writable place, and it is where the server runs.
    assert_eq!(one(&s, "StateDirectory"), "media-origin");
    assert_eq!(one(&s, "ReadWritePaths"), "/var/lib/media-origin");
    assert_eq!(one(&s, "WorkingDirectory"), "/var/lib/media-origin");
    assert_eq!(one(&s, "CapabilityBoundingSet"), "");
    // A system call outside the filter fails (EPERM) instead of killing the server.
    assert_eq!(one(&s, "SystemCallErrorNumber"), "EPERM");
    // Longer than the default shutdown grace (30 s), so SIGTERM's wait is not cut short.
    let stop: u64 = one(&s, "TimeoutStopSec").parse().unwrap();
    assert!(stop > 30, "{stop}");
    // Secrets come from a file the unit may lack, never from the unit itself.
    assert_eq!(one(&s, "EnvironmentFile"), "-/etc/media-origin/env");
    assert!(!unit_text().contains("TOKEN="));
}

/// `systemd-analyze verify` on the unit, with ExecStart pointed at the binary just built (it
/// checks that the command exists): no error and no warning. Skipped where the tool is absent.
#[test]
fn systemd_analyze_verifies_the_unit_without_a_warning() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("systemd-analyze is not installed: the unit is not verified here");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let unit = unit_text().replace("/usr/local/bin/media-origin", BIN);
    assert_ne!(
        unit,
        unit_text(),
        "ExecStart names /usr/local/bin/media-origin"
    );
    let path = dir.path().join("media-origin.service");
    std::fs::write(&path, &unit).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    // Unknown keys and bad values are warnings with exit status 0: none is allowed.
    assert!(
        !err.contains("media-origin.service"),
        "systemd-analyze complains:\n{err}"
    );

    // The check can fail: a misspelt key is reported.
    std::fs::write(&path, unit.replace("NoNewPrivileges=", "NoNewPrivilege=")).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Unknown key"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A port free at the time of asking.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The next notification, as its `KEY=value` lines.
fn notification(socket: &UnixDatagram) -> Vec<String> {
    let mut buf = [0u8; 4096];
    let n = socket
        .recv(&mut buf)
        .expect("a notification within the timeout");
    String::from_utf8_lossy(&buf[..n])
        .lines()
        .map(str::to_owned)
        .collect()
}

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([name, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn readiness_is_sent_once_both_listeners_take_connections() {
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let (public, admin) = (free_port(), free_port());
    let child = Command::new(BIN)
        .current_dir(dir.path())
        .args(["serve", "--storage", "data"])
        .args(["--bind", &format!("127.0.0.1:{public}")])
        .args(["--admin-bind", &format!("127.0.0.1:{admin}")])
        .env("NOTIFY_SOCKET", &socket_path)
        .env("MEDIA_ORIGIN_ADMIN_TOKEN", TOKEN)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut guard = Guard(child);

    let ready = notification(&socket);
    assert_eq!(ready[0], "READY=1", "{ready:?}");
    assert!(
        ready
            .iter()
            .any(|l| l.starts_with("STATUS=serving http://127.0.0.1:")),
        "{ready:?}"
    );
    // Both listeners are bound when READY=1 arrives: connecting succeeds at once.
    for port in [public, admin] {
        TcpStream::connect_timeout(
            &format!("127.0.0.1:{port}").parse().unwrap(),
            Duration::from_secs(2),
        )
        .unwrap_or_else(|e| panic!("port {port} after READY=1: {e}"));
    }

    // SIGHUP: reloading, with the monotonic time systemd 253+ asks for, then ready again.
    signal(pid, "-HUP");
    let reloading = notification(&socket);
    assert_eq!(reloading[0], "RELOADING=1", "{reloading:?}");
    assert!(
        reloading.iter().any(|l| l.starts_with("MONOTONIC_USEC=")),
        "{reloading:?}"
    );
    let again = notification(&socket);
    assert_eq!(again[0], "READY=1", "{again:?}");
    assert_eq!(again[1], "STATUS=serving; configuration reloaded");

    // SIGTERM: stopping, then a clean exit.
    signal(pid, "-TERM");
    let stopping = notification(&socket);
    assert_eq!(stopping[0], "STOPPING=1", "{stopping:?}");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = guard.0.try_wait().unwrap() {
            break status;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "no exit");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
}

/// Kills the child if the test fails half-way.
struct Guard(std::process::Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn license_matches_cargo_toml_and_the_changelog_has_this_version() {
    let cargo = std::fs::read_to_string(Path::new(ROOT).join("Cargo.toml")).unwrap();
    assert!(
        cargo.contains("\nlicense = \"MIT\"\n"),
        "Cargo.toml's license changed"
    );
    let license = std::fs::read_to_string(Path::new(ROOT).join("LICENSE")).unwrap();
    assert!(license.starts_with("MIT License\n\nCopyright (c) "));
    assert!(license.contains("Permission is hereby granted, free of charge"));
    let changelog = std::fs::read_to_string(Path::new(ROOT).join("CHANGELOG.md")).unwrap();
    assert!(changelog.starts_with("# Changelog\n"));
    assert!(changelog.contains("## [Unreleased]\n"));
    assert!(
        changelog.contains(&format!("## [{}]\n", env!("CARGO_PKG_VERSION"))),
        "CHANGELOG.md has no section for {}",
        env!("CARGO_PKG_VERSION")
    );
}
