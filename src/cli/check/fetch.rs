//! The network half of `check`: one plain, unconditional `GET` per URL, as Meta's fetcher makes
//! it. Redirects are followed by hand so that each hop can be reported (Meta follows none), and
//! the body of a `200` is streamed through the upload gate's [`Inspector`](media_kind::Inspector)
//! and hashed, stopping past [`MAX_UPLOAD_SIZE`] bytes. Nothing here judges: what was received is
//! handed to [`evaluate`](super::evaluate()) as a [`Fetched`].

use std::time::{Duration, Instant};

use reqwest::Url;
use reqwest::header::{self, HeaderMap};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::media_kind::{self, MAX_UPLOAD_SIZE};

/// One redirect that was answered.
#[derive(Debug, Clone, Serialize)]
pub struct Hop {
    pub url: String,
    pub status: u16,
    /// The `Location` header as sent.
    pub location: String,
}

/// What one URL gave, as far as it got.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The URL asked for.
    pub url: Url,
    /// Redirects answered on the way, in order.
    pub hops: Vec<Hop>,
    /// The last answer, or why there was none.
    pub result: Result<Answer, String>,
}

/// The last (non-followed) answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub url: Url,
    pub status: u16,
    pub headers: HeaderMap,
    /// The body was read (only for a `200`).
    pub body: Option<Body>,
    /// Time to the response headers.
    pub headers_after: Duration,
    /// Time to the end of the body (or the headers when it was not read).
    pub total: Duration,
}

/// What was read of a `200`'s body.
#[derive(Debug, Clone)]
pub struct Body {
    /// Bytes received (at most [`MAX_UPLOAD_SIZE`] + 1).
    pub size: u64,
    /// Reading stopped because there was more than [`MAX_UPLOAD_SIZE`].
    pub over_max: bool,
    /// SHA-256 of what was received, lowercase hex.
    pub sha256: String,
    /// The body broke off (timeout, reset) after `size` bytes.
    pub error: Option<String>,
    /// Everything received, as the upload gate reads it (codecs, frame headers).
    pub inspector: media_kind::Inspector,
}

/// GET `url` as Meta's fetcher would, following at most `max_redirects` redirects by hand.
pub async fn fetch(client: &reqwest::Client, url: Url, max_redirects: usize) -> Fetched {
    let mut hops = Vec::new();
    let mut current = url.clone();
    let result = loop {
        let started = Instant::now();
        let mut response = match client.get(current.clone()).send().await {
            Ok(r) => r,
            Err(e) => break Err(error_chain(&e)),
        };
        let headers_after = started.elapsed();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let location = headers
            .get(header::LOCATION)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        if matches!(status, 301 | 302 | 303 | 307 | 308)
            && hops.len() < max_redirects
            && let Some(location) = location
            && let Ok(next) = current.join(&location)
        {
            hops.push(Hop {
                url: current.to_string(),
                status,
                location,
            });
            current = next;
            continue;
        }
        let body = if status == 200 {
            Some(read_body(&mut response).await)
        } else {
            None
        };
        break Ok(Answer {
            url: current,
            status,
            headers,
            body,
            headers_after,
            total: started.elapsed(),
        });
    };
    Fetched { url, hops, result }
}

async fn read_body(response: &mut reqwest::Response) -> Body {
    let mut size = 0u64;
    let mut hasher = Sha256::new();
    let mut inspector = media_kind::Inspector::new();
    let mut error = None;
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                hasher.update(&chunk);
                inspector.update(&chunk);
                size += chunk.len() as u64;
                if size > MAX_UPLOAD_SIZE {
                    break;
                }
            }
            Ok(None) => break,
            Err(e) => {
                error = Some(error_chain(&e));
                break;
            }
        }
    }
    Body {
        size,
        over_max: size > MAX_UPLOAD_SIZE,
        sha256: hex::encode(hasher.finalize()),
        error,
        inspector,
    }
}

/// An error with its causes: reqwest's own message alone rarely says what went wrong.
fn error_chain(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    // reqwest's own message only repeats the URL; the causes say what happened.
    let mut text = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.source().is_some() {
        String::new()
    } else {
        e.to_string()
    };
    let mut source = e.source();
    while let Some(cause) = source {
        let message = cause.to_string();
        if !text.contains(&message) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&message);
        }
        source = cause.source();
    }
    text
}

/// All values of a header, joined as one list (RFC 9110 §5.3).
pub(super) fn joined(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    let values: Vec<String> = headers
        .get_all(name)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_owned())
        .collect();
    (!values.is_empty()).then(|| values.join(", "))
}
