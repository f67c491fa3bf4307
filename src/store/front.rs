//! A small per-thread table in front of the record cache, on the `/media` path: the records
//! this worker thread served last, looked at before moka.
//!
//! Why: a 304 or a small GET is mostly hyper's work, and of what is left of ours, moka's `get`
//! was the largest part (its epoch pin, clock read, the read log its eviction policy replays
//! and the housekeeper's check: about 800 of a 304's 18,700 user-space instructions under
//! callgrind, `bench/instructions.sh`). A fetcher asks for a few hot assets many times, so a
//! direct-mapped table of [`SLOTS`] entries per thread answers nearly all of them. No crate
//! offers a thread-local front with these two rules:
//!
//! - An entry is only ever what the record cache returned, and it is used only while the
//!   store's record generation is unchanged. Every record write in this process bumps the
//!   generation *after* the cache holds the new record, and a lookup reads the generation
//!   *before* it asks the cache; so an entry made from a record read before a write carries an
//!   older generation and is never used after the write.
//! - It is used only until the record's cache lifetime (`storage.cache_ttl_ms`) from when the
//!   record was read ends, as the cache's own entry would be: another instance's change is
//!   seen no later than without it. A record the cache evicted to make room (not because of a
//!   write) may still answer from here until then: the same bound.
//!
//! Only assets that exist are kept; a path without one always goes to the cache. Entries of
//! other stores (tests run many in one process) never match: each store has its own id.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Instant;

use super::cached::CachedRecord;

/// Entries per thread (a power of two).
const SLOTS: usize = 64;

/// The ids [`StoreId::new`] hands out.
static NEXT_STORE: AtomicU64 = AtomicU64::new(1);

/// Where an entry's slot is: the path's hash, with keys fixed per process (a crafted set of
/// paths that share a slot only makes them miss, and go to the cache).
static HASH: LazyLock<ahash::RandomState> = LazyLock::new(ahash::RandomState::new);

/// One store's identity and record generation.
pub(super) struct StoreId {
    id: u64,
    generation: AtomicU64,
}

impl StoreId {
    pub(super) fn new() -> Self {
        Self {
            id: NEXT_STORE.fetch_add(1, Ordering::Relaxed),
            generation: AtomicU64::new(0),
        }
    }

    /// After a record write has put its record in the cache: entries made before are stale.
    pub(super) fn written(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

struct Entry {
    store: u64,
    generation: u64,
    /// The end of the record's cache lifetime.
    until: Instant,
    path: Box<str>,
    record: Arc<CachedRecord>,
}

thread_local! {
    static TABLE: RefCell<Vec<Option<Entry>>> =
        RefCell::new(std::iter::repeat_with(|| None).take(SLOTS).collect());
}

/// A lookup's place in this thread's table, to keep what the cache returns there.
pub(super) struct Miss {
    slot: usize,
    store: u64,
    generation: u64,
}

/// This thread's entry for `path` in `store`, still current and within its lifetime at `now`;
/// otherwise where to keep what the cache answers next. Call it before the cache is asked: the
/// generation read here is what a kept entry will be checked against.
pub(super) fn get(store: &StoreId, path: &str, now: Instant) -> Result<Arc<CachedRecord>, Miss> {
    let generation = store.generation.load(Ordering::Acquire);
    let slot = (HASH.hash_one(path) as usize) & (SLOTS - 1);
    let hit = TABLE.with_borrow(|table| {
        table[slot]
            .as_ref()
            .filter(|e| {
                e.store == store.id
                    && e.generation == generation
                    && now < e.until
                    && *e.path == *path
            })
            .map(|e| Arc::clone(&e.record))
    });
    hit.ok_or(Miss {
        slot,
        store: store.id,
        generation,
    })
}

/// Keep `record`, which the cache returned for `path` after the lookup that missed, until
/// `until`.
pub(super) fn keep(miss: Miss, path: &str, record: &Arc<CachedRecord>, until: Instant) {
    TABLE.with_borrow_mut(|table| {
        table[miss.slot] = Some(Entry {
            store: miss.store,
            generation: miss.generation,
            until,
            path: path.into(),
            record: Arc::clone(record),
        });
    });
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::super::backend::Backend;
    use super::super::testing::put;
    use super::super::{StorageSettings, Store};
    use super::*;
    use crate::policy::CachePolicy;

    const PATH: &str = "promo/a.jpg";

    /// The record `/media/promo/a.jpg` finds, by its content's hash.
    fn served(store: &Store) -> Option<String> {
        store
            .cached_record_of_url(PATH)
            .flatten()
            .map(|c| c.record.sha256.clone())
    }

    /// A store in memory whose record cache keeps entries `ms` milliseconds.
    fn with_cache_ttl(ms: u64) -> Store {
        let settings = StorageSettings {
            cache_ttl_ms: ms,
            ..StorageSettings::default()
        };
        Store::new(
            Arc::new(object_store::memory::InMemory::new()),
            Backend::Memory { shared: true },
            &settings,
            CachePolicy::NoCache,
            BTreeMap::new(),
        )
    }

    // One thread (the current-thread runtime), so every lookup meets the same table.
    #[tokio::test]
    async fn the_front_answers_what_the_cache_did_until_a_write_and_only_for_its_store() {
        let store = Store::memory(false);
        put(&store, PATH, "one").await;
        let first = store.cached_record_of_url(PATH).unwrap().unwrap();
        // The cache forgets the record; this thread's front still has it.
        store.inner.records.invalidate(PATH);
        let again = store.cached_record_of_url(PATH).unwrap().unwrap();
        assert!(Arc::ptr_eq(&first, &again), "not the front's entry");
        // A write: the very next lookup finds the new record.
        put(&store, PATH, "two").await;
        let after = served(&store).unwrap();
        assert_ne!(after, first.record.sha256);
        assert_eq!(served(&store).unwrap(), after);
        // Another store with nothing at the path finds nothing there.
        let other = Store::memory(false);
        assert!(other.cached_record_of_url(PATH).is_none());
        assert_eq!(served(&other), None);
    }

    #[tokio::test]
    async fn the_front_keeps_a_record_no_longer_than_the_cache_would() {
        let store = with_cache_ttl(300);
        put(&store, PATH, "one").await;
        assert!(served(&store).is_some());
        store.inner.records.invalidate(PATH);
        // Within the lifetime the front answers; past it, only the cache does (and it has
        // nothing: the path is looked up again from the backend by the slow path).
        assert!(served(&store).is_some());
        tokio::time::sleep(Duration::from_millis(350)).await;
        assert!(store.cached_record_of_url(PATH).is_none());
    }

    #[tokio::test]
    async fn a_store_with_the_cache_off_keeps_nothing_in_front() {
        let store = with_cache_ttl(0);
        put(&store, PATH, "one").await;
        let _ = store.cached_record_of_url(PATH);
        store.inner.records.invalidate(PATH);
        assert!(store.cached_record_of_url(PATH).is_none());
    }
}
