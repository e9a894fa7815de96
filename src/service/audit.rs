//! The audit log, read for the console.

use crate::db::audit::{self as store, AuditFilter};
use crate::error::AppResult;
use crate::model::Pagination;
use crate::service::auth::AuthUser;
use crate::service::state::AppState;

/// One page of the audit log, newest first.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct AuditLog {
    pub entries: Vec<store::AuditView>,
    pub pagination: Pagination,
}

pub async fn audit_log(
    state: &AppState,
    user: &AuthUser,
    filter: AuditFilter,
    limit: i64,
    offset: i64,
) -> AppResult<AuditLog> {
    user.require_manager()?;
    let (entries, pagination) = state
        .db
        .read(move |c| store::list_audit(c, &filter, limit, offset))
        .await?;
    Ok(AuditLog {
        entries,
        pagination,
    })
}
