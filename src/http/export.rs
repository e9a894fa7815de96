//! `/api/v1/merchant/transactions/export.csv`: the transactions of the current filter as CSV.

use axum::extract::State;
use axum::http::header::{self, HeaderValue};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::extract::ApiQuery;
use super::merchant::{tx_filter, ListQuery};
use crate::error::AppResult;
use crate::service::auth::AuthUser;
use crate::service::export as svc;
use crate::service::state::AppState;

#[utoipa::path(get, path = "/merchant/transactions/export.csv", tag = "pos", params(super::merchant::ListQuery), security(("bearer" = []), ("session_cookie" = [])), responses((status = 200, body = String, content_type = "text/csv", description = "UTF-8 with BOM"), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 422, description = "PERIOD_INVALID: end_date before start_date; AMOUNT_RANGE_INVALID: min_amount above max_amount", body = crate::error::ErrorBody)))]
pub async fn export_csv(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> AppResult<Response> {
    q.page()?;
    let tz = crate::service::settings::store_timezone(&state);
    let filter = tx_filter(q, tz)?;
    let chunks = svc::export_csv(&state, &user, filter).await?;
    let body = axum::body::Body::from_stream(futures_util::stream::unfold(
        chunks,
        |mut chunks| async move {
            let item = chunks.next().await?.map_err(|e| {
                // The status is sent already: the client sees a cut-off download.
                tracing::error!(error = %e, "csv export failed mid-stream");
                std::io::Error::other("csv export failed")
            });
            Some((item, chunks))
        },
    ));
    let day = chrono::Utc::now().with_timezone(&tz).format("%Y%m%d");
    let disposition = format!(
        "attachment; filename=\"transactions-{}-{day}.csv\"",
        state.cfg.site.code
    );
    Ok((
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&disposition)
                    .unwrap_or_else(|_| HeaderValue::from_static("attachment")),
            ),
        ],
        body,
    )
        .into_response())
}
