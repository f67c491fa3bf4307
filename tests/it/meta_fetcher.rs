//! Meta's media fetcher, modelled as WHATSAPP_MEDIA.md §2 documents it, replayed against the
//! real server over a simulated clock.
//!
//! [`meta::MetaFetcher`] stands in for the fetcher behind a message's `link`. It follows only the
//! documented rules (§2's table), nothing that is guessed:
//!
//! - It caches **by URL**, the full URL including the query (`?v=...`).
//! - `Cache-Control: max-age=n`: the copy fetched at `t` is reused for sends at `t <= now < t + n`;
//!   a send at exactly `t + n` or later requests the origin again. (At `t + n` the copy's age
//!   equals its freshness lifetime, which RFC 9111 §4.2 counts as stale.)
//! - `no-cache`: may cache, but must refresh when `Last-Modified` differs. Modelled as an origin
//!   request on every send; the cached copy is *replaced* only when the response's
//!   `Last-Modified` differs (as a string) from the cached one. Otherwise the recipient gets the
//!   cached copy, even if the bytes that just came back differ: so an origin that changes bytes
//!   without changing `Last-Modified` is caught. `no-cache` without `Last-Modified` is not
//!   cacheable.
//! - `no-store`, `private`: never cached; every send requests the origin.
//! - `ETag` is ignored unless both `Cache-Control` and `Last-Modified` are absent; Meta then
//!   "caches by its own undisclosed logic", modelled here as `no-cache` keyed on the ETag
//!   (request on every send, replace the copy when the ETag differs).
//! - Not documented, so not cached: none of the three headers; `Last-Modified` without
//!   `Cache-Control`; a `Cache-Control` with none of the four documented directives.
//! - Requests are plain unconditional GETs (nothing documents conditional requests from Meta),
//!   redirects are not followed (§2: Meta's proxy does not), and an answer other than 200 fails
//!   the send and leaves the cache as it was.
//!
//! The clock is a `u64` of seconds the test advances; nothing sleeps to move it. Only the test
//! of rapid replacements waits (under a second) for the start of a real second, because
//! `Last-Modified` is wall-clock time.
//!
//! The server always sends all three headers, so the ETag-only and no-header rules are unit-tested
//! against synthetic responses (`model` below); the timelines against the real server follow.

use crate::common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Backend, TestServer, fixtures};
use meta::{MetaFetcher, Source};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The fetcher model. Decisions are pure ([`MetaFetcher::send_with`] takes the origin's answer
/// from a closure); [`MetaFetcher::send`] plugs in a real HTTP GET.
mod meta {
    use std::collections::HashMap;

    use sha2::{Digest, Sha256};

    /// What the origin answered, reduced to what the fetcher looks at.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct OriginResponse {
        pub status: u16,
        pub cache_control: Option<String>,
        pub last_modified: Option<String>,
        pub etag: Option<String>,
        pub body: Vec<u8>,
    }

    impl OriginResponse {
        /// A 200 with `body` and no caching headers.
        pub fn ok(body: &[u8]) -> Self {
            Self {
                status: 200,
                cache_control: None,
                last_modified: None,
                etag: None,
                body: body.to_vec(),
            }
        }

        pub fn status(mut self, status: u16) -> Self {
            self.status = status;
            self
        }

        pub fn cache_control(mut self, v: &str) -> Self {
            self.cache_control = Some(v.to_owned());
            self
        }

        pub fn last_modified(mut self, v: &str) -> Self {
            self.last_modified = Some(v.to_owned());
            self
        }

        pub fn etag(mut self, v: &str) -> Self {
            self.etag = Some(v.to_owned());
            self
        }

        /// One unconditional GET, as the fetcher makes it.
        async fn fetch(client: &reqwest::Client, url: &str) -> Self {
            let r = client
                .get(url)
                .send()
                .await
                .unwrap_or_else(|e| panic!("GET {url}: {e}"));
            let header = |name: &str| {
                r.headers().get(name).map(|v| {
                    v.to_str()
                        .unwrap_or_else(|_| panic!("{name} is not ASCII"))
                        .to_owned()
                })
            };
            let (cache_control, last_modified, etag) = (
                header("cache-control"),
                header("last-modified"),
                header("etag"),
            );
            let status = r.status().as_u16();
            let body = r.bytes().await.expect("the body arrives").to_vec();
            Self {
                status,
                cache_control,
                last_modified,
                etag,
                body,
            }
        }
    }

    /// How a response may be reused, decided from its headers alone (§2's table).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Reuse {
        /// `max-age=n`: reuse without asking while `now < fetched_at + n`.
        For(u64),
        /// `no-cache` with `Last-Modified`: ask on every send, keep the copy while
        /// `Last-Modified` is unchanged.
        WhileLastModifiedUnchanged,
        /// `ETag` alone: Meta's undisclosed logic, modelled as asking on every send and keeping
        /// the copy while the `ETag` is unchanged.
        WhileEtagUnchanged,
        /// Everything else: not cached.
        Never,
    }

    impl Reuse {
        pub fn of(r: &OriginResponse) -> Self {
            let Some(cc) = &r.cache_control else {
                return match (&r.last_modified, &r.etag) {
                    (None, Some(_)) => Self::WhileEtagUnchanged,
                    // `Last-Modified` is only documented together with `no-cache`.
                    _ => Self::Never,
                };
            };
            let directives: Vec<String> = cc
                .split(',')
                .map(|d| d.trim().to_ascii_lowercase())
                .collect();
            let has = |name: &str| {
                directives
                    .iter()
                    .any(|d| d == name || d.starts_with(&format!("{name}=")))
            };
            if has("no-store") || has("private") {
                return Self::Never;
            }
            if has("no-cache") {
                return if r.last_modified.is_some() {
                    Self::WhileLastModifiedUnchanged
                } else {
                    Self::Never // "Requires Last-Modified."
                };
            }
            directives
                .iter()
                .find_map(|d| d.strip_prefix("max-age=")?.parse().ok())
                .map_or(Self::Never, Self::For)
        }
    }

    /// Where the recipient's bytes came from.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Source {
        /// The fetcher's cache: no origin request.
        Cache,
        /// An origin request made for this send (the bytes may still be the cached copy, under
        /// `no-cache` with an unchanged `Last-Modified`).
        Origin,
    }

    /// The outcome of one send.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Delivery {
        /// SHA-256 (lowercase hex) of what the recipient got; `None` when the send failed.
        pub sha256: Option<String>,
        pub source: Source,
        /// This send replaced an earlier cached copy of the URL (revalidation rules only).
        pub replaced: bool,
    }

    /// One request the fetcher made to the origin.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct OriginRequest {
        pub at: u64,
        pub url: String,
        pub status: u16,
        pub cache_control: Option<String>,
        pub last_modified: Option<String>,
        pub etag: Option<String>,
        pub sha256: String,
    }

    #[derive(Debug, Clone)]
    struct Entry {
        fetched_at: u64,
        reuse: Reuse,
        last_modified: Option<String>,
        etag: Option<String>,
        sha256: String,
    }

    pub struct MetaFetcher {
        client: reqwest::Client,
        cache: HashMap<String, Entry>,
        requests: Vec<OriginRequest>,
        replacements: usize,
        clock: u64,
    }

    impl Default for MetaFetcher {
        fn default() -> Self {
            Self::new()
        }
    }

    impl MetaFetcher {
        pub fn new() -> Self {
            let client = reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .user_agent("facebookexternalua")
                .build()
                .unwrap();
            Self {
                client,
                cache: HashMap::new(),
                requests: Vec::new(),
                replacements: 0,
                clock: 0,
            }
        }

        /// One message send with `link: url` at simulated time `now`, against the real origin.
        pub async fn send(&mut self, url: &str, now: u64) -> Delivery {
            self.tick(now);
            if let Some(d) = self.reuse(url, now) {
                return d;
            }
            let response = OriginResponse::fetch(&self.client, url).await;
            self.absorb(url, now, response)
        }

        /// The same decisions with the origin's answer made up by `origin`, which is called only
        /// when the fetcher requests the origin.
        pub fn send_with(
            &mut self,
            url: &str,
            now: u64,
            origin: impl FnOnce() -> OriginResponse,
        ) -> Delivery {
            self.tick(now);
            if let Some(d) = self.reuse(url, now) {
                return d;
            }
            self.absorb(url, now, origin())
        }

        /// Origin requests made so far.
        pub fn requests(&self) -> usize {
            self.requests.len()
        }

        /// Cached copies replaced by a revalidation (a different `Last-Modified`, or `ETag`).
        pub fn replacements(&self) -> usize {
            self.replacements
        }

        pub fn last_request(&self) -> &OriginRequest {
            self.requests.last().expect("the origin was requested")
        }

        pub fn is_cached(&self, url: &str) -> bool {
            self.cache.contains_key(url)
        }

        fn tick(&mut self, now: u64) {
            assert!(now >= self.clock, "the simulated clock runs backwards");
            self.clock = now;
        }

        /// A delivery from the cache, if the rule of the cached copy allows one without asking.
        fn reuse(&self, url: &str, now: u64) -> Option<Delivery> {
            let entry = self.cache.get(url)?;
            match entry.reuse {
                Reuse::For(n) if now < entry.fetched_at + n => Some(Delivery {
                    sha256: Some(entry.sha256.clone()),
                    source: Source::Cache,
                    replaced: false,
                }),
                _ => None,
            }
        }

        /// Record an origin answer and decide what the recipient gets and what stays cached.
        fn absorb(&mut self, url: &str, now: u64, r: OriginResponse) -> Delivery {
            let sha256 = hex::encode(Sha256::digest(&r.body));
            self.requests.push(OriginRequest {
                at: now,
                url: url.to_owned(),
                status: r.status,
                cache_control: r.cache_control.clone(),
                last_modified: r.last_modified.clone(),
                etag: r.etag.clone(),
                sha256: sha256.clone(),
            });
            if r.status != 200 {
                return Delivery {
                    sha256: None,
                    source: Source::Origin,
                    replaced: false,
                };
            }
            let reuse = Reuse::of(&r);
            let fresh = Entry {
                fetched_at: now,
                reuse,
                last_modified: r.last_modified,
                etag: r.etag,
                sha256,
            };
            let previous = self.cache.remove(url);
            let (kept, replaced) = match (reuse, previous) {
                (Reuse::Never, _) => (None, false),
                (Reuse::For(_), _) => (Some(fresh.clone()), false),
                (Reuse::WhileLastModifiedUnchanged, Some(old))
                    if old.last_modified == fresh.last_modified =>
                {
                    (Some(Entry { reuse, ..old }), false)
                }
                (Reuse::WhileEtagUnchanged, Some(old)) if old.etag == fresh.etag => {
                    (Some(Entry { reuse, ..old }), false)
                }
                (_, old) => (Some(fresh.clone()), old.is_some()),
            };
            if replaced {
                self.replacements += 1;
            }
            let delivered = kept.as_ref().map_or(fresh.sha256, |e| e.sha256.clone());
            if let Some(e) = kept {
                self.cache.insert(url.to_owned(), e);
            }
            Delivery {
                sha256: Some(delivered),
                source: Source::Origin,
                replaced,
            }
        }
    }
}

// ---- the model alone, on synthetic responses ----------------------------------------------

mod model {
    use super::meta::{Delivery, MetaFetcher, OriginResponse, Reuse, Source};
    use sha2::{Digest, Sha256};

    const URL: &str = "https://media.example.com/media/promo/a.jpg";
    const LM1: &str = "Tue, 22 Feb 2022 22:22:22 GMT";
    const LM2: &str = "Tue, 22 Feb 2022 22:22:23 GMT";

    fn sha(b: &[u8]) -> Option<String> {
        Some(hex::encode(Sha256::digest(b)))
    }

    fn from(source: Source, body: &[u8], replaced: bool) -> Delivery {
        Delivery {
            sha256: sha(body),
            source,
            replaced,
        }
    }

    /// An origin that must not be asked.
    fn unreachable() -> OriginResponse {
        panic!("the fetcher requested the origin although its copy was reusable")
    }

    #[test]
    fn rules_follow_the_documented_table() {
        let r = |cc: Option<&str>, lm: Option<&str>, etag: Option<&str>| {
            let mut r = OriginResponse::ok(b"x");
            r.cache_control = cc.map(str::to_owned);
            r.last_modified = lm.map(str::to_owned);
            r.etag = etag.map(str::to_owned);
            Reuse::of(&r)
        };
        let e = Some("\"33a64df5\"");
        assert_eq!(r(Some("max-age=604800"), None, e), Reuse::For(604800));
        assert_eq!(r(Some("Max-Age=60"), Some(LM1), e), Reuse::For(60));
        assert_eq!(r(Some("max-age=0"), None, None), Reuse::For(0));
        assert_eq!(
            r(Some("no-cache"), Some(LM1), e),
            Reuse::WhileLastModifiedUnchanged
        );
        assert_eq!(r(Some("no-cache"), None, e), Reuse::Never);
        assert_eq!(r(Some("no-store"), Some(LM1), e), Reuse::Never);
        assert_eq!(r(Some("private"), Some(LM1), e), Reuse::Never);
        assert_eq!(r(Some("private, max-age=60"), None, None), Reuse::Never);
        assert_eq!(r(Some("public"), None, e), Reuse::Never);
        assert_eq!(r(None, None, e), Reuse::WhileEtagUnchanged);
        assert_eq!(r(None, Some(LM1), e), Reuse::Never);
        assert_eq!(r(None, Some(LM1), None), Reuse::Never);
        assert_eq!(r(None, None, None), Reuse::Never);
    }

    #[test]
    fn etag_only_is_revalidated_on_every_send_and_replaced_when_the_etag_changes() {
        let mut f = MetaFetcher::new();
        let a = OriginResponse::ok(b"A").etag("\"a\"");
        // The origin changes the bytes but not the ETag: the copy stays (the ETag is the key).
        let a_again = OriginResponse::ok(b"A'").etag("\"a\"");
        let b = OriginResponse::ok(b"B").etag("\"b\"");

        assert_eq!(
            f.send_with(URL, 0, || a.clone()),
            from(Source::Origin, b"A", false)
        );
        assert!(f.is_cached(URL));
        assert_eq!(
            f.send_with(URL, 1, || a_again),
            from(Source::Origin, b"A", false)
        );
        assert_eq!(
            f.send_with(URL, 2, || b.clone()),
            from(Source::Origin, b"B", true)
        );
        assert_eq!(f.send_with(URL, 3, || b), from(Source::Origin, b"B", false));
        assert_eq!((f.requests(), f.replacements()), (4, 1));
        assert_eq!(f.last_request().etag.as_deref(), Some("\"b\""));
    }

    #[test]
    fn nothing_at_all_is_never_cached() {
        let mut f = MetaFetcher::new();
        for (t, body) in [(0, b"A"), (0, b"B"), (5, b"C"), (1_000_000, b"D")] {
            let d = f.send_with(URL, t, || OriginResponse::ok(body));
            assert_eq!(d, from(Source::Origin, body, false));
            assert!(!f.is_cached(URL));
        }
        assert_eq!((f.requests(), f.replacements()), (4, 0));
    }

    #[test]
    fn etag_is_ignored_when_cache_control_or_last_modified_is_present() {
        // max-age: the copy is reused although the origin's ETag would differ.
        let mut f = MetaFetcher::new();
        let a = OriginResponse::ok(b"A")
            .cache_control("max-age=60")
            .etag("\"a\"");
        f.send_with(URL, 0, || a);
        assert_eq!(
            f.send_with(URL, 59, unreachable),
            from(Source::Cache, b"A", false)
        );

        // no-cache with an unchanged Last-Modified: a new ETag and new bytes replace nothing.
        let mut f = MetaFetcher::new();
        let nc = |body: &[u8], etag: &str| {
            OriginResponse::ok(body)
                .cache_control("no-cache")
                .last_modified(LM1)
                .etag(etag)
        };
        f.send_with(URL, 0, || nc(b"A", "\"a\""));
        assert_eq!(
            f.send_with(URL, 1, || nc(b"B", "\"b\"")),
            from(Source::Origin, b"A", false)
        );
        assert_eq!((f.requests(), f.replacements()), (2, 0));

        // Last-Modified without Cache-Control: the ETag does not make it cacheable.
        let mut f = MetaFetcher::new();
        let lm = OriginResponse::ok(b"A").last_modified(LM1).etag("\"a\"");
        f.send_with(URL, 0, || lm.clone());
        assert!(!f.is_cached(URL));
        f.send_with(URL, 0, || lm);
        assert_eq!((f.requests(), f.replacements()), (2, 0));
    }

    #[test]
    fn max_age_is_fresh_until_fetched_at_plus_n_exclusive() {
        let mut f = MetaFetcher::new();
        let r = |body: &[u8]| OriginResponse::ok(body).cache_control("max-age=10");
        assert_eq!(
            f.send_with(URL, 100, || r(b"A")),
            from(Source::Origin, b"A", false)
        );
        assert_eq!(
            f.send_with(URL, 109, unreachable),
            from(Source::Cache, b"A", false)
        );
        assert_eq!(
            f.send_with(URL, 110, || r(b"B")),
            from(Source::Origin, b"B", false)
        );
        assert_eq!(
            f.send_with(URL, 119, unreachable),
            from(Source::Cache, b"B", false)
        );
        assert_eq!((f.requests(), f.replacements()), (2, 0));

        // max-age=0 is stored but never reusable.
        let mut f = MetaFetcher::new();
        for t in [0, 0, 1] {
            let d = f.send_with(URL, t, || {
                OriginResponse::ok(b"A").cache_control("max-age=0")
            });
            assert_eq!(d.source, Source::Origin);
        }
        assert_eq!(f.requests(), 3);
    }

    #[test]
    fn no_cache_replaces_only_on_a_different_last_modified() {
        let mut f = MetaFetcher::new();
        let r = |body: &[u8], lm: &str| {
            OriginResponse::ok(body)
                .cache_control("no-cache")
                .last_modified(lm)
        };
        assert_eq!(
            f.send_with(URL, 0, || r(b"A", LM1)),
            from(Source::Origin, b"A", false)
        );
        assert_eq!(
            f.send_with(URL, 0, || r(b"A", LM1)),
            from(Source::Origin, b"A", false)
        );
        assert_eq!(
            f.send_with(URL, 1, || r(b"B", LM2)),
            from(Source::Origin, b"B", true)
        );
        // Different is enough: an older date replaces too.
        assert_eq!(
            f.send_with(URL, 2, || r(b"A", LM1)),
            from(Source::Origin, b"A", true)
        );
        assert_eq!((f.requests(), f.replacements()), (4, 2));

        // Without Last-Modified, no-cache is not cacheable.
        let mut f = MetaFetcher::new();
        let bare = || {
            OriginResponse::ok(b"A")
                .cache_control("no-cache")
                .etag("\"a\"")
        };
        f.send_with(URL, 0, bare);
        assert!(!f.is_cached(URL));
        f.send_with(URL, 0, bare);
        assert_eq!((f.requests(), f.replacements()), (2, 0));
    }

    #[test]
    fn no_store_and_private_drop_an_earlier_copy() {
        for cc in ["no-store", "private"] {
            let mut f = MetaFetcher::new();
            f.send_with(URL, 0, || {
                OriginResponse::ok(b"A").cache_control("max-age=5")
            });
            f.send_with(URL, 5, || OriginResponse::ok(b"B").cache_control(cc));
            assert!(!f.is_cached(URL), "{cc}");
            let d = f.send_with(URL, 6, || OriginResponse::ok(b"C").cache_control(cc));
            assert_eq!(d, from(Source::Origin, b"C", false), "{cc}");
            assert_eq!((f.requests(), f.replacements()), (3, 0), "{cc}");
        }
    }

    #[test]
    fn the_cache_key_is_the_full_url_with_its_query() {
        let mut f = MetaFetcher::new();
        let r = |body: &[u8]| OriginResponse::ok(body).cache_control("max-age=60");
        f.send_with(&format!("{URL}?v=1"), 0, || r(b"A"));
        let d = f.send_with(&format!("{URL}?v=2"), 1, || r(b"B"));
        assert_eq!(d, from(Source::Origin, b"B", false));
        let d = f.send_with(&format!("{URL}?v=1"), 2, unreachable);
        assert_eq!(d, from(Source::Cache, b"A", false));
        assert_eq!(f.send_with(URL, 3, || r(b"C")).source, Source::Origin);
        assert_eq!(f.requests(), 3);
        assert_eq!(f.last_request().url, URL);
    }

    #[test]
    fn a_failed_answer_delivers_nothing_and_keeps_the_cache() {
        let mut f = MetaFetcher::new();
        let nc = OriginResponse::ok(b"A")
            .cache_control("no-cache")
            .last_modified(LM1);
        f.send_with(URL, 0, || nc);
        for status in [302, 404, 503] {
            let d = f.send_with(URL, 1, || OriginResponse::ok(b"<html>").status(status));
            assert_eq!(d.sha256, None);
            assert_eq!(f.last_request().status, status);
        }
        assert!(f.is_cached(URL));
        assert_eq!((f.requests(), f.replacements()), (4, 0));
    }
}

// ---- helpers for the server timelines -----------------------------------------------------

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The fields of an asset record the timelines use.
#[derive(Debug, Clone)]
struct Asset {
    url: String,
    link: String,
    sha256: String,
    etag: String,
    last_modified: String,
    cache_control: String,
    policy_source: String,
}

impl Asset {
    fn from_json(v: &Value) -> Self {
        let field = |name: &str| {
            v[name]
                .as_str()
                .unwrap_or_else(|| panic!("record has no string {name}: {v}"))
                .to_owned()
        };
        let a = Self {
            url: field("url"),
            link: field("link"),
            sha256: field("sha256"),
            etag: field("etag"),
            last_modified: field("last_modified"),
            cache_control: field("cache_control"),
            policy_source: field("policy_source"),
        };
        // The link is the url plus a version (today the first 16 hex of the SHA-256; the
        // timelines only rely on it changing with the content).
        assert!(a.link.starts_with(&format!("{}?v=", a.url)), "{v}");
        a
    }

    fn last_modified_secs(&self) -> u64 {
        httpdate::parse_http_date(&self.last_modified)
            .expect("Last-Modified is an HTTP date")
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }
}

async fn upload(s: &TestServer, path: &str, bytes: Vec<u8>) -> Asset {
    Asset::from_json(&s.upload(path, "image/jpeg", bytes).await)
}

async fn set_folder_policy(s: &TestServer, folder: &str, policy: &str) {
    let r = s
        .admin(Method::PUT, &format!("/policies/{folder}"))
        .json(&json!({"cache_control": policy}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "PUT policy: {}", r.status());
    let rule: Value = r.json().await.unwrap();
    assert_eq!(rule["folder"], folder);
    assert_eq!(rule["cache_control"], policy);
}

async fn patch_override(s: &TestServer, path: &str, policy: Value) -> Asset {
    let r = s
        .admin(Method::PATCH, &format!("/assets/{path}"))
        .json(&json!({"cache_control": policy}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    Asset::from_json(&r.json().await.unwrap())
}

async fn record(s: &TestServer, path: &str) -> Asset {
    let r = s
        .admin(Method::GET, &format!("/assets/{path}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    Asset::from_json(&r.json().await.unwrap())
}

/// Assert that the fetcher's latest origin request got `asset` under exactly `cache_control`.
fn assert_last_origin_answer(
    f: &MetaFetcher,
    url: &str,
    at: u64,
    cache_control: &str,
    asset: &Asset,
) {
    let r = f.last_request();
    assert_eq!((r.url.as_str(), r.at, r.status), (url, at, 200));
    assert_eq!(r.cache_control.as_deref(), Some(cache_control));
    assert_eq!(
        r.last_modified.as_deref(),
        Some(asset.last_modified.as_str())
    );
    assert_eq!(r.etag.as_deref(), Some(asset.etag.as_str()));
    assert_eq!(r.sha256, asset.sha256);
}

/// Send `url` at each time in `times` and insist each send went to `source` and delivered
/// `asset`'s bytes.
async fn sends(f: &mut MetaFetcher, url: &str, times: &[u64], source: Source, asset: &Asset) {
    for &t in times {
        let d = f.send(url, t).await;
        assert_eq!(d.source, source, "send of {url} at t={t}");
        assert_eq!(
            d.sha256.as_deref(),
            Some(asset.sha256.as_str()),
            "send at t={t}"
        );
    }
}

/// Wait (under a second) until a real second has just begun, so that what follows fits in it.
async fn start_of_a_real_second() {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_millis();
    if ms > 100 {
        tokio::time::sleep(Duration::from_millis(u64::from(1000 - ms) + 5)).await;
    }
}

// ---- the four policies over a timeline ----------------------------------------------------

async fn max_age_reuses_the_copy_until_fetched_at_plus_n(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    set_folder_policy(&s, "promo", "max-age=3600").await;
    let a = upload(&s, "promo/banner.jpg", fixtures::jpeg(4000, 1)).await;
    assert_eq!(a.cache_control, "max-age=3600");
    assert_eq!(a.policy_source, "folder:promo");

    let mut f = MetaFetcher::new();
    sends(&mut f, &a.link, &[0], Source::Origin, &a).await;
    assert_last_origin_answer(&f, &a.link, 0, "max-age=3600", &a);
    sends(&mut f, &a.link, &[10, 3599], Source::Cache, &a).await;
    assert_eq!(f.requests(), 1);

    // Fresh while now < 0 + 3600: the send at exactly 3600 asks again.
    sends(&mut f, &a.link, &[3600], Source::Origin, &a).await;
    assert_last_origin_answer(&f, &a.link, 3600, "max-age=3600", &a);
    sends(&mut f, &a.link, &[3601, 7199], Source::Cache, &a).await;
    assert_eq!(f.requests(), 2);
    sends(&mut f, &a.link, &[7200], Source::Origin, &a).await;
    assert_eq!(f.requests(), 3);

    // The plain url is another cache entry (Meta caches by URL).
    sends(&mut f, &a.url, &[7201], Source::Origin, &a).await;
    sends(&mut f, &a.url, &[7202], Source::Cache, &a).await;
    assert_eq!((f.requests(), f.replacements()), (4, 0));
}

async fn no_cache_requests_every_send_and_replaces_only_when_last_modified_changes(
    backend: Backend,
) {
    let s = TestServer::start_on(backend).await;
    set_folder_policy(&s, "news", "no-cache").await;
    let a = upload(&s, "news/today.jpg", fixtures::jpeg(3000, 1)).await;
    assert_eq!(a.cache_control, "no-cache");

    // The same URL throughout: only Last-Modified can tell the fetcher the bytes changed.
    let url = a.url.clone();
    let mut f = MetaFetcher::new();
    for t in [0, 0, 1, 60, 86_400] {
        let d = f.send(&url, t).await;
        assert_eq!((d.source, d.replaced), (Source::Origin, false), "t={t}");
        assert_eq!(d.sha256.as_deref(), Some(a.sha256.as_str()));
        assert_last_origin_answer(&f, &url, t, "no-cache", &a);
    }
    assert_eq!((f.requests(), f.replacements()), (5, 0));

    // Replace the bytes at the same path: Last-Modified differs, so the copy is replaced.
    let b = upload(&s, "news/today.jpg", fixtures::jpeg(3000, 2)).await;
    assert_eq!(b.url, url);
    assert_ne!(b.last_modified, a.last_modified);
    let d = f.send(&url, 86_401).await;
    assert_eq!((d.source, d.replaced), (Source::Origin, true));
    assert_eq!(
        d.sha256.as_deref(),
        Some(b.sha256.as_str()),
        "the recipient gets the new bytes"
    );
    assert_last_origin_answer(&f, &url, 86_401, "no-cache", &b);

    // No change since: requests continue, replacements do not.
    for t in [86_402, 90_000] {
        let d = f.send(&url, t).await;
        assert_eq!((d.source, d.replaced), (Source::Origin, false));
        assert_eq!(d.sha256.as_deref(), Some(b.sha256.as_str()));
    }
    assert_eq!((f.requests(), f.replacements()), (8, 1));
}

/// Every send, however close in time, is an origin request, and nothing is kept.
async fn assert_never_cached(s: &TestServer, asset: &Asset, cache_control: &str) {
    let mut f = MetaFetcher::new();
    let times = [0, 0, 1, 59, 3600, 86_400];
    for (i, &t) in times.iter().enumerate() {
        let d = f.send(&asset.link, t).await;
        assert_eq!((d.source, d.replaced), (Source::Origin, false), "t={t}");
        assert_eq!(d.sha256.as_deref(), Some(asset.sha256.as_str()));
        assert_last_origin_answer(&f, &asset.link, t, cache_control, asset);
        assert!(!f.is_cached(&asset.link));
        assert_eq!(f.requests(), i + 1);
    }
    assert_eq!(f.replacements(), 0);
    // A plain GET agrees with what the fetcher saw.
    let r = s.get(&asset.link).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], cache_control);
}

async fn no_store_is_never_cached(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    set_folder_policy(&s, "otp", "max-age=3600").await;
    // An asset override beats the folder rule.
    let a = upload(&s, "otp/code.jpg?cache=no-store", fixtures::jpeg(2000, 3)).await;
    assert_eq!(
        (a.cache_control.as_str(), a.policy_source.as_str()),
        ("no-store", "asset")
    );
    assert_never_cached(&s, &a, "no-store").await;
}

async fn private_is_never_cached(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    set_folder_policy(&s, "invoices", "private").await;
    let a = upload(&s, "invoices/2024/0001.jpg", fixtures::jpeg(2000, 4)).await;
    assert_eq!(
        (a.cache_control.as_str(), a.policy_source.as_str()),
        ("private", "folder:invoices")
    );
    assert_never_cached(&s, &a, "private").await;
}

// ---- replacements and policy changes ------------------------------------------------------

async fn a_replaced_asset_under_max_age_reaches_the_fetcher_through_its_new_link(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    set_folder_policy(&s, "promo", "max-age=3600").await;
    let a = upload(&s, "promo/sale.jpg", fixtures::jpeg(5000, 1)).await;
    let mut f = MetaFetcher::new();
    sends(&mut f, &a.link, &[0], Source::Origin, &a).await;

    let b = upload(&s, "promo/sale.jpg", fixtures::jpeg(5000, 2)).await;
    assert_eq!(b.url, a.url);
    assert_ne!(b.link, a.link, "new bytes need a new link");

    // The old link within max-age: Meta still has the old bytes (it caches by URL).
    sends(&mut f, &a.link, &[100], Source::Cache, &a).await;
    // The new link: a new URL, so a new origin request, and the new bytes at once.
    sends(&mut f, &b.link, &[101], Source::Origin, &b).await;
    assert_last_origin_answer(&f, &b.link, 101, "max-age=3600", &b);
    // Both copies live side by side, each until its own fetched_at + 3600.
    sends(&mut f, &a.link, &[3599], Source::Cache, &a).await;
    sends(&mut f, &b.link, &[3599], Source::Cache, &b).await;
    assert_eq!((f.requests(), f.replacements()), (2, 0));

    // The old link still answers 200 from the origin, with the current bytes.
    let r = s.get(&a.link).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "max-age=3600");
    assert_eq!(r.headers()["last-modified"], b.last_modified.as_str());
    assert_eq!(sha256(&r.bytes().await.unwrap()), b.sha256);
    // Once the old copy expires, the old link brings the new bytes too.
    sends(&mut f, &a.link, &[3600], Source::Origin, &b).await;
    assert_last_origin_answer(&f, &a.link, 3600, "max-age=3600", &b);
    sends(&mut f, &b.link, &[3600], Source::Cache, &b).await;
    assert_eq!((f.requests(), f.replacements()), (3, 0));
}

async fn a_policy_change_takes_effect_on_the_next_origin_response(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    set_folder_policy(&s, "promo", "max-age=3600").await;
    let a = upload(&s, "promo/flash.jpg", fixtures::jpeg(4000, 5)).await;
    let mut f = MetaFetcher::new();
    sends(&mut f, &a.link, &[0], Source::Origin, &a).await;
    assert_last_origin_answer(&f, &a.link, 0, "max-age=3600", &a);

    set_folder_policy(&s, "promo", "no-store").await;
    let now = record(&s, "promo/flash.jpg").await;
    assert_eq!(
        (now.cache_control.as_str(), now.policy_source.as_str()),
        ("no-store", "folder:promo")
    );
    assert_eq!(
        now.last_modified, a.last_modified,
        "a policy is not a content change"
    );
    assert_eq!(now.link, a.link);

    // The copy already held stays until it expires: the fetcher has no way to know.
    sends(&mut f, &a.link, &[10], Source::Cache, &a).await;
    // A URL the fetcher has not cached gets no-store at once.
    sends(&mut f, &a.url, &[20], Source::Origin, &a).await;
    assert_last_origin_answer(&f, &a.url, 20, "no-store", &a);
    assert!(!f.is_cached(&a.url));
    sends(&mut f, &a.link, &[3599], Source::Cache, &a).await;
    assert_eq!(f.requests(), 2);

    // The next origin response for the link carries no-store, and caching stops.
    sends(&mut f, &a.link, &[3600], Source::Origin, &a).await;
    assert_last_origin_answer(&f, &a.link, 3600, "no-store", &a);
    assert!(!f.is_cached(&a.link));
    sends(&mut f, &a.link, &[3601, 3602], Source::Origin, &a).await;
    assert_eq!((f.requests(), f.replacements()), (5, 0));

    // And back: max-age again makes the next response cacheable.
    set_folder_policy(&s, "promo", "max-age=60").await;
    sends(&mut f, &a.link, &[3603], Source::Origin, &a).await;
    assert_last_origin_answer(&f, &a.link, 3603, "max-age=60", &a);
    sends(&mut f, &a.link, &[3662], Source::Cache, &a).await;
    sends(&mut f, &a.link, &[3663], Source::Origin, &a).await;
    assert_eq!(f.requests(), 7);
}

async fn an_asset_override_applies_at_once_and_leaves_last_modified_alone(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    set_folder_policy(&s, "promo", "max-age=3600").await;
    let a = upload(&s, "promo/coupon.jpg", fixtures::jpeg(3000, 6)).await;

    let p = patch_override(&s, "promo/coupon.jpg", json!("private")).await;
    assert_eq!(
        (p.cache_control.as_str(), p.policy_source.as_str()),
        ("private", "asset")
    );
    assert_eq!(
        (p.last_modified.as_str(), p.link.as_str()),
        (a.last_modified.as_str(), a.link.as_str())
    );
    let mut f = MetaFetcher::new();
    sends(&mut f, &a.link, &[0, 1], Source::Origin, &a).await;
    assert_last_origin_answer(&f, &a.link, 1, "private", &a);

    // Clearing the override brings the folder rule back.
    let p = patch_override(&s, "promo/coupon.jpg", Value::Null).await;
    assert_eq!(
        (p.cache_control.as_str(), p.policy_source.as_str()),
        ("max-age=3600", "folder:promo")
    );
    sends(&mut f, &a.link, &[2], Source::Origin, &a).await;
    assert_last_origin_answer(&f, &a.link, 2, "max-age=3600", &a);
    sends(&mut f, &a.link, &[3], Source::Cache, &a).await;
    assert_eq!((f.requests(), f.replacements()), (3, 0));
}

// ---- Last-Modified across rapid replacements ----------------------------------------------

async fn last_modified_differs_across_rapid_replacements_and_a_rollback(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    set_folder_policy(&s, "live", "no-cache").await;
    let (bytes_a, bytes_b) = (fixtures::jpeg(3000, 10), fixtures::jpeg(3000, 11));
    let path = "live/score.jpg";
    let mut f = MetaFetcher::new();

    // A, then B, then A again, each sent at once after the last: all three start within one
    // real second. The server publishes a second write to a path in the next second rather
    // than stamp a Last-Modified later than its Date (RFC 9110 §8.8.2.1).
    start_of_a_real_second().await;
    let a = upload(&s, path, bytes_a.clone()).await;
    let d = f.send(&a.url, 0).await;
    assert_eq!((d.source, d.replaced), (Source::Origin, false));
    assert_eq!(d.sha256.as_deref(), Some(a.sha256.as_str()));

    let b = upload(&s, path, bytes_b.clone()).await;
    let d = f.send(&a.url, 1).await;
    assert!(
        d.replaced,
        "B within a second of A: Last-Modified must differ"
    );
    assert_eq!(d.sha256.as_deref(), Some(b.sha256.as_str()));
    assert_last_origin_answer(&f, &a.url, 1, "no-cache", &b);

    let a2 = upload(&s, path, bytes_a.clone()).await;
    let d = f.send(&a.url, 2).await;
    assert!(
        d.replaced,
        "restoring A is a change: Last-Modified must differ again"
    );
    assert_eq!(d.sha256.as_deref(), Some(a.sha256.as_str()));
    assert_last_origin_answer(&f, &a.url, 2, "no-cache", &a2);
    assert_eq!((f.requests(), f.replacements()), (3, 2));

    // Same bytes, same ETag; Last-Modified only ever moves forward, never past Date.
    assert_eq!(
        (a2.sha256.as_str(), a2.etag.as_str()),
        (a.sha256.as_str(), a.etag.as_str())
    );
    let lm = [&a, &b, &a2].map(Asset::last_modified_secs);
    assert!(
        lm[0] < lm[1] && lm[1] < lm[2],
        "Last-Modified must move forward: {lm:?}"
    );
    let served = s.client.get(&a.url).send().await.unwrap();
    let date = httpdate::parse_http_date(served.headers()["date"].to_str().unwrap()).unwrap();
    let last_modified =
        httpdate::parse_http_date(served.headers()["last-modified"].to_str().unwrap()).unwrap();
    assert!(last_modified <= date, "Last-Modified is later than Date");
}

/// A rollback (A -> B -> A) is a content change, so under `max-age` it needs a link Meta has
/// never cached. Every `v` is served the current bytes, so if A's old link was fetched while B
/// was current, Meta holds B under it: the link handed out after the restore must differ from
/// A's old one.
async fn a_rollback_under_max_age_gets_a_link_meta_has_not_cached(backend: Backend) {
    let s = TestServer::start_on(backend).await;
    set_folder_policy(&s, "promo", "max-age=3600").await;
    let (bytes_a, bytes_b) = (fixtures::jpeg(4000, 20), fixtures::jpeg(4000, 21));
    let a = upload(&s, "promo/hero.jpg", bytes_a.clone()).await;
    let b = upload(&s, "promo/hero.jpg", bytes_b).await;
    let mut f = MetaFetcher::new();

    // A message still carrying A's link (a scheduled campaign, a retry) is sent while B is
    // current: the origin serves B for it, and Meta caches B under A's link.
    sends(&mut f, &a.link, &[0], Source::Origin, &b).await;
    assert_last_origin_answer(&f, &a.link, 0, "max-age=3600", &b);

    // The operator restores A and sends the link the upload returned.
    let a2 = upload(&s, "promo/hero.jpg", bytes_a).await;
    assert_eq!(a2.sha256, a.sha256);
    let d = f.send(&a2.link, 10).await;
    assert_eq!(
        d.sha256.as_deref(),
        Some(a2.sha256.as_str()),
        "the link returned after restoring A delivers B from Meta's cache \
         (link {}, {:?}): a rollback's link repeats an earlier version's link",
        a2.link,
        d.source,
    );
}

on_both_backends! {
    max_age_reuses_the_copy_until_fetched_at_plus_n,
    no_cache_requests_every_send_and_replaces_only_when_last_modified_changes,
    no_store_is_never_cached,
    private_is_never_cached,
    a_replaced_asset_under_max_age_reaches_the_fetcher_through_its_new_link,
    a_policy_change_takes_effect_on_the_next_origin_response,
    an_asset_override_applies_at_once_and_leaves_last_modified_alone,
    last_modified_differs_across_rapid_replacements_and_a_rollback,
    a_rollback_under_max_age_gets_a_link_meta_has_not_cached,
}
