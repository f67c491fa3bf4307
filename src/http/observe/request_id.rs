//! Request IDs: the client's `X-Request-Id` when sane, else a new v4 UUID.
//!
//! Its own module because it is a small policy of its own (what a client may put in our logs)
//! and a generator tuned for the hot path: IDs must be unique, not unpredictable, so a
//! per-thread SplitMix64 stands in for a cryptographic generator.

use std::cell::Cell;

use axum::http::{HeaderName, HeaderValue};

/// The request ID header, taken from the client when sane and always echoed.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest client request ID accepted.
const MAX_REQUEST_ID: usize = 128;

/// A client's request ID is kept when it is 1 to 128 characters of letters, digits and
/// `-_.:/+=@`; anything else is replaced, so logs never carry arbitrary bytes.
pub(super) fn sane_request_id(id: &[u8]) -> bool {
    (1..=MAX_REQUEST_ID).contains(&id.len())
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=@".contains(b))
}

thread_local! {
    /// SplitMix64 state, seeded from the OS once per thread: request IDs must be unique, not
    /// unpredictable, and this is several times cheaper than a cryptographic generator.
    static ID_STATE: Cell<u64> = Cell::new(rand::random());
}

fn splitmix() -> u64 {
    ID_STATE.with(|s| {
        let x = s.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        s.set(x);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    })
}

/// A random-looking (v4) UUID.
pub(super) fn new_request_id() -> HeaderValue {
    let bytes = (u128::from(splitmix()) << 64 | u128::from(splitmix())).to_be_bytes();
    let id = uuid::Builder::from_random_bytes(bytes).into_uuid();
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    HeaderValue::from_str(id.hyphenated().encode_lower(&mut buf))
        .expect("a UUID is a valid header value")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_checked() {
        assert!(sane_request_id(b"abc-123"));
        assert!(sane_request_id(b"f0e1d2c3-b4a5-4968-8776-655443322110"));
        assert!(!sane_request_id(b""));
        assert!(!sane_request_id(b"has space"));
        assert!(!sane_request_id(b"quote\""));
        assert!(!sane_request_id(&[b'a'; 129]));
        let generated = new_request_id();
        assert_eq!(generated.len(), 36);
        assert!(sane_request_id(generated.as_bytes()));
        let parsed = uuid::Uuid::parse_str(generated.to_str().unwrap()).unwrap();
        assert_eq!(parsed.get_version_num(), 4);
        assert_eq!(parsed.get_variant(), uuid::Variant::RFC4122);
        assert_eq!(parsed.hyphenated().to_string(), generated.to_str().unwrap());
        assert_ne!(new_request_id(), generated);
    }
}
