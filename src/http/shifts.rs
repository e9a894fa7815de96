//! Shifts and their reports (issue 14, item 2): `POST /shifts/open`, `GET /shifts/current`,
//! `POST /shifts/{id}/close`, `GET /reports/shift/{id}` (json, text for a thermal
//! printer, or csv).

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::extract::{ApiPath, ApiQuery};
use super::receipts::paper;
use super::validate;
use crate::domain::shift::{render_daily_text, render_text, DailyReport, ShiftReport};
use crate::error::{AppError, AppResult};
use crate::service::auth::AuthUser;
use crate::service::shifts as svc;
use crate::service::state::AppState;

#[utoipa::path(post, path = "/shifts/open", tag = "shifts", security(("bearer" = []), ("session_cookie" = [])),
    responses((status = 200, body = ShiftReport), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
              (status = 409, description = "SHIFT_ALREADY_OPEN", body = crate::error::ErrorBody)))]
/// Opens a shift for the signed-in person on this terminal (the session's device); its
/// X report, empty so far.
pub async fn open(State(state): State<AppState>, user: AuthUser) -> AppResult<Json<ShiftReport>> {
    Ok(Json(svc::open(&state, &user).await?))
}

#[utoipa::path(get, path = "/shifts/current", tag = "shifts", security(("bearer" = []), ("session_cookie" = [])),
    responses((status = 200, body = ShiftReport), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
              (status = 404, body = crate::error::ErrorBody)))]
/// The caller's open shift as an X report (figures so far); 404 when none is open.
pub async fn current(
    State(state): State<AppState>,
    user: AuthUser,
) -> AppResult<Json<ShiftReport>> {
    Ok(Json(svc::current(&state, &user).await?))
}

#[utoipa::path(post, path = "/shifts/{id}/close", tag = "shifts",
    params(("id" = crate::api_schema::Key64, Path, description = "shift id or number")),
    security(("bearer" = []), ("session_cookie" = [])),
    responses((status = 200, body = ShiftReport), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody),
              (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody),
              (status = 409, description = "SHIFT_CLOSED", body = crate::error::ErrorBody)))]
/// Closes the shift (one's own; a manager or the owner may close anyone's): the Z report,
/// stored with the close and never changed afterwards; audited.
pub async fn close(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<String>,
) -> AppResult<Json<ShiftReport>> {
    validate::key(&id, "id", 64)?;
    Ok(Json(svc::close(&state, &user, id).await?))
}

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    /// `json` (default), `text` (a thermal printer's lines) or `csv`.
    #[param(value_type = Option<crate::api_schema::ReportFormat>)]
    format: Option<String>,
    /// For `text`: 32 (58 mm, the default) or 48 (80 mm).
    #[param(value_type = Option<crate::api_schema::ReceiptWidth>)]
    width: Option<String>,
    /// For `text`: `zh-Hant` (default) or `en`.
    #[param(value_type = Option<crate::api_schema::ReceiptLang>)]
    lang: Option<String>,
}

#[utoipa::path(get, path = "/reports/shift/{id}", tag = "shifts",
    params(("id" = crate::api_schema::Key64, Path, description = "shift id or number"), ReportQuery),
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "X while the shift is open, Z once closed", content(
            (ShiftReport = "application/json"), (String = "text/plain"), (String = "text/csv"))),
        (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
/// A shift's report: one's own, or anyone's for a manager or the owner.
pub async fn report(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<ReportQuery>,
) -> AppResult<Response> {
    validate::key(&id, "id", 64)?;
    let format = q.format.as_deref().unwrap_or("json");
    if !["json", "text", "csv"].contains(&format) {
        return Err(AppError::validation(
            "format",
            "format must be json, text or csv.",
        ));
    }
    let (cols, lang) = paper(q.width.as_deref(), q.lang.as_deref())?;
    let r = svc::report(&state, &user, id).await?;
    Ok(match format {
        "text" => text_response(render_text(&r, cols, lang)),
        "csv" => csv_response(svc::report_csv(&r)?, &r.shift_no),
        _ => Json(r).into_response(),
    })
}

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DailyQuery {
    /// The business day in the store's zone; default today.
    #[param(value_type = Option<crate::api_schema::Day>)]
    date: Option<String>,
    /// `cashier` (default) or `terminal`.
    #[param(value_type = Option<crate::api_schema::ReportBy>)]
    by: Option<String>,
    /// `json` (default), `text` or `csv`.
    #[param(value_type = Option<crate::api_schema::ReportFormat>)]
    format: Option<String>,
    #[param(value_type = Option<crate::api_schema::ReceiptWidth>)]
    width: Option<String>,
    #[param(value_type = Option<crate::api_schema::ReceiptLang>)]
    lang: Option<String>,
}

#[utoipa::path(get, path = "/reports/daily", tag = "shifts", params(DailyQuery),
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "the day by cashier or by terminal", content(
            (DailyReport = "application/json"), (String = "text/plain"), (String = "text/csv"))),
        (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody)))]
/// Manager or owner: a business day's charges, refunds, net and unsynced operations per
/// cashier or per terminal, with the day's totals.
pub async fn daily(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(q): ApiQuery<DailyQuery>,
) -> AppResult<Response> {
    let format = q.format.as_deref().unwrap_or("json");
    if !["json", "text", "csv"].contains(&format) {
        return Err(AppError::validation(
            "format",
            "format must be json, text or csv.",
        ));
    }
    let by_terminal = match q.by.as_deref() {
        None | Some("cashier") => false,
        Some("terminal") => true,
        Some(_) => {
            return Err(AppError::validation(
                "by",
                "by must be cashier or terminal.",
            ))
        }
    };
    let (cols, lang) = paper(q.width.as_deref(), q.lang.as_deref())?;
    let tz = crate::service::settings::store_timezone(&state);
    let day = super::merchant::day_bounds(q.date.as_deref(), tz)?;
    let r = svc::daily(&state, &user, day, by_terminal).await?;
    Ok(match format {
        "text" => text_response(render_daily_text(&r, cols, lang)),
        "csv" => csv_response(svc::daily_csv(&r)?, &format!("daily-{}-{}", r.by, r.date)),
        _ => Json(r).into_response(),
    })
}

fn text_response(text: String) -> Response {
    let mut res = text.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}

fn csv_response(body: Vec<u8>, name: &str) -> Response {
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}.csv\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    res
}

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// The business day in the store's zone; default today.
    #[param(value_type = Option<crate::api_schema::Day>)]
    date: Option<String>,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ShiftList {
    pub date: String,
    /// Opened that day, or still open; each with its report (X or Z).
    pub shifts: Vec<ShiftReport>,
}

#[utoipa::path(get, path = "/shifts", tag = "shifts", params(ListQuery),
    security(("bearer" = []), ("session_cookie" = [])),
    responses((status = 200, body = ShiftList), (status = 400, body = crate::error::ErrorBody),
              (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
/// Manager or owner: the day's shifts and any still open, with their figures.
pub async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> AppResult<Json<ShiftList>> {
    let tz = crate::service::settings::store_timezone(&state);
    let (date, from, to) = super::merchant::day_bounds(q.date.as_deref(), tz)?;
    Ok(Json(ShiftList {
        date,
        shifts: svc::list(&state, &user, (from, to)).await?,
    }))
}
