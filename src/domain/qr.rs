//! Payment QR tokens.
//!
//! Legacy (central's `rotate_card_qr`): 32 random bytes in standard base64 (44 chars),
//! stored as bcrypt cost 6 (`$2a$06$…`). Nothing in it says which card it belongs to.
//!
//! Fast (`mq1`, central's `edge_issue_qr` from sync/central.sql):
//! `mq1.<card id, 32 hex>.<32 random bytes, base64url>`. The card id locates the card
//! directly and a SHA-256 verifier checks the secret — O(1). Central still stores a
//! normal bcrypt hash of the whole token, so its own validator accepts it too.

use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

pub const LEGACY_TOKEN_LEN: usize = 44;
pub const BCRYPT_COST: u32 = 6;
/// Central's minimum TTL.
pub const MIN_TTL_SECS: i64 = 60;

pub const FAST_PREFIX: &str = "mq1.";
pub const FAST_TOKEN_LEN: usize = 4 + 32 + 1 + 43;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenShape {
    /// Central's 44-char base64 token: found by bcrypt against the live states.
    Legacy,
    /// An mq1 token for the card with this id (canonical hyphenated form).
    Fast { card_id: String },
    /// An offline payment code (mq2): a value of the card's hash chain, checked against
    /// the chain's anchor (src/domain/mq2.rs).
    Offline(super::mq2::Code),
}

/// What the scanned text proved, for the charge to re-check inside its transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presented {
    /// A legacy or mq1 token that matched the card's current QR state.
    State { token_hash: String },
    /// An offline code (mq2) that is the value of `slot` in the chain with `anchor`.
    Chain {
        chain_id: String,
        anchor: super::mq2::Value,
        slot: u32,
        value: super::mq2::Value,
    },
}

fn parse_fast(text: &str) -> Option<String> {
    if text.len() != FAST_TOKEN_LEN {
        return None;
    }
    let rest = text.strip_prefix(FAST_PREFIX)?;
    let (hex_id, secret) = rest.split_once('.')?;
    if hex_id.len() != 32
        || !hex_id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(secret)
        .ok()?;
    if bytes.len() != 32 {
        return None;
    }
    uuid::Uuid::parse_str(hex_id)
        .ok()
        .map(|u| u.hyphenated().to_string())
}

/// Classifies scanned text. Anything that cannot be a token is refused before any
/// bcrypt work, so garbage cannot burn CPU (central would scan every live token).
pub fn classify(text: &str) -> Option<TokenShape> {
    if let Some(card_id) = parse_fast(text) {
        return Some(TokenShape::Fast { card_id });
    }
    if text.starts_with(super::mq2::PREFIX) {
        return super::mq2::parse(text).map(TokenShape::Offline);
    }
    if text.len() == LEGACY_TOKEN_LEN
        && base64::engine::general_purpose::STANDARD
            .decode(text)
            .is_ok_and(|b| b.len() == 32)
    {
        return Some(TokenShape::Legacy);
    }
    None
}

/// A new token and its stored hash, exactly as central's `rotate_card_qr` makes them.
pub fn issue_legacy() -> Result<(String, String), bcrypt::BcryptError> {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let plain = base64::engine::general_purpose::STANDARD.encode(bytes);
    let hash =
        bcrypt::hash_with_result(&plain, BCRYPT_COST)?.format_for_version(bcrypt::Version::TwoA);
    Ok((plain, hash))
}

/// A new mq1 token for a card: (token, bcrypt hash for card_qr_state, SHA-256 verifier).
pub fn issue_fast(card_id: &str) -> Result<(String, String, String), bcrypt::BcryptError> {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let hex_id = card_id.replace('-', "").to_ascii_lowercase();
    let plain = format!(
        "{FAST_PREFIX}{hex_id}.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    let hash =
        bcrypt::hash_with_result(&plain, BCRYPT_COST)?.format_for_version(bcrypt::Version::TwoA);
    Ok((plain.clone(), hash, fast_verifier(&plain)))
}

/// The verifier central stores for an mq1 token: lowercase hex SHA-256 of the token text.
pub fn fast_verifier(plain: &str) -> String {
    hex::encode(Sha256::digest(plain.as_bytes()))
}

/// Constant-time check of an mq1 token against its verifier.
pub fn verify_fast(plain: &str, verifier: &str) -> bool {
    let computed = fast_verifier(plain);
    // Constant time: how long the comparison takes says nothing about the verifier.
    subtle::ConstantTimeEq::ct_eq(computed.as_bytes(), verifier.as_bytes()).into()
}

pub fn verify_legacy(plain: &str, hash: &str) -> bool {
    bcrypt::verify(plain, hash).unwrap_or(false)
}

/// Cache key for a scanned token (never store or log the token itself).
pub fn fingerprint(plain: &str) -> [u8; 32] {
    Sha256::digest(plain.as_bytes()).into()
}

/// Central's TTL rule: at least 60 s.
pub fn clamp_ttl(ttl_secs: i64) -> i64 {
    ttl_secs.max(MIN_TTL_SECS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_look_like_centrals() {
        let (plain, hash) = issue_legacy().unwrap();
        assert_eq!(plain.len(), 44);
        assert!(plain.ends_with('='));
        assert!(hash.starts_with("$2a$06$"));
        assert_eq!(hash.len(), 60);
        assert!(verify_legacy(&plain, &hash));
        assert!(!verify_legacy(
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            &hash
        ));
        assert_eq!(classify(&plain), Some(TokenShape::Legacy));
    }

    #[test]
    fn fast_tokens_locate_their_card() {
        let card = "0f8c2d4e-1a2b-4c3d-8e9f-0123456789ab";
        let (plain, hash, verifier) = issue_fast(card).unwrap();
        assert_eq!(plain.len(), FAST_TOKEN_LEN);
        assert!(plain.starts_with("mq1.0f8c2d4e1a2b4c3d8e9f0123456789ab."));
        assert_eq!(
            classify(&plain),
            Some(TokenShape::Fast {
                card_id: card.into()
            })
        );
        assert!(verify_fast(&plain, &verifier));
        assert!(
            verify_legacy(&plain, &hash),
            "central's bcrypt check accepts it too"
        );
        // Change the last character (always to a different one, so this can never pass
        // vacuously): the verifier no longer matches.
        let last = if plain.ends_with('A') { "E" } else { "A" };
        let mut tampered = plain.clone();
        tampered.replace_range(FAST_TOKEN_LEN - 1.., last);
        assert_ne!(tampered, plain);
        assert!(!verify_fast(&tampered, &verifier));
        assert!(!verify_fast(&plain, &fast_verifier(&tampered)));
        assert!(!verify_fast(&plain, &verifier[..verifier.len() - 1]));
        assert!(!verify_fast(&plain, ""));
        assert_eq!(classify("mq1.0f8c2d4e1a2b4c3d8e9f0123456789AB.xxx"), None);
        assert_eq!(classify(&plain.replace("mq1.", "mq2.")), None);
        let offline = super::super::mq2::make_code(card, &[9u8; 32], 60, 7).unwrap();
        match classify(&offline) {
            Some(TokenShape::Offline(code)) => {
                assert_eq!((code.card_id.as_str(), code.slot), (card, 7))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn garbage_is_not_a_token() {
        for t in [
            "",
            "short",
            "x".repeat(44).as_str(),
            "AAAA",
            &"A".repeat(43),
            &format!("{}!", "A".repeat(43)),
        ] {
            assert_eq!(classify(t), None, "{t}");
        }
        assert_eq!(clamp_ttl(5), 60);
        assert_eq!(clamp_ttl(900), 900);
    }
}
