//! Cache-policy parsing: `CachePolicy: FromStr` on arbitrary strings.
//!
//! Invariants, for every accepted string:
//! * the policy's `Display` (the exact `Cache-Control` value sent) parses back to the same
//!   policy, and is already canonical (rendering it again gives the same text);
//! * it is one of the four documented forms, `max-age` within `0..=MAX_AGE_LIMIT`;
//! * directive names are ASCII case-insensitive and surrounding blanks are ignored;
//! * serde goes through the same parser (JSON string in, the same policy out, and back).
//!
//! And a refused string's error quotes (a prefix of) the input and names the accepted forms.

#![no_main]

use libfuzzer_sys::fuzz_target;
use media_origin::policy::{CachePolicy, MAX_AGE_LIMIT};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = s.parse::<CachePolicy>();

    // serde's Deserialize is the same parser.
    let json = serde_json::to_string(s).expect("a str serialises");
    let via_serde = serde_json::from_str::<CachePolicy>(&json);
    assert_eq!(
        via_serde.as_ref().ok(),
        parsed.as_ref().ok(),
        "serde disagrees on {s:?}"
    );

    // ASCII case and surrounding blanks do not matter.
    let upper = s.to_ascii_uppercase();
    assert_eq!(
        upper.parse::<CachePolicy>().ok(),
        parsed.as_ref().ok().copied(),
        "{s:?}"
    );
    let padded = format!(" \t{s} ");
    assert_eq!(
        padded.parse::<CachePolicy>().ok(),
        parsed.as_ref().ok().copied(),
        "{s:?}"
    );

    match parsed {
        Ok(policy) => {
            let shown = policy.to_string();
            let again = shown.parse::<CachePolicy>().unwrap_or_else(|e| {
                panic!("{s:?} -> {policy:?} renders as {shown:?}, refused: {e}")
            });
            assert_eq!(again, policy, "{s:?} -> {shown:?}");
            assert_eq!(again.to_string(), shown, "rendering is not canonical");
            match policy {
                CachePolicy::MaxAge(n) => {
                    assert!(n <= MAX_AGE_LIMIT, "{s:?} gave max-age {n}");
                    assert_eq!(shown, format!("max-age={n}"));
                }
                CachePolicy::NoCache => assert_eq!(shown, "no-cache"),
                CachePolicy::NoStore => assert_eq!(shown, "no-store"),
                CachePolicy::Private => assert_eq!(shown, "private"),
            }
            // What goes on the wire is a plain token: no blanks, no list, no quotes.
            assert!(
                shown.bytes().all(|b| b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || b == b'-'
                    || b == b'=')
            );
            let ser = serde_json::to_string(&policy).expect("serialise");
            assert_eq!(ser, format!("\"{shown}\""));
            assert_eq!(serde_json::from_str::<CachePolicy>(&ser).ok(), Some(policy));
        }
        Err(e) => {
            // The error quotes the input (or, to bound what is echoed back, a prefix of it).
            assert!(
                s.starts_with(&e.input),
                "the error does not quote the input: {e:?}"
            );
            let msg = e.to_string();
            assert!(
                msg.contains("max-age=N")
                    && msg.contains("no-cache")
                    && msg.contains("no-store")
                    && msg.contains("private"),
                "the error does not list the accepted forms: {msg}"
            );
        }
    }
});
