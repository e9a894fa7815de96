//! Manager approval at the till: a cashier's refund, or a charge above the store's
//! amount, goes through when a manager or owner types their name and PIN on the
//! cashier's terminal. The check costs one argon2 verification, taken from the same
//! bounded pool as sign-ins (a flood of guesses waits or gets 503, never a pile of
//! hashing threads), and five wrong PINs rest that PIN for 15 minutes.

use serde_json::json;

use crate::db::approvals::{self as store, Approver};
use crate::db::users::Actor;
use crate::domain::approval::{may_approve, need, Act, Need, PIN_LOCK_SECS};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::service::auth::AuthUser;
use crate::service::state::AppState;

/// The approver's name and PIN as typed at the till.
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalInput {
    /// The approving manager's or owner's username.
    #[schema(value_type = crate::api_schema::Username)]
    pub username: String,
    /// Their PIN: 4 to 8 digits.
    #[schema(value_type = crate::api_schema::Pin)]
    pub pin: String,
}

/// The actor of `act` by `user`: who did it and, when the store's rules ask for it,
/// which manager approved it (checked here). Refuses before any write.
pub async fn actor_for(
    state: &AppState,
    user: &AuthUser,
    act: Act,
    approval: Option<ApprovalInput>,
) -> AppResult<Actor> {
    let mut actor = user.actor();
    match need(user.role, act, &state.cfg.approval.rules()) {
        Need::Nothing => Ok(actor),
        Need::Refused => {
            let (message, reason) = match act {
                Act::Topup => (
                    "Cashiers do not take top-ups at this store.",
                    "cashier_topups_off",
                ),
                _ => (
                    "Cashiers do not refund at this store.",
                    "cashier_refunds_off",
                ),
            };
            Err(AppError::msg(ErrorCode::PermissionDenied, message)
                .with_details(json!({"role": user.role.as_str(), "reason": reason})))
        }
        Need::Manager => {
            let Some(approval) = approval else {
                let reason = match act {
                    Act::Refund => "cashier_refund",
                    Act::Charge { .. } => "charge_above",
                    Act::Topup => "cashier_topup",
                };
                return Err(AppError::new(ErrorCode::ApprovalRequired)
                    .with_details(json!({"reason": reason})));
            };
            actor.approved_by = Some(approve(state, &actor, approval).await?);
            Ok(actor)
        }
    }
}

/// Checks the approver's PIN; their username on success.
async fn approve(state: &AppState, actor: &Actor, input: ApprovalInput) -> AppResult<String> {
    let now = chrono::Utc::now().timestamp();
    // The person asking first: past their own budget of wrong PINs for this approver they
    // wait, and their tries stop counting against the approver, whose PIN serves every
    // till. Keyed by both, so a mistyped name does not use up the budget for the manager.
    let asker = format!(
        "{}\n{}",
        actor
            .user_id
            .as_deref()
            .or(actor.ip.as_deref())
            .unwrap_or_default(),
        input.username.to_lowercase()
    );
    if let Err(wait) = state.pin_askers.check(&asker, now) {
        return Err(AppError::msg(
            ErrorCode::TooManyRequests,
            "Too many wrong PINs typed at this till; wait a while, or ask the manager to come over.",
        )
        .with_details(json!({"retry_after_secs": wait.max(1), "reason": "pin_asker_rest"})));
    }
    // A place in the password pool before anything else: the expensive step is bounded.
    let ticket = state.passwords.try_admit()?;
    let name = input.username.clone();
    let found = state.db.read(move |c| store::approver(c, &name)).await?;
    if let Some(until) = found
        .as_ref()
        .and_then(|a| a.locked_until)
        .filter(|t| *t > now)
    {
        return Err(AppError::msg(
            ErrorCode::TooManyRequests,
            "Too many wrong PINs for this approver; it rests for a while.",
        )
        .with_details(json!({"retry_after_secs": (until - now).clamp(1, PIN_LOCK_SECS), "reason": "pin_rest"})));
    }
    let usable = |a: &Approver| !a.disabled && a.role.is_some_and(may_approve);
    // Unknown names, cashiers and accounts without a PIN cost the same check as a real
    // one (the dummy hash), so the answer does not tell which names can approve.
    let hash = found
        .as_ref()
        .filter(|a| usable(a))
        .and_then(|a| a.pin_hash.clone());
    let checked = ticket.verify(input.pin, hash.clone()).await?;
    let ok = checked.ok && hash.is_some();
    let (actor2, typed) = (actor.clone(), input.username.clone());
    let approver = found.clone();
    state
        .db
        .write(move |c| {
            if let Some(a) = &approver {
                store::record_pin(c, &a.id, ok, now)?;
            }
            if !ok {
                crate::db::users::audit(
                    c,
                    &actor2,
                    "approval.failed",
                    approver.as_ref().map(|a| ("user", a.id.as_str())),
                    json!({"approver": typed}),
                )?;
            }
            Ok(())
        })
        .await?;
    if ok {
        state.pin_askers.clear(&asker);
    } else {
        state.pin_askers.fail(asker, now);
    }
    match found {
        Some(a) if ok => Ok(a.username),
        _ => Err(AppError::new(ErrorCode::ApprovalInvalid)),
    }
}

/// A manager or owner sets their own PIN, proving who they are with their password.
pub async fn set_pin(
    state: &AppState,
    user: &AuthUser,
    password: String,
    pin: String,
) -> AppResult<()> {
    if !may_approve(user.role) {
        return Err(AppError::msg(
            ErrorCode::PermissionDenied,
            "Only a manager or the owner approves at the till.",
        )
        .with_details(json!({"role": user.role.as_str()})));
    }
    let ticket = state.passwords.try_admit()?;
    let id = user.id.clone();
    let stored = state
        .db
        .read(move |c| crate::db::users::password_hash_of(c, &id))
        .await?;
    let checked = ticket.verify(password, stored.clone()).await?;
    if !(checked.ok && stored.is_some()) {
        // 403, not 401: a typo here must not end the console session.
        return Err(
            AppError::msg(ErrorCode::PermissionDenied, "The password is wrong.")
                .with_details(json!({"field": "password", "reason": "wrong_password"})),
        );
    }
    let hash = state.passwords.hash(pin).await?;
    let (id, actor) = (user.id.clone(), user.actor());
    state
        .db
        .write(move |c| store::set_pin(c, &id, &hash, &actor))
        .await
}
