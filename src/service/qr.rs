//! Resolving a scanned central-format token to a card.
//!
//! Central bcrypt-checks the token against every live state. The edge never does a blind
//! scan: it remembers tokens it has matched (positive cache), remembers tokens that
//! matched nothing until a new QR state arrives (negative cache), and otherwise checks
//! live states newest-issued first — a member shows the code they just generated.

use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use lru::LruCache;
use tokio::sync::Semaphore;

use crate::db::cards::{live_qr_states, qr_generation, qr_state, QrState, ScanPass};
use crate::db::Db;
use crate::domain::mq2;
pub use crate::domain::qr::Presented;
use crate::domain::qr::{classify, fingerprint, verify_fast, verify_legacy, TokenShape};
use crate::error::{AppError, AppResult, ErrorCode};

/// Entries per cache. Least recently used entries go first, so a flood of junk codes
/// cannot flush the codes members are using right now.
const CACHE_CAP: NonZeroUsize = match NonZeroUsize::new(50_000) {
    Some(n) => n,
    None => NonZeroUsize::MIN,
};

type Cache<K, V> = Mutex<LruCache<K, V>>;

fn cache<K: std::hash::Hash + Eq, V>() -> Cache<K, V> {
    Mutex::new(LruCache::new(CACHE_CAP))
}

/// bcrypt verifies this process has run for legacy tokens (also a Prometheus counter).
static BCRYPT_VERIFIES: AtomicU64 = AtomicU64::new(0);

pub fn bcrypt_verifies_total() -> u64 {
    BCRYPT_VERIFIES.load(Ordering::Relaxed)
}

/// One counted bcrypt verify.
fn verify_counted(plain: &str, hash: &str) -> bool {
    BCRYPT_VERIFIES.fetch_add(1, Ordering::Relaxed);
    crate::metrics::qr_bcrypt_verifies(1);
    verify_legacy(plain, hash)
}
const PAGE: i64 = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub card_id: String,
    pub presented: Presented,
}

impl Resolved {
    fn state(card_id: String, token_hash: String) -> Resolved {
        Resolved {
            card_id,
            presented: Presented::State { token_hash },
        }
    }

    /// The QR state hash a legacy or mq1 token matched (none for an offline code).
    pub fn token_hash(&self) -> Option<&str> {
        match &self.presented {
            Presented::State { token_hash } => Some(token_hash),
            Presented::Chain { .. } => None,
        }
    }
}

pub struct QrResolver {
    positive: Cache<[u8; 32], Resolved>,
    /// fingerprint → QR generation at the time nothing matched.
    negative: Cache<[u8; 32], i64>,
    /// token_hash → fingerprint of the token that matched it. A state matches exactly one
    /// token, so a scan for any other token skips it: concurrent scans share their finds
    /// instead of each paying bcrypt for states another scan has already matched.
    claimed: Arc<Cache<String, [u8; 32]>>,
    /// Bcrypt scans are CPU-bound: more of them than cores only slows each one down and
    /// starves fast-token charges of CPU. Scans wait here instead, holding nothing (no
    /// pooled connection is held while hashing).
    scans: Semaphore,
    /// Offline-code (mq2) chain walks are CPU-bound too (up to a few thousand SHA-256s):
    /// at most one per core, so forged codes cannot crowd out everything else.
    walks: Arc<Semaphore>,
    /// Slots an offline code may be off this store's clock (`qr.offline_skew_slots`).
    skew_slots: u32,
}

impl Default for QrResolver {
    fn default() -> Self {
        Self::new(2)
    }
}

/// Whether a pull from central could change this refusal: a miss of a legacy or mq1
/// token (a code issued a moment ago), or an offline code whose chain this store has not
/// pulled yet. A forged offline code of a known chain is not worth a pull (nor a second
/// walk).
pub fn pull_may_help(e: &AppError) -> bool {
    e.code() == ErrorCode::QrExpiredOrInvalid
        && e.details().is_none_or(|d| d["offline_chain"] == "unknown")
}

/// The API's answer to each reason an offline code is refused.
pub fn refusal_error(r: mq2::Refusal) -> ErrorCode {
    match r {
        mq2::Refusal::NotInChain => ErrorCode::QrExpiredOrInvalid,
        mq2::Refusal::ClockSkew => ErrorCode::QrClockSkew,
        mq2::Refusal::AlreadyUsed => ErrorCode::QrAlreadyUsed,
        mq2::Refusal::Revoked => ErrorCode::QrChainRevoked,
    }
}

fn bounded_insert<K: std::hash::Hash + Eq, V>(map: &Cache<K, V>, k: K, v: V) {
    if let Ok(mut m) = map.lock() {
        m.put(k, v);
    }
}

impl QrResolver {
    pub fn new(skew_slots: u32) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        QrResolver {
            positive: cache(),
            negative: cache(),
            claimed: Arc::new(cache()),
            scans: Semaphore::new(cores),
            walks: Arc::new(Semaphore::new(cores)),
            skew_slots,
        }
    }

    /// Finds the card whose live token this is, or `QR_EXPIRED_OR_INVALID`.
    /// Does not consume the token and does not check the card's status.
    pub async fn resolve(&self, db: &Db, plain: &str) -> AppResult<Resolved> {
        if plain.len() < 16 {
            return Err(ErrorCode::InvalidQr.into());
        }
        let shape = classify(plain).ok_or(ErrorCode::InvalidQr)?;
        if let TokenShape::Offline(code) = shape {
            return self.resolve_offline(db, code).await;
        }
        let fp = fingerprint(plain);
        if let TokenShape::Fast { card_id } = shape {
            let plain = plain.to_string();
            return db
                .read(move |conn| resolve_fast(conn, &plain, &card_id))
                .await?
                .ok_or_else(|| ErrorCode::QrExpiredOrInvalid.into());
        }
        if let Some(answer) = self.cached_answer(db, fp).await? {
            return answer;
        }
        // A code that matched nothing since the last new QR state is refused without
        // queueing behind running scans. A state arriving after this read only makes the
        // miss recorded below older, so the next lookup scans again.
        let generation = db.read(qr_generation).await?;
        let negative = self
            .negative
            .lock()
            .ok()
            .and_then(|mut m| m.get(&fp).copied());
        if negative == Some(generation) {
            return Err(ErrorCode::QrExpiredOrInvalid.into());
        }
        // Legacy tokens name no card: scan live states, a bounded number of scans at once.
        let _permit = self
            .scans
            .acquire()
            .await
            .map_err(|_| AppError::internal("QR scan gate closed"))?;
        // Another request with the same token may have found it while this one waited.
        if let Some(answer) = self.cached_answer(db, fp).await? {
            return answer;
        }
        let claimed = self.claimed.clone();
        let scan_db = db.clone();
        let plain = plain.to_string();
        let found =
            tokio::task::spawn_blocking(move || scan_legacy(&scan_db, &plain, fp, &claimed))
                .await
                .map_err(|e| AppError::internal(format!("QR scan task failed: {e}")))??;
        match found {
            Some(r) => {
                if let Some(hash) = r.token_hash() {
                    bounded_insert(&self.claimed, hash.to_string(), fp);
                }
                bounded_insert(&self.positive, fp, r.clone());
                Ok(r)
            }
            None => {
                bounded_insert(&self.negative, fp, generation);
                Err(ErrorCode::QrExpiredOrInvalid.into())
            }
        }
    }

    /// An offline code (mq2): checked against what this edge knows of the card's chain,
    /// at this store's clock. Does not use the slot (the charge does, in its transaction).
    async fn resolve_offline(&self, db: &Db, code: mq2::Code) -> AppResult<Resolved> {
        let (card, chain_id) = (code.card_id.clone(), code.chain_id.clone());
        let chain = db
            .read(move |conn| crate::db::chains::load(conn, &card, &chain_id))
            .await?
            .ok_or_else(|| {
                AppError::msg(
                    ErrorCode::QrExpiredOrInvalid,
                    "This store does not know the member's offline codes (enrolled after its last sync with central).",
                )
                .with_details(serde_json::json!({ "offline_chain": "unknown" }))
            })?;
        let _permit = self
            .walks
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| AppError::internal("chain walk gate closed"))?;
        let skew = self.skew_slots;
        let now = chrono::Utc::now().timestamp();
        let (anchor, card_id, chain_id) =
            (chain.anchor, code.card_id.clone(), code.chain_id.clone());
        let verdict = tokio::task::spawn_blocking(move || mq2::verify(&code, &chain, now, skew))
            .await
            .map_err(|e| AppError::internal(format!("chain walk task failed: {e}")))?;
        crate::metrics::qr_offline_check(verdict.is_ok());
        match verdict {
            Ok((slot, value)) => Ok(Resolved {
                card_id,
                presented: Presented::Chain {
                    chain_id,
                    anchor,
                    slot,
                    value,
                },
            }),
            // The chain is known here: a pull would not change the answer.
            Err(refusal) => Err(AppError::new(refusal_error(refusal))
                .with_details(serde_json::json!({ "offline_chain": "known" }))),
        }
    }

    /// A token matched before: still its card's current, live token? `None` when the
    /// token is not cached.
    async fn cached_answer(&self, db: &Db, fp: [u8; 32]) -> AppResult<Option<AppResult<Resolved>>> {
        let Some(hit) = self
            .positive
            .lock()
            .ok()
            .and_then(|mut m| m.get(&fp).cloned())
        else {
            return Ok(None);
        };
        let card_id = hit.card_id.clone();
        let state = db.read(move |conn| qr_state(conn, &card_id)).await?;
        let now = chrono::Utc::now().timestamp();
        if state.is_some_and(|s| {
            hit.token_hash() == Some(s.token_hash.as_str()) && s.expires_at_unix > now
        }) {
            return Ok(Some(Ok(hit)));
        }
        if let Ok(mut m) = self.positive.lock() {
            m.pop(&fp);
        }
        Ok(Some(Err(ErrorCode::QrExpiredOrInvalid.into())))
    }
}

/// O(1): an mq1 token names its card; its secret is checked against the verifier that
/// belongs to the card's current token (or, before the verifier has arrived, the card's
/// bcrypt hash: one verify).
fn resolve_fast(
    conn: &rusqlite::Connection,
    plain: &str,
    card_id: &str,
) -> AppResult<Option<Resolved>> {
    let now = chrono::Utc::now().timestamp();
    let Some(s) = qr_state(conn, card_id)? else {
        return Ok(None);
    };
    // An expired state is refused before any hashing (bcrypt is the expensive part).
    if s.expires_at_unix <= now {
        return Ok(None);
    }
    let matches = match s.fast_verifier.as_deref() {
        Some(v) => verify_fast(plain, v),
        None => verify_counted(plain, &s.token_hash),
    };
    Ok(matches.then_some(Resolved::state(s.card_id, s.token_hash)))
}

/// Newest-issued first: live legacy states not yet used here, then (so that a reused
/// single-use code is still recognised and refused as used) the used ones. A pooled
/// connection is held only while a page is read, never while hashing.
fn scan_legacy(
    db: &Db,
    plain: &str,
    fp: [u8; 32],
    claimed: &Cache<String, [u8; 32]>,
) -> AppResult<Option<Resolved>> {
    let now = chrono::Utc::now().timestamp();
    for pass in [ScanPass::Unused, ScanPass::Used] {
        let mut before = i64::MAX;
        loop {
            let page: Vec<(i64, QrState)> =
                db.read_blocking(|conn| live_qr_states(conn, pass, now, before, PAGE))?;
            let Some((last, _)) = page.last() else { break };
            before = *last;
            for (_, state) in page {
                let taken = claimed
                    .lock()
                    .ok()
                    .and_then(|m| m.peek(&state.token_hash).copied())
                    .is_some_and(|by| by != fp);
                if taken {
                    continue;
                }
                if verify_counted(plain, &state.token_hash) {
                    return Ok(Some(Resolved::state(state.card_id, state.token_hash)));
                }
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::cards::put_qr_state;
    use crate::domain::qr::{issue_fast, issue_legacy};

    async fn put(db: &Db, card: &str, hash: &str, verifier: Option<&str>) {
        let (card, hash, verifier) = (
            card.to_string(),
            hash.to_string(),
            verifier.map(str::to_string),
        );
        let exp = chrono::Utc::now().timestamp() + 600;
        db.write(move |c| {
            put_qr_state(
                c,
                &card,
                &hash,
                exp,
                "2026-01-01T00:00:00Z",
                verifier.as_deref(),
            )
        })
        .await
        .unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn only_misses_a_pull_can_change_are_worth_one() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::db::open(&dir.path().join("t.db")).unwrap();
        let resolver = QrResolver::default();
        let card = uuid::Uuid::new_v4().to_string();
        let seed = [8u8; 32];
        let now = chrono::Utc::now().timestamp();
        let code = |j| mq2::make_code(&card, &seed, 100, j).unwrap();
        // unknown chain: a pull may bring it
        let e = resolver.resolve(&db, &code(1)).await.unwrap_err();
        assert!(pull_may_help(&e), "{e:?}");
        let (c2, epoch) = (card.clone(), now - 60 * 10);
        db.write(move |c| {
            crate::db::chains::enrol_demo(c, &c2, &seed, epoch, 60, 100, now).map(|_| ())
        })
        .await
        .unwrap();
        // known chain, a forged value: a pull changes nothing
        let mut forged = code(11);
        forged.replace_range(forged.len() - 2.., "AA");
        let e = resolver.resolve(&db, &forged).await.unwrap_err();
        assert_eq!(e.code(), ErrorCode::QrExpiredOrInvalid);
        assert!(!pull_may_help(&e));
        // a legacy token that matches nothing: it may have been issued a moment ago
        let (plain, _) = crate::domain::qr::issue_legacy().unwrap();
        let e = resolver.resolve(&db, &plain).await.unwrap_err();
        assert!(pull_may_help(&e));
        assert!(!pull_may_help(&ErrorCode::QrAlreadyUsed.into()));
        tokio::task::spawn_blocking(move || db.shutdown())
            .await
            .unwrap();
    }

    #[test]
    fn caches_are_bounded_and_drop_the_least_recently_used() {
        let c: Cache<u32, u32> = cache();
        bounded_insert(&c, 0, 0);
        for i in 1..=CACHE_CAP.get() as u32 {
            // The code in use is looked up again and again while junk pours in.
            assert_eq!(c.lock().unwrap().get(&0), Some(&0));
            bounded_insert(&c, i, i);
        }
        let m = c.lock().unwrap();
        assert_eq!(m.len(), CACHE_CAP.get());
        assert!(m.contains(&0), "the entry in use survives");
        assert!(!m.contains(&1), "the oldest junk goes first");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_legacy_scans_each_find_their_own_card() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::db::open(&dir.path().join("t.db")).unwrap();
        let mut tokens = Vec::new();
        for i in 0..8 {
            let (plain, hash) = issue_legacy().unwrap();
            put(&db, &format!("card-{i}"), &hash, None).await;
            tokens.push((format!("card-{i}"), plain));
        }
        let resolver = Arc::new(QrResolver::default());
        // Every token twice, all at once: claims made by one scan must not hide a state
        // from a second request presenting the same token.
        let mut tasks = Vec::new();
        for (card, plain) in tokens.iter().chain(tokens.iter()) {
            let (r, db, card, plain) = (resolver.clone(), db.clone(), card.clone(), plain.clone());
            tasks.push(tokio::spawn(
                async move { (card, r.resolve(&db, &plain).await) },
            ));
        }
        for t in tasks {
            let (card, got) = t.await.unwrap();
            assert_eq!(got.unwrap().card_id, card);
        }
        // A token that was never issued misses (and is then answered from the negative cache).
        let (stranger, _) = issue_legacy().unwrap();
        for _ in 0..2 {
            let err = resolver.resolve(&db, &stranger).await.unwrap_err();
            assert_eq!(err.code(), ErrorCode::QrExpiredOrInvalid);
        }
        tokio::task::spawn_blocking(move || db.shutdown())
            .await
            .unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn scan_skips_fast_states_and_still_finds_used_codes() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::db::open(&dir.path().join("t.db")).unwrap();
        // A legacy token whose hash sits on a state that has a fast verifier is not a
        // legacy state: the scan never looks at it.
        let (legacy_plain, legacy_hash) = issue_legacy().unwrap();
        put(&db, "card-f", &legacy_hash, Some("00")).await;
        let resolver = QrResolver::default();
        let err = resolver.resolve(&db, &legacy_plain).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::QrExpiredOrInvalid);
        // The mq1 token itself resolves in O(1).
        let card_g = uuid::Uuid::new_v4().to_string();
        let (fast_plain, fast_hash, verifier) = issue_fast(&card_g).unwrap();
        put(&db, &card_g, &fast_hash, Some(&verifier)).await;
        assert_eq!(
            resolver.resolve(&db, &fast_plain).await.unwrap().card_id,
            card_g
        );
        // A used legacy code is still recognised (the charge then refuses it as used).
        let (used_plain, used_hash) = issue_legacy().unwrap();
        put(&db, "card-u", &used_hash, None).await;
        db.write(|c| {
            c.execute(
                "UPDATE card_qr_state SET consumed_hash = token_hash WHERE card_id = 'card-u'",
                [],
            )?;
            Ok(())
        })
        .await
        .unwrap();
        let fresh = QrResolver::default();
        assert_eq!(
            fresh.resolve(&db, &used_plain).await.unwrap().card_id,
            "card-u"
        );
        tokio::task::spawn_blocking(move || db.shutdown())
            .await
            .unwrap();
    }
}
