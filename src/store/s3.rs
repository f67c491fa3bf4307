//! The S3 backend: object_store's S3 client, configured for an origin server.
//!
//! Two clients share one configuration. The *control* client carries records, policies,
//! listings and small writes with a whole-request timeout, so a public request that needs a
//! record fails within `(retries + 1) × timeout` plus backoff when S3 hangs. The *data* client
//! streams blobs and has no whole-request timeout (a 100 MB download to a slow client may rightly
//! take minutes); the store bounds its first byte and the gap between chunks instead, and each
//! uploaded part and server-side copy by `transfer_timeout_ms`.

use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as Key;
use object_store::prefix::PrefixStore;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, RetryConfig};

use super::upload::Multipart;
use crate::config::StorageSettings;

/// The pieces a [`super::Store`] needs from an S3 bucket.
pub(crate) struct S3Backend {
    pub objects: Arc<dyn ObjectStore>,
    pub blobs: Arc<dyn ObjectStore>,
    pub multipart: Arc<Multipart>,
    /// Bound on a download's first byte and on each gap between its chunks.
    pub timeout: Duration,
    /// Bound on one part upload or server-side copy.
    pub transfer_timeout: Duration,
}

/// Build the clients. Nothing is sent yet: a wrong endpoint or credentials show at the first
/// request (see `media-origin check-storage`).
pub(crate) fn connect(settings: &StorageSettings) -> Result<S3Backend, object_store::Error> {
    let timeout = Duration::from_millis(settings.timeout_ms);
    let transfer_timeout = Duration::from_millis(settings.transfer_timeout_ms);
    let connect = Duration::from_millis(settings.connect_timeout_ms);
    let control = builder(
        settings,
        ClientOptions::new()
            .with_connect_timeout(connect)
            .with_timeout(timeout),
        timeout,
    )
    .build()?;
    let data = Arc::new(
        builder(
            settings,
            ClientOptions::new()
                .with_connect_timeout(connect)
                .with_timeout_disabled(),
            timeout,
        )
        .build()?,
    );
    let prefix = settings.prefix.as_deref().map(Key::from);
    let data_objects: Arc<dyn ObjectStore> = Arc::clone(&data) as Arc<dyn ObjectStore>;
    let blobs: Arc<dyn ObjectStore> = match &prefix {
        Some(p) => Arc::new(PrefixStore::new(data_objects, p.clone())),
        None => data_objects,
    };
    Ok(S3Backend {
        objects: prefixed(control, prefix.as_ref()),
        blobs,
        multipart: Arc::new(Multipart {
            store: data,
            prefix,
            timeout: transfer_timeout,
        }),
        timeout,
        transfer_timeout,
    })
}

fn prefixed(store: AmazonS3, prefix: Option<&Key>) -> Arc<dyn ObjectStore> {
    match prefix {
        Some(p) => Arc::new(PrefixStore::new(store, p.clone())),
        None => Arc::new(store),
    }
}

fn builder(
    settings: &StorageSettings,
    client: ClientOptions,
    timeout: Duration,
) -> AmazonS3Builder {
    // Credentials (and region or endpoint, when the config leaves them out) come from the
    // standard AWS variables; the config overrides them.
    let retries = settings.retries;
    let attempts = u32::try_from(retries + 1).unwrap_or(u32::MAX);
    let mut b = AmazonS3Builder::from_env()
        // Replaces every client option, allow_http included: set before anything that sets one.
        .with_client_options(client)
        .with_allow_http(settings.allow_http)
        .with_virtual_hosted_style_request(!settings.path_style)
        .with_retry(RetryConfig {
            max_retries: retries,
            retry_timeout: timeout.saturating_mul(attempts),
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(2),
                base: 2.0,
            },
        });
    if let Some(bucket) = &settings.bucket {
        b = b.with_bucket_name(bucket);
    }
    if let Some(region) = &settings.region {
        b = b.with_region(region);
    }
    if let Some(endpoint) = &settings.endpoint {
        b = b.with_endpoint(endpoint);
    }
    if let Some(key) = &settings.access_key_id {
        b = b.with_access_key_id(key);
    }
    if let Some(secret) = &settings.secret_access_key {
        b = b.with_secret_access_key(secret.expose());
    }
    if let Some(token) = &settings.session_token {
        b = b.with_token(token.expose());
    }
    b
}

/// What an S3 failure means, in plain words, for operators: the error and its causes are
/// searched for the codes S3 answers with (the same on AWS and S3-compatible stores).
pub fn explain(error: &(dyn std::error::Error + 'static), settings: &StorageSettings) -> String {
    let mut text = error.to_string();
    let mut root = text.clone();
    let mut timed_out = false;
    let mut unreachable = false;
    let mut cause = error.source();
    while let Some(e) = cause {
        root = e.to_string();
        text.push_str(": ");
        text.push_str(&root);
        if let Some(http) = e.downcast_ref::<object_store::client::HttpError>() {
            match http.kind() {
                object_store::client::HttpErrorKind::Connect => unreachable = true,
                object_store::client::HttpErrorKind::Timeout => timed_out = true,
                _ => {}
            }
        }
        cause = e.source();
    }
    let bucket = settings.bucket.as_deref().unwrap_or("?");
    let endpoint = settings
        .endpoint
        .clone()
        .unwrap_or_else(|| "AWS S3".to_owned());
    let has = |needle: &str| text.contains(needle);
    let plain = if has("NoSuchBucket") {
        format!("the bucket {bucket:?} does not exist at {endpoint}")
    } else if has("SignatureDoesNotMatch") {
        "bad credentials: the secret access key does not match the access key ID".to_owned()
    } else if has("InvalidAccessKeyId") || has("NotSignedUp") {
        "bad credentials: the access key ID is unknown to this endpoint".to_owned()
    } else if has("ExpiredToken") || has("InvalidToken") {
        "bad credentials: the session token has expired or is invalid".to_owned()
    } else if has("AuthorizationHeaderMalformed")
        || has("PermanentRedirect")
        || has("IllegalLocationConstraint")
        || has("301 Moved Permanently")
    {
        format!(
            "wrong region: the bucket {bucket:?} is not in {:?}; set storage.region to the \
             bucket's region",
            settings.region.as_deref().unwrap_or("us-east-1")
        )
    } else if has("AccessDenied") || has("403 Forbidden") {
        format!(
            "access denied: the credentials are valid but may not use the bucket {bucket:?} \
             (check the bucket policy or IAM permissions)"
        )
    } else if has("Error fetching token") || has("instance metadata") || has("169.254.169.254") {
        "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or \
         storage.access_key_id and storage.secret_access_key)"
            .to_owned()
    } else if unreachable || has("Connection refused") || has("dns error") {
        format!("endpoint unreachable: could not connect to {endpoint}")
    } else if timed_out || has("timed out") || has("deadline has elapsed") {
        format!(
            "endpoint too slow: {endpoint} did not answer within {} ms (storage.timeout_ms)",
            settings.timeout_ms
        )
    } else {
        return format!("S3 request failed: {}", detail(&text, &root));
    };
    format!("{plain} ({})", detail(&text, &root))
}

/// The most telling part of an error: S3's own code and message when it sent them, else the
/// innermost cause.
fn detail(text: &str, root: &str) -> String {
    let between = |open: &str, close: &str| {
        let start = text.find(open)? + open.len();
        let len = text[start..].find(close)?;
        Some(text[start..start + len].to_owned())
    };
    match (
        between("<Code>", "</Code>"),
        between("<Message>", "</Message>"),
    ) {
        (Some(code), Some(message)) => format!("S3 said {code}: {message}"),
        (Some(code), None) => format!("S3 said {code}"),
        _ => root.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Msg(&'static str);
    impl std::fmt::Display for Msg {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl std::error::Error for Msg {}

    fn settings() -> StorageSettings {
        StorageSettings {
            bucket: Some("media".into()),
            endpoint: Some("http://127.0.0.1:9000".into()),
            region: Some("eu-west-1".into()),
            ..StorageSettings::default()
        }
    }

    fn says(raw: &'static str, words: &str) {
        let got = explain(&Msg(raw), &settings());
        assert!(got.starts_with(words), "{raw:?} explained as {got:?}");
    }

    #[test]
    fn s3_error_codes_are_explained_in_plain_words() {
        // Bodies as S3 sends them, wrapped the way object_store reports them.
        says(
            "Received redirect without LOCATION, this normally indicates an incorrectly \
             configured region: <Code>PermanentRedirect</Code>",
            "wrong region",
        );
        says(
            "<Error><Code>AuthorizationHeaderMalformed</Code><Message>the region 'eu-west-1' is \
             wrong; expecting 'us-east-2'</Message></Error>",
            "wrong region",
        );
        says(
            "Client error with status 404 Not Found: <Code>NoSuchBucket</Code>",
            "the bucket \"media\" does not exist at http://127.0.0.1:9000",
        );
        says(
            "Client error with status 403 Forbidden: <Code>SignatureDoesNotMatch</Code>",
            "bad credentials: the secret access key",
        );
        says(
            "<Code>InvalidAccessKeyId</Code>",
            "bad credentials: the access key ID",
        );
        says("<Code>AccessDenied</Code>", "access denied");
        says(
            "error sending request: client error (Connect): tcp connect error: Connection refused",
            "endpoint unreachable: could not connect to http://127.0.0.1:9000",
        );
        says("operation timed out", "endpoint too slow");
        says(
            "something else entirely",
            "S3 request failed: something else",
        );
    }
}
