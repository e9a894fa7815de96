//! The OpenAPI document describes exactly what the router serves. Since the router is
//! built with utoipa-axum (each documented route registered together with its
//! operation), coverage holds by construction; this test checks it from the outside,
//! against the served document: every documented operation is routed (a request with
//! its placeholders filled in does not reach the router's fallback 404 or 405), every
//! JSON success response names a schema, and every reference resolves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;

use serde_json::Value;
use support::server::TestServer;

/// Documented responses that are not a named JSON schema, and why.
const UNTYPED_OK: &[&str] = &[
    // Prometheus text exposition format.
    "/metrics",
    // The OpenAPI document itself (its shape is the OpenAPI specification's).
    "/api/v1/openapi.json",
];

fn concrete(path: &str) -> String {
    path.split('/')
        .map(|seg| if seg.starts_with('{') { "x" } else { seg })
        .collect::<Vec<_>>()
        .join("/")
}

/// Whether the router has a route for this method and path: not the fallback's
/// `NOT_FOUND "No such route."` and not 405 (the path exists, the method does not).
async fn routed(srv: &TestServer, method: &str, path: &str) -> Result<(), String> {
    let http = reqwest::Client::new();
    let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
    let res = http
        .request(m, srv.url(&concrete(path)))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    if status == 404 && body["error"]["message"] == "No such route." {
        return Err(format!("fallback 404: {body}"));
    }
    if status == 405 {
        return Err(format!("405: {body}"));
    }
    Ok(())
}

/// Every `$ref` in `v`, with where it was found.
fn refs<'a>(v: &'a Value, at: &str, out: &mut Vec<(String, &'a str)>) {
    match v {
        Value::Object(map) => {
            for (k, x) in map {
                if k == "$ref" {
                    if let Some(r) = x.as_str() {
                        out.push((at.to_string(), r));
                    }
                } else {
                    refs(x, &format!("{at}/{k}"), out);
                }
            }
        }
        Value::Array(items) => {
            for (i, x) in items.iter().enumerate() {
                refs(x, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

async fn document(srv: &TestServer) -> Value {
    let res = reqwest::get(srv.url("/api/v1/openapi.json")).await.unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(p, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .filter(|m| {
                    ["get", "put", "post", "delete", "patch", "head", "options"]
                        .contains(&m.as_str())
                })
                .map(move |m| (m.clone(), p.clone()))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_is_routed_and_typed() {
    let srv = TestServer::start().await;
    let doc = document(&srv).await;
    assert_eq!(
        doc["openapi"].as_str().map(|v| v.starts_with("3.")),
        Some(true)
    );
    let ops = operations(&doc);
    // The router's documented surface: all of it, not a handful (a router that lost its
    // nested API would still serve a valid document).
    assert!(ops.len() >= 39, "{} operations: {ops:?}", ops.len());
    for probe in [
        ("post", "/api/v1/merchant/charge"),
        ("get", "/api/v1/console/users"),
        ("post", "/api/v1/console/users"),
        ("put", "/api/v1/console/settings"),
        ("get", "/api/v1/console/ws"),
        ("get", "/health"),
        ("get", "/metrics"),
        ("get", "/api/v1/openapi.json"),
        ("get", "/api/v1/daemon/status"),
        ("post", "/api/v1/daemon/sync"),
    ] {
        assert!(
            ops.contains(&(probe.0.to_string(), probe.1.to_string())),
            "{probe:?} is not documented: {ops:?}"
        );
    }

    let schemes = &doc["components"]["securitySchemes"];
    let schemas = &doc["components"]["schemas"];
    let mut problems = Vec::new();
    for (method, path) in &ops {
        if let Err(e) = routed(&srv, method, path).await {
            problems.push(format!(
                "{method} {path} is documented but not routed ({e})"
            ));
        }
        let op = &doc["paths"][path][method];
        let responses = op["responses"].as_object();
        if responses.is_none_or(|r| r.is_empty()) {
            problems.push(format!("{method} {path} has no responses"));
        }
        for (status, response) in responses.into_iter().flatten() {
            let json = &response["content"]["application/json"];
            if !status.starts_with('2') || json.is_null() || UNTYPED_OK.contains(&path.as_str()) {
                continue;
            }
            if json["schema"]["$ref"].as_str().is_none() {
                problems.push(format!(
                    "{method} {path} {status}: the JSON body names no schema: {}",
                    json["schema"]
                ));
            }
        }
        for requirement in op["security"].as_array().into_iter().flatten() {
            for name in requirement
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, _)| k)
            {
                if !schemes[name].is_object() {
                    problems.push(format!(
                        "{method} {path}: security scheme {name:?} is not in components"
                    ));
                }
            }
        }
    }
    let mut found = Vec::new();
    refs(&doc, "", &mut found);
    assert!(found.len() > 50, "few references: {found:?}");
    for (at, r) in found {
        let resolved = r
            .strip_prefix("#/components/schemas/")
            .is_some_and(|name| schemas[name].is_object());
        if !resolved {
            problems.push(format!("{at}: {r} does not resolve"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // The error envelope is a named schema.
    assert!(schemas["ErrorBody"].is_object());
    // Both ways to authenticate are described.
    assert!(schemes["bearer"].is_object());
    assert!(schemes["session_cookie"].is_object());
    assert!(schemes["daemon_signature"].is_object());
    // /metrics: loopback only, or the [metrics] token; both refusals are documented.
    assert!(schemes["metrics_token"].is_object());
    for status in ["200", "401", "403"] {
        assert!(
            doc["paths"]["/metrics"]["get"]["responses"][status].is_object(),
            "/metrics {status}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_routes_document_how_to_sign() {
    let srv = TestServer::start().await;
    let doc = document(&srv).await;
    for (method, path) in [
        ("get", "/api/v1/daemon/status"),
        ("post", "/api/v1/daemon/sync"),
    ] {
        let op = &doc["paths"][path][method];
        let text = format!(
            "{} {}",
            op["summary"].as_str().unwrap_or_default(),
            op["description"].as_str().unwrap_or_default()
        );
        for needle in [
            "X-Ingest-Ts",
            "X-Ingest-Sign",
            "HMAC-SHA256",
            "lowercase hex",
            r#"ts + "\n" + METHOD + "\n" + path + "\n" + body"#,
            "without the query string",
            "300",
            path,
        ] {
            assert!(
                text.contains(needle),
                "{method} {path}: no {needle:?} in {text}"
            );
        }
        assert_eq!(
            op["security"],
            serde_json::json!([{"daemon_signature": []}])
        );
        let schema = &op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"];
        assert!(schema.as_str().is_some(), "{method} {path}: {schema}");
        for status in ["401", "404"] {
            assert_eq!(
                op["responses"][status]["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/ErrorBody",
                "{method} {path} {status}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fallbacks_answer_as_the_probe_expects() {
    // The probe above recognises an unrouted request by these two answers; if either
    // changed, it would pass everything.
    let srv = TestServer::start().await;
    assert!(routed(&srv, "get", "/api/v1/no-such-route").await.is_err());
    assert!(routed(&srv, "delete", "/api/v1/merchant/charge")
        .await
        .is_err());
    let res = reqwest::Client::new()
        .delete(srv.url("/api/v1/merchant/charge"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({"error": {"code": "METHOD_NOT_ALLOWED", "message": "This route does not accept that method.", "details": null}})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_docs_page_and_its_assets_are_served() {
    let srv = TestServer::start().await;
    let page = reqwest::get(srv.url("/api/docs")).await.unwrap();
    assert_eq!(page.status(), 200);
    let js = reqwest::get(srv.url("/api/docs/swagger-ui-bundle.js"))
        .await
        .unwrap();
    assert_eq!(js.status(), 200);
}

/// Every string a client sends, in a body or a parameter, says what the server accepts
/// (a pattern, an enumeration, a format or a length), and every integer parameter its
/// range: the fuzzer (scripts/api-fuzz.sh) holds the server to exactly these.
fn unconstrained(doc: &Value, schema: &Value, at: &str, depth: usize, out: &mut Vec<String>) {
    if depth > 8 {
        return;
    }
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.trim_start_matches("#/components/schemas/");
        return unconstrained(doc, &doc["components"]["schemas"][name], at, depth + 1, out);
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        for (i, s) in schema[key].as_array().into_iter().flatten().enumerate() {
            unconstrained(doc, s, &format!("{at}/{key}/{i}"), depth + 1, out);
        }
    }
    for (name, s) in schema["properties"].as_object().into_iter().flatten() {
        unconstrained(doc, s, &format!("{at}.{name}"), depth + 1, out);
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    let has = |k: &str| !schema[k].is_null();
    if types.contains(&"string")
        && !(has("pattern") || has("enum") || has("format") || has("maxLength"))
    {
        out.push(format!(
            "{at}: a string with no pattern, enum, format or length"
        ));
    }
    if types.contains(&"integer") && !(has("minimum") && has("maximum")) {
        out.push(format!("{at}: an integer with no range"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_input_is_constrained_and_every_status_documented() {
    let srv = TestServer::start().await;
    let doc = document(&srv).await;
    let mut problems = Vec::new();
    let mut strings_checked = 0;
    for (method, path) in operations(&doc) {
        let op = &doc["paths"][&path][&method];
        let at = format!("{method} {path}");
        for p in op["parameters"].as_array().into_iter().flatten() {
            let name = p["name"].as_str().unwrap_or("?");
            unconstrained(
                &doc,
                &p["schema"],
                &format!("{at} parameter {name}"),
                0,
                &mut problems,
            );
            strings_checked += 1;
        }
        let body = &op["requestBody"]["content"]["application/json"]["schema"];
        if !body.is_null() {
            unconstrained(&doc, body, &format!("{at} body"), 0, &mut problems);
            strings_checked += 1;
        }
        // What the layers around every handler can answer.
        let mut statuses = vec!["429", "503"];
        if !body.is_null() {
            statuses.extend(["400", "413", "415"]);
        }
        for status in statuses {
            if op["responses"][status].is_null() {
                problems.push(format!("{at}: {status} is not documented"));
            }
        }
    }
    assert!(strings_checked > 40, "only {strings_checked} inputs seen");
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // The walk finds what it is meant to find.
    let mut found = Vec::new();
    unconstrained(
        &doc,
        &serde_json::json!({"properties": {"a": {"type": "string"}, "b": {"type": ["integer", "null"], "minimum": 1}}}),
        "probe",
        0,
        &mut found,
    );
    assert_eq!(found.len(), 2, "{found:?}");
}
