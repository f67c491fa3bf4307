//! The per-asset fetch log: the last few public fetches of each asset, in memory, for
//! `GET /api/fetches/{path}`.
//!
//! Its own module because it is a bounded cache with its own rules (which paths get an entry,
//! eviction, TTL, a cheap hash) that the layer only feeds: the layer looks up a [`Slot`] before
//! the answer and pushes an [`Entry`] after it (or, for a counted download, when it ends).

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};

use serde::Serialize;

use crate::clock::{http_date, unix_ms};
use crate::config::FetchLogSettings;

/// Longest user agent kept in the fetch log.
const MAX_AGENT: usize = 256;

/// One public fetch of an asset, as the admin API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Fetch {
    /// When it was answered (IMF-fixdate).
    pub at: String,
    /// The same, in milliseconds since the epoch.
    pub at_unix_ms: u64,
    /// `GET` or `HEAD`.
    pub method: &'static str,
    /// The status answered.
    pub status: u16,
    /// Body bytes sent: handed to the connection, so for a download cut off before its end,
    /// fewer than its length (0 for a 304 or a HEAD).
    pub bytes: u64,
    /// The download ended before its whole body was sent: the client went away or the
    /// connection failed (`bytes` says how far it got).
    pub cut_off: bool,
    /// The client's `User-Agent` (at most 256 characters).
    pub user_agent: Option<String>,
    /// `If-None-Match`, `If-Modified-Since` or `Range` was sent: the client had a copy, or
    /// wanted part of one.
    pub conditional: bool,
    /// The `User-Agent` is Meta's media fetcher's (`metrics.meta_user_agents`).
    pub meta: bool,
}

/// A fetch as kept in an asset's ring.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub(super) at_unix_ms: u64,
    pub(super) method: &'static str,
    pub(super) status: u16,
    pub(super) bytes: u64,
    pub(super) cut_off: bool,
    pub(super) user_agent: Option<Arc<str>>,
    pub(super) conditional: bool,
    pub(super) meta: bool,
}

type Ring = Arc<Mutex<VecDeque<Entry>>>;

/// A fetch log entry's destination.
pub(super) enum Slot {
    /// The asset's ring.
    Ring(Ring),
    /// A path with no ring yet (decoded).
    New(String),
    /// Nowhere: no fetch log, or a path that is not UTF-8.
    Off,
}

/// The last `per_asset` public fetches of each of at most `max_assets` assets, in memory.
///
/// A plain map under a read-write lock rather than a cache crate: a fetch takes the read lock
/// once and hashes the path once, which measured about twice as fast as moka's bookkeeping on
/// the 304 path. Eviction runs only when a new asset needs room: assets idle past the TTL go,
/// then, if still full, the least recently fetched tenth.
pub struct FetchLog {
    per_asset: usize,
    max_assets: usize,
    ttl_ms: u64,
    assets: Option<RwLock<HashMap<Box<str>, Ring, PathHash>>>,
}

/// FNV-1a: a few cycles for a short path, where SipHash costs tens of nanoseconds. Flooding is
/// no concern: only paths of existing assets (which the admin API creates) get an entry.
#[derive(Default, Clone, Copy)]
struct PathHash;

impl std::hash::BuildHasher for PathHash {
    type Hasher = Fnv;

    fn build_hasher(&self) -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

impl FetchLog {
    /// Sized by settings; `per_asset = 0` keeps nothing.
    pub fn new(settings: &FetchLogSettings) -> Self {
        let max_assets = usize::try_from(settings.max_assets).unwrap_or(usize::MAX);
        Self {
            per_asset: settings.per_asset,
            max_assets,
            ttl_ms: settings.ttl_secs.saturating_mul(1000),
            assets: (settings.per_asset > 0 && max_assets > 0)
                .then(|| RwLock::new(HashMap::default())),
        }
    }

    /// Make room for one more asset.
    fn evict(&self, map: &mut HashMap<Box<str>, Ring, PathHash>, now_ms: u64) {
        let last = |ring: &Ring| {
            ring.lock()
                .expect("fetch ring")
                .back()
                .map_or(0, |e| e.at_unix_ms)
        };
        map.retain(|_, ring| now_ms.saturating_sub(last(ring)) <= self.ttl_ms);
        if map.len() < self.max_assets {
            return;
        }
        let mut by_age: Vec<(u64, Box<str>)> =
            map.iter().map(|(k, r)| (last(r), k.clone())).collect();
        by_age.sort_unstable();
        let drop = (self.max_assets / 10).max(map.len() + 1 - self.max_assets);
        for (_, key) in by_age.into_iter().take(drop) {
            map.remove(&key);
        }
    }

    /// How many fetches are kept per asset.
    pub fn per_asset(&self) -> usize {
        self.per_asset
    }

    /// Where a fetch of the `/media/` URL path `raw` goes, looked up before the answer.
    pub(super) fn slot(&self, raw: &str) -> Slot {
        let Some(assets) = &self.assets else {
            return Slot::Off;
        };
        // Most paths have nothing to decode: skip the decoder's copy-on-write and UTF-8 check.
        let mut path = if raw.contains('%') {
            match percent_encoding::percent_decode_str(raw).decode_utf8() {
                Ok(path) => path,
                Err(_) => return Slot::Off,
            }
        } else {
            Cow::Borrowed(raw)
        };
        // Assets are kept under the composed (NFC) path: a decomposed spelling is the same
        // asset's fetch.
        let composed = match crate::asset::path::nfc(&path) {
            Cow::Owned(composed) => Some(composed),
            Cow::Borrowed(_) => None,
        };
        if let Some(composed) = composed {
            path = Cow::Owned(composed);
        }
        let found = assets.read().expect("fetch log").get(&*path).cloned();
        match found {
            Some(ring) => Slot::Ring(ring),
            None => Slot::New(path.into_owned()),
        }
    }

    /// Remember a fetch. A path seen for the first time gets an entry only when the answer
    /// shows the asset exists, so probes of random paths fill nothing.
    pub(super) fn push(&self, slot: Slot, mut entry: Entry, agent: Option<&str>) {
        let ring = match slot {
            Slot::Ring(ring) => ring,
            Slot::New(path) if matches!(entry.status, 200 | 206 | 304 | 403 | 412 | 416) => {
                let Some(assets) = &self.assets else { return };
                let mut map = assets.write().expect("fetch log");
                if let Some(ring) = map.get(path.as_str()) {
                    Arc::clone(ring)
                } else {
                    if map.len() >= self.max_assets {
                        self.evict(&mut map, entry.at_unix_ms);
                    }
                    let ring = Ring::default();
                    map.insert(path.into_boxed_str(), Arc::clone(&ring));
                    ring
                }
            }
            Slot::New(_) | Slot::Off => return,
        };
        let mut ring = ring.lock().expect("fetch ring");
        // The same fetcher asks again and again: share its user agent instead of copying it.
        if let Some(agent) = agent {
            let agent = truncate(agent, MAX_AGENT);
            entry.user_agent = match ring.back().and_then(|e| e.user_agent.as_ref()) {
                Some(last) if **last == *agent => Some(Arc::clone(last)),
                _ => Some(Arc::from(agent)),
            };
        }
        if ring.len() >= self.per_asset {
            ring.pop_front();
        }
        ring.push_back(entry);
    }

    /// The kept fetches of `path`, newest first.
    pub fn get(&self, path: &str) -> Vec<Fetch> {
        let Some(ring) = self
            .assets
            .as_ref()
            .and_then(|a| a.read().expect("fetch log").get(path).cloned())
        else {
            return Vec::new();
        };
        let ring = ring.lock().expect("fetch ring");
        let now_ms = unix_ms();
        if ring
            .back()
            .is_none_or(|e| now_ms.saturating_sub(e.at_unix_ms) > self.ttl_ms)
        {
            return Vec::new();
        }
        ring.iter()
            .rev()
            .map(|e| Fetch {
                at: http_date(e.at_unix_ms / 1000),
                at_unix_ms: e.at_unix_ms,
                method: e.method,
                status: e.status,
                bytes: e.bytes,
                cut_off: e.cut_off,
                user_agent: e.user_agent.as_deref().map(str::to_owned),
                conditional: e.conditional,
                meta: e.meta,
            })
            .collect()
    }
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(status: u16) -> Entry {
        Entry {
            at_unix_ms: unix_ms(),
            method: "GET",
            status,
            bytes: 1,
            cut_off: false,
            user_agent: None,
            conditional: false,
            meta: false,
        }
    }

    #[test]
    fn fetch_log_is_bounded_and_skips_unknown_paths() {
        let log = FetchLog::new(&FetchLogSettings {
            per_asset: 3,
            max_assets: 10,
            ttl_secs: 60,
        });
        log.push(log.slot("nope.jpg"), entry(404), Some("x"));
        assert!(log.get("nope.jpg").is_empty());
        for status in [200, 304, 206, 304, 404] {
            log.push(log.slot("a.jpg"), entry(status), Some("WhatsApp/2"));
        }
        let got: Vec<u16> = log.get("a.jpg").iter().map(|f| f.status).collect();
        assert_eq!(got, [404, 304, 206]);
        {
            let map = log.assets.as_ref().unwrap().read().unwrap();
            let ring = map.get("a.jpg").unwrap().lock().unwrap();
            assert!(Arc::ptr_eq(
                ring[0].user_agent.as_ref().unwrap(),
                ring[2].user_agent.as_ref().unwrap()
            ));
        }
        // Room is made by dropping the least recently fetched.
        for i in 0..25 {
            let mut e = entry(200);
            e.at_unix_ms += i;
            log.push(log.slot(&format!("{i}.jpg")), e, None);
        }
        let map = log.assets.as_ref().unwrap().read().unwrap();
        assert!(map.len() <= 10);
        assert!(map.contains_key("24.jpg"));
        assert!(!map.contains_key("0.jpg"));
    }
}
