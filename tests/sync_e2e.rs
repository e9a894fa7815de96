//! End-to-end sync against a real PostgreSQL holding the upstream-compatible central
//! schema plus sync/central.sql, reached through the PostgREST-compatible gateway and a
//! fault-injecting proxy: offline sales, exactly-once push under faults, conflicts,
//! pulls across equal timestamps and late commits, two sites.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use mps_edge::config::Config;
use mps_edge::domain::money::parse_decimal_cents;
use serde_json::{json, Value};
use support::binary::{EdgeProcess, Install};
use support::edge::{money, Edge, MERCHANT, OWNER_PW};
use support::http::login;
use support::proxy::{spawn_proxy, FaultProxy, Mode};
use support::{Central, RpcResponse};
use tempfile::TempDir;

struct Member {
    phone: String,
    card_id: String,
}

async fn setup_central() -> Central {
    let central = Central::start().await.unwrap();
    central
        .sql(&format!(
            "insert into public.merchants(code, name, status, password_hash) values ('{MERCHANT}', 'Shop One', 'active', extensions.crypt('merchant-pass', extensions.gen_salt('bf')))"
        ))
        .unwrap();
    central
}

/// A member with a standard card holding `balance` (recharged centrally) and `points`.
async fn member(central: &Central, n: usize, balance: &str, points: i64) -> Member {
    let phone = format!("0900{n:06}");
    let r = central
        .rpc(
            "create_member_profile",
            &json!({"p_name": format!("Member {n}"), "p_phone": phone, "p_email": null, "p_password": "member-pass"}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text);
    let member_id = r.json.as_str().unwrap().to_string();
    let card_id = central
        .sql(&format!(
            "select id from public.member_cards where owner_member_id = '{member_id}'"
        ))
        .unwrap()
        .trim()
        .to_string();
    let r = central
        .rpc(
            "user_recharge_card",
            &json!({"p_card_id": card_id, "p_amount": balance}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text);
    if points > 0 {
        let r = central
            .rpc(
                "update_points_and_level",
                &json!({"p_card_id": card_id, "p_delta_points": points, "p_reason": "seed"}),
            )
            .await
            .unwrap();
        assert_eq!(r.status, 200, "{}", r.text);
    }
    Member { phone, card_id }
}

/// A fresh QR issued by the member at central (legacy `rotate_card_qr`).
async fn central_qr(central: &Central, m: &Member) -> String {
    let login = central
        .rpc(
            "member_login",
            &json!({"p_identifier": m.phone, "p_password": "member-pass"}),
        )
        .await
        .unwrap();
    assert_eq!(login.status, 200, "{}", login.text);
    let session = login.json["session_id"].as_str().unwrap();
    let r = central
        .rpc(
            "rotate_card_qr",
            &json!({"p_card_id": m.card_id, "p_ttl_seconds": 3600, "p_session_id": session}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text);
    r.json[0]["qr_plain"].as_str().unwrap().to_string()
}

/// The card's number at central.
fn card_no_of(central: &Central, card_id: &str) -> String {
    central
        .sql(&format!(
            "select card_no from public.member_cards where id = '{card_id}'"
        ))
        .unwrap()
        .trim()
        .to_string()
}

fn card_row(central: &Central, card_id: &str) -> (i64, i64, i64, String) {
    let out = central
        .sql(&format!("select balance, points, coalesce(level, -1), discount from public.member_cards where id = '{card_id}'"))
        .unwrap();
    let f: Vec<&str> = out.trim().split('|').collect();
    (
        parse_decimal_cents(f[0]).unwrap(),
        f[1].parse().unwrap(),
        f[2].parse().unwrap(),
        f[3].to_string(),
    )
}

/// An edge for `site`, registered on `central` and configured with its site key, that
/// talks to central at `url` (central itself or a proxy in front of it).
async fn start_edge(central: &Central, site: &str, url: &str) -> Edge {
    let key = central.register_site(MERCHANT, site).await;
    Edge::start_keyed(site, url, &central.anon_key, &key).await
}

async fn start_edge_with(cfg: Config, dir: TempDir) -> Edge {
    Edge::start_with(cfg, dir).await
}

async fn edge_via_proxy(central: &Central, site: &str) -> (FaultProxy, Edge) {
    let proxy = spawn_proxy(central.gateway.addr()).await;
    let edge = start_edge(central, site, &proxy.url()).await;
    (proxy, edge)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn offline_sales_reach_central_exactly_as_central_would_compute_them() {
    let central = setup_central().await;
    let a = member(&central, 1, "1000.00", 0).await;
    let b = member(&central, 2, "500.00", 0).await;
    let c = member(&central, 3, "800.00", 990).await;
    central
        .sql(&format!(
            "update public.member_cards set corporate_discount = 0.800 where id = '{}'",
            b.card_id
        ))
        .unwrap();
    let (qa, qb, qc) = (
        central_qr(&central, &a).await,
        central_qr(&central, &b).await,
        central_qr(&central, &c).await,
    );

    let (proxy, edge) = edge_via_proxy(&central, "S001").await;
    edge.wait_bootstrap(3).await;
    // Let the QR states arrive (the charge below also pulls on a miss while online).
    for q in [&qa, &qb, &qc] {
        let (s, _) = edge
            .post("/api/v1/common/qr/validate", &json!({"qr_plain": q}))
            .await;
        assert_eq!(s, 200);
    }

    // Central goes away: the store keeps selling.
    proxy.set_mode(Mode::Refuse);
    central.pg.stop().unwrap();
    let pa = edge.charge(&qa, "100.00").await;
    let pb = edge.charge(&qb, "10.01").await;
    let pc = edge.charge(&qc, "20.00").await;
    assert_eq!(
        money(&pb["transaction"]["final_amount"]),
        801,
        "corporate 0.800 is the lower discount"
    );
    assert_eq!(
        pc["customer_info"]["member_level"], 1,
        "990 + 20 points reaches level 1 locally"
    );
    let tx_a = pa["transaction"]["tx_no"].as_str().unwrap().to_string();
    let (s, r) = edge
        .post(
            "/api/v1/merchant/refund",
            &json!({"original_tx_no": tx_a, "refund_amount": "30.00"}),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    let (s, _) = edge.sync_now().await;
    assert_eq!(s, 503, "sync fails while central is down");
    let st = edge.status().await;
    assert_eq!(st["queue_depth"], 4);
    assert_eq!(st["online"], false);

    // Central is back: everything is pushed once and the balances agree.
    central.pg.start_again().unwrap();
    proxy.set_mode(Mode::Pass);
    edge.wait_drained().await;
    let st = edge.status().await;
    assert_eq!(st["open_exceptions"], 0, "{st}");

    assert_eq!(
        card_row(&central, &a.card_id),
        (93_000, 100, 0, "1.000".into())
    );
    assert_eq!(
        card_row(&central, &b.card_id),
        (50_000 - 801, 10, 0, "1.000".into())
    );
    assert_eq!(
        card_row(&central, &c.card_id),
        (80_000 - 2_000, 1010, 1, "0.950".into())
    );
    for m in [&a, &b, &c] {
        assert_eq!(
            edge.available(&m.card_id),
            card_row(&central, &m.card_id).0,
            "edge and central agree"
        );
    }
    // The rows upstream's own RPCs would have written.
    let rows = central
        .sql(&format!(
            "select tx_no, tx_type, raw_amount, discount_applied, final_amount, points_earned, status, coalesce(reason,''), tag->'edge'->>'site', (tag->'edge'->>'offline')
             from public.transactions where merchant_id = (select id from public.merchants where code = '{MERCHANT}') order by created_at"
        ))
        .unwrap();
    let lines: Vec<&str> = rows.trim().lines().collect();
    assert_eq!(lines.len(), 4, "{rows}");
    assert!(
        lines[0].starts_with(&format!(
            "{tx_a}|payment|100.00|1.000|100.00|100|completed||S001|true"
        )),
        "{rows}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("|payment|10.01|0.800|8.01|10|completed|")),
        "{rows}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("REF-S001-")
            && l.contains(&format!(
                "|refund|30.00|1.000|30.00|0|completed|{tx_a}|S001|"
            ))),
        "{rows}"
    );
    let ledger = central
        .sql(&format!("select count(*), sum(change) from public.point_ledger where card_id in ('{}','{}','{}') and reason = 'payment_earn'", a.card_id, b.card_id, c.card_id))
        .unwrap();
    assert_eq!(ledger.trim(), "3|130");
    let audit = central.sql("select count(*) from audit.event_log where action in ('PAYMENT','REFUND') and context::text like '%S001%'").unwrap();
    assert_eq!(audit.trim(), "4");
    let registry = central
        .sql("select count(*) from public.tx_registry where tx_no like '%-S001-%'")
        .unwrap();
    assert_eq!(registry.trim(), "4");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn push_is_exactly_once_under_every_fault() {
    let central = setup_central().await;
    let mut members = Vec::new();
    for n in 0..6 {
        members.push(member(&central, 10 + n, "5000.00", 0).await);
    }
    let (proxy, edge) = edge_via_proxy(&central, "S002").await;
    edge.wait_bootstrap(6).await;
    let faults = [
        Mode::DropResponseAfterCommit,
        Mode::ServerError(503),
        Mode::Delay(Duration::from_millis(1500)),
        Mode::DropNext(2),
        Mode::RefuseNext(3),
        Mode::ServerErrorNext(502, 2),
    ];
    let mut expected_tx = 0;
    let mut spent = vec![0i64; members.len()];
    for (round, fault) in faults.into_iter().enumerate() {
        proxy.set_mode(Mode::Pass);
        for (i, m) in members.iter().enumerate() {
            let q = central_qr(&central, m).await;
            let amount = format!("{}.{:02}", 3 + round, (i * 7 + round) % 100);
            let (st, r) = edge
                .post(
                    "/api/v1/merchant/charge",
                    &json!({"qr_plain": q, "amount": amount}),
                )
                .await;
            assert_eq!(
                st,
                200,
                "round {round} member {i}: {r} status {}",
                edge.status().await
            );
            spent[i] += money(&r["transaction"]["final_amount"]);
            expected_tx += 1;
        }
        proxy.set_mode(fault.clone());
        let _ = edge.sync_now().await;
        let _ = edge.sync_now().await;
        proxy.set_mode(Mode::Pass);
        edge.wait_drained().await;
        let count = central.sql("select count(*), count(distinct tx_no) from public.transactions where tag->'edge'->>'site' = 'S002'").unwrap();
        assert_eq!(
            count.trim(),
            format!("{expected_tx}|{expected_tx}"),
            "after fault {fault:?}"
        );
    }
    for (i, m) in members.iter().enumerate() {
        assert_eq!(
            card_row(&central, &m.card_id).0,
            500_000 - spent[i],
            "card {i}: no charge lost or applied twice"
        );
        assert_eq!(edge.available(&m.card_id), 500_000 - spent[i]);
    }
    let applied = central
        .sql("select count(*) from mps_edge.applied_ops where site_code = 'S002'")
        .unwrap();
    assert_eq!(applied.trim(), expected_tx.to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conflicts_become_exceptions_on_both_sides() {
    let central = setup_central().await;
    let spender = member(&central, 20, "100.00", 0).await;
    let frozen = member(&central, 21, "100.00", 0).await;
    let fine = member(&central, 22, "100.00", 0).await;
    let (qs, qf, qok) = (
        central_qr(&central, &spender).await,
        central_qr(&central, &frozen).await,
        central_qr(&central, &fine).await,
    );
    let (proxy, edge) = edge_via_proxy(&central, "S003").await;
    edge.wait_bootstrap(3).await;
    for q in [&qs, &qf, &qok] {
        edge.post("/api/v1/common/qr/validate", &json!({"qr_plain": q}))
            .await;
    }
    proxy.set_mode(Mode::Refuse);
    edge.charge(&qs, "80.00").await;
    edge.charge(&qf, "10.00").await;
    edge.charge(&qok, "10.00").await;
    // Meanwhile at central: the first card's balance is spent elsewhere, the second frozen.
    central
        .sql(&format!(
            "update public.member_cards set balance = 50.00 where id = '{}'",
            spender.card_id
        ))
        .unwrap();
    central
        .sql(&format!(
            "update public.member_cards set status = 'inactive' where id = '{}'",
            frozen.card_id
        ))
        .unwrap();
    proxy.set_mode(Mode::Pass);
    edge.wait_drained().await;

    let st = edge.status().await;
    assert_eq!(st["open_exceptions"], 2, "{st}");
    let ex = edge.get("/api/v1/sync/exceptions").await;
    let reasons: Vec<&str> = ex["exceptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert!(
        reasons.contains(&"INSUFFICIENT_BALANCE") && reasons.contains(&"CARD_NOT_ACTIVE"),
        "{ex}"
    );
    let central_ex = central.sql("select count(*) from mps_edge.exceptions where site_code = 'S003' and resolved_at is null").unwrap();
    assert_eq!(central_ex.trim(), "2");
    // The rejected charges do not touch central balances; the fine one applied.
    assert_eq!(card_row(&central, &spender.card_id).0, 5_000);
    assert_eq!(card_row(&central, &fine.card_id).0, 9_000);
    // The edge follows central's snapshot: the rejected debit no longer counts.
    assert_eq!(edge.available(&spender.card_id), 5_000);
    // A manager resolves one with a note; central hears about it.
    let id = ex["exceptions"][0]["id"].as_str().unwrap();
    let (s, r) = edge
        .post(
            &format!("/api/v1/sync/exceptions/{id}/resolve"),
            &json!({"note": "customer paid cash"}),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["central_resolved"], true);
    assert_eq!(edge.status().await["open_exceptions"], 1);
    let central_ex = central.sql("select count(*) from mps_edge.exceptions where site_code = 'S003' and resolved_at is null").unwrap();
    assert_eq!(central_ex.trim(), "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pulls_page_equal_timestamps_late_commits_and_fresh_qr() {
    let central = setup_central().await;
    // 2,500 cards created in ONE transaction share one updated_at: keyset paging must
    // still return each exactly once.
    central
        .sql("insert into public.member_cards(card_type, balance, status) select 'standard', 10.00, 'active' from generate_series(1, 2500)")
        .unwrap();
    let m = member(&central, 30, "300.00", 0).await;
    let (_proxy, edge) = edge_via_proxy(&central, "S004").await;
    // card names travel only where shared; this test watches them change
    let r = central
        .rpc(
            "edge_set_site_options",
            &json!({"p_site_code": "S004", "p_share_member_names": true}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text);
    edge.wait_bootstrap(2501).await;
    assert_eq!(edge.status().await["replica"]["cards"], 2501);

    // A fresh QR issued centrally works at the edge at once (pulled on the miss).
    let q = central_qr(&central, &m).await;
    let r = edge.charge(&q, "12.00").await;
    assert_eq!(r["customer_info"]["balance_after"].to_string(), "288.00");

    // A late-committing central change (its updated_at is older than the edge's cursor
    // by the time it commits) is still picked up thanks to the overlap window.
    edge.wait_drained().await;
    let late_card = central
        .sql("select id from public.member_cards where owner_member_id is null order by card_no desc limit 1")
        .unwrap()
        .trim()
        .to_string();
    let (client, conn) = tokio_postgres::connect(
        &central.pg.url(support::pg::CENTRAL_DB),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    client.batch_execute("BEGIN").await.unwrap();
    client
        .execute(
            "update public.member_cards set name = 'late writer' where id = $1::text::uuid",
            &[&late_card],
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // Other changes commit and the edge pulls past them.
    central.sql("update public.member_cards set name = 'early' where card_no = (select min(card_no) from public.member_cards)").unwrap();
    let (s, _) = edge.sync_now().await;
    assert_eq!(s, 200);
    client.batch_execute("COMMIT").await.unwrap();
    let (s, _) = edge.sync_now().await;
    assert_eq!(s, 200);
    let id = late_card.clone();
    let name: String = edge
        .db
        .read_blocking(move |c| {
            Ok(c.query_row("SELECT name FROM cards WHERE id = ?1", [id], |r| r.get(0))?)
        })
        .unwrap();
    assert_eq!(name, "late writer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_sites_never_collide() {
    let central = setup_central().await;
    let m1 = member(&central, 40, "1000.00", 0).await;
    let m2 = member(&central, 41, "1000.00", 0).await;
    let e1 = start_edge(&central, "S101", &central.url()).await;
    let e2 = start_edge(&central, "S102", &central.url()).await;
    e1.wait_bootstrap(2).await;
    e2.wait_bootstrap(2).await;
    let mut tx = Vec::new();
    for _ in 0..3 {
        for (e, m) in [(&e1, &m1), (&e2, &m1), (&e1, &m2), (&e2, &m2)] {
            let q = central_qr(&central, m).await;
            tx.push(
                e.charge(&q, "10.00").await["transaction"]["tx_no"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
    }
    e1.wait_drained().await;
    e2.wait_drained().await;
    let distinct: std::collections::HashSet<_> = tx.iter().collect();
    assert_eq!(distinct.len(), 12);
    let count = central.sql("select count(*), count(distinct tx_no) from public.transactions where tx_type = 'payment' and tag ? 'edge'").unwrap();
    assert_eq!(count.trim(), "12|12");
    assert_eq!(card_row(&central, &m1.card_id).0, 100_000 - 6_000);
    assert_eq!(card_row(&central, &m2.card_id).0, 100_000 - 6_000);
    // Each edge converges on central's balance after a pull.
    let _ = e1.sync_now().await;
    let _ = e2.sync_now().await;
    assert_eq!(e1.available(&m1.card_id), 94_000);
    assert_eq!(e2.available(&m1.card_id), 94_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_the_edge_mid_push_loses_nothing_and_applies_nothing_twice() {
    let central = setup_central().await;
    let mut members = Vec::new();
    for n in 0..4 {
        members.push(member(&central, 50 + n, "5000.00", 0).await);
    }
    let proxy = spawn_proxy(central.gateway.addr()).await;
    let dir = tempfile::tempdir().unwrap();
    // this store still holds central's service key: migration mode keeps working
    let key_file = dir.path().join("service_key");
    std::fs::write(&key_file, &central.service_key).unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n[site]\ncode = \"S005\"\n[central]\nurl = {:?}\nservice_key_file = {:?}\nmerchant_code = \"{MERCHANT}\"\n[log]\nlevel = \"warn\"\n",
            dir.path().join("data"),
            proxy.url(),
            key_file
        ),
    )
    .unwrap();
    let out = support::binary::command(Install::Config(&config))
        .args([
            "admin",
            "create-user",
            "--username",
            "owner",
            "--role",
            "owner",
            "--password",
            OWNER_PW,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let http = support::http::client(Duration::from_secs(20));
    let mut spent = vec![0i64; members.len()];
    let mut charges = 0;
    // The last member's card is also frozen at the end of each round and unfrozen at the
    // start of the next (offline, like the sales): card ops under the same faults.
    let frozen_no = card_no_of(&central, &members[3].card_id);
    let mut card_ops = 0;
    // The first member's card is also topped up each round (offline): a top-up under the
    // same faults, applied once.
    let topped_no = card_no_of(&central, &members[0].card_id);
    let mut topped = 0i64;
    for round in 0..4 {
        proxy.set_mode(Mode::Pass);
        let mut edge = EdgeProcess::start(Install::Config(&config), &[], &[]);
        let token = login(&http, &edge.url, "owner", OWNER_PW).await.unwrap();
        let post = |path: &str, body: Value| {
            http.post(format!("{}{path}", edge.url))
                .bearer_auth(&token)
                .json(&body)
                .send()
        };
        // Tokens issued centrally reach the edge while online…
        let mut tokens = Vec::new();
        for m in &members {
            let q = central_qr(&central, m).await;
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let r = post("/api/v1/common/qr/validate", json!({"qr_plain": q}))
                    .await
                    .unwrap();
                if r.status() == 200 {
                    break;
                }
                assert!(Instant::now() < deadline, "token never reached the edge");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            tokens.push(q);
        }
        // …then the link drops and the store sells offline.
        proxy.set_mode(Mode::Refuse);
        if round > 0 {
            let r = post(
                &format!("/api/v1/merchant/cards/{frozen_no}/unfreeze"),
                json!({"reason": "found"}),
            )
            .await
            .unwrap();
            assert_eq!(r.status(), 200, "unfreeze (round {round})");
            card_ops += 1;
        }
        for (i, q) in tokens.iter().enumerate() {
            let amount = format!("{}.{:02}", 2 + round, 11 * (i + 1));
            let r: Value = post(
                "/api/v1/merchant/charge",
                json!({"qr_plain": q, "amount": amount}),
            )
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
            spent[i] += money(&r["transaction"]["final_amount"]);
            charges += 1;
        }
        let r = post(
            &format!("/api/v1/merchant/cards/{frozen_no}/freeze"),
            json!({"reason": "reported lost"}),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 200, "freeze (round {round})");
        card_ops += 1;
        let r = post(
            "/api/v1/merchant/topup",
            json!({"card_no": topped_no, "amount": format!("{}.05", 10 + round)}),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 200, "top-up (round {round})");
        topped += (10 + round as i64) * 100 + 5;
        // a recharge row carries the edge tag like a sale
        charges += 1;
        // The link returns slowly: central commits the batch, the answer is held back,
        // and the edge is killed before it arrives.
        // Wait until central has committed every queued operation and answered at least
        // one push (held back by the proxy). The edge pushes up to two batches at once
        // (split by card), so one answer does not mean the whole queue is in: count the
        // rows central holds as well.
        let before = proxy.answered_by("/rpc/edge_apply_batch");
        proxy.set_mode(Mode::DelayAfterCommit(Duration::from_secs(5)));
        let trigger = tokio::spawn(post("/api/v1/sync/now", json!({})));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let applied = central
                .sql("select count(*) from public.transactions where tag->'edge'->>'site' = 'S005'")
                .unwrap();
            if applied.trim() == charges.to_string()
                && proxy.answered_by("/rpc/edge_apply_batch") > before
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the push never reached central ({applied})"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        edge.kill9().unwrap();
        let _ = trigger.await;
        let applied = central
            .sql("select count(*) from public.transactions where tag->'edge'->>'site' = 'S005'")
            .unwrap();
        assert_eq!(
            applied.trim(),
            charges.to_string(),
            "central committed the in-flight batch (round {round})"
        );

        // Restart: the edge pushes the same operations again; central answers duplicate.
        proxy.set_mode(Mode::Pass);
        let mut edge = EdgeProcess::start(Install::Config(&config), &[], &[]);
        let token = login(&http, &edge.url, "owner", OWNER_PW).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let s: Value = http
                .get(format!("{}/api/v1/sync/status", edge.url))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if s["queue_depth"] == 0 {
                assert_eq!(s["open_exceptions"], 0, "{s}");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "outbox not drained after restart: {s}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        edge.kill9().unwrap();
    }
    let count = central
        .sql("select count(*), count(distinct id) from public.transactions where tag->'edge'->>'site' = 'S005'")
        .unwrap();
    assert_eq!(count.trim(), format!("{charges}|{charges}"));
    for (i, m) in members.iter().enumerate() {
        let credited = if i == 0 { topped } else { 0 };
        assert_eq!(
            card_row(&central, &m.card_id).0,
            500_000 - spent[i] + credited,
            "card {i}"
        );
    }
    let dup = central
        .sql("select count(*) from mps_edge.applied_ops where site_code = 'S005'")
        .unwrap();
    assert_eq!(dup.trim(), (charges + card_ops).to_string());
    // each freeze and unfreeze applied exactly once, despite the kills
    let audit = central
        .sql(&format!(
            "select (select count(*) from audit.event_log where object_id = '{id}' and action = 'CARD_FREEZE'),
                    (select count(*) from audit.event_log where object_id = '{id}' and action = 'CARD_UNFREEZE'),
                    (select status from public.member_cards where id = '{id}')",
            id = members[3].card_id
        ))
        .unwrap();
    assert_eq!(audit.trim(), "4|3|inactive");
    // each top-up applied exactly once, despite the kills
    let recharges = central
        .sql(&format!(
            "select count(*), count(distinct tx_no), coalesce(sum(final_amount), 0),
                    (select count(*) from audit.event_log e join public.transactions t on t.id = e.object_id
                      where e.action = 'RECHARGE' and t.tx_no like 'RCG-S005-%')
               from public.transactions where card_id = '{}' and tx_no like 'RCG-S005-%'",
            members[0].card_id
        ))
        .unwrap();
    assert_eq!(
        recharges.trim(),
        format!("4|4|{}|4", support::server::fmt_cents(topped))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fast_tokens_issued_centrally_charge_at_the_edge() {
    let central = setup_central().await;
    let m = member(&central, 60, "200.00", 0).await;
    let edge = start_edge(&central, "S006", &central.url()).await;
    edge.wait_bootstrap(1).await;
    let login = central
        .rpc(
            "member_login",
            &json!({"p_identifier": m.phone, "p_password": "member-pass"}),
        )
        .await
        .unwrap();
    let session = login.json["session_id"].as_str().unwrap();
    let r = central
        .rpc(
            "edge_issue_qr",
            &json!({"p_card_id": m.card_id, "p_ttl_seconds": 600, "p_session_id": session}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text);
    let token = r.json[0]["qr_plain"].as_str().unwrap().to_string();
    assert!(token.starts_with("mq1."));
    // Central's own validator accepts the token (its bcrypt hash is kept).
    let v = central
        .rpc("validate_qr_plain", &json!({"p_qr_plain": token}))
        .await
        .unwrap();
    assert_eq!(v.json.as_str(), Some(m.card_id.as_str()));
    let res = edge.charge(&token, "25.00").await;
    assert_eq!(res["customer_info"]["balance_after"].to_string(), "175.00");
    let id = m.card_id.clone();
    let verifier: Option<String> = edge
        .db
        .read_blocking(move |c| {
            Ok(c.query_row(
                "SELECT fast_verifier FROM card_qr_state WHERE card_id = ?1",
                [id],
                |r| r.get(0),
            )?)
        })
        .unwrap();
    assert_eq!(
        verifier.as_deref(),
        Some(mps_edge::domain::qr::fast_verifier(&token).as_str())
    );
    edge.wait_drained().await;
    assert_eq!(card_row(&central, &m.card_id).0, 17_500);
    // The pushed charge carried the token as its proof: central checked it by SHA-256
    // and used it up, so central's own validator (which accepted it before the sale,
    // see above) now refuses it: single use everywhere.
    let v = central
        .rpc("validate_qr_plain", &json!({"p_qr_plain": token}))
        .await
        .unwrap();
    assert_ne!(v.json.as_str(), Some(m.card_id.as_str()), "{}", v.text);
    assert_eq!(
        central
            .sql(&format!(
                "select site_code from mps_edge.qr_used where card_id = '{}'",
                m.card_id
            ))
            .unwrap(),
        "S006"
    );
}

/// A counter top-up reaches central once, as upstream's user_recharge_card writes it (a
/// recharge with no merchant, no points, the balance up by exactly the amount, a RECHARGE
/// audit row), and the member spends it here at once. A top-up of a card head office
/// froze while the store was offline is refused there (an exception) and its credit
/// leaves the card here with the next snapshot.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_counter_topup_reaches_central_once() {
    let central = setup_central().await;
    let a = member(&central, 84, "100.00", 0).await;
    let b = member(&central, 85, "100.00", 0).await;
    let qa = central_qr(&central, &a).await;
    let (proxy, edge) = edge_via_proxy(&central, "S013").await;
    edge.wait_bootstrap(2).await;
    let card_no = |m: &Member| card_no_of(&central, &m.card_id);
    let (na, nb) = (card_no(&a), card_no(&b));

    let (s, r) = edge
        .post(
            "/api/v1/merchant/topup",
            &json!({"card_no": na, "amount": "250.00", "payment_method": "cash"}),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    let rcg = r["topup"]["tx_no"].as_str().unwrap().to_string();
    assert_eq!(money(&r["card"]["balance_after"]), 35_000);
    // spendable at once: more than the card held before the top-up
    edge.charge(&qa, "300.00").await;
    edge.wait_drained().await;

    let row = |sql: String| central.sql(&sql).unwrap().trim().to_string();
    let recharge = format!(
        "select tx_type, merchant_id is null, final_amount, raw_amount, discount_applied, points_earned, status,
                reason, payment_method,
                (select count(*) from public.tx_registry r where r.tx_no = t.tx_no),
                (select count(*) from audit.event_log e where e.object_id = t.id and e.action = 'RECHARGE')
           from public.transactions t where t.tx_no = '{rcg}'"
    );
    assert_eq!(
        row(recharge.clone()),
        "recharge|t|250.00|250.00|1.000|0|completed|recharge|cash|1|1"
    );
    assert_eq!(card_row(&central, &a.card_id).0, 5_000, "100 + 250 - 300");
    // pushing again changes nothing at central
    let _ = edge.sync_now().await;
    let _ = edge.sync_now().await;
    assert_eq!(
        row(format!(
            "select count(*) from public.transactions where card_id = '{}' and tx_type = 'recharge'
                and tx_no like 'RCG-S013-%'",
            a.card_id
        )),
        "1",
        "the funding recharge is central's own"
    );
    assert_eq!(card_row(&central, &a.card_id).0, 5_000);
    assert_eq!(edge.available(&a.card_id), 5_000);
    assert_eq!(edge.status().await["open_exceptions"], 0);

    // offline: head office freezes B; the store, not knowing, tops it up
    proxy.set_mode(Mode::Refuse);
    central
        .sql(&format!(
            "update public.member_cards set status = 'inactive' where id = '{}'",
            b.card_id
        ))
        .unwrap();
    let (s, r) = edge
        .post(
            "/api/v1/merchant/topup",
            &json!({"card_no": nb, "amount": "40.00"}),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(edge.available(&b.card_id), 14_000);
    proxy.set_mode(Mode::Pass);
    edge.wait_drained().await;
    let ex = edge.get("/api/v1/sync/exceptions").await;
    let reasons: Vec<&str> = ex["exceptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, vec!["CARD_NOT_FOUND_OR_INACTIVE"], "{ex}");
    assert_eq!(card_row(&central, &b.card_id).0, 10_000, "nothing credited");
    assert_eq!(
        row(format!(
            "select count(*) from public.transactions where card_id = '{}' and tx_no like 'RCG-S013-%'",
            b.card_id
        )),
        "0"
    );
    // the next snapshot of B carries the refusal: the credit is gone here too
    eventually(30, "the refused credit leaves the card", || async {
        let _ = edge.sync_now().await;
        (edge.available(&b.card_id) == 10_000).then_some(())
    })
    .await;
}

/// A card frozen at the counter reaches central once, as upstream's freeze_card would
/// leave it, and a later pull keeps it frozen here; the unfreeze likewise; a card head
/// office froze cannot be unfrozen at the edge.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_card_frozen_at_the_counter_reaches_central_once() {
    let central = setup_central().await;
    let a = member(&central, 80, "200.00", 0).await;
    let b = member(&central, 81, "200.00", 0).await;
    let qa = central_qr(&central, &a).await;
    let edge = start_edge(&central, "S012", &central.url()).await;
    edge.wait_bootstrap(2).await;
    let card_no = |m: &Member| card_no_of(&central, &m.card_id);
    let (na, nb) = (card_no(&a), card_no(&b));
    let card_state = |id: &str| {
        central
            .sql(&format!(
                "select c.status, (select count(*) from audit.event_log e where e.object_id = c.id and e.action = 'CARD_FREEZE'
                                     and e.context -> 'edge' ->> 'site' = 'S012'),
                        (select count(*) from audit.event_log e where e.object_id = c.id and e.action = 'CARD_UNFREEZE')
                   from public.member_cards c where c.id = '{id}'"
            ))
            .unwrap()
            .trim()
            .to_string()
    };

    // one sale, then the member reports the card lost
    edge.charge(&qa, "10.00").await;
    let (s, r) = edge
        .post(
            &format!("/api/v1/merchant/cards/{na}/freeze"),
            &json!({"reason": "reported lost"}),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["status"], "inactive");
    let qa2 = central_qr(&central, &a).await;
    let (s, r) = edge
        .post(
            "/api/v1/merchant/charge",
            &json!({"qr_plain": qa2, "amount": "1.00"}),
        )
        .await;
    assert_eq!(
        (s, r["error"]["code"].as_str()),
        (422, Some("CARD_NOT_ACTIVE")),
        "{r}"
    );

    edge.wait_drained().await;
    assert_eq!(
        card_state(&a.card_id),
        "inactive|1|0",
        "frozen at central, audited once"
    );
    let st = edge.status().await;
    assert_eq!(st["open_exceptions"], 0, "{st}");
    // the sale before the freeze was applied first (same card, in seq order)
    let paid = central
        .sql(&format!(
            "select count(*) from public.transactions where card_id = '{}' and tx_type = 'payment'",
            a.card_id
        ))
        .unwrap();
    assert_eq!(paid.trim(), "1");
    // pushing again changes nothing at central; a pull keeps it frozen here
    let _ = edge.sync_now().await;
    let _ = edge.sync_now().await;
    assert_eq!(card_state(&a.card_id), "inactive|1|0");
    let c = edge.get(&format!("/api/v1/merchant/cards/{na}")).await;
    assert_eq!(c["status"], "inactive", "{c}");
    assert_eq!(c["pending_ops"], 0, "{c}");

    // found again: lifted here and at central; it pays again
    let (s, r) = edge
        .post(
            &format!("/api/v1/merchant/cards/{na}/unfreeze"),
            &json!({"reason": "found"}),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    let qa3 = central_qr(&central, &a).await;
    edge.charge(&qa3, "5.00").await;
    edge.wait_drained().await;
    assert_eq!(card_state(&a.card_id), "active|1|1");
    let paid = central
        .sql(&format!(
            "select count(*) from public.transactions where card_id = '{}' and tx_type = 'payment'",
            a.card_id
        ))
        .unwrap();
    assert_eq!(paid.trim(), "2");

    // head office freezes B: the pull brings it, and the edge cannot lift it
    central
        .sql(&format!(
            "update public.member_cards set status = 'inactive' where id = '{}'",
            b.card_id
        ))
        .unwrap();
    eventually(30, "head office's freeze arrives", || async {
        let _ = edge.sync_now().await;
        let c = edge.get(&format!("/api/v1/merchant/cards/{nb}")).await;
        (c["status"] == "inactive").then_some(())
    })
    .await;
    let (s, r) = edge
        .post(
            &format!("/api/v1/merchant/cards/{nb}/unfreeze"),
            &json!({"reason": "member asked"}),
        )
        .await;
    assert_eq!(
        (s, r["error"]["code"].as_str()),
        (409, Some("CARD_FROZEN_CENTRALLY")),
        "{r}"
    );
    assert_eq!(card_state(&b.card_id), "inactive|0|0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn settlements_reach_central() {
    let central = setup_central().await;
    let a = member(&central, 70, "500.00", 0).await;
    let b = member(&central, 71, "500.00", 0).await;
    let (qa, qb) = (
        central_qr(&central, &a).await,
        central_qr(&central, &b).await,
    );
    let edge = start_edge(&central, "S007", &central.url()).await;
    edge.wait_bootstrap(2).await;
    let rfc = |t: i64| {
        chrono::DateTime::from_timestamp(t, 0)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };

    // Two sales and a refund, then a settlement over a period that holds them.
    let start = chrono::Utc::now().timestamp() - 300;
    let pa = edge.charge(&qa, "100.00").await;
    let pb = edge.charge(&qb, "40.50").await;
    let tx_a = pa["transaction"]["tx_no"].as_str().unwrap().to_string();
    let tx_b = pb["transaction"]["tx_no"].as_str().unwrap().to_string();
    let (s, r) = edge
        .post(
            "/api/v1/merchant/refund",
            &json!({"original_tx_no": tx_a, "refund_amount": "30.00"}),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    // a period may be settled once it has ended
    let split = chrono::Utc::now().timestamp() + 1;
    while chrono::Utc::now().timestamp() < split {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (s, r) = edge
        .post(
            "/api/v1/merchant/settlements",
            &json!({"mode": "realtime", "period_start": rfc(start), "period_end": rfc(split)}),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    let total = money(&pa["transaction"]["final_amount"])
        + money(&pb["transaction"]["final_amount"])
        - 3_000;
    assert_eq!(total, 11_050);
    assert_eq!(money(&r["settlement"]["total_amount"]), total, "{r}");
    assert_eq!(r["settlement"]["tx_count"], 3, "{r}");
    let id = r["settlement"]["id"].as_str().unwrap().to_string();
    let no = r["settlement"]["settlement_no"]
        .as_str()
        .unwrap()
        .to_string();

    edge.wait_drained().await;
    let st = edge.status().await;
    assert_eq!(st["queue_depth"], 0, "{st}");
    assert_eq!(st["open_exceptions"], 0, "{st}");
    let row = central
        .sql(&format!(
            "select m.code, s.mode, s.total_amount, s.total_tx_count, s.status, s.payload->'edge'->>'site',
                    s.payload->'edge'->>'settlement_no', s.payload->'edge'->>'payment_count', s.payload->'edge'->>'refund_amount',
                    s.payload->'edge' ? 'central_total'
             from public.settlements s join public.merchants m on m.id = s.merchant_id where s.id = '{id}'"
        ))
        .unwrap();
    assert_eq!(
        row.trim(),
        format!("{MERCHANT}|realtime|110.50|3|pending|S007|{no}|2|30.00|f"),
        "central holds the edge's settlement, and its own figures agree"
    );
    let audit = central
        .sql(&format!("select count(*) from audit.event_log where action = 'SETTLEMENT_GENERATE' and object_id = '{id}'"))
        .unwrap();
    assert_eq!(audit.trim(), "1");

    // A later period holding only a refund nets negative: central cannot store it, so it
    // comes back as an exception (the refund itself applies).
    let (s, r) = edge
        .post(
            "/api/v1/merchant/refund",
            &json!({"original_tx_no": tx_b, "refund_amount": "10.00"}),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    let end2 = chrono::Utc::now().timestamp() + 1;
    while chrono::Utc::now().timestamp() < end2 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (s, r) = edge
        .post(
            "/api/v1/merchant/settlements",
            &json!({"mode": "realtime", "period_start": rfc(split), "period_end": rfc(end2)}),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(money(&r["settlement"]["total_amount"]), -1_000, "{r}");
    let id2 = r["settlement"]["id"].as_str().unwrap().to_string();
    edge.wait_drained().await;
    let st = edge.status().await;
    assert_eq!(st["queue_depth"], 0, "{st}");
    assert_eq!(st["open_exceptions"], 1, "{st}");
    let ex = edge.get("/api/v1/sync/exceptions").await;
    let e = &ex["exceptions"][0];
    assert_eq!(e["op_type"], "settlement", "{ex}");
    assert_eq!(e["reason"], "SETTLEMENT_NEGATIVE_TOTAL", "{ex}");
    assert_eq!(e["tx_no"], Value::Null, "{ex}");
    assert_eq!(money(&e["amount"]), 1_000, "{ex}");
    let central_ex = central
        .sql("select count(*) from mps_edge.exceptions where site_code = 'S007' and reason = 'SETTLEMENT_NEGATIVE_TOTAL'")
        .unwrap();
    assert_eq!(central_ex.trim(), "1");
    let stored = central
        .sql(&format!(
            "select count(*) from public.settlements where id = '{id2}'"
        ))
        .unwrap();
    assert_eq!(stored.trim(), "0");
    assert_eq!(card_row(&central, &b.card_id).0, 50_000 - 4_050 + 1_000);

    // The owner voids the first settlement: central marks its row failed with the
    // reason (upstream has no voided status), once; the period is settled again.
    let (s, r) = edge
        .post(
            &format!("/api/v1/merchant/settlements/{no}/void"),
            &json!({"reason": "counted on the wrong day"}),
        )
        .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["settlement"]["status"], "voided", "{r}");
    let (s, again) = edge
        .post(
            "/api/v1/merchant/settlements",
            &json!({"mode": "realtime", "period_start": rfc(start), "period_end": rfc(split)}),
        )
        .await;
    assert_eq!(s, 200, "{again}");
    let id3 = again["settlement"]["id"].as_str().unwrap().to_string();
    edge.wait_drained().await;
    let st = edge.status().await;
    assert_eq!(st["queue_depth"], 0, "{st}");
    assert_eq!(st["open_exceptions"], 1, "only the negative one: {st}");
    let row = central
        .sql(&format!(
            "select s.status, s.payload->'edge'->'void'->>'reason', s.payload->'edge'->'void'->>'status_before',
                    (select count(*) from audit.event_log a where a.action = 'SETTLEMENT_VOID' and a.object_id = s.id)
             from public.settlements s where s.id = '{id}'"
        ))
        .unwrap();
    assert_eq!(row.trim(), "failed|counted on the wrong day|pending|1");
    let row = central
        .sql(&format!(
            "select status, total_amount, total_tx_count from public.settlements where id = '{id3}'"
        ))
        .unwrap();
    assert_eq!(row.trim(), "pending|110.50|3");
}

/// A token that paid anywhere is refused everywhere: paid at edge A, it is refused at
/// edge B after B's next QR pull; paid at central (upstream's merchant_charge_by_qr), it
/// is refused at the edges likewise.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_token_that_paid_anywhere_is_refused_everywhere() {
    let central = setup_central().await;
    let m = member(&central, 95, "500.00", 0).await;
    let a = start_edge(&central, "S201", &central.url()).await;
    let b = start_edge(&central, "S202", &central.url()).await;
    a.wait_bootstrap(1).await;
    b.wait_bootstrap(1).await;

    let refused_at = |edge: &Edge, qr: String| {
        let (http, url, token) = (edge.http.clone(), edge.url.clone(), edge.token.clone());
        async move {
            let r = support::http::charge(&http, &url, &token, &qr, "1.00")
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            (
                status,
                body["error"]["code"].as_str().unwrap_or("").to_string(),
            )
        }
    };

    // paid at A, pushed: B learns it with its next QR pull
    let q = central_qr(&central, &m).await;
    let _ = b.sync_now().await;
    a.charge(&q, "10.00").await;
    a.wait_drained().await;
    let _ = b.sync_now().await;
    let (status, code) = refused_at(&b, q.clone()).await;
    assert_eq!(
        (status, code.as_str()),
        (422, "QR_EXPIRED_OR_INVALID"),
        "edge B"
    );

    // paid at central itself: both edges learn it
    let q2 = central_qr(&central, &m).await;
    let _ = a.sync_now().await;
    let login = central
        .rpc(
            "merchant_login",
            &json!({"p_merchant_code": MERCHANT, "p_password": "merchant-pass"}),
        )
        .await
        .unwrap();
    let session = login.json["session_id"].as_str().unwrap().to_string();
    let r = central
        .rpc(
            "merchant_charge_by_qr",
            &json!({"p_merchant_code": MERCHANT, "p_qr_plain": q2, "p_raw_amount": 5, "p_session_id": session}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text);
    for edge in [&a, &b] {
        let _ = edge.sync_now().await;
        let (status, code) = refused_at(edge, q2.clone()).await;
        assert_eq!((status, code.as_str()), (422, "QR_EXPIRED_OR_INVALID"));
    }
    // central took 10.00 from A's push and 5.00 itself: nothing else
    assert_eq!(card_row(&central, &m.card_id).0, 50_000 - 1_500);
}

/// Head office revokes a store's site key: its next push and pull are refused at once,
/// nothing more is applied, the store keeps selling and says why it stopped; a forged
/// store (a key for another site) is refused outright.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_site_is_refused_at_once_and_says_why() {
    let central = setup_central().await;
    let a = member(&central, 90, "100.00", 0).await;
    let b = member(&central, 91, "100.00", 0).await;
    let (qr_a, qr_b) = (
        central_qr(&central, &a).await,
        central_qr(&central, &b).await,
    );
    let edge = start_edge(&central, "S009", &central.url()).await;
    edge.wait_bootstrap(2).await;
    edge.charge(&qr_a, "10.00").await;
    edge.wait_drained().await;
    assert_eq!(card_row(&central, &a.card_id).0, 9000);

    // every sync reports a heartbeat: central keeps it, head office lists it, and the
    // store shows when central last heard from it and the clock skew central measured
    let (code, _) = edge.sync_now().await;
    assert_eq!(code, 200);
    let s = edge.status().await;
    assert!(s["last_heartbeat_at"].is_string(), "{s}");
    assert!(
        s["clock_skew_secs"].as_f64().is_some_and(|k| k.abs() < 5.0),
        "{s}"
    );
    let site_row = |list: &RpcResponse| {
        list.json["sites"]
            .as_array()
            .and_then(|a| a.iter().find(|r| r["site_code"] == "S009").cloned())
            .unwrap_or(Value::Null)
    };
    let list = central.rpc("edge_list_sites", &json!({})).await.unwrap();
    let row = site_row(&list);
    assert_eq!(row["queue_depth"], 0, "{}", list.text);
    assert_eq!(row["version"], env!("CARGO_PKG_VERSION"), "{}", list.text);
    assert_eq!(row["flags"], json!([]), "{}", list.text);

    let r = central
        .rpc("edge_revoke_site", &json!({"p_site_code": "S009"}))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text);

    // the store keeps selling offline; the sale waits in the outbox
    edge.charge(&qr_b, "5.00").await;
    let _ = edge.sync_now().await;
    let s = eventually(30, "push stopped by the revocation", || {
        let edge = &edge;
        async move {
            let s = edge.status().await;
            (s["push"]["state"] == "stopped").then_some(s)
        }
    })
    .await;
    let why = s["push"]["error"].as_str().unwrap_or_default();
    assert!(why.contains("revoked this store's site key"), "{s}");
    assert_eq!(s["queue_depth"], 1, "{s}");
    assert!(
        s["problems"].as_array().is_some_and(|p| p
            .iter()
            .any(|l| l.as_str().unwrap_or("").contains("revoked"))),
        "{s}"
    );
    // central applied nothing after the revocation, and head office sees it
    assert_eq!(card_row(&central, &b.card_id).0, 10000);
    let list = central.rpc("edge_list_sites", &json!({})).await.unwrap();
    assert!(
        site_row(&list)["flags"]
            .as_array()
            .is_some_and(|f| f.contains(&json!("revoked"))),
        "{}",
        list.text
    );
    assert_eq!(
        central
            .sql("select count(*) from public.transactions where tx_no like 'PAY-S009-%'")
            .unwrap(),
        "1"
    );

    // another store's key cannot speak for this site
    let other = central.register_site(MERCHANT, "S010").await;
    let forged = Edge::start_keyed("S009", &central.url(), &central.anon_key, &other).await;
    let s = eventually(30, "the forged store is refused", || {
        let forged = &forged;
        async move {
            let _ = forged.sync_now().await;
            let s = forged.status().await;
            (s["pull"]["state"] == "stopped").then_some(s)
        }
    })
    .await;
    assert!(
        s["pull"]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("another store"),
        "{s}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_and_sync_commands_check_the_link_to_central() {
    let central = setup_central().await;
    member(&central, 70, "10.00", 0).await;
    let dir = tempfile::tempdir().unwrap();
    let site_key = central.register_site(MERCHANT, "S008").await;
    let write_config = |creds: Creds, merchant: &str| {
        store_config(dir.path(), "S008", &central.url(), creds, merchant, "")
    };
    let good = write_config(Creds::Site(&central.anon_key, &site_key), MERCHANT);
    // `sync now` bootstraps the replica; `sync status --json` reports it.
    let (ok, _, err) = cli(&good, &["sync", "now"]);
    assert!(ok, "{err}");
    let (_, out, _) = cli(&good, &["sync", "status", "--json"]);
    let status: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(status["replica"]["merchant"], 1);
    assert_eq!(status["replica"]["cards"], 1);
    assert_eq!(status["queue_depth"], 0);
    let (ok, text, _) = cli(&good, &["doctor"]);
    assert!(ok, "{text}");
    assert!(
        text.contains("ok: central reachable, key accepted"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "ok: central knows the site key as site S008 of merchant {MERCHANT}"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("ok: merchant {MERCHANT} found")),
        "{text}"
    );
    // A site key central does not know, one for another merchant, and the service key
    // are each a problem line that says what to do.
    let unknown_key = write_config(
        Creds::Site(&central.anon_key, "mps_site_not-a-key-central-issued"),
        MERCHANT,
    );
    let (ok, text, _) = cli(&unknown_key, &["doctor"]);
    assert!(!ok);
    assert!(
        text.contains("PROBLEM: central: central does not know this store's site key"),
        "{text}"
    );
    let wrong_merchant = write_config(Creds::Site(&central.anon_key, &site_key), "NOPE");
    let (ok, text, _) = cli(&wrong_merchant, &["doctor"]);
    assert!(!ok);
    assert!(
        text.contains(&format!(
            "PROBLEM: central: the site key belongs to site S008 of merchant {MERCHANT}, but this store is configured as site S008 of merchant NOPE"
        )),
        "{text}"
    );
    let service = write_config(Creds::Service(&central.service_key), MERCHANT);
    let (ok, text, _) = cli(&service, &["doctor"]);
    assert!(!ok);
    assert!(
        text.contains("PROBLEM: central.service_key: this store holds central's service_role key"),
        "{text}"
    );
    // ... which still works while the store is migrated
    assert!(
        text.contains("ok: central reachable, key accepted"),
        "{text}"
    );
    // a key central refuses outright
    let bad = write_config(Creds::Service(&central.anon_key), MERCHANT);
    let (ok, text, _) = cli(&bad, &["doctor"]);
    assert!(!ok);
    assert!(
        text.contains("PROBLEM: central: central needs a site key"),
        "{text}"
    );
}

/// How a test store proves who it is to central.
#[derive(Clone, Copy)]
enum Creds<'a> {
    /// anon key, site key
    Site(&'a str, &'a str),
    Service(&'a str),
}

/// `<dir>/config.toml` for a store at `url` (keys in `<dir>/anon_key` + `<dir>/site_key`
/// or `<dir>/service_key`, 0600; data in `<dir>/data`); `central_extra` is appended to
/// the `[central]` section.
fn store_config(
    dir: &std::path::Path,
    site: &str,
    url: &str,
    creds: Creds,
    merchant: &str,
    central_extra: &str,
) -> std::path::PathBuf {
    let key_file = |name: &str, key: &str| {
        let f = dir.join(name);
        std::fs::write(&f, key).unwrap();
        set_mode(&f, 0o600);
        format!("{name}_file = {f:?}\n")
    };
    let keys = match creds {
        Creds::Site(anon, site_key) => key_file("anon_key", anon) + &key_file("site_key", site_key),
        Creds::Service(key) => key_file("service_key", key),
    };
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n[site]\ncode = \"{site}\"\n[central]\nurl = {url:?}\n{keys}merchant_code = \"{merchant}\"\n{central_extra}",
            dir.join("data"),
        ),
    )
    .unwrap();
    config
}

fn set_mode(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn mode_of(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Runs the real binary with `--config` (logs kept quiet).
fn cli(config: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = support::binary::cli(Install::Config(config), args);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// Polls `check` every 200 ms until it returns `Some`, for at most `secs`.
async fn eventually<T, F, Fut>(secs: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The push and pull pipelines fail, stop and recover independently; a SQL error inside
/// central's function is reported as what it is; `/ready`, `doctor` and `sync status` turn
/// red once it lasts; the command line's `sync now` clears a stop of the running server.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pushes_and_pulls_fail_apart_and_are_diagnosed_right() {
    let central = setup_central().await;
    let a = member(&central, 81, "300.00", 0).await;
    let b = member(&central, 82, "300.00", 0).await;
    let c = member(&central, 83, "300.00", 0).await;
    let (qr_b, qr_c) = (
        central_qr(&central, &b).await,
        central_qr(&central, &c).await,
    );

    // A store configured through a file, as an operator does: key file 0600, short
    // pull interval and alert threshold so the test stays short.
    let dir = tempfile::tempdir().unwrap();
    let site_key = central.register_site(MERCHANT, "S081").await;
    let config = store_config(
        dir.path(),
        "S081",
        &central.url(),
        Creds::Site(&central.anon_key, &site_key),
        MERCHANT,
        "alert_after_secs = 10\npull_interval_secs = 5\n",
    );
    let key_file = dir.path().join("site_key");

    // doctor before the first serve: no database yet is information, the link is checked
    let (ok, out, _) = cli(&config, &["doctor"]);
    assert!(ok, "{out}");
    assert!(out.contains("info: no database yet"), "{out}");
    assert!(out.contains("ok: central reachable, key accepted"), "{out}");
    assert!(
        out.contains("ok: central runs the sync functions (11 probes"),
        "{out}"
    );
    // ... and a key file others can read is a problem, with the fix
    set_mode(&key_file, 0o644);
    let (ok, out, _) = cli(&config, &["doctor"]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("PROBLEM: central.site_key_file:") && out.contains("chmod o-rwx"),
        "{out}"
    );
    set_mode(&key_file, 0o600);

    let cfg = mps_edge::config::Config::load(Some(&config), &Default::default()).unwrap();
    let edge = start_edge_with(cfg, dir).await;
    edge.wait_bootstrap(3).await;
    // the files the edge creates are its own: database, WAL, JWT secret
    let data = edge.dir.path().join("data");
    for f in ["mps-edge.db", "mps-edge.db-wal", "mps-edge.db-shm"] {
        let p = data.join(f);
        if p.exists() {
            assert_eq!(mode_of(&p), 0o600, "{f}");
        }
    }
    assert_eq!(mode_of(&data.join("mps-edge.db")), 0o600);

    // 1. central's batch function fails INSIDE (the original bug: upstream's trigger
    //    under search_path = ''). The charge is taken offline-first and waits.
    central
        .sql("alter function mps_edge.apply_charge(jsonb, text, public.merchants, timestamptz) set search_path = ''")
        .unwrap();
    // doctor sees it at once, before any sale is pushed (central's self test)
    let (ok, out, _) = cli(&config, &["doctor"]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("PROBLEM: central: mps_edge.apply_charge(")
            && out.contains("SQLSTATE 42883: function now_utc() does not exist"),
        "{out}"
    );
    edge.charge(&qr_b, "10.00").await;
    let (code, body) = edge.sync_now().await;
    assert_eq!(code, 503, "{body}");
    let msg = body["error"]["message"].as_str().unwrap().to_string();
    assert!(
        msg.contains("SQLSTATE 42883") && msg.contains("now_utc"),
        "{msg}"
    );
    assert!(
        !msg.contains("has no function"),
        "not 'not installed': {msg}"
    );
    let s = edge.status().await;
    assert_eq!(s["push"]["state"], "failing", "{s}");
    assert_eq!(s["queue_depth"], 1, "{s}");
    assert_eq!(s["pull"]["state"], "ok", "pulls go on: {s}");

    // 2. pulls never wait on pushes: a card frozen centrally is refused within one pull
    //    interval (5 s here), while every push still fails
    let qr_a2 = central_qr(&central, &a).await;
    central
        .sql(&format!(
            "update public.member_cards set status = 'inactive' where id = '{}'",
            a.card_id
        ))
        .unwrap();
    let frozen = Instant::now();
    eventually(20, "the central freeze pulled", || {
        let id = a.card_id.clone();
        let db = edge.db.clone();
        async move {
            let status: String = db
                .read(move |c| {
                    Ok(c.query_row("SELECT status FROM cards WHERE id = ?1", [id], |r| r.get(0))?)
                })
                .await
                .unwrap();
            (status != "active").then_some(())
        }
    })
    .await;
    eprintln!(
        "central freeze reached the edge after {:?}",
        frozen.elapsed()
    );
    assert!(
        frozen.elapsed() < Duration::from_secs(12),
        "{:?}",
        frozen.elapsed()
    );
    let (code, refused) = edge
        .post(
            "/api/v1/merchant/charge",
            &json!({"qr_plain": qr_a2, "amount": "1.00"}),
        )
        .await;
    assert_eq!(code, 422, "{refused}");
    assert_eq!(refused["error"]["code"], "CARD_NOT_ACTIVE", "{refused}");
    let s = edge.status().await;
    assert_eq!(s["push"]["state"], "failing", "{s}");
    assert_eq!(s["queue_depth"], 1, "{s}");

    // 3. past central.alert_after_secs (10 s) the failure is a problem: /ready, doctor,
    //    sync status, with the cause
    let reasons = eventually(20, "/ready turns not ready", || {
        let edge = &edge;
        async move {
            let r = edge
                .http
                .get(format!("{}/ready", edge.url))
                .send()
                .await
                .unwrap();
            (r.status() == 503).then_some(())?;
            Some(r.json::<Value>().await.unwrap()["reasons"].to_string())
        }
    })
    .await;
    assert!(
        reasons.contains("push to central has failed for") && reasons.contains("SQLSTATE 42883"),
        "{reasons}"
    );
    let (ok, out, _) = cli(&config, &["doctor"]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("PROBLEM: sync: push to central has failed for") && out.contains("now_utc"),
        "{out}"
    );
    let (_, out, _) = cli(&config, &["sync", "status"]);
    assert!(out.contains("FAILING for"), "{out}");

    // 4. the reverse: pulls stop (execute right revoked), pushes go on once central is fixed
    central
        .sql("alter function mps_edge.apply_charge(jsonb, text, public.merchants, timestamptz) set search_path = public, extensions, pg_temp")
        .unwrap();
    central
        .sql("revoke execute on function public.edge_pull_changes(text, text, text, timestamptz, uuid, int) from anon")
        .unwrap();
    let s = eventually(30, "pull stopped, push drained", || {
        let edge = &edge;
        async move {
            let s = edge.status().await;
            (s["pull"]["state"] == "stopped" && s["queue_depth"] == 0 && s["push"]["state"] == "ok")
                .then_some(s)
        }
    })
    .await;
    assert!(
        s["pull"]["error"]
            .as_str()
            .unwrap()
            .contains("check central.anon_key and central.site_key"),
        "{s}"
    );
    assert_eq!(
        card_row(&central, &b.card_id).0,
        29_000,
        "charged once centrally"
    );
    assert_eq!(
        card_row(&central, &a.card_id).0,
        30_000,
        "the frozen card untouched"
    );
    // a charge while pulls are stopped still reaches central
    edge.charge(&qr_c, "5.00").await;
    eventually(20, "the second charge pushed", || {
        let edge = &edge;
        async move { (edge.status().await["queue_depth"] == 0).then_some(()) }
    })
    .await;
    assert_eq!(card_row(&central, &c.card_id).0, 29_500);

    // 5. the stop stays until someone acts; `mps-edge sync now` on the command line
    //    clears it for the running server, like POST /api/v1/sync/now
    central
        .sql("grant execute on function public.edge_pull_changes(text, text, text, timestamptz, uuid, int) to anon")
        .unwrap();
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(edge.status().await["pull"]["state"], "stopped");
    let (ok, out, err) = cli(&config, &["sync", "now"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("\"ok\":true"), "{out}");
    let s = edge.status().await;
    assert_eq!(s["pull"]["state"], "ok", "{s}");
    assert_eq!(s["push"]["state"], "ok", "{s}");
    assert_eq!(s["problems"], json!([]), "{s}");
    // the server's own loop runs again: a card unfrozen centrally comes back
    central
        .sql(&format!(
            "update public.member_cards set status = 'active' where id = '{}'",
            a.card_id
        ))
        .unwrap();
    let qr = central_qr(&central, &a).await;
    eventually(20, "the unfrozen card charges again", || {
        let edge = &edge;
        let qr = qr.clone();
        async move {
            let (code, _) = edge
                .post(
                    "/api/v1/merchant/charge",
                    &json!({"qr_plain": qr, "amount": "1.00"}),
                )
                .await;
            (code == 200).then_some(())
        }
    })
    .await;
    let r = edge
        .http
        .get(format!("{}/ready", edge.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// Head office's daemon, signing with the site's secret, runs a real cycle: a 200 with
/// the cycle's report, and afterwards its status shows the outbox drained and the push
/// recorded, the sale being at central.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_signed_daemon_sync_runs_a_cycle_against_central() {
    const SECRET: &str = "s090-head-office-daemon-secret-0123456789";
    /// Signed as the README says, with the HMAC crate directly (not the server's code).
    async fn daemon(edge: &Edge, method: &str, path: &str, body: &[u8]) -> (u16, Value) {
        use hmac::Mac;
        let ts = chrono::Utc::now().timestamp().to_string();
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(format!("{ts}\n{method}\n{path}\n").as_bytes());
        mac.update(body);
        let r = edge
            .http
            .request(method.parse().unwrap(), format!("{}{path}", edge.url))
            .header("x-ingest-ts", ts)
            .header("x-ingest-sign", hex::encode(mac.finalize().into_bytes()))
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    let central = setup_central().await;
    let m = member(&central, 80, "300.00", 0).await;
    let q = central_qr(&central, &m).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config {
        data_dir: dir.path().join("data"),
        ..Config::default()
    };
    // Set up the way a store is: the anon key and its own site key.
    let site_key = central.register_site(MERCHANT, "S090").await;
    cfg.site.code = "S090".into();
    cfg.server.rate_limit_per_sec = 0;
    cfg.central.url = central.url();
    cfg.central.anon_key = mps_edge::config::Secret::new(central.anon_key.clone());
    cfg.central.site_key = mps_edge::config::Secret::new(site_key);
    cfg.central.merchant_code = MERCHANT.into();
    cfg.daemon.secret = mps_edge::config::Secret::new(SECRET);
    let edge = start_edge_with(cfg, dir).await;
    edge.wait_bootstrap(1).await;
    edge.charge(&q, "40.00").await;

    let (s, report) = daemon(&edge, "POST", "/api/v1/daemon/sync", b"{}").await;
    assert_eq!(s, 200, "{report}");
    assert_eq!(report["ok"], true, "{report}");
    assert!(report["push"]["batches"].is_u64() && report["pull"]["pages"].is_u64());
    let (s, status) = daemon(&edge, "GET", "/api/v1/daemon/status", b"").await;
    assert_eq!(s, 200, "{status}");
    assert_eq!(status["site_code"], "S090");
    assert_eq!(status["mode"], "central");
    assert_eq!(status["central_configured"], true);
    assert_eq!(status["online"], true);
    assert_eq!(status["queue_depth"], 0, "{status}");
    assert_eq!(status["push"]["state"], "ok", "{status}");
    assert!(status["last_push_ok_at"].is_string(), "{status}");
    assert!(status["last_pull_ok_at"].is_string(), "{status}");
    assert_eq!(card_row(&central, &m.card_id).0, 26_000);
}

/// A long queue drains two batches at a time (disjoint cards, so central applies them in
/// two backends at once) and still applies each card's ops in order, exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_long_queue_drains_two_batches_at_once_each_card_in_order() {
    use mps_edge::db::cards::put_qr_state;
    use mps_edge::db::ledger::{commit_charge, ChargeCmd};
    use mps_edge::db::users::Actor;

    const CARDS: usize = 500;
    let central = setup_central().await;
    // cards and mq1 tokens straight into central's tables (as edge_issue_qr leaves them)
    central
        .sql(&format!(
            "insert into public.member_cards(card_type, balance, status) select 'standard', 100.00, 'active' from generate_series(1, {CARDS});
             insert into mps_edge.qr_issued (verifier, card_id, token_hash, issued_at, expires_at)
             select encode(extensions.digest('mq1.' || replace(id::text, '-', '') || '.lane' || id::text || k, 'sha256'), 'hex'),
                    id, 'lane-hash-' || id || k, now(), now() + interval '1 day'
               from public.member_cards, generate_series(1, 2) k"
        ))
        .unwrap();
    let (proxy, edge) = edge_via_proxy(&central, "SLANE").await;
    edge.wait_bootstrap(CARDS as i64).await;
    let ids: Vec<String> = central
        .sql("select id from public.member_cards where card_type = 'standard' and owner_member_id is null order by id")
        .unwrap()
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(ids.len(), CARDS);

    // Offline: one sale on every card, then a second one on every fifth card.
    proxy.set_mode(Mode::Refuse);
    let sales: Vec<(String, usize, i64)> = ids
        .iter()
        .map(|id| (id.clone(), 1, 150))
        .chain(ids.iter().step_by(5).map(|id| (id.clone(), 2, 275)))
        .collect();
    let limits = mps_edge::config::Config::default().limits();
    let queued = sales.clone();
    edge.db
        .write(move |c| {
            let now = chrono::Utc::now();
            for (id, k, cents) in queued {
                let hash = format!("lane-hash-{id}{k}");
                put_qr_state(
                    c,
                    &id,
                    &hash,
                    now.timestamp() + 3600,
                    &now.to_rfc3339(),
                    None,
                )?;
                commit_charge(
                    c,
                    ChargeCmd {
                        qr_plain: format!("mq1.{}.lane{id}{k}", id.replace('-', "")),
                        card_id: id,
                        presented: mps_edge::domain::qr::Presented::State { token_hash: hash },
                        raw_cents: cents,
                        idem: None,
                        external_order_id: None,
                        tag: json!({}),
                        actor: Actor::system("lane-test"),
                        site_code: "SLANE".into(),
                        limits: limits.clone(),
                        single_use: true,
                        now,
                    },
                )?;
            }
            Ok(())
        })
        .await
        .unwrap();

    proxy.set_mode(Mode::Pass);
    proxy.reset_counters();
    edge.wait_drained().await;
    assert!(
        proxy.most_at_once("/rpc/edge_apply_batch") >= 2,
        "two batches were never in flight together"
    );
    let applied = central
        .sql("select count(*), count(distinct tx_no) from public.transactions where tag->'edge'->>'site' = 'SLANE'")
        .unwrap();
    assert_eq!(applied.trim(), format!("{}|{}", sales.len(), sales.len()));
    assert_eq!(
        central
            .sql("select count(*) from mps_edge.exceptions where site_code = 'SLANE'")
            .unwrap()
            .trim(),
        "0"
    );
    // each card's ops applied in its own order: the point ledger runs 0 → 1 → 3
    let ledger = central
        .sql(
            "select string_agg(l.balance_before || '>' || l.balance_after, ',' order by l.balance_before)
               from public.point_ledger l join public.transactions t on t.id = l.tx_id
              where t.tag->'edge'->>'site' = 'SLANE' group by l.card_id order by 1",
        )
        .unwrap();
    let mut chains: Vec<&str> = ledger
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    chains.dedup();
    assert_eq!(chains, vec!["0>1", "0>1,1>3"]);
    for (i, id) in ids.iter().enumerate() {
        let want = 10_000 - 150 - if i % 5 == 0 { 275 } else { 0 };
        assert_eq!(card_row(&central, id).0, want, "card {i}");
        assert_eq!(edge.available(id), want, "card {i} at the edge");
    }
}

/// Offline payment codes (mq2, issue 11) end to end. The member's app (the JavaScript
/// reference, clients/js/mq2.js) enrols while online; the store loses central; the app,
/// with no network, makes codes from a chain whose epoch was 20 hours ago (the store's
/// first check walks ~1,200 hashes) and the store accepts them; a replay and forgeries
/// made from what the store holds are refused; central, back, applies each sale exactly
/// once and records the same used slots; a revoked chain is refused after the next pull.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn offline_codes_from_the_members_app_pay_while_central_is_away() {
    let Some(node) = support::app::node() else {
        return;
    };
    let central = setup_central().await;
    let m = member(&central, 90, "300.00", 0).await;
    let (proxy, edge) = edge_via_proxy(&central, "S020").await;
    edge.wait_bootstrap(1).await;

    // Enrolment, online: the app draws a seed and sends central only the anchor.
    let seed = {
        use base64::Engine;
        let mut s = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut s);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
    };
    let now_ms = chrono::Utc::now().timestamp_millis();
    let epoch_ms = (now_ms - 20 * 3_600_000) / 60_000 * 60_000;
    let slots = 2 * 1440;
    let chain = support::app::enrol(&node, &seed, 60, slots, epoch_ms);
    let login = central
        .rpc(
            "member_login",
            &json!({"p_identifier": m.phone, "p_password": "member-pass"}),
        )
        .await
        .unwrap();
    let session = login.json["session_id"].as_str().unwrap().to_string();
    let r = central
        .rpc(
            "edge_enroll_offline_qr",
            &json!({"p_card_id": m.card_id, "p_anchor": chain.anchor, "p_slot_secs": 60,
                    "p_epoch": chain.epoch, "p_slots": slots, "p_session_id": session}),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json[0]["chain_id"], chain.chain_id.as_str());
    // The store pulls the chain (the frequent QR pull carries chains too).
    let _ = edge.sync_now().await;
    eventually(20, "the chain reaches the edge", || async {
        (edge.status().await["replica"]["qr_chains"] == 1).then_some(())
    })
    .await;

    // Central goes away. The app makes codes for now and the next two minutes (a member
    // paying three times in a row shows the next slot's code each time).
    proxy.set_mode(Mode::Refuse);
    let now_ms = chrono::Utc::now().timestamp_millis();
    let codes = support::app::codes(
        &node,
        &chain,
        &m.card_id,
        &[now_ms, now_ms + 60_000, now_ms + 120_000],
    );
    let first = edge.charge(&codes[0], "20.00").await;
    let (s, b) = edge
        .post(
            "/api/v1/merchant/charge",
            &json!({"qr_plain": codes[0], "amount": "20.00"}),
        )
        .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (422, Some("QR_ALREADY_USED")),
        "replay: {b}"
    );
    let second = edge.charge(&codes[1], "5.00").await;
    // Forgeries from what the store holds: the used values (and their hashes) relabelled
    // as the next slot, or the anchor. None is a value of a later slot.
    let used = mps_edge::domain::mq2::parse(&codes[1]).unwrap();
    let b64 = |v: &[u8]| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v)
    };
    let hex = m.card_id.replace('-', "");
    let next = used.slot + 1;
    for value in [
        b64(&used.value),
        b64(&mps_edge::domain::mq2::hash(&used.value)),
        chain.anchor.clone(),
    ] {
        let forged = format!("mq2.{hex}.{}.{next}.{value}", chain.chain_id);
        let (s, b) = edge
            .post(
                "/api/v1/merchant/charge",
                &json!({"qr_plain": forged, "amount": "1.00"}),
            )
            .await;
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (422, Some("QR_EXPIRED_OR_INVALID")),
            "forged: {b}"
        );
    }
    let third = edge.charge(&codes[2], "7.50").await;
    let balance_after = money(&third["customer_info"]["balance_after"]);
    assert!(money(&first["customer_info"]["balance_after"]) > balance_after);
    assert!(second["transaction"]["tx_no"].is_string());
    assert_eq!(edge.status().await["queue_depth"], 3);

    // Central is back: the three sales apply exactly once, each code checked centrally.
    proxy.set_mode(Mode::Pass);
    edge.wait_drained().await;
    let _ = edge.sync_now().await;
    assert_eq!(card_row(&central, &m.card_id).0, balance_after);
    assert_eq!(edge.available(&m.card_id), balance_after);
    assert_eq!(edge.status().await["open_exceptions"], 0);
    let slots_used = central
        .sql(&format!(
            "select string_agg(slot::text || '@' || site_code, ',' order by slot) from mps_edge.qr_chain_slots where card_id = '{}'",
            m.card_id
        ))
        .unwrap();
    let expected: Vec<String> = codes
        .iter()
        .map(|c| format!("{}@S020", mps_edge::domain::mq2::parse(c).unwrap().slot))
        .collect();
    assert_eq!(slots_used.trim(), expected.join(","));
    let applied = central
        .sql("select count(*) from mps_edge.applied_ops where site_code = 'S020' and status = 'applied'")
        .unwrap();
    assert_eq!(applied.trim(), "3");
    // Central's record of the chain equals the store's.
    let central_used = central
        .sql(&format!(
            "select used_through from mps_edge.qr_chains where card_id = '{}'",
            m.card_id
        ))
        .unwrap();
    let id = m.card_id.clone();
    let edge_used: i64 = edge
        .db
        .read_blocking(move |c| {
            Ok(c.query_row(
                "SELECT used_through FROM qr_chains WHERE card_id = ?1",
                [id],
                |r| r.get(0),
            )?)
        })
        .unwrap();
    assert_eq!(central_used.trim(), edge_used.to_string());
    // Pushing again applies nothing more.
    let _ = edge.sync_now().await;
    assert_eq!(
        central
            .sql("select count(*) from mps_edge.applied_ops where site_code = 'S020' and status = 'applied'")
            .unwrap()
            .trim(),
        "3"
    );

    // A lost phone: the member revokes the chain; after the store's next pull a fresh code
    // of the chain is refused and says why.
    let r = central
        .rpc(
            "edge_revoke_offline_qr",
            &json!({"p_card_id": m.card_id, "p_session_id": session}),
        )
        .await
        .unwrap();
    assert_eq!((r.status, r.json.as_i64()), (200, Some(1)), "{}", r.text);
    let _ = edge.sync_now().await;
    let later = support::app::codes(
        &node,
        &chain,
        &m.card_id,
        &[chrono::Utc::now().timestamp_millis() + 120_000],
    );
    let (s, b) = edge
        .post(
            "/api/v1/merchant/charge",
            &json!({"qr_plain": later[0], "amount": "1.00"}),
        )
        .await;
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (422, Some("QR_CHAIN_REVOKED")),
        "{b}"
    );
}
