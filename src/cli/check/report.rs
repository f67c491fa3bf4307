//! What `check` finds and how it says it: one [`Check`] per rule, each with a [`Level`] and a
//! one-line reason citing WHATSAPP_MEDIA.md, what Meta will do about caching ([`Caching`]), and
//! the [`Report`] on one URL with its verdict, printed as text or as one JSON object. The rules
//! themselves live in the modules that know their subject; this is the vocabulary they share,
//! so the output's shape is decided in one place.

use serde::Serialize;
use serde_json::{Value, json};

use super::fetch::Hop;
use crate::media_kind::Kind;
use crate::policy::CachePolicy;

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

pub(super) fn check(name: &'static str, level: Level, message: impl Into<String>) -> Check {
    Check {
        name,
        level,
        message: message.into(),
    }
}

/// The one-line conclusion: the first failure that stops the send, else how Meta caches.
pub(super) fn verdict(report: &Report) -> String {
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

    fn report(
        checks: &[(&'static str, Level)],
        kind: Option<Kind>,
        caching: Option<Caching>,
    ) -> Report {
        Report {
            url: "https://media.example.com/a.jpg".to_owned(),
            final_url: None,
            hops: Vec::new(),
            status: None,
            content_type: None,
            bytes: None,
            sha256: None,
            kind,
            caching,
            checks: checks
                .iter()
                .map(|&(name, level)| check(name, level, format!("{name} says why")))
                .collect(),
            verdict: String::new(),
        }
    }

    #[test]
    fn a_failed_fetch_is_named_before_refused_bytes_whatever_the_order() {
        use Level::{Fail, Ok};
        let r = report(
            &[("bytes", Fail), ("cache-control", Fail), ("status", Fail)],
            None,
            Some(Caching::For(60)),
        );
        assert_eq!(
            verdict(&r),
            "Meta will fail to fetch this: status: status says why"
        );
        let r = report(
            &[
                ("status", Ok),
                ("cache-control", Fail),
                ("size", Fail),
                ("bytes", Fail),
            ],
            None,
            Some(Caching::For(60)),
        );
        assert_eq!(verdict(&r), "Meta will refuse this: size: size says why");
    }

    #[test]
    fn otherwise_the_verdict_is_how_meta_caches() {
        use Level::{Fail, Ok, Warn};
        let image = Some(Kind::Image);
        let cases = [
            (
                Some(Caching::For(0)),
                "Meta can use this image; it will not reuse it (max-age=0): every send fetches it",
            ),
            (
                Some(Caching::For(60)),
                "Meta can use this image; it will cache it for 60 s",
            ),
            (
                Some(Caching::UntilLastModifiedChanges),
                "Meta can use this image; it may cache it, and refreshes it when Last-Modified changes",
            ),
            (
                Some(Caching::NotCached(CachePolicy::Private)),
                "Meta can use this image; it will not cache it (private, as declared): every send fetches it",
            ),
            (None, "Meta can use this image"),
        ];
        for (caching, expected) in cases {
            let r = report(&[("cache-control", Ok), ("speed", Warn)], image, caching);
            assert_eq!(verdict(&r), expected);
        }
        // A failed caching check does not stop the send: the asset is usable, not as declared.
        let r = report(
            &[("cache-control", Fail)],
            None,
            Some(Caching::Undeclared("the reason".to_owned())),
        );
        assert_eq!(
            verdict(&r),
            "Meta can use this asset, but will not cache it as declared: the reason"
        );
    }

    #[test]
    fn a_warned_cache_control_is_an_assumption_except_for_an_etag_alone() {
        let warned = [("cache-control", Level::Warn)];
        let r = report(&warned, Some(Kind::Video), Some(Caching::For(60)));
        assert_eq!(
            verdict(&r),
            "Meta can use this video; it will cache it for 60 s (assuming it reads the one \
             documented directive among several in Cache-Control)"
        );
        // With only an ETag the warning is about Meta's own logic, not a reading of a list.
        let r = report(&warned, Some(Kind::Video), Some(Caching::Undisclosed));
        assert_eq!(
            verdict(&r),
            "Meta can use this video; with only an ETag it caches it by its own undisclosed \
             logic, for a time no one can know"
        );
    }
}
