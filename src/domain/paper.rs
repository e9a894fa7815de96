//! Laying text out on thermal-printer paper: a fixed number of display columns, where a
//! CJK character takes two (as `unicode-width` counts it), so no line wraps on paper.
//! Used by receipts and shift reports.

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use super::money::format_cents;

/// Display columns of `s`.
pub fn width(s: &str) -> usize {
    UnicodeWidthStr::width(s)
}

/// Splits `text` into lines of at most `cols` display columns, never inside a
/// character; control characters are dropped.
pub fn wrap(text: &str, cols: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    let mut used = 0;
    for c in text.chars().filter(|c| !c.is_control()) {
        let w = UnicodeWidthChar::width(c).unwrap_or(0);
        if used + w > cols && used > 0 {
            lines.push(String::new());
            used = 0;
        }
        if let Some(last) = lines.last_mut() {
            last.push(c);
        }
        used += w;
    }
    lines
}

pub fn center(text: &str, cols: usize, out: &mut Vec<String>) {
    for line in wrap(text, cols) {
        let pad = (cols - width(&line).min(cols)) / 2;
        out.push(format!("{}{line}", " ".repeat(pad)));
    }
}

/// `label` at the left and `value` at the right of one line, or the value right-aligned
/// on the lines below when both do not fit.
pub fn pair(label: &str, value: &str, cols: usize, out: &mut Vec<String>) {
    let (lw, vw) = (width(label), width(value));
    if lw + 1 + vw <= cols {
        out.push(format!("{label}{}{value}", " ".repeat(cols - lw - vw)));
        return;
    }
    out.extend(wrap(label, cols));
    for line in wrap(value, cols) {
        out.push(format!(
            "{}{line}",
            " ".repeat(cols - width(&line).min(cols))
        ));
    }
}

pub fn money(currency: &str, cents: i64) -> String {
    let amount = format_cents(cents);
    // Thousands separators, as the console shows amounts.
    let (sign, digits) = amount
        .strip_prefix('-')
        .map_or(("", amount.as_str()), |d| ("-", d));
    let (int, frac) = digits.split_once('.').unwrap_or((digits, "00"));
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{sign}{currency} {grouped}.{frac}")
        .trim_start()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_grouped_with_the_currency() {
        assert_eq!(money("NT$", 123_456_789), "NT$ 1,234,567.89");
        assert_eq!(money("NT$", 5), "NT$ 0.05");
        assert_eq!(money("NT$", -1000), "-NT$ 10.00");
        assert_eq!(money("", 100_000), "1,000.00");
    }

    #[test]
    fn pairs_fill_the_line_or_break_it() {
        let mut out = Vec::new();
        pair("實付", "NT$ 1.00", 32, &mut out);
        assert_eq!(out, vec![format!("實付{}NT$ 1.00", " ".repeat(20))]);
        out.clear();
        pair("Reason", &"長".repeat(20), 32, &mut out);
        assert_eq!(out[0], "Reason");
        assert!(out[1..].iter().all(|l| width(l) <= 32));
        out.clear();
        center("abc", 32, &mut out);
        assert_eq!(out, vec![format!("{}abc", " ".repeat(14))]);
    }
}
