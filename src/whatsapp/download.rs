//! Downloading a customer's media from the URL the retrieve call gave (WHATSAPP_MEDIA.md §4):
//! the bearer token goes with it, so it goes only to that URL, over HTTPS (plain HTTP only when
//! `graph_url` itself is, as in tests), with a `User-Agent` (Meta's download host is known to
//! refuse requests without one), and redirects are followed only over HTTPS, where reqwest
//! drops the token on a change of host.
//!
//! A read that stalls for `timeout_ms` fails the attempt; the whole download is bounded by
//! `download_timeout_ms`. Which failures are worth another attempt follows the upload's rules
//! (HTTP 429 and 5xx, timeouts, dropped connections); a 404 means the 5-minute URL has expired,
//! and the caller asks for a fresh one once.

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, USER_AGENT};

use super::client::{GraphClient, without_url};
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

impl GraphClient {
    /// One download request to `url` (from a retrieve call): the response, once its status is
    /// a success, or why not (with any `Retry-After`). The body is the caller's to stream.
    pub(super) async fn open_download(
        &self,
        url: &str,
        attempt: u32,
    ) -> Result<reqwest::Response, (DownloadError, Option<Duration>)> {
        let fail = |failure, reason: String| (DownloadError::new(failure, reason, attempt), None);
        let parsed =
            reqwest::Url::parse(url).map_err(|_| fail(Failure::Insecure, "not a URL".into()))?;
        let secure = parsed.scheme() == "https" || (parsed.scheme() == "http" && self.plain_http);
        if !secure {
            return Err(fail(
                Failure::Insecure,
                format!(
                    "the download URL Meta gave is {}, not HTTPS: the access token is not sent there",
                    parsed.scheme()
                ),
            ));
        }
        let sent = self
            .download_http
            .get(parsed)
            .header(AUTHORIZATION, format!("Bearer {}", self.token.expose()))
            .header(USER_AGENT, &self.user_agent)
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) if e.is_timeout() => return Err(fail(Failure::Timeout, without_url(&e))),
            Err(e) if e.is_redirect() => return Err(fail(Failure::Insecure, without_url(&e))),
            Err(e) => return Err(fail(Failure::Interrupted, without_url(&e))),
        };
        let status = response.status().as_u16();
        if response.status().is_success() {
            return Ok(response);
        }
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let failure = match status {
            404 | 410 => Failure::Expired,
            401 | 403 => Failure::Refused,
            _ => Failure::Unavailable,
        };
        let words = match failure {
            Failure::Expired => {
                "the download URL has expired (Meta's URLs live 5 minutes) or the media is gone"
            }
            Failure::Refused => "the download host refused the request (token or User-Agent)",
            _ => "the download host failed",
        };
        let transient = status == 429 || status >= 500;
        let failure = if failure == Failure::Unavailable && !transient {
            Failure::Refused
        } else {
            failure
        };
        Err((
            DownloadError::new(failure, format!("HTTP {status}: {words}"), attempt),
            retry_after,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    #[tokio::test]
    async fn the_token_goes_only_over_https_unless_the_graph_api_is_plain_http() {
        let settings = WhatsAppSettings::default();
        assert!(settings.graph_url.starts_with("https://"));
        let client = GraphClient::new(&settings, Secret::new("EAAG-secret"));
        // Port 9 (discard) on loopback: were a request sent, it would fail as Interrupted.
        for url in [
            "http://127.0.0.1:9/attachments/?mid=1",
            "ftp://127.0.0.1/x",
            "no url",
        ] {
            let (e, _) = client.open_download(url, 1).await.unwrap_err();
            assert_eq!(e.failure, Failure::Insecure, "{url}: {e}");
            assert_eq!(e.code(), "whatsapp_download_insecure");
            assert!(!e.transient());
        }
        let plain = WhatsAppSettings {
            graph_url: "http://127.0.0.1:9".into(),
            ..WhatsAppSettings::default()
        };
        let client = GraphClient::new(&plain, Secret::new("EAAG-secret"));
        let (e, _) = client
            .open_download("http://127.0.0.1:9/attachments/?mid=1", 1)
            .await
            .unwrap_err();
        assert_eq!(e.failure, Failure::Interrupted, "{e}");
    }
}
