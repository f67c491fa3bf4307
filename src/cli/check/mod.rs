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
//! decides at upload (codecs, tracks, frame headers); reading stops past
//! [`MAX_UPLOAD_SIZE`](crate::media_kind::MAX_UPLOAD_SIZE) bytes. The bytes are judged under the served type when it is one the gate stores (as the
//! asset was stored), else on their own. Then every rule is a
//! check with a level (`ok`, `warn`, `fail`) and a one-line reason citing the rule, and a final
//! verdict line says whether Meta can use the asset and for how long it will cache it.
//!
//! [`evaluate()`] is pure (a fetched response in, a [`Report`](report::Report) out); [`fetch()`]
//! does the network.
//!
//! Exit status: 0 when every URL is usable and will be cached as its headers declare; 1 when any
//! check fails for any URL (Meta would fail the send, refuse the bytes, or not cache as
//! declared), including a URL that cannot be fetched from here; 2 on a usage error (bad
//! arguments, a URL that is not `http` or `https`), before anything is fetched.
//!
//! # Layout
//!
//! - [`fetch`](mod@fetch): the network: one GET, redirects followed by hand, the body streamed.
//! - [`evaluate`](mod@evaluate): the pure judge: a fetched answer in, a report out, and the rules
//!   on the fetch itself (address, status, redirects, speed).
//! - [`media`]: the rules on the body: exact type, bytes, size.
//! - [`caching`]: the rules on `Cache-Control`, `Last-Modified` and `ETag` (§2's table).
//! - [`report`]: what is found ([`Level`](report::Level), [`Check`](report::Check),
//!   [`Caching`](report::Caching)), the verdict, and the report as text and JSON.

mod caching;
mod evaluate;
mod fetch;
mod media;
mod report;

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use reqwest::Url;

use evaluate::evaluate;
use fetch::fetch;

/// The User-Agent sent by default. Meta does not document its fetcher's; this is the value
/// reported for it (WHATSAPP_MEDIA.md §2, unverified).
pub const DEFAULT_USER_AGENT: &str = "facebookexternalua";

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_urls() {
        assert!(parse_url("https://media.example.com/a.jpg").is_ok());
        assert!(parse_url("ftp://media.example.com/a.jpg").is_err());
        assert!(parse_url("media.example.com/a.jpg").is_err());
    }
}
