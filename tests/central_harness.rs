//! Proves the stand-in central used by the sync tests: a throwaway PostgreSQL
//! cluster with the central schema, the PostgREST-compatible gateway in front
//! of it, and the fault-injecting proxy.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::proxy::{spawn_proxy, Mode};
use support::{gateway, rpc, Central, JWT_SECRET};

fn num_text(v: &Value) -> String {
    match v {
        Value::Number(n) => n.to_string(),
        other => panic!("not a number: {other}"),
    }
}

/// A member with one standard card (created through the public RPC, as anon).
async fn member_card(c: &Central, phone: &str) -> String {
    let r = c
        .rpc_as(
            &c.anon_key,
            "create_member_profile",
            &json!({ "p_name": "Harness", "p_phone": phone, "p_email": format!("{phone}@example.test") }),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text);
    let member_id = r.json.as_str().expect("a bare uuid").to_string();
    c.sql(&format!(
        "select id from public.member_cards where owner_member_id = '{member_id}' and card_type = 'standard'"
    ))
    .unwrap()
}

fn bogus_batch(op_id: &str) -> Value {
    json!({
        "p_site_code": "S1",
        "p_merchant_code": "SHOP1",
        "p_ops": [{ "op_id": op_id, "op_type": "bogus", "seq": 1 }],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gateway_speaks_postgrest() {
    let t0 = Instant::now();
    let c = Central::start().await.unwrap();
    eprintln!("central up in {:?}", t0.elapsed());

    // reachability
    let r = c
        .http
        .get(format!("{}/rest/v1/", c.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "{}");

    // the version probe, as the service role
    let r = c.rpc("edge_sync_version", &json!({})).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["version"].as_i64(), Some(1), "{}", r.text);
    assert!(r.json["installed_at"].is_string(), "{}", r.text);
    // an empty body is an empty argument object
    let r = c
        .http
        .post(format!("{}/rest/v1/rpc/edge_sync_version", c.url()))
        .header("apikey", &c.service_key)
        .header("authorization", format!("Bearer {}", c.service_key))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // the edge RPCs: anon needs a site key (refused inside, with the status the function
    // set through response.status), authenticated → 403 (42501)
    let r = c
        .rpc_as(&c.anon_key, "edge_sync_version", &json!({}))
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.code()),
        (401, Some("EDGE_SITE_KEY_REQUIRED")),
        "{}",
        r.text
    );
    let authed = gateway::service_jwt(JWT_SECRET, "authenticated");
    let r = c
        .rpc_as(&authed, "edge_sync_version", &json!({}))
        .await
        .unwrap();
    assert_eq!((r.status, r.code()), (403, Some("42501")), "{}", r.text);
    assert!(
        r.message().unwrap().contains("permission denied"),
        "{}",
        r.text
    );

    // keys: a wrong secret, no Authorization, no apikey, an expired token
    let forged = gateway::service_jwt("some-other-secret-some-other-secret", "service_role");
    let r = c
        .rpc_as(&forged, "edge_sync_version", &json!({}))
        .await
        .unwrap();
    assert_eq!(r.status, 401, "{}", r.text);
    let r = c
        .http
        .post(format!("{}/rest/v1/rpc/edge_sync_version", c.url()))
        .header("apikey", &c.service_key)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "PGRST301");
    let r = c
        .http
        .post(format!("{}/rest/v1/rpc/edge_sync_version", c.url()))
        .header("authorization", format!("Bearer {}", c.service_key))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let expired = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({ "role": "service_role", "exp": 1_000_000_000u64 }),
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap();
    let r = c
        .http
        .post(format!("{}/rest/v1/rpc/edge_sync_version", c.url()))
        .header("apikey", &c.service_key)
        .header("authorization", format!("Bearer {expired}"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "PGRST303");

    // exact key matching: an extra key, a missing required key, an unknown function
    let r = c
        .rpc("edge_sync_version", &json!({ "p_extra": 1 }))
        .await
        .unwrap();
    assert_eq!((r.status, r.code()), (404, Some("PGRST202")), "{}", r.text);
    assert_eq!(
        r.message(),
        Some("Could not find the function public.edge_sync_version(p_extra) in the schema cache")
    );
    let pull = json!({ "p_merchant_code": "NOPE", "p_site_code": "S1", "p_kind": "cards" });
    let mut extra = pull.clone();
    extra["p_cursor"] = json!(null);
    let r = c.rpc("edge_pull_changes", &extra).await.unwrap();
    assert_eq!((r.status, r.code()), (404, Some("PGRST202")), "{}", r.text);
    let r = c
        .rpc(
            "edge_pull_changes",
            &json!({ "p_merchant_code": "NOPE", "p_kind": "cards" }),
        )
        .await
        .unwrap();
    assert_eq!((r.status, r.code()), (404, Some("PGRST202")), "{}", r.text);
    let r = c.rpc("no_such_function", &json!({})).await.unwrap();
    assert_eq!((r.status, r.code()), (404, Some("PGRST202")), "{}", r.text);
    // not a JSON object
    let r = c
        .http
        .post(format!("{}/rest/v1/rpc/edge_sync_version", c.url()))
        .header("apikey", &c.service_key)
        .header("authorization", format!("Bearer {}", c.service_key))
        .body("[1,2")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // a business error: P0001 → 400 with the whole message
    let r = c.rpc("edge_pull_changes", &pull).await.unwrap();
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(
        r.json,
        json!({ "code": "P0001", "message": "MERCHANT_NOT_FOUND", "details": null, "hint": null })
    );
    // optional arguments may be left out; a JSON null is SQL NULL
    c.sql("insert into public.merchants (code, name) values ('SHOP1', 'Shop one')")
        .unwrap();
    let r = c
        .rpc(
            "edge_pull_changes",
            &json!({ "p_merchant_code": "SHOP1", "p_site_code": "S1", "p_kind": "merchant", "p_after_ts": null }),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["rows"][0]["code"], "SHOP1", "{}", r.text);
    assert_eq!(r.json["has_more"], false);

    // upstream RPCs: set-returning → array; numeric text kept as PostgreSQL renders it
    let card = member_card(&c, "0911000001").await;
    let recharge =
        json!({ "p_card_id": card, "p_amount": 1000, "p_idempotency_key": "harness-k1" });
    let r = c
        .rpc_as(&c.anon_key, "user_recharge_card", &recharge)
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text);
    let rows = r.json.as_array().expect("an array");
    assert_eq!(rows.len(), 1, "{}", r.text);
    assert_eq!(
        num_text(&rows[0]["amount"]),
        "1000",
        "the input echoed: {}",
        r.text
    );
    let tx_no = rows[0]["tx_no"].as_str().unwrap().to_string();
    assert!(tx_no.starts_with("RCG"), "{tx_no}");
    let r = c
        .rpc_as(&c.anon_key, "user_recharge_card", &recharge)
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        num_text(&r.json[0]["amount"]),
        "1000.00",
        "the stored value: {}",
        r.text
    );
    // decimals as JSON strings or numbers both reach numeric
    let r = c
        .rpc_as(
            &c.anon_key,
            "user_recharge_card",
            &json!({ "p_card_id": card, "p_amount": "0.10" }),
        )
        .await
        .unwrap();
    assert_eq!(num_text(&r.json[0]["amount"]), "0.10", "{}", r.text);

    // composite single row → object
    let r = c
        .rpc_as(
            &c.anon_key,
            "get_transaction_detail",
            &json!({ "p_tx_no": tx_no }),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["tx_no"], tx_no.as_str());
    assert_eq!(r.json["tx_type"], "recharge");
    assert_eq!(num_text(&r.json["final_amount"]), "1000.00");

    // SQLSTATE mapping: bad enum text 22P02 → 400, unique violation 23505 → 409
    let r = c
        .rpc_as(
            &c.anon_key,
            "user_recharge_card",
            &json!({ "p_card_id": card, "p_amount": 1, "p_payment_method": "bitcoin" }),
        )
        .await
        .unwrap();
    assert_eq!((r.status, r.code()), (400, Some("22P02")), "{}", r.text);
    let r = c
        .rpc_as(
            &c.anon_key,
            "create_member_profile",
            &json!({ "p_name": "Dup", "p_phone": "0911000001", "p_email": null }),
        )
        .await
        .unwrap();
    assert_eq!((r.status, r.code()), (409, Some("23505")), "{}", r.text);
    assert!(r.json["details"].is_string(), "{}", r.text);

    // concurrent calls
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..24 {
        let (http, url, key) = (c.http.clone(), c.url(), c.service_key.clone());
        set.spawn(async move { rpc(&http, &url, &key, "edge_sync_version", &json!({})).await });
    }
    while let Some(r) = set.join_next().await {
        assert_eq!(r.unwrap().unwrap().status, 200);
    }
    eprintln!("gateway_speaks_postgrest took {:?}", t0.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gateway_result_shapes_and_timeouts() {
    let c = Central::start().await.unwrap();
    c.sql(
        "create function public.t_empty() returns setof int language sql as 'select 1 where false';
         create function public.t_one_col() returns table (x int) language sql as 'select 1 union all select 2';
         create function public.t_void(p_a text) returns void language sql as 'select';
         create function public.t_null(p_a text default null) returns text language sql as 'select p_a';
         create function public.t_echo(p_j jsonb, p_n numeric, p_b boolean, p_arr int[]) returns jsonb
           language sql as $$ select jsonb_build_object('j', p_j, 'n', p_n, 'b', p_b, 'arr', p_arr) $$;
         create function public.t_claims() returns jsonb language sql as
           $$ select jsonb_build_object('role', current_user::text,
                                        'sub', current_setting('request.jwt.claim.sub', true),
                                        'claims', current_setting('request.jwt.claims', true)::jsonb,
                                        'tz', current_setting('TimeZone')) $$;
         create function public.t_sleep() returns int language sql as 'select 1 from pg_sleep(0.5)';
         create function public.t_raise() returns int language plpgsql as
           $$ begin raise exception 'NOPE' using detail = 'some detail', hint = 'some hint'; end $$;
         alter role authenticated set statement_timeout = '100ms';",
    )
    .unwrap();

    let r = c.rpc("t_empty", &json!({})).await.unwrap();
    assert_eq!((r.status, r.text.as_str()), (200, "[]"));
    let r = c.rpc("t_one_col", &json!({})).await.unwrap();
    assert_eq!(r.json, json!([{ "x": 1 }, { "x": 2 }]), "{}", r.text);
    let r = c.rpc("t_void", &json!({ "p_a": "x" })).await.unwrap();
    assert_eq!(r.status, 204, "{}", r.text);
    let r = c.rpc("t_null", &json!({})).await.unwrap();
    assert_eq!((r.status, r.text.as_str()), (200, "null"));
    let r = c.rpc("t_null", &json!({ "p_a": "hi" })).await.unwrap();
    assert_eq!(r.json, json!("hi"));
    let r = c
        .rpc(
            "t_echo",
            // parsed from text: json!() would turn 12.340 into an f64
            &serde_json::from_str(r#"{"p_j": {"a": [1, "b"], "n": 1.50}, "p_n": 12.340, "p_b": true, "p_arr": "{1,2}"}"#)
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(num_text(&r.json["n"]), "12.340", "{}", r.text);
    assert_eq!(num_text(&r.json["j"]["n"]), "1.50", "{}", r.text);
    assert_eq!(r.json["b"], true);
    assert_eq!(r.json["arr"], json!([1, 2]));

    // the call runs as the JWT's role, with the claims and UTC
    let r = c.rpc("t_claims", &json!({})).await.unwrap();
    assert_eq!(r.json["role"], "service_role", "{}", r.text);
    assert_eq!(r.json["claims"]["role"], "service_role");
    assert_eq!(r.json["tz"], "UTC");
    let user = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({ "role": "authenticated", "sub": "8c5f6c5e-7d0e-4bb4-9a55-0c0a3c1e2f11", "exp": 4_102_444_800u64 }),
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap();
    let r = c.rpc_as(&user, "t_claims", &json!({})).await.unwrap();
    assert_eq!(r.json["role"], "authenticated", "{}", r.text);
    assert_eq!(r.json["sub"], "8c5f6c5e-7d0e-4bb4-9a55-0c0a3c1e2f11");

    // errors keep details and hint; the role's statement_timeout applies (57014 → 500)
    let r = c.rpc("t_raise", &json!({})).await.unwrap();
    assert_eq!(
        (r.status, r.json.clone()),
        (
            400,
            json!({ "code": "P0001", "message": "NOPE", "details": "some detail", "hint": "some hint" })
        )
    );
    let r = c.rpc_as(&user, "t_sleep", &json!({})).await.unwrap();
    assert_eq!((r.status, r.code()), (500, Some("57014")), "{}", r.text);
    let r = c.rpc("t_sleep", &json!({})).await.unwrap();
    assert_eq!(r.json, json!(1), "service_role has no timeout: {}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn proxy_injects_faults() {
    let t0 = Instant::now();
    let c = Central::start().await.unwrap();
    c.sql("insert into public.merchants (code, name) values ('SHOP1', 'Shop one')")
        .unwrap();
    let proxy = spawn_proxy(c.gateway.addr()).await;
    let via = |f: &'static str, args: Value| {
        let (http, url, key) = (c.http.clone(), proxy.url(), c.service_key.clone());
        async move { rpc(&http, &url, &key, f, &args).await }
    };

    // Pass
    let r = via("edge_sync_version", json!({})).await.unwrap();
    assert_eq!(
        (r.status, r.json["version"].as_i64()),
        (200, Some(1)),
        "{}",
        r.text
    );
    assert_eq!(proxy.forwarded(), 1);
    let r = via("edge_sync_version", json!({ "p_x": 1 })).await.unwrap();
    assert_eq!(
        (r.status, r.code()),
        (404, Some("PGRST202")),
        "errors pass through"
    );
    assert_eq!(proxy.requests()[0].path, "/rest/v1/rpc/edge_sync_version");

    // Refuse: a transport error, nothing forwarded
    proxy.set_mode(Mode::Refuse);
    assert!(via("edge_sync_version", json!({})).await.is_err());
    assert_eq!(proxy.forwarded(), 2);

    // ServerError(503)
    proxy.set_mode(Mode::ServerError(503));
    let r = via("edge_sync_version", json!({})).await.unwrap();
    assert_eq!(r.status, 503);
    assert_eq!(proxy.forwarded(), 2);

    // DropResponseAfterCommit: the client gets nothing, central has committed
    let op_id = uuid::Uuid::new_v4().to_string();
    proxy.set_mode(Mode::DropResponseAfterCommit);
    let err = via("edge_apply_batch", bogus_batch(&op_id)).await;
    assert!(err.is_err(), "{err:?}");
    assert_eq!(proxy.forwarded(), 3);
    proxy.set_mode(Mode::Pass);
    let r = via("edge_list_exceptions", json!({ "p_site_code": "S1" }))
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text);
    let exceptions = r.json["exceptions"].as_array().unwrap();
    assert_eq!(exceptions.len(), 1, "{}", r.text);
    assert_eq!(exceptions[0]["op_id"], op_id.as_str(), "{}", r.text);
    let r = via("edge_apply_batch", bogus_batch(&op_id)).await.unwrap();
    assert_eq!(r.json["results"][0]["status"], "duplicate", "{}", r.text);

    // DropNext(2): two lost answers, then Pass again
    proxy.set_mode(Mode::DropNext(2));
    assert!(via("edge_sync_version", json!({})).await.is_err());
    assert!(via("edge_sync_version", json!({})).await.is_err());
    assert_eq!(
        via("edge_sync_version", json!({})).await.unwrap().status,
        200
    );
    assert_eq!(proxy.mode(), Mode::Pass);

    // RefuseNext / ServerErrorNext count down the same way
    proxy.set_mode(Mode::RefuseNext(1));
    assert!(via("edge_sync_version", json!({})).await.is_err());
    assert_eq!(
        via("edge_sync_version", json!({})).await.unwrap().status,
        200
    );
    proxy.set_mode(Mode::ServerErrorNext(502, 1));
    assert_eq!(
        via("edge_sync_version", json!({})).await.unwrap().status,
        502
    );
    assert_eq!(
        via("edge_sync_version", json!({})).await.unwrap().status,
        200
    );

    // Delay, then Hang against a client timeout
    proxy.set_mode(Mode::Delay(Duration::from_millis(300)));
    let t = Instant::now();
    assert_eq!(
        via("edge_sync_version", json!({})).await.unwrap().status,
        200
    );
    assert!(t.elapsed() >= Duration::from_millis(300));
    proxy.set_mode(Mode::Hang);
    let quick = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let err = rpc(
        &quick,
        &proxy.url(),
        &c.service_key,
        "edge_sync_version",
        &json!({}),
    )
    .await;
    assert!(err.is_err(), "{err:?}");
    proxy.set_mode(Mode::Pass);

    // the gateway gone: the proxy answers 502
    let gw_addr = c.gateway.addr();
    let Central { gateway, pg, .. } = c;
    gateway.shutdown().await;
    let proxy2 = spawn_proxy(gw_addr).await;
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let key = gateway::service_jwt(JWT_SECRET, "service_role");
    let r = rpc(&http, &proxy2.url(), &key, "edge_sync_version", &json!({}))
        .await
        .unwrap();
    assert_eq!(r.status, 502, "{}", r.text);
    drop(pg);
    eprintln!("proxy_injects_faults took {:?}", t0.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cluster_stop_and_start_again_keeps_data() {
    let t0 = Instant::now();
    let c = Central::start().await.unwrap();
    c.sql("insert into public.merchants (code, name) values ('SHOP1', 'Shop one')")
        .unwrap();
    let op_id = uuid::Uuid::new_v4().to_string();
    let r = c
        .rpc("edge_apply_batch", &bogus_batch(&op_id))
        .await
        .unwrap();
    assert_eq!(r.json["results"][0]["status"], "rejected", "{}", r.text);
    let port = c.pg.port();

    tokio::task::block_in_place(|| c.pg.stop()).unwrap();
    assert!(!c.pg.is_running());
    let r = c.rpc("edge_sync_version", &json!({})).await.unwrap();
    assert_eq!((r.status, r.code()), (503, Some("PGRST000")), "{}", r.text);

    tokio::task::block_in_place(|| c.pg.start_again()).unwrap();
    assert_eq!(c.pg.port(), port);
    assert!(c.pg.url("x").contains(&format!(":{port}/")));
    // the gateway reconnects by itself; the data survived
    let r = c
        .rpc(
            "edge_list_exceptions",
            &json!({ "p_site_code": "S1", "p_only_open": true }),
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json["exceptions"][0]["op_id"],
        op_id.as_str(),
        "{}",
        r.text
    );
    let r = c
        .rpc("edge_apply_batch", &bogus_batch(&op_id))
        .await
        .unwrap();
    assert_eq!(r.json["results"][0]["status"], "duplicate", "{}", r.text);
    eprintln!(
        "cluster_stop_and_start_again_keeps_data took {:?}",
        t0.elapsed()
    );
}
