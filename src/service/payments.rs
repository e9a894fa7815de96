//! Charge, refund and QR validation.

use serde_json::Value;

use crate::db::cards::{load_card, load_levels};
use crate::db::ledger::{commit_charge, commit_refund, idem_lookup, ChargeCmd, Idem, RefundCmd};
use crate::db::users::Actor;
use crate::domain::levels::standing;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::model::{CardInfo, LevelList, LevelView, QrValidateResponse};
use crate::service::state::AppState;

pub struct ChargeInput {
    pub qr_plain: String,
    pub raw_cents: i64,
    pub idem: Option<Idem>,
    pub external_order_id: Option<String>,
    pub tag: Value,
}

/// Returns the response body and whether it replays an earlier identical request
/// (a concurrent twin that the writer found stored).
pub async fn charge(
    state: &AppState,
    actor: Actor,
    input: ChargeInput,
) -> AppResult<(String, bool)> {
    // The caller has already looked the idempotency key up (`replayed`), before the
    // approval and before touching the QR: a retry gets its original answer even after
    // the token was consumed or expired. The writer checks the key again atomically.
    let resolved = resolve_with_refresh(state, &input.qr_plain).await?;
    let cmd = ChargeCmd {
        card_id: resolved.card_id,
        presented: resolved.presented,
        qr_plain: input.qr_plain,
        raw_cents: input.raw_cents,
        idem: input.idem,
        external_order_id: input.external_order_id,
        tag: input.tag,
        actor,
        site_code: state.cfg.site.code.clone(),
        limits: crate::service::settings::current_limits(state),
        single_use: crate::service::settings::qr_single_use(state),
        now: chrono::Utc::now(),
    };
    let out = state.db.write(move |c| commit_charge(c, cmd)).await?;
    if !out.1 {
        state.events.publish_body("transaction", &out.0);
    }
    if let Some(sync) = &state.sync {
        sync.notify();
    }
    Ok(out)
}

/// The stored answer to an earlier request with the same idempotency key, if any. The
/// till's retry of an approved charge or refund carries the key but not the manager's
/// PIN again: it must get its original answer, so this runs before the approval check.
pub async fn replayed(
    state: &AppState,
    idem: &Option<Idem>,
    operation: &'static str,
) -> AppResult<Option<String>> {
    match idem.clone() {
        Some(idem) => {
            state
                .db
                .read(move |c| idem_lookup(c, &idem, operation))
                .await
        }
        None => Ok(None),
    }
}

/// Resolves a token; on a miss while a central is configured, pulls QR changes at once
/// and tries once more (a member's brand-new code, or a chain enrolled a moment ago,
/// works within one round trip).
async fn resolve_with_refresh(
    state: &AppState,
    qr_plain: &str,
) -> AppResult<crate::service::qr::Resolved> {
    match state.qr.resolve(&state.db, qr_plain).await {
        Err(e) if crate::service::qr::pull_may_help(&e) => match &state.sync {
            Some(sync) if sync.pull_qr_now().await => state.qr.resolve(&state.db, qr_plain).await,
            _ => Err(e),
        },
        other => other,
    }
}

pub struct RefundInput {
    pub original_tx_no: String,
    pub amount_cents: i64,
    pub reason: Option<String>,
    pub idem: Option<Idem>,
    pub tag: Value,
}

pub async fn refund(
    state: &AppState,
    actor: Actor,
    input: RefundInput,
) -> AppResult<(String, bool)> {
    let cmd = RefundCmd {
        original_tx_no: input.original_tx_no,
        amount_cents: input.amount_cents,
        reason: input.reason,
        idem: input.idem,
        tag: input.tag,
        actor,
        site_code: state.cfg.site.code.clone(),
        now: chrono::Utc::now(),
    };
    let out = state.db.write(move |c| commit_refund(c, cmd)).await?;
    if !out.1 {
        state.events.publish_body("refund", &out.0);
    }
    if let Some(sync) = &state.sync {
        sync.notify();
    }
    Ok(out)
}

pub async fn validate(state: &AppState, qr_plain: &str) -> AppResult<QrValidateResponse> {
    let resolved = resolve_with_refresh(state, qr_plain).await?;
    let card_id = resolved.card_id.clone();
    // An offline code's check already refused a used slot.
    if let (true, Some(hash)) = (
        crate::service::settings::qr_single_use(state),
        resolved.token_hash(),
    ) {
        let (id, hash) = (resolved.card_id.clone(), hash.to_string());
        let used = state
            .db
            .read(move |c| {
                Ok(crate::db::cards::qr_state(c, &id)?
                    .and_then(|s| s.consumed_hash)
                    .is_some_and(|h| h == hash))
            })
            .await?;
        if used {
            return Err(ErrorCode::QrAlreadyUsed.into());
        }
    }
    let (card, levels) = state
        .db
        .read(move |c| Ok((load_card(c, &card_id)?, load_levels(c)?)))
        .await?;
    let card = card.ok_or_else(|| AppError::new(ErrorCode::QrExpiredOrInvalid))?;
    let level = standing(
        &levels,
        card.level.unwrap_or(0),
        card.state.level_discount,
        card.state.points,
    )
    .into();
    Ok(QrValidateResponse {
        valid: true,
        card_id: card.id,
        card_info: CardInfo {
            card_no: card.card_no,
            card_type: card.card_type.as_str().into(),
            balance: card.state.available_cents(),
            status: card.state.status.clone(),
            member_level: card.level,
            points: card.state.points,
            level,
        },
    })
}

/// Every membership level the replica holds, in level order (`GET /levels`).
pub async fn levels(state: &AppState) -> AppResult<LevelList> {
    let levels = state.db.read(load_levels).await?;
    Ok(LevelList {
        levels: levels
            .into_iter()
            .map(|l| LevelView {
                level: l.level,
                name: l.name,
                min_points: l.min_points,
                max_points: l.max_points,
                discount: l.discount,
                is_active: l.is_active,
            })
            .collect(),
    })
}
