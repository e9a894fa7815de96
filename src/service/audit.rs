//! The audit log, read for the console.

use crate::db::audit::{self as store, AuditFilter};
use crate::error::AppResult;
use crate::model::Pagination;
use crate::service::auth::AuthUser;
use crate::state::AppState;

pub async fn audit_log(
    state: &AppState,
    user: &AuthUser,
    filter: AuditFilter,
    limit: i64,
    offset: i64,
) -> AppResult<(Vec<store::AuditView>, Pagination)> {
    user.require_manager()?;
    state
        .db
        .read(move |c| store::list_audit(c, &filter, limit, offset))
        .await
}
