//! Transaction numbers issued at the edge.
//!
//! Central numbers are a type prefix plus ten digits (`PAY0000000002`). Edge numbers keep
//! the prefix and add the site code between dashes: `PAY-S001-0000000001`. Central's
//! numbers never contain a dash and site codes are unique, so an edge number can collide
//! neither with central's nor with another site's.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxKind {
    Payment,
    Refund,
    Recharge,
}

impl TxKind {
    pub fn prefix(self) -> &'static str {
        match self {
            TxKind::Payment => "PAY",
            TxKind::Refund => "REF",
            TxKind::Recharge => "RCG",
        }
    }
    pub fn tx_type(self) -> &'static str {
        match self {
            TxKind::Payment => "payment",
            TxKind::Refund => "refund",
            TxKind::Recharge => "recharge",
        }
    }
}

pub fn format_tx_no(kind: TxKind, site_code: &str, seq: i64) -> String {
    format!("{}-{}-{:010}", kind.prefix(), site_code, seq)
}

/// A site code is 1–16 of A–Z, 0–9 (it becomes part of every transaction number).
pub fn valid_site_code(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= 16
        && code
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// True for numbers in central's own format (prefix + digits only).
pub fn is_central_format(tx_no: &str) -> bool {
    ["PAY", "REF", "RCG", "TX"].iter().any(|p| {
        tx_no
            .strip_prefix(p)
            .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn format() {
        assert_eq!(
            format_tx_no(TxKind::Payment, "S001", 1),
            "PAY-S001-0000000001"
        );
        assert_eq!(
            format_tx_no(TxKind::Refund, "DEMO", 42),
            "REF-DEMO-0000000042"
        );
        assert!(is_central_format("PAY0000000002"));
        assert!(!is_central_format("PAY-S001-0000000001"));
        assert!(valid_site_code("S001"));
        assert!(!valid_site_code("s001"));
        assert!(!valid_site_code("S-1"));
        assert!(!valid_site_code(""));
    }

    proptest! {
        #[test]
        fn never_collides(site_a in "[A-Z0-9]{1,16}", site_b in "[A-Z0-9]{1,16}", a in 1i64..i64::MAX / 2, b in 1i64..i64::MAX / 2) {
            let x = format_tx_no(TxKind::Payment, &site_a, a);
            prop_assert!(!is_central_format(&x));
            if site_a != site_b {
                prop_assert_ne!(x, format_tx_no(TxKind::Payment, &site_b, b));
            }
        }
    }
}
