//! The OpenAPI document, generated from the handlers' annotations (utoipa), and the
//! interactive docs page (Swagger UI, vendored under static/vendor/swagger-ui).

use std::sync::OnceLock;

use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::AppError;
use crate::service::session::SESSION_COOKIE;

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
        // The console's HttpOnly cookie; state-changing requests with it also need the
        // session's X-CSRF-Token header.
        components.add_security_scheme(
            "session_cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                SESSION_COOKIE,
                "Console session (POST /api/v1/console/login); state-changing requests also send X-CSRF-Token.",
            ))),
        );
        // GET /metrics with `[metrics] token` set: a static bearer token, not a JWT.
        components.add_security_scheme(
            "metrics_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The [metrics] token of the installation's config file. Without one, only loopback clients may scrape.",
                    ))
                    .build(),
            ),
        );
        // The head-office daemon's signature; X-Ingest-Ts goes with it.
        components.add_security_scheme(
            "daemon_signature",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Ingest-Sign",
                "Lowercase hex HMAC-SHA256, keyed with the site's [daemon] secret, of ts + \"\\n\" + METHOD + \"\\n\" + path + \"\\n\" + body (path without the query string, body the raw bytes, empty for GET), sent with X-Ingest-Ts = ts (unix seconds, decimal). Accepted within 300 s of the store's clock, once.",
            ))),
        );
    }
}

/// What the document says besides its paths: info, tags, security schemes and the
/// schemas no operation names directly. The paths come from the router
/// (`super::documented_routes`), each registered together with its operation.
#[derive(OpenApi)]
#[openapi(
    info(title = "mps-edge API", description = "Offline-first edge server of the Member Payment System. Amounts are exact decimals with 2 places (discounts 3). Errors use {\"error\":{\"code\",\"message\",\"details\"}}."),
    components(schemas(crate::error::ErrorBody, crate::error::ErrorDetail, crate::sync::state::ExceptionView)),
    modifiers(&Security),
    tags(
        (name = "auth", description = "Staff sign-in and tokens"),
        (name = "pos", description = "Charges, refunds, QR validation, transactions"),
        (name = "sync", description = "Sync with central"),
        (name = "daemon", description = "The head-office sync daemon's signed API (no staff sign-in)"),
        (name = "console", description = "Console session, staff, devices, audit, settings, live feed"),
        (name = "settlements", description = "Settlements for a period"),
        (name = "shifts", description = "Shifts at the till and their X/Z reports"),
        (name = "cards", description = "Cards at the counter: look up, freeze a lost card, lift the freeze"),
        (name = "operations", description = "Health, readiness, metrics, this document"),
    )
)]
pub struct ApiDoc;

/// The finished document, serialised once: the router is the same for every server in
/// the process, so the first one built publishes it.
static DOCUMENT: OnceLock<Bytes> = OnceLock::new();

/// The answers the layers around every handler can give (`build_router`), added to each
/// operation that does not document them itself: the per-address rate limit (429), the
/// request timeout (503), and for a JSON body its framing (400 `INVALID_JSON` /
/// `BODY_ABORTED`, 413, 415) or for parameters their parsing (400).
pub(super) fn complete(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    let error = |description: &str, retry_after: bool| {
        let mut r = ResponseBuilder::new().description(description).content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        );
        if retry_after {
            r = r.header(
                "Retry-After",
                utoipa::openapi::HeaderBuilder::new()
                    .schema(
                        utoipa::openapi::ObjectBuilder::new()
                            .schema_type(utoipa::openapi::schema::Type::Integer),
                    )
                    .description(Some("Seconds to wait before trying again"))
                    .build(),
            );
        }
        r.build()
    };
    let components = doc.components.get_or_insert_with(Default::default);
    for (name, schema) in crate::api_schema::all() {
        components.schemas.entry(name.to_string()).or_insert(schema);
    }
    for item in doc.paths.paths.values_mut() {
        let ops = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for op in ops.into_iter().flatten() {
            let has_body = op.request_body.is_some();
            let has_params = op.parameters.as_ref().is_some_and(|p| !p.is_empty());
            let answers = &mut op.responses.responses;
            let mut add = |status: &str, description: &str, retry_after: bool| {
                answers
                    .entry(status.to_string())
                    .or_insert_with(|| error(description, retry_after).into());
            };
            if has_body {
                add(
                    "400",
                    "VALIDATION_ERROR, INVALID_JSON or BODY_ABORTED",
                    false,
                );
                add(
                    "413",
                    "PAYLOAD_TOO_LARGE: the body exceeds server.body_limit_bytes",
                    false,
                );
                add(
                    "415",
                    "UNSUPPORTED_MEDIA_TYPE: send the body as application/json",
                    false,
                );
            } else if has_params {
                add("400", "VALIDATION_ERROR: a parameter is malformed", false);
            }
            add(
                "429",
                "TOO_MANY_REQUESTS: this address exceeded server.rate_limit_per_sec",
                true,
            );
            add(
                "503",
                "SERVICE_UNAVAILABLE: the request took longer than server.request_timeout_secs",
                false,
            );
        }
    }
}

/// Stores the document the router produced, completed (the first call wins; later
/// routers produce the same document).
pub(super) fn publish(doc: &utoipa::openapi::OpenApi) {
    DOCUMENT.get_or_init(|| {
        let mut doc = doc.clone();
        complete(&mut doc);
        serialise(&doc)
    });
}

fn serialise(doc: &utoipa::openapi::OpenApi) -> Bytes {
    match serde_json::to_vec(doc) {
        Ok(json) => Bytes::from(json),
        Err(e) => {
            tracing::error!(error = %e, "the OpenAPI document does not serialise");
            Bytes::new()
        }
    }
}

/// The served document (what `GET /api/v1/openapi.json` returns), for tools and tests.
pub fn document_json() -> Option<Bytes> {
    DOCUMENT.get().filter(|b| !b.is_empty()).cloned()
}

/// `GET /api/v1/openapi.json`.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "operations",
    responses((status = 200, body = Object, description = "this OpenAPI 3.1 document; its shape is the OpenAPI specification's, not a schema of this API")))]
pub async fn document() -> Response {
    match document_json() {
        Some(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
        None => AppError::internal("the OpenAPI document was not published").into_response(),
    }
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
