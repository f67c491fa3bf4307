//! Signed, expiring links for assets that must not be public.
//!
//! A signed-only asset is served only to a URL carrying `expires` (epoch seconds), `kid` (the
//! key's id) and `sig`, the HMAC-SHA256 of the method-independent string
//! `"{path}\n{expires}"` under that key, in lowercase hex. The path is the decoded asset path,
//! so any spelling of the URL that reaches the asset checks the same bytes. Links are made by
//! the admin API (and the CLI through it) for a configured lifetime: long enough for Meta's
//! fetcher to take the media of a broadcast, short enough that a leaked link dies.
//!
//! Keys rotate without breaking links: the first key signs, every configured key verifies,
//! and a link names the key it was signed with. Put the new key first, keep the old one until
//! the longest link signed with it has expired, then drop it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::config::SigningSettings;
use crate::policy::CachePolicy;

type HmacSha256 = Hmac<Sha256>;

/// Signs and checks links.
#[derive(Clone)]
pub struct Signer {
    /// `(id, secret)`, the first one signing.
    keys: Vec<(String, Vec<u8>)>,
    /// Default lifetime of a link, in seconds.
    ttl: u64,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("Signer")
            .field("key_ids", &ids)
            .field("ttl", &self.ttl)
            .finish()
    }
}

/// Why a signed link was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// No `expires`, `kid` or `sig` in the query.
    #[error("this asset is served only through a signed link (expires, kid and sig)")]
    Missing,
    /// The parameters are not numbers / hex, or name no configured key.
    #[error("the link's signature is malformed or names an unknown key")]
    Malformed,
    /// The signature does not match.
    #[error("the link's signature does not match")]
    BadSignature,
    /// The link has expired.
    #[error("the link has expired")]
    Expired,
    /// No keys are configured, so no link can be valid.
    #[error("signed links are not configured on this server")]
    NotConfigured,
}

/// The query parameters of a signed link.
#[derive(Debug, Default, Clone, Copy)]
pub struct LinkParams<'a> {
    pub expires: Option<&'a str>,
    pub kid: Option<&'a str>,
    pub sig: Option<&'a str>,
}

impl<'a> LinkParams<'a> {
    /// Pick `expires`, `kid` and `sig` out of a raw query string (the first of each).
    pub fn from_query(query: Option<&'a str>) -> Self {
        let mut params = Self::default();
        for pair in query.unwrap_or("").split('&') {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let slot = match name {
                "expires" => &mut params.expires,
                "kid" => &mut params.kid,
                "sig" => &mut params.sig,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(value);
            }
        }
        params
    }
}

impl Signer {
    /// The signer the settings describe; `Err` names what is wrong with a key.
    pub fn from_settings(settings: &SigningSettings) -> Result<Self, String> {
        let keys = settings
            .parsed_keys()?
            .into_iter()
            .map(|k| (k.id, k.secret.into_bytes()))
            .collect();
        Ok(Self {
            keys,
            ttl: settings.link_ttl_secs,
        })
    }

    /// Whether any key is configured.
    pub fn is_configured(&self) -> bool {
        !self.keys.is_empty()
    }

    /// The default lifetime of a link, in seconds.
    pub fn default_ttl(&self) -> u64 {
        self.ttl
    }

    fn mac(secret: &[u8], path: &str, expires: u64) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes a key of any length");
        mac.update(path.as_bytes());
        mac.update(b"\n");
        mac.update(expires.to_string().as_bytes());
        mac
    }

    /// The query that makes `path` fetchable until `expires` (epoch seconds):
    /// `expires=..&kid=..&sig=..`. `None` without keys.
    pub fn sign(&self, path: &str, expires: u64) -> Option<String> {
        let (id, secret) = self.keys.first()?;
        let sig = hex::encode(Self::mac(secret, path, expires).finalize().into_bytes());
        Some(format!("expires={expires}&kid={id}&sig={sig}"))
    }

    /// Check a link's parameters for `path` at time `now` (epoch seconds); a valid link answers
    /// its expiry (epoch seconds). It is valid through the second it expires in.
    pub fn verify(&self, path: &str, params: LinkParams<'_>, now: u64) -> Result<u64, LinkError> {
        if !self.is_configured() {
            return Err(LinkError::NotConfigured);
        }
        let (Some(expires), Some(kid), Some(sig)) = (params.expires, params.kid, params.sig) else {
            return Err(LinkError::Missing);
        };
        let expires: u64 = expires
            .parse()
            .ok()
            .filter(|_| expires.bytes().all(|b| b.is_ascii_digit()))
            .ok_or(LinkError::Malformed)?;
        let sig = hex::decode(sig).map_err(|_| LinkError::Malformed)?;
        let (_, secret) = self
            .keys
            .iter()
            .find(|(id, _)| id == kid)
            .ok_or(LinkError::Malformed)?;
        let expected = Self::mac(secret, path, expires).finalize().into_bytes();
        // Constant time: a wrong signature tells nothing about the right one.
        if sig.len() != expected.len() || !bool::from(expected.as_slice().ct_eq(&sig)) {
            return Err(LinkError::BadSignature);
        }
        if now > expires {
            return Err(LinkError::Expired);
        }
        Ok(expires)
    }
}

/// The time since the epoch, now, to the clock's precision.
pub fn now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// The whole seconds left, at `now` (since the epoch), of a link that expires at `expires`
/// (epoch seconds): rounded down, and 0 once it has passed.
pub fn seconds_left(expires: u64, now: Duration) -> u64 {
    Duration::from_secs(expires).saturating_sub(now).as_secs()
}

/// The policy a response to a signed link is sent with, `left` seconds before the link
/// expires: a `max-age` is cut to `left`, so no cache in front (a CDN, a proxy, a browser)
/// keeps serving it after the link has expired. `no-cache`, `no-store` and `private` already
/// keep shared caches from reusing it unchecked, and stay as they are.
pub fn within_link(policy: CachePolicy, left: u64) -> CachePolicy {
    match policy {
        CachePolicy::MaxAge(age) if age > left => CachePolicy::MaxAge(left),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn signer(keys: &[&str]) -> Signer {
        Signer::from_settings(&SigningSettings {
            keys: keys.iter().map(|k| Secret::new(*k)).collect(),
            ..SigningSettings::default()
        })
        .unwrap()
    }

    fn params(query: &str) -> LinkParams<'_> {
        LinkParams::from_query(Some(query))
    }

    #[test]
    fn a_signed_link_verifies_until_it_expires() {
        let s = signer(&["k1:0123456789abcdef0123"]);
        let q = s.sign("private/a.pdf", 1000).unwrap();
        assert!(q.starts_with("expires=1000&kid=k1&sig="));
        assert_eq!(s.verify("private/a.pdf", params(&q), 999), Ok(1000));
        assert_eq!(s.verify("private/a.pdf", params(&q), 1000), Ok(1000));
        assert_eq!(
            s.verify("private/a.pdf", params(&q), 1001),
            Err(LinkError::Expired)
        );
        // Another path, another expiry, a flipped signature: refused.
        assert_eq!(
            s.verify("private/b.pdf", params(&q), 999),
            Err(LinkError::BadSignature)
        );
        let later = q.replace("expires=1000", "expires=9999");
        assert_eq!(
            s.verify("private/a.pdf", params(&later), 999),
            Err(LinkError::BadSignature)
        );
        let sig_at = q.find("sig=").unwrap() + 4;
        let mut flipped = q.clone().into_bytes();
        flipped[sig_at] = if flipped[sig_at] == b'0' { b'1' } else { b'0' };
        let flipped = String::from_utf8(flipped).unwrap();
        assert_eq!(
            s.verify("private/a.pdf", params(&flipped), 999),
            Err(LinkError::BadSignature)
        );
    }

    #[test]
    fn a_signed_answer_is_cached_no_longer_than_its_link_lives() {
        let at = |secs: u64, millis: u64| Duration::from_millis(secs * 1000 + millis);
        // Whole seconds left, rounded down; none once past (the link is still valid through
        // the second it expires in).
        assert_eq!(seconds_left(1060, at(1000, 0)), 60);
        assert_eq!(seconds_left(1060, at(1000, 1)), 59);
        assert_eq!(seconds_left(1060, at(1059, 999)), 0);
        assert_eq!(seconds_left(1060, at(1060, 0)), 0);
        assert_eq!(seconds_left(1060, at(1060, 500)), 0);
        assert_eq!(seconds_left(1060, at(2000, 0)), 0);
        let day = CachePolicy::MaxAge(86_400);
        assert_eq!(within_link(day, 59), CachePolicy::MaxAge(59));
        assert_eq!(within_link(day, 0), CachePolicy::MaxAge(0));
        assert_eq!(within_link(day, 86_400), day);
        assert_eq!(
            within_link(CachePolicy::MaxAge(30), 59),
            CachePolicy::MaxAge(30)
        );
        for p in [
            CachePolicy::NoCache,
            CachePolicy::NoStore,
            CachePolicy::Private,
        ] {
            assert_eq!(within_link(p, 0), p);
        }
    }

    #[test]
    fn rotation_keeps_links_of_the_previous_key() {
        let old = signer(&["k1:0123456789abcdef0123"]);
        let q = old.sign("a.jpg", 500).unwrap();
        let rotated = signer(&["k2:fedcba9876543210fedc", "k1:0123456789abcdef0123"]);
        assert_eq!(rotated.verify("a.jpg", params(&q), 100), Ok(500));
        assert!(rotated.sign("a.jpg", 500).unwrap().contains("kid=k2"));
        // Once the old key is dropped, its links stop working.
        let dropped = signer(&["k2:fedcba9876543210fedc"]);
        assert_eq!(
            dropped.verify("a.jpg", params(&q), 100),
            Err(LinkError::Malformed)
        );
    }

    #[test]
    fn missing_and_malformed_parameters_are_refused() {
        let s = signer(&["k1:0123456789abcdef0123"]);
        for (query, want) in [
            ("", LinkError::Missing),
            ("expires=5&kid=k1", LinkError::Missing),
            ("expires=x&kid=k1&sig=00", LinkError::Malformed),
            ("expires=+5&kid=k1&sig=00", LinkError::Malformed),
            ("expires=5&kid=k1&sig=zz", LinkError::Malformed),
            ("expires=5&kid=nope&sig=00", LinkError::Malformed),
            ("expires=5&kid=k1&sig=00", LinkError::BadSignature),
        ] {
            assert_eq!(s.verify("a.jpg", params(query), 1), Err(want), "{query}");
        }
        assert_eq!(
            signer(&[]).verify("a.jpg", params("expires=5&kid=k1&sig=00"), 1),
            Err(LinkError::NotConfigured)
        );
    }

    #[test]
    fn bad_keys_are_refused_with_the_reason() {
        for (keys, needle) in [
            (vec!["nocolon0123456789abc"], "not `id:secret`"),
            (vec!["bad id:0123456789abcdef"], "the id"),
            (vec!["k1:short"], "at least 16"),
            (
                vec!["k1:0123456789abcdef", "k1:0123456789abcdeX"],
                "used twice",
            ),
        ] {
            let settings = SigningSettings {
                keys: keys.iter().map(|k| Secret::new(*k)).collect(),
                ..SigningSettings::default()
            };
            let err = Signer::from_settings(&settings).unwrap_err();
            assert!(err.contains(needle), "{keys:?}: {err}");
            assert!(
                !err.contains("0123456789abcdef"),
                "the secret leaked: {err}"
            );
        }
    }
}
