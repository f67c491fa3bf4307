//! A record as the record cache holds it, with what the serving layer derives from that
//! version: its response headers under a policy, built once per version and policy and dropped
//! with the cache entry (when the asset changes, is evicted or expires).
//!
//! Records are immutable once shared, and every write caches a new entry, so what was derived
//! from an entry's record stays true of it; only the policy can change without the record (a
//! folder rule set through the API), which is why what is kept is keyed by the policy. The store
//! does not look at what is kept (the domain never sees HTTP types): [`Derived`] holds any
//! `Send + Sync` value and gives back the one of the type asked for.

use std::any::Any;
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwapOption;

use crate::asset::AssetRecord;
use crate::policy::CachePolicy;

/// A live record from the cache (see the module documentation).
pub struct CachedRecord {
    /// The record.
    pub record: Arc<AssetRecord>,
    /// What the serving layer made of it under the last policy it was served with.
    pub derived: Derived,
    /// When it was read or written, just before the cache took it: its cache lifetime runs
    /// from about then (see [`super::front`]).
    pub(super) loaded: Instant,
}

impl CachedRecord {
    pub(super) fn new(record: Arc<AssetRecord>) -> Arc<Self> {
        Arc::new(Self {
            record,
            derived: Derived::default(),
            loaded: Instant::now(),
        })
    }
}

/// One value derived from a record under one policy (see the module documentation).
#[derive(Default)]
pub struct Derived(ArcSwapOption<Kept>);

struct Kept {
    policy: CachePolicy,
    value: Arc<dyn Any + Send + Sync>,
}

impl Derived {
    /// The value kept for `policy`, or the one `make` makes, which is then kept instead.
    /// Concurrent first requests may each make one; the last kept wins, and all are equal.
    pub fn get_or_make<T: Any + Send + Sync>(
        &self,
        policy: CachePolicy,
        make: impl FnOnce() -> T,
    ) -> Arc<T> {
        if let Some(kept) = &*self.0.load()
            && kept.policy == policy
            && let Ok(value) = Arc::clone(&kept.value).downcast::<T>()
        {
            return value;
        }
        let value = Arc::new(make());
        self.0.store(Some(Arc::new(Kept {
            policy,
            value: Arc::clone(&value) as Arc<dyn Any + Send + Sync>,
        })));
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_made_once_per_policy_and_type() {
        let derived = Derived::default();
        let day: CachePolicy = "max-age=86400".parse().unwrap();
        let mut made = 0;
        let first = derived.get_or_make(day, || {
            made += 1;
            String::from("day")
        });
        let again = derived.get_or_make(day, || {
            made += 1;
            String::from("other")
        });
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(made, 1);
        // Another policy: made anew, and kept instead.
        let no_cache = derived.get_or_make(CachePolicy::NoCache, || String::from("no-cache"));
        assert_eq!(*no_cache, "no-cache");
        assert_eq!(*derived.get_or_make(day, || String::from("day 2")), "day 2");
        // Another type under the same policy is not mistaken for it.
        assert_eq!(*derived.get_or_make(day, || 7u32), 7);
    }
}
