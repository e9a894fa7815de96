//! Receipts (issue 14, item 1): what a receipt says, laid out for a thermal printer
//! (32 columns on 58 mm paper, 48 on 80 mm) or as a printable HTML page. Pure: the
//! service gathers the figures (`service::receipts`).
//!
//! Widths are display columns, not characters: a CJK character takes two columns on a
//! thermal printer, as `unicode-width` counts it, so a line never wraps on paper.

use serde::Serialize;
use utoipa::ToSchema;

use super::money::{format_milli, Milli};
use super::paper::{center, money, pair, wrap};

/// The printer widths a receipt can be laid out for.
pub const WIDTHS: [usize; 2] = [32, 48];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    ZhHant,
    En,
}

impl Lang {
    pub fn parse(s: &str) -> Option<Lang> {
        match s {
            "zh-Hant" | "zh-TW" | "zh" => Some(Lang::ZhHant),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    pub fn tag(self) -> &'static str {
        match self {
            Lang::ZhHant => "zh-Hant",
            Lang::En => "en",
        }
    }
}

/// A refund against the receipt's payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ReceiptRefund {
    pub tx_no: String,
    /// The store's local time, `YYYY-MM-DD HH:MM:SS`.
    pub time: String,
    #[schema(value_type = f64)]
    #[serde(serialize_with = "super::money::ser_cents")]
    pub amount: i64,
}

/// Everything a receipt shows. Amounts in cents; serialised as exact decimals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Receipt {
    pub store_name: String,
    pub site_code: String,
    /// The terminal's name, when the sale came from an enrolled device.
    pub terminal: Option<String>,
    pub cashier: Option<String>,
    pub tx_no: String,
    /// `payment`, `refund` or `recharge` (a counter top-up).
    pub tx_type: String,
    /// How it was paid: `balance` for a payment or refund, cash/wechat/alipay for a
    /// top-up.
    pub payment_method: String,
    /// The store's local time, `YYYY-MM-DD HH:MM:SS`.
    pub time: String,
    pub timezone: String,
    /// The card number with all but its type prefix and last four characters hidden.
    pub card_no: String,
    pub currency: String,
    #[schema(value_type = f64)]
    #[serde(serialize_with = "super::money::ser_cents")]
    pub raw_amount: i64,
    #[schema(value_type = f64)]
    #[serde(serialize_with = "super::money::ser_milli")]
    pub discount: Milli,
    #[schema(value_type = f64)]
    #[serde(serialize_with = "super::money::ser_cents")]
    pub final_amount: i64,
    pub points_earned: i64,
    /// The card's available balance right after this operation (null for operations
    /// written before receipts existed).
    #[schema(value_type = Option<f64>)]
    #[serde(serialize_with = "super::money::ser_opt_cents")]
    pub balance_after: Option<i64>,
    pub points_after: Option<i64>,
    /// For a payment: its refunds, oldest first, and what may still be refunded.
    pub refunds: Vec<ReceiptRefund>,
    #[schema(value_type = Option<f64>)]
    #[serde(serialize_with = "super::money::ser_opt_cents")]
    pub remaining_refundable: Option<i64>,
    /// For a refund: the payment it returns money from, and why.
    pub original_tx_no: Option<String>,
    pub reason: Option<String>,
    /// Not yet confirmed by head office (the operation is still queued).
    pub pending_sync: bool,
}

/// Hides a card number but its type prefix (3) and last four characters.
pub fn mask_card_no(card_no: &str) -> String {
    let chars: Vec<char> = card_no.chars().collect();
    if chars.len() <= 7 {
        return card_no.to_string();
    }
    let hidden = chars.len() - 7;
    let mut out: String = chars[..3].iter().collect();
    out.push_str(&"*".repeat(hidden));
    out.extend(&chars[chars.len() - 4..]);
    out
}

struct Words {
    payment: &'static str,
    refund: &'static str,
    recharge: &'static str,
    topped_up: &'static str,
    paid_by: &'static str,
    cash: &'static str,
    wechat: &'static str,
    alipay: &'static str,
    site: &'static str,
    terminal: &'static str,
    cashier: &'static str,
    time: &'static str,
    card: &'static str,
    price: &'static str,
    discount: &'static str,
    paid: &'static str,
    refunded: &'static str,
    points: &'static str,
    balance: &'static str,
    points_after: &'static str,
    original: &'static str,
    reason: &'static str,
    refunds: &'static str,
    remaining: &'static str,
    pending: &'static str,
    thanks: &'static str,
}

fn words(lang: Lang) -> &'static Words {
    const ZH: Words = Words {
        payment: "付款收據",
        refund: "退款收據",
        recharge: "儲值收據",
        topped_up: "儲值金額",
        paid_by: "付款方式",
        cash: "現金",
        wechat: "微信支付",
        alipay: "支付寶",
        site: "門市",
        terminal: "收銀機",
        cashier: "收銀員",
        time: "時間",
        card: "卡號",
        price: "原價",
        discount: "折扣",
        paid: "實付",
        refunded: "退款金額",
        points: "本次點數",
        balance: "卡片餘額",
        points_after: "累計點數",
        original: "原交易",
        reason: "原因",
        refunds: "已退款",
        remaining: "可退餘額",
        pending: "＊尚未同步至總部＊",
        thanks: "謝謝光臨",
    };
    const EN: Words = Words {
        payment: "PAYMENT RECEIPT",
        refund: "REFUND RECEIPT",
        recharge: "TOP-UP RECEIPT",
        topped_up: "Topped up",
        paid_by: "Paid by",
        cash: "Cash",
        wechat: "WeChat Pay",
        alipay: "Alipay",
        site: "Site",
        terminal: "Terminal",
        cashier: "Cashier",
        time: "Time",
        card: "Card",
        price: "Price",
        discount: "Discount",
        paid: "Paid",
        refunded: "Refunded",
        points: "Points earned",
        balance: "Card balance",
        points_after: "Points total",
        original: "Original",
        reason: "Reason",
        refunds: "Refunds",
        remaining: "Refundable",
        pending: "* PENDING SYNC WITH HEAD OFFICE *",
        thanks: "Thank you",
    };
    match lang {
        Lang::ZhHant => &ZH,
        Lang::En => &EN,
    }
}

impl Words {
    fn title(&self, tx_type: &str) -> &'static str {
        match tx_type {
            "refund" => self.refund,
            "recharge" => self.recharge,
            _ => self.payment,
        }
    }

    fn method(&self, method: &str) -> String {
        match method {
            "cash" => self.cash.into(),
            "wechat" => self.wechat.into(),
            "alipay" => self.alipay.into(),
            other => other.into(),
        }
    }
}

/// The money part of a receipt as (label, value) lines, shared by the text and HTML
/// layouts.
fn amount_rows(r: &Receipt, w: &Words) -> Vec<(String, String)> {
    let mut rows: Vec<(String, String)> = Vec::new();
    let mut add = |label: &str, value: String| rows.push((label.to_string(), value));
    match r.tx_type.as_str() {
        "refund" => {
            if let Some(o) = &r.original_tx_no {
                add(w.original, o.clone());
            }
            add(w.refunded, money(&r.currency, r.final_amount));
            if let Some(reason) = &r.reason {
                add(w.reason, reason.clone());
            }
        }
        "recharge" => {
            add(w.topped_up, money(&r.currency, r.final_amount));
            add(w.paid_by, w.method(&r.payment_method));
        }
        _ => {
            add(w.price, money(&r.currency, r.raw_amount));
            add(w.discount, format_milli(r.discount));
            add(w.paid, money(&r.currency, r.final_amount));
            add(w.points, r.points_earned.to_string());
        }
    }
    if let Some(b) = r.balance_after {
        add(w.balance, money(&r.currency, b));
    }
    if let Some(p) = r.points_after {
        add(w.points_after, p.to_string());
    }
    rows
}

/// The receipt as plain text for a thermal printer `cols` columns wide (every line at
/// most `cols` display columns), lines ending in `\n`.
pub fn render_text(r: &Receipt, cols: usize, lang: Lang) -> String {
    let w = words(lang);
    let mut out = Vec::new();
    let rule = "-".repeat(cols);
    center(&r.store_name, cols, &mut out);
    center(w.title(&r.tx_type), cols, &mut out);
    out.push(rule.clone());
    pair(w.site, &r.site_code, cols, &mut out);
    if let Some(t) = &r.terminal {
        pair(w.terminal, t, cols, &mut out);
    }
    if let Some(c) = &r.cashier {
        pair(w.cashier, c, cols, &mut out);
    }
    pair(w.time, &r.time, cols, &mut out);
    out.extend(wrap(&r.tx_no, cols));
    pair(w.card, &r.card_no, cols, &mut out);
    out.push(rule.clone());
    for (label, value) in amount_rows(r, w) {
        pair(&label, &value, cols, &mut out);
    }
    if !r.refunds.is_empty() {
        out.push(rule.clone());
        out.extend(wrap(w.refunds, cols));
        for f in &r.refunds {
            pair(&f.tx_no, &money(&r.currency, -f.amount), cols, &mut out);
            out.extend(wrap(&format!("  {}", f.time), cols));
        }
        if let Some(left) = r.remaining_refundable {
            pair(w.remaining, &money(&r.currency, left), cols, &mut out);
        }
    }
    out.push(rule);
    if r.pending_sync {
        center(w.pending, cols, &mut out);
    }
    center(w.thanks, cols, &mut out);
    let mut text = out.join("\n");
    text.push('\n');
    text
}

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// The style of the HTML receipt; its hash goes in the page's Content-Security-Policy, so
/// no other style (and no script at all) runs there.
pub const HTML_STYLE: &str =
    "body{font:14px/1.4 system-ui,sans-serif;margin:1rem auto;max-width:22rem;color:#111}\
h1,h2,p.c{text-align:center;margin:.2rem 0}h1{font-size:1.2rem}h2{font-size:1rem;font-weight:600}\
table{width:100%;border-collapse:collapse;margin:.5rem 0;border-top:1px dashed #555}\
th{text-align:left;font-weight:400;padding:.15rem 0}td{text-align:right;padding:.15rem 0}\
p.pending{border:1px solid #111;padding:.3rem;text-align:center;font-weight:600}\
@media print{body{margin:0;max-width:none}}";

/// The receipt as a printable HTML page (every value escaped).
pub fn render_html(r: &Receipt, lang: Lang) -> String {
    let w = words(lang);
    let row = |label: &str, value: &str| {
        format!("<tr><th>{}</th><td>{}</td></tr>", esc(label), esc(value))
    };
    let mut rows = vec![row(w.site, &r.site_code)];
    if let Some(t) = &r.terminal {
        rows.push(row(w.terminal, t));
    }
    if let Some(c) = &r.cashier {
        rows.push(row(w.cashier, c));
    }
    rows.push(row(w.time, &r.time));
    rows.push(row(w.card, &r.card_no));
    let money_rows: Vec<String> = amount_rows(r, w)
        .iter()
        .map(|(label, value)| row(label, value))
        .collect();
    let refunds = if r.refunds.is_empty() {
        String::new()
    } else {
        let mut t: Vec<String> = r
            .refunds
            .iter()
            .map(|f| {
                row(
                    &format!("{} · {}", f.tx_no, f.time),
                    &money(&r.currency, -f.amount),
                )
            })
            .collect();
        if let Some(left) = r.remaining_refundable {
            t.push(row(w.remaining, &money(&r.currency, left)));
        }
        format!(
            "<h2>{}</h2><table id=\"refunds\">{}</table>",
            esc(w.refunds),
            t.join("")
        )
    };
    let pending = if r.pending_sync {
        format!(
            "<p class=\"pending\" id=\"pending-sync\">{}</p>",
            esc(w.pending)
        )
    } else {
        String::new()
    };
    format!(
        "<!doctype html><html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{title} {tx}</title>\
<style>{HTML_STYLE}</style></head><body><h1>{store}</h1><h2>{title}</h2>\
<p class=\"c\">{tx}</p><table>{rows}</table><table>{money}</table>{refunds}{pending}<p class=\"c\">{thanks}</p></body></html>",
        lang = lang.tag(),
        title = esc(w.title(&r.tx_type)),
        tx = esc(&r.tx_no),
        store = esc(&r.store_name),
        rows = rows.join(""),
        money = money_rows.join(""),
        thanks = esc(w.thanks),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::paper::width;
    use proptest::prelude::*;

    fn sample() -> Receipt {
        Receipt {
            store_name: "信義示範店".into(),
            site_code: "S001".into(),
            terminal: Some("前台收銀機".into()),
            cashier: Some("alice".into()),
            tx_no: "PAY-S001-000000000042".into(),
            tx_type: "payment".into(),
            payment_method: "balance".into(),
            time: "2026-12-04 12:58:31".into(),
            timezone: "Asia/Taipei".into(),
            card_no: mask_card_no("STD00000021"),
            currency: "NT$".into(),
            raw_amount: 123_456,
            discount: 950,
            final_amount: 117_283,
            points_earned: 1234,
            balance_after: Some(1_000_000),
            points_after: Some(5678),
            refunds: vec![ReceiptRefund {
                tx_no: "REF-S001-000000000043".into(),
                time: "2026-12-04 13:00:00".into(),
                amount: 1000,
            }],
            remaining_refundable: Some(116_283),
            original_tx_no: None,
            reason: None,
            pending_sync: true,
        }
    }

    #[test]
    fn masks_all_but_the_prefix_and_the_last_four() {
        assert_eq!(mask_card_no("STD00000021"), "STD****0021");
        assert_eq!(mask_card_no("STD0021"), "STD0021");
        assert_eq!(mask_card_no("AB"), "AB");
    }

    #[test]
    fn a_58mm_receipt_fits_32_columns_with_cjk_counted_twice() {
        let text = render_text(&sample(), 32, Lang::ZhHant);
        for line in text.lines() {
            assert!(width(line) <= 32, "{line:?} is {} columns", width(line));
        }
        // label left, value right: the full width exactly
        let paid = text.lines().find(|l| l.starts_with("實付")).unwrap();
        assert_eq!(width(paid), 32);
        assert!(paid.ends_with("NT$ 1,172.83"), "{paid}");
        assert!(text.contains("STD****0021"));
        assert!(text.contains("＊尚未同步至總部＊"));
        assert!(text.contains("REF-S001-000000000043"));
        assert!(text
            .lines()
            .any(|l| l.starts_with("可退餘額") && l.ends_with("NT$ 1,162.83")));
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn a_refund_receipt_names_the_original_and_the_reason() {
        let mut r = sample();
        r.tx_type = "refund".into();
        r.original_tx_no = Some("PAY-S001-000000000042".into());
        r.reason = Some("尺寸不合".into());
        r.refunds.clear();
        r.remaining_refundable = None;
        r.pending_sync = false;
        let text = render_text(&r, 48, Lang::En);
        assert!(text.contains("REFUND RECEIPT"));
        assert!(text
            .lines()
            .any(|l| l.starts_with("Original") && l.ends_with("PAY-S001-000000000042")));
        assert!(text
            .lines()
            .any(|l| l.starts_with("Reason") && l.ends_with("尺寸不合")));
        assert!(!text.contains("PENDING"));
        assert!(!text.contains("Price"));
    }

    #[test]
    fn a_topup_receipt_shows_the_amount_the_method_and_the_balance() {
        let mut r = sample();
        r.tx_type = "recharge".into();
        r.payment_method = "cash".into();
        r.tx_no = "RCG-S001-0000000044".into();
        r.raw_amount = 50_000;
        r.final_amount = 50_000;
        r.discount = 1000;
        r.points_earned = 0;
        r.refunds.clear();
        r.remaining_refundable = None;
        for (lang, title, amount, method) in [
            (Lang::ZhHant, "儲值收據", "儲值金額", "現金"),
            (Lang::En, "TOP-UP RECEIPT", "Topped up", "Cash"),
        ] {
            let text = render_text(&r, 32, lang);
            assert!(text.contains(title), "{text}");
            assert!(text
                .lines()
                .any(|l| l.starts_with(amount) && l.ends_with("NT$ 500.00")));
            assert!(text.lines().any(|l| l.ends_with(method)), "{text}");
            assert!(!text.contains("Discount") && !text.contains("折扣"));
            let html = render_html(&r, lang);
            assert!(html.contains(title) && html.contains(method));
        }
        r.payment_method = "wechat".into();
        assert!(render_text(&r, 48, Lang::En).contains("WeChat Pay"));
    }

    #[test]
    fn html_escapes_everything_it_shows() {
        let mut r = sample();
        r.store_name = "<script>alert(1)</script> & \"shop\"".into();
        r.cashier = Some("o'neil<b>".into());
        let html = render_html(&r, Lang::En);
        assert!(!html.contains("<script>"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;shop&quot;"));
        assert!(html.contains("o&#39;neil&lt;b&gt;"));
        assert!(html.contains("id=\"pending-sync\""));
        assert!(html.starts_with("<!doctype html><html lang=\"en\">"));
    }

    proptest! {
        /// Whatever the names and amounts, no line is wider than the paper.
        #[test]
        fn no_line_is_wider_than_the_paper(
            store in "[a-zA-Z0-9 商店信義示範ｱ＊-]{0,80}",
            cashier in "[a-z商店]{1,40}",
            reason in "[a-z 尺寸不合]{1,120}",
            raw in 1i64..999_999_999_999,
            cols in prop::sample::select(WIDTHS.to_vec()),
            zh in any::<bool>(),
        ) {
            let mut r = sample();
            r.store_name = store;
            r.cashier = Some(cashier);
            r.reason = Some(reason);
            r.raw_amount = raw;
            r.final_amount = raw;
            r.tx_type = ["refund", "payment", "recharge"][(raw % 3) as usize].into();
            r.payment_method = ["cash", "wechat", "alipay"][(raw % 3) as usize].into();
            r.original_tx_no = Some("PAY-S001-000000000042".into());
            let lang = if zh { Lang::ZhHant } else { Lang::En };
            for line in render_text(&r, cols, lang).lines() {
                prop_assert!(width(line) <= cols, "{:?} is {} columns", line, width(line));
            }
        }
    }
}
