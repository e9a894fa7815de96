//! Shifts at the till (issue 14, item 2): a cashier opens a shift, sells, reads the X
//! report, closes it; the Z report is frozen (later sales and even SQL cannot change a
//! closed shift); only one open shift per person; other people's shifts are a manager's;
//! printable text and CSV.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use mps_edge::domain::Role;
use serde_json::{json, Value};
use support::server::{amt, TestServer, API};
use unicode_width::UnicodeWidthStr;

async fn post(srv: &TestServer, t: &str, path: &str) -> support::server::Resp {
    srv.post(&format!("{API}{path}"), Some(t), &json!({})).await
}

fn figures(r: &Value) -> (i64, String, i64, String, String, i64, String) {
    let f = &r["figures"];
    (
        f["payments"]["count"].as_i64().unwrap(),
        amt(&f["payments"]["amount"]),
        f["refunds"]["count"].as_i64().unwrap(),
        amt(&f["refunds"]["amount"]),
        amt(&f["net_amount"]),
        f["unsynced"]["count"].as_i64().unwrap(),
        amt(&f["unsynced"]["amount"]),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cashiers_shift_from_open_to_a_frozen_z_report() {
    let srv = TestServer::start().await;
    let owner = srv.owner_token().await;
    let cashier = srv.cashier_token().await;

    let x = post(&srv, &cashier, "/shifts/open").await;
    let x = x.assert_ok().clone();
    assert_eq!(x["kind"], "X");
    assert_eq!(x["cashier"], "cashier1");
    let id = x["shift_id"].as_str().unwrap().to_string();
    let no = x["shift_no"].as_str().unwrap().to_string();
    assert!(no.starts_with("SFT-"), "{no}");
    assert_eq!(
        figures(&x),
        (
            0,
            "0.00".into(),
            0,
            "0.00".into(),
            "0.00".into(),
            0,
            "0.00".into()
        )
    );
    post(&srv, &cashier, "/shifts/open")
        .await
        .assert_error(409, "SHIFT_ALREADY_OPEN");

    // the cashier sells twice; the owner's own sale and refund are not in this shift
    let a = srv.charge_card(&cashier, "STD00000002", "10.00").await;
    srv.charge_card(&cashier, "STD00000002", "20.00").await;
    srv.charge_card(&owner, "STD00000002", "99.00").await;
    let tx_a = a["transaction"]["tx_no"].as_str().unwrap();
    srv.refund(&owner, tx_a, "1.00").await.assert_ok();

    let x = srv
        .get(&format!("{API}/shifts/current"), Some(&cashier))
        .await;
    assert_eq!(
        figures(x.assert_ok()),
        (
            2,
            "30.00".into(),
            0,
            "0.00".into(),
            "30.00".into(),
            2,
            "30.00".into()
        )
    );

    // printable on 58 mm paper; CSV with a header
    let t = srv
        .get(
            &format!("{API}/reports/shift/{no}?format=text"),
            Some(&cashier),
        )
        .await;
    assert_eq!(t.status, 200, "{}", t.text);
    assert!(
        t.text.lines().all(|l| UnicodeWidthStr::width(l) <= 32),
        "{}",
        t.text
    );
    assert!(t.text.contains("班別報表（X，未結班）"), "{}", t.text);
    assert!(
        t.text
            .lines()
            .any(|l| l.starts_with("付款 ×2") && l.ends_with("30.00")),
        "{}",
        t.text
    );
    let c = srv
        .get(
            &format!("{API}/reports/shift/{id}?format=csv"),
            Some(&owner),
        )
        .await;
    assert!(c.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let lines: Vec<&str> = c.text.trim_start_matches('\u{feff}').lines().collect();
    assert_eq!(lines.len(), 2, "{}", c.text);
    assert!(lines[0].starts_with("kind,shift_no,"));
    assert!(lines[1].starts_with(&format!("X,{no},")), "{}", lines[1]);

    // closed by the cashier: the Z report
    let z = post(&srv, &cashier, &format!("/shifts/{id}/close")).await;
    let z = z.assert_ok().clone();
    assert_eq!(z["kind"], "Z");
    assert_eq!(z["closed_by"], "cashier1");
    assert_eq!(figures(&z).0, 2);
    post(&srv, &cashier, &format!("/shifts/{id}/close"))
        .await
        .assert_error(409, "SHIFT_CLOSED");
    srv.get(&format!("{API}/shifts/current"), Some(&cashier))
        .await
        .assert_error(404, "NOT_FOUND");

    // later sales do not change it; read back, it is the same report
    srv.charge_card(&cashier, "STD00000002", "5.00").await;
    let again = srv
        .get(&format!("{API}/reports/shift/{id}"), Some(&cashier))
        .await;
    assert_eq!(again.assert_ok(), &z);
    // not even SQL can change or delete a closed shift
    let db = srv.db.clone();
    let refused = tokio::task::spawn_blocking(move || {
        let a = db.write_blocking(|c| Ok(c.execute("UPDATE shifts SET z_report = '{}'", [])?));
        let b = db.write_blocking(|c| Ok(c.execute("DELETE FROM shifts", [])?));
        (a.is_err(), b.is_err())
    })
    .await
    .unwrap();
    assert_eq!(refused, (true, true));

    // a new shift starts from zero
    let x2 = post(&srv, &cashier, "/shifts/open").await;
    assert_eq!(figures(x2.assert_ok()).0, 0);
    assert_ne!(x2.assert_ok()["shift_no"], no.as_str());

    // both audited
    let audit = srv
        .get(&format!("{API}/console/audit?family=shifts"), Some(&owner))
        .await;
    let actions: Vec<String> = audit.assert_ok()["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        actions.iter().filter(|a| *a == "shift.open").count(),
        2,
        "{actions:?}"
    );
    assert_eq!(
        actions.iter().filter(|a| *a == "shift.close").count(),
        1,
        "{actions:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn other_peoples_shifts_are_a_managers_and_bad_requests_are_refused() {
    let srv = TestServer::start().await;
    let owner = srv.owner_token().await;
    let cashier = srv.cashier_token().await;
    srv.create_user("cashier2", "cashier-password-2", Role::Cashier)
        .await;
    let other = srv.login("cashier2", "cashier-password-2").await;
    let x = post(&srv, &cashier, "/shifts/open").await;
    let id = x.assert_ok()["shift_id"].as_str().unwrap().to_string();

    srv.get(&format!("{API}/reports/shift/{id}"), Some(&other))
        .await
        .assert_error(403, "PERMISSION_DENIED");
    post(&srv, &other, &format!("/shifts/{id}/close"))
        .await
        .assert_error(403, "PERMISSION_DENIED");
    srv.get(&format!("{API}/reports/shift/{id}"), Some(&owner))
        .await
        .assert_ok();
    // the day's shifts, for a manager: this one, open
    let list = srv.get(&format!("{API}/shifts"), Some(&owner)).await;
    let shifts = list.assert_ok()["shifts"].as_array().unwrap().clone();
    assert_eq!(shifts.len(), 1);
    assert_eq!(
        (shifts[0]["shift_id"].as_str(), shifts[0]["kind"].as_str()),
        (Some(id.as_str()), Some("X"))
    );
    srv.get(&format!("{API}/shifts"), Some(&other))
        .await
        .assert_error(403, "PERMISSION_DENIED");
    srv.get(&format!("{API}/shifts?date=yesterday"), Some(&owner))
        .await
        .assert_error(400, "VALIDATION_ERROR");
    // another day's list still shows a shift that is open
    let old = srv
        .get(&format!("{API}/shifts?date=2001-01-01"), Some(&owner))
        .await;
    assert_eq!(old.assert_ok()["shifts"].as_array().unwrap().len(), 1);
    // the owner closes it at the end of the day
    let z = post(&srv, &owner, &format!("/shifts/{id}/close")).await;
    assert_eq!(z.assert_ok()["closed_by"], srv.owner.0.as_str());

    for (path, status, code) in [
        (
            format!("{API}/reports/shift/{id}?format=xml"),
            400,
            "VALIDATION_ERROR",
        ),
        (
            format!("{API}/reports/shift/{id}?format=text&width=80"),
            400,
            "VALIDATION_ERROR",
        ),
        (
            format!("{API}/reports/shift/{id}?format=text&lang=de"),
            400,
            "VALIDATION_ERROR",
        ),
        (
            format!("{API}/reports/shift/{id}?extra=1"),
            400,
            "VALIDATION_ERROR",
        ),
        (format!("{API}/reports/shift/SFT-NOPE"), 404, "NOT_FOUND"),
    ] {
        srv.get(&path, Some(&owner))
            .await
            .assert_error(status, code);
    }
    post(&srv, &owner, "/shifts/SFT-NOPE/close")
        .await
        .assert_error(404, "NOT_FOUND");
    srv.get(&format!("{API}/shifts/current"), None)
        .await
        .assert_error(401, "NOT_AUTHENTICATED");
    assert_eq!(
        srv.count("SELECT COUNT(*) FROM shifts").await,
        1,
        "refusals wrote nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_day_by_cashier_and_by_terminal() {
    let srv = TestServer::start().await;
    let owner = srv.owner_token().await;
    let cashier = srv.cashier_token().await;
    let a = srv.charge_card(&cashier, "STD00000002", "10.00").await;
    srv.charge_card(&cashier, "STD00000002", "20.00").await;
    srv.charge_card(&owner, "STD00000002", "5.00").await;
    srv.refund(&owner, a["transaction"]["tx_no"].as_str().unwrap(), "2.50")
        .await
        .assert_ok();

    let r = srv.get(&format!("{API}/reports/daily"), Some(&owner)).await;
    let r = r.assert_ok().clone();
    assert_eq!(r["by"], "cashier");
    let rows = r["rows"].as_array().unwrap();
    let row = |name: &str| rows.iter().find(|x| x["name"] == name).cloned().unwrap();
    assert_eq!(
        figures(&row("cashier1")),
        (
            2,
            "30.00".into(),
            0,
            "0.00".into(),
            "30.00".into(),
            2,
            "30.00".into()
        )
    );
    let o = figures(&row(&srv.owner.0));
    assert_eq!(
        (o.0, o.1.as_str(), o.2, o.3.as_str(), o.4.as_str()),
        (1, "5.00", 1, "2.50", "2.50")
    );
    assert_eq!(
        figures(&json!({"figures": r["totals"]})).4,
        "32.50",
        "the day's net"
    );

    let t = srv
        .get(
            &format!("{API}/reports/daily?by=terminal&format=text&width=48"),
            Some(&owner),
        )
        .await;
    assert_eq!(t.status, 200, "{}", t.text);
    assert!(
        t.text.lines().all(|l| UnicodeWidthStr::width(l) <= 48),
        "{}",
        t.text
    );
    assert!(t.text.contains("收銀機日報"), "{}", t.text);
    let c = srv
        .get(&format!("{API}/reports/daily?format=csv"), Some(&owner))
        .await;
    let lines: Vec<&str> = c.text.trim_start_matches('\u{feff}').lines().collect();
    assert_eq!(lines.len(), 3, "header and two cashiers: {}", c.text);

    // a cashier may not; bad requests are refused
    srv.get(&format!("{API}/reports/daily"), Some(&cashier))
        .await
        .assert_error(403, "PERMISSION_DENIED");
    for q in [
        "?by=shop",
        "?date=2026-13-01",
        "?format=pdf",
        "?width=12&format=text",
        "?x=1",
    ] {
        srv.get(&format!("{API}/reports/daily{q}"), Some(&owner))
            .await
            .assert_error(400, "VALIDATION_ERROR");
    }
    let empty = srv
        .get(
            &format!("{API}/reports/daily?date=2001-01-01"),
            Some(&owner),
        )
        .await;
    assert_eq!(empty.assert_ok()["rows"].as_array().unwrap().len(), 0);
}
