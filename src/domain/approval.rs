//! Manager approval at the till: which sales need a manager's PIN, what a PIN looks
//! like, and how long a PIN rests after wrong guesses. A cashier's refund, or a charge
//! above the store's amount, is approved on the spot by a manager typing their PIN on
//! the cashier's terminal: no manager session is opened there.

use super::Role;

/// What the till is about to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    /// A charge of this many cents as entered (before the member discount).
    Charge {
        raw_cents: i64,
    },
    Refund,
    /// A counter top-up.
    Topup,
}

/// The store's approval rules (`[approval]` in the config file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// Charges above this (as entered) by a cashier need a manager; None = never.
    pub charge_above_cents: Option<i64>,
    /// A cashier may refund with a manager's PIN (else cashiers never refund).
    pub cashier_refunds: bool,
    /// What a cashier's top-up needs.
    pub cashier_topups: Need,
}

/// What the act needs from `role`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// The role may do it alone.
    Nothing,
    /// Only with a manager's or owner's PIN.
    Manager,
    /// Not at all.
    Refused,
}

pub fn need(role: Role, act: Act, rules: &Rules) -> Need {
    if role != Role::Cashier {
        return Need::Nothing;
    }
    match act {
        Act::Charge { raw_cents } => match rules.charge_above_cents {
            Some(limit) if raw_cents > limit => Need::Manager,
            _ => Need::Nothing,
        },
        Act::Refund if rules.cashier_refunds => Need::Manager,
        Act::Refund => Need::Refused,
        Act::Topup => rules.cashier_topups,
    }
}

/// Whether `role` may approve.
pub fn may_approve(role: Role) -> bool {
    matches!(role, Role::Manager | Role::Owner)
}

/// A PIN is 4 to 8 ASCII digits.
pub fn pin_format_ok(pin: &str) -> bool {
    (4..=8).contains(&pin.len()) && pin.bytes().all(|b| b.is_ascii_digit())
}

/// Wrong PINs allowed before the PIN rests.
pub const PIN_MAX_FAILURES: i64 = 5;
/// How long a PIN rests after that many wrong tries: a 4-digit PIN guessed five at a
/// time every 15 minutes takes weeks, and the manager's own sign-in is not affected.
pub const PIN_LOCK_SECS: i64 = 15 * 60;

/// Wrong PINs one person asking at the till may type for one approver within
/// `PIN_LOCK_SECS` before they must wait: fewer than `PIN_MAX_FAILURES`, so one cashier
/// alone can never make a manager's PIN rest (and block every till's approvals); their
/// own tries stop first.
pub const PIN_MAX_FAILURES_PER_ASKER: u32 = 3;

const _: () = assert!((PIN_MAX_FAILURES_PER_ASKER as i64) < PIN_MAX_FAILURES);

/// After `failures` consecutive wrong PINs at `now`, until when the PIN rests (None =
/// not yet).
pub fn lock_until(failures: i64, now: i64) -> Option<i64> {
    (failures >= PIN_MAX_FAILURES).then_some(now + PIN_LOCK_SECS)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: Rules = Rules {
        charge_above_cents: Some(100_000),
        cashier_refunds: true,
        cashier_topups: Need::Nothing,
    };

    #[test]
    fn what_each_role_needs() {
        let charge = |c| Act::Charge { raw_cents: c };
        for (role, act, rules, want) in [
            (Role::Cashier, charge(100_000), RULES, Need::Nothing),
            (Role::Cashier, charge(100_001), RULES, Need::Manager),
            (Role::Manager, charge(9_999_999), RULES, Need::Nothing),
            (Role::Owner, charge(9_999_999), RULES, Need::Nothing),
            (Role::Cashier, Act::Refund, RULES, Need::Manager),
            (Role::Manager, Act::Refund, RULES, Need::Nothing),
            (Role::Cashier, Act::Topup, RULES, Need::Nothing),
            (
                Role::Cashier,
                Act::Topup,
                Rules {
                    cashier_topups: Need::Manager,
                    ..RULES
                },
                Need::Manager,
            ),
            (
                Role::Cashier,
                Act::Topup,
                Rules {
                    cashier_topups: Need::Refused,
                    ..RULES
                },
                Need::Refused,
            ),
            (
                Role::Manager,
                Act::Topup,
                Rules {
                    cashier_topups: Need::Refused,
                    ..RULES
                },
                Need::Nothing,
            ),
            (
                Role::Cashier,
                Act::Refund,
                Rules {
                    cashier_refunds: false,
                    ..RULES
                },
                Need::Refused,
            ),
            (
                Role::Cashier,
                charge(i64::MAX),
                Rules {
                    charge_above_cents: None,
                    ..RULES
                },
                Need::Nothing,
            ),
        ] {
            assert_eq!(need(role, act, &rules), want, "{role:?} {act:?} {rules:?}");
        }
    }

    #[test]
    fn approvers_and_pins() {
        assert!(may_approve(Role::Manager) && may_approve(Role::Owner));
        assert!(!may_approve(Role::Cashier));
        for ok in ["1234", "00000000", "987654"] {
            assert!(pin_format_ok(ok), "{ok}");
        }
        for bad in ["", "123", "123456789", "12a4", "12 34", "１２３４", "-1234"] {
            assert!(!pin_format_ok(bad), "{bad}");
        }
    }

    #[test]
    fn the_pin_rests_after_five_wrong_tries() {
        assert_eq!(lock_until(4, 1000), None);
        assert_eq!(lock_until(5, 1000), Some(1000 + PIN_LOCK_SECS));
        assert_eq!(lock_until(9, 1000), Some(1000 + PIN_LOCK_SECS));
    }
}
