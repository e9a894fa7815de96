//! POS routes: `/api/v1/merchant/*` and `/api/v1/common/*`.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::Value;

use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::validate;
use crate::auth::sha256_hex;
use crate::db::ledger::Idem;
use crate::db::queries::{TxFilter, TxSort};
use crate::domain::approval::Act;
use crate::domain::money::parse_cents;
use crate::domain::perm;
use crate::domain::settlement::day_start;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::model::{DailySummary, TransactionList};
use crate::service::approval::{self, ApprovalInput};
use crate::service::auth::AuthUser;
use crate::service::payments::{self, ChargeInput, RefundInput};
use crate::service::state::AppState;
use crate::service::transactions;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChargeRequest {
    #[schema(value_type = crate::api_schema::QrText)]
    qr_plain: String,
    /// The amount the cashier entered, before the member discount.
    #[schema(value_type = crate::api_schema::AmountInput, example = "12.34")]
    amount: Value,
    /// Same as the Idempotency-Key header (send one or both, equal).
    #[schema(value_type = Option<crate::api_schema::IdempotencyKey>)]
    idempotency_key: Option<String>,
    #[schema(value_type = Option<crate::api_schema::ExternalOrderId>)]
    external_order_id: Option<String>,
    #[schema(value_type = Option<Object>)]
    tag: Option<Value>,
    /// A manager's name and PIN, when the store asks for one (a cashier's charge above
    /// `[approval] charge_above`).
    approval: Option<ApprovalInput>,
}

/// Checks the shape of an approval before anything is looked up.
fn check_approval(a: &Option<ApprovalInput>) -> AppResult<()> {
    if let Some(a) = a {
        validate::text(&a.username, "approval.username", 64)?;
        if !crate::domain::approval::pin_format_ok(&a.pin) {
            return Err(AppError::validation(
                "approval.pin",
                "approval.pin must be 4 to 8 digits.",
            ));
        }
    }
    Ok(())
}

fn idem_header(headers: &HeaderMap) -> AppResult<Option<&str>> {
    match headers.get("idempotency-key") {
        None => Ok(None),
        Some(v) => v.to_str().map(Some).map_err(|_| {
            AppError::validation(
                "Idempotency-Key",
                "The Idempotency-Key header must be ASCII.",
            )
        }),
    }
}

fn idem_scope(user: &AuthUser) -> String {
    match &user.device_id {
        Some(d) => format!("device:{d}"),
        None => format!("user:{}", user.id),
    }
}

/// The metrics label for a charge or refund result.
fn outcome(result: &AppResult<(String, bool)>) -> &'static str {
    match result {
        Ok((_, true)) => "replayed",
        Ok((_, false)) => "approved",
        Err(e) => e.code().as_str(),
    }
}

/// A stored JSON body, marked when it replays an earlier request.
fn json_body(body: String, replayed: bool) -> Response {
    let mut res = (
        StatusCode::OK,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response();
    if replayed {
        res.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    res
}

#[utoipa::path(post, path = "/merchant/charge", tag = "pos", request_body = ChargeRequest, security(("bearer" = [])),
    params(("Idempotency-Key" = Option<crate::api_schema::IdempotencyKey>, Header, description = "POS retry key (or idempotency_key in the body)")),
    responses((status = 200, body = crate::model::ChargeResponse), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody),
              (status = 403, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody), (status = 413, body = crate::error::ErrorBody), (status = 415, body = crate::error::ErrorBody),
              (status = 422, description = "declined by a business rule", body = crate::error::ErrorBody),
              (status = 429, description = "TOO_MANY_REQUESTS: the approver's PIN rests after wrong guesses", body = crate::error::ErrorBody),
              (status = 503, description = "SERVICE_UNAVAILABLE: too many PIN checks at once", body = crate::error::ErrorBody)))]
pub async fn charge(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    ApiJson(req): ApiJson<ChargeRequest>,
) -> AppResult<Response> {
    user.require(perm::CHARGE)?;
    let raw_cents = validate::amount(&req.amount, "amount", ErrorCode::InvalidPrice)?;
    if req.qr_plain.is_empty() {
        return Err(AppError::new(ErrorCode::InvalidQr));
    }
    let key = validate::idempotency_key(req.idempotency_key, idem_header(&headers)?)?;
    if let Some(o) = &req.external_order_id {
        validate::text(o, "external_order_id", 128)?;
    }
    let tag = validate::tag(req.tag)?;
    let idem = key.map(|key| Idem {
        scope: idem_scope(&user),
        request_hash: sha256_hex(
            &serde_json::json!([req.qr_plain, raw_cents, req.external_order_id, tag]).to_string(),
        ),
        key,
    });
    check_approval(&req.approval)?;
    if let Some(body) = payments::replayed(&state, &idem, "charge").await? {
        return Ok(json_body(body, true));
    }
    let actor = approval::actor_for(&state, &user, Act::Charge { raw_cents }, req.approval).await?;
    let result = payments::charge(
        &state,
        actor,
        ChargeInput {
            qr_plain: req.qr_plain,
            raw_cents,
            idem,
            external_order_id: req.external_order_id,
            tag,
        },
    )
    .await;
    crate::metrics::charge_outcome(outcome(&result));
    let (body, replayed) = result?;
    Ok(json_body(body, replayed))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundRequest {
    #[schema(value_type = crate::api_schema::Key64)]
    original_tx_no: String,
    #[schema(value_type = crate::api_schema::AmountInput, example = "5.00")]
    refund_amount: Value,
    #[schema(value_type = Option<crate::api_schema::Reason>)]
    reason: Option<String>,
    /// Same as the Idempotency-Key header (send one or both, equal).
    #[schema(value_type = Option<crate::api_schema::IdempotencyKey>)]
    idempotency_key: Option<String>,
    #[schema(value_type = Option<Object>)]
    tag: Option<Value>,
    /// A manager's name and PIN: how a cashier refunds (`[approval] cashier_refunds`).
    approval: Option<ApprovalInput>,
}

#[utoipa::path(post, path = "/merchant/refund", tag = "pos", request_body = RefundRequest, security(("bearer" = [])),
    params(("Idempotency-Key" = Option<crate::api_schema::IdempotencyKey>, Header, description = "retry key")),
    responses((status = 200, body = crate::model::RefundResponse), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody),
              (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody),
              (status = 429, description = "TOO_MANY_REQUESTS: the approver's PIN rests after wrong guesses", body = crate::error::ErrorBody),
              (status = 503, description = "SERVICE_UNAVAILABLE: too many PIN checks at once", body = crate::error::ErrorBody)))]
pub async fn refund(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    ApiJson(req): ApiJson<RefundRequest>,
) -> AppResult<Response> {
    validate::key(&req.original_tx_no, "original_tx_no", 64)?;
    let amount_cents = validate::amount(
        &req.refund_amount,
        "refund_amount",
        ErrorCode::InvalidRefundAmount,
    )?;
    if let Some(r) = &req.reason {
        validate::text(r, "reason", 500)?;
    }
    let key = validate::idempotency_key(req.idempotency_key, idem_header(&headers)?)?;
    let tag = validate::tag(req.tag)?;
    let idem = key.map(|key| Idem {
        scope: idem_scope(&user),
        request_hash: sha256_hex(
            &serde_json::json!([req.original_tx_no, amount_cents, req.reason, tag]).to_string(),
        ),
        key,
    });
    check_approval(&req.approval)?;
    if let Some(body) = payments::replayed(&state, &idem, "refund").await? {
        return Ok(json_body(body, true));
    }
    let actor = approval::actor_for(&state, &user, Act::Refund, req.approval).await?;
    if actor.approved_by.is_none() {
        user.require(perm::REFUND)?;
    }
    let result = payments::refund(
        &state,
        actor,
        RefundInput {
            original_tx_no: req.original_tx_no,
            amount_cents,
            reason: req.reason,
            idem,
            tag,
        },
    )
    .await;
    crate::metrics::refund_outcome(outcome(&result));
    let (body, replayed) = result?;
    Ok(json_body(body, replayed))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TopupRequest {
    /// The card to load, by its printed number.
    #[schema(value_type = crate::api_schema::CardNo)]
    card_no: String,
    #[schema(value_type = crate::api_schema::AmountInput, example = "500.00")]
    amount: Value,
    /// How the member paid (default cash): the shift report's cash expected counts cash.
    #[schema(value_type = Option<crate::api_schema::TopupMethod>)]
    payment_method: Option<String>,
    /// Same as the Idempotency-Key header (send one or both, equal).
    #[schema(value_type = Option<crate::api_schema::IdempotencyKey>)]
    idempotency_key: Option<String>,
    #[schema(value_type = Option<Object>)]
    tag: Option<Value>,
    /// A manager's name and PIN, when the store asks for one (`[approval] cashier_topups
    /// = "approval"`).
    approval: Option<ApprovalInput>,
}

#[utoipa::path(post, path = "/merchant/topup", tag = "pos", request_body = TopupRequest, security(("bearer" = [])),
    params(("Idempotency-Key" = Option<crate::api_schema::IdempotencyKey>, Header, description = "retry key")),
    responses((status = 200, body = crate::model::TopupResponse), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody),
              (status = 403, body = crate::error::ErrorBody), (status = 404, description = "CARD_NOT_FOUND", body = crate::error::ErrorBody),
              (status = 409, body = crate::error::ErrorBody), (status = 413, body = crate::error::ErrorBody), (status = 415, body = crate::error::ErrorBody),
              (status = 422, description = "declined by a business rule or an offline limit", body = crate::error::ErrorBody),
              (status = 429, description = "TOO_MANY_REQUESTS: the approver's PIN rests after wrong guesses", body = crate::error::ErrorBody),
              (status = 503, description = "SERVICE_UNAVAILABLE: too many PIN checks at once", body = crate::error::ErrorBody)))]
/// A counter top-up: value loaded onto a member's standard card at the till, paid in
/// cash or by wallet. Pushed to central once, as upstream's recharge.
pub async fn topup(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    ApiJson(req): ApiJson<TopupRequest>,
) -> AppResult<Response> {
    user.require(perm::TOPUP)?;
    validate::key(&req.card_no, "card_no", 32)?;
    let amount_cents = validate::amount(&req.amount, "amount", ErrorCode::InvalidRechargeAmount)?;
    let payment_method = one_of(
        req.payment_method,
        "payment_method",
        &crate::domain::topup::TOPUP_METHODS,
    )?
    .unwrap_or_else(|| "cash".into());
    let key = validate::idempotency_key(req.idempotency_key, idem_header(&headers)?)?;
    let tag = validate::tag(req.tag)?;
    let idem = key.map(|key| Idem {
        scope: idem_scope(&user),
        request_hash: sha256_hex(
            &serde_json::json!(["topup", req.card_no, amount_cents, payment_method, tag])
                .to_string(),
        ),
        key,
    });
    check_approval(&req.approval)?;
    if let Some(body) = payments::replayed(&state, &idem, "topup").await? {
        return Ok(json_body(body, true));
    }
    let actor = approval::actor_for(&state, &user, Act::Topup, req.approval).await?;
    let result = crate::service::topups::topup(
        &state,
        actor,
        crate::service::topups::TopupInput {
            card_no: req.card_no,
            amount_cents,
            payment_method,
            idem,
            tag,
        },
    )
    .await;
    crate::metrics::topup_outcome(outcome(&result));
    let (body, replayed) = result?;
    Ok(json_body(body, replayed))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidateRequest {
    #[schema(value_type = crate::api_schema::QrText)]
    qr_plain: String,
}

#[utoipa::path(post, path = "/common/qr/validate", tag = "pos", request_body = ValidateRequest, security(("bearer" = [])),
    responses((status = 200, body = crate::model::QrValidateResponse), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody),
              (status = 403, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn validate_qr(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(req): ApiJson<ValidateRequest>,
) -> AppResult<Response> {
    user.require(perm::CHARGE)?;
    if req.qr_plain.is_empty() {
        return Err(AppError::new(ErrorCode::InvalidQr));
    }
    Ok(Json(payments::validate(&state, &req.qr_plain).await?).into_response())
}

#[utoipa::path(get, path = "/levels", tag = "pos", security(("bearer" = [])),
    responses((status = 200, body = crate::model::LevelList), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
/// The membership levels (central's, as replicated): thresholds and discounts, so a till
/// can explain a member's level.
pub async fn levels(
    State(state): State<AppState>,
    user: AuthUser,
) -> AppResult<Json<crate::model::LevelList>> {
    user.require(perm::CHARGE)?;
    Ok(Json(payments::levels(&state).await?))
}

#[utoipa::path(get, path = "/common/transactions/{tx_no}", tag = "pos", security(("bearer" = [])),
    params(("tx_no" = crate::api_schema::Key64, Path, description = "transaction number")),
    responses((status = 200, body = transactions::TransactionDetail), (status = 400, body = crate::error::ErrorBody),
              (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn transaction_detail(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(tx_no): ApiPath<String>,
) -> AppResult<Json<transactions::TransactionDetail>> {
    // Permission before input checks, as every POS read answers.
    user.require(perm::READ_TRANSACTIONS)?;
    validate::key(&tx_no, "tx_no", 64)?;
    Ok(Json(transactions::detail(&state, &user, tx_no).await?))
}

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// 1-200, default 20 (the CSV export checks it, then writes every matching row).
    #[param(minimum = 1, maximum = 200)]
    pub(crate) limit: Option<i64>,
    #[param(minimum = 0, maximum = 10_000_000)]
    pub(crate) offset: Option<i64>,
    #[param(value_type = Option<crate::api_schema::DateBound>)]
    start_date: Option<String>,
    #[param(value_type = Option<crate::api_schema::DateBound>)]
    end_date: Option<String>,
    #[serde(rename = "type")]
    #[param(value_type = Option<crate::api_schema::TxType>)]
    tx_type: Option<String>,
    #[param(value_type = Option<crate::api_schema::TxStatus>)]
    status: Option<String>,
    #[param(value_type = Option<crate::api_schema::CardNo>)]
    card_no: Option<String>,
    #[param(value_type = Option<crate::api_schema::AmountText>)]
    min_amount: Option<String>,
    #[param(value_type = Option<crate::api_schema::AmountText>)]
    max_amount: Option<String>,
    #[param(value_type = Option<crate::api_schema::SyncStateFilter>)]
    sync_state: Option<String>,
    /// Part of a card number or a transaction number, any case.
    #[param(value_type = Option<crate::api_schema::SearchText>)]
    q: Option<String>,
    /// time_desc (default), time_asc, amount_desc or amount_asc (the final amount).
    #[param(value_type = Option<crate::api_schema::TxSortName>)]
    sort: Option<String>,
}

/// A date bound: RFC 3339 instant, or YYYY-MM-DD meaning that day's start in the store's
/// zone (for an end bound: the next day's start, so the whole day is included).
pub(crate) fn parse_bound(text: &str, field: &str, tz: chrono_tz::Tz, end: bool) -> AppResult<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp());
    }
    let day = NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
        AppError::validation(
            field,
            format!("{field} must be YYYY-MM-DD or an RFC 3339 time."),
        )
    })?;
    let day = if end {
        day.succ_opt().unwrap_or(day)
    } else {
        day
    };
    day_start(day, tz)
        .ok_or_else(|| AppError::validation(field, format!("{field} is out of range.")))
}

/// A business day in the store's zone (`date`, default today): its name and its
/// [from, to) in unix seconds.
pub(crate) fn day_bounds(date: Option<&str>, tz: chrono_tz::Tz) -> AppResult<(String, i64, i64)> {
    let day = match date {
        None => chrono::Utc::now().with_timezone(&tz).date_naive(),
        Some(d) => NaiveDate::parse_from_str(d, "%Y-%m-%d")
            .map_err(|_| AppError::validation("date", "date must be YYYY-MM-DD."))?,
    };
    let from =
        day_start(day, tz).ok_or_else(|| AppError::validation("date", "date is out of range."))?;
    let to = day
        .succ_opt()
        .and_then(|d| day_start(d, tz))
        .ok_or_else(|| AppError::validation("date", "date is out of range."))?;
    Ok((day.format("%Y-%m-%d").to_string(), from, to))
}

fn one_of(value: Option<String>, field: &str, allowed: &[&str]) -> AppResult<Option<String>> {
    match value {
        Some(v) if !allowed.contains(&v.as_str()) => Err(AppError::validation(
            field,
            format!("{field} must be one of: {}.", allowed.join(", ")),
        )),
        other => Ok(other),
    }
}

fn optional_amount(value: Option<String>, field: &str) -> AppResult<Option<i64>> {
    value
        .map(|v| {
            parse_cents(&v).map_err(|_| {
                AppError::validation(field, format!("{field} must be a positive amount."))
            })
        })
        .transpose()
}

#[utoipa::path(get, path = "/merchant/transactions", tag = "pos", security(("bearer" = [])), params(ListQuery),
    responses((status = 200, body = crate::model::TransactionList), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 422, description = "PERIOD_INVALID: end_date before start_date; AMOUNT_RANGE_INVALID: min_amount above max_amount", body = crate::error::ErrorBody)))]
pub async fn transactions(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> AppResult<Json<TransactionList>> {
    user.require(perm::READ_TRANSACTIONS)?;
    let (limit, offset) = q.page()?;
    let filter = tx_filter(q, crate::service::settings::store_timezone(&state))?;
    Ok(Json(
        transactions::list(&state, &user, filter, limit, offset).await?,
    ))
}

impl ListQuery {
    /// `limit` and `offset`, checked (the CSV export checks them too, then writes every
    /// matching row).
    pub(crate) fn page(&self) -> AppResult<(i64, i64)> {
        validate::paging(self.limit, self.offset, 20)
    }
}

/// The list filters of `GET /merchant/transactions` (also used by the CSV export).
pub(crate) fn tx_filter(q: ListQuery, tz: chrono_tz::Tz) -> AppResult<TxFilter> {
    let sort = match q.sort.as_deref() {
        None => TxSort::default(),
        Some(name) => TxSort::parse(name).ok_or_else(|| {
            AppError::validation(
                "sort",
                format!("sort must be one of: {}.", TxSort::NAMES.join(", ")),
            )
        })?,
    };
    let search =
        q.q.map(|text| validate::key(&text, "q", 32).map(|_| text))
            .transpose()?;
    let filter = TxFilter {
        search,
        sort,
        from_unix: q
            .start_date
            .as_deref()
            .map(|s| parse_bound(s, "start_date", tz, false))
            .transpose()?,
        to_unix: q
            .end_date
            .as_deref()
            .map(|s| parse_bound(s, "end_date", tz, true))
            .transpose()?,
        tx_type: one_of(q.tx_type, "type", crate::api_schema::TX_TYPE_FILTERS)?,
        status: one_of(q.status, "status", &["completed", "refunded"])?,
        card_no: q
            .card_no
            .map(|c| validate::key(&c, "card_no", 32).map(|_| c))
            .transpose()?,
        min_cents: optional_amount(q.min_amount, "min_amount")?,
        max_cents: optional_amount(q.max_amount, "max_amount")?,
        sync_state: one_of(
            q.sync_state,
            "sync_state",
            &["pending", "applied", "exception"],
        )?,
    };
    check_ranges(&filter)?;
    Ok(filter)
}

/// A range no row can fall in is a mistake to explain, not an empty list: the end date
/// before the start, or the lowest amount above the highest.
fn check_ranges(f: &TxFilter) -> AppResult<()> {
    if let (Some(from), Some(to)) = (f.from_unix, f.to_unix) {
        if from >= to {
            return Err(AppError::msg(
                ErrorCode::PeriodInvalid,
                "end_date must not be before start_date.",
            )
            .with_details(serde_json::json!({"field": "end_date"})));
        }
    }
    if let (Some(min), Some(max)) = (f.min_cents, f.max_cents) {
        if min > max {
            return Err(AppError::new(ErrorCode::AmountRangeInvalid)
                .with_details(serde_json::json!({"field": "max_amount"})));
        }
    }
    Ok(())
}

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SummaryQuery {
    /// Default today.
    #[param(value_type = Option<crate::api_schema::Day>)]
    date: Option<String>,
}

#[utoipa::path(get, path = "/merchant/daily-summary", tag = "pos", security(("bearer" = [])), params(SummaryQuery),
    responses((status = 200, body = crate::model::DailySummary), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
pub async fn daily_summary(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(q): ApiQuery<SummaryQuery>,
) -> AppResult<Json<DailySummary>> {
    user.require(perm::READ_SUMMARY)?;
    let tz = crate::service::settings::store_timezone(&state);
    let (date, from, to) = day_bounds(q.date.as_deref(), tz)?;
    Ok(Json(
        transactions::daily_summary(&state, &user, date, tz, from, to).await?,
    ))
}
