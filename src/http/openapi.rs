//! The OpenAPI document, generated from the handlers' annotations (utoipa), and the
//! interactive docs page (Swagger UI, vendored under static/vendor/swagger-ui).

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "mps-edge API", description = "Offline-first edge server of the Member Payment System. Amounts are exact decimals with 2 places (discounts 3). Errors use {\"error\":{\"code\",\"message\",\"details\"}}."),
    paths(
        super::auth::login,
        super::auth::refresh,
        super::auth::logout,
        super::auth::me,
        super::merchant::charge,
        super::merchant::refund,
        super::merchant::validate_qr,
        super::merchant::transaction_detail,
        super::merchant::transactions,
        super::merchant::daily_summary,
        super::sync::status,
        super::sync::exceptions,
        super::sync::resolve,
        super::sync::sync_now,
        super::health,
        super::ready,
        super::metrics::render,
        document,
        super::session::login,
        super::session::logout,
        super::session::session,
        super::session::sign_out_everywhere,
        super::session::update_me,
        super::staff::list_users,
        super::staff::create_user,
        super::staff::disable_user,
        super::staff::reset_password,
        super::devices::list_devices,
        super::devices::enrollment_code,
        super::devices::enroll,
        super::devices::revoke_device,
        super::audit::audit,
        super::settings::get_settings,
        super::settings::put_settings,
        super::export::export_csv,
        super::settlements::create_settlement,
        super::settlements::list_settlements,
        super::settlements::settlement,
        super::console_ws::handler,
    ),
    components(schemas(crate::error::ErrorBody, crate::error::ErrorDetail, crate::db::syncstate::ExceptionView)),
    modifiers(&Security),
    tags(
        (name = "auth", description = "Staff sign-in and tokens"),
        (name = "pos", description = "Charges, refunds, QR validation, transactions"),
        (name = "sync", description = "Sync with central"),
        (name = "console", description = "Console session, staff, devices, audit, settings, live feed"),
        (name = "settlements", description = "Settlements for a period"),
        (name = "operations", description = "Health, readiness, metrics, this document"),
    )
)]
pub struct ApiDoc;

/// `GET /api/v1/openapi.json`.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "operations", responses((status = 200, body = Object, description = "this document")))]
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

#[derive(rust_embed::RustEmbed)]
#[folder = "static/vendor/swagger-ui/"]
#[include = "*.js"]
#[include = "*.css"]
struct SwaggerUi;

const DOCS_PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>mps-edge API</title>
<link rel="stylesheet" href="/api/docs/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/api/docs/swagger-ui-bundle.js"></script>
<script src="/api/docs/init.js"></script></body></html>"#;

const INIT_JS: &str = "window.ui = SwaggerUIBundle({url: '/api/v1/openapi.json', dom_id: '#swagger-ui', deepLinking: true});\n";

/// `GET /api/docs`: Swagger UI over the document (no third-party host involved).
pub async fn docs_page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
            ),
        ],
        DOCS_PAGE,
    )
        .into_response()
}

pub async fn docs_asset(Path(file): Path<String>) -> Response {
    if file == "init.js" {
        return ([(header::CONTENT_TYPE, "text/javascript")], INIT_JS).into_response();
    }
    match SwaggerUi::get(&file) {
        Some(f) => {
            let mime = if file.ends_with(".css") {
                "text/css"
            } else {
                "text/javascript"
            };
            (
                [
                    (header::CONTENT_TYPE, mime),
                    (header::CACHE_CONTROL, "public, max-age=86400"),
                ],
                f.data.into_owned(),
            )
                .into_response()
        }
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}
