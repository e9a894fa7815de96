//! Reading cards, levels and QR states from the replica.

use crate::db::CachedExt;
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::domain::balance::Pending;
use crate::domain::charge::CardState;
use crate::domain::levels::Level;
use crate::domain::CardType;
use crate::error::{AppError, AppResult};

#[derive(Debug, Clone)]
pub struct CardRow {
    pub id: String,
    pub card_no: String,
    pub card_type: CardType,
    pub name: Option<String>,
    pub level: Option<i64>,
    pub state: CardState,
    pub is_demo: bool,
}

pub const CARD_COLUMNS: &str = "id, card_no, card_type, name, status, expires_at_unix, \
    snapshot_balance_cents, pending_debit_cents, pending_credit_cents, pending_points, \
    snapshot_points, discount_milli, corporate_discount_milli, level, is_demo";

pub fn card_from_row(r: &Row<'_>) -> rusqlite::Result<CardRow> {
    let type_text: String = r.get(2)?;
    let card_type = CardType::parse(&type_text).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            2,
            rusqlite::types::Type::Text,
            "card_type".into(),
        )
    })?;
    let pending = Pending {
        debit_cents: r.get(7)?,
        credit_cents: r.get(8)?,
        points: r.get(9)?,
    };
    let snapshot_points: i64 = r.get(10)?;
    Ok(CardRow {
        id: r.get(0)?,
        card_no: r.get(1)?,
        card_type,
        name: r.get(3)?,
        level: r.get(13)?,
        is_demo: r.get::<_, i64>(14)? != 0,
        state: CardState {
            card_type,
            status: r.get(4)?,
            expires_at: r.get(5)?,
            snapshot_balance_cents: r.get(6)?,
            pending,
            points: snapshot_points + pending.points,
            level_discount: r.get(11)?,
            corporate_discount: r.get(12)?,
        },
    })
}

pub fn load_card(conn: &Connection, card_id: &str) -> AppResult<Option<CardRow>> {
    Ok(conn
        .query_row(
            &format!("SELECT {CARD_COLUMNS} FROM cards WHERE id = ?1"),
            [card_id],
            card_from_row,
        )
        .optional()?)
}

pub fn load_card_by_no(conn: &Connection, card_no: &str) -> AppResult<Option<CardRow>> {
    Ok(conn
        .query_row(
            &format!("SELECT {CARD_COLUMNS} FROM cards WHERE card_no = ?1"),
            [card_no],
            card_from_row,
        )
        .optional()?)
}

pub fn list_cards(conn: &Connection, demo_only: bool) -> AppResult<Vec<CardRow>> {
    let sql = format!(
        "SELECT {CARD_COLUMNS} FROM cards {} ORDER BY card_no",
        if demo_only { "WHERE is_demo = 1" } else { "" }
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map([], card_from_row)?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

pub fn load_levels(conn: &Connection) -> AppResult<Vec<Level>> {
    let mut stmt = conn.prepare_cached(
        "SELECT level, name, min_points, max_points, discount_milli, is_active FROM membership_levels ORDER BY level",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(Level {
            level: r.get(0)?,
            name: r.get(1)?,
            min_points: r.get(2)?,
            max_points: r.get(3)?,
            discount: r.get(4)?,
            is_active: r.get::<_, i64>(5)? != 0,
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

#[derive(Debug, Clone)]
pub struct QrState {
    pub card_id: String,
    pub token_hash: String,
    pub expires_at_unix: i64,
    pub consumed_hash: Option<String>,
    pub fast_verifier: Option<String>,
}

pub fn qr_state(conn: &Connection, card_id: &str) -> AppResult<Option<QrState>> {
    Ok(conn
        .query_row(
            "SELECT card_id, token_hash, expires_at_unix, consumed_hash, fast_verifier FROM card_qr_state WHERE card_id = ?1",
            [card_id],
            |r| {
                Ok(QrState {
                    card_id: r.get(0)?,
                    token_hash: r.get(1)?,
                    expires_at_unix: r.get(2)?,
                    consumed_hash: r.get(3)?,
                    fast_verifier: r.get(4)?,
                })
            },
        )
        .optional()?)
}

/// Which live legacy states a scan reads: those not used at this edge yet, or those used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanPass {
    Unused,
    Used,
}

/// Live legacy token states (no fast verifier: an mq1 state can never match a legacy
/// token), newest issued first, in pages (the caller stops at the first match).
pub fn live_qr_states(
    conn: &Connection,
    pass: ScanPass,
    now_unix: i64,
    before_seq: i64,
    limit: i64,
) -> AppResult<Vec<(i64, QrState)>> {
    // Walks the partial index card_qr_state_legacy backwards from before_seq.
    let sql = match pass {
        ScanPass::Unused => {
            "SELECT issued_seq, card_id, token_hash, expires_at_unix, consumed_hash FROM card_qr_state
             WHERE fast_verifier IS NULL AND issued_seq < ?2 AND expires_at_unix > ?1
               AND (consumed_hash IS NULL OR consumed_hash <> token_hash)
             ORDER BY issued_seq DESC LIMIT ?3"
        }
        ScanPass::Used => {
            "SELECT issued_seq, card_id, token_hash, expires_at_unix, consumed_hash FROM card_qr_state
             WHERE fast_verifier IS NULL AND issued_seq < ?2 AND expires_at_unix > ?1
               AND consumed_hash = token_hash
             ORDER BY issued_seq DESC LIMIT ?3"
        }
    };
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(params![now_unix, before_seq, limit], |r| {
        Ok((
            r.get(0)?,
            QrState {
                card_id: r.get(1)?,
                token_hash: r.get(2)?,
                expires_at_unix: r.get(3)?,
                consumed_hash: r.get(4)?,
                fast_verifier: None,
            },
        ))
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// The newest issue sequence: changes whenever any QR state is (re)issued, so a
/// negative lookup cached under it stays valid until then.
pub fn qr_generation(conn: &Connection) -> AppResult<i64> {
    Ok(conn.row_cached(
        "SELECT COALESCE(MAX(issued_seq), 0) FROM card_qr_state",
        [],
        |r| r.get(0),
    )?)
}

/// Upserts a card's current QR token state (a new token replaces the old one at once).
pub fn put_qr_state(
    conn: &Connection,
    card_id: &str,
    token_hash: &str,
    expires_at_unix: i64,
    updated_at: &str,
    fast_verifier: Option<&str>,
) -> AppResult<()> {
    let seq = super::meta::next(conn, super::meta::QR_ISSUE_SEQ)?;
    let n = conn.exec_cached(
        "INSERT INTO card_qr_state(card_id, token_hash, expires_at_unix, updated_at, issued_seq, fast_verifier)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT(card_id) DO UPDATE SET token_hash = excluded.token_hash,
             expires_at_unix = excluded.expires_at_unix, updated_at = excluded.updated_at,
             issued_seq = excluded.issued_seq, fast_verifier = excluded.fast_verifier",
        params![card_id, token_hash, expires_at_unix, updated_at, seq, fast_verifier],
    )?;
    if n != 1 {
        return Err(AppError::internal("QR state upsert touched no row"));
    }
    Ok(())
}
