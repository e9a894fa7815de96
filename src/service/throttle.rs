//! Failure counters over a window, held in `AppState`: failed enrolment codes and device
//! secrets per client address, and wrong manager PINs per person asking at the till.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;

use serde_json::json;

use crate::error::{AppError, AppResult, ErrorCode};

/// Failures per key: past `max` within `window_secs` of the first, the key is refused
/// until the window ends. The table is swept past 10,000 keys, so a flood of keys holds
/// only what is still counting.
pub struct WindowCounter<K> {
    failures: Mutex<HashMap<K, (u32, i64)>>,
    window_secs: i64,
    max: u32,
}

impl<K: Hash + Eq> WindowCounter<K> {
    pub fn new(window_secs: i64, max: u32) -> Self {
        WindowCounter {
            failures: Mutex::new(HashMap::new()),
            window_secs,
            max,
        }
    }

    /// `Err(seconds to wait)` while `key` is over its budget.
    pub fn check(&self, key: &K, now: i64) -> Result<(), i64> {
        let map = match self.failures.lock() {
            Ok(m) => m,
            // A poisoned counter refuses nothing: it only spares work, the checks behind
            // it still decide.
            Err(_) => return Ok(()),
        };
        match map.get(key) {
            Some((count, start)) if now - start < self.window_secs && *count >= self.max => {
                Err(self.window_secs - (now - start))
            }
            _ => Ok(()),
        }
    }

    pub fn fail(&self, key: K, now: i64) {
        if let Ok(mut map) = self.failures.lock() {
            if map.len() > 10_000 {
                let window = self.window_secs;
                map.retain(|_, (_, start)| now - *start < window);
            }
            let entry = map.entry(key).or_insert((0, now));
            if now - entry.1 >= self.window_secs {
                *entry = (0, now);
            }
            entry.0 += 1;
        }
    }

    pub fn clear(&self, key: &K) {
        if let Ok(mut map) = self.failures.lock() {
            map.remove(key);
        }
    }
}

/// Failed enrolment codes and device secrets per client address (guards against guessing
/// them from one machine).
pub struct IpThrottle(WindowCounter<IpAddr>);

const IP_WINDOW_SECS: i64 = 300;
const IP_MAX_FAILURES: u32 = 30;

impl Default for IpThrottle {
    fn default() -> Self {
        IpThrottle(WindowCounter::new(IP_WINDOW_SECS, IP_MAX_FAILURES))
    }
}

impl IpThrottle {
    pub fn check(&self, ip: Option<IpAddr>, now: i64) -> AppResult<()> {
        let Some(ip) = ip else { return Ok(()) };
        self.0.check(&ip, now).map_err(|wait| {
            AppError::new(ErrorCode::TooManyRequests)
                .with_details(json!({"retry_after_secs": wait}))
        })
    }

    pub fn fail(&self, ip: Option<IpAddr>, now: i64) {
        if let Some(ip) = ip {
            self.0.fail(ip, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_over_budget_waits_out_the_window() {
        let c: WindowCounter<&str> = WindowCounter::new(100, 3);
        for t in 0..3 {
            assert_eq!(c.check(&"a", t), Ok(()));
            c.fail("a", t);
        }
        assert_eq!(c.check(&"a", 10), Err(90));
        assert_eq!(c.check(&"b", 10), Ok(()), "keys are apart");
        assert_eq!(c.check(&"a", 100), Ok(()), "the window ended");
        c.fail("a", 100);
        assert_eq!(c.check(&"a", 101), Ok(()), "a new window counts from one");
        c.fail("a", 101);
        c.fail("a", 102);
        assert!(c.check(&"a", 103).is_err());
        c.clear(&"a");
        assert_eq!(c.check(&"a", 103), Ok(()));
    }
}
