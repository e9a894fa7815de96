//! The web console's routes: `/api/v1/console/*`, `/api/v1/devices/enroll`, the CSV
//! export and settlements under `/api/v1/merchant/*`, and the console pages. The
//! handlers live in their feature's room (`session`, `staff`, `devices`, `audit`,
//! `settings`, `export`, `settlements`, `console_ws`).

use axum::http::header::{self};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::console_ws;
use super::{audit, console_assets, devices, export, session, settings, settlements, staff};

use crate::service::state::AppState;

/// Routes under `/api/v1`, each with its OpenAPI operation (paths relative to
/// `/api/v1`).
pub fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(session::login))
        .routes(routes!(session::logout))
        .routes(routes!(session::session))
        .routes(routes!(session::sign_out_everywhere))
        .routes(routes!(session::update_me))
        .routes(routes!(staff::list_users, staff::create_user))
        .routes(routes!(staff::disable_user))
        .routes(routes!(staff::reset_password))
        .routes(routes!(staff::unlock_user))
        .routes(routes!(devices::list_devices))
        .routes(routes!(devices::enrollment_code))
        .routes(routes!(devices::revoke_device))
        .routes(routes!(devices::cancel_enrollment_code))
        .routes(routes!(devices::enroll))
        .routes(routes!(audit::audit))
        .routes(routes!(console_ws::handler))
        .routes(routes!(export::export_csv))
        .routes(routes!(
            settlements::list_settlements,
            settlements::create_settlement
        ))
        .routes(routes!(settlements::settlement))
        .routes(routes!(settlements::void_settlement))
        .routes(routes!(settings::get_settings, settings::put_settings))
}

/// The pages: `/` redirects to `/console/`, which serves the console.
pub fn page_routes() -> Router<AppState> {
    Router::new()
        .route("/", get(to_console))
        .route("/console", get(to_console))
        .route("/console/", get(console_assets::shell))
        .route("/console/{*path}", get(console_assets::page_or_asset))
}

async fn to_console() -> Response {
    (
        StatusCode::FOUND,
        [
            (header::LOCATION, "/console/"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
    )
        .into_response()
}
