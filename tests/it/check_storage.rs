//! `media-origin check-storage`, run as the binary against a real S3 protocol server: the stock
//! config.toml switched to S3 by environment variables alone, and a plain-words diagnosis of
//! each way a storage configuration goes wrong.

use crate::common;

use std::process::Output;

use common::S3Server;
use common::s3::{ACCESS_KEY, BUCKET, SECRET_KEY};

/// Run `check-storage` on the repository's own config.toml with these environment variables.
async fn check(env: &[(&str, String)]) -> (i32, String) {
    let scratch = tempfile::tempdir().unwrap();
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_media-origin"));
    cmd.arg("check-storage")
        .arg("--config")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/config.toml"))
        .current_dir(scratch.path())
        .env(
            "MEDIA_ORIGIN__STORAGE__PATH",
            scratch.path().join("storage"),
        )
        .env("RUST_LOG", "warn");
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") || k.starts_with("MEDIA_ORIGIN") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().await.unwrap();
    let stdout = String::from_utf8_lossy(&stdout).into_owned();
    let stderr = String::from_utf8_lossy(&stderr);
    if status.code() == Some(2) {
        return (2, stderr.into_owned());
    }
    (status.code().unwrap(), stdout)
}

fn s3_env(s3: &S3Server) -> Vec<(&'static str, String)> {
    vec![
        ("MEDIA_ORIGIN__STORAGE__BACKEND", "s3".into()),
        ("MEDIA_ORIGIN__STORAGE__BUCKET", BUCKET.into()),
        ("MEDIA_ORIGIN__STORAGE__ENDPOINT", s3.endpoint()),
        ("MEDIA_ORIGIN__STORAGE__ALLOW_HTTP", "true".into()),
        ("MEDIA_ORIGIN__STORAGE__REGION", "us-east-1".into()),
        ("MEDIA_ORIGIN__STORAGE__TIMEOUT_MS", "1000".into()),
        ("MEDIA_ORIGIN__STORAGE__RETRIES", "1".into()),
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
    ]
}

fn with(
    mut env: Vec<(&'static str, String)>,
    key: &'static str,
    value: &str,
) -> Vec<(&'static str, String)> {
    env.retain(|(k, _)| *k != key);
    env.push((key, value.to_owned()));
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_working_bucket_passes_every_step_and_leaves_nothing() {
    let s3 = S3Server::start().await;
    let (code, out) = check(&s3_env(&s3)).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with(&format!(
        "checking storage: S3 bucket \"{BUCKET}\" at {}\n",
        s3.endpoint()
    )));
    for step in [
        "list the bucket",
        "write a probe object",
        "read it back",
        "refuse a conditional write over it",
        "start and abort a multipart upload",
        "list it",
        "delete it",
        "confirm it is gone",
    ] {
        assert!(out.contains(&format!("  ok    {step}\n")), "{step}: {out}");
    }
    assert!(out.ends_with("storage works\n"), "{out}");
    assert!(common::files_under(&s3.bucket_dir()).is_empty());
    assert!(s3.pending_multipart_uploads().is_empty());
    // Credentials from the config instead of the AWS variables work the same.
    let env: Vec<_> = s3_env(&s3)
        .into_iter()
        .filter(|(k, _)| !k.starts_with("AWS_"))
        .chain([
            ("MEDIA_ORIGIN__STORAGE__ACCESS_KEY_ID", ACCESS_KEY.into()),
            (
                "MEDIA_ORIGIN__STORAGE__SECRET_ACCESS_KEY",
                SECRET_KEY.into(),
            ),
        ])
        .collect();
    assert_eq!(check(&env).await.0, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_is_bad_credentials() {
    let s3 = S3Server::start().await;
    let (code, out) = check(&with(
        s3_env(&s3),
        "AWS_SECRET_ACCESS_KEY",
        "not-the-secret",
    ))
    .await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(
            "  FAIL  list the bucket: bad credentials: the secret access key does not match"
        ),
        "{out}"
    );
    assert!(out.ends_with("storage does not work\n"), "{out}");
    assert!(!out.contains("not-the-secret"), "the secret leaked: {out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_access_key_is_bad_credentials() {
    let s3 = S3Server::start().await;
    let (code, out) = check(&with(s3_env(&s3), "AWS_ACCESS_KEY_ID", "AKIDNOBODY")).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("  FAIL  list the bucket: bad credentials"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_bucket_is_named() {
    let s3 = S3Server::start().await;
    let (code, out) = check(&with(
        s3_env(&s3),
        "MEDIA_ORIGIN__STORAGE__BUCKET",
        "no-such-bucket",
    ))
    .await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "  FAIL  list the bucket: the bucket \"no-such-bucket\" does not exist at {}",
            s3.endpoint()
        )),
        "{out}"
    );
    // The check stops there: nothing was written, not even a bucket created by a stray PUT.
    assert!(!s3.root.path().join("no-such-bucket").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_endpoint_is_named() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let s3 = S3Server::start().await;
    let endpoint = format!("http://127.0.0.1:{port}");
    let started = std::time::Instant::now();
    let (code, out) = check(&with(
        s3_env(&s3),
        "MEDIA_ORIGIN__STORAGE__ENDPOINT",
        &endpoint,
    ))
    .await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "  FAIL  list the bucket: endpoint unreachable: could not connect to {endpoint}"
        )),
        "{out}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_region_is_named() {
    let s3 = S3Server::start().await;
    s3.set_region("eu-central-1");
    let (code, out) = check(&s3_env(&s3)).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(
            "  FAIL  list the bucket: wrong region: the bucket \"media\" is not in \"us-east-1\"; \
             set storage.region to the bucket's region (S3 said AuthorizationHeaderMalformed: \
             The authorization header is malformed; the region 'us-east-1' is wrong; expecting \
             'eu-central-1')"
        ),
        "{out}"
    );
    let (code, out) = check(&with(
        s3_env(&s3),
        "MEDIA_ORIGIN__STORAGE__REGION",
        "eu-central-1",
    ))
    .await;
    assert_eq!(code, 0, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_configuration_exits_2_with_the_reason() {
    let (code, err) = check(&[("MEDIA_ORIGIN__STORAGE__BACKEND", "s3".into())]).await;
    assert_eq!(code, 2);
    assert!(
        err.contains("storage.backend = \"s3\" needs storage.bucket"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_backend_passes() {
    let (code, out) = check(&[]).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.starts_with("checking storage: local directory "),
        "{out}"
    );
    assert!(out.ends_with("storage works\n"), "{out}");
}
