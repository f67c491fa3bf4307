//! `Range` parsing: `conditional::parse_range(header, len)` on arbitrary headers and lengths.
//!
//! Input: the length on the first line (a number, `max` or `max-N`), the header after it.
//!
//! Invariants:
//! * a satisfiable range lies in the representation: `start <= end < len` (so never for
//!   `len == 0`);
//! * the answer is the one `parse_range`'s documentation describes, checked against a separate,
//!   deliberately plain model of that grammar (arbitrary-precision digits, no shared code);
//! * `evaluate` with nothing but that `Range` on a `GET` answers the same, and a `HEAD` ignores
//!   it.

#![no_main]

use libfuzzer_sys::fuzz_target;
use media_origin::http::conditional::{
    Conditions, Outcome, RangeRequest, Validators, evaluate, parse_range,
};

/// The representation length from the input's first line: a decimal number, `max` or `max-N`
/// (`u64::MAX - N`, where overflow bites), anything else 1000.
fn length(line: &str) -> u64 {
    let line = line.trim();
    if let Some(rest) = line.strip_prefix("max") {
        let below = rest
            .strip_prefix('-')
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
        return u64::MAX.saturating_sub(below);
    }
    line.parse().unwrap_or(1000)
}

/// A decimal number as the model sees it: its value if it fits in a u64, else "too big".
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Num {
    Fits(u64),
    TooBig,
}

fn digits(s: &str) -> Option<Num> {
    if s.is_empty() || !s.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let significant = s.trim_start_matches('0');
    // u64::MAX has 20 digits; compare as text beyond that.
    if significant.len() > 20 || (significant.len() == 20 && significant > "18446744073709551615") {
        return Some(Num::TooBig);
    }
    Some(Num::Fits(significant.parse().unwrap_or(0)))
}

/// `parse_range` as its documentation states it.
fn model(header: &str, len: u64) -> RangeRequest {
    let ows = |s: &str| s.trim_matches(|c| c == ' ' || c == '\t').to_owned();
    let h = ows(header);
    let Some(eq) = h.find('=') else {
        return RangeRequest::Ignore;
    };
    if !h[..eq].eq_ignore_ascii_case("bytes") {
        return RangeRequest::Ignore;
    }
    let items: Vec<String> = h[eq + 1..]
        .split(',')
        .map(ows)
        .filter(|s| !s.is_empty())
        .collect();
    if items.len() != 1 {
        return RangeRequest::Ignore;
    }
    let item = &items[0];
    let Some(dash) = item.find('-') else {
        return RangeRequest::Ignore;
    };
    let (first, last) = (&item[..dash], &item[dash + 1..]);
    // Syntax first (what is Ignore), then satisfiability against len.
    enum Spec {
        FromTo(u64, u64),
        From(u64),
        Suffix(u64),
    }
    let spec = if first.is_empty() {
        match digits(last) {
            Some(Num::Fits(n)) => Spec::Suffix(n),
            _ => return RangeRequest::Ignore,
        }
    } else {
        let Some(Num::Fits(a)) = digits(first) else {
            return RangeRequest::Ignore;
        };
        if last.is_empty() {
            Spec::From(a)
        } else {
            let b = match digits(last) {
                Some(Num::Fits(b)) => b,
                Some(Num::TooBig) => u64::MAX,
                None => return RangeRequest::Ignore,
            };
            if a > b {
                return RangeRequest::Ignore;
            }
            Spec::FromTo(a, b)
        }
    };
    if len == 0 {
        return RangeRequest::Unsatisfiable;
    }
    let single = |start: u64, end: u64| RangeRequest::Single { start, end };
    match spec {
        Spec::FromTo(a, b) if a < len => single(a, b.min(len - 1)),
        Spec::From(a) if a < len => single(a, len - 1),
        Spec::Suffix(n) if n > 0 => single(len.saturating_sub(n), len - 1),
        _ => RangeRequest::Unsatisfiable,
    }
}

fn check(header: &str, len: u64) {
    let got = parse_range(header, len);
    if let RangeRequest::Single { start, end } = got {
        assert!(
            start <= end,
            "{header:?} len {len}: start {start} > end {end}"
        );
        assert!(
            end < len,
            "{header:?} len {len}: end {end} outside the representation"
        );
    }
    assert_eq!(got, model(header, len), "{header:?} len {len}");

    let v = Validators {
        etag: "\"e\"",
        last_modified: 0,
        len,
    };
    let c = Conditions {
        range: Some(header),
        ..Default::default()
    };
    let want = match got {
        RangeRequest::Ignore => Outcome::Full,
        RangeRequest::Single { start, end } => Outcome::Partial { start, end },
        RangeRequest::Unsatisfiable => Outcome::Unsatisfiable,
    };
    assert_eq!(evaluate(&c, &v, true), want, "GET {header:?} len {len}");
    assert_eq!(
        evaluate(&c, &v, false),
        Outcome::Full,
        "HEAD {header:?} len {len}"
    );
}

// Input: the length on the first line, the `Range` value after it (`1000\nbytes=0-99`).
// Header values are bytes; the parser takes any `&str`, so invalid UTF-8 is replaced.
fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (len, header) = match text.split_once('\n') {
        Some((first, rest)) => (length(first), rest),
        None => (1000, &*text),
    };
    check(header, len);
});
