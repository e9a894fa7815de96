//! Receipts (issue 14, item 1): text for 58/80 mm thermal printers (32/48 columns, CJK
//! counted as two), printable HTML under a script-free policy, and JSON; the charge
//! response links to its receipt; refunds show on the payment's receipt.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::server::{amt, TestServer, API};
use unicode_width::UnicodeWidthStr;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sale_and_its_refund_on_paper_in_html_and_json() {
    let srv = TestServer::start().await;
    let owner = srv.owner_token().await;
    let cashier = srv.cashier_token().await;
    let qr = srv.qr("STD00000021").await;
    let sale = srv.charge(&cashier, &qr, "123.45").await;
    let sale = sale.assert_ok().clone();
    let tx_no = sale["transaction"]["tx_no"].as_str().unwrap().to_string();
    let url = sale["transaction"]["receipt_url"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(url, format!("{API}/transactions/{tx_no}/receipt"));

    // 58 mm paper, Chinese: every line fits 32 columns
    let r = srv.get(&url, Some(&cashier)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; charset=utf-8"));
    for line in r.text.lines() {
        assert!(UnicodeWidthStr::width(line) <= 32, "{line:?}");
    }
    assert!(r.text.contains("付款收據"), "{}", r.text);
    assert!(r.text.contains(&tx_no));
    assert!(r.text.contains("STD****0021"), "masked card number");
    assert!(!r.text.contains("STD00000021"));
    assert!(r.text.contains("cashier1"), "the cashier");
    let balance = amt(&sale["customer_info"]["balance_after"]);
    let paid = amt(&sale["transaction"]["final_amount"]);
    let line_of = |text: &str, label: &str| {
        text.lines()
            .find(|l| l.starts_with(label))
            .unwrap_or("")
            .to_string()
    };
    assert!(line_of(&r.text, "實付").ends_with(&paid), "{}", r.text);
    assert!(
        line_of(&r.text, "卡片餘額")
            .replace(',', "")
            .ends_with(&balance),
        "{}",
        r.text
    );
    assert!(
        r.text.contains("尚未同步至總部"),
        "pending sync while queued"
    );

    // a refund shows on the payment's receipt, and has its own
    let refund = srv.refund(&owner, &tx_no, "10.00").await;
    let refund = refund.assert_ok().clone();
    let ref_no = refund["refund"]["refund_tx_no"]
        .as_str()
        .unwrap()
        .to_string();
    let r = srv
        .get(&format!("{url}?width=48&lang=en"), Some(&owner))
        .await;
    for line in r.text.lines() {
        assert!(UnicodeWidthStr::width(line) <= 48, "{line:?}");
    }
    assert!(r.text.contains("PAYMENT RECEIPT"));
    assert!(r.text.contains(&ref_no), "{}", r.text);
    assert!(
        line_of(&r.text, "Refundable")
            .replace(',', "")
            .ends_with(&amt(&refund["remaining_refundable"])),
        "{}",
        r.text
    );
    let rr = srv
        .get(
            refund["refund"]["receipt_url"].as_str().unwrap(),
            Some(&owner),
        )
        .await;
    assert!(rr.text.contains("退款收據"), "{}", rr.text);
    assert!(line_of(&rr.text, "原交易").ends_with(&tx_no), "{}", rr.text);

    // JSON: the figures
    let j = srv.get(&format!("{url}?format=json"), Some(&owner)).await;
    let b = j.assert_ok();
    assert_eq!(b["tx_no"], tx_no.as_str());
    assert_eq!(b["card_no"], "STD****0021");
    assert_eq!(amt(&b["final_amount"]), paid);
    assert_eq!(amt(&b["balance_after"]), balance);
    assert_eq!(b["points_after"], sale["customer_info"]["points_after"]);
    assert_eq!(b["refunds"].as_array().unwrap().len(), 1);
    assert_eq!(b["pending_sync"], true);
    assert_eq!(b["timezone"], srv.cfg.timezone().name(), "the store's zone");

    // HTML: printable, escaped, and no script can run in it
    let h = srv.get(&format!("{url}?format=html"), Some(&owner)).await;
    assert!(h.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let csp = h.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.starts_with("default-src 'none'; style-src 'sha256-"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe"), "{csp}");
    assert!(h.text.contains("id=\"pending-sync\""));
    assert!(!h.text.contains("<script"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_receipt_requests_are_refused() {
    let srv = TestServer::start().await;
    let owner = srv.owner_token().await;
    let tx = srv.charge_card(&owner, "STD00000002", "5.00").await;
    let url = tx["transaction"]["receipt_url"]
        .as_str()
        .unwrap()
        .to_string();
    for (query, status, code) in [
        ("?format=pdf", 400, "VALIDATION_ERROR"),
        ("?format=", 400, "VALIDATION_ERROR"),
        ("?width=40", 400, "VALIDATION_ERROR"),
        ("?width=-32", 400, "VALIDATION_ERROR"),
        ("?width=32.0", 400, "VALIDATION_ERROR"),
        ("?lang=fr", 400, "VALIDATION_ERROR"),
        ("?copies=2", 400, "VALIDATION_ERROR"),
    ] {
        srv.get(&format!("{url}{query}"), Some(&owner))
            .await
            .assert_error(status, code);
    }
    srv.get(
        &format!("{API}/transactions/PAY-NOPE-1/receipt"),
        Some(&owner),
    )
    .await
    .assert_error(404, "TX_NOT_FOUND");
    srv.get(&url, None)
        .await
        .assert_error(401, "NOT_AUTHENTICATED");
}
