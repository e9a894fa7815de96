//! Settlements: a merchant's period closed into one record and one outbox operation.

use crate::db::settlements::{self as store, SettlementCmd, VoidCmd};
use crate::domain::perm;
use crate::domain::settlement::SETTLEMENT_MODES;
use crate::domain::settlement::{check_period, PeriodProblem, VOID_REASON_MAX};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::model::Pagination;
use crate::service::auth::AuthUser;
use crate::service::state::AppState;

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
    let tz = crate::service::settings::store_timezone(state);
    match check_period(start_unix, end_unix, crate::db::now_unix()) {
        Ok(()) => {}
        Err(PeriodProblem::EndNotAfterStart) => {
            return Err(AppError::msg(
                ErrorCode::PeriodInvalid,
                "period_start must be before period_end.",
            )
            .with_details(serde_json::json!({"field": "period_end"})));
        }
        Err(PeriodProblem::NotEnded) => {
            return Err(AppError::new(ErrorCode::PeriodNotEnded)
                .with_details(serde_json::json!({"field": "period_end", "timezone": tz.name()})));
        }
    }
    let cmd = SettlementCmd {
        mode,
        start_unix,
        end_unix,
        site_code: state.cfg.site.code.clone(),
        actor: user.actor(),
        tz,
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
    let tz = crate::service::settings::store_timezone(state);
    let (settlements, pagination) = state
        .db
        .read(move |c| store::list_settlements(c, limit, offset, tz))
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
    let tz = crate::service::settings::store_timezone(state);
    let settlement = state
        .db
        .read(move |c| store::settlement(c, &id, tz))
        .await?
        .ok_or_else(not_found)?;
    Ok(SettlementResponse { settlement })
}

fn not_found() -> AppError {
    AppError::msg(ErrorCode::NotFound, "No such settlement.")
}

/// An owner voids a settlement, saying why (1-500 characters, trimmed).
pub async fn void_settlement(
    state: &AppState,
    user: &AuthUser,
    id: String,
    reason: String,
) -> AppResult<SettlementResponse> {
    user.require(perm::VOID_SETTLEMENT)?;
    let reason = reason.trim().to_string();
    if reason.is_empty()
        || reason.chars().count() > VOID_REASON_MAX
        || reason.chars().any(char::is_control)
    {
        return Err(AppError::validation(
            "reason",
            format!("reason must be 1-{VOID_REASON_MAX} characters with no control characters."),
        ));
    }
    let cmd = VoidCmd {
        id_or_no: id,
        reason,
        actor: user.actor(),
        tz: crate::service::settings::store_timezone(state),
    };
    let settlement = state
        .db
        .write(move |c| store::void_settlement(c, &cmd))
        .await?
        .ok_or_else(not_found)?;
    Ok(SettlementResponse { settlement })
}
