//! Settlements: a merchant's period closed into one record and one outbox operation.

use crate::db::settlements::{self as store, SettlementCmd};
use crate::domain::perm;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::model::Pagination;
use crate::service::auth::AuthUser;
use crate::state::AppState;

pub const SETTLEMENT_MODES: [&str; 3] = ["realtime", "t_plus_1", "monthly"];

pub async fn create_settlement(
    state: &AppState,
    user: &AuthUser,
    mode: String,
    start_unix: i64,
    end_unix: i64,
) -> AppResult<store::SettlementView> {
    user.require(perm::GENERATE_SETTLEMENT)?;
    if !SETTLEMENT_MODES.contains(&mode.as_str()) {
        return Err(AppError::validation(
            "mode",
            format!("mode must be one of: {}.", SETTLEMENT_MODES.join(", ")),
        ));
    }
    if start_unix >= end_unix {
        return Err(AppError::validation(
            "period_end",
            "period_start must be before period_end.",
        ));
    }
    let cmd = SettlementCmd {
        mode,
        start_unix,
        end_unix,
        site_code: state.cfg.site.code.clone(),
        actor: user.actor(),
    };
    state
        .db
        .write(move |c| store::create_settlement(c, &cmd))
        .await
}

pub async fn list_settlements(
    state: &AppState,
    user: &AuthUser,
    limit: i64,
    offset: i64,
) -> AppResult<(Vec<store::SettlementView>, Pagination)> {
    user.require(perm::READ_SETTLEMENTS)?;
    state
        .db
        .read(move |c| store::list_settlements(c, limit, offset))
        .await
}

pub async fn settlement(
    state: &AppState,
    user: &AuthUser,
    id: String,
) -> AppResult<store::SettlementView> {
    user.require(perm::READ_SETTLEMENTS)?;
    state
        .db
        .read(move |c| store::settlement(c, &id))
        .await?
        .ok_or_else(|| AppError::msg(ErrorCode::NotFound, "No such settlement."))
}
