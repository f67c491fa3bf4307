//! The timer hyper uses for `header_read_timeout`: deadlines checked by one sweeper task, so a
//! request costs no entry in tokio's timer wheel.
//!
//! Why by hand: hyper arms the header deadline at the start of every request head, including
//! while a keep-alive connection waits for its next request, and drops it once the head is
//! parsed. With hyper-util's `TokioTimer` every request therefore inserts a `tokio::time::Sleep`
//! into the runtime's timer wheel and removes it again (a lock on the wheel each way, and the
//! time driver's bookkeeping when the worker parks): callgrind counted about 1,700 user-space
//! instructions of a 304's 20,500 for it. No crate offers a coarse timer behind hyper's
//! [`Timer`] trait.
//!
//! A deadline of seconds needs no millisecond precision. Here a sleep is its deadline and, once
//! it has been polled before the deadline, its waker in a shared table; one task wakes the due
//! ones every [`TICK`]. A deadline never fires early, and usually at most one tick late (two
//! when a sweep runs while the sleep registers, more on an overloaded runtime). Registering is a
//! short uncontended lock on one of [`SHARDS`] tables; a sleep leaves its table when dropped.
//! The sweeper holds the tables weakly and ends with the last connection that uses them.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use hyper::rt::{Sleep, Timer};
use slab::Slab;

/// How often due deadlines are woken: about the most a deadline fires late.
pub const TICK: Duration = Duration::from_millis(100);
/// Tables sleeps are spread over by address, so that workers rarely wait on each other.
const SHARDS: usize = 8;

/// A waiting sleep: its deadline, and the waker to call once it is due (`None` once called).
struct Waiting {
    deadline: Instant,
    waker: Option<Waker>,
}

type Table = Mutex<Slab<Waiting>>;

/// Hands out [`CoarseSleep`]s; see the module doc. Must be made inside a tokio runtime, which
/// runs its sweeper.
#[derive(Clone)]
pub struct CoarseTimer {
    tables: Arc<[Table; SHARDS]>,
}

impl CoarseTimer {
    /// A timer and its sweeper task on the current runtime.
    pub fn start() -> Self {
        let tables: Arc<[Table; SHARDS]> = Arc::new(std::array::from_fn(|_| Table::default()));
        tokio::spawn(sweep(Arc::downgrade(&tables)));
        Self { tables }
    }
}

/// Every [`TICK`], wake the sleeps whose deadline has passed, until no timer is left.
async fn sweep(tables: Weak<[Table; SHARDS]>) {
    let mut ticks = tokio::time::interval(TICK);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(tables) = tables.upgrade() else {
            return;
        };
        let now = Instant::now();
        for table in tables.iter() {
            let mut table = table.lock().unwrap_or_else(|e| e.into_inner());
            for (_, waiting) in table.iter_mut() {
                if waiting.deadline <= now
                    && let Some(waker) = waiting.waker.take()
                {
                    waker.wake();
                }
            }
        }
    }
}

impl Timer for CoarseTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        self.sleep_until(Instant::now() + duration)
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn Sleep>> {
        Box::pin(CoarseSleep {
            deadline,
            tables: Arc::clone(&self.tables),
            slot: None,
        })
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn Sleep>>, new_deadline: Instant) {
        match sleep.as_mut().downcast_mut_pin::<CoarseSleep>() {
            Some(sleep) => sleep.set_deadline(new_deadline),
            None => *sleep = self.sleep_until(new_deadline),
        }
    }
}

/// A future that is ready at its deadline, or up to [`TICK`] after it.
pub struct CoarseSleep {
    deadline: Instant,
    tables: Arc<[Table; SHARDS]>,
    /// The shard and key of this sleep's entry, once it has been polled before its deadline.
    slot: Option<(usize, usize)>,
}

impl CoarseSleep {
    fn set_deadline(self: Pin<&mut Self>, deadline: Instant) {
        // CoarseSleep is Unpin: nothing points into it.
        let this = self.get_mut();
        this.deadline = deadline;
        if let Some((shard, key)) = this.slot {
            let mut table = this.tables[shard].lock().unwrap_or_else(|e| e.into_inner());
            table[key].deadline = deadline;
        }
    }
}

impl Future for CoarseSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if Instant::now() >= this.deadline {
            return Poll::Ready(());
        }
        match this.slot {
            Some((shard, key)) => {
                let mut table = this.tables[shard].lock().unwrap_or_else(|e| e.into_inner());
                // The entry's deadline is this one: `set_deadline` moves both.
                let waiting = &mut table[key];
                match &mut waiting.waker {
                    Some(waker) => waker.clone_from(cx.waker()),
                    None => waiting.waker = Some(cx.waker().clone()),
                }
            }
            None => {
                // Spread by address: the box does not move while it lives.
                let shard = (std::ptr::from_ref(this).addr() >> 6) % SHARDS;
                let mut table = this.tables[shard].lock().unwrap_or_else(|e| e.into_inner());
                let key = table.insert(Waiting {
                    deadline: this.deadline,
                    waker: Some(cx.waker().clone()),
                });
                this.slot = Some((shard, key));
            }
        }
        Poll::Pending
    }
}

impl Sleep for CoarseSleep {}

impl Drop for CoarseSleep {
    fn drop(&mut self) {
        if let Some((shard, key)) = self.slot.take() {
            let mut table = self.tables[shard].lock().unwrap_or_else(|e| e.into_inner());
            table.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Poll once by hand: whether it was ready.
    fn poll_once(sleep: &mut Pin<Box<dyn Sleep>>) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        sleep.as_mut().poll(&mut cx).is_ready()
    }

    fn entries(timer: &CoarseTimer) -> usize {
        timer.tables.iter().map(|t| t.lock().unwrap().len()).sum()
    }

    #[tokio::test]
    async fn a_sleep_fires_after_its_deadline_and_within_a_tick() {
        let timer = CoarseTimer::start();
        for wait in [Duration::from_millis(30), Duration::from_millis(250)] {
            let start = tokio::time::Instant::now();
            timer.sleep(wait).await;
            let took = start.elapsed();
            assert!(took >= wait, "fired early: {took:?} < {wait:?}");
            // One tick late at most, and 150 ms for a loaded test machine.
            assert!(
                took < wait + TICK + Duration::from_millis(150),
                "fired late: {took:?} for {wait:?}"
            );
        }
        assert_eq!(entries(&timer), 0, "a finished sleep leaves no entry");
    }

    #[tokio::test]
    async fn a_dropped_or_reset_sleep_keeps_no_entry_and_reset_moves_the_deadline() {
        let timer = CoarseTimer::start();
        let mut sleep = timer.sleep(Duration::from_secs(60));
        assert!(!poll_once(&mut sleep));
        assert_eq!(entries(&timer), 1);
        // Reset to the past: ready at once, and the entry goes with the sleep.
        timer.reset(&mut sleep, Instant::now() - Duration::from_millis(1));
        assert!(poll_once(&mut sleep));
        drop(sleep);
        assert_eq!(entries(&timer), 0);
        // Reset to later: a registered sleep waits for the new deadline.
        let mut sleep = timer.sleep(Duration::from_millis(10));
        assert!(!poll_once(&mut sleep));
        timer.reset(&mut sleep, Instant::now() + Duration::from_millis(400));
        let start = Instant::now();
        sleep.as_mut().await;
        assert!(start.elapsed() >= Duration::from_millis(390));
        drop(sleep);
        assert_eq!(entries(&timer), 0);
    }

    #[tokio::test]
    async fn the_sweeper_ends_with_the_last_timer() {
        let timer = CoarseTimer::start();
        let tables = Arc::downgrade(&timer.tables);
        let sleep = timer.sleep(Duration::from_secs(60));
        drop(timer);
        // A sleep still holds the tables: the sweeper must keep them.
        tokio::time::sleep(TICK * 2).await;
        assert!(tables.upgrade().is_some());
        drop(sleep);
        tokio::time::sleep(TICK * 2).await;
        assert!(
            tables.upgrade().is_none(),
            "the tables outlived every timer"
        );
    }
}
