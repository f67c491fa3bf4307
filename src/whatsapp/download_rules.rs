//! What a download from Meta's media host may do and how it fails: the HTTP client (its
//! timeouts and redirect rules) and the failure kinds with their codes. Apart from
//! `download.rs`, which does the downloading, so that the Graph client can hold the download
//! client and carry its errors without importing the downloader back.

use std::time::Duration;

use crate::config::WhatsAppSettings;

/// At most this many redirects are followed.
const MAX_REDIRECTS: usize = 5;

/// The HTTP client for downloads.
pub(super) fn client(settings: &WhatsAppSettings) -> reqwest::Client {
    let plain_http = settings.graph_url.starts_with("http://");
    reqwest::Client::builder()
        .no_proxy()
        .read_timeout(Duration::from_millis(settings.timeout_ms))
        .connect_timeout(Duration::from_millis(settings.timeout_ms))
        .redirect(reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS {
                attempt.error("too many redirects")
            } else if attempt.url().scheme() != "https" && !plain_http {
                attempt.error("a redirect away from HTTPS")
            } else {
                attempt.follow()
            }
        }))
        .build()
        .expect("a TLS client builds")
}

/// Why a download failed, after any retries.
#[derive(Debug, Clone)]
pub struct DownloadError {
    /// What kind of failure.
    pub failure: Failure,
    /// What happened, in words.
    pub reason: String,
    /// Requests made.
    pub attempts: u32,
}

/// The kinds of download failure, each with its own code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// 404 or 410: the URL expired (it lives 5 minutes) or the media is gone.
    Expired,
    /// 401 or 403: the download host refused the token or the client.
    Refused,
    /// Any other error status, after retries.
    Unavailable,
    /// No byte for `timeout_ms`, or the whole download took over `download_timeout_ms`.
    Timeout,
    /// The connection failed or dropped.
    Interrupted,
    /// The bytes are not what Meta announced (SHA-256 or size).
    Corrupt,
    /// Larger than `whatsapp.import_max_bytes`.
    TooLarge,
    /// The URL is not HTTPS (while `graph_url` is).
    Insecure,
}

impl DownloadError {
    /// Our stable code for it.
    pub fn code(&self) -> &'static str {
        match self.failure {
            Failure::Expired => "whatsapp_download_expired",
            Failure::Refused => "whatsapp_download_refused",
            Failure::Unavailable => "whatsapp_download_unavailable",
            Failure::Timeout => "whatsapp_download_timeout",
            Failure::Interrupted => "whatsapp_download_interrupted",
            Failure::Corrupt => "whatsapp_download_corrupt",
            Failure::TooLarge => "whatsapp_import_too_large",
            Failure::Insecure => "whatsapp_download_insecure",
        }
    }

    /// Whether another attempt may succeed.
    pub fn transient(&self) -> bool {
        matches!(
            self.failure,
            Failure::Unavailable | Failure::Timeout | Failure::Interrupted
        )
    }

    /// A failure of `attempt`.
    pub fn new(failure: Failure, reason: impl Into<String>, attempts: u32) -> Self {
        Self {
            failure,
            reason: reason.into(),
            attempts,
        }
    }
}

impl std::fmt::Display for DownloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "downloading the media from Meta failed after {} attempt(s): {}",
            self.attempts, self.reason
        )
    }
}
