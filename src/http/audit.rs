//! `/api/v1/console/audit`: the audit log, filtered and paged.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;

use super::extract::ApiQuery;
use super::merchant::parse_bound;
use super::validate;
use crate::db::audit::AuditFilter;
use crate::domain::audit::{family_names, family_prefixes};
use crate::error::{AppError, AppResult};
use crate::service::audit as svc;
use crate::service::auth::AuthUser;
use crate::service::state::AppState;

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    #[param(value_type = Option<crate::api_schema::AuditActionFilter>)]
    action: Option<String>,
    /// A kind of event: signin, staff, devices, payments, settlements, settings or sync.
    #[param(value_type = Option<crate::api_schema::AuditFamily>)]
    family: Option<String>,
    #[param(value_type = Option<crate::api_schema::ActorFilter>)]
    actor: Option<String>,
    #[param(value_type = Option<crate::api_schema::DateBoundFilter>)]
    from: Option<String>,
    #[param(value_type = Option<crate::api_schema::DateBoundFilter>)]
    to: Option<String>,
    /// 1-200, default 50.
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    #[param(minimum = 0, maximum = 10_000_000)]
    offset: Option<i64>,
}

fn rfc3339(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        .unwrap_or_default()
}

#[utoipa::path(get, path = "/console/audit", tag = "console", params(AuditQuery), security(("bearer" = []), ("session_cookie" = [])), responses((status = 200, body = svc::AuditLog), (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
pub async fn audit(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> AppResult<Json<svc::AuditLog>> {
    let (limit, offset) = validate::paging(q.limit, q.offset, 50)?;
    let tz = crate::service::settings::store_timezone(&state);
    let nonempty = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
    let prefixes = match nonempty(q.family) {
        None => &[][..],
        Some(f) => family_prefixes(&f).ok_or_else(|| {
            AppError::validation(
                "family",
                format!("family must be one of: {}.", family_names().join(", ")),
            )
        })?,
    };
    let filter = AuditFilter {
        prefixes,
        action: nonempty(q.action)
            .map(|a| validate::key(&a, "action", 64).map(|()| a))
            .transpose()?,
        actor: nonempty(q.actor)
            .map(|a| validate::text(&a, "actor", 64).map(|()| a))
            .transpose()?,
        from: nonempty(q.from)
            .map(|f| parse_bound(&f, "from", tz, false).map(rfc3339))
            .transpose()?,
        to: nonempty(q.to)
            .map(|t| parse_bound(&t, "to", tz, true).map(rfc3339))
            .transpose()?,
    };
    Ok(Json(
        svc::audit_log(&state, &user, filter, limit, offset).await?,
    ))
}
