//! Cards at the counter (issue 14, item 5): a manager looks a card up by its number and
//! freezes it when the member reports it lost, or lifts that freeze.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;

use super::extract::{ApiJson, ApiPath};
use super::validate;
use crate::domain::freeze::FREEZE_REASON_MAX;
use crate::error::AppResult;
use crate::model::CardView;
use crate::service::auth::AuthUser;
use crate::service::cards as svc;
use crate::service::state::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FreezeRequest {
    /// Why, 1-500 characters (e.g. "reported lost by the member"); kept in the audit
    /// log and sent to central.
    #[schema(value_type = crate::api_schema::FreezeReason)]
    reason: String,
}

#[utoipa::path(get, path = "/merchant/cards/{card_no}", tag = "cards",
    params(("card_no" = crate::api_schema::CardNo, Path, description = "the card number, exactly as printed")),
    security(("bearer" = []), ("session_cookie" = [])),
    responses((status = 200, body = CardView), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody),
              (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
/// A card's status, balance and level here, and this store's freeze of it.
pub async fn card(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(card_no): ApiPath<String>,
) -> AppResult<Json<CardView>> {
    validate::key(&card_no, "card_no", 32)?;
    Ok(Json(svc::card(&state, &user, card_no).await?))
}

#[utoipa::path(post, path = "/merchant/cards/{card_no}/freeze", tag = "cards", request_body = FreezeRequest,
    params(("card_no" = crate::api_schema::CardNo, Path, description = "the card number, exactly as printed")),
    security(("bearer" = []), ("session_cookie" = [])),
    responses((status = 200, body = CardView), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody),
              (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody),
              (status = 409, description = "CARD_ALREADY_FROZEN", body = crate::error::ErrorBody),
              (status = 422, description = "CARD_NOT_ACTIVE: lost, expired or closed", body = crate::error::ErrorBody)))]
/// Manager or owner. The card is refused here at once; central is told by a
/// `card_freeze` operation (status `inactive`, as upstream's freeze_card).
pub async fn freeze(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(card_no): ApiPath<String>,
    ApiJson(req): ApiJson<FreezeRequest>,
) -> AppResult<Json<CardView>> {
    set(state, user, card_no, true, req).await
}

#[utoipa::path(post, path = "/merchant/cards/{card_no}/unfreeze", tag = "cards", request_body = FreezeRequest,
    params(("card_no" = crate::api_schema::CardNo, Path, description = "the card number, exactly as printed")),
    security(("bearer" = []), ("session_cookie" = [])),
    responses((status = 200, body = CardView), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody),
              (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody),
              (status = 409, description = "CARD_NOT_FROZEN, or CARD_FROZEN_CENTRALLY: frozen by head office or another store", body = crate::error::ErrorBody)))]
/// Manager or owner: lifts a freeze made at this store; central is told by a
/// `card_unfreeze` operation.
pub async fn unfreeze(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(card_no): ApiPath<String>,
    ApiJson(req): ApiJson<FreezeRequest>,
) -> AppResult<Json<CardView>> {
    set(state, user, card_no, false, req).await
}

async fn set(
    state: AppState,
    user: AuthUser,
    card_no: String,
    freeze: bool,
    req: FreezeRequest,
) -> AppResult<Json<CardView>> {
    validate::key(&card_no, "card_no", 32)?;
    let reason = validate::trimmed(&req.reason, "reason", FREEZE_REASON_MAX)?;
    Ok(Json(
        svc::set_frozen(&state, &user, card_no, freeze, reason).await?,
    ))
}
