//! Sign-in throttling: whether a password may be checked now, and what an attempt does
//! to the counters. Pure; the database keeps the states (`db::signin`) and the service
//! runs the steps in order (`service::auth::login`).
//!
//! Two counters, both keyed by the username as typed (so an unknown username behaves
//! exactly like a real one and no answer tells them apart):
//!
//! - per (username, client address): `free_failures` failures cost nothing, then each
//!   further check must wait exponentially longer (base × 2ⁿ, capped). Only the address
//!   that guesses is slowed: other tills behind the same NAT and other accounts are not.
//! - per username from every address: past `account_ceiling` failures in the window the
//!   account is locked. A locked account is not refused: its checks are spaced out (one
//!   per `locked_check_every_ms`) so the owner at an address that has not failed gets in
//!   after a wait, while an address that has failed against it waits out the lock.
//!
//! An attempt is counted as failed when it is *reserved*, before the password is hashed,
//! so N parallel guesses can check at most the allowed number; a success (or an attempt
//! that could not be checked after all) gives the count back.

/// The rules' knobs (from `[auth]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Failures per (username, address) before the exponential wait starts.
    pub free_failures: i64,
    /// The first wait after `free_failures`; it doubles with each further failure.
    pub backoff_base_secs: i64,
    /// The longest wait per (username, address), and how long an account lock lasts.
    pub backoff_max_secs: i64,
    /// Counters with no failure for this long are forgotten.
    pub forget_after_secs: i64,
    /// Failures per username from all addresses that lock the account.
    pub account_ceiling: i64,
    /// While locked: at most one check per this many milliseconds.
    pub locked_check_every_ms: i64,
    /// While locked: the longest an attempt is held for its turn before it is refused.
    pub locked_max_wait_ms: i64,
}

/// Failures of one (username, address).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PairState {
    pub failures: i64,
    pub last_unix: i64,
    /// The audit log already has an entry for this pair's lock.
    pub lock_logged: bool,
}

/// Failures of one username from every address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AccountState {
    pub failures: i64,
    pub first_unix: i64,
    pub locked_until: Option<i64>,
    /// While locked: the earliest time (unix ms) the next check may run.
    pub next_check_ms: i64,
    pub lock_logged: bool,
}

impl AccountState {
    pub fn locked(&self, now_unix: i64) -> bool {
        self.locked_until.is_some_and(|until| until > now_unix)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Check the password after waiting `wait_ms` (0 unless the account is locked). The
    /// states already count this attempt as a failure.
    Check {
        wait_ms: i64,
        pair: PairState,
        account: AccountState,
    },
    /// Do not check; the client may try again after this many seconds.
    Refuse { retry_after_secs: i64 },
}

/// How long (seconds) after its last failure a pair with `failures` may be checked again.
pub fn backoff_secs(p: &Policy, failures: i64) -> i64 {
    if failures < p.free_failures {
        return 0;
    }
    let doublings = (failures - p.free_failures).clamp(0, 30);
    p.backoff_base_secs
        .saturating_mul(1_i64 << doublings)
        .min(p.backoff_max_secs)
}

/// The states as they stand at `now`: forgotten when idle long enough, the account's
/// lock lifted when it has run out.
pub fn current(
    p: &Policy,
    now_unix: i64,
    pair: Option<PairState>,
    account: Option<AccountState>,
) -> (PairState, AccountState) {
    let pair = pair
        .filter(|s| now_unix - s.last_unix < p.forget_after_secs)
        .unwrap_or_default();
    let account = account
        .filter(|a| a.locked(now_unix) || now_unix - a.first_unix < p.forget_after_secs)
        .unwrap_or(AccountState {
            first_unix: now_unix,
            ..AccountState::default()
        });
    (pair, account)
}

/// Whether an attempt from this (username, address) may check its password now (or after
/// a wait), with the states counting it as failed; or why not.
pub fn reserve(
    p: &Policy,
    now_ms: i64,
    pair: Option<PairState>,
    account: Option<AccountState>,
) -> Verdict {
    let now = now_ms.div_euclid(1000);
    let (mut pair, mut account) = current(p, now, pair, account);
    let pair_ready_at = pair.last_unix + backoff_secs(p, pair.failures);
    let mut wait_ms = 0;
    if account.locked(now) {
        if pair.failures > 0 {
            // This address has failed against a locked account: it waits the lock out
            // (or its own backoff, if longer).
            let until = account.locked_until.unwrap_or(now).max(pair_ready_at);
            return Verdict::Refuse {
                retry_after_secs: (until - now).max(1),
            };
        }
        let turn = account.next_check_ms.max(now_ms);
        wait_ms = turn - now_ms;
        if wait_ms > p.locked_max_wait_ms {
            return Verdict::Refuse {
                retry_after_secs: (wait_ms + 999) / 1000,
            };
        }
        account.next_check_ms = turn + p.locked_check_every_ms;
    } else if pair.failures >= p.free_failures && now < pair_ready_at {
        return Verdict::Refuse {
            retry_after_secs: pair_ready_at - now,
        };
    }
    pair.failures += 1;
    pair.last_unix = now;
    account.failures += 1;
    if !account.locked(now) && account.failures >= p.account_ceiling {
        account.locked_until = Some(now + p.backoff_max_secs);
        account.next_check_ms = now_ms;
        account.lock_logged = false;
    }
    Verdict::Check {
        wait_ms,
        pair,
        account,
    }
}

/// The reserved attempt had the right password: its count is given back, the address's
/// failures are forgotten (the caller deletes the pair) and the lock lifted if what is
/// left is under the ceiling (it was only this attempt's own reservation).
pub fn on_success(p: &Policy, mut account: AccountState) -> AccountState {
    account.failures = (account.failures - 1).max(0);
    if account.failures < p.account_ceiling {
        account.locked_until = None;
        account.next_check_ms = 0;
        account.lock_logged = false;
    }
    account
}

/// The reserved attempt was never checked (the pool was full): its count is given back.
pub fn on_abandon(mut pair: PairState, mut account: AccountState) -> (PairState, AccountState) {
    pair.failures = (pair.failures - 1).max(0);
    account.failures = (account.failures - 1).max(0);
    (pair, account)
}

/// Which locks a failure leaves without an audit entry yet: (the address's, the account's).
pub fn unlogged_locks(
    p: &Policy,
    now_unix: i64,
    pair: &PairState,
    account: &AccountState,
) -> (bool, bool) {
    (
        pair.failures >= p.free_failures && !pair.lock_logged,
        account.locked(now_unix) && !account.lock_logged,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: Policy = Policy {
        free_failures: 5,
        backoff_base_secs: 15,
        backoff_max_secs: 300,
        forget_after_secs: 900,
        account_ceiling: 20,
        locked_check_every_ms: 2_000,
        locked_max_wait_ms: 20_000,
    };
    const T0: i64 = 1_800_000_000;

    fn check(v: Verdict) -> (i64, PairState, AccountState) {
        match v {
            Verdict::Check {
                wait_ms,
                pair,
                account,
            } => (wait_ms, pair, account),
            Verdict::Refuse { retry_after_secs } => panic!("refused, retry {retry_after_secs}"),
        }
    }

    fn retry(v: Verdict) -> i64 {
        match v {
            Verdict::Refuse { retry_after_secs } => retry_after_secs,
            other => panic!("expected a refusal: {other:?}"),
        }
    }

    #[test]
    fn backoff_doubles_from_the_free_failures_up_to_the_cap() {
        let got: Vec<i64> = (0..12).map(|n| backoff_secs(&P, n)).collect();
        assert_eq!(got, [0, 0, 0, 0, 0, 15, 30, 60, 120, 240, 300, 300]);
        assert_eq!(backoff_secs(&P, i64::MAX), 300);
    }

    /// Reserving counts before the check: parallel reservations stop at the free ones.
    #[test]
    fn parallel_reservations_stop_at_the_free_failures() {
        let (mut pair, mut account) = (None, None);
        let mut checked = 0;
        for _ in 0..30 {
            if let Verdict::Check {
                pair: p,
                account: a,
                ..
            } = reserve(&P, T0 * 1000, pair, account)
            {
                checked += 1;
                (pair, account) = (Some(p), Some(a));
            }
        }
        assert_eq!(checked, 5);
        // The sixth waits 15 s after the last failure, the seventh 30 s more.
        assert_eq!(retry(reserve(&P, T0 * 1000, pair, account)), 15);
        let (_, p, a) = check(reserve(&P, (T0 + 15) * 1000, pair, account));
        assert_eq!(retry(reserve(&P, (T0 + 16) * 1000, Some(p), Some(a))), 29);
    }

    #[test]
    fn idle_counters_are_forgotten() {
        let pair = PairState {
            failures: 9,
            last_unix: T0,
            lock_logged: true,
        };
        assert!(matches!(
            reserve(&P, (T0 + 100) * 1000, Some(pair), None),
            Verdict::Refuse { .. }
        ));
        let (_, p, a) = check(reserve(&P, (T0 + 900) * 1000, Some(pair), None));
        assert_eq!((p.failures, p.lock_logged), (1, false));
        assert_eq!(a.failures, 1);
    }

    #[test]
    fn the_ceiling_locks_the_account_which_spaces_checks_from_fresh_addresses() {
        let account = AccountState {
            failures: 19,
            first_unix: T0,
            ..AccountState::default()
        };
        let now_ms = (T0 + 10) * 1000;
        let (wait, _, locked) = check(reserve(&P, now_ms, None, Some(account)));
        assert_eq!(wait, 0);
        assert_eq!(locked.locked_until, Some(T0 + 10 + 300));
        // Fresh addresses take turns, one every 2 s; past 20 s of queue they are refused.
        let mut a = locked;
        let mut waits = Vec::new();
        for _ in 0..11 {
            let (w, _, next) = check(reserve(&P, now_ms, None, Some(a)));
            waits.push(w);
            a = next;
        }
        assert_eq!(waits, (0..11).map(|i| i * 2000).collect::<Vec<_>>());
        assert_eq!(retry(reserve(&P, now_ms, None, Some(a))), 22);
        // An address that has failed against the locked account waits the lock out.
        let failed = PairState {
            failures: 1,
            last_unix: T0 + 5,
            lock_logged: false,
        };
        assert_eq!(retry(reserve(&P, now_ms, Some(failed), Some(a))), 300);
    }

    #[test]
    fn a_success_gives_its_count_back_and_lifts_a_lock_it_alone_caused() {
        let account = AccountState {
            failures: 19,
            first_unix: T0,
            ..AccountState::default()
        };
        let (_, _, a) = check(reserve(&P, T0 * 1000, None, Some(account)));
        assert!(a.locked(T0));
        let after = on_success(&P, a);
        assert_eq!(after.failures, 19);
        assert!(!after.locked(T0));
        // Locked by others (25 failures): the owner's success leaves the lock.
        let others = AccountState {
            failures: 25,
            locked_until: Some(T0 + 100),
            ..a
        };
        assert!(on_success(&P, others).locked(T0));
    }

    #[test]
    fn abandoning_gives_the_counts_back() {
        let (_, p, a) = check(reserve(&P, T0 * 1000, None, None));
        let (p, a) = on_abandon(p, a);
        assert_eq!((p.failures, a.failures), (0, 0));
    }

    #[test]
    fn each_lock_is_logged_once() {
        let pair = PairState {
            failures: 5,
            last_unix: T0,
            lock_logged: false,
        };
        let account = AccountState {
            failures: 20,
            locked_until: Some(T0 + 300),
            ..AccountState::default()
        };
        assert_eq!(unlogged_locks(&P, T0, &pair, &account), (true, true));
        let pair = PairState {
            lock_logged: true,
            ..pair
        };
        let account = AccountState {
            lock_logged: true,
            ..account
        };
        assert_eq!(unlogged_locks(&P, T0, &pair, &account), (false, false));
        assert_eq!(
            unlogged_locks(&P, T0, &PairState::default(), &AccountState::default()),
            (false, false)
        );
    }
}
