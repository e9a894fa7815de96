//! Staff administration: who may manage whom, listing, creating, disabling and resetting
//! accounts (the last enabled owner is kept).

use serde_json::json;

use crate::auth::check_password_policy;
use crate::db::staff as store;
use crate::db::users::{self, audit};
use crate::domain::Role;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::service::auth::AuthUser;
use crate::service::state::AppState;

/// Owners manage everyone; managers manage cashiers; cashiers manage nobody.
pub fn may_manage(actor: Role, target: Role) -> bool {
    match actor {
        Role::Owner => true,
        Role::Manager => target == Role::Cashier,
        Role::Cashier => false,
    }
}

fn refuse_role(actor: Role, target: Role) -> AppError {
    AppError::msg(
        ErrorCode::PermissionDenied,
        match actor {
            Role::Manager => "A manager may manage cashier accounts only; ask the owner.",
            _ => "Only the owner may manage owner and manager accounts.",
        },
    )
    .with_details(json!({"role": actor.as_str(), "target_role": target.as_str()}))
}

/// The staff accounts, owners first.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct StaffList {
    pub users: Vec<store::StaffView>,
}

/// One staff account after a change.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct StaffMember {
    pub user: store::StaffView,
}

pub async fn list_staff(state: &AppState, user: &AuthUser) -> AppResult<Vec<store::StaffView>> {
    user.require_manager()?;
    state.db.read(store::list_staff).await
}

pub async fn create_staff(
    state: &AppState,
    user: &AuthUser,
    username: String,
    password: String,
    role: Role,
) -> AppResult<store::StaffView> {
    user.require_manager()?;
    if !may_manage(user.role, role) {
        return Err(refuse_role(user.role, role));
    }
    check_password_policy(&password).map_err(|m| AppError::validation("password", m))?;
    let hash = state.passwords.hash(password).await?;
    let actor = user.actor();
    state
        .db
        .write(move |c| {
            let id = users::upsert_user(c, &username, &hash, role, false, &actor)?;
            store::staff_by_id(c, &id)
        })
        .await
}

/// Checks, inside the writer, that `user` may change account `id`.
fn check_target(conn: &rusqlite::Connection, user: &AuthUser, id: &str) -> AppResult<Role> {
    let (role, _) = store::role_of(conn, id)?.ok_or(ErrorCode::UserNotFound)?;
    if !may_manage(user.role, role) {
        return Err(refuse_role(user.role, role));
    }
    Ok(role)
}

pub async fn set_disabled(
    state: &AppState,
    user: &AuthUser,
    id: String,
    disabled: bool,
) -> AppResult<store::StaffView> {
    user.require_manager()?;
    let me = user.clone();
    state
        .db
        .write(move |c| {
            if disabled && id == me.id {
                return Err(AppError::msg(
                    ErrorCode::Conflict,
                    "You cannot disable your own account.",
                ));
            }
            let role = check_target(c, &me, &id)?;
            if disabled && role == Role::Owner && store::enabled_owners(c)? <= 1 {
                return Err(AppError::msg(
                    ErrorCode::Conflict,
                    "This is the last enabled owner account; it cannot be disabled.",
                ));
            }
            store::set_disabled(c, &id, disabled)?;
            let view = store::staff_by_id(c, &id)?;
            audit(
                c,
                &me.actor(),
                if disabled {
                    "user.disable"
                } else {
                    "user.enable"
                },
                Some(("user", &id)),
                json!({"username": view.username, "role": view.role}),
            )?;
            Ok(view)
        })
        .await
}

pub async fn reset_password(
    state: &AppState,
    user: &AuthUser,
    id: String,
    password: String,
) -> AppResult<store::StaffView> {
    user.require_manager()?;
    check_password_policy(&password).map_err(|m| AppError::validation("password", m))?;
    let hash = state.passwords.hash(password).await?;
    let me = user.clone();
    state
        .db
        .write(move |c| {
            check_target(c, &me, &id)?;
            store::reset_password(c, &id, &hash)?;
            let view = store::staff_by_id(c, &id)?;
            // Never the password itself.
            audit(
                c,
                &me.actor(),
                "user.reset_password",
                Some(("user", &id)),
                json!({"username": view.username}),
            )?;
            Ok(view)
        })
        .await
}

/// Lifts the sign-in lock of account `id` (owners any account, managers cashiers).
pub async fn unlock(state: &AppState, user: &AuthUser, id: String) -> AppResult<store::StaffView> {
    user.require_manager()?;
    let me = user.clone();
    state
        .db
        .write(move |c| {
            check_target(c, &me, &id)?;
            let view = store::staff_by_id(c, &id)?;
            let was_locked = crate::db::signin::unlock(c, &view.username)?;
            audit(
                c,
                &me.actor(),
                "user.unlock",
                Some(("user", &id)),
                json!({"username": view.username, "had_failures": was_locked}),
            )?;
            store::staff_by_id(c, &id)
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staff_rules() {
        assert!(may_manage(Role::Owner, Role::Owner));
        assert!(may_manage(Role::Owner, Role::Manager));
        assert!(may_manage(Role::Manager, Role::Cashier));
        assert!(!may_manage(Role::Manager, Role::Manager));
        assert!(!may_manage(Role::Manager, Role::Owner));
        assert!(!may_manage(Role::Cashier, Role::Cashier));
    }
}
