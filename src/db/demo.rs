//! The standalone demo dataset: one merchant, central's four levels, twenty standard
//! cards, a corporate-discounted card, a corporate card, a voucher and a frozen card.
//! Loaded only when no central is configured, and marked as demo data everywhere.

use crate::db::CachedExt;
use rusqlite::{params, Connection};

use super::cards::{list_cards, load_card_by_no, put_qr_state};
use super::Db;
use crate::domain::qr::{clamp_ttl, issue_fast, issue_legacy};
use crate::domain::CardType;

use super::meta;
use crate::domain::levels::{central_seed_levels, level_for_points};
use crate::error::AppResult;

pub const DEMO_MERCHANT_CODE: &str = "DEMO";

pub fn is_loaded(conn: &Connection) -> AppResult<bool> {
    Ok(meta::get(conn, meta::DEMO_LOADED)?.is_some())
}

struct DemoCard {
    card_type: &'static str,
    balance_cents: i64,
    points: i64,
    status: &'static str,
    corporate_discount: Option<i64>,
    fixed_discount: Option<i64>,
    owner: &'static str,
}

fn cards() -> Vec<DemoCard> {
    let names = [
        "陳小明",
        "林美玲",
        "王大同",
        "張雅婷",
        "李志豪",
        "黃淑芬",
        "吳建宏",
        "劉怡君",
        "蔡宗翰",
        "楊佩珊",
        "許家豪",
        "鄭雅文",
        "謝明哲",
        "洪瑋婷",
        "郭俊傑",
        "邱詩涵",
        "曾文彬",
        "廖欣怡",
        "賴冠宇",
        "周心怡",
    ];
    let mut out: Vec<DemoCard> = names
        .iter()
        .enumerate()
        .map(|(i, owner)| {
            let i = i as i64;
            DemoCard {
                card_type: "standard",
                balance_cents: 50_000 + i * 25_000, // 500.00 … 5,250.00
                // Spread over the four levels; a few just below a threshold.
                points: [
                    0, 250, 990, 1_000, 1_500, 4_950, 5_000, 7_200, 9_990, 12_000,
                ][(i % 10) as usize],
                status: "active",
                corporate_discount: None,
                fixed_discount: None,
                owner,
            }
        })
        .collect();
    out.push(DemoCard {
        card_type: "standard",
        balance_cents: 300_000,
        points: 100,
        status: "active",
        corporate_discount: Some(800),
        fixed_discount: None,
        owner: "企業員工 Corporate Staff",
    });
    out.push(DemoCard {
        card_type: "corporate",
        balance_cents: 0,
        points: 0,
        status: "active",
        corporate_discount: None,
        fixed_discount: Some(800),
        owner: "示範企業 Demo Corp",
    });
    out.push(DemoCard {
        card_type: "standard",
        balance_cents: 100_000,
        points: 0,
        status: "inactive",
        corporate_discount: None,
        fixed_discount: None,
        owner: "凍結卡 Frozen",
    });
    out.push(DemoCard {
        card_type: "voucher",
        balance_cents: 20_000,
        points: 0,
        status: "active",
        corporate_discount: None,
        fixed_discount: None,
        owner: "禮券 Voucher",
    });
    out
}

/// Loads the dataset once. Returns false when it was already there.
pub fn load(conn: &Connection) -> AppResult<bool> {
    if is_loaded(conn)? {
        return Ok(false);
    }
    let now = super::now_rfc3339();
    let merchant_id = uuid::Uuid::new_v4().to_string();
    conn.exec_cached(
        "INSERT INTO merchant(id, code, name, status, updated_at) VALUES (?1, ?2, ?3, 'active', ?4)",
        params![merchant_id, DEMO_MERCHANT_CODE, "示範商店 Demo Store (DEMO DATA)", now],
    )?;
    let levels = central_seed_levels();
    for l in &levels {
        conn.exec_cached(
            "INSERT INTO membership_levels(id, level, name, min_points, max_points, discount_milli, is_active, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, ?7)",
            params![uuid::Uuid::new_v4().to_string(), l.level, l.name, l.min_points, l.max_points, l.discount, now],
        )?;
    }
    let prefix = |t: &str| match t {
        "standard" => "STD",
        "voucher" => "VCH",
        _ => "COR",
    };
    for (i, c) in cards().iter().enumerate() {
        let n = i + 1;
        let member_id = uuid::Uuid::new_v4().to_string();
        conn.exec_cached(
            "INSERT INTO members(id, member_no, name, status, updated_at) VALUES (?1, ?2, ?3, 'active', ?4)",
            params![member_id, format!("M{n:08}"), c.owner, now],
        )?;
        let (level, discount) = if c.card_type == "standard" {
            level_for_points(&levels, c.points)
        } else {
            (0, 1000)
        };
        conn.exec_cached(
            "INSERT INTO cards(id, card_no, card_type, owner_member_id, name, status, corporate_discount_milli,
                 fixed_discount_milli, snapshot_balance_cents, snapshot_points, snapshot_level,
                 snapshot_discount_milli, snapshot_updated_at, level, discount_milli, is_demo)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?11, ?12, 1)",
            params![
                uuid::Uuid::new_v4().to_string(),
                format!("{}{n:08}", prefix(c.card_type)),
                c.card_type,
                member_id,
                format!("{} (DEMO)", c.owner),
                c.status,
                c.corporate_discount,
                c.fixed_discount,
                c.balance_cents,
                c.points,
                level,
                discount,
                now
            ],
        )?;
    }
    meta::set(conn, meta::MERCHANT_ID, &merchant_id)?;
    meta::set(conn, meta::DEMO_LOADED, &now)?;
    meta::set(conn, meta::MODE, "standalone-demo")?;
    Ok(true)
}

/// A QR token issued for a demo card.
#[derive(Debug, Clone)]
pub struct IssuedQr {
    pub card_no: String,
    pub card_id: String,
    pub qr_plain: String,
    pub expires_at: String,
}

/// Issues a live token for a demo card exactly as central's `rotate_card_qr` would
/// (replacing the card's previous token). `card_no` defaults to the first active
/// standard demo card.
pub fn issue_qr(db: &Db, card_no: Option<&str>, ttl_secs: i64) -> anyhow::Result<IssuedQr> {
    issue_qr_kind(db, card_no, ttl_secs, false)
}

/// A demo card by number, else the first active standard demo card.
fn demo_card(db: &Db, card_no: Option<&str>) -> anyhow::Result<super::cards::CardRow> {
    let app = |e: crate::error::AppError| anyhow::anyhow!("{e}");
    Ok(match card_no {
        Some(no) => db
            .read_blocking(|c| load_card_by_no(c, no))
            .map_err(app)?
            .ok_or_else(|| anyhow::anyhow!("no card {no}; see `mps-edge demo cards`"))?,
        None => db
            .read_blocking(|c| list_cards(c, true))
            .map_err(app)?
            .into_iter()
            .find(|c| c.card_type == CardType::Standard && c.state.status == "active")
            .ok_or_else(|| anyhow::anyhow!("no active standard demo card"))?,
    })
}

/// Slots of a demo chain: 7 days of one-minute codes, as the reference app enrols.
const DEMO_SLOT_SECS: u32 = 60;
const DEMO_SLOTS: u32 = 7 * 24 * 60;

/// An offline payment code (mq2) for a demo card, made as the member's app would make
/// it with no network. The demo plays the phone: the first call enrols a chain for the
/// card (as central's `edge_enroll_offline_qr` would) and keeps its seed. Each call
/// gives the code of the current slot, or of the next unused one when the current slot
/// already paid (a member paying twice in a minute), within the store's clock window.
pub fn issue_offline(db: &Db, card_no: Option<&str>, skew_slots: u32) -> anyhow::Result<IssuedQr> {
    use crate::domain::mq2;
    let app = |e: crate::error::AppError| anyhow::anyhow!("{e}");
    let card = demo_card(db, card_no)?;
    let now = chrono::Utc::now().timestamp();
    let id = card.id.clone();
    let (chain, seed) = db
        .write_blocking(move |c| {
            if let Some(live) = super::chains::demo_chain(c, &id, now)? {
                return Ok(live);
            }
            let mut seed = [0u8; 32];
            rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut seed);
            // The epoch on a whole minute, as the reference app does.
            let epoch = now - now.rem_euclid(60);
            super::chains::enrol_demo(c, &id, &seed, epoch, DEMO_SLOT_SECS, DEMO_SLOTS, now)?;
            super::chains::demo_chain(c, &id, now)?
                .ok_or_else(|| crate::error::AppError::internal("demo chain vanished"))
        })
        .map_err(app)?;
    let current = mq2::slot_at(chain.epoch_unix, chain.slot_secs, now);
    let slot = current.max(i64::from(chain.used_through) + 1);
    if slot > current + i64::from(skew_slots) {
        anyhow::bail!(
            "card {} already paid with every code this store accepts right now; try again in a minute",
            card.card_no
        );
    }
    let slot = u32::try_from(slot).map_err(|_| anyhow::anyhow!("slot out of range"))?;
    let qr_plain = mq2::make_code(&card.id, &seed, chain.slots, slot)
        .ok_or_else(|| anyhow::anyhow!("the demo chain has ended; run again to enrol a new one"))?;
    let ends = chain.epoch_unix + i64::from(slot) * i64::from(chain.slot_secs);
    Ok(IssuedQr {
        card_no: card.card_no,
        card_id: card.id,
        qr_plain,
        expires_at: super::unix_to_rfc3339(ends).unwrap_or_default(),
    })
}

/// As `issue_qr`; `fast` issues an mq1 token (as central's `edge_issue_qr` would).
pub fn issue_qr_kind(
    db: &Db,
    card_no: Option<&str>,
    ttl_secs: i64,
    fast: bool,
) -> anyhow::Result<IssuedQr> {
    let app = |e: crate::error::AppError| anyhow::anyhow!("{e}");
    let card = demo_card(db, card_no)?;
    let (plain, hash, verifier) = if fast {
        let (p, h, v) = issue_fast(&card.id)?;
        (p, h, Some(v))
    } else {
        let (p, h) = issue_legacy()?;
        (p, h, None)
    };
    let now = chrono::Utc::now();
    let expires = now + chrono::Duration::seconds(clamp_ttl(ttl_secs));
    let card_id = card.id.clone();
    let updated = now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    db.write_blocking(move |c| {
        put_qr_state(
            c,
            &card_id,
            &hash,
            expires.timestamp(),
            &updated,
            verifier.as_deref(),
        )
    })
    .map_err(app)?;
    Ok(IssuedQr {
        card_no: card.card_no,
        card_id: card.id,
        qr_plain: plain,
        expires_at: expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    })
}
