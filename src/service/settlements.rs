//! Settlements: a merchant's period closed into one record and one outbox operation.

use crate::db::settlements::{self as store, SettlementCmd};
use crate::domain::perm;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::model::Pagination;
use crate::service::auth::AuthUser;
use crate::service::state::AppState;

pub const SETTLEMENT_MODES: [&str; 3] = ["realtime", "t_plus_1", "monthly"];

/// One settlement, as created or read.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct SettlementResponse {
    pub settlement: store::SettlementView,
}

/// One page of settlements, newest first.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct SettlementList {
    pub settlements: Vec<store::SettlementView>,
    pub pagination: Pagination,
}

pub async fn create_settlement(
    state: &AppState,
    user: &AuthUser,
    mode: String,
    start_unix: i64,
    end_unix: i64,
) -> AppResult<SettlementResponse> {
    user.require(perm::GENERATE_SETTLEMENT)?;
    if !SETTLEMENT_MODES.contains(&mode.as_str()) {
        return Err(AppError::validation(
            "mode",
            format!("mode must be one of: {}.", SETTLEMENT_MODES.join(", ")),
        ));
    }
    if start_unix >= end_unix {
        return Err(AppError::msg(
            ErrorCode::PeriodInvalid,
            "period_start must be before period_end.",
        )
        .with_details(serde_json::json!({"field": "period_end"})));
    }
    let cmd = SettlementCmd {
        mode,
        start_unix,
        end_unix,
        site_code: state.cfg.site.code.clone(),
        actor: user.actor(),
    };
    let settlement = state
        .db
        .write(move |c| store::create_settlement(c, &cmd))
        .await?;
    Ok(SettlementResponse { settlement })
}

pub async fn list_settlements(
    state: &AppState,
    user: &AuthUser,
    limit: i64,
    offset: i64,
) -> AppResult<SettlementList> {
    user.require(perm::READ_SETTLEMENTS)?;
    let (settlements, pagination) = state
        .db
        .read(move |c| store::list_settlements(c, limit, offset))
        .await?;
    Ok(SettlementList {
        settlements,
        pagination,
    })
}

pub async fn settlement(
    state: &AppState,
    user: &AuthUser,
    id: String,
) -> AppResult<SettlementResponse> {
    user.require(perm::READ_SETTLEMENTS)?;
    let settlement = state
        .db
        .read(move |c| store::settlement(c, &id))
        .await?
        .ok_or_else(|| AppError::msg(ErrorCode::NotFound, "No such settlement."))?;
    Ok(SettlementResponse { settlement })
}
