//! The per-address sign-in throttle (held in `AppState`, used by sign-in).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use serde_json::json;

use crate::error::{AppError, AppResult, ErrorCode};

/// Failed sign-ins per client address: past the budget in a window, refuse for a while
/// (guards against guessing across many usernames; per-account lockout is in the DB).
#[derive(Default)]
pub struct IpThrottle {
    failures: Mutex<HashMap<IpAddr, (u32, i64)>>,
}

const IP_WINDOW_SECS: i64 = 300;
const IP_MAX_FAILURES: u32 = 30;

impl IpThrottle {
    pub fn check(&self, ip: Option<IpAddr>, now: i64) -> AppResult<()> {
        let Some(ip) = ip else { return Ok(()) };
        let map = self
            .failures
            .lock()
            .map_err(|_| AppError::internal("throttle lock"))?;
        if let Some((count, start)) = map.get(&ip) {
            if now - start < IP_WINDOW_SECS && *count >= IP_MAX_FAILURES {
                return Err(AppError::new(ErrorCode::TooManyRequests)
                    .with_details(json!({"retry_after_secs": IP_WINDOW_SECS - (now - start)})));
            }
        }
        Ok(())
    }

    pub fn fail(&self, ip: Option<IpAddr>, now: i64) {
        let Some(ip) = ip else { return };
        if let Ok(mut map) = self.failures.lock() {
            if map.len() > 10_000 {
                map.retain(|_, (_, start)| now - *start < IP_WINDOW_SECS);
            }
            let entry = map.entry(ip).or_insert((0, now));
            if now - entry.1 >= IP_WINDOW_SECS {
                *entry = (0, now);
            }
            entry.0 += 1;
        }
    }
}
