//! Durability: the real binary, concurrent charges, `kill -9` right after
//! acknowledgements arrive, restart — every acknowledged charge is there exactly once and
//! every card's available balance equals its starting balance minus its charges.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::binary::{demo_json, demo_qr, EdgeProcess, Install, QUIET};
use support::http;

/// Many charges per card and token in a short burst.
fn start(data: &std::path::Path) -> EdgeProcess {
    EdgeProcess::start(
        Install::DataDir(data),
        &[],
        &[
            ("MPS_EDGE_QR__SINGLE_USE", "false"),
            ("MPS_EDGE_LIMITS__MAX_TX_AMOUNT", "100000.00"),
            ("MPS_EDGE_LIMITS__MAX_CARD_UNSYNCED", "9999999.00"),
            ("MPS_EDGE_LIMITS__MAX_SITE_UNSYNCED", "99999999.00"),
            QUIET,
        ],
    )
}

fn cents(v: &serde_json::Value) -> i64 {
    mps_edge::domain::money::cents_from_json(v).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_charges_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = start(&data);
    let password = server
        .password
        .clone()
        .expect("first start prints the owner password");
    let client = reqwest::Client::new();

    let start_balances: HashMap<String, i64> = demo_json(&data, &["cards", "--json"])
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["card_no"].as_str().unwrap().to_string(),
                cents(&c["balance"]),
            )
        })
        .collect();
    let mut tokens = Vec::new();
    for i in 1..=20 {
        let card = format!("STD{i:08}");
        let q = demo_qr(&data, &card);
        tokens.push((card, q));
    }
    let tokens = Arc::new(tokens);

    let mut acknowledged: Vec<(String, String, i64)> = Vec::new();
    for round in 0..3 {
        let token = http::login(&client, &server.url, "owner", &password)
            .await
            .unwrap();
        let acks = Arc::new(Mutex::new(Vec::new()));
        let stop_at = Instant::now() + Duration::from_millis(1500);
        let mut tasks = Vec::new();
        for worker in 0..16usize {
            let (client, url, token, tokens, acks) = (
                client.clone(),
                server.url.clone(),
                token.clone(),
                tokens.clone(),
                acks.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let mut n = 0usize;
                while Instant::now() < stop_at {
                    let (card, qr) = &tokens[(worker + n) % tokens.len()];
                    n += 1;
                    let amount = format!("{}.{:02}", 1 + (worker + n) % 7, (n * 13) % 100);
                    let res = http::charge(&client, &url, &token, qr, &amount)
                        .send()
                        .await;
                    let Ok(res) = res else { break };
                    if res.status().is_success() {
                        let Ok(body) = res.json::<serde_json::Value>().await else {
                            break;
                        };
                        let tx_no = body["transaction"]["tx_no"].as_str().unwrap().to_string();
                        acks.lock().unwrap().push((
                            tx_no,
                            card.clone(),
                            cents(&body["transaction"]["final_amount"]),
                        ));
                    }
                }
            }));
        }
        // Kill -9 while the burst is still running, right after acknowledgements arrived.
        loop {
            tokio::time::sleep(Duration::from_millis(20)).await;
            if acks.lock().unwrap().len() >= 50 * (round + 1) || Instant::now() > stop_at {
                break;
            }
        }
        server.kill9().unwrap();
        for t in tasks {
            let _ = t.await;
        }
        acknowledged.extend(acks.lock().unwrap().drain(..));
        assert!(
            !acknowledged.is_empty(),
            "no charge was acknowledged before the kill"
        );
        server = start(&data);
        assert!(
            server.password.is_none(),
            "a restart must not recreate the owner"
        );
    }
    server.kill9().unwrap();

    let conn = rusqlite::Connection::open(data.join("mps-edge.db")).unwrap();
    let mut stored: HashMap<String, (String, i64)> = HashMap::new();
    let mut stmt = conn
        .prepare("SELECT t.tx_no, c.card_no, t.final_amount_cents FROM transactions t JOIN cards c ON c.id = t.card_id WHERE t.tx_type = 'payment'")
        .unwrap();
    for row in stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .unwrap()
    {
        let (tx_no, card, amount) = row.unwrap();
        assert!(stored.insert(tx_no, (card, amount)).is_none());
    }
    let mut seen = HashSet::new();
    for (tx_no, card, amount) in &acknowledged {
        assert!(seen.insert(tx_no.clone()), "{tx_no} acknowledged twice");
        let (c, a) = stored
            .get(tx_no)
            .unwrap_or_else(|| panic!("acknowledged {tx_no} lost after kill -9"));
        assert_eq!((c, a), (card, amount));
    }
    let outbox: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM outbox WHERE op_type = 'charge'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(outbox as usize, stored.len(), "one outbox entry per charge");
    let mut spent: HashMap<String, i64> = HashMap::new();
    for (card, amount) in stored.values() {
        *spent.entry(card.clone()).or_default() += amount;
    }
    let mut stmt = conn
        .prepare("SELECT card_no, snapshot_balance_cents - pending_debit_cents + pending_credit_cents, pending_debit_cents FROM cards")
        .unwrap();
    for row in stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .unwrap()
    {
        let (card, available, pending) = row.unwrap();
        let charged = spent.get(&card).copied().unwrap_or(0);
        assert_eq!(pending, charged, "{card}: pending debits equal its charges");
        assert_eq!(
            available,
            start_balances[&card] - charged,
            "{card}: balance = start - charges"
        );
    }
    eprintln!(
        "acknowledged {} charges across 3 kill -9 rounds; {} stored",
        acknowledged.len(),
        stored.len()
    );
}
