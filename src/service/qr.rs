//! Resolving a scanned central-format token to a card.
//!
//! Central bcrypt-checks the token against every live state. The edge never does a blind
//! scan: it remembers tokens it has matched (positive cache), remembers tokens that
//! matched nothing until a new QR state arrives (negative cache), and otherwise checks
//! live states newest-issued first — a member shows the code they just generated.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::db::cards::{live_qr_states, qr_generation, qr_state};
use crate::db::Db;
use crate::domain::qr::{classify, fingerprint, verify_fast, verify_legacy, TokenShape};
use crate::error::{AppError, AppResult, ErrorCode};

const CACHE_CAP: usize = 50_000;
const PAGE: i64 = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub card_id: String,
    pub token_hash: String,
}

#[derive(Default)]
pub struct QrResolver {
    positive: Mutex<HashMap<[u8; 32], Resolved>>,
    /// fingerprint → QR generation at the time nothing matched.
    negative: Mutex<HashMap<[u8; 32], i64>>,
}

fn bounded_insert<V>(map: &Mutex<HashMap<[u8; 32], V>>, k: [u8; 32], v: V) {
    if let Ok(mut m) = map.lock() {
        if m.len() >= CACHE_CAP {
            m.clear();
        }
        m.insert(k, v);
    }
}

impl QrResolver {
    pub fn new() -> Self {
        Self::default()
    }

    /// Finds the card whose live token this is, or `QR_EXPIRED_OR_INVALID`.
    /// Does not consume the token and does not check the card's status.
    pub async fn resolve(&self, db: &Db, plain: &str) -> AppResult<Resolved> {
        if plain.len() < 16 || classify(plain).is_none() {
            return Err(ErrorCode::InvalidQr.into());
        }
        let fp = fingerprint(plain);
        let cached = self.positive.lock().ok().and_then(|m| m.get(&fp).cloned());
        let plain = plain.to_string();
        let negative_gen = self.negative.lock().ok().and_then(|m| m.get(&fp).copied());
        let outcome = db
            .read(move |conn| {
                let now = chrono::Utc::now().timestamp();
                if let Some(TokenShape::Fast { card_id }) = classify(&plain) {
                    // O(1): the token names its card; check the secret against the verifier
                    // that belongs to the card's current token.
                    return Ok(match qr_state(conn, &card_id)? {
                        Some(s)
                            if s.expires_at_unix > now
                                && s.fast_verifier
                                    .as_deref()
                                    .is_some_and(|v| verify_fast(&plain, v)) =>
                        {
                            Lookup::Found(
                                Resolved {
                                    card_id: s.card_id,
                                    token_hash: s.token_hash,
                                },
                                false,
                            )
                        }
                        Some(s)
                            if s.fast_verifier.is_none()
                                && s.expires_at_unix > now
                                && verify_legacy(&plain, &s.token_hash) =>
                        {
                            // The verifier has not arrived yet, but the bcrypt hash is there.
                            Lookup::Found(
                                Resolved {
                                    card_id: s.card_id,
                                    token_hash: s.token_hash,
                                },
                                false,
                            )
                        }
                        _ => Lookup::Miss(-1),
                    });
                }
                if let Some(hit) = cached {
                    // Still the card's current, live token?
                    if let Some(s) = qr_state(conn, &hit.card_id)? {
                        if s.token_hash == hit.token_hash && s.expires_at_unix > now {
                            return Ok(Lookup::Found(hit, false));
                        }
                    }
                    return Ok(Lookup::Gone);
                }
                let generation = qr_generation(conn)?;
                if negative_gen == Some(generation) {
                    return Ok(Lookup::Miss(generation));
                }
                if classify(&plain).is_none() {
                    return Err(AppError::new(ErrorCode::InvalidQr));
                }
                let mut before = i64::MAX;
                loop {
                    let page = live_qr_states(conn, now, before, PAGE)?;
                    if page.is_empty() {
                        return Ok(Lookup::Miss(generation));
                    }
                    for (seq, state) in &page {
                        if verify_legacy(&plain, &state.token_hash) {
                            return Ok(Lookup::Found(
                                Resolved {
                                    card_id: state.card_id.clone(),
                                    token_hash: state.token_hash.clone(),
                                },
                                true,
                            ));
                        }
                        before = *seq;
                    }
                }
            })
            .await?;
        match outcome {
            Lookup::Found(r, learned) => {
                if learned {
                    bounded_insert(&self.positive, fp, r.clone());
                }
                Ok(r)
            }
            Lookup::Gone => {
                if let Ok(mut m) = self.positive.lock() {
                    m.remove(&fp);
                }
                Err(ErrorCode::QrExpiredOrInvalid.into())
            }
            Lookup::Miss(generation) => {
                if generation >= 0 {
                    bounded_insert(&self.negative, fp, generation);
                }
                Err(ErrorCode::QrExpiredOrInvalid.into())
            }
        }
    }
}

enum Lookup {
    Found(Resolved, bool),
    Gone,
    Miss(i64),
}
