//! The replay cache of the head-office daemon API: each signature is accepted once
//! while its timestamp is inside the window. Apart from `service::daemon` so that
//! `AppState` can hold one without `state.rs` importing the daemon service.

use std::collections::BTreeSet;
use std::sync::{Mutex, PoisonError};

use crate::domain::daemon_signature::{self, Verified, WINDOW_SECS};

/// Most signatures remembered at once. Each is remembered for at most twice the window
/// (a timestamp up to 300 s ahead, kept until it is 300 s old): 10,000 in ten minutes is
/// some 16 genuine requests a second, far above what one daemon sends one store.
pub const REPLAY_CAPACITY: usize = 10_000;

/// What the replay cache says about a verified request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remembered {
    /// Not seen before; now remembered.
    Fresh,
    /// This exact signature was accepted before.
    Replayed,
    /// Outside the window of the latest clock reading the cache has seen (another
    /// request read the clock later, and may already have forgotten this signature).
    Stale,
    /// As many live signatures as the cache holds.
    Full,
}

/// The signatures accepted within the window, by (timestamp, tag): the tag covers the
/// timestamp, so the pair names one exact signature, and the ordering by timestamp
/// makes forgetting the expired ones cheap.
///
/// Bounded, and when full it refuses rather than evicts: a signature evicted while its
/// timestamp is still inside the window could be replayed and be accepted again. Only
/// requests whose HMAC verified get in, so filling it takes the secret (or a daemon
/// gone wild); either way refusing (503) is safe, the daemon retries with a fresh
/// signature, and entries leave within ten minutes.
pub struct ReplayCache {
    inner: Mutex<Inner>,
    capacity: usize,
}

struct Inner {
    seen: BTreeSet<(i64, [u8; daemon_signature::TAG_LEN])>,
    /// The latest `now` any request brought. Forgetting is judged against it, and so is
    /// a request arriving with an earlier `now`: a signature forgotten by a request that
    /// read the clock a second later is then refused as stale, never accepted again.
    latest_now: i64,
}

impl Default for ReplayCache {
    fn default() -> Self {
        ReplayCache::new(REPLAY_CAPACITY)
    }
}

impl ReplayCache {
    pub fn new(capacity: usize) -> Self {
        ReplayCache {
            inner: Mutex::new(Inner {
                seen: BTreeSet::new(),
                latest_now: i64::MIN,
            }),
            capacity,
        }
    }

    /// Remembers `v` (verified at `now`, unix seconds) unless it is a replay, has left
    /// the window, or the cache is full.
    pub fn remember(&self, v: Verified, now: i64) -> Remembered {
        // Nothing below panics; a poisoned lock still holds a consistent set.
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.latest_now = inner.latest_now.max(now);
        let oldest_live = inner.latest_now.saturating_sub(WINDOW_SECS);
        while inner.seen.first().is_some_and(|(ts, _)| *ts < oldest_live) {
            inner.seen.pop_first();
        }
        if v.ts < oldest_live {
            return Remembered::Stale;
        }
        if inner.seen.contains(&(v.ts, v.tag)) {
            return Remembered::Replayed;
        }
        if inner.seen.len() >= self.capacity {
            return Remembered::Full;
        }
        inner.seen.insert((v.ts, v.tag));
        Remembered::Fresh
    }

    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .seen
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;

    fn sig(ts: i64, n: u8) -> Verified {
        Verified {
            ts,
            tag: [n; daemon_signature::TAG_LEN],
        }
    }

    #[test]
    fn a_signature_is_accepted_once() {
        let cache = ReplayCache::new(10);
        assert_eq!(cache.remember(sig(NOW, 1), NOW), Remembered::Fresh);
        assert_eq!(cache.remember(sig(NOW, 1), NOW), Remembered::Replayed);
        assert_eq!(cache.remember(sig(NOW, 1), NOW + 200), Remembered::Replayed);
        // Another signature with the same timestamp is another request.
        assert_eq!(cache.remember(sig(NOW, 2), NOW), Remembered::Fresh);
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn signatures_are_forgotten_once_their_timestamp_leaves_the_window() {
        let cache = ReplayCache::new(10);
        assert_eq!(cache.remember(sig(NOW, 1), NOW), Remembered::Fresh);
        // A timestamp ahead of the clock stays until it is WINDOW_SECS old.
        assert_eq!(cache.remember(sig(NOW + 300, 2), NOW), Remembered::Fresh);
        assert_eq!(
            cache.remember(sig(NOW + 300, 3), NOW + 300),
            Remembered::Fresh
        );
        assert_eq!(cache.len(), 3, "all live at NOW + 300");
        assert_eq!(
            cache.remember(sig(NOW + 301, 4), NOW + 301),
            Remembered::Fresh
        );
        assert_eq!(cache.len(), 3, "the NOW one is forgotten at NOW + 301");
        assert_eq!(
            cache.remember(sig(NOW + 600, 5), NOW + 601),
            Remembered::Fresh
        );
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn an_earlier_clock_reading_cannot_bring_a_forgotten_signature_back() {
        let cache = ReplayCache::new(10);
        assert_eq!(cache.remember(sig(NOW - 300, 1), NOW), Remembered::Fresh);
        // Another request reads the clock a second later: the first is forgotten.
        assert_eq!(cache.remember(sig(NOW + 1, 2), NOW + 1), Remembered::Fresh);
        // A replay of the first that verified against the earlier reading is refused.
        assert_eq!(cache.remember(sig(NOW - 300, 1), NOW), Remembered::Stale);
    }

    #[test]
    fn full_refuses_instead_of_evicting_live_signatures() {
        let cache = ReplayCache::new(3);
        for n in 0..3 {
            assert_eq!(cache.remember(sig(NOW, n), NOW), Remembered::Fresh);
        }
        assert_eq!(cache.remember(sig(NOW, 9), NOW), Remembered::Full);
        // Still remembered: replays are still refused as replays.
        for n in 0..3 {
            assert_eq!(cache.remember(sig(NOW, n), NOW + 300), Remembered::Replayed);
        }
        // Room again once they leave the window.
        assert_eq!(
            cache.remember(sig(NOW + 301, 9), NOW + 301),
            Remembered::Fresh
        );
        assert_eq!(cache.len(), 1);
    }
}
