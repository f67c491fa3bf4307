//! The Cloud API Media endpoint client: upload and delete, with Meta's error JSON parsed and
//! transient failures retried.
//!
//! Retries follow Meta's table (WHATSAPP_MEDIA.md §4): HTTP 429 and 5xx, timeouts and dropped
//! connections, the rate-limit codes 4, 80007 and 130429, and any error Meta marks
//! `"is_transient": true` are retried with exponential backoff and full jitter, waiting at least
//! what `Retry-After` asks, until `max_retries` or the total budget runs out. Everything else
//! (100 invalid parameter, 131053 upload error, 190 token, 10/200 permission) is final at once. A 200 whose body is not the expected JSON is not
//! retried either: the upload may have landed, and a retry would leave a duplicate at Meta.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::stream::BoxStream;
use reqwest::multipart::{Form, Part};
use serde::{Deserialize, Serialize};

use crate::config::{Secret, WhatsAppSettings};

/// Run `$request` (an expression building a `RequestBuilder`, which may use `?` and `.await`)
/// until it succeeds or [`GraphClient::next_wait`] gives up.
macro_rules! retrying {
    ($client:expr, $what:expr, $request:expr) => {{
        let started = Instant::now();
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let request = $request;
            match $client.attempt(request, attempts).await {
                Ok(parsed) => {
                    $client.count($what, "success");
                    break parsed;
                }
                Err((failure, retry_after)) => {
                    match $client.next_wait(started, &failure, retry_after) {
                        Some(wait) => {
                            if let Some(m) = &$client.metrics {
                                m.whatsapp_retry($what);
                            }
                            tracing::warn!(
                                what = %$what,
                                attempt = attempts,
                                code = %failure.code(),
                                wait_ms = wait.as_millis() as u64,
                                error = %failure,
                                "Graph API call failed; retrying"
                            );
                            tokio::time::sleep(wait).await;
                        }
                        None => {
                            $client.count($what, failure.code());
                            log_failure($what, &failure);
                            return Err(failure);
                        }
                    }
                }
            }
        }
    }};
}

/// Meta's error object, as parsed from `{"error": {...}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraphError {
    /// Meta's message.
    #[serde(default)]
    pub message: String,
    /// e.g. `OAuthException`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    /// Meta's error code (100, 190, 131053, ...).
    #[serde(default)]
    pub code: i64,
    /// Meta's subcode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_subcode: Option<i64>,
    /// `error_data.details`: the most precise reason Meta gives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
    /// For Meta support.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fbtrace_id: Option<String>,
    /// `is_transient`: Meta says the same request may succeed later (it is retried).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_transient: Option<bool>,
    /// `error_user_title`: Meta's title for the problem, written for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_user_title: Option<String>,
    /// `error_user_msg`: Meta's explanation of the problem, written for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_user_msg: Option<String>,
}

impl GraphError {
    /// Meta's most precise reason (`error_data.details`, else `message`), followed by what
    /// Meta wrote for people (`error_user_title`, `error_user_msg`) when it sent any.
    pub fn reason(&self) -> String {
        let mut text = self.details.clone().unwrap_or_else(|| self.message.clone());
        let for_people = match (&self.error_user_title, &self.error_user_msg) {
            (Some(title), Some(msg)) => Some(format!("{title}: {msg}")),
            (Some(one), None) | (None, Some(one)) => Some(one.clone()),
            (None, None) => None,
        };
        if let Some(words) = for_people {
            text.push_str("; Meta says: ");
            text.push_str(&words);
        }
        text
    }
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: RawError,
}

#[derive(Deserialize)]
struct RawError {
    #[serde(default)]
    message: String,
    #[serde(default, rename = "type")]
    error_type: Option<String>,
    #[serde(default)]
    code: i64,
    #[serde(default)]
    error_subcode: Option<i64>,
    #[serde(default)]
    error_data: Option<ErrorData>,
    #[serde(default)]
    fbtrace_id: Option<String>,
    #[serde(default)]
    is_transient: Option<bool>,
    #[serde(default)]
    error_user_title: Option<String>,
    #[serde(default)]
    error_user_msg: Option<String>,
}

#[derive(Deserialize)]
struct ErrorData {
    #[serde(default)]
    details: Option<String>,
}

/// Why a Graph API call failed, after any retries.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// The download of incoming media failed (see [`super::download`]).
    #[error("{0}")]
    Download(super::download_rules::DownloadError),
    /// Meta answered with an error.
    #[error("Meta answered HTTP {status} with error {}: {}", .error.code, .error.reason())]
    Meta {
        /// HTTP status.
        status: u16,
        /// Meta's error.
        error: GraphError,
        /// Requests made.
        attempts: u32,
    },
    /// No usable answer: timeout, refused connection, reset.
    #[error("no answer from the Graph API after {attempts} attempt(s): {reason}")]
    Transport {
        /// What happened to the last attempt.
        reason: String,
        /// Whether the last attempt timed out.
        timed_out: bool,
        /// Requests made.
        attempts: u32,
    },
    /// An answer that is not what Meta documents.
    #[error("the Graph API answered HTTP {status} with a body that is not the documented JSON")]
    BadResponse {
        /// HTTP status.
        status: u16,
        /// Requests made.
        attempts: u32,
    },
    /// The bytes could not be read from storage for the upload.
    #[error("reading the asset for the upload failed: {0}")]
    Source(String),
}

impl ClientError {
    /// Our stable code for it.
    pub fn code(&self) -> &'static str {
        match self {
            ClientError::Meta { status, error, .. } => match error.code {
                4 | 80007 | 130429 => "whatsapp_rate_limited",
                100 => "whatsapp_invalid_parameter",
                190 => "whatsapp_access_token_invalid",
                10 | 200..=299 => "whatsapp_permission_denied",
                131053 => "whatsapp_media_upload_error",
                131052 => "whatsapp_media_download_error",
                _ if *status >= 500 => "whatsapp_unavailable",
                _ => "whatsapp_error",
            },
            ClientError::Transport {
                timed_out: true, ..
            } => "whatsapp_timeout",
            ClientError::Transport { .. } => "whatsapp_unreachable",
            ClientError::BadResponse { .. } => "whatsapp_bad_response",
            ClientError::Source(_) => "storage_unavailable",
            ClientError::Download(d) => d.code(),
        }
    }

    /// Requests made.
    pub fn attempts(&self) -> u32 {
        match self {
            ClientError::Meta { attempts, .. }
            | ClientError::Transport { attempts, .. }
            | ClientError::BadResponse { attempts, .. } => *attempts,
            ClientError::Download(d) => d.attempts,
            ClientError::Source(_) => 0,
        }
    }
}

/// The answer to a retrieve call (WHATSAPP_MEDIA.md §4).
#[derive(Debug, Clone, Deserialize)]
pub struct Retrieved {
    /// Where the bytes are, for 5 minutes.
    pub url: String,
    /// What the sender's phone called them.
    #[serde(default)]
    pub mime_type: String,
    /// Their SHA-256 (hex).
    #[serde(default)]
    pub sha256: String,
    /// Their length: a string in some Graph versions, a number in others.
    #[serde(deserialize_with = "string_or_number")]
    pub file_size: u64,
}

fn string_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Number(u64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Number(n) => Ok(n),
        Raw::Text(t) => t.trim().parse().map_err(serde::de::Error::custom),
    }
}

/// Whether Meta's table, or Meta itself (`is_transient`), says to retry.
fn retryable(status: u16, code: Option<i64>, is_transient: Option<bool>) -> bool {
    status == 429
        || status >= 500
        || is_transient == Some(true)
        || matches!(code, Some(4 | 80007 | 130429))
}

/// The Graph API, for one access token.
#[derive(Clone)]
pub struct GraphClient {
    http: reqwest::Client,
    /// For downloads of incoming media: a read that stalls for `timeout` fails, and redirects
    /// stay on HTTPS (see [`super::download`]).
    pub(super) download_http: reqwest::Client,
    base: String,
    /// Whether `graph_url` is plain HTTP (tests): only then may a download URL be too.
    pub(super) plain_http: bool,
    pub(super) token: Secret,
    pub(super) user_agent: String,
    timeout: Duration,
    pub(super) download_timeout: Duration,
    budget: Duration,
    max_retries: u32,
    pub(super) metrics: Option<std::sync::Arc<crate::metrics::Metrics>>,
}

impl GraphClient {
    /// Count calls and retries in `metrics`.
    pub fn with_metrics(mut self, metrics: std::sync::Arc<crate::metrics::Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    pub(super) fn count(&self, call: &'static str, outcome: &'static str) {
        if let Some(m) = &self.metrics {
            m.whatsapp_call(call, outcome);
        }
    }

    /// A client for `settings` with `token`.
    pub fn new(settings: &WhatsAppSettings, token: Secret) -> Self {
        Self {
            http: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("a TLS client builds"),
            download_http: super::download_rules::client(settings),
            base: format!("{}/{}", settings.graph_url, settings.api_version),
            plain_http: settings.graph_url.starts_with("http://"),
            token,
            user_agent: settings.user_agent.trim().to_owned(),
            timeout: Duration::from_millis(settings.timeout_ms),
            download_timeout: Duration::from_millis(settings.download_timeout_ms),
            budget: Duration::from_millis(settings.retry_budget_ms),
            max_retries: settings.max_retries,
            metrics: None,
        }
    }

    /// `POST /{version}/{phone}/media`: upload the bytes `open` yields (called again for each
    /// attempt) as `file` named `filename`, with `type` = the exact content type, and
    /// `ttl_minutes` when given (No-Storage numbers). Returns the media ID.
    pub async fn upload<F, Fut>(
        &self,
        phone: &str,
        content_type: &str,
        filename: &str,
        size: u64,
        ttl_minutes: Option<u32>,
        open: F,
    ) -> Result<String, ClientError>
    where
        F: Fn() -> Fut,
        Fut:
            Future<Output = Result<BoxStream<'static, Result<Bytes, object_store::Error>>, String>>,
    {
        let url = format!("{}/{phone}/media", self.base);
        #[derive(Deserialize)]
        struct Uploaded {
            id: String,
        }
        let uploaded: Uploaded = retrying!(self, "upload", {
            let body = open().await.map_err(ClientError::Source)?;
            let part = Part::stream_with_length(reqwest::Body::wrap_stream(body), size)
                .file_name(filename.to_owned())
                .mime_str(content_type)
                .map_err(|e| ClientError::Source(e.to_string()))?;
            // reqwest writes the multipart Content-Type with its boundary.
            let mut form = Form::new()
                .text("messaging_product", "whatsapp")
                .text("type", content_type.to_owned());
            if let Some(minutes) = ttl_minutes {
                form = form.text("ttl_minutes", minutes.to_string());
            }
            let form = form.part("file", part);
            self.http.post(&url).multipart(form)
        });
        Ok(uploaded.id)
    }

    /// `GET /{version}/{media_id}?phone_number_id=…`: where to download a media ID's bytes
    /// (for 5 minutes), and what Meta says they are.
    pub async fn retrieve(&self, media_id: &str, phone: &str) -> Result<Retrieved, ClientError> {
        let url = format!("{}/{media_id}", self.base);
        let retrieved: Retrieved = retrying!(
            self,
            "retrieve",
            self.http.get(&url).query(&[("phone_number_id", phone)])
        );
        Ok(retrieved)
    }

    /// `DELETE /{version}/{media_id}`.
    pub async fn delete(&self, media_id: &str) -> Result<(), ClientError> {
        let url = format!("{}/{media_id}", self.base);
        #[derive(Deserialize)]
        struct Deleted {
            #[serde(default)]
            success: bool,
        }
        let deleted: Deleted = retrying!(self, "delete", self.http.delete(&url));
        if !deleted.success {
            tracing::warn!(%media_id, "Meta did not confirm the deletion of a media ID");
        }
        Ok(())
    }

    /// Send one attempt: the parsed success, or the failure with any `Retry-After`.
    async fn attempt<T: serde::de::DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
        attempts: u32,
    ) -> Result<T, (ClientError, Option<Duration>)> {
        let sent = request
            .bearer_auth(self.token.expose())
            .timeout(self.timeout)
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => {
                return Err((
                    ClientError::Transport {
                        reason: without_url(&e),
                        timed_out: e.is_timeout(),
                        attempts,
                    },
                    None,
                ));
            }
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = match response.bytes().await {
            Ok(b) => b,
            Err(e) => {
                let failure = ClientError::Transport {
                    reason: without_url(&e),
                    timed_out: e.is_timeout(),
                    attempts,
                };
                return Err((failure, None));
            }
        };
        if (200..300).contains(&status) {
            return serde_json::from_slice(&body)
                .map_err(|_| (ClientError::BadResponse { status, attempts }, None));
        }
        let failure = match serde_json::from_slice::<ErrorEnvelope>(&body) {
            Ok(ErrorEnvelope { error }) => ClientError::Meta {
                status,
                error: GraphError {
                    message: error.message,
                    error_type: error.error_type,
                    code: error.code,
                    error_subcode: error.error_subcode,
                    details: error.error_data.and_then(|d| d.details),
                    fbtrace_id: error.fbtrace_id,
                    is_transient: error.is_transient,
                    error_user_title: error.error_user_title,
                    error_user_msg: error.error_user_msg,
                },
                attempts,
            },
            Err(_) if status >= 500 || status == 429 => ClientError::Meta {
                status,
                error: GraphError {
                    message: format!("HTTP {status} without an error body"),
                    ..GraphError::default()
                },
                attempts,
            },
            Err(_) => ClientError::BadResponse { status, attempts },
        };
        Err((failure, retry_after))
    }

    /// How long to wait before the next attempt, or `None` to give up: only transient
    /// failures, within `max_retries` and the total budget.
    pub(super) fn next_wait(
        &self,
        started: Instant,
        failure: &ClientError,
        retry_after: Option<Duration>,
    ) -> Option<Duration> {
        let transient = match failure {
            ClientError::Meta { status, error, .. } => {
                retryable(*status, Some(error.code), error.is_transient)
            }
            ClientError::Transport { .. } => true,
            ClientError::Download(d) => d.transient(),
            _ => false,
        };
        let attempts = failure.attempts();
        let wait = backoff(attempts).max(retry_after.unwrap_or_default());
        (transient && attempts <= self.max_retries && started.elapsed() + wait <= self.budget)
            .then_some(wait)
    }
}

fn log_failure(what: &str, failure: &ClientError) {
    match failure {
        ClientError::Meta { error, status, .. } => tracing::error!(
            %what,
            status,
            code = error.code,
            subcode = error.error_subcode,
            details = error.details.as_deref().map(display),
            fbtrace_id = error.fbtrace_id.as_deref().map(display),
            is_transient = error.is_transient,
            user_title = error.error_user_title.as_deref().map(display),
            user_msg = error.error_user_msg.as_deref().map(display),
            meta_message = %error.message,
            attempts = failure.attempts(),
            "Graph API call failed"
        ),
        other => tracing::error!(%what, error = %other, "Graph API call failed"),
    }
}

/// A transport error in words, without the URL.
pub(super) fn without_url(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "could not connect".to_owned()
    } else {
        "the request failed".to_owned()
    };
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// Exponential backoff with full jitter: a random wait up to 250 ms × 2^(attempt-1), at most
/// 8 s.
fn backoff(attempt: u32) -> Duration {
    let cap = 250u64
        .saturating_mul(1 << attempt.saturating_sub(1).min(5))
        .min(8000);
    Duration::from_millis(rand::random_range(cap / 2..=cap))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_follows_metas_table() {
        for (status, code, retry) in [
            (429, Some(4), true),
            (400, Some(4), true),
            (400, Some(80007), true),
            (400, Some(130429), true),
            (500, Some(1), true),
            (503, None, true),
            (400, Some(100), false),
            (401, Some(190), false),
            (400, Some(131053), false),
            (403, Some(10), false),
            (403, Some(200), false),
        ] {
            assert_eq!(retryable(status, code, None), retry, "{status} {code:?}");
            assert_eq!(
                retryable(status, code, Some(false)),
                retry,
                "{status} {code:?}"
            );
            // Meta's own word: transient means retry, whatever the code.
            assert!(retryable(status, code, Some(true)), "{status} {code:?}");
        }
    }

    #[test]
    fn metas_words_for_people_follow_its_reason() {
        let mut e = GraphError {
            message: "(#100) Invalid parameter".into(),
            code: 100,
            ..GraphError::default()
        };
        assert_eq!(e.reason(), "(#100) Invalid parameter");
        e.details = Some("Param file is not supported".into());
        assert_eq!(e.reason(), "Param file is not supported");
        e.error_user_msg = Some("Upload a JPEG or PNG.".into());
        assert_eq!(
            e.reason(),
            "Param file is not supported; Meta says: Upload a JPEG or PNG."
        );
        e.error_user_title = Some("Unsupported file".into());
        assert_eq!(
            e.reason(),
            "Param file is not supported; Meta says: Unsupported file: Upload a JPEG or PNG."
        );
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["error_user_title"], "Unsupported file");
        assert_eq!(json["error_user_msg"], "Upload a JPEG or PNG.");
        assert!(json.get("is_transient").is_none());
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        for attempt in 1..20 {
            let b = backoff(attempt);
            assert!(b <= Duration::from_secs(8));
            assert!(b >= Duration::from_millis(125));
        }
    }
}
