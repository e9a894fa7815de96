//! The web console's routes: `/api/v1/console/*`, `/api/v1/devices/enroll`, the CSV
//! export and settlements under `/api/v1/merchant/*`, and the console pages. The
//! handlers live in their feature's room (`session`, `staff`, `devices`, `audit`,
//! `settings`, `export`, `settlements`, `console_ws`).

use axum::http::header::{self};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use super::console_ws;
use super::{audit, console_assets, devices, export, session, settings, settlements, staff};

use crate::state::AppState;

/// Routes under `/api/v1`.
pub fn api_routes() -> Router<AppState> {
    Router::new()
        .route("/console/login", post(session::login))
        .route("/console/logout", post(session::logout))
        .route("/console/session", get(session::session))
        .route(
            "/console/sign-out-everywhere",
            post(session::sign_out_everywhere),
        )
        .route("/console/me", axum::routing::put(session::update_me))
        .route(
            "/console/users",
            get(staff::list_users).post(staff::create_user),
        )
        .route("/console/users/{id}/disable", post(staff::disable_user))
        .route(
            "/console/users/{id}/reset-password",
            post(staff::reset_password),
        )
        .route("/console/devices", get(devices::list_devices))
        .route(
            "/console/devices/enrollment-codes",
            post(devices::enrollment_code),
        )
        .route("/console/devices/{id}/revoke", post(devices::revoke_device))
        .route("/devices/enroll", post(devices::enroll))
        .route("/console/audit", get(audit::audit))
        .route(
            "/console/settings",
            get(settings::get_settings).put(settings::put_settings),
        )
        .route("/console/ws", get(console_ws::handler))
        .route("/merchant/transactions/export.csv", get(export::export_csv))
        .route(
            "/merchant/settlements",
            get(settlements::list_settlements).post(settlements::create_settlement),
        )
        .route("/merchant/settlements/{id}", get(settlements::settlement))
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
