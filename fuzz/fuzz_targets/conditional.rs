//! Precondition evaluation: `conditional::evaluate(&Conditions, &Validators, is_get)` with
//! arbitrary header values and validators.
//!
//! The input is text, one `name: value` per line, so the corpus reads like requests:
//!
//! ```text
//! method: GET
//! etag: "abc"
//! last-modified: 784111777
//! len: 1000
//! if-none-match: "x", W/{etag}
//! if-modified-since: {lm+1}
//! range: bytes=0-99
//! if-range: {etag}
//! ```
//!
//! `{etag}`, `{lm}`, `{lm-1}`, `{lm+1}` and `{len}` stand for the representation's current
//! values, so the fuzzer reaches every branch of RFC 9110 §13.2.2 without having to guess a
//! 64-hex-digit tag or the exact date. Missing lines take defaults (GET, the store's kind of
//! strong tag, Sun, 06 Nov 1994 08:49:37 GMT, 1000 bytes).
//!
//! Invariants (what `evaluate`'s documentation guarantees):
//! * no panic;
//! * a `206` range lies in the representation (`start <= end < len`), and `206`/`416` only
//!   answer a `GET` that carried `Range`;
//! * a present but malformed `If-Match` is a `412`;
//! * `If-None-Match: *` is a `304` unless step 1/2 (`If-Match`, else `If-Unmodified-Since`)
//!   already failed;
//! * with no preconditions at all, the answer is the `Range` outcome for a `GET` and `200` for
//!   a `HEAD`;
//! * the whole answer equals a plain model of the five documented steps, built only from the
//!   module's public parsers (`parse_etag_list`, `parse_http_date`, `parse_range`).

#![no_main]

use libfuzzer_sys::fuzz_target;
use media_origin::http::conditional::{
    Conditions, EntityTag, EtagList, Outcome, RangeRequest, Validators, evaluate, parse_etag_list,
    parse_http_date, parse_range,
};

/// The store's kind of entity tag: the quoted SHA-256 of the content.
const SHA: &str = "\"3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b\"";
/// Sun, 06 Nov 1994 08:49:37 GMT.
const LM: u64 = 784_111_777;
/// Years past 9999 have no HTTP-date.
const LAST_HTTP_DATE: u64 = 253_402_300_799;

/// One request against one representation, parsed from the input text.
struct Case {
    is_get: bool,
    etag: String,
    last_modified: u64,
    len: u64,
    /// If-Match, If-Unmodified-Since, If-None-Match, If-Modified-Since, Range, If-Range.
    headers: [Option<String>; 6],
}

const NAMES: [&str; 6] = [
    "if-match",
    "if-unmodified-since",
    "if-none-match",
    "if-modified-since",
    "range",
    "if-range",
];

/// `max`, `max-N` or a decimal number.
fn number(s: &str) -> Option<u64> {
    match s.strip_prefix("max") {
        Some("") => Some(u64::MAX),
        Some(rest) => rest
            .strip_prefix('-')?
            .parse::<u64>()
            .ok()
            .map(|n| u64::MAX.saturating_sub(n)),
        None => s.parse().ok(),
    }
}

fn date(secs: u64) -> String {
    media_origin::clock::http_date(secs.min(LAST_HTTP_DATE))
}

impl Case {
    /// Lines of `name: value`; a repeated header is joined with `", "` as the caller does.
    /// `method`, `etag`, `last-modified` (seconds) and `len` describe the representation; in
    /// header values `{etag}`, `{lm}`, `{lm-1}`, `{lm+1}` and `{len}` stand for its current
    /// values, so a seed can name "the current tag" or "Last-Modified plus a second".
    fn parse(text: &str) -> Self {
        let mut case = Case {
            is_get: true,
            etag: SHA.to_owned(),
            last_modified: LM,
            len: 1000,
            headers: Default::default(),
        };
        let lines: Vec<(String, &str)> = text
            .split('\n')
            .filter_map(|line| {
                let (name, value) = line.split_once(':')?;
                Some((
                    name.trim().to_ascii_lowercase(),
                    value.strip_prefix(' ').unwrap_or(value),
                ))
            })
            .collect();
        for (name, value) in &lines {
            match name.as_str() {
                "method" => case.is_get = !value.trim().eq_ignore_ascii_case("head"),
                "etag" => case.etag = (*value).to_owned(),
                "last-modified" => case.last_modified = number(value.trim()).unwrap_or(LM),
                "len" => case.len = number(value.trim()).unwrap_or(1000),
                _ => {}
            }
        }
        for (name, value) in &lines {
            if let Some(i) = NAMES.iter().position(|n| n == name) {
                let value = case.expand(value);
                case.headers[i] = Some(match case.headers[i].take() {
                    Some(before) => format!("{before}, {value}"),
                    None => value,
                });
            }
        }
        case
    }

    fn expand(&self, value: &str) -> String {
        if !value.contains('{') {
            return value.to_owned();
        }
        value
            .replace("{etag}", &self.etag)
            .replace("{lm}", &date(self.last_modified))
            .replace("{lm-1}", &date(self.last_modified.saturating_sub(1)))
            .replace("{lm+1}", &date(self.last_modified.saturating_add(1)))
            .replace("{len}", &self.len.to_string())
    }
}

/// `parse_entity_tag` (not public) through the public list parser: a single tag that is the
/// whole (OWS-trimmed) value.
fn one_tag(value: &str) -> Option<EntityTag<'_>> {
    let trimmed = value.trim_matches([' ', '\t']);
    match parse_etag_list(value)? {
        EtagList::Tags(tags) if tags.len() == 1 => {
            let t = tags[0];
            let exact = format!("{}\"{}\"", if t.weak { "W/" } else { "" }, t.opaque);
            (exact == trimmed).then_some(t)
        }
        _ => None,
    }
}

fn strong_eq(a: &EntityTag<'_>, b: &EntityTag<'_>) -> bool {
    !a.weak && !b.weak && a.opaque == b.opaque
}

/// `evaluate` as its documentation states the five steps.
fn model(c: &Conditions<'_>, v: &Validators<'_>, is_get: bool) -> Outcome {
    let current = one_tag(v.etag);
    // 1. If-Match.
    if let Some(im) = c.if_match {
        let pass = match parse_etag_list(im) {
            Some(EtagList::Any) => true,
            Some(EtagList::Tags(tags)) => {
                current.is_some_and(|cur| tags.iter().any(|t| strong_eq(t, &cur)))
            }
            None => false,
        };
        if !pass {
            return Outcome::PreconditionFailed;
        }
    } else if let Some(d) = c.if_unmodified_since.and_then(parse_http_date) {
        // 2. If-Unmodified-Since, only without If-Match.
        if v.last_modified > d {
            return Outcome::PreconditionFailed;
        }
    }
    // 3. If-None-Match (malformed = absent); 4. If-Modified-Since only without it.
    match c.if_none_match.and_then(parse_etag_list) {
        Some(EtagList::Any) => return Outcome::NotModified,
        Some(EtagList::Tags(tags)) => {
            if current.is_some_and(|cur| tags.iter().any(|t| t.opaque == cur.opaque)) {
                return Outcome::NotModified;
            }
        }
        None => {
            if let Some(d) = c.if_modified_since.and_then(parse_http_date)
                && v.last_modified <= d
            {
                return Outcome::NotModified;
            }
        }
    }
    // 5. Range, GET only, If-Range first.
    if !is_get {
        return Outcome::Full;
    }
    let Some(range) = c.range else {
        return Outcome::Full;
    };
    if let Some(ir) = c.if_range {
        let ir = ir.trim_matches([' ', '\t']);
        let matches = if ir.starts_with('"') || ir.starts_with("W/") {
            matches!((one_tag(ir), current), (Some(t), Some(cur)) if strong_eq(&t, &cur))
        } else {
            parse_http_date(ir) == Some(v.last_modified)
        };
        if !matches {
            return Outcome::Full;
        }
    }
    match parse_range(range, v.len) {
        RangeRequest::Ignore => Outcome::Full,
        RangeRequest::Single { start, end } => Outcome::Partial { start, end },
        RangeRequest::Unsatisfiable => Outcome::Unsatisfiable,
    }
}

fuzz_target!(|data: &[u8]| {
    let case = Case::parse(&String::from_utf8_lossy(data));
    let [im, ius, inm, ims, range, ir] = &case.headers;
    let c = Conditions {
        if_match: im.as_deref(),
        if_unmodified_since: ius.as_deref(),
        if_none_match: inm.as_deref(),
        if_modified_since: ims.as_deref(),
        range: range.as_deref(),
        if_range: ir.as_deref(),
    };
    let v = Validators {
        etag: &case.etag,
        last_modified: case.last_modified,
        len: case.len,
    };
    let (etag, lm, len) = (&case.etag, case.last_modified, case.len);
    let out = evaluate(&c, &v, case.is_get);

    match out {
        Outcome::Partial { start, end } => {
            assert!(
                case.is_get && c.range.is_some(),
                "206 without GET + Range: {c:?}"
            );
            assert!(
                start <= end && end < len,
                "206 {start}-{end} of {len}: {c:?}"
            );
        }
        Outcome::Unsatisfiable => {
            assert!(
                case.is_get && c.range.is_some(),
                "416 without GET + Range: {c:?}"
            );
        }
        _ => {}
    }
    if let Some(im) = c.if_match
        && parse_etag_list(im).is_none()
    {
        assert_eq!(
            out,
            Outcome::PreconditionFailed,
            "malformed If-Match {im:?} passed"
        );
    }
    if c.if_none_match.map(|s| s.trim_matches([' ', '\t'])) == Some("*") {
        let step_1_2_fails = match c.if_match {
            Some(im) => match parse_etag_list(im) {
                Some(EtagList::Any) => false,
                Some(EtagList::Tags(tags)) => {
                    !one_tag(etag).is_some_and(|cur| tags.iter().any(|t| strong_eq(t, &cur)))
                }
                None => true,
            },
            None => c
                .if_unmodified_since
                .and_then(parse_http_date)
                .is_some_and(|d| lm > d),
        };
        let want = if step_1_2_fails {
            Outcome::PreconditionFailed
        } else {
            Outcome::NotModified
        };
        assert_eq!(out, want, "If-None-Match: * with {c:?}");
    }
    let no_preconditions = c.if_match.is_none()
        && c.if_unmodified_since.is_none()
        && c.if_none_match.is_none()
        && c.if_modified_since.is_none();
    if no_preconditions && (c.if_range.is_none() || !case.is_get) {
        let want = match (case.is_get, c.range) {
            (true, Some(range)) => match parse_range(range, len) {
                RangeRequest::Ignore => Outcome::Full,
                RangeRequest::Single { start, end } => Outcome::Partial { start, end },
                RangeRequest::Unsatisfiable => Outcome::Unsatisfiable,
            },
            _ => Outcome::Full,
        };
        assert_eq!(out, want, "no preconditions: {c:?}");
    }
    assert_eq!(
        out,
        model(&c, &v, case.is_get),
        "{c:?} {v:?} get={}",
        case.is_get
    );
});
