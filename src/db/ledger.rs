//! Money writes. Each function runs inside one writer job: the balance change, the
//! transaction row, the outbox entry, the idempotency record and the audit row commit
//! together or not at all.

use crate::db::CachedExt;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::json;

use super::cards::{load_card, load_levels, qr_state};
use super::chains::claim_slot;
use super::meta;
use super::users::{audit, Actor};
use crate::domain::charge::plan_charge;
use crate::domain::levels::standing;
use crate::domain::limits::{Exposure, Limits};
use crate::domain::money::{format_cents, format_milli};
use crate::domain::qr::Presented;
use crate::domain::refund::{plan_refund, OriginalPayment};
use crate::domain::txno::{format_tx_no, is_central_format, TxKind};
use crate::error::{AppError, AppResult, ErrorCode};
use crate::model::{ChargeResponse, ChargeTx, CustomerInfo, RefundResponse, RefundTx};

/// A POS retry key: scoped to the device (or the user when no device is enrolled).
#[derive(Debug, Clone)]
pub struct Idem {
    pub scope: String,
    pub key: String,
    pub request_hash: String,
}

/// The stored answer to an earlier request with the same key, if any. The same key with
/// a different request is a conflict.
pub fn idem_lookup(conn: &Connection, idem: &Idem, operation: &str) -> AppResult<Option<String>> {
    let row: Option<(String, String, String)> = conn
        .query_row(
            "SELECT operation, request_hash, response FROM idempotency_keys WHERE scope = ?1 AND key = ?2",
            params![idem.scope, idem.key],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    match row {
        None => Ok(None),
        Some((op, hash, response)) if op == operation && hash == idem.request_hash => {
            Ok(Some(response))
        }
        Some(_) => Err(ErrorCode::IdempotencyKeyReused.into()),
    }
}

pub(super) fn idem_store(
    conn: &Connection,
    idem: &Idem,
    operation: &str,
    tx_id: &str,
    response: &str,
    now: &str,
) -> AppResult<()> {
    conn.exec_cached(
        "INSERT INTO idempotency_keys(scope, key, operation, request_hash, tx_id, response, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![idem.scope, idem.key, operation, idem.request_hash, tx_id, response, now],
    )?;
    Ok(())
}

pub(super) fn merchant_id(conn: &Connection) -> AppResult<String> {
    let id = meta::get(conn, meta::MERCHANT_ID)?.ok_or_else(|| {
        AppError::msg(
            ErrorCode::MerchantNotFoundOrInactive,
            "This edge has no merchant yet; it has not been bootstrapped from central.",
        )
    })?;
    let status: Option<String> = conn
        .query_row("SELECT status FROM merchant WHERE id = ?1", [&id], |r| {
            r.get(0)
        })
        .optional()?;
    match status.as_deref() {
        Some("active") => Ok(id),
        _ => Err(ErrorCode::MerchantNotFoundOrInactive.into()),
    }
}

pub struct ChargeCmd {
    pub card_id: String,
    /// What the scanned text proved: the QR state hash a token matched (it must still be
    /// the card's current one), or the chain slot an offline code is (it must still be
    /// unused and the chain not revoked).
    pub presented: Presented,
    /// The token text the till read: pushed as the charge's proof of presence, which
    /// central checks against what it issued for the card (sync/README.md, "proofs").
    pub qr_plain: String,
    pub raw_cents: i64,
    pub idem: Option<Idem>,
    pub external_order_id: Option<String>,
    pub tag: serde_json::Value,
    pub actor: Actor,
    pub site_code: String,
    pub limits: Limits,
    pub single_use: bool,
    pub now: DateTime<Utc>,
}

/// Returns the response JSON and whether it is a replay of an earlier request.
pub fn commit_charge(conn: &Connection, cmd: ChargeCmd) -> AppResult<(String, bool)> {
    if let Some(idem) = &cmd.idem {
        if let Some(stored) = idem_lookup(conn, idem, "charge")? {
            return Ok((stored, true));
        }
    }
    let merchant_id = merchant_id(conn)?;
    if let Some(order) = &cmd.external_order_id {
        let existing: Option<String> = conn
            .query_row(
                "SELECT tx_no FROM transactions WHERE external_order_id = ?1",
                [order],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(tx_no) = existing {
            return Err(AppError::msg(
                ErrorCode::Conflict,
                "This external order was already charged.",
            )
            .with_details(json!({ "external_order_id": order, "tx_no": tx_no })));
        }
    }
    let now_unix = cmd.now.timestamp();
    // The code was checked outside the writer; what it proved must still hold.
    match &cmd.presented {
        Presented::State { token_hash } => {
            let state = qr_state(conn, &cmd.card_id)?.ok_or(ErrorCode::QrExpiredOrInvalid)?;
            if state.token_hash != *token_hash || state.expires_at_unix <= now_unix {
                return Err(ErrorCode::QrExpiredOrInvalid.into());
            }
            if cmd.single_use && state.consumed_hash.as_deref() == Some(state.token_hash.as_str()) {
                return Err(ErrorCode::QrAlreadyUsed.into());
            }
        }
        // Rolled back with everything else if the charge is refused below.
        Presented::Chain {
            chain_id,
            anchor,
            slot,
            value,
        } => claim_slot(conn, &cmd.card_id, chain_id, anchor, *slot, value)?,
    }
    let card = load_card(conn, &cmd.card_id)?.ok_or(ErrorCode::QrExpiredOrInvalid)?;
    let levels = load_levels(conn)?;
    let refreshed: Option<i64> =
        meta::get(conn, meta::REPLICA_REFRESHED_UNIX)?.and_then(|v| v.parse().ok());
    let exposure = Exposure {
        card_unsynced_debit_cents: card.state.pending.debit_cents,
        site_unsynced_debit_cents: meta::counter(conn, meta::SITE_UNSYNCED_DEBIT)?,
        replica_age_secs: refreshed.map(|t| (now_unix - t).max(0)),
    };
    let plan = plan_charge(
        &card.state,
        cmd.raw_cents,
        &levels,
        &cmd.limits,
        exposure,
        now_unix,
    )?;

    let tx_id = super::new_id();
    let tx_no = format_tx_no(
        TxKind::Payment,
        &cmd.site_code,
        meta::next(conn, meta::TX_SEQ)?,
    );
    let created_at = cmd.now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let tag_text = cmd.tag.to_string();
    conn.exec_cached(
        "INSERT INTO transactions(id, tx_no, tx_type, card_id, merchant_id, raw_amount_cents, discount_milli,
            final_amount_cents, points_earned, status, external_order_id, tag, operator_user_id,
            operator_username, device_id, created_at, created_unix, balance_after_cents, points_after)
         VALUES (?1, ?2, 'payment', ?3, ?4, ?5, ?6, ?7, ?8, 'completed', ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
        params![
            tx_id, tx_no, cmd.card_id, merchant_id, plan.raw_cents, plan.discount, plan.final_cents,
            plan.points_earned, cmd.external_order_id, tag_text, cmd.actor.user_id, cmd.actor.username,
            cmd.actor.device_id, created_at, now_unix, plan.available_after_cents, plan.points_after
        ],
    )?;
    conn.exec_cached(
        "UPDATE cards SET pending_debit_cents = pending_debit_cents + ?2, pending_points = pending_points + ?3,
             level = ?4, discount_milli = ?5 WHERE id = ?1",
        params![cmd.card_id, plan.final_cents, plan.points_earned, plan.level_after, plan.level_discount_after],
    )?;
    if let Presented::State { .. } = cmd.presented {
        conn.exec_cached(
            "UPDATE card_qr_state SET consumed_hash = token_hash, consumed_at = ?2 WHERE card_id = ?1",
            params![cmd.card_id, created_at],
        )?;
    }
    // The proof of presence central checks (sync/README.md, "proofs"): the token, and for
    // a legacy token the hash it matched (central finds it in the card's QR history).
    let qr_proof = match &cmd.presented {
        Presented::State { token_hash } => json!({"token": cmd.qr_plain, "token_hash": token_hash}),
        Presented::Chain { .. } => json!({"token": cmd.qr_plain}),
    };
    let op_id = super::new_id();
    let payload = json!({
        "op_id": op_id,
        "op_type": "charge",
        "tx_id": tx_id,
        "tx_no": tx_no,
        "card_id": cmd.card_id,
        "raw_amount": format_cents(plan.raw_cents),
        "discount": format_milli(plan.discount),
        "final_amount": format_cents(plan.final_cents),
        "points_earned": plan.points_earned,
        "created_at": created_at,
        "terminal": cmd.actor.device_id,
        "operator": cmd.actor.username,
        "external_order_id": cmd.external_order_id,
        "tag": cmd.tag,
        "qr_proof": qr_proof,
    });
    conn.exec_cached(
        "INSERT INTO outbox(op_id, op_type, tx_id, card_id, delta_cents, points, payload, created_at, created_unix)
         VALUES (?1, 'charge', ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![op_id, tx_id, cmd.card_id, -plan.final_cents, plan.points_earned, payload.to_string(), created_at, now_unix],
    )?;
    meta::add(conn, meta::SITE_UNSYNCED_DEBIT, plan.final_cents)?;
    audit(
        conn,
        &cmd.actor,
        "charge",
        Some(("transaction", &tx_no)),
        json!({"final_amount": format_cents(plan.final_cents), "card_no": card.card_no}),
    )?;

    let response = ChargeResponse {
        transaction: ChargeTx {
            tx_id: tx_id.clone(),
            receipt_url: crate::model::receipt_url(&tx_no),
            tx_no,
            card_id: cmd.card_id.clone(),
            raw_amount: plan.raw_cents,
            final_amount: plan.final_cents,
            discount: plan.discount,
            points_earned: plan.points_earned,
            status: "completed".into(),
            created_at: created_at.clone(),
            sync_state: "pending".into(),
        },
        customer_info: CustomerInfo {
            card_no: card.card_no,
            card_type: card.card_type.as_str().into(),
            member_level: Some(plan.level_after),
            balance_after: plan.available_after_cents,
            points_after: plan.points_after,
            level: standing(
                &levels,
                plan.level_after,
                plan.level_discount_after,
                plan.points_after,
            )
            .into(),
        },
    };
    let body = serde_json::to_string(&response).map_err(|e| AppError::internal(e.to_string()))?;
    if let Some(idem) = &cmd.idem {
        idem_store(conn, idem, "charge", &tx_id, &body, &created_at)?;
    }
    Ok((body, false))
}

pub struct RefundCmd {
    pub original_tx_no: String,
    pub amount_cents: i64,
    pub reason: Option<String>,
    pub idem: Option<Idem>,
    pub tag: serde_json::Value,
    pub actor: Actor,
    pub site_code: String,
    pub now: DateTime<Utc>,
}

pub fn commit_refund(conn: &Connection, cmd: RefundCmd) -> AppResult<(String, bool)> {
    if let Some(idem) = &cmd.idem {
        if let Some(stored) = idem_lookup(conn, idem, "refund")? {
            return Ok((stored, true));
        }
    }
    let merchant_id = merchant_id(conn)?;
    let original: Option<(String, String, String, String, i64, i64)> = conn
        .query_row(
            "SELECT id, card_id, tx_type, status, final_amount_cents, refunded_cents FROM transactions
             WHERE tx_no = ?1 AND merchant_id = ?2 AND tx_type <> 'recharge'",
            params![cmd.original_tx_no, merchant_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
        )
        .optional()?;
    let Some((orig_id, card_id, tx_type, status, final_cents, refunded_cents)) = original else {
        let mut err = AppError::new(ErrorCode::OriginalTxNotFound);
        // Central has no merchant on a recharge, so it finds no original either.
        if cmd.original_tx_no.starts_with("RCG") {
            err = AppError::msg(
                ErrorCode::OriginalTxNotFound,
                "A top-up cannot be refunded: it is not a payment.",
            );
        } else if is_central_format(&cmd.original_tx_no) {
            err = AppError::msg(
                ErrorCode::OriginalTxNotFound,
                "Only payments made at this store can be refunded here; refund central payments at central.",
            );
        }
        return Err(err);
    };
    let plan = plan_refund(
        &OriginalPayment {
            tx_type,
            status,
            final_cents,
            refunded_cents,
        },
        cmd.amount_cents,
    )?;
    let now_unix = cmd.now.timestamp();
    let tx_id = super::new_id();
    let tx_no = format_tx_no(
        TxKind::Refund,
        &cmd.site_code,
        meta::next(conn, meta::TX_SEQ)?,
    );
    let created_at = cmd.now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    conn.exec_cached(
        "INSERT INTO transactions(id, tx_no, tx_type, card_id, merchant_id, raw_amount_cents, discount_milli,
            final_amount_cents, points_earned, status, original_tx_id, original_tx_no, reason, tag,
            operator_user_id, operator_username, device_id, created_at, created_unix)
         VALUES (?1, ?2, 'refund', ?3, ?4, ?5, 1000, ?5, 0, 'completed', ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        params![
            tx_id, tx_no, card_id, merchant_id, plan.amount_cents, orig_id, cmd.original_tx_no, cmd.reason,
            cmd.tag.to_string(), cmd.actor.user_id, cmd.actor.username, cmd.actor.device_id, created_at, now_unix
        ],
    )?;
    conn.exec_cached(
        "UPDATE transactions SET refunded_cents = refunded_cents + ?2,
             status = CASE WHEN ?3 THEN 'refunded' ELSE status END WHERE id = ?1",
        params![orig_id, plan.amount_cents, plan.fully_refunded],
    )?;
    conn.exec_cached(
        "UPDATE cards SET pending_credit_cents = pending_credit_cents + ?2 WHERE id = ?1",
        params![card_id, plan.amount_cents],
    )?;
    // The card as the refund leaves it, for the receipt.
    conn.exec_cached(
        "UPDATE transactions SET
             balance_after_cents = (SELECT snapshot_balance_cents - pending_debit_cents + pending_credit_cents
                                      FROM cards WHERE id = ?2),
             points_after = (SELECT snapshot_points + pending_points FROM cards WHERE id = ?2)
         WHERE id = ?1",
        params![tx_id, card_id],
    )?;
    let op_id = super::new_id();
    let payload = json!({
        "op_id": op_id,
        "op_type": "refund",
        "tx_id": tx_id,
        "tx_no": tx_no,
        "card_id": card_id,
        "raw_amount": format_cents(plan.amount_cents),
        "discount": "1.000",
        "final_amount": format_cents(plan.amount_cents),
        "points_earned": 0,
        "created_at": created_at,
        "terminal": cmd.actor.device_id,
        "operator": cmd.actor.username,
        "external_order_id": null,
        "tag": cmd.tag,
        "original_tx_no": cmd.original_tx_no,
        "original_tx_id": orig_id,
        "reason": cmd.reason,
    });
    conn.exec_cached(
        "INSERT INTO outbox(op_id, op_type, tx_id, card_id, delta_cents, points, payload, created_at, created_unix)
         VALUES (?1, 'refund', ?2, ?3, ?4, 0, ?5, ?6, ?7)",
        params![op_id, tx_id, card_id, plan.amount_cents, payload.to_string(), created_at, now_unix],
    )?;
    audit(
        conn,
        &cmd.actor,
        "refund",
        Some(("transaction", &tx_no)),
        json!({"original_tx_no": cmd.original_tx_no, "amount": format_cents(plan.amount_cents), "reason": cmd.reason}),
    )?;
    let response = RefundResponse {
        refund: RefundTx {
            refund_tx_id: tx_id.clone(),
            receipt_url: crate::model::receipt_url(&tx_no),
            refund_tx_no: tx_no,
            refunded_amount: plan.amount_cents,
            original_tx_no: cmd.original_tx_no.clone(),
            status: "completed".into(),
            created_at: created_at.clone(),
        },
        remaining_refundable: plan.remaining_after_cents,
    };
    let body = serde_json::to_string(&response).map_err(|e| AppError::internal(e.to_string()))?;
    if let Some(idem) = &cmd.idem {
        idem_store(conn, idem, "refund", &tx_id, &body, &created_at)?;
    }
    Ok((body, false))
}
