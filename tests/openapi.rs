//! The OpenAPI document covers every route the server has, and describes no route it
//! does not have. Routes are found by scanning the router source for `.route(` calls
//! and resolved against the live server (nested prefixes), so adding a route without
//! documenting it fails here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;

use serde_json::Value;
use support::server::TestServer;

/// Pages and assets that are not part of the JSON API.
const NOT_API: &[&str] = &[
    "/",
    "/console",
    "/console/",
    "/api/docs",
    "/api/docs/{file}",
];

fn scan_routes() -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/src/http")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let mut rest = text.as_str();
        while let Some(i) = rest.find(".route(") {
            rest = &rest[i + ".route(".len()..];
            let Some(q1) = rest.find('"') else { break };
            if !rest[..q1].trim().is_empty() {
                continue; // not a literal path
            }
            let after = &rest[q1 + 1..];
            let q2 = after.find('"').unwrap();
            let route = after[..q2].to_string();
            // The method routers inside this call's parentheses (depth 1).
            let body = &after[q2 + 1..];
            let mut depth = 1i32;
            let mut end = body.len();
            for (j, ch) in body.char_indices() {
                match ch {
                    '(' => depth += 1,
                    ')' => {
                        depth -= 1;
                        if depth == 0 {
                            end = j;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let call = &body[..end];
            for m in ["get", "post", "put", "delete", "patch"] {
                let needle = format!("{m}(");
                let mut k = 0;
                while let Some(pos) = call[k..].find(&needle) {
                    let at = k + pos;
                    let prev = call[..at].chars().last().unwrap_or(' ');
                    if !(prev.is_alphanumeric() || prev == '_' || prev == ':') {
                        out.insert((m.to_string(), route.clone()));
                    }
                    k = at + needle.len();
                }
            }
        }
    }
    out
}

fn concrete(path: &str) -> String {
    path.split('/')
        .map(|seg| if seg.starts_with('{') { "x" } else { seg })
        .collect::<Vec<_>>()
        .join("/")
}

async fn exists(srv: &TestServer, method: &str, path: &str) -> bool {
    let http = reqwest::Client::new();
    let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
    let res = http
        .request(m, srv.url(&concrete(path)))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    let unknown = status == 404 && body["error"]["message"] == "No such route.";
    !unknown && status != 405
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_is_documented_and_every_documented_route_exists() {
    let srv = TestServer::start().await;
    let doc: Value = reqwest::get(srv.url("/api/v1/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        doc["openapi"].as_str().map(|v| v.starts_with("3.")),
        Some(true)
    );
    let paths = doc["paths"].as_object().unwrap();
    let documented: BTreeSet<(String, String)> = paths
        .iter()
        .flat_map(|(p, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |m| (m.clone(), p.clone()))
        })
        .collect();

    let scanned = scan_routes();
    assert!(scanned.len() > 15, "the scan found the router: {scanned:?}");
    for probe in [
        ("get", "/console/users"),
        ("post", "/console/users"),
        ("put", "/console/settings"),
        ("post", "/merchant/charge"),
    ] {
        assert!(
            scanned.contains(&(probe.0.to_string(), probe.1.to_string())),
            "scanner missed {probe:?}: {scanned:?}"
        );
    }
    let mut missing = Vec::new();
    for (method, route) in &scanned {
        let candidates = [route.clone(), format!("/api/v1{route}")];
        let mut found = None;
        for c in &candidates {
            if exists(&srv, method, c).await {
                found = Some(c.clone());
                break;
            }
        }
        let full =
            found.unwrap_or_else(|| panic!("{method} {route} from the source is not served"));
        if NOT_API.contains(&full.as_str()) || full.starts_with("/console/") {
            continue;
        }
        if !documented.contains(&(method.clone(), full.clone())) {
            missing.push(format!("{} {full}", method.to_uppercase()));
        }
    }
    assert!(
        missing.is_empty(),
        "routes missing from the OpenAPI document:\n{}",
        missing.join("\n")
    );

    for (method, path) in &documented {
        assert!(
            exists(&srv, method, path).await,
            "documented {method} {path} is not served"
        );
        let op = &paths[path][method];
        assert!(
            op["responses"].as_object().is_some_and(|r| !r.is_empty()),
            "{method} {path} has no responses"
        );
    }
    // The error envelope is a named schema.
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    // The docs page and its vendored assets are served.
    let page = reqwest::get(srv.url("/api/docs")).await.unwrap();
    assert_eq!(page.status(), 200);
    let js = reqwest::get(srv.url("/api/docs/swagger-ui-bundle.js"))
        .await
        .unwrap();
    assert_eq!(js.status(), 200);
}
