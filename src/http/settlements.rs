//! `/api/v1/merchant/settlements`: close a period, list and read settlements.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;

use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::merchant::parse_bound;
use super::validate;
use crate::error::AppResult;
use crate::service::auth::AuthUser;
use crate::service::settlements as svc;
use crate::service::state::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettlementRequest {
    #[schema(value_type = crate::api_schema::SettlementMode)]
    mode: String,
    #[schema(value_type = crate::api_schema::DateBound)]
    period_start: String,
    /// After period_start.
    #[schema(value_type = crate::api_schema::DateBound)]
    period_end: String,
}

#[utoipa::path(post, path = "/merchant/settlements", tag = "settlements", request_body = SettlementRequest, security(("bearer" = []), ("session_cookie" = [])), responses((status = 200, body = svc::SettlementResponse), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 409, description = "SETTLEMENT_OVERLAP", body = crate::error::ErrorBody), (status = 422, description = "PERIOD_INVALID: period_end is not after period_start; PERIOD_NOT_ENDED: the period (a whole day ends at the next midnight in the store time zone) has not ended; SETTLEMENT_EMPTY: no payments or refunds in it", body = crate::error::ErrorBody)))]
pub async fn create_settlement(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(req): ApiJson<SettlementRequest>,
) -> AppResult<Json<svc::SettlementResponse>> {
    let tz = crate::service::settings::store_timezone(&state);
    let start = parse_bound(&req.period_start, "period_start", tz, false)?;
    let end = parse_bound(&req.period_end, "period_end", tz, true)?;
    Ok(Json(
        svc::create_settlement(&state, &user, req.mode, start, end).await?,
    ))
}

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// 1-200, default 20.
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    #[param(minimum = 0, maximum = 10_000_000)]
    offset: Option<i64>,
}

#[utoipa::path(get, path = "/merchant/settlements", tag = "settlements", params(PageQuery), security(("bearer" = []), ("session_cookie" = [])), responses((status = 200, body = svc::SettlementList), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
pub async fn list_settlements(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> AppResult<Json<svc::SettlementList>> {
    let (limit, offset) = validate::paging(q.limit, q.offset, 20)?;
    Ok(Json(
        svc::list_settlements(&state, &user, limit, offset).await?,
    ))
}

#[utoipa::path(get, path = "/merchant/settlements/{id}", tag = "settlements", params(("id" = crate::api_schema::Key64, Path, description = "settlement id or number")), security(("bearer" = []), ("session_cookie" = [])), responses((status = 200, body = svc::SettlementResponse), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn settlement(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<String>,
) -> AppResult<Json<svc::SettlementResponse>> {
    validate::key(&id, "id", 64)?;
    Ok(Json(svc::settlement(&state, &user, id).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoidRequest {
    /// Why the settlement is voided, 1-500 characters; kept in the audit log and sent
    /// to central.
    #[schema(value_type = crate::api_schema::VoidReason)]
    reason: String,
}

/// Owner only. The settlement stays on record, marked voided; its period may be settled
/// again; central is told by a `settlement_void` operation.
#[utoipa::path(post, path = "/merchant/settlements/{id}/void", tag = "settlements", request_body = VoidRequest, params(("id" = crate::api_schema::Key64, Path, description = "settlement id or number")), security(("bearer" = []), ("session_cookie" = [])), responses((status = 200, body = svc::SettlementResponse), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 409, description = "SETTLEMENT_VOIDED", body = crate::error::ErrorBody)))]
pub async fn void_settlement(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<VoidRequest>,
) -> AppResult<Json<svc::SettlementResponse>> {
    validate::key(&id, "id", 64)?;
    Ok(Json(
        svc::void_settlement(&state, &user, id, req.reason).await?,
    ))
}
