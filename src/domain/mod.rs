//! Business rules as pure functions: no I/O, no clock reads, no database.
//! Everything here is unit- and property-tested on its own.

pub mod approval;
pub mod audit;
pub mod balance;
pub mod charge;
pub mod daemon_signature;
pub mod freeze;
pub mod levels;
pub mod limits;
pub mod money;
pub mod mq2;
pub mod paper;
pub mod qr;
pub mod receipt;
pub mod refund;
pub mod settlement;
pub mod shift;
pub mod signin;
pub mod topup;
pub mod txno;

use serde::{Deserialize, Serialize};

/// Central's `card_type` enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CardType {
    Standard,
    Voucher,
    Corporate,
}

impl CardType {
    pub fn as_str(self) -> &'static str {
        match self {
            CardType::Standard => "standard",
            CardType::Voucher => "voucher",
            CardType::Corporate => "corporate",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "standard" => Some(CardType::Standard),
            "voucher" => Some(CardType::Voucher),
            "corporate" => Some(CardType::Corporate),
            _ => None,
        }
    }
}

/// The console's languages; the first is the default.
pub const LOCALES: [&str; 2] = ["zh-Hant", "en"];

/// Central's `card_status` enum values are kept as text; only `active` may pay.
pub const CARD_STATUS_ACTIVE: &str = "active";
pub const CARD_STATUSES: [&str; 6] = [
    "active",
    "inactive",
    "lost",
    "expired",
    "suspended",
    "closed",
];

/// Staff roles at the edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Owner,
    Manager,
    Cashier,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Manager => "manager",
            Role::Cashier => "cashier",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "owner" => Some(Role::Owner),
            "manager" => Some(Role::Manager),
            "cashier" => Some(Role::Cashier),
            _ => None,
        }
    }

    /// The seeds' permission strings granted to each role.
    pub fn permissions(self) -> &'static [&'static str] {
        match self {
            Role::Owner => &[
                perm::CHARGE,
                perm::REFUND,
                perm::READ_TRANSACTIONS,
                perm::READ_SUMMARY,
                perm::GENERATE_SETTLEMENT,
                perm::READ_SETTLEMENTS,
                perm::VOID_SETTLEMENT,
                perm::FREEZE_CARD,
                perm::TOPUP,
            ],
            Role::Manager => &[
                perm::CHARGE,
                perm::REFUND,
                perm::READ_TRANSACTIONS,
                perm::READ_SUMMARY,
                perm::GENERATE_SETTLEMENT,
                perm::READ_SETTLEMENTS,
                perm::FREEZE_CARD,
                perm::TOPUP,
            ],
            Role::Cashier => &[perm::CHARGE, perm::READ_TRANSACTIONS, perm::TOPUP],
        }
    }

    pub fn has(self, permission: &str) -> bool {
        self.permissions().contains(&permission)
    }
}

/// Permission strings, spelled as in the seeds.
pub mod perm {
    pub const CHARGE: &str = "merchant:charge";
    pub const REFUND: &str = "merchant:refund";
    pub const READ_TRANSACTIONS: &str = "merchant:read_transactions";
    pub const READ_SUMMARY: &str = "merchant:read_summary";
    pub const GENERATE_SETTLEMENT: &str = "merchant:generate_settlement";
    pub const READ_SETTLEMENTS: &str = "merchant:read_settlements";
    /// Owner only: a void reopens a period already reported to central.
    pub const VOID_SETTLEMENT: &str = "merchant:void_settlement";
    /// Manager and owner: freeze a lost card at the counter, and lift that freeze.
    pub const FREEZE_CARD: &str = "merchant:freeze_card";
    /// Every role: a counter top-up. Whether a cashier needs a manager's PIN for it, or
    /// may not at all, is the store's `[approval] cashier_topups`.
    pub const TOPUP: &str = "merchant:topup";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cashier_cannot_refund() {
        assert!(Role::Cashier.has(perm::CHARGE));
        assert!(!Role::Cashier.has(perm::REFUND));
        assert!(Role::Manager.has(perm::REFUND));
        assert!(Role::Owner.has(perm::GENERATE_SETTLEMENT));
        assert!(Role::Owner.has(perm::VOID_SETTLEMENT));
        assert!(!Role::Manager.has(perm::VOID_SETTLEMENT));
        assert!(Role::Manager.has(perm::FREEZE_CARD));
        assert!(!Role::Cashier.has(perm::FREEZE_CARD));
    }
}
