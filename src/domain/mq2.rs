//! Offline payment codes (`mq2`): a hash chain per card that the member's phone makes
//! codes from with no network, and that a store with no network checks without being
//! able to make one (issue 11; central's side is `sync/central.sql`,
//! `mps_edge.check_chain_proof`).
//!
//! With `H` = SHA-256 and a 32-byte seed `s` that never leaves the phone:
//! - the **anchor** `A = H^slots(s)` is all central and the edges hold;
//! - the code for **slot** `j` (1..=slots; slot `j` starts at `epoch + (j − 1) · slot_secs`)
//!   carries `v_j = H^(slots − j)(s)`, so `H^j(v_j) = A`, and for an earlier verified
//!   `v_k` (`k < j`), `H^(j − k)(v_j) = v_k`;
//! - knowing `A` and every used `v_k` gives the values of *earlier* slots only: nobody
//!   but the phone can make the code of a later slot.
//!
//! The text (ASCII, about 100 characters, fits a small QR code):
//! `mq2.<card id: 32 lowercase hex>.<chain id: the anchor's first 8 bytes in lowercase
//! hex>.<j: decimal, no leading zero>.<v_j: 32 bytes, base64url without padding>`.

use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub const PREFIX: &str = "mq2.";
/// Longest code text: 4 + 32 + 1 + 16 + 1 + 6 + 1 + 43.
pub const MAX_LEN: usize = 104;
/// Most slots a chain may have: central's bound (14 days of its shortest, 15 s, slots).
/// A pulled chain outside central's bounds is not stored.
pub const MAX_SLOTS: u32 = 14 * 86_400 / 15;
/// Central's slot lengths.
pub const SLOT_SECS: std::ops::RangeInclusive<u32> = 15..=600;
/// How far a sale's time may be from its code's slot at central
/// (`mps_edge.check_chain_proof`): the edge never accepts a code central would refuse.
pub const CENTRAL_ALLOWANCE_SECS: i64 = 15 * 60;

pub type Value = [u8; 32];

/// A parsed code. Parsing checks the shape only; `verify` decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Code {
    /// The card id, hyphenated lowercase (as the replica stores it).
    pub card_id: String,
    pub chain_id: String,
    pub slot: u32,
    pub value: Value,
}

/// What the edge knows of a card's chain: from the pull, and from the codes it accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainState {
    pub anchor: Value,
    pub epoch_unix: i64,
    pub slot_secs: u32,
    pub slots: u32,
    pub revoked: bool,
    /// The highest slot known to be used (here, or anywhere per central), 0 = none.
    pub used_through: u32,
    /// The value of the highest slot this edge verified, when it is `used_through`: the
    /// next walk starts there instead of at the anchor.
    pub last_value: Option<(u32, Value)>,
}

/// Why a code is refused, each with its error code at the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not a value of the card's chain, or past its end: `QR_EXPIRED_OR_INVALID`.
    NotInChain,
    /// The slot is not within the skew window of this store's clock: `QR_CLOCK_SKEW`.
    ClockSkew,
    /// The slot, or a later one, was already used: `QR_ALREADY_USED`.
    AlreadyUsed,
    /// The chain was revoked (a lost phone): `QR_CHAIN_REVOKED`.
    Revoked,
}

pub fn hash(v: &[u8]) -> Value {
    Sha256::digest(v).into()
}

/// `H^n(v)`.
pub fn hash_n(v: &Value, n: u32) -> Value {
    let mut x = *v;
    for _ in 0..n {
        x = hash(&x);
    }
    x
}

pub fn anchor(seed: &Value, slots: u32) -> Value {
    hash_n(seed, slots)
}

/// The chain id: the anchor's first 8 bytes, lowercase hex.
pub fn chain_id(anchor: &Value) -> String {
    hex::encode(&anchor[..8])
}

/// The slot of an instant: 1 during the first `slot_secs` from the epoch; 0 or less
/// before the epoch.
pub fn slot_at(epoch_unix: i64, slot_secs: u32, now_unix: i64) -> i64 {
    (now_unix - epoch_unix).div_euclid(i64::from(slot_secs.max(1))) + 1
}

fn b64(v: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v)
}

/// The code for slot `j` of the chain of `seed` (what the member's app shows).
/// `card_id` in any uuid spelling; `None` if it is not one or `j` is outside 1..=slots.
pub fn make_code(card_id: &str, seed: &Value, slots: u32, j: u32) -> Option<String> {
    if j == 0 || j > slots {
        return None;
    }
    let card = uuid::Uuid::parse_str(card_id).ok()?;
    let a = anchor(seed, slots);
    Some(format!(
        "{PREFIX}{}.{}.{j}.{}",
        card.simple(),
        chain_id(&a),
        b64(&hash_n(seed, slots - j))
    ))
}

/// Parses a code's shape: anything malformed is refused here, before any hashing.
pub fn parse(text: &str) -> Option<Code> {
    if text.len() > MAX_LEN {
        return None;
    }
    let rest = text.strip_prefix(PREFIX)?;
    let mut parts = rest.split('.');
    let (card, chain, slot, value) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let lower_hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    if !lower_hex(card, 32) || !lower_hex(chain, 16) {
        return None;
    }
    if slot.is_empty()
        || slot.len() > 6
        || slot.starts_with('0')
        || !slot.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let slot: u32 = slot.parse().ok()?;
    if value.len() != 43 {
        return None;
    }
    // Strict: the canonical spelling only (no trailing bits), so one code has one text.
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(value)
        .ok()?;
    let value: Value = bytes.try_into().ok()?;
    let card_id = uuid::Uuid::parse_str(card).ok()?.hyphenated().to_string();
    Some(Code {
        card_id,
        chain_id: chain.to_string(),
        slot,
        value,
    })
}

/// Whether a pulled chain is within central's bounds (anything else is not ours).
pub fn chain_in_bounds(slot_secs: u32, slots: u32) -> bool {
    SLOT_SECS.contains(&slot_secs) && (1..=MAX_SLOTS).contains(&slots)
}

/// Decides a code against what this edge knows of its chain, at `now_unix`, allowing
/// `skew_slots` slots of clock difference either way (and never more than central allows
/// between a sale and its slot). On success returns the value to remember as the chain's
/// last verified one. The walk starts at the last value this edge verified (any earlier
/// value of the chain will do, even when another store has used a later slot since), else
/// at the anchor: it costs `slot − k` hashes, never more than `slots`.
pub fn verify(
    code: &Code,
    chain: &ChainState,
    now_unix: i64,
    skew_slots: u32,
) -> Result<(u32, Value), Refusal> {
    if chain.revoked {
        return Err(Refusal::Revoked);
    }
    if chain_id(&chain.anchor) != code.chain_id || code.slot == 0 || code.slot > chain.slots {
        return Err(Refusal::NotInChain);
    }
    let current = slot_at(chain.epoch_unix, chain.slot_secs, now_unix);
    let slot_secs = i64::from(chain.slot_secs.max(1));
    let start = chain.epoch_unix + (i64::from(code.slot) - 1) * slot_secs;
    if (i64::from(code.slot) - current).abs() > i64::from(skew_slots)
        || now_unix < start - CENTRAL_ALLOWANCE_SECS
        || now_unix > start + slot_secs + CENTRAL_ALLOWANCE_SECS
    {
        return Err(Refusal::ClockSkew);
    }
    if code.slot <= chain.used_through {
        return Err(Refusal::AlreadyUsed);
    }
    let (k, known) = match chain.last_value {
        Some((k, v)) if k < code.slot => (k, v),
        _ => (0, chain.anchor),
    };
    let walked = hash_n(&code.value, code.slot - k);
    if bool::from(walked.ct_eq(&known)) {
        Ok((code.slot, code.value))
    } else {
        Err(Refusal::NotInChain)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    const CARD: &str = "0f8c2d4e-1a2b-4c3d-8e9f-0123456789ab";
    const SLOTS: u32 = 1440;
    const EPOCH: i64 = 1_800_000_000;

    fn chain(seed: &Value) -> ChainState {
        ChainState {
            anchor: anchor(seed, SLOTS),
            epoch_unix: EPOCH,
            slot_secs: 60,
            slots: SLOTS,
            revoked: false,
            used_through: 0,
            last_value: None,
        }
    }

    fn at_slot(j: u32) -> i64 {
        EPOCH + i64::from(j - 1) * 60 + 30
    }

    #[test]
    fn a_code_has_the_documented_shape() {
        let seed = [7u8; 32];
        let text = make_code(CARD, &seed, SLOTS, 181).unwrap();
        let a = anchor(&seed, SLOTS);
        assert!(text.starts_with("mq2.0f8c2d4e1a2b4c3d8e9f0123456789ab."));
        assert_eq!(text.split('.').nth(2), Some(chain_id(&a).as_str()));
        assert_eq!(text.split('.').nth(3), Some("181"));
        assert!(text.len() <= MAX_LEN, "{}", text.len());
        let code = parse(&text).unwrap();
        assert_eq!(code.card_id, CARD);
        assert_eq!(code.slot, 181);
        assert_eq!(hash_n(&code.value, 181), a, "H^j(v_j) = A");
        assert_eq!(make_code(CARD, &seed, SLOTS, 0), None);
        assert_eq!(make_code(CARD, &seed, SLOTS, SLOTS + 1), None);
        assert_eq!(make_code("not-a-card", &seed, SLOTS, 1), None);
    }

    #[test]
    fn slots_follow_the_clock() {
        assert_eq!(slot_at(EPOCH, 60, EPOCH), 1);
        assert_eq!(slot_at(EPOCH, 60, EPOCH + 59), 1);
        assert_eq!(slot_at(EPOCH, 60, EPOCH + 60), 2);
        assert_eq!(slot_at(EPOCH, 60, EPOCH - 1), 0);
        assert_eq!(slot_at(EPOCH, 60, EPOCH - 61), -1);
    }

    #[test]
    fn each_refusal_says_why() {
        let seed = [1u8; 32];
        let mut c = chain(&seed);
        let code = parse(&make_code(CARD, &seed, SLOTS, 100).unwrap()).unwrap();
        // accepted, then the same slot again is used
        let (k, v) = verify(&code, &c, at_slot(100), 2).unwrap();
        c.used_through = k;
        c.last_value = Some((k, v));
        assert_eq!(
            verify(&code, &c, at_slot(100), 2),
            Err(Refusal::AlreadyUsed)
        );
        // an earlier slot (computable from the used value) is refused as used
        let earlier = Code {
            slot: 99,
            value: hash(&code.value),
            ..code.clone()
        };
        assert_eq!(
            verify(&earlier, &c, at_slot(99), 2),
            Err(Refusal::AlreadyUsed)
        );
        // a later slot "made" from known values is not in the chain
        let forged = Code {
            slot: 101,
            value: hash(&code.value),
            ..code.clone()
        };
        assert_eq!(
            verify(&forged, &c, at_slot(101), 2),
            Err(Refusal::NotInChain)
        );
        // the genuine next one walks one hash from the last value
        let next = parse(&make_code(CARD, &seed, SLOTS, 101).unwrap()).unwrap();
        assert!(verify(&next, &c, at_slot(101), 2).is_ok());
        // clock: 3 slots away with a window of 2
        let far = parse(&make_code(CARD, &seed, SLOTS, 104).unwrap()).unwrap();
        assert_eq!(verify(&far, &c, at_slot(101), 2), Err(Refusal::ClockSkew));
        assert!(verify(&far, &c, at_slot(101), 3).is_ok());
        // another chain's code, and a revoked chain
        let other = parse(&make_code(CARD, &[2u8; 32], SLOTS, 101).unwrap()).unwrap();
        assert_eq!(
            verify(&other, &c, at_slot(101), 2),
            Err(Refusal::NotInChain)
        );
        c.revoked = true;
        assert_eq!(verify(&next, &c, at_slot(101), 2), Err(Refusal::Revoked));
    }

    #[test]
    fn the_walk_starts_at_the_last_value_seen_here_even_after_a_later_use_elsewhere() {
        let seed = [4u8; 32];
        let mut c = chain(&seed);
        let v10 = hash_n(&seed, SLOTS - 10);
        c.last_value = Some((10, v10));
        // another store used slot 20 (pulled), this edge saw slot 10
        c.used_through = 20;
        let code = parse(&make_code(CARD, &seed, SLOTS, 21).unwrap()).unwrap();
        assert!(verify(&code, &c, at_slot(21), 0).is_ok());
        // a wrong remembered value would refuse it: the walk did start there
        c.last_value = Some((10, [0u8; 32]));
        assert_eq!(verify(&code, &c, at_slot(21), 0), Err(Refusal::NotInChain));
    }

    #[test]
    fn the_window_never_exceeds_what_central_allows() {
        let seed = [6u8; 32];
        // 10-minute slots and a window of 3 slots: 30 minutes one way, but central
        // allows a sale 15 minutes around its slot
        let mut c = chain(&seed);
        c.slot_secs = 600;
        let at = |j: u32| EPOCH + i64::from(j - 1) * 600 + 30;
        let code = parse(&make_code(CARD, &seed, SLOTS, 10).unwrap()).unwrap();
        // central: from 15 min before the slot's start to 15 min after its end
        for (j, ok) in [(8, false), (9, true), (10, true), (12, true), (13, false)] {
            assert_eq!(verify(&code, &c, at(j), 3).is_ok(), ok, "now in slot {j}");
        }
        // the slot window alone would have taken slots 7..=13
        assert_eq!(verify(&code, &c, at(13), 3), Err(Refusal::ClockSkew));
        assert!(chain_in_bounds(15, MAX_SLOTS) && chain_in_bounds(600, 1));
        assert!(!chain_in_bounds(14, 10) && !chain_in_bounds(601, 10));
        assert!(!chain_in_bounds(60, 0) && !chain_in_bounds(60, MAX_SLOTS + 1));
    }

    #[test]
    fn malformed_texts_are_refused_before_hashing() {
        let good = make_code(CARD, &[3u8; 32], SLOTS, 42).unwrap();
        assert!(parse(&good).is_some());
        let parts: Vec<&str> = good.split('.').collect();
        let with = |i: usize, s: &str| {
            let mut p = parts.clone();
            p[i] = s;
            p.join(".")
        };
        let upper = parts[1].to_uppercase();
        let last = if parts[4].ends_with('A') { "B" } else { "A" };
        let noncanonical = format!(
            "{}{}",
            &parts[4][..42],
            if parts[4].ends_with('B') { "C" } else { "B" }
        );
        for bad in [
            String::new(),
            "mq2.".into(),
            good.replace("mq2.", "mq1."),
            format!("{good}.x"),
            format!("{good}A"),
            with(1, &upper),
            with(1, &parts[1][..31]),
            with(2, &parts[2][..15]),
            with(3, "0"),
            with(3, "042"),
            with(3, "1234567"),
            with(3, "-1"),
            with(3, "+1"),
            with(4, &parts[4][..42]),
            with(4, &format!("{}=", &parts[4][..42])),
            with(4, &format!("{}+", &parts[4][..42])),
            noncanonical,
        ] {
            assert_eq!(parse(&bad), None, "{bad}");
        }
        // a different last character of the value is still well formed, and not in the chain
        let tampered = with(4, &format!("{}{last}", &parts[4][..42]));
        if let Some(code) = parse(&tampered) {
            let c = chain(&[3u8; 32]);
            assert_eq!(verify(&code, &c, at_slot(42), 2), Err(Refusal::NotInChain));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Any code of any slot verifies once at its own time, and the walk from the
        /// last used slot agrees with the walk from the anchor.
        #[test]
        fn genuine_codes_verify_in_order(seed in any::<[u8; 32]>(), mut slots in proptest::collection::vec(1u32..=200, 1..6)) {
            slots.sort_unstable();
            slots.dedup();
            let mut c = ChainState { anchor: anchor(&seed, 200), slots: 200, ..chain(&seed) };
            for j in slots {
                let code = parse(&make_code(CARD, &seed, 200, j).unwrap()).unwrap();
                let (k, v) = verify(&code, &c, at_slot(j), 0).unwrap();
                prop_assert_eq!(k, j);
                prop_assert_eq!(verify(&code, &c, at_slot(j), 0), Ok((k, v)));
                c.used_through = k;
                c.last_value = Some((k, v));
                prop_assert_eq!(verify(&code, &c, at_slot(j), 0), Err(Refusal::AlreadyUsed));
            }
        }

        /// A value made from what the edge knows (the anchor, used values, anything
        /// hashed from them) never passes for a later slot.
        #[test]
        fn values_from_known_ones_are_not_later_codes(seed in any::<[u8; 32]>(), j in 1u32..150, ahead in 1u32..40, extra in 0u32..5) {
            let mut c = ChainState { anchor: anchor(&seed, 200), slots: 200, ..chain(&seed) };
            let used = parse(&make_code(CARD, &seed, 200, j).unwrap()).unwrap();
            let (k, v) = verify(&used, &c, at_slot(j), 0).unwrap();
            c.used_through = k;
            c.last_value = Some((k, v));
            let target = j + ahead;
            for base in [v, c.anchor] {
                let forged = Code { slot: target, value: hash_n(&base, extra), ..used.clone() };
                prop_assert_eq!(verify(&forged, &c, at_slot(target), 0), Err(Refusal::NotInChain));
            }
        }
    }
}
