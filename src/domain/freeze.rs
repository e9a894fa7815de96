//! Freezing a lost card at the counter and lifting the freeze: which card states allow
//! which. Pure; `db::freezes` writes the change and its outbox operation.
//!
//! Central's `freeze_card` sets status `inactive` (not `suspended`) and `unfreeze_card`
//! sets `active` (contract §3.12). The edge is stricter than those calls: it freezes only
//! an active card (a lost, expired or closed card already cannot pay, and freezing must
//! not turn it into something an unfreeze would reactivate), and it lifts only a freeze
//! made at this edge, so a card head office froze stays frozen.

use serde_json::json;

use super::CARD_STATUS_ACTIVE;
use crate::error::{AppError, AppResult, ErrorCode};

/// The status central's `freeze_card` writes.
pub const CARD_STATUS_FROZEN: &str = "inactive";

/// The longest freeze or unfreeze reason, in characters.
pub const FREEZE_REASON_MAX: usize = 500;

/// May a card in `status` be frozen here?
pub fn check_freeze(status: &str) -> AppResult<()> {
    match status {
        CARD_STATUS_ACTIVE => Ok(()),
        CARD_STATUS_FROZEN => Err(ErrorCode::CardAlreadyFrozen.into()),
        other => {
            Err(AppError::new(ErrorCode::CardNotActive).with_details(json!({ "status": other })))
        }
    }
}

/// May a card in `status` be unfrozen here? `frozen_here`: this edge made the freeze.
pub fn check_unfreeze(status: &str, frozen_here: bool) -> AppResult<()> {
    if status != CARD_STATUS_FROZEN {
        return Err(
            AppError::new(ErrorCode::CardNotFrozen).with_details(json!({ "status": status }))
        );
    }
    if !frozen_here {
        return Err(ErrorCode::CardFrozenCentrally.into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(r: AppResult<()>) -> Option<&'static str> {
        r.err().map(|e| e.code().as_str())
    }

    #[test]
    fn freeze_takes_only_an_active_card() {
        let cases = [
            ("active", None),
            ("inactive", Some("CARD_ALREADY_FROZEN")),
            ("lost", Some("CARD_NOT_ACTIVE")),
            ("expired", Some("CARD_NOT_ACTIVE")),
            ("suspended", Some("CARD_NOT_ACTIVE")),
            ("closed", Some("CARD_NOT_ACTIVE")),
        ];
        for (status, want) in cases {
            assert_eq!(code(check_freeze(status)), want, "{status}");
        }
    }

    #[test]
    fn unfreeze_lifts_only_this_edges_freeze() {
        let cases = [
            ("inactive", true, None),
            ("inactive", false, Some("CARD_FROZEN_CENTRALLY")),
            ("active", true, Some("CARD_NOT_FROZEN")),
            ("active", false, Some("CARD_NOT_FROZEN")),
            // never reactivates a lost or closed card (upstream's unfreeze_card would)
            ("lost", true, Some("CARD_NOT_FROZEN")),
            ("closed", true, Some("CARD_NOT_FROZEN")),
        ];
        for (status, here, want) in cases {
            assert_eq!(code(check_unfreeze(status, here)), want, "{status}/{here}");
        }
    }
}
