//! Cards at the counter: look one up by its number, freeze a lost one, lift that freeze.

use crate::db::freezes::{self as store, FreezeCmd};
use crate::domain::perm;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::model::CardView;
use crate::service::auth::AuthUser;
use crate::service::state::AppState;

pub async fn card(state: &AppState, user: &AuthUser, card_no: String) -> AppResult<CardView> {
    user.require(perm::FREEZE_CARD)?;
    state
        .db
        .read(move |c| store::card_view(c, &card_no))
        .await?
        .ok_or_else(|| AppError::new(ErrorCode::CardNotFound))
}

/// Freezes (`freeze`) or unfreezes the card at once, queues the change for central and
/// wakes the sync loop so it leaves promptly.
pub async fn set_frozen(
    state: &AppState,
    user: &AuthUser,
    card_no: String,
    freeze: bool,
    reason: String,
) -> AppResult<CardView> {
    user.require(perm::FREEZE_CARD)?;
    let cmd = FreezeCmd {
        card_no,
        freeze,
        reason,
        actor: user.actor(),
    };
    let view = state.db.write(move |c| store::set_frozen(c, &cmd)).await?;
    if let Some(sync) = &state.sync {
        sync.notify();
    }
    Ok(view)
}
