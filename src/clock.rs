//! Time, in one place: epoch seconds and milliseconds now, HTTP dates, the `Last-Modified`
//! stepping every content change goes through, and the shiftable [`Clock`] media-ID expiry is
//! judged by.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::asset::AssetRecord;

/// Seconds since the epoch, now.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Milliseconds since the epoch, now.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Format epoch seconds as an IMF-fixdate (RFC 9110 §5.6.7).
pub fn http_date(secs: u64) -> String {
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(secs))
}

/// Wall-clock seconds for expiry decisions, shiftable in tests (IDs live for weeks).
#[derive(Clone, Default)]
pub struct Clock(Arc<AtomicI64>);

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self::default()
    }

    /// Now, in epoch seconds.
    pub fn now(&self) -> u64 {
        unix_now().saturating_add_signed(self.0.load(Ordering::Relaxed))
    }

    /// Move this clock `secs` ahead of the system clock (tests).
    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::Relaxed);
    }
}

/// The longest a write waits for the clock to pass the previous `Last-Modified`.
const MAX_CLOCK_WAIT: Duration = Duration::from_secs(2);

/// Wait, holding the path's lock, until the wall clock is past the previous `Last-Modified`,
/// and return the time then. HTTP dates have one-second resolution, Meta refreshes a `no-cache`
/// asset only when the value differs, and RFC 9110 §8.8.2.1 forbids a `Last-Modified` later
/// than the response's `Date`: so a second write within one second is published at the next
/// second rather than stamped in the future. Only if the clock went backwards by more than
/// [`MAX_CLOCK_WAIT`] does the stamp run ahead of the clock, to keep moving forward.
pub async fn wait_for_a_later_second(previous: Option<&AssetRecord>) -> u64 {
    if let Some(previous) = previous {
        let target = UNIX_EPOCH + Duration::from_secs(previous.last_modified + 1);
        if let Ok(wait) = target.duration_since(SystemTime::now()) {
            if wait <= MAX_CLOCK_WAIT {
                tokio::time::sleep(wait).await;
            } else {
                tracing::warn!(path = %previous.path, wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX), "the clock is behind this asset's Last-Modified; stamping ahead of it");
            }
        }
    }
    unix_now()
}

/// `Last-Modified` for a new version: now, and always at least one second after the previous
/// value (see [`wait_for_a_later_second`]).
pub fn next_last_modified(previous: Option<&AssetRecord>, now: u64) -> u64 {
    previous.map_or(now, |p| now.max(p.last_modified + 1))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn last_modified_always_moves_forward() {
        let rec = |lm| AssetRecord {
            path: "a".into(),
            sha256: "0".repeat(64),
            size: 1,
            content_type: "image/png".into(),
            last_modified: lm,
            cache_control: None,
            filename: "a".into(),
            uploaded_at: lm,
            deleted: false,
            whatsapp: BTreeMap::new(),
            signed: None,
            imported: None,
            converted_from: None,
        };
        assert_eq!(next_last_modified(None, 100), 100);
        assert_eq!(next_last_modified(Some(&rec(50)), 100), 100);
        assert_eq!(next_last_modified(Some(&rec(100)), 100), 101);
        // Clock went backwards: still forward.
        assert_eq!(next_last_modified(Some(&rec(200)), 100), 201);
    }
}
