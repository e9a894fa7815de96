//! Payment QR tokens in central's format: 32 random bytes in standard base64 (44 chars),
//! stored as bcrypt cost 6 (`$2a$06$…`, pgcrypto's `crypt(…, gen_salt('bf'))`).

use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

pub const LEGACY_TOKEN_LEN: usize = 44;
pub const BCRYPT_COST: u32 = 6;
/// Central's minimum TTL.
pub const MIN_TTL_SECS: i64 = 60;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenShape {
    /// Central's 44-char base64 token: found by bcrypt against the live states.
    Legacy,
}

/// Classifies scanned text. Anything that cannot be a token is refused before any
/// bcrypt work, so garbage cannot burn CPU (central would scan every live token).
pub fn classify(text: &str) -> Option<TokenShape> {
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
