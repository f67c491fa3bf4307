//! `media-origin check URL...`: fetch a URL the way Meta's media fetcher would and say, rule by
//! rule (WHATSAPP_MEDIA.md), whether Meta can use it and how it will cache it.
//!
//! # Why
//!
//! A `link` in a WhatsApp message is fetched by Meta's media fetcher *after* the send was
//! accepted. When the fetch fails (a redirect, `image/jpg` instead of `image/jpeg`, WebP bytes
//! served as JPEG, an image over 5 MB), the message fails asynchronously: a `failed` status
//! webhook with error 131053, per recipient, often long after the broadcast went out. And a
//! `Cache-Control` Meta does not honour fails silently in a different way: every send fetches
//! the asset again (slow origins under batched sends cause 131053 too), or an old copy keeps
//! being sent. This command audits a link *before* a broadcast, against any server (a CDN, a
//! bucket, this one), so the problem is found while it is still cheap.
//!
//! # What it does
//!
//! One plain, unconditional `GET` per URL with the fetcher's (reported) User-Agent. Redirects
//! are not followed automatically: each hop is followed by hand and reported, and any redirect
//! fails (§2: Meta's fetch proxy does not follow them). The body of the final `200` is streamed,
//! hashed (SHA-256) and read whole by [`crate::media_kind::Inspector`], the same code that
//! decides at upload (codecs, tracks, frame headers); reading stops past [`MAX_UPLOAD_SIZE`]
//! bytes. The bytes are judged under the served type when it is one the gate stores (as the
//! asset was stored), else on their own. Then every rule is a
//! check with a level (`ok`, `warn`, `fail`) and a one-line reason citing the rule, and a final
//! verdict line says whether Meta can use the asset and for how long it will cache it.
//!
//! [`evaluate`] is pure (a fetched response in, a [`Report`] out); [`fetch`] does the network.
//!
//! Exit status: 0 when every URL is usable and will be cached as its headers declare; 1 when any
//! check fails for any URL (Meta would fail the send, refuse the bytes, or not cache as
//! declared), including a URL that cannot be fetched from here; 2 on a usage error (bad
//! arguments, a URL that is not `http` or `https`), before anything is fetched.

use std::net::IpAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use reqwest::Url;
use reqwest::header::{self, HeaderMap};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::media_kind::{self, Kind, MAX_UPLOAD_SIZE, MediaError};
use crate::policy::CachePolicy;

/// The User-Agent sent by default. Meta does not document its fetcher's; this is the value
/// reported for it (WHATSAPP_MEDIA.md §2, unverified).
pub const DEFAULT_USER_AGENT: &str = "facebookexternalua";

/// Above this time for the whole answer the `speed` check warns (Meta's timeout is undocumented,
/// reportedly "a few seconds").
const SLOW: Duration = Duration::from_secs(3);

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// URLs to check, exactly as they would appear in a message's `link`.
    #[arg(required = true, value_name = "URL")]
    urls: Vec<String>,
    /// Print one JSON object per URL (every check and the verdict) instead of text.
    #[arg(long)]
    json: bool,
    /// The User-Agent to send (Meta's is undocumented; the default is the reported one).
    #[arg(long, value_name = "UA", default_value = DEFAULT_USER_AGENT)]
    user_agent: String,
    /// Give up on a request (headers and body) after this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    timeout: u64,
    /// Follow at most this many redirects to report where they lead (any redirect fails).
    #[arg(long, value_name = "N", default_value_t = 5)]
    max_redirects: usize,
}

/// Run the command; see the module docs for the exit status.
pub async fn run(args: CheckArgs) -> ExitCode {
    let mut urls = Vec::with_capacity(args.urls.len());
    for raw in &args.urls {
        match parse_url(raw) {
            Ok(url) => urls.push(url),
            Err(e) => {
                eprintln!("media-origin check: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let client = match reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(args.timeout.max(1)))
        .user_agent(args.user_agent.clone())
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("media-origin check: {e}");
            return ExitCode::from(2);
        }
    };
    let mut all_ok = true;
    for (i, url) in urls.into_iter().enumerate() {
        let report = evaluate(&fetch(&client, url, args.max_redirects).await);
        all_ok &= report.ok();
        if args.json {
            println!("{}", report.to_json());
        } else {
            if i > 0 {
                println!();
            }
            print!("{}", report.to_text());
        }
    }
    if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn parse_url(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw.trim()).map_err(|e| format!("{raw:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{raw:?} is not an http or https URL"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{raw:?} has no host"));
    }
    Ok(url)
}

// ---------------------------------------------------------------------------
// Fetching
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Evaluation
// ---------------------------------------------------------------------------

/// How bad a finding is. Only `Fail` changes the exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

/// One rule, checked.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// `fetch`, `address`, `status`, `redirects`, `content-type`, `bytes`, `size`,
    /// `cache-control`, `last-modified`, `etag` or `speed`.
    pub name: &'static str,
    pub level: Level,
    pub message: String,
}

/// What Meta will do about caching, from the headers alone (§2's table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caching {
    /// `max-age=N`: reused for N seconds.
    For(u64),
    /// `no-cache` with `Last-Modified`: kept, refreshed when `Last-Modified` changes.
    UntilLastModifiedChanges,
    /// `no-store` or `private`, as declared: fetched on every send.
    NotCached(CachePolicy),
    /// Only an ETag (no Cache-Control, no Last-Modified): Meta caches it by its own undisclosed
    /// logic (§2). Documented, so not a failure; but for how long cannot be known.
    Undisclosed,
    /// Not cached as anything declares (the reason, for the verdict).
    Undeclared(String),
}

/// Everything found about one URL.
#[derive(Debug, Clone)]
pub struct Report {
    pub url: String,
    pub final_url: Option<String>,
    pub hops: Vec<Hop>,
    pub status: Option<u16>,
    pub content_type: Option<String>,
    pub bytes: Option<u64>,
    pub sha256: Option<String>,
    /// The kind the bytes are, when they are one WhatsApp accepts.
    pub kind: Option<Kind>,
    pub caching: Option<Caching>,
    pub checks: Vec<Check>,
    pub verdict: String,
}

impl Report {
    /// No check failed: Meta can use the asset and caches it as declared.
    pub fn ok(&self) -> bool {
        self.checks.iter().all(|c| c.level != Level::Fail)
    }

    /// The report as printed: the URL, one line per check, the verdict.
    pub fn to_text(&self) -> String {
        let mut out = format!("{}\n", self.url);
        for c in &self.checks {
            let level = match c.level {
                Level::Ok => "ok  ",
                Level::Warn => "WARN",
                Level::Fail => "FAIL",
            };
            out.push_str(&format!("  {level}  {}: {}\n", c.name, c.message));
        }
        out.push_str(&format!("  VERDICT: {}\n", self.verdict));
        out
    }

    /// The report as one JSON object.
    pub fn to_json(&self) -> Value {
        let (caching, cached_for_secs) = match &self.caching {
            Some(Caching::For(n)) => (Some(format!("max-age={n}")), Some(*n)),
            Some(Caching::UntilLastModifiedChanges) => (Some("no-cache".to_owned()), None),
            Some(Caching::NotCached(p)) => (Some(p.to_string()), Some(0)),
            Some(Caching::Undisclosed) => (Some("undisclosed".to_owned()), None),
            Some(Caching::Undeclared(_)) | None => (None, None),
        };
        json!({
            "url": self.url,
            "final_url": self.final_url,
            "redirects": self.hops,
            "status": self.status,
            "content_type": self.content_type,
            "bytes": self.bytes,
            "sha256": self.sha256,
            "kind": self.kind.map(Kind::as_str),
            "caching": caching,
            "cached_for_secs": cached_for_secs,
            "ok": self.ok(),
            "checks": self.checks,
            "verdict": self.verdict,
        })
    }
}

/// Judge a fetched URL against WHATSAPP_MEDIA.md.
pub fn evaluate(fetched: &Fetched) -> Report {
    let mut checks = Vec::new();
    let mut report = Report {
        url: fetched.url.to_string(),
        final_url: None,
        hops: fetched.hops.clone(),
        status: None,
        content_type: None,
        bytes: None,
        sha256: None,
        kind: None,
        caching: None,
        checks: Vec::new(),
        verdict: String::new(),
    };
    if let Some(warning) = private_address(&fetched.url) {
        checks.push(check("address", Level::Warn, warning));
    }
    let answer = match &fetched.result {
        Ok(a) => a,
        Err(e) => {
            checks.push(check(
                "fetch",
                Level::Fail,
                format!(
                    "{e}{}: if Meta cannot fetch the link either, the send fails with 131053 (§1)",
                    via(&fetched.hops)
                ),
            ));
            if !fetched.hops.is_empty() {
                checks.push(redirect_check(&fetched.hops, None));
            }
            report.checks = checks;
            report.verdict = verdict(&report);
            return report;
        }
    };
    report.final_url = Some(answer.url.to_string());
    report.status = Some(answer.status);
    let header = |name: header::HeaderName| joined(&answer.headers, name);
    report.content_type = header(header::CONTENT_TYPE);

    checks.push(status_check(answer.status));
    let landed = (answer.status == 200).then_some(&answer.url);
    checks.push(redirect_check(&fetched.hops, landed));
    if let Some(body) = &answer.body {
        report.bytes = Some(body.size);
        report.sha256 = Some(body.sha256.clone());
        let media = Media::new(&answer.url, report.content_type.as_deref(), body);
        report.kind = media.sniffed.as_ref().ok().map(|m| m.kind);
        checks.push(media.content_type_check());
        checks.push(media.bytes_check());
        checks.push(media.size_check(&answer.headers));
        let (cache_checks, caching) = caching_checks(
            header(header::CACHE_CONTROL).as_deref(),
            header(header::LAST_MODIFIED).as_deref(),
            header(header::ETAG).as_deref(),
        );
        checks.extend(cache_checks);
        report.caching = Some(caching);
        checks.push(speed_check(answer));
    }
    report.checks = checks;
    report.verdict = verdict(&report);
    report
}

fn check(name: &'static str, level: Level, message: impl Into<String>) -> Check {
    Check {
        name,
        level,
        message: message.into(),
    }
}

/// All values of a header, joined as one list (RFC 9110 §5.3).
fn joined(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    let values: Vec<String> = headers
        .get_all(name)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_owned())
        .collect();
    (!values.is_empty()).then(|| values.join(", "))
}

fn via(hops: &[Hop]) -> String {
    match hops.last() {
        Some(hop) => format!(" (after a redirect to {})", hop.location),
        None => String::new(),
    }
}

/// A warning when the URL names a host Meta cannot reach from the internet.
fn private_address(url: &Url) -> Option<String> {
    let host = url.host_str()?;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let private = if host.eq_ignore_ascii_case("localhost") || host.ends_with(".localhost") {
        true
    } else {
        match bare.parse::<IpAddr>() {
            Ok(IpAddr::V4(ip)) => {
                ip.is_loopback() || ip.is_private() || ip.is_link_local() || ip.is_unspecified()
            }
            Ok(IpAddr::V6(ip)) => {
                ip.is_loopback()
                    || ip.is_unspecified()
                    || ip.is_unique_local()
                    || ip.is_unicast_link_local()
            }
            Err(_) => false,
        }
    };
    private.then(|| {
        format!(
            "{host} is not a public address: Meta's fetcher cannot reach it (§1: the server \
             must be publicly reachable); this check only shows what Meta would get"
        )
    })
}

fn status_check(status: u16) -> Check {
    let reason = reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    let shown = format!("{status} {reason}").trim_end().to_owned();
    match status {
        200 => check("status", Level::Ok, shown),
        206 => check(
            "status",
            Level::Fail,
            format!("{shown} to a request without Range: Meta needs the whole asset with 200 (§2)"),
        ),
        304 => check(
            "status",
            Level::Fail,
            format!("{shown} to an unconditional GET: Meta needs 200 with the body (§2)"),
        ),
        300..=399 => check(
            "status",
            Level::Fail,
            format!("{shown}: Meta's fetch proxy does not follow redirects (§2)"),
        ),
        _ => check(
            "status",
            Level::Fail,
            format!("{shown}: Meta fails the send (error 131053, §1); it needs 200 (§2)"),
        ),
    }
}

fn redirect_check(hops: &[Hop], landed: Option<&Url>) -> Check {
    if hops.is_empty() {
        return check(
            "redirects",
            Level::Ok,
            "none (Meta's fetch proxy does not follow redirects, §2)",
        );
    }
    let chain: Vec<String> = hops
        .iter()
        .map(|h| format!("{} to {}", h.status, h.location))
        .collect();
    let advice = match landed {
        Some(url) => format!("; link {url} directly"),
        None => String::new(),
    };
    check(
        "redirects",
        Level::Fail,
        format!(
            "{}: Meta's fetch proxy does not follow redirects (a 302 ends as \"Unsupported mime \
             type text/html\", §2){advice}",
            chain.join(", then ")
        ),
    )
}

/// The body and its declared type, sniffed once.
struct Media<'a> {
    declared: Option<&'a str>,
    /// Lowercase essence of the declared type (no parameters).
    essence: Option<String>,
    filename: Option<String>,
    body: &'a Body,
    /// What the bytes are, size limits aside.
    sniffed: Result<media_kind::MediaType, MediaError>,
}

impl<'a> Media<'a> {
    fn new(url: &Url, declared: Option<&'a str>, body: &'a Body) -> Self {
        let filename = url
            .path_segments()
            .and_then(|mut s| s.next_back())
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        let essence = declared.map(|d| {
            d.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
        let mut media = Self {
            declared,
            essence,
            filename,
            body,
            sniffed: Err(MediaError::Unrecognized),
        };
        // Under the served type when that is one the gate stores (it picks within a container
        // family: an M4A served as `audio/mp4` from a `.mp4` URL is audio, as the gate stored
        // it), else on the bytes alone.
        let served = media
            .declared
            .filter(|_| matches!(media_kind::declared_limit(media.declared), Ok(Some(_))));
        media.sniffed = match served.map(|d| media.resolve(Some(d))) {
            Some(Ok(m)) => Ok(m),
            _ => media.resolve(None),
        };
        media
    }

    /// The upload gate's decision on the whole body, size limits left out, so the type is
    /// decided on its own (the size check judges the size).
    fn resolve(&self, declared: Option<&str>) -> Result<media_kind::MediaType, MediaError> {
        self.body
            .inspector
            .type_only(declared, self.filename.as_deref())
    }

    /// "; serve it as `image/jpeg`" when the bytes are a type WhatsApp accepts.
    fn advice(&self) -> String {
        match &self.sniffed {
            Ok(m) => format!(
                "; the bytes are {0}: serve `Content-Type: {0}`",
                m.content_type
            ),
            Err(_) => String::new(),
        }
    }

    fn content_type_check(&self) -> Check {
        let (Some(declared), Some(essence)) = (self.declared, self.essence.as_deref()) else {
            return check(
                "content-type",
                Level::Fail,
                format!(
                    "missing: Meta needs the exact media type (§2){}",
                    self.advice()
                ),
            );
        };
        if essence == "audio/ogg" {
            let opus = declared.split(';').skip(1).any(|p| {
                let p = p.trim().to_ascii_lowercase().replace('"', "");
                p == "codecs=opus"
            });
            return if opus {
                check(
                    "content-type",
                    Level::Ok,
                    format!("{declared}: the exact type for Opus audio (§2, §3)"),
                )
            } else {
                check(
                    "content-type",
                    Level::Warn,
                    format!(
                        "{declared}: WhatsApp takes Ogg only as Opus, which must be served as \
                         `{}` (§2)",
                        media_kind::OGG_OPUS
                    ),
                )
            };
        }
        if let Some(kind) = media_kind::kind_of(essence) {
            return check(
                "content-type",
                Level::Ok,
                format!("{declared}: an exact type WhatsApp accepts ({kind}, §3)"),
            );
        }
        let message = match media_kind::declared_limit(Some(declared)) {
            Ok(Some(_)) => format!(
                "{declared} is not the exact media type Meta requires (§2: the Content-Type \
                 header must be the exact type){}",
                self.advice()
            ),
            Ok(None) => format!(
                "{declared} is not a media type: Meta requires the exact type (§2){}",
                self.advice()
            ),
            Err(e) => format!("{e} (§3){}", self.advice()),
        };
        check("content-type", Level::Fail, message)
    }

    fn bytes_check(&self) -> Check {
        let sniffed = match &self.sniffed {
            Ok(m) => m,
            Err(e) => {
                return check(
                    "bytes",
                    Level::Fail,
                    format!(
                        "{e}: Meta inspects the bytes and refuses them (§2, §3){}",
                        fix_text(e)
                    ),
                );
            }
        };
        let inside = sniffed
            .codecs
            .as_deref()
            .map(|c| format!(": {c}"))
            .unwrap_or_default();
        let declared_usable = matches!(media_kind::declared_limit(self.declared), Ok(Some(_)));
        if !declared_usable {
            let unsupported = self
                .essence
                .as_deref()
                .filter(|e| !e.is_empty() && *e != "application/octet-stream");
            return match unsupported {
                Some(essence) => check(
                    "bytes",
                    Level::Fail,
                    format!(
                        "declared {essence} but the bytes are {}: Meta inspects the bytes (§2)",
                        sniffed.content_type
                    ),
                ),
                None => check(
                    "bytes",
                    Level::Ok,
                    format!(
                        "the bytes are {}, a type WhatsApp accepts ({}){inside}",
                        sniffed.content_type, sniffed.kind
                    ),
                ),
            };
        }
        match self.resolve(self.declared) {
            Ok(m) => check(
                "bytes",
                Level::Ok,
                format!(
                    "the bytes are {}, as declared (Meta inspects the bytes, §2){inside}",
                    m.content_type
                ),
            ),
            Err(
                ref e @ MediaError::Mismatch {
                    ref declared,
                    ref detected,
                    ..
                },
            ) => check(
                "bytes",
                Level::Fail,
                format!(
                    "declared {declared} but the bytes are {detected}: Meta inspects the bytes \
                     and refuses a mismatch (§2){}",
                    fix_text(e)
                ),
            ),
            Err(e) => check(
                "bytes",
                Level::Fail,
                format!("{e} (§2, §3){}", fix_text(&e)),
            ),
        }
    }

    fn size_check(&self, headers: &HeaderMap) -> Check {
        let body = self.body;
        if body.over_max {
            return check(
                "size",
                Level::Fail,
                format!(
                    "more than {MAX_UPLOAD_SIZE} bytes (stopped reading): larger than WhatsApp \
                     accepts for any kind (§3)"
                ),
            );
        }
        if let Some(e) = &body.error {
            return check(
                "size",
                Level::Fail,
                format!(
                    "the body broke off after {} bytes: {e}; Meta gets no usable asset",
                    body.size
                ),
            );
        }
        let declared_length = joined(headers, header::CONTENT_LENGTH);
        if let Some(length) = &declared_length
            && length.parse::<u64>().ok() != Some(body.size)
        {
            return check(
                "size",
                Level::Fail,
                format!(
                    "Content-Length says {length} but {} bytes arrived: a truncated or \
                     inconsistent answer",
                    body.size
                ),
            );
        }
        let sha = format!("sha256 {}", body.sha256);
        let full = body.inspector.finish(None, self.filename.as_deref());
        let kind_and_limit = match (&full, &self.sniffed) {
            (Err(MediaError::TooLarge { kind, size, limit }), _) => {
                return check(
                    "size",
                    Level::Fail,
                    format!(
                        "{kind} too large: {size} bytes exceeds WhatsApp's limit of {limit} \
                         bytes (§3); {sha}"
                    ),
                );
            }
            (_, Ok(m)) => Some((m.kind.to_string(), limit_text(m.kind))),
            (_, Err(_)) => match media_kind::declared_limit(self.declared) {
                Ok(Some(limit)) if body.size > limit => {
                    return check(
                        "size",
                        Level::Fail,
                        format!(
                            "{} bytes exceeds WhatsApp's limit of {limit} bytes for {} (§3); {sha}",
                            body.size,
                            self.essence.as_deref().unwrap_or_default()
                        ),
                    );
                }
                Ok(Some(limit)) => Some((
                    self.essence.clone().unwrap_or_default(),
                    format!("{limit} bytes"),
                )),
                _ => None,
            },
        };
        let chunked = if declared_length.is_none() {
            " (no Content-Length)"
        } else {
            ""
        };
        match kind_and_limit {
            Some((kind, limit)) => check(
                "size",
                Level::Ok,
                format!(
                    "{} bytes{chunked}, within the {kind} limit of {limit} (§3); {sha}",
                    body.size
                ),
            ),
            None => check(
                "size",
                Level::Warn,
                format!(
                    "{} bytes{chunked}; no WhatsApp kind to check it against; {sha}",
                    body.size
                ),
            ),
        }
    }
}

/// "; fix: ffmpeg …" when the refusal has a fix.
fn fix_text(e: &MediaError) -> String {
    e.fix().map(|f| format!("; fix: {f}")).unwrap_or_default()
}

fn limit_text(kind: Kind) -> String {
    match kind {
        Kind::Sticker => format!(
            "{} bytes static, {} bytes animated",
            media_kind::STATIC_STICKER_MAX_SIZE,
            kind.max_size()
        ),
        _ => format!("{} bytes", kind.max_size()),
    }
}

const DECLARE: &str = "declare one of `max-age=N`, `no-cache` (with Last-Modified), `no-store`, \
                       `private`";

/// The `cache-control`, `last-modified` and `etag` checks, and what Meta will do (§2's table).
fn caching_checks(
    cache_control: Option<&str>,
    last_modified: Option<&str>,
    etag: Option<&str>,
) -> (Vec<Check>, Caching) {
    let mut checks = Vec::with_capacity(3);
    let policy = cache_control.map(|v| (v, v.parse::<CachePolicy>()));
    let mut caching = match (&policy, last_modified, etag) {
        (None, None, None) => {
            checks.push(check(
                "cache-control",
                Level::Fail,
                format!(
                    "missing: with none of Cache-Control, Last-Modified and ETag Meta does not \
                     cache it at all (§2); {DECLARE}"
                ),
            ));
            Caching::Undeclared("there is no Cache-Control, so Meta does not cache it".into())
        }
        (None, None, Some(_)) => {
            // Documented, not refused: Meta caches, only not in a way anyone can predict.
            checks.push(check(
                "cache-control",
                Level::Warn,
                format!(
                    "missing: with only an ETag Meta caches it by its own undisclosed logic \
                     (§2), so how long it keeps a copy cannot be known; {DECLARE} to decide it"
                ),
            ));
            Caching::Undisclosed
        }
        (None, Some(_), _) => {
            checks.push(check(
                "cache-control",
                Level::Fail,
                format!(
                    "missing: Last-Modified without Cache-Control is not a case Meta documents \
                     (§2 pairs it with no-cache), so expect no caching; {DECLARE}"
                ),
            ));
            Caching::Undeclared(
                "there is no Cache-Control; Last-Modified alone is not documented to cache".into(),
            )
        }
        (Some((value, Ok(p))), _, _) => {
            let (what, caching) = declared_caching(*p);
            checks.push(check(
                "cache-control",
                Level::Ok,
                format!("{value}: {what}"),
            ));
            caching
        }
        // Several directives, one of them Meta's (`public, max-age=604800, immutable`, what CDNs
        // send by default): Meta documents single directives but refuses nothing, so this is a
        // warning; the report assumes the documented directive is the one Meta reads.
        (Some((value, Err(_))), _, _)
            if value.contains(',')
                && let Some(p) = intended_policy(value) =>
        {
            let (what, caching) = declared_caching(p);
            checks.push(check(
                "cache-control",
                Level::Warn,
                format!(
                    "{value}: several directives; Meta documents a single one (max-age=N, \
                     no-cache, no-store or private; §2) and not how it reads a list, so this \
                     assumes it reads `{p}`: {what}; to be sure, serve `Cache-Control: {p}` alone"
                ),
            ));
            caching
        }
        (Some((value, Err(_))), _, _) => {
            let intended = intended_policy(value);
            let advice = match intended {
                Some(p) => format!("serve `Cache-Control: {p}` alone"),
                None => DECLARE.to_owned(),
            };
            let shape = if value.contains(',') {
                "several directives, none of them one Meta documents"
            } else {
                "not a directive Meta documents"
            };
            checks.push(check(
                "cache-control",
                Level::Fail,
                format!(
                    "{value}: {shape}; Meta documents exactly four forms (max-age=N, no-cache, \
                     no-store, private; §2) and how it treats anything else is undocumented: \
                     it may not cache it as intended; {advice}"
                ),
            ));
            Caching::Undeclared(format!(
                "Cache-Control `{value}` is not one of the four forms Meta documents"
            ))
        }
    };

    let no_cache = caching == Caching::UntilLastModifiedChanges;
    checks.push(match last_modified {
        None if no_cache => {
            caching = Caching::Undeclared(
                "no-cache without Last-Modified: Meta has nothing to refresh by".into(),
            );
            check(
                "last-modified",
                Level::Fail,
                "missing: no-cache requires Last-Modified (§2); without it Meta cannot tell \
                 when to refresh its copy",
            )
        }
        None => check(
            "last-modified",
            Level::Ok,
            "absent (Meta uses it only with no-cache, §2)",
        ),
        Some(v) => match (httpdate::parse_http_date(v), no_cache) {
            (Err(_), true) => check(
                "last-modified",
                Level::Warn,
                format!(
                    "{v}: not an HTTP date (RFC 9110 §5.6.7); Meta compares it to refresh its \
                     copy (§2), so it must still change on every content change"
                ),
            ),
            (Ok(_), true) => check(
                "last-modified",
                Level::Ok,
                format!(
                    "{v}: Meta replaces its copy when this changes (§2); it must change on every \
                     content change"
                ),
            ),
            (_, false) => check(
                "last-modified",
                Level::Ok,
                format!("{v} (Meta uses it only with no-cache, §2)"),
            ),
        },
    });

    checks.push(match etag {
        Some(v) if cache_control.is_none() && last_modified.is_none() => check(
            "etag",
            Level::Warn,
            format!(
                "{v}: used: with no Cache-Control and no Last-Modified Meta caches by its own \
                 undisclosed logic (§2)"
            ),
        ),
        Some(v) => check(
            "etag",
            Level::Ok,
            format!(
                "{v}: ignored by Meta, since Cache-Control or Last-Modified is present (§2); it \
                 still serves browsers and CDNs"
            ),
        ),
        None => check(
            "etag",
            Level::Ok,
            "absent (Meta ignores it when Cache-Control or Last-Modified is present, §2)",
        ),
    });
    (checks, caching)
}

/// What Meta does with one of its four directives (§2's table), as the `cache-control` check
/// says it, and as the report's caching.
fn declared_caching(p: CachePolicy) -> (String, Caching) {
    match p {
        CachePolicy::MaxAge(0) => (
            "Meta may not reuse it; every send fetches it again (§2)".to_owned(),
            Caching::For(0),
        ),
        CachePolicy::MaxAge(n) => (
            format!(
                "Meta caches it by URL for {n} s, then fetches it again (§2); a replaced asset \
                 needs a new URL to reach customers sooner"
            ),
            Caching::For(n),
        ),
        CachePolicy::NoCache => (
            "Meta may cache it and replaces its copy when Last-Modified changes (§2)".to_owned(),
            Caching::UntilLastModifiedChanges,
        ),
        CachePolicy::NoStore | CachePolicy::Private => (
            "Meta does not cache it; every send fetches it again (§2)".to_owned(),
            Caching::NotCached(p),
        ),
    }
}

/// The documented directive a multi-directive or misspelt `Cache-Control` most likely means,
/// the most restrictive first.
fn intended_policy(value: &str) -> Option<CachePolicy> {
    let directives: Vec<String> = value
        .split(',')
        .map(|d| d.trim().to_ascii_lowercase())
        .collect();
    let has = |name: &str| directives.iter().any(|d| d == name);
    if has("no-store") {
        return Some(CachePolicy::NoStore);
    }
    if has("private") {
        return Some(CachePolicy::Private);
    }
    if has("no-cache") {
        return Some(CachePolicy::NoCache);
    }
    directives.iter().find_map(|d| d.parse().ok())
}

fn speed_check(answer: &Answer) -> Check {
    let timing = format!(
        "headers after {} ms, the whole answer after {} ms",
        answer.headers_after.as_millis(),
        answer.total.as_millis()
    );
    if answer.total > SLOW {
        check(
            "speed",
            Level::Warn,
            format!(
                "{timing}: Meta's fetch timeout is undocumented (reportedly a few seconds) and \
                 slow origins have been reported to cause 131053 (§2)"
            ),
        )
    } else {
        check("speed", Level::Ok, timing)
    }
}

/// The one-line conclusion: the first failure that stops the send, else how Meta caches.
fn verdict(report: &Report) -> String {
    let first_fail = |names: &[&str]| {
        report
            .checks
            .iter()
            .find(|c| c.level == Level::Fail && names.contains(&c.name))
    };
    if let Some(c) = first_fail(&["fetch", "redirects", "status"]) {
        return format!("Meta will fail to fetch this: {}: {}", c.name, c.message);
    }
    if let Some(c) = first_fail(&["content-type", "bytes", "size"]) {
        return format!("Meta will refuse this: {}: {}", c.name, c.message);
    }
    let what = report
        .kind
        .map_or_else(|| "this asset".to_owned(), |k| format!("this {k}"));
    // A declared caching read out of several directives is an assumption (see the warning).
    let assumed = if report
        .checks
        .iter()
        .any(|c| c.name == "cache-control" && c.level == Level::Warn)
    {
        " (assuming it reads the one documented directive among several in Cache-Control)"
    } else {
        ""
    };
    match &report.caching {
        Some(Caching::For(0)) => format!(
            "Meta can use {what}; it will not reuse it (max-age=0): every send fetches it{assumed}"
        ),
        Some(Caching::For(n)) => {
            format!("Meta can use {what}; it will cache it for {n} s{assumed}")
        }
        Some(Caching::UntilLastModifiedChanges) => format!(
            "Meta can use {what}; it may cache it, and refreshes it when Last-Modified \
             changes{assumed}"
        ),
        Some(Caching::NotCached(p)) => format!(
            "Meta can use {what}; it will not cache it ({p}, as declared): every send fetches \
             it{assumed}"
        ),
        Some(Caching::Undisclosed) => format!(
            "Meta can use {what}; with only an ETag it caches it by its own undisclosed logic, \
             for a time no one can know"
        ),
        Some(Caching::Undeclared(why)) => {
            format!("Meta can use {what}, but will not cache it as declared: {why}")
        }
        None => format!("Meta can use {what}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(cc: Option<&str>, lm: Option<&str>, etag: Option<&str>) -> (Vec<Level>, Caching) {
        let (checks, caching) = caching_checks(cc, lm, etag);
        (checks.iter().map(|c| c.level).collect(), caching)
    }

    const LM: &str = "Tue, 22 Feb 2022 22:22:22 GMT";

    #[test]
    fn the_four_documented_directives() {
        use Level::{Ok, Warn};
        assert_eq!(
            cache(Some("max-age=604800"), None, Some("\"x\"")),
            (vec![Ok, Ok, Ok], Caching::For(604_800))
        );
        assert_eq!(
            cache(Some("No-Cache"), Some(LM), None),
            (vec![Ok, Ok, Ok], Caching::UntilLastModifiedChanges)
        );
        assert_eq!(
            cache(Some("no-store"), None, None).1,
            Caching::NotCached(CachePolicy::NoStore)
        );
        assert_eq!(
            cache(Some("private"), Some(LM), None).1,
            Caching::NotCached(CachePolicy::Private)
        );
        // An unparsable Last-Modified under no-cache is suspicious, not fatal.
        assert_eq!(cache(Some("no-cache"), Some("yesterday"), None).0[1], Warn);
    }

    #[test]
    fn several_directives_with_a_documented_one_and_etag_only_warn() {
        use Level::{Fail, Ok, Warn};
        // What CDNs send by default: read as its max-age, with a warning.
        assert_eq!(
            cache(
                Some("public, max-age=604800, immutable"),
                Some(LM),
                Some("\"x\"")
            ),
            (vec![Warn, Ok, Ok], Caching::For(604_800))
        );
        assert_eq!(
            cache(Some("private, max-age=60"), None, None),
            (vec![Warn, Ok, Ok], Caching::NotCached(CachePolicy::Private))
        );
        assert_eq!(
            cache(Some("no-cache, must-revalidate"), Some(LM), None),
            (vec![Warn, Ok, Ok], Caching::UntilLastModifiedChanges)
        );
        // Read as no-cache, which still needs Last-Modified.
        let (levels, caching) = cache(Some("no-cache, must-revalidate"), None, None);
        assert_eq!(levels, [Warn, Fail, Ok]);
        assert!(matches!(caching, Caching::Undeclared(_)), "{caching:?}");
        // Only an ETag: Meta's own logic (§2), a warning on both.
        assert_eq!(
            cache(None, None, Some("\"e\"")),
            (vec![Warn, Ok, Warn], Caching::Undisclosed)
        );
        let (checks, _) = caching_checks(Some("public, max-age=604800, immutable"), Some(LM), None);
        assert_eq!(
            checks[0].message,
            "public, max-age=604800, immutable: several directives; Meta documents a single one \
             (max-age=N, no-cache, no-store or private; §2) and not how it reads a list, so this \
             assumes it reads `max-age=604800`: Meta caches it by URL for 604800 s, then fetches \
             it again (§2); a replaced asset needs a new URL to reach customers sooner; to be \
             sure, serve `Cache-Control: max-age=604800` alone"
        );
    }

    #[test]
    fn undocumented_or_incomplete_caching_fails() {
        use Level::{Fail, Ok};
        for (cc, lm, etag, levels) in [
            (None, None, None, vec![Fail, Ok, Ok]),
            (None, Some(LM), None, vec![Fail, Ok, Ok]),
            (Some("no-cache"), None, None, vec![Ok, Fail, Ok]),
            (
                Some("public, must-revalidate"),
                Some(LM),
                None,
                vec![Fail, Ok, Ok],
            ),
            (Some("public"), Some(LM), None, vec![Fail, Ok, Ok]),
            (Some("max-age=soon"), None, None, vec![Fail, Ok, Ok]),
        ] {
            let (got, caching) = cache(cc, lm, etag);
            assert_eq!(got, levels, "{cc:?} {lm:?} {etag:?}");
            assert!(matches!(caching, Caching::Undeclared(_)), "{caching:?}");
        }
    }

    #[test]
    fn the_intended_directive_is_suggested() {
        let p = |s| intended_policy(s).map(|p| p.to_string());
        assert_eq!(
            p("public, max-age=60, must-revalidate").as_deref(),
            Some("max-age=60")
        );
        assert_eq!(p("private, max-age=60").as_deref(), Some("private"));
        assert_eq!(p("no-cache, no-store").as_deref(), Some("no-store"));
        assert_eq!(p("public"), None);
    }

    #[test]
    fn private_addresses_are_flagged() {
        for url in [
            "http://127.0.0.1:8080/a.jpg",
            "http://localhost/a.jpg",
            "http://10.1.2.3/a.jpg",
            "http://[::1]/a.jpg",
        ] {
            assert!(
                private_address(&Url::parse(url).unwrap()).is_some(),
                "{url}"
            );
        }
        assert!(private_address(&Url::parse("https://media.example.com/a.jpg").unwrap()).is_none());
        assert!(private_address(&Url::parse("http://93.184.216.34/a.jpg").unwrap()).is_none());
    }

    #[test]
    fn only_http_urls() {
        assert!(parse_url("https://media.example.com/a.jpg").is_ok());
        assert!(parse_url("ftp://media.example.com/a.jpg").is_err());
        assert!(parse_url("media.example.com/a.jpg").is_err());
    }
}
