//! `GET /transactions/{tx_no}/receipt`: a transaction's receipt as text for a thermal
//! printer, as a printable HTML page, or as JSON (issue 14, item 1).

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::extract::{ApiPath, ApiQuery};
use super::validate;
use crate::domain::receipt::{render_html, render_text, Lang, HTML_STYLE, WIDTHS};
use crate::error::{AppError, AppResult};
use crate::service::auth::AuthUser;
use crate::service::receipts as svc;
use crate::service::state::AppState;

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReceiptQuery {
    /// Default `text`.
    #[param(value_type = Option<crate::api_schema::ReceiptFormat>)]
    format: Option<String>,
    /// For `text`: 32 (58 mm, the default) or 48 (80 mm).
    #[param(value_type = Option<crate::api_schema::ReceiptWidth>)]
    width: Option<String>,
    /// Default `zh-Hant`.
    #[param(value_type = Option<crate::api_schema::ReceiptLang>)]
    lang: Option<String>,
}

/// The `width` (printer columns) and `lang` of a printout: receipts and shift reports.
pub fn paper(width: Option<&str>, lang: Option<&str>) -> AppResult<(usize, Lang)> {
    let cols = match width {
        None => WIDTHS[0],
        Some(w) => w
            .parse::<usize>()
            .ok()
            .filter(|w| WIDTHS.contains(w))
            .ok_or_else(|| AppError::validation("width", "width must be 32 or 48."))?,
    };
    let lang = match lang {
        None => Lang::ZhHant,
        Some(l) => Lang::parse(l)
            .ok_or_else(|| AppError::validation("lang", "lang must be zh-Hant or en."))?,
    };
    Ok((cols, lang))
}

/// The HTML page's policy: no script, and only its own style (by hash).
fn html_csp() -> &'static str {
    // The style is a constant: hash it once.
    static CSP: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    CSP.get_or_init(|| {
        let hash = base64::engine::general_purpose::STANDARD
            .encode(Sha256::digest(HTML_STYLE.as_bytes()));
        format!("default-src 'none'; style-src 'sha256-{hash}'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
    })
}

#[utoipa::path(get, path = "/transactions/{tx_no}/receipt", tag = "pos",
    params(("tx_no" = crate::api_schema::Key64, Path, description = "transaction number"), ReceiptQuery),
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "the receipt: JSON (format=json), text/plain (format=text) or text/html (format=html)", content(
            (crate::domain::receipt::Receipt = "application/json"),
            (String = "text/plain"),
            (String = "text/html"))),
        (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
/// Store, site, terminal, cashier, the store's local time, amounts, points, the card's
/// balance and points after, refunds against it, and a "pending sync" mark while the
/// operation is still queued for head office. The card number is masked.
pub async fn receipt(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(tx_no): ApiPath<String>,
    ApiQuery(q): ApiQuery<ReceiptQuery>,
) -> AppResult<Response> {
    validate::key(&tx_no, "tx_no", 64)?;
    let format = q.format.as_deref().unwrap_or("text");
    if !["text", "html", "json"].contains(&format) {
        return Err(AppError::validation(
            "format",
            "format must be text, html or json.",
        ));
    }
    let (width, lang) = paper(q.width.as_deref(), q.lang.as_deref())?;
    let r = svc::receipt(&state, &user, tx_no).await?;
    Ok(match format {
        "json" => Json(r).into_response(),
        "html" => {
            let mut res = render_html(&r, lang).into_response();
            let h = res.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            if let Ok(csp) = HeaderValue::from_str(html_csp()) {
                h.insert(header::CONTENT_SECURITY_POLICY, csp);
            }
            res
        }
        _ => {
            let mut res = render_text(&r, width, lang).into_response();
            res.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            res
        }
    })
}
