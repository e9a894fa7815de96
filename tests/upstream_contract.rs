//! Acceptance of the edge against central's OWN code: run with
//! `MPS_UPSTREAM_DIR=<checkout of superkevinyen/MemberPaymentSystem>` (what
//! `scripts/upstream-acceptance.sh` does), the central is the real upstream SQL
//! behind our Supabase stand-in; without it, our fixture
//! (`tests/fixtures/central/upstream.sql`), which must behave the same wherever
//! the edge meets it.
//!
//! * Twin charges: pairs of identical cards (same balance, points, level and
//!   corporate discount); card A is charged by upstream's `merchant_charge_by_qr`
//!   as a logged-in merchant, card B at an edge that then syncs. Every effect
//!   central keeps (transaction row, card, point ledger, audit row) must be
//!   identical for the twins.
//! * `edge_issue_qr` called the way real callers reach it through PostgREST: a
//!   member with a custom session, a Supabase-Auth super admin, an anonymous
//!   caller on connections a member login left its identity on, and a member
//!   asking for someone else's card.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use mps_edge::domain::money::parse_decimal_cents;
use serde_json::{json, Value};
use support::edge::{money, Edge, MERCHANT};
use support::{pg, Central, RpcResponse, JWT_SECRET};

const MERCHANT_PW: &str = "merchant-pass";
const MEMBER_PW: &str = "member-pass";

fn flavour_banner(test: &str) {
    eprintln!("[{test}] central: {}", pg::central_flavour());
}

async fn setup_central() -> Central {
    let central = Central::start().await.unwrap();
    central
        .sql(&format!(
            "insert into public.merchants(code, name, status, password_hash) values ('{MERCHANT}', 'Shop One', 'active', extensions.crypt('{MERCHANT_PW}', extensions.gen_salt('bf')))"
        ))
        .unwrap();
    central
}

fn ok(r: &RpcResponse, what: &str) {
    assert_eq!(r.status, 200, "{what}: {}", r.text);
}

// ---------------------------------------------------------------------------
// central-side helpers

struct Member {
    id: String,
    phone: String,
    card_id: String,
}

/// A member (through upstream's `create_member_profile`) with its auto-issued
/// standard card recharged to `balance` and seeded with `points`.
async fn member(central: &Central, n: usize, balance: &str, points: i64) -> Member {
    let phone = format!("0911{n:06}");
    let r = central
        .rpc(
            "create_member_profile",
            &json!({"p_name": format!("Member {n}"), "p_phone": phone, "p_email": null, "p_password": MEMBER_PW}),
        )
        .await
        .unwrap();
    ok(&r, "create_member_profile");
    let id = r.json.as_str().unwrap().to_string();
    let card_id = central
        .sql(&format!(
            "select id from public.member_cards where owner_member_id = '{id}' and card_type = 'standard'"
        ))
        .unwrap();
    if balance != "0" {
        let r = central
            .rpc(
                "user_recharge_card",
                &json!({"p_card_id": card_id, "p_amount": balance}),
            )
            .await
            .unwrap();
        ok(&r, "user_recharge_card");
    }
    if points > 0 {
        let r = central
            .rpc(
                "update_points_and_level",
                &json!({"p_card_id": card_id, "p_delta_points": points, "p_reason": "seed"}),
            )
            .await
            .unwrap();
        ok(&r, "update_points_and_level");
    }
    Member { id, phone, card_id }
}

/// `member_login` through the gateway with the anon key, as a member's app does.
async fn member_session(central: &Central, m: &Member) -> String {
    let r = central
        .rpc_as(
            &central.anon_key,
            "member_login",
            &json!({"p_identifier": m.phone, "p_password": MEMBER_PW}),
        )
        .await
        .unwrap();
    ok(&r, "member_login");
    r.json["session_id"].as_str().unwrap().to_string()
}

/// A legacy QR from upstream's `rotate_card_qr`, issued by the member's session.
async fn rotate_qr(central: &Central, card_id: &str, session: &str) -> String {
    let r = central
        .rpc_as(
            &central.anon_key,
            "rotate_card_qr",
            &json!({"p_card_id": card_id, "p_ttl_seconds": 3600, "p_session_id": session}),
        )
        .await
        .unwrap();
    ok(&r, "rotate_card_qr");
    r.json[0]["qr_plain"].as_str().unwrap().to_string()
}

/// An HS256 JWT like Supabase Auth issues for a signed-in user.
fn user_jwt(sub: &str) -> String {
    let claims = json!({
        "iss": "supabase", "aud": "authenticated", "role": "authenticated", "sub": sub,
        "iat": 1_700_000_000u64, "exp": 4_102_444_800u64,
    });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap()
}

/// A Supabase-Auth super admin: an auth.users row plus an active admin_users
/// row; returns its `authenticated` JWT.
fn super_admin(central: &Central) -> String {
    let uid = "6f1d2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b";
    central
        .sql(&format!(
            "insert into auth.users(id, email) values ('{uid}', 'admin@example.test');
             insert into public.admin_users(auth_user_id, name, role, is_active) values ('{uid}', 'Admin', 'super_admin', true)"
        ))
        .unwrap();
    user_jwt(uid)
}

/// Everything central keeps about a card that a charge affects, as text, with
/// the identifiers that legitimately differ between twins left out (ids,
/// tx_no, timestamps, the edge's `tag.edge`).
fn central_effects(central: &Central, card_id: &str) -> String {
    let card = central
        .sql(&format!(
            "select card_type, status, balance, points, coalesce(level::text, 'null'), discount,
                    coalesce(corporate_discount::text, 'null')
               from public.member_cards where id = '{card_id}'"
        ))
        .unwrap();
    let txs = central
        .sql(&format!(
            "select t.tx_type, t.status, t.raw_amount, t.discount_applied, t.final_amount, t.points_earned,
                    coalesce(t.payment_method::text, 'null'), coalesce(t.reason, 'null'),
                    coalesce(m.code, 'null'), coalesce(t.external_order_id, 'null'),
                    coalesce(t.idempotency_key, 'null'), coalesce(t.original_tx_id::text, 'null'),
                    coalesce(t.processed_by_user_id::text, 'null'), t.tag - 'edge',
                    (select count(*) from public.tx_registry r where r.tx_id = t.id and r.tx_no = t.tx_no)
               from public.transactions t left join public.merchants m on m.id = t.merchant_id
              where t.card_id = '{card_id}' order by t.created_at, t.tx_type"
        ))
        .unwrap();
    let ledger = central
        .sql(&format!(
            "select l.change, l.balance_before, l.balance_after, coalesce(l.reason, 'null'),
                    coalesce(t.tx_type::text, case when l.tx_id is null then 'no tx' else 'dangling' end),
                    coalesce(t.raw_amount::text, '-')
               from public.point_ledger l left join public.transactions t on t.id = l.tx_id
              where l.card_id = '{card_id}' order by l.created_at, l.balance_before, l.change"
        ))
        .unwrap();
    let audit = central
        .sql(&format!(
            "select e.action, e.object_type, coalesce(e.actor_user_id::text, 'null'), e.context - 'edge'
               from audit.event_log e join public.transactions t on t.id = e.object_id
              where t.card_id = '{card_id}' and t.tx_type = 'payment' order by t.created_at"
        ))
        .unwrap();
    format!("card: {card}\ntransactions:\n{txs}\npoint_ledger:\n{ledger}\naudit:\n{audit}")
}

// ---------------------------------------------------------------------------
// an in-process edge (as tests/sync_e2e.rs starts one)

/// An edge registered on `central` as `site`, talking to it with the anon key and its
/// site key, as a store is set up.
async fn start_edge(central: &Central, site: &str) -> Edge {
    let key = central.register_site(MERCHANT, site).await;
    Edge::start_keyed(site, &central.url(), &central.anon_key, &key).await
}

fn discount_text(v: &Value) -> String {
    let s = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    format!("{:.3}", s.parse::<f64>().unwrap())
}

// ---------------------------------------------------------------------------
// (a) twin charges

struct Twin {
    label: &'static str,
    a: Member,
    b: Member,
    a_session: String,
    b_session: String,
}

/// Amounts charged to every twin, in order: the smallest amount, halves that
/// round away from zero under 0.95/0.90/0.85 discounts, a large one, and
/// amounts whose points cross level boundaries for the "near" twins.
const AMOUNTS: [&str; 6] = ["0.01", "0.05", "1.10", "9.99", "100.00", "1234.56"];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twin_charges_central_and_edge_leave_identical_effects() {
    flavour_banner("twin_charges");
    let central = setup_central().await;
    let admin = super_admin(&central);

    // Corporate cards (created by the super admin through upstream's own RPC):
    // binding a member copies fixed_discount into corporate_discount of the
    // member's standard card.
    let corp_owner = member(&central, 900, "0", 0).await;
    let mut corporates = Vec::new();
    for (name, fixed) in [("Corp 80", "0.800"), ("Corp 95", "0.950")] {
        let r = central
            .rpc_as(
                &admin,
                "create_corporate_card",
                &json!({"p_owner_member_id": corp_owner.id, "p_name": name, "p_initial_balance": 0, "p_fixed_discount": fixed}),
            )
            .await
            .unwrap();
        ok(&r, "create_corporate_card");
        corporates.push(r.json.as_str().unwrap().to_string());
    }

    // (label, seed points, corporate card to bind)
    let specs: [(&str, i64, Option<usize>); 8] = [
        ("level 0", 0, None),
        ("level 0, 10 points below level 1", 990, None),
        ("level 1", 1000, None),
        ("level 1, 1 point below level 2", 4999, None),
        ("level 2", 5000, None),
        ("level 3", 10000, None),
        ("corporate 0.800, level 0", 0, Some(0)),
        ("corporate 0.950, 1 point below level 2", 4999, Some(1)),
    ];
    let mut twins = Vec::new();
    for (i, (label, points, corp)) in specs.iter().enumerate() {
        let a = member(&central, 2 * i, "2000.00", *points).await;
        let b = member(&central, 2 * i + 1, "2000.00", *points).await;
        if let Some(c) = corp {
            for m in [&a, &b] {
                let r = central
                    .rpc_as(
                        &central.anon_key,
                        "bind_member_to_card",
                        &json!({"p_card_id": corporates[*c], "p_member_id": m.id, "p_role": "member"}),
                    )
                    .await
                    .unwrap();
                ok(&r, "bind_member_to_card");
            }
        }
        let (a_session, b_session) = (
            member_session(&central, &a).await,
            member_session(&central, &b).await,
        );
        twins.push(Twin {
            label,
            a,
            b,
            a_session,
            b_session,
        });
    }
    for t in &twins {
        assert_eq!(
            central_effects(&central, &t.a.card_id),
            central_effects(&central, &t.b.card_id),
            "{}: the twins start identical",
            t.label
        );
    }
    let levels: Vec<String> = twins
        .iter()
        .map(|t| {
            central
                .sql(&format!(
                    "select level || '/' || discount || '/' || coalesce(corporate_discount::text, '-') from public.member_cards where id = '{}'",
                    t.a.card_id
                ))
                .unwrap()
        })
        .collect();
    assert_eq!(
        levels,
        [
            "0/1.000/-",
            "0/1.000/-",
            "1/0.950/-",
            "1/0.950/-",
            "2/0.900/-",
            "3/0.850/-",
            "0/1.000/0.800",
            "1/0.950/0.950"
        ],
        "the seeded twins sit at the intended levels"
    );

    let merchant = central
        .rpc_as(
            &central.anon_key,
            "merchant_login",
            &json!({"p_merchant_code": MERCHANT, "p_password": MERCHANT_PW}),
        )
        .await
        .unwrap();
    ok(&merchant, "merchant_login");
    let merchant_session = merchant.json["session_id"].as_str().unwrap().to_string();

    let edge = start_edge(&central, "T001").await;
    edge.wait_bootstrap((twins.len() * 2 + 2) as i64).await;

    let mut compared = 0;
    for amount in AMOUNTS {
        for t in &twins {
            // A: upstream's own payment RPC, as the merchant's POS calls it
            let qa = rotate_qr(&central, &t.a.card_id, &t.a_session).await;
            let r = central
                .rpc_as(
                    &central.anon_key,
                    "merchant_charge_by_qr",
                    &json!({"p_merchant_code": MERCHANT, "p_qr_plain": qa, "p_raw_amount": amount, "p_session_id": merchant_session}),
                )
                .await
                .unwrap();
            ok(&r, "merchant_charge_by_qr");
            let central_row = &r.json[0];
            assert_eq!(central_row["card_id"].as_str(), Some(t.a.card_id.as_str()));

            // B: the edge
            let qb = rotate_qr(&central, &t.b.card_id, &t.b_session).await;
            let e = edge.charge(&qb, amount).await;
            assert_eq!(
                (
                    money(&e["transaction"]["final_amount"]),
                    discount_text(&e["transaction"]["discount"]),
                ),
                (
                    money(&central_row["final_amount"]),
                    discount_text(&central_row["discount"]),
                ),
                "{} charged {amount}: the edge's answer (left) vs central's (right): edge {e}, central {}",
                t.label,
                r.text
            );
        }
        edge.wait_drained().await;
        let s = edge.status().await;
        assert_eq!(
            s["open_exceptions"], 0,
            "central refused an edge operation: {s}"
        );
        for t in &twins {
            let (ea, eb) = (
                central_effects(&central, &t.a.card_id),
                central_effects(&central, &t.b.card_id),
            );
            assert_eq!(
                eb, ea,
                "{} after charging {amount}: edge twin (left) vs central twin (right)",
                t.label
            );
            compared += 1;
        }
    }
    assert!(compared >= 18, "{compared} twin comparisons");

    // The edge's replica follows central after a pull.
    let _ = edge.post("/api/v1/sync/now", &json!({})).await;
    for t in &twins {
        let central_balance = central
            .sql(&format!(
                "select balance from public.member_cards where id = '{}'",
                t.b.card_id
            ))
            .unwrap();
        assert_eq!(
            edge.available(&t.b.card_id),
            parse_decimal_cents(&central_balance).unwrap(),
            "{}",
            t.label
        );
    }
    // Both sides crossed the same level boundaries.
    let final_levels = central
        .sql(&format!(
            "select string_agg(level::text, ',' order by card_no) from public.member_cards where id in ({})",
            twins
                .iter()
                .map(|t| format!("'{}'", t.a.card_id))
                .collect::<Vec<_>>()
                .join(",")
        ))
        .unwrap();
    eprintln!(
        "[twin_charges] {compared} twin comparisons; final levels of the A cards: {final_levels}"
    );
    let last = &twins[twins.len() - 1];
    eprintln!(
        "[twin_charges] what was compared, e.g. for {}:\n{}",
        last.label,
        central_effects(&central, &last.b.card_id)
    );
}

// ---------------------------------------------------------------------------
// (b) edge_issue_qr as real callers reach it

/// `n` simultaneous anon calls of `function` (each on its own gateway
/// connection while they overlap).
async fn concurrently(
    central: &Central,
    n: usize,
    function: &str,
    args: &Value,
) -> Vec<RpcResponse> {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (http, url, key) = (
                central.http.clone(),
                central.url(),
                central.anon_key.clone(),
            );
            let (function, args) = (function.to_string(), args.clone());
            tokio::spawn(async move { support::rpc(&http, &url, &key, &function, &args).await })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap().unwrap());
    }
    out
}

fn is_permission_denied(r: &RpcResponse) -> bool {
    r.status == 400
        && r.code() == Some("P0001")
        && r.message()
            .is_some_and(|m| m.starts_with("PERMISSION_DENIED"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn edge_issue_qr_as_real_callers() {
    flavour_banner("edge_issue_qr");
    let central = setup_central().await;
    let m = member(&central, 100, "300.00", 0).await;
    let other = member(&central, 101, "300.00", 0).await;
    let edge = start_edge(&central, "T002").await;
    edge.wait_bootstrap(2).await;

    // (i) a member with a custom session, with the anon key (a member's app)
    let session = member_session(&central, &m).await;
    let r = central
        .rpc_as(
            &central.anon_key,
            "edge_issue_qr",
            &json!({"p_card_id": m.card_id, "p_ttl_seconds": 600, "p_session_id": session}),
        )
        .await
        .unwrap();
    ok(&r, "edge_issue_qr as a member with a session");
    let token = r.json[0]["qr_plain"].as_str().unwrap().to_string();
    assert!(token.starts_with("mq1."), "{token}");
    let res = edge.charge(&token, "25.00").await;
    assert_eq!(money(&res["customer_info"]["balance_after"]), 27_500);
    edge.wait_drained().await;
    let s = edge.status().await;
    assert_eq!(
        s["open_exceptions"], 0,
        "central refused an edge operation: {s}"
    );
    assert_eq!(
        central
            .sql(&format!(
                "select balance from public.member_cards where id = '{}'",
                m.card_id
            ))
            .unwrap(),
        "275.00"
    );

    // (ii) a Supabase-Auth super admin (authenticated JWT, sub = auth user id)
    let admin = super_admin(&central);
    let r = central
        .rpc_as(
            &admin,
            "edge_issue_qr",
            &json!({"p_card_id": other.card_id, "p_ttl_seconds": 600}),
        )
        .await
        .unwrap();
    ok(&r, "edge_issue_qr as a super admin");
    let admin_token = r.json[0]["qr_plain"].as_str().unwrap().to_string();
    assert!(admin_token.starts_with("mq1."), "{admin_token}");
    let v = central
        .rpc("validate_qr_plain", &json!({"p_qr_plain": admin_token}))
        .await
        .unwrap();
    assert_eq!(v.json.as_str(), Some(other.card_id.as_str()), "{}", v.text);

    // (iii) anon without a session, on connections a member login left its
    // identity on (upstream keeps it in session-level settings). Log the member
    // in through the gateway, concurrently and then one by one, so that every
    // pooled connection carries that member's identity.
    let login = json!({"p_identifier": m.phone, "p_password": MEMBER_PW});
    for r in concurrently(&central, 12, "member_login", &login).await {
        ok(&r, "member_login");
    }
    for _ in 0..12 {
        member_session(&central, &m).await;
    }
    // Precondition: the pollution is real (upstream's own rotate_card_qr, with
    // no session, runs as the leaked member identity).
    let mut leaked = 0;
    for _ in 0..4 {
        let r = central
            .rpc_as(
                &central.anon_key,
                "rotate_card_qr",
                &json!({"p_card_id": m.card_id, "p_ttl_seconds": 60}),
            )
            .await
            .unwrap();
        if r.status == 200 {
            leaked += 1;
        }
    }
    eprintln!("[edge_issue_qr] rotate_card_qr without a session succeeded {leaked}/4 times on polluted connections");
    assert!(
        leaked > 0,
        "the connections were expected to carry the member's leaked identity"
    );
    let no_session = json!({"p_card_id": m.card_id, "p_ttl_seconds": 600});
    let mut answers = concurrently(&central, 16, "edge_issue_qr", &no_session).await;
    for _ in 0..8 {
        answers.push(
            central
                .rpc_as(&central.anon_key, "edge_issue_qr", &no_session)
                .await
                .unwrap(),
        );
    }
    for r in answers {
        assert!(
            is_permission_denied(&r),
            "anon without a session must be refused: {} {}",
            r.status,
            r.text
        );
    }
    for _ in 0..8 {
        let r = central
            .rpc_as(
                &central.anon_key,
                "edge_issue_qr",
                &json!({"p_card_id": m.card_id, "p_ttl_seconds": 600, "p_session_id": "not-a-session"}),
            )
            .await
            .unwrap();
        assert!(
            is_permission_denied(&r),
            "anon with a garbage session must be refused: {} {}",
            r.status,
            r.text
        );
    }

    // (iv) a member's session for someone else's card
    let r = central
        .rpc_as(
            &central.anon_key,
            "edge_issue_qr",
            &json!({"p_card_id": other.card_id, "p_ttl_seconds": 600, "p_session_id": session}),
        )
        .await
        .unwrap();
    assert!(
        is_permission_denied(&r),
        "a member may not issue for another's card: {} {}",
        r.status,
        r.text
    );
    // the refused calls issued nothing: the admin's token is still the live one
    let v = central
        .rpc("validate_qr_plain", &json!({"p_qr_plain": admin_token}))
        .await
        .unwrap();
    assert_eq!(v.json.as_str(), Some(other.card_id.as_str()), "{}", v.text);
}
