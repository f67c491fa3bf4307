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

pub use super::download_rules::{DownloadError, Failure};

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
    use crate::config::{Secret, WhatsAppSettings};

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
