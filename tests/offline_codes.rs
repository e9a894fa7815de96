//! Offline payment codes (mq2) at the till, on a standalone edge: single use per slot,
//! the clock window, forgeries, revocation, and a refused charge that leaves the slot
//! unused. The same codes against central: tests/sync_e2e.rs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use mps_edge::domain::mq2;
use serde_json::Value;
use support::binary::{demo_json, EdgeProcess, Install};
use support::server::{amt, TestServer};

const CARD_NO: &str = "STD00000011";
const SEED: [u8; 32] = [0x5a; 32];
const SLOTS: u32 = 2 * 1440;

/// Enrols a chain of one-minute slots for `card_no` whose epoch was a day ago (the first
/// code walks ~1,440 hashes, as after a day without paying here). Returns the card id.
async fn enrol(srv: &TestServer, card_no: &str, seed: [u8; 32]) -> (String, i64) {
    let card_no = card_no.to_string();
    let epoch = chrono::Utc::now().timestamp() - 86_400;
    let card_id: String = srv
        .read(move |c| {
            c.query_row("SELECT id FROM cards WHERE card_no = ?1", [card_no], |r| {
                r.get(0)
            })
        })
        .await;
    let id = card_id.clone();
    srv.write(move |c| {
        mps_edge::db::chains::enrol_demo(c, &id, &seed, epoch, 60, SLOTS, epoch + 86_400)
            .map_err(|e| rusqlite::Error::InvalidParameterName(e.to_string()))
    })
    .await;
    (card_id, epoch)
}

fn slot_now(epoch: i64) -> u32 {
    mq2::slot_at(epoch, 60, chrono::Utc::now().timestamp()) as u32
}

fn code(card_id: &str, slot: u32) -> String {
    mq2::make_code(card_id, &SEED, SLOTS, slot).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_offline_code_pays_once_per_slot_and_every_refusal_says_why() {
    let srv = TestServer::start().await;
    let t = srv.owner_token().await;
    let (card_id, epoch) = enrol(&srv, CARD_NO, SEED).await;
    let j = slot_now(epoch);
    let start = srv.available(CARD_NO).await;

    // Validate shows the card and uses nothing.
    for _ in 0..2 {
        let v = srv.validate_qr(&t, &code(&card_id, j)).await;
        assert_eq!(v.assert_ok()["card_info"]["card_no"], CARD_NO);
    }
    // A refused charge (too much) leaves the slot unused.
    srv.charge(&t, &code(&card_id, j), "999999.00")
        .await
        .assert_error(422, "INSUFFICIENT_BALANCE");
    let paid = srv.charge(&t, &code(&card_id, j), "5.00").await;
    assert_eq!(paid.assert_ok()["customer_info"]["card_no"], CARD_NO);
    // The slot is used: charge, validate and an older slot are refused.
    srv.charge(&t, &code(&card_id, j), "5.00")
        .await
        .assert_error(422, "QR_ALREADY_USED");
    srv.validate_qr(&t, &code(&card_id, j))
        .await
        .assert_error(422, "QR_ALREADY_USED");
    srv.charge(&t, &code(&card_id, j - 1), "5.00")
        .await
        .assert_error(422, "QR_ALREADY_USED");
    // Paying again in the same minute: the phone shows the next slot's code.
    srv.charge(&t, &code(&card_id, j + 1), "1.00")
        .await
        .assert_ok();
    // Outside the clock window (± 2 slots by default), either way.
    for far in [j + 10, j - 10] {
        srv.charge(&t, &code(&card_id, far), "1.00")
            .await
            .assert_error(422, "QR_CLOCK_SKEW");
    }
    // Forgeries from what the store knows (the anchor and used values) or from nothing.
    let used = mq2::parse(&code(&card_id, j + 1)).unwrap().value;
    let b64 = |v: &[u8]| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v)
    };
    let chain = mq2::chain_id(&mq2::anchor(&SEED, SLOTS));
    let hex = card_id.replace('-', "");
    for forged in [
        // a used value relabelled as the next slot
        format!("mq2.{hex}.{chain}.{}.{}", j + 2, b64(&used)),
        // its hash (an earlier slot's value) relabelled as the next slot
        format!("mq2.{hex}.{chain}.{}.{}", j + 2, b64(&mq2::hash(&used))),
        // the anchor itself
        format!(
            "mq2.{hex}.{chain}.{}.{}",
            j + 2,
            b64(&mq2::anchor(&SEED, SLOTS))
        ),
        // random bytes
        format!("mq2.{hex}.{chain}.{}.{}", j + 2, b64(&[7u8; 32])),
        // another chain id
        format!(
            "mq2.{hex}.0123456789abcdef.{}.{}",
            j + 2,
            b64(&mq2::hash_n(&SEED, SLOTS - j - 2))
        ),
        // past the chain's end
        format!("mq2.{hex}.{chain}.{}.{}", SLOTS + 1, b64(&SEED)),
    ] {
        srv.charge(&t, &forged, "1.00")
            .await
            .assert_error(422, "QR_EXPIRED_OR_INVALID");
    }
    // The genuine code of that slot pays.
    srv.charge(&t, &code(&card_id, j + 2), "1.00")
        .await
        .assert_ok();
    assert_eq!(srv.available(CARD_NO).await, start - 700);
    assert_eq!(
        srv.count("SELECT COUNT(*) FROM transactions").await,
        3,
        "refusals wrote nothing"
    );
    // Each charge carries its code as the proof central checks, and no QR state was touched.
    let proofs: Vec<String> = srv
        .read(|c| {
            let mut s = c.prepare(
                "SELECT json_extract(payload, '$.qr_proof') FROM outbox WHERE op_type = 'charge' ORDER BY seq",
            )?;
            let rows = s.query_map([], |r| r.get(0))?;
            rows.collect()
        })
        .await;
    let expected: Vec<String> = [j, j + 1, j + 2]
        .iter()
        .map(|s| serde_json::json!({"token": code(&card_id, *s)}).to_string())
        .collect();
    assert_eq!(proofs, expected);
    assert_eq!(
        srv.count("SELECT COUNT(*) FROM card_qr_state WHERE consumed_hash IS NOT NULL")
            .await,
        0
    );
    // A lost phone: once the chain is revoked, its codes are refused and say why.
    srv.write(|c| {
        c.execute(
            "UPDATE qr_chains SET revoked_at_unix = strftime('%s','now')",
            [],
        )
    })
    .await;
    srv.charge(&t, &code(&card_id, j + 3), "1.00")
        .await
        .assert_error(422, "QR_CHAIN_REVOKED");
    srv.validate_qr(&t, &code(&card_id, j + 3))
        .await
        .assert_error(422, "QR_CHAIN_REVOKED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_charges_of_one_offline_code_pay_once() {
    let srv = TestServer::start().await;
    let t = srv.owner_token().await;
    let (card_id, epoch) = enrol(&srv, "STD00000012", SEED).await;
    let qr = code(&card_id, slot_now(epoch));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (base, client, t, qr) = (srv.base.clone(), srv.client.clone(), t.clone(), qr.clone());
        tasks.push(tokio::spawn(async move {
            client
                .post(format!("{base}/api/v1/merchant/charge"))
                .bearer_auth(t)
                .json(&serde_json::json!({"qr_plain": qr, "amount": "2.00"}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    statuses.sort_unstable();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 422),
        "{statuses:?}"
    );
    assert_eq!(srv.count("SELECT COUNT(*) FROM transactions").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_skew_window_is_configurable() {
    let srv = TestServer::start_with(|c| c.qr.offline_skew_slots = 0).await;
    let t = srv.owner_token().await;
    let (card_id, epoch) = enrol(&srv, CARD_NO, SEED).await;
    // Wait out the last seconds of a slot so "now" stays in one slot for this test.
    let now = chrono::Utc::now().timestamp();
    if (now - epoch).rem_euclid(60) > 55 {
        tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    }
    let j = slot_now(epoch);
    srv.charge(&t, &code(&card_id, j + 1), "1.00")
        .await
        .assert_error(422, "QR_CLOCK_SKEW");
    srv.charge(&t, &code(&card_id, j), "1.00").await.assert_ok();
}

/// `mps-edge demo qr --offline` plays the member's phone: the first call enrols a chain,
/// each call gives a code that pays, a second payment in the same minute gets the next
/// slot's code.
#[test]
fn demo_qr_offline_makes_codes_that_pay() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut edge = EdgeProcess::start(Install::DataDir(&data), &[], &[]);
    let password = edge
        .password
        .clone()
        .expect("first start prints the password");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = reqwest::Client::new();
    let token: String = runtime.block_on(async {
        let v: Value = client
            .post(format!("{}/api/v1/auth/login", edge.url))
            .json(&serde_json::json!({"username": "owner", "password": password}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["access_token"].as_str().unwrap().to_string()
    });
    let mut codes = Vec::new();
    for _ in 0..2 {
        let q = demo_json(&data, &["qr", "--offline", "--card", CARD_NO, "--json"]);
        let text = q["qr_plain"].as_str().unwrap().to_string();
        assert!(text.starts_with("mq2."), "{text}");
        let r: (u16, Value) = runtime.block_on(async {
            let res = client
                .post(format!("{}/api/v1/merchant/charge", edge.url))
                .bearer_auth(&token)
                .json(&serde_json::json!({"qr_plain": text, "amount": "3.00"}))
                .send()
                .await
                .unwrap();
            (res.status().as_u16(), res.json().await.unwrap())
        });
        assert_eq!(r.0, 200, "{}", r.1);
        assert_eq!(amt(&r.1["transaction"]["final_amount"]), "3.00");
        codes.push(text);
    }
    assert_ne!(codes[0], codes[1], "the second code is of a later slot");
    let chain = |c: &str| c.split('.').nth(2).unwrap().to_string();
    assert_eq!(
        chain(&codes[0]),
        chain(&codes[1]),
        "one chain, enrolled once"
    );
    edge.terminate();
}
