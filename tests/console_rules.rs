//! The console checks a form with the server's own rules before sending (issue 13,
//! item 1): `static/assets/rules.js`, run in node, must give the verdict the server's
//! validators give (`http::validate`, `domain::money`, `auth::check_password_policy`)
//! on the same text: the same code, or both accepting. A form that refused what the
//! server takes would stop a person for nothing; one that passed what the server refuses
//! would show them a round trip's worth of surprise.
//!
//! The inputs are hand-picked edges plus a few thousand generated strings over an
//! alphabet of digits, signs, dots and the white space and control characters on which
//! JavaScript and Rust disagree by default.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use mps_edge::domain::money::{cents_from_json, AmountError};
use mps_edge::error::ErrorCode;
use serde_json::{json, Value};

/// What the console does with a form's text: rules.js's verdicts on each input, as one
/// JSON array per rule.
fn console_verdicts(node: &std::path::Path, inputs: &[String]) -> Value {
    let module = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("static/assets/rules.js");
    let script = format!(
        "import * as r from {:?};\n\
         const inputs = JSON.parse(process.argv[1]);\n\
         const code = (p) => (p ? p.code : null);\n\
         console.log(JSON.stringify({{\n\
           positive: inputs.map((s) => code(r.checkPositiveAmount(s, 'amount', 'NOT_POSITIVE'))),\n\
           amount: inputs.map((s) => code(r.checkAmount(s, 'amount'))),\n\
           text: inputs.map((s) => code(r.checkText(s, 8, 'name'))),\n\
           key: inputs.map((s) => code(r.checkKey(s, 8, 'q'))),\n\
           password: inputs.map((s) => code(r.checkPassword(s))),\n\
           sent: inputs.map((s) => String(s).trim()),\n\
         }}));",
        format!("file://{}", module.display())
    );
    let out = std::process::Command::new(node)
        .args(["--input-type=module", "-e", &script])
        .arg(serde_json::to_string(inputs).unwrap())
        .output()
        .expect("run node");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("node prints JSON")
}

fn code(result: Result<(), ErrorCode>) -> Value {
    match result {
        Ok(()) => Value::Null,
        Err(c) => json!(c.as_str()),
    }
}

/// The server's verdicts on what the console sends: the forms send amounts and names
/// trimmed by JavaScript's `trim()` (`sent`), keys and passwords as typed.
fn server_verdicts(inputs: &[String], sent: &[String]) -> Value {
    let amount = |s: &str, not_positive: &str| match cents_from_json(&json!(s)) {
        Ok(_) => Value::Null,
        Err(AmountError::NotPositive) => json!(not_positive),
        Err(AmountError::Malformed) => json!("INVALID_AMOUNT"),
    };
    let text = |s: &str| {
        code(
            mps_edge::http::validate::trimmed(s, "name", 8)
                .map(|_| ())
                .map_err(|e| e.code()),
        )
    };
    let key = |s: &str| code(mps_edge::http::validate::key(s, "q", 8).map_err(|e| e.code()));
    let password = |s: &str| {
        code(mps_edge::auth::check_password_policy(s).map_err(|_| ErrorCode::ValidationError))
    };
    json!({
        "positive": sent.iter().map(|s| amount(s, "NOT_POSITIVE")).collect::<Vec<_>>(),
        // the settings' amounts: a bad one is a VALIDATION_ERROR naming the key
        "amount": sent.iter().map(|s| match amount(s, "x") {
            Value::Null => Value::Null,
            _ => json!("VALIDATION_ERROR"),
        }).collect::<Vec<_>>(),
        "text": sent.iter().map(|s| text(s)).collect::<Vec<_>>(),
        // keys and passwords are sent as typed
        "key": inputs.iter().map(|s| key(s)).collect::<Vec<_>>(),
        "password": inputs.iter().map(|s| password(s)).collect::<Vec<_>>(),
    })
}

/// Edges, then `n` strings from a fixed generator (the same every run).
fn inputs(n: usize) -> Vec<String> {
    let mut out: Vec<String> = [
        "",
        "0",
        "0.00",
        "00",
        "0.01",
        "0.1",
        "1",
        "01",
        "1.",
        ".5",
        "1.5",
        "1.50",
        "1.505",
        "-1",
        "-0",
        "-0.00",
        "+1",
        "1e3",
        "1E3",
        " 12.30 ",
        "12 .30",
        "9999999999.99",
        "10000000000",
        "09999999999.99",
        "0009999999999",
        "١٢",
        "１２",
        "NaN",
        "Infinity",
        "12,30",
        "\u{feff}12",
        "12\u{feff}",
        "\u{85}12",
        "12\u{85}",
        "\u{3000}12\u{3000}",
        "\u{a0}12",
        "a\u{7f}b",
        "a\u{9f}b",
        "abcdefgh",
        "abcdefghi",
        "漢字漢字漢字漢字",
        "漢字漢字漢字漢字漢",
        "😀😀😀😀😀😀😀😀",
        "😀😀😀😀😀😀😀😀😀",
        "\t",
        " ",
        "a b",
        "password",
        "passwor",
        "pass\u{0}word",
        "\u{2028}x",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    const ALPHABET: &[char] = &[
        '0', '0', '1', '2', '5', '9', '.', '.', '-', '+', 'e', ' ', '\t', '\u{85}', '\u{a0}',
        '\u{feff}', '\u{3000}', '\u{7f}', '\u{2028}', 'a', '漢', '😀', ',',
    ];
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        // xorshift64*: enough spread for a corpus, and the same corpus every run
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    for _ in 0..n {
        let len = (next() % 14) as usize;
        out.push(
            (0..len)
                .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize])
                .collect(),
        );
    }
    out
}

#[test]
fn the_consoles_checks_are_the_servers() {
    let Some(node) = support::app::node() else {
        return;
    };
    let inputs = inputs(4000);
    let console = console_verdicts(&node, &inputs);
    let sent: Vec<String> = console["sent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    let server = server_verdicts(&inputs, &sent);
    let mut problems = Vec::new();
    for rule in ["positive", "amount", "text", "key", "password"] {
        for (i, input) in inputs.iter().enumerate() {
            let (c, s) = (&console[rule][i], &server[rule][i]);
            if c != s {
                problems.push(format!("{rule} {input:?}: console {c}, server {s}"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} disagreements, e.g.:\n{}",
        problems.len(),
        problems[..problems.len().min(20)].join("\n")
    );
}
