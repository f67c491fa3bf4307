//! Conditional requests (RFC 9110 §13) and byte ranges (RFC 9110 §14) for a
//! public `GET`/`HEAD` of a stored asset.
//!
//! # Why this is a module of its own
//!
//! * **Pure.** Everything here takes header values as `&str` plus what the
//!   server knows about the stored representation ([`Validators`]) and
//!   returns an [`Outcome`]. There are no HTTP framework types, no I/O and no
//!   clock, so the caller only has to turn the outcome into a status line
//!   and headers.
//! * **Exhaustively testable.** The precedence rules of RFC 9110 §13.2.2
//!   interact in subtle ways (If-Match beats If-None-Match, If-None-Match
//!   beats If-Modified-Since, 304 beats Range, ...). With no server in the
//!   way every combination can be unit- and property-tested cheaply.
//! * **The same for every storage backend.** Whether bytes come from local
//!   disk, an object store or a cache, the decision "200, 206, 304, 412 or
//!   416" depends only on the entity tag, the modification time and the
//!   length, so it lives in one place instead of being re-implemented (and
//!   subtly diverging) per backend.
//! * **Fuzzable later.** Every public function accepts arbitrary strings
//!   and never panics, which makes them direct fuzz targets.
//!
//! # Decisions where RFC 9110 leaves room
//!
//! * A request with more than one range-spec is answered with the whole
//!   representation (`200`) instead of `multipart/byteranges`; RFC 9110
//!   §14.2 allows a server to ignore `Range`.
//! * A syntactically invalid `Range` (unknown unit, garbage, `first > last`)
//!   is ignored rather than rejected (RFC 9110 §14.2: a server "MAY ignore
//!   or reject" an invalid ranges-specifier).
//! * A malformed `If-Match` cannot be satisfied and yields `412`; a
//!   malformed `If-None-Match` is treated as absent.

use std::time::UNIX_EPOCH;

/// What the server knows about the current representation.
#[derive(Debug, Clone, Copy)]
pub struct Validators<'a> {
    /// Entity tag, quoted, e.g. `"\"3a7bd3e2...\""` (the server's are always strong).
    ///
    /// `If-Match` and `If-Range` compare it strongly and `If-None-Match` weakly, as
    /// RFC 9110 §13.1 says; a value that is not a well-formed entity tag matches no tag in
    /// any request header (only `If-Match: *` and `If-None-Match: *` still apply).
    pub etag: &'a str,
    /// `etag` as an entity tag, `None` when it is not a well-formed one. [`Validators::new`]
    /// parses it; a caller that answers many requests with one tag keeps it parsed (the
    /// public handler does, with the cached representation), so that no request scans it again.
    pub current: Option<EntityTag<'a>>,
    /// Last-Modified, whole seconds since the epoch.
    pub last_modified: u64,
    /// Representation length in bytes.
    pub len: u64,
}

impl<'a> Validators<'a> {
    /// The validators of a representation, `etag` parsed here.
    pub fn new(etag: &'a str, last_modified: u64, len: u64) -> Self {
        Self {
            etag,
            current: parse_entity_tag(etag),
            last_modified,
            len,
        }
    }
}

/// Conditional and range header values as received (`None` when absent).
/// When a header occurs several times the caller joins the values with
/// `", "` (RFC 9110 §5.3).
#[derive(Debug, Clone, Copy, Default)]
pub struct Conditions<'a> {
    /// `If-Match` (RFC 9110 §13.1.1).
    pub if_match: Option<&'a str>,
    /// `If-Unmodified-Since` (RFC 9110 §13.1.4).
    pub if_unmodified_since: Option<&'a str>,
    /// `If-None-Match` (RFC 9110 §13.1.2).
    pub if_none_match: Option<&'a str>,
    /// `If-Modified-Since` (RFC 9110 §13.1.3).
    pub if_modified_since: Option<&'a str>,
    /// `Range` (RFC 9110 §14.2).
    pub range: Option<&'a str>,
    /// `If-Range` (RFC 9110 §13.1.5).
    pub if_range: Option<&'a str>,
}

/// What the caller should answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// 200 with the whole representation.
    Full,
    /// 304.
    NotModified,
    /// 412.
    PreconditionFailed,
    /// 206 with bytes `start..=end` (inclusive, `end < len`).
    Partial {
        /// First byte offset, inclusive.
        start: u64,
        /// Last byte offset, inclusive; always `< len`.
        end: u64,
    },
    /// 416; the caller sends `Content-Range: bytes */len`.
    Unsatisfiable,
}

/// Result of parsing a `Range` header against a representation length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// Absent in effect: malformed, an unknown unit, or more than one
    /// range-spec. The caller sends the whole representation.
    Ignore,
    /// One satisfiable range, bytes `start..=end` with `start <= end < len`.
    Single {
        /// First byte offset, inclusive.
        start: u64,
        /// Last byte offset, inclusive; always `< len`.
        end: u64,
    },
    /// A well-formed single range that cannot be satisfied (416).
    Unsatisfiable,
}

/// One entity tag (RFC 9110 §8.8.3): `[W/] DQUOTE *etagc DQUOTE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntityTag<'a> {
    /// `true` for a weak tag (`W/"..."`).
    pub weak: bool,
    /// The opaque tag's characters, *without* the surrounding quotes.
    pub opaque: &'a str,
}

/// A parsed `If-Match` / `If-None-Match` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EtagList<'a> {
    /// `*`: any current representation.
    Any,
    /// One or more entity tags, in the order received.
    Tags(Vec<EntityTag<'a>>),
}

impl EntityTag<'_> {
    /// Strong comparison (RFC 9110 §8.8.3.2): both strong, opaque tags equal.
    fn strong_eq(&self, other: &EntityTag<'_>) -> bool {
        !self.weak && !other.weak && self.opaque == other.opaque
    }

    /// Weak comparison (RFC 9110 §8.8.3.2): opaque tags equal, weakness
    /// ignored.
    fn weak_eq(&self, other: &EntityTag<'_>) -> bool {
        self.opaque == other.opaque
    }
}

/// Evaluate the conditional and range headers for `GET`
/// (`ranges_apply = true`) or `HEAD` (`ranges_apply = false`).
///
/// Preconditions are evaluated in the order of RFC 9110 §13.2.2:
///
/// 1. `If-Match` (§13.1.1): `*` passes; otherwise strong comparison against
///    the current entity tag; no match or a malformed value → 412.
/// 2. Only when `If-Match` is absent, `If-Unmodified-Since` (§13.1.4):
///    modified after the date → 412; an invalid date is ignored.
/// 3. `If-None-Match` (§13.1.2): `*` or a weak match → 304; a malformed
///    value counts as absent.
/// 4. Only when `If-None-Match` is absent, `If-Modified-Since` (§13.1.3):
///    not modified since the date → 304; an invalid date is ignored.
/// 5. Only for `GET` (§14.2 defines `Range` for `GET` only, so `HEAD`
///    ignores `Range` and `If-Range`): when `If-Range` (§13.1.5) is present
///    and does not match, the range is ignored; otherwise `Range` is parsed
///    with [`parse_range`].
#[must_use]
pub fn evaluate(c: &Conditions<'_>, v: &Validators<'_>, ranges_apply: bool) -> Outcome {
    if let Some(outcome) = evaluate_preconditions(c, v) {
        return outcome;
    }
    if !ranges_apply {
        return Outcome::Full;
    }
    // §13.1.5: If-Range without Range is ignored, so only look at it here.
    let Some(range) = c.range else {
        return Outcome::Full;
    };
    if let Some(if_range) = c.if_range
        && !if_range_matches(if_range, v)
    {
        return Outcome::Full;
    }
    match parse_range(range, v.len) {
        RangeRequest::Ignore => Outcome::Full,
        RangeRequest::Single { start, end } => Outcome::Partial { start, end },
        RangeRequest::Unsatisfiable => Outcome::Unsatisfiable,
    }
}

/// Steps 1–4 of RFC 9110 §13.2.2. `None` means "all preconditions passed".
fn evaluate_preconditions(c: &Conditions<'_>, v: &Validators<'_>) -> Option<Outcome> {
    let current = v.current;

    // Step 1 / 2.
    if let Some(if_match) = c.if_match {
        // §13.1.1: "*" is true when a current representation exists, which
        // it does (we are serving it); a list needs a strong match. A value
        // that does not parse can never be true.
        let passes = match parse_etag_list(if_match) {
            Some(EtagList::Any) => true,
            Some(EtagList::Tags(tags)) => {
                current.is_some_and(|cur| tags.iter().any(|t| t.strong_eq(&cur)))
            }
            None => false,
        };
        if !passes {
            return Some(Outcome::PreconditionFailed);
        }
    } else if let Some(date) = c.if_unmodified_since.and_then(parse_http_date) {
        // §13.1.4: false when the representation was modified after the date.
        if v.last_modified > date {
            return Some(Outcome::PreconditionFailed);
        }
    }

    // Step 3 / 4. A revalidation usually sends back exactly the tag it was given: that is a
    // match (a valid tag weakly equals itself) without parsing a list.
    if current.is_some() && c.if_none_match == Some(v.etag) {
        return Some(Outcome::NotModified);
    }
    // A malformed If-None-Match is treated as absent.
    match c.if_none_match.and_then(parse_etag_list) {
        Some(list) => {
            // §13.1.2: false ("not modified") on "*" or any weak match.
            let matched = match list {
                EtagList::Any => true,
                EtagList::Tags(tags) => {
                    current.is_some_and(|cur| tags.iter().any(|t| t.weak_eq(&cur)))
                }
            };
            if matched {
                // §13.2.2 step 3: 304 for GET and HEAD.
                return Some(Outcome::NotModified);
            }
        }
        None => {
            if let Some(date) = c.if_modified_since.and_then(parse_http_date) {
                // §13.1.3: false when not modified after the date.
                if v.last_modified <= date {
                    return Some(Outcome::NotModified);
                }
            }
        }
    }
    None
}

/// RFC 9110 §13.1.5: an entity tag must match strongly (a weak tag never
/// matches), an HTTP-date must equal Last-Modified exactly. Anything else
/// (including an invalid value) is false, i.e. the range is not applied.
fn if_range_matches(value: &str, v: &Validators<'_>) -> bool {
    let value = trim_ows(value);
    if value.starts_with('"') || value.starts_with("W/") {
        match (parse_entity_tag(value), v.current) {
            (Some(tag), Some(current)) => tag.strong_eq(&current),
            _ => false,
        }
    } else {
        parse_http_date(value) == Some(v.last_modified)
    }
}

/// Parse a `Range` header (RFC 9110 §14.1.2, §14.2) against a length.
///
/// Grammar accepted: `bytes` (case-insensitive) `=` followed by a
/// comma-separated list in which optional whitespace around items and empty
/// items are allowed (the `#` rule, RFC 9110 §5.6.1). Exactly one non-empty
/// item must remain, of the form `first-last`, `first-` or `-suffix`, with
/// digits only.
///
/// * Malformed values, other units, `first > last`, and more than one
///   range-spec → [`RangeRequest::Ignore`].
/// * `first` and `suffix` that overflow `u64` → [`RangeRequest::Ignore`].
///   A `last` that overflows `u64` saturates to `u64::MAX` (it is clamped to
///   `len - 1` anyway), because clients do send "to the end" as a huge
///   number.
/// * Satisfiability (§14.1.1): `first < len` for `first-last`/`first-`;
///   `suffix > 0` and `len > 0` for `-suffix`. With `len == 0` nothing is
///   satisfiable. `last` is clamped to `len - 1`; a suffix at least as long
///   as the representation selects all of it.
#[must_use]
pub fn parse_range(header: &str, len: u64) -> RangeRequest {
    let Some(spec) = parse_range_specifier(header) else {
        return RangeRequest::Ignore;
    };
    if len == 0 {
        return RangeRequest::Unsatisfiable;
    }
    let last = len - 1;
    match spec {
        RangeSpec::FromTo(first, end) if first < len => RangeRequest::Single {
            start: first,
            end: end.min(last),
        },
        RangeSpec::From(first) if first < len => RangeRequest::Single {
            start: first,
            end: last,
        },
        RangeSpec::Suffix(n) if n > 0 => RangeRequest::Single {
            start: len - n.min(len),
            end: last,
        },
        _ => RangeRequest::Unsatisfiable,
    }
}

/// One syntactically valid byte range-spec (RFC 9110 §14.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RangeSpec {
    /// `first-last`, with `first <= last`.
    FromTo(u64, u64),
    /// `first-`.
    From(u64),
    /// `-suffix`.
    Suffix(u64),
}

/// `ranges-specifier = range-unit "=" range-set`, restricted to the `bytes`
/// unit and exactly one range-spec.
fn parse_range_specifier(header: &str) -> Option<RangeSpec> {
    let (unit, set) = trim_ows(header).split_once('=')?;
    // §14.1: range units are compared case-insensitively.
    if !unit.eq_ignore_ascii_case("bytes") {
        return None;
    }
    let mut items = set.split(',').map(trim_ows).filter(|s| !s.is_empty());
    let only = items.next()?;
    if items.next().is_some() {
        return None;
    }
    parse_range_spec(only)
}

/// `int-range = first-pos "-" [ last-pos ]` / `suffix-range = "-" suffix-length`.
fn parse_range_spec(item: &str) -> Option<RangeSpec> {
    let (first, last) = item.split_once('-')?;
    if first.is_empty() {
        return parse_u64_checked(last).map(RangeSpec::Suffix);
    }
    let first = parse_u64_checked(first)?;
    if last.is_empty() {
        return Some(RangeSpec::From(first));
    }
    let last = parse_u64_saturating(last)?;
    // §14.1.1: first-pos > last-pos makes the range-set invalid.
    (first <= last).then_some(RangeSpec::FromTo(first, last))
}

/// `1*DIGIT` to `u64`, `None` on anything else or overflow. (`str::parse`
/// would also accept a leading `+`.)
fn parse_u64_checked(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.bytes().try_fold(0u64, |acc, b| {
        acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

/// `1*DIGIT` to `u64`, saturating at `u64::MAX`; `None` on non-digits.
fn parse_u64_saturating(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.bytes().fold(0u64, |acc, b| {
        acc.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    }))
}

/// Parse an entity-tag list: `"*"` or `1#entity-tag` (the field values of
/// `If-Match`, RFC 9110 §13.1.1, and `If-None-Match`, §13.1.2).
///
/// Whitespace around items and empty items are accepted (RFC 9110 §5.6.1).
/// Commas may occur inside an opaque tag, so the list is scanned rather
/// than split. `W/` is case-sensitive (§8.8.3). Returns `None` for an empty
/// list, `*` combined with anything else, or any malformed tag.
#[must_use]
pub fn parse_etag_list(value: &str) -> Option<EtagList<'_>> {
    let value = trim_ows(value);
    if value == "*" {
        return Some(EtagList::Any);
    }
    let bytes = value.as_bytes();
    let mut tags = Vec::new();
    let mut pos = 0;
    loop {
        // Skip OWS and empty list elements.
        while pos < bytes.len() && matches!(bytes[pos], b' ' | b'\t' | b',') {
            pos += 1;
        }
        if pos == bytes.len() {
            break;
        }
        let (tag, next) = scan_entity_tag(value, pos)?;
        tags.push(tag);
        pos = next;
        while pos < bytes.len() && matches!(bytes[pos], b' ' | b'\t') {
            pos += 1;
        }
        match bytes.get(pos) {
            None => break,
            Some(b',') => {}
            Some(_) => return None,
        }
    }
    if tags.is_empty() {
        None
    } else {
        Some(EtagList::Tags(tags))
    }
}

/// Parse exactly one entity tag (surrounding whitespace allowed).
pub fn parse_entity_tag(value: &str) -> Option<EntityTag<'_>> {
    let value = trim_ows(value);
    match scan_entity_tag(value, 0)? {
        (tag, end) if end == value.len() => Some(tag),
        _ => None,
    }
}

/// Scan `entity-tag = [ weak ] opaque-tag` (RFC 9110 §8.8.3) starting at
/// byte `pos`; returns the tag and the byte position just after it.
fn scan_entity_tag(value: &str, pos: usize) -> Option<(EntityTag<'_>, usize)> {
    let bytes = value.as_bytes();
    let mut i = pos;
    let weak = bytes[i..].starts_with(b"W/");
    if weak {
        i += 2;
    }
    if bytes.get(i) != Some(&b'"') {
        return None;
    }
    let open = i + 1;
    let len = bytes[open..].iter().position(|&b| !is_etagc(b))?;
    let close = open + len;
    if bytes[close] != b'"' {
        return None;
    }
    // Slicing at ASCII quote positions is always on a char boundary.
    let opaque = &value[open..close];
    Some((EntityTag { weak, opaque }, close + 1))
}

/// `etagc = %x21 / %x23-7E / obs-text` (RFC 9110 §8.8.3).
fn is_etagc(b: u8) -> bool {
    b == 0x21 || (0x23..=0x7e).contains(&b) || b >= 0x80
}

/// Parse an HTTP-date (RFC 9110 §5.6.7: IMF-fixdate, and the obsolete
/// RFC 850 and asctime forms) to whole seconds since the epoch; `None` if
/// invalid. Surrounding whitespace is ignored.
#[must_use]
pub fn parse_http_date(value: &str) -> Option<u64> {
    let time = httpdate::parse_http_date(trim_ows(value)).ok()?;
    Some(time.duration_since(UNIX_EPOCH).ok()?.as_secs())
}

/// Strip optional whitespace (`OWS = *( SP / HTAB )`, RFC 9110 §5.6.3).
fn trim_ows(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

#[cfg(test)]
mod tests {
    use super::*;
    use Outcome::{Full, NotModified, Partial, PreconditionFailed};
    use proptest::prelude::*;

    const ETAG: &str = "\"abc\"";
    /// Sun, 06 Nov 1994 08:49:37 GMT
    const LM: u64 = 784_111_777;
    const LM_DATE: &str = "Sun, 06 Nov 1994 08:49:37 GMT";
    const BEFORE: &str = "Sun, 06 Nov 1994 08:49:36 GMT";
    const AFTER: &str = "Sun, 06 Nov 1994 08:49:38 GMT";
    const LEN: u64 = 1000;

    fn v() -> Validators<'static> {
        Validators::new(ETAG, LM, LEN)
    }

    fn get(c: Conditions<'_>) -> Outcome {
        evaluate(&c, &v(), true)
    }

    fn head(c: Conditions<'_>) -> Outcome {
        evaluate(&c, &v(), false)
    }

    fn tag(weak: bool, opaque: &str) -> EntityTag<'_> {
        EntityTag { weak, opaque }
    }

    fn single(start: u64, end: u64) -> RangeRequest {
        RangeRequest::Single { start, end }
    }

    // ---- parse_http_date -------------------------------------------------

    #[test]
    fn http_date_forms() {
        assert_eq!(parse_http_date(LM_DATE), Some(LM));
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), Some(LM));
        assert_eq!(parse_http_date("Sun Nov  6 08:49:37 1994"), Some(LM));
        assert_eq!(
            parse_http_date(" Sun, 06 Nov 1994 08:49:37 GMT\t"),
            Some(LM)
        );
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(parse_http_date(BEFORE), Some(LM - 1));
        assert_eq!(parse_http_date(AFTER), Some(LM + 1));
    }

    #[test]
    fn http_date_invalid() {
        assert_eq!(parse_http_date(""), None);
        assert_eq!(parse_http_date("yesterday"), None);
        assert_eq!(parse_http_date("784111777"), None);
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT, Sun, 06 Nov 1994 08:49:37 GMT"),
            None
        );
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 25:49:37 GMT"), None);
    }

    // ---- parse_etag_list -------------------------------------------------

    #[test]
    fn etag_list_any() {
        assert_eq!(parse_etag_list("*"), Some(EtagList::Any));
        assert_eq!(parse_etag_list(" * "), Some(EtagList::Any));
        assert_eq!(parse_etag_list("*, \"a\""), None);
        assert_eq!(parse_etag_list("\"a\", *"), None);
        assert_eq!(parse_etag_list("**"), None);
    }

    #[test]
    fn etag_list_tags() {
        assert_eq!(
            parse_etag_list("\"a\""),
            Some(EtagList::Tags(vec![tag(false, "a")]))
        );
        assert_eq!(
            parse_etag_list("W/\"a\""),
            Some(EtagList::Tags(vec![tag(true, "a")]))
        );
        assert_eq!(
            parse_etag_list("\"\""),
            Some(EtagList::Tags(vec![tag(false, "")]))
        );
        assert_eq!(
            parse_etag_list("\"a\",W/\"b\" , \t\"c\""),
            Some(EtagList::Tags(vec![
                tag(false, "a"),
                tag(true, "b"),
                tag(false, "c")
            ]))
        );
        // Empty elements are skipped (#rule).
        assert_eq!(
            parse_etag_list(", \"a\",,, \"b\" ,"),
            Some(EtagList::Tags(vec![tag(false, "a"), tag(false, "b")]))
        );
        // Commas are legal inside an opaque tag.
        assert_eq!(
            parse_etag_list("\"a,b\""),
            Some(EtagList::Tags(vec![tag(false, "a,b")]))
        );
        // obs-text.
        assert_eq!(
            parse_etag_list("\"é\""),
            Some(EtagList::Tags(vec![tag(false, "é")]))
        );
    }

    #[test]
    fn etag_list_malformed() {
        for bad in [
            "",
            " ",
            ",",
            " , ,",
            "a",
            "\"a",
            "a\"",
            "W/a",
            "w/\"a\"",
            "W/ \"a\"",
            "\"a\" \"b\"",
            "\"a\"b",
            "\"a b\"",
            "\"a\tb\"",
            "\"a\x7fb\"",
            "\"a\x01\"",
            "\"a\", b",
            "\"a\",\"b",
            "W/",
            "W",
        ] {
            assert_eq!(parse_etag_list(bad), None, "{bad:?}");
        }
    }

    // ---- Step 1: If-Match --------------------------------------------------

    #[test]
    fn if_match() {
        let im = |s| {
            get(Conditions {
                if_match: Some(s),
                ..Default::default()
            })
        };
        assert_eq!(im("*"), Full);
        assert_eq!(im(ETAG), Full);
        assert_eq!(im("\"x\", \"abc\""), Full);
        assert_eq!(im("\"x\" ,\t\"abc\" ,"), Full);
        assert_eq!(im("\"x\""), PreconditionFailed);
        // Strong comparison: a weak tag never matches.
        assert_eq!(im("W/\"abc\""), PreconditionFailed);
        assert_eq!(im("W/\"abc\", \"x\""), PreconditionFailed);
        // Malformed: cannot be satisfied.
        assert_eq!(im("abc"), PreconditionFailed);
        assert_eq!(im(""), PreconditionFailed);
        assert_eq!(im("\"abc"), PreconditionFailed);
    }

    #[test]
    fn if_match_weak_current_etag_never_matches() {
        let weak = Validators::new("W/\"abc\"", LM, LEN);
        let c = Conditions {
            if_match: Some("W/\"abc\""),
            ..Default::default()
        };
        assert_eq!(evaluate(&c, &weak, true), PreconditionFailed);
        let c = Conditions {
            if_match: Some("*"),
            ..Default::default()
        };
        assert_eq!(evaluate(&c, &weak, true), Full);
    }

    #[test]
    fn malformed_current_etag_matches_nothing() {
        let bad = Validators::new("abc", LM, LEN);
        let c = Conditions {
            if_match: Some("\"abc\""),
            ..Default::default()
        };
        assert_eq!(evaluate(&c, &bad, true), PreconditionFailed);
        let c = Conditions {
            if_none_match: Some("\"abc\""),
            ..Default::default()
        };
        assert_eq!(evaluate(&c, &bad, true), Full);
        let c = Conditions {
            if_none_match: Some("*"),
            ..Default::default()
        };
        assert_eq!(evaluate(&c, &bad, true), NotModified);
    }

    // ---- Step 2: If-Unmodified-Since ---------------------------------------

    #[test]
    fn if_unmodified_since() {
        let ius = |s| {
            get(Conditions {
                if_unmodified_since: Some(s),
                ..Default::default()
            })
        };
        assert_eq!(ius(LM_DATE), Full);
        assert_eq!(ius(AFTER), Full);
        assert_eq!(ius(BEFORE), PreconditionFailed);
        // Invalid date: ignored.
        assert_eq!(ius("not a date"), Full);
        assert_eq!(ius(""), Full);
    }

    #[test]
    fn if_unmodified_since_ignored_when_if_match_present() {
        let c = Conditions {
            if_match: Some(ETAG),
            if_unmodified_since: Some(BEFORE),
            ..Default::default()
        };
        assert_eq!(get(c), Full);
        let c = Conditions {
            if_match: Some("*"),
            if_unmodified_since: Some(BEFORE),
            ..Default::default()
        };
        assert_eq!(get(c), Full);
        // And If-Match failing still fails regardless of a passing IUS.
        let c = Conditions {
            if_match: Some("\"x\""),
            if_unmodified_since: Some(AFTER),
            ..Default::default()
        };
        assert_eq!(get(c), PreconditionFailed);
    }

    // ---- Step 3: If-None-Match ---------------------------------------------

    #[test]
    fn if_none_match() {
        let inm = |s| {
            get(Conditions {
                if_none_match: Some(s),
                ..Default::default()
            })
        };
        assert_eq!(inm("*"), NotModified);
        assert_eq!(inm(ETAG), NotModified);
        // Weak comparison: W/"abc" matches "abc".
        assert_eq!(inm("W/\"abc\""), NotModified);
        assert_eq!(inm("\"x\", W/\"abc\""), NotModified);
        assert_eq!(inm("  \"x\" ,  \"abc\"  "), NotModified);
        assert_eq!(inm("\"x\""), Full);
        assert_eq!(inm("\"x\", W/\"y\""), Full);
        assert_eq!(inm("\"ABC\""), Full);
        // Malformed: ignored.
        assert_eq!(inm("abc"), Full);
        assert_eq!(inm(""), Full);
    }

    #[test]
    fn if_none_match_weak_current_etag_matches_weakly() {
        let weak = Validators::new("W/\"abc\"", LM, LEN);
        let c = Conditions {
            if_none_match: Some("\"abc\""),
            ..Default::default()
        };
        assert_eq!(evaluate(&c, &weak, true), NotModified);
        // The same weak tag sent back byte for byte (the exact-copy shortcut) matches too.
        let c = Conditions {
            if_none_match: Some("W/\"abc\""),
            ..Default::default()
        };
        assert_eq!(evaluate(&c, &weak, true), NotModified);
    }

    #[test]
    fn an_exact_copy_of_a_malformed_current_tag_is_no_match() {
        // The shortcut for an If-None-Match equal to the ETag needs the ETag to be a tag: a
        // malformed one (never ours) matches nothing, copied or not, as the list parse says.
        let bad = Validators::new("abc", LM, LEN);
        let c = Conditions {
            if_none_match: Some("abc"),
            ..Default::default()
        };
        assert_eq!(evaluate(&c, &bad, true), Full);
    }

    #[test]
    fn if_match_beats_if_none_match() {
        // If-Match fails: 412 even though INM would say 304.
        let c = Conditions {
            if_match: Some("\"x\""),
            if_none_match: Some(ETAG),
            ..Default::default()
        };
        assert_eq!(get(c), PreconditionFailed);
        // If-Match passes, INM then says 304.
        let c = Conditions {
            if_match: Some(ETAG),
            if_none_match: Some(ETAG),
            ..Default::default()
        };
        assert_eq!(get(c), NotModified);
        // IUS fails: 412 before INM is looked at.
        let c = Conditions {
            if_unmodified_since: Some(BEFORE),
            if_none_match: Some("*"),
            ..Default::default()
        };
        assert_eq!(get(c), PreconditionFailed);
    }

    // ---- Step 4: If-Modified-Since -----------------------------------------

    #[test]
    fn if_modified_since() {
        let ims = |s| {
            get(Conditions {
                if_modified_since: Some(s),
                ..Default::default()
            })
        };
        assert_eq!(ims(LM_DATE), NotModified);
        assert_eq!(ims(AFTER), NotModified);
        assert_eq!(ims("Sunday, 06-Nov-94 08:49:37 GMT"), NotModified);
        assert_eq!(ims("Sun Nov  6 08:49:37 1994"), NotModified);
        assert_eq!(ims(BEFORE), Full);
        // Invalid date: ignored.
        assert_eq!(ims("garbage"), Full);
        assert_eq!(ims(""), Full);
        // Two joined dates are not a valid HTTP-date.
        assert_eq!(
            ims("Sun, 06 Nov 1994 08:49:37 GMT, Sun, 06 Nov 1994 08:49:37 GMT"),
            Full
        );
    }

    #[test]
    fn if_none_match_beats_if_modified_since() {
        // INM present and not matching: IMS is not evaluated.
        let c = Conditions {
            if_none_match: Some("\"x\""),
            if_modified_since: Some(AFTER),
            ..Default::default()
        };
        assert_eq!(get(c), Full);
        // INM matching: 304 regardless of IMS.
        let c = Conditions {
            if_none_match: Some(ETAG),
            if_modified_since: Some(BEFORE),
            ..Default::default()
        };
        assert_eq!(get(c), NotModified);
        // Malformed INM counts as absent: IMS applies.
        let c = Conditions {
            if_none_match: Some("garbage"),
            if_modified_since: Some(AFTER),
            ..Default::default()
        };
        assert_eq!(get(c), NotModified);
        let c = Conditions {
            if_none_match: Some("garbage"),
            if_modified_since: Some(BEFORE),
            ..Default::default()
        };
        assert_eq!(get(c), Full);
    }

    #[test]
    fn if_match_and_if_modified_since() {
        let c = Conditions {
            if_match: Some(ETAG),
            if_modified_since: Some(LM_DATE),
            ..Default::default()
        };
        assert_eq!(get(c), NotModified);
        let c = Conditions {
            if_match: Some("\"x\""),
            if_modified_since: Some(LM_DATE),
            ..Default::default()
        };
        assert_eq!(get(c), PreconditionFailed);
    }

    // ---- Step 5: Range / If-Range ------------------------------------------

    #[test]
    fn range_without_if_range() {
        let r = |s| {
            get(Conditions {
                range: Some(s),
                ..Default::default()
            })
        };
        assert_eq!(r("bytes=0-99"), Partial { start: 0, end: 99 });
        assert_eq!(r("bytes=2000-"), Outcome::Unsatisfiable);
        assert_eq!(r("bytes=0-1,5-6"), Full);
        assert_eq!(r("items=0-1"), Full);
    }

    #[test]
    fn if_range_without_range_is_ignored() {
        let c = Conditions {
            if_range: Some("\"x\""),
            ..Default::default()
        };
        assert_eq!(get(c), Full);
    }

    #[test]
    fn if_range() {
        let ir = |s| {
            get(Conditions {
                range: Some("bytes=10-19"),
                if_range: Some(s),
                ..Default::default()
            })
        };
        let partial = Partial { start: 10, end: 19 };
        // Strong entity-tag match.
        assert_eq!(ir(ETAG), partial);
        assert_eq!(ir(" \"abc\" "), partial);
        // Weak tag never matches.
        assert_eq!(ir("W/\"abc\""), Full);
        // Mismatch.
        assert_eq!(ir("\"x\""), Full);
        // A list is not a valid If-Range.
        assert_eq!(ir("\"abc\", \"x\""), Full);
        // Malformed entity tag.
        assert_eq!(ir("\"abc"), Full);
        assert_eq!(ir("W/abc"), Full);
        // Dates: exact match only.
        assert_eq!(ir(LM_DATE), partial);
        assert_eq!(ir("Sun Nov  6 08:49:37 1994"), partial);
        assert_eq!(ir(AFTER), Full);
        assert_eq!(ir(BEFORE), Full);
        // Invalid.
        assert_eq!(ir("garbage"), Full);
        assert_eq!(ir(""), Full);
        assert_eq!(ir("abc"), Full);
    }

    #[test]
    fn if_range_with_weak_current_etag_never_matches() {
        let weak = Validators::new("W/\"abc\"", LM, LEN);
        let c = Conditions {
            range: Some("bytes=0-0"),
            if_range: Some("W/\"abc\""),
            ..Default::default()
        };
        assert_eq!(evaluate(&c, &weak, true), Full);
    }

    #[test]
    fn if_range_match_then_unsatisfiable_or_ignored() {
        let c = Conditions {
            range: Some("bytes=5000-"),
            if_range: Some(ETAG),
            ..Default::default()
        };
        assert_eq!(get(c), Outcome::Unsatisfiable);
        let c = Conditions {
            range: Some("bytes=5000-"),
            if_range: Some("\"x\""),
            ..Default::default()
        };
        assert_eq!(get(c), Full);
        let c = Conditions {
            range: Some("bytes=garbage"),
            if_range: Some(ETAG),
            ..Default::default()
        };
        assert_eq!(get(c), Full);
    }

    #[test]
    fn head_ignores_range_but_not_preconditions() {
        let c = Conditions {
            range: Some("bytes=0-9"),
            ..Default::default()
        };
        assert_eq!(head(c), Full);
        let c = Conditions {
            range: Some("bytes=5000-"),
            ..Default::default()
        };
        assert_eq!(head(c), Full);
        let c = Conditions {
            range: Some("bytes=0-9"),
            if_range: Some(ETAG),
            ..Default::default()
        };
        assert_eq!(head(c), Full);
        let c = Conditions {
            range: Some("bytes=0-9"),
            if_none_match: Some(ETAG),
            ..Default::default()
        };
        assert_eq!(head(c), NotModified);
        let c = Conditions {
            range: Some("bytes=0-9"),
            if_modified_since: Some(LM_DATE),
            ..Default::default()
        };
        assert_eq!(head(c), NotModified);
        let c = Conditions {
            range: Some("bytes=0-9"),
            if_match: Some("\"x\""),
            ..Default::default()
        };
        assert_eq!(head(c), PreconditionFailed);
        let c = Conditions {
            range: Some("bytes=0-9"),
            if_unmodified_since: Some(BEFORE),
            ..Default::default()
        };
        assert_eq!(head(c), PreconditionFailed);
        assert_eq!(head(Conditions::default()), Full);
    }

    #[test]
    fn not_modified_beats_range() {
        for range in ["bytes=0-9", "bytes=5000-", "bytes=0-1,2-3"] {
            let c = Conditions {
                range: Some(range),
                if_range: Some(ETAG),
                if_none_match: Some(ETAG),
                ..Default::default()
            };
            assert_eq!(get(c), NotModified, "{range}");
            let c = Conditions {
                range: Some(range),
                if_modified_since: Some(LM_DATE),
                ..Default::default()
            };
            assert_eq!(get(c), NotModified, "{range}");
        }
    }

    #[test]
    fn precondition_failed_beats_everything() {
        for range in ["bytes=0-9", "bytes=5000-"] {
            let c = Conditions {
                if_match: Some("\"x\""),
                if_unmodified_since: Some(AFTER),
                if_none_match: Some(ETAG),
                if_modified_since: Some(LM_DATE),
                range: Some(range),
                if_range: Some(ETAG),
            };
            assert_eq!(get(c), PreconditionFailed);
            assert_eq!(head(c), PreconditionFailed);
            let c = Conditions {
                if_unmodified_since: Some(BEFORE),
                if_none_match: Some("*"),
                range: Some(range),
                ..Default::default()
            };
            assert_eq!(get(c), PreconditionFailed);
        }
    }

    #[test]
    fn all_preconditions_pass_then_range() {
        let c = Conditions {
            if_match: Some(ETAG),
            if_unmodified_since: Some(BEFORE), // ignored: If-Match present
            if_none_match: Some("\"old\""),
            if_modified_since: Some(LM_DATE), // ignored: INM present
            range: Some("bytes=-10"),
            if_range: Some(ETAG),
        };
        assert_eq!(
            get(c),
            Partial {
                start: 990,
                end: 999
            }
        );
        assert_eq!(head(c), Full);
    }

    #[test]
    fn no_conditions_is_full() {
        assert_eq!(get(Conditions::default()), Full);
    }

    // ---- parse_range -------------------------------------------------------

    #[test]
    fn range_first_last() {
        assert_eq!(parse_range("bytes=0-0", 10), single(0, 0));
        assert_eq!(parse_range("bytes=0-9", 10), single(0, 9));
        assert_eq!(parse_range("bytes=2-5", 10), single(2, 5));
        assert_eq!(parse_range("bytes=007-008", 10), single(7, 8));
        // Clamping.
        assert_eq!(parse_range("bytes=5-100", 10), single(5, 9));
        // a == len - 1.
        assert_eq!(parse_range("bytes=9-9", 10), single(9, 9));
        assert_eq!(parse_range("bytes=9-20", 10), single(9, 9));
        // a past the end.
        assert_eq!(parse_range("bytes=10-20", 10), RangeRequest::Unsatisfiable);
        assert_eq!(parse_range("bytes=10-10", 10), RangeRequest::Unsatisfiable);
        // a > b: invalid, ignored.
        assert_eq!(parse_range("bytes=5-2", 10), RangeRequest::Ignore);
        assert_eq!(parse_range("bytes=50-20", 10), RangeRequest::Ignore);
    }

    #[test]
    fn range_open_ended() {
        assert_eq!(parse_range("bytes=0-", 10), single(0, 9));
        assert_eq!(parse_range("bytes=9-", 10), single(9, 9));
        assert_eq!(parse_range("bytes=10-", 10), RangeRequest::Unsatisfiable);
        assert_eq!(parse_range("bytes=11-", 10), RangeRequest::Unsatisfiable);
    }

    #[test]
    fn range_suffix() {
        assert_eq!(parse_range("bytes=-1", 10), single(9, 9));
        assert_eq!(parse_range("bytes=-3", 10), single(7, 9));
        assert_eq!(parse_range("bytes=-10", 10), single(0, 9));
        assert_eq!(parse_range("bytes=-11", 10), single(0, 9));
        assert_eq!(parse_range("bytes=-18446744073709551615", 10), single(0, 9));
        assert_eq!(parse_range("bytes=-0", 10), RangeRequest::Unsatisfiable);
        assert_eq!(parse_range("bytes=-000", 10), RangeRequest::Unsatisfiable);
    }

    #[test]
    fn range_len_zero() {
        for h in ["bytes=0-0", "bytes=0-", "bytes=-1", "bytes=-0", "bytes=5-9"] {
            assert_eq!(parse_range(h, 0), RangeRequest::Unsatisfiable, "{h}");
        }
        // Malformed stays ignored.
        assert_eq!(parse_range("bytes=abc", 0), RangeRequest::Ignore);
        assert_eq!(parse_range("bytes=0-1,2-3", 0), RangeRequest::Ignore);
    }

    #[test]
    fn range_whitespace_and_empty_elements() {
        assert_eq!(parse_range("bytes= 0-1", 10), single(0, 1));
        assert_eq!(parse_range("bytes=0-1 ", 10), single(0, 1));
        assert_eq!(parse_range(" bytes=0-1\t", 10), single(0, 1));
        assert_eq!(parse_range("bytes=0-1,", 10), single(0, 1));
        assert_eq!(parse_range("bytes=,0-1", 10), single(0, 1));
        assert_eq!(parse_range("bytes= , 0-1 , ,", 10), single(0, 1));
        // No whitespace inside a range-spec or around '='.
        assert_eq!(parse_range("bytes=0 -1", 10), RangeRequest::Ignore);
        assert_eq!(parse_range("bytes=0- 1", 10), RangeRequest::Ignore);
        assert_eq!(parse_range("bytes=1 0-20", 10), RangeRequest::Ignore);
        assert_eq!(parse_range("bytes =0-1", 10), RangeRequest::Ignore);
    }

    #[test]
    fn range_unit() {
        assert_eq!(parse_range("BYTES=0-1", 10), single(0, 1));
        assert_eq!(parse_range("Bytes=0-1", 10), single(0, 1));
        assert_eq!(parse_range("items=0-1", 10), RangeRequest::Ignore);
        assert_eq!(parse_range("byte=0-1", 10), RangeRequest::Ignore);
        assert_eq!(parse_range("bytes0-1", 10), RangeRequest::Ignore);
        assert_eq!(parse_range("0-1", 10), RangeRequest::Ignore);
        assert_eq!(parse_range("=0-1", 10), RangeRequest::Ignore);
    }

    #[test]
    fn range_multi_is_ignored() {
        assert_eq!(parse_range("bytes=0-1,2-3", 10), RangeRequest::Ignore);
        assert_eq!(parse_range("bytes=0-1, -2", 10), RangeRequest::Ignore);
        assert_eq!(parse_range("bytes=0-0,0-0", 10), RangeRequest::Ignore);
        assert_eq!(parse_range("bytes=20-30,40-50", 10), RangeRequest::Ignore);
    }

    #[test]
    fn range_malformed() {
        for bad in [
            "",
            "bytes",
            "bytes=",
            "bytes=,",
            "bytes= ",
            "bytes=-",
            "bytes=--1",
            "bytes=abc",
            "bytes=a-b",
            "bytes=1-a",
            "bytes=0x1-2",
            "bytes=+1-2",
            "bytes=1-+2",
            "bytes=-+2",
            "bytes=-1-2",
            "bytes=1-2-3",
            "bytes=1",
            "bytes==0-1",
            "bytes=0-1=",
            "bytes=１-2",
        ] {
            assert_eq!(parse_range(bad, 10), RangeRequest::Ignore, "{bad:?}");
        }
    }

    #[test]
    fn range_overflow() {
        let big = "18446744073709551616"; // u64::MAX + 1
        // first-byte-pos and suffix-length must fit.
        assert_eq!(
            parse_range(&format!("bytes={big}-"), 10),
            RangeRequest::Ignore
        );
        assert_eq!(
            parse_range(&format!("bytes={big}-{big}"), 10),
            RangeRequest::Ignore
        );
        assert_eq!(
            parse_range(&format!("bytes=-{big}"), 10),
            RangeRequest::Ignore
        );
        // last-byte-pos saturates, then clamps.
        assert_eq!(parse_range(&format!("bytes=0-{big}"), 10), single(0, 9));
        assert_eq!(
            parse_range(&format!("bytes=3-{big}{big}"), 10),
            single(3, 9)
        );
        assert_eq!(
            parse_range("bytes=18446744073709551615-99999999999999999999", u64::MAX),
            RangeRequest::Unsatisfiable
        );
        // u64::MAX itself is fine everywhere.
        assert_eq!(
            parse_range("bytes=18446744073709551614-18446744073709551615", u64::MAX),
            single(u64::MAX - 1, u64::MAX - 1)
        );
        assert_eq!(
            parse_range("bytes=-18446744073709551615", u64::MAX),
            single(0, u64::MAX - 1)
        );
    }

    // ---- Property tests ------------------------------------------------------

    /// Strings that look like header values often enough to reach deep
    /// branches, mixed with arbitrary Unicode.
    fn header_value() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[ \t,*W/\"=0-9a-zA-Z-]{0,24}",
            "(bytes|BYTES|items)?=?( ?,? ?-?[0-9]{0,21}-?[0-9]{0,21})*",
            "((W/)?\"[a-c,]{0,3}\" ?, ?){0,4}",
            Just(LM_DATE.to_owned()),
            Just(BEFORE.to_owned()),
            Just(AFTER.to_owned()),
            Just(ETAG.to_owned()),
        ]
    }

    fn opt_header() -> impl Strategy<Value = Option<String>> {
        proptest::option::of(header_value())
    }

    proptest! {
        #[test]
        fn prop_parse_range_never_panics_and_is_in_bounds(h in header_value(), len in any::<u64>()) {
            if let RangeRequest::Single { start, end } = parse_range(&h, len) {
                prop_assert!(start <= end && end < len);
            }
        }

        #[test]
        fn prop_parse_range_small_len(h in header_value(), len in 0u64..20) {
            if let RangeRequest::Single { start, end } = parse_range(&h, len) {
                prop_assert!(start <= end && end < len);
            }
        }

        #[test]
        fn prop_other_parsers_never_panic(h in header_value()) {
            let _ = parse_etag_list(&h);
            let _ = parse_http_date(&h);
            let _ = parse_entity_tag(&h);
        }

        #[test]
        fn prop_evaluate_never_panics_and_partial_in_bounds(
            im in opt_header(),
            ius in opt_header(),
            inm in opt_header(),
            ims in opt_header(),
            range in opt_header(),
            ir in opt_header(),
            etag in header_value(),
            last_modified in prop_oneof![Just(LM), any::<u64>()],
            len in prop_oneof![0u64..2000, any::<u64>()],
            ranges_apply in any::<bool>(),
        ) {
            let c = Conditions {
                if_match: im.as_deref(),
                if_unmodified_since: ius.as_deref(),
                if_none_match: inm.as_deref(),
                if_modified_since: ims.as_deref(),
                range: range.as_deref(),
                if_range: ir.as_deref(),
            };
            let v = Validators::new(&etag, last_modified, len);
            let out = evaluate(&c, &v, ranges_apply);
            if let Outcome::Partial { start, end } = out {
                prop_assert!(ranges_apply);
                prop_assert!(start <= end && end < len);
            }
            if !ranges_apply {
                prop_assert!(out != Outcome::Unsatisfiable);
            }
        }

        #[test]
        fn prop_valid_first_last(len in 1u64..u64::MAX, a_frac in any::<u64>(), extra in any::<u64>()) {
            let a = a_frac % len;
            let b = a.saturating_add(extra);
            let h = format!("bytes={a}-{b}");
            prop_assert_eq!(parse_range(&h, len), RangeRequest::Single { start: a, end: b.min(len - 1) });
        }

        #[test]
        fn prop_valid_first_last_small(len in 1u64..100, a in 0u64..100, d in 0u64..200) {
            prop_assume!(a < len);
            let b = a + d;
            let h = format!("bytes={a}-{b}");
            prop_assert_eq!(parse_range(&h, len), RangeRequest::Single { start: a, end: b.min(len - 1) });
            prop_assert_eq!(
                evaluate(&Conditions { range: Some(&h), ..Default::default() }, &Validators::new(ETAG, LM, len), true),
                Outcome::Partial { start: a, end: b.min(len - 1) }
            );
        }
    }
}
