//! The console's error messages (issue 13, item 1): every code the server can return has
//! a message in both dictionaries of `static/assets/i18n.js`, Traditional Chinese and
//! English, and the dictionaries hold no message for a code the server does not have.
//!
//! The dictionaries are the object literals `const zh = { … };` and `const en = { … };`,
//! mapped to their locales by `const dictionaries = { 'zh-Hant': zh, en };`. A message
//! key is `err_<CODE>`, or `err_<CODE>.<variant>` for a variant `errorText` picks from the
//! error's details (a field the server names, or what `variantOf` tells apart).

use std::collections::{BTreeMap, BTreeSet};

use mps_edge::error::ErrorCode;

/// `err_` keys for failures that are not an API error code: no answer from the server
/// (`err_network`), and a code this console does not know (`err_unknown`).
const CLIENT_ONLY: &[&str] = &["network", "unknown"];

/// The parameters `errorText` passes; a message may use no other placeholder.
const PARAMS: &[&str] = &["minutes", "no", "message", "field", "code"];

/// Latin words a Traditional Chinese message may contain.
const ZH_LATIN_OK: &[&str] = &["QR", "POS", "CSV", "CSRF", "PIN"];

fn source() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/static/assets/i18n.js");
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A JavaScript string literal at the start of `s` (quoted with ' or "): its text and
/// the rest of `s`.
fn string_literal(s: &str) -> Option<(String, &str)> {
    let quote = s.chars().next().filter(|q| *q == '\'' || *q == '"')?;
    let mut text = String::new();
    let mut chars = s[1..].char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next()?.1 {
                'n' => text.push('\n'),
                other => text.push(other),
            },
            c if c == quote => return Some((text, &s[1 + i + 1..])),
            '\n' => return None,
            c => text.push(c),
        }
    }
    None
}

/// The pairs of the object literal `const <name> = { … };` (every value a string).
fn dictionary(src: &str, name: &str) -> Vec<(String, String)> {
    let open = format!("\nconst {name} = {{\n");
    let start = src
        .find(&open)
        .unwrap_or_else(|| panic!("i18n.js has no `const {name} = {{`"))
        + open.len();
    let len = src[start..]
        .find("\n};")
        .unwrap_or_else(|| panic!("`const {name}` does not end with `}};`"));
    let mut rest = &src[start..start + len];
    let mut pairs = Vec::new();
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == ',');
        if rest.starts_with("//") {
            rest = rest.split_once('\n').map_or("", |(_, r)| r);
            continue;
        }
        if rest.is_empty() {
            return pairs;
        }
        let context = || rest.chars().take(60).collect::<String>();
        let (key, after) = match string_literal(rest) {
            Some(quoted) => quoted,
            None => {
                let n = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '$'))
                    .unwrap_or(rest.len());
                assert!(n > 0, "`const {name}`: no key at {:?}", context());
                (rest[..n].to_string(), &rest[n..])
            }
        };
        let after = after
            .trim_start()
            .strip_prefix(':')
            .unwrap_or_else(|| panic!("`const {name}`: no `:` after {key:?}"));
        let (value, after) = string_literal(after.trim_start())
            .unwrap_or_else(|| panic!("`const {name}`: the value of {key:?} is not a string"));
        pairs.push((key, value));
        rest = after;
    }
}

/// The `{name}` placeholders of a message.
fn placeholders(text: &str) -> Vec<&str> {
    text.split('{')
        .skip(1)
        .filter_map(|s| s.split_once('}').map(|(p, _)| p))
        .collect()
}

/// Latin words in a message, placeholders left out, that a Chinese message should not have.
fn latin_words(text: &str) -> Vec<String> {
    let mut plain = String::new();
    let mut depth = 0;
    for c in text.chars() {
        match c {
            '{' => depth += 1,
            '}' if depth > 0 => depth -= 1,
            c if depth == 0 => plain.push(c),
            _ => {}
        }
    }
    plain
        .split(|c: char| !c.is_ascii_alphabetic())
        .filter(|w| !w.is_empty() && !ZH_LATIN_OK.contains(w))
        .map(str::to_string)
        .collect()
}

#[test]
fn every_error_code_has_a_message_in_both_languages() {
    let src = source();
    assert!(
        src.contains("const dictionaries = { 'zh-Hant': zh, en };"),
        "i18n.js no longer maps zh-Hant to `zh` and en to `en`; update this test"
    );
    let codes: BTreeSet<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    let mut problems = Vec::new();
    let mut keys: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for (lang, name) in [("zh-Hant", "zh"), ("en", "en")] {
        let pairs = dictionary(&src, name);
        let mut seen = BTreeMap::new();
        for (key, value) in &pairs {
            if seen.insert(key.clone(), value.clone()).is_some() {
                problems.push(format!("{lang}: {key} is defined twice"));
            }
        }
        for code in &codes {
            if !seen.contains_key(&format!("err_{code}")) {
                problems.push(format!("{lang}: no message err_{code}"));
            }
        }
        for (key, value) in &seen {
            let Some(name) = key.strip_prefix("err_") else {
                continue;
            };
            let base = name.split('.').next().unwrap_or(name);
            if !codes.contains(base) && !CLIENT_ONLY.contains(&base) {
                problems.push(format!(
                    "{lang}: {key} is for no code the server has (client-only keys: {CLIENT_ONLY:?})"
                ));
            }
            for p in placeholders(value) {
                if !PARAMS.contains(&p) {
                    problems.push(format!(
                        "{lang}: {key} uses {{{p}}}, which errorText does not pass"
                    ));
                }
            }
        }
        if lang == "zh-Hant" {
            for (key, value) in &seen {
                if key.starts_with("err_") || key.starts_with("field_") {
                    let words = latin_words(value);
                    if !words.is_empty() {
                        problems.push(format!("zh-Hant: {key} has English words {words:?}"));
                    }
                }
            }
        }
        keys.insert(
            lang,
            seen.into_keys()
                .filter(|k| k.starts_with("err_") || k.starts_with("field_"))
                .collect(),
        );
    }
    for (lang, other) in [("zh-Hant", "en"), ("en", "zh-Hant")] {
        for key in keys[lang].difference(&keys[other]) {
            // A code's own message missing is reported above.
            if key.strip_prefix("err_").is_some_and(|c| codes.contains(c)) {
                continue;
            }
            problems.push(format!("{other}: no {key}, which {lang} has"));
        }
    }
    assert!(
        problems.is_empty(),
        "static/assets/i18n.js, {} problem(s):\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}

/// The console's audit filter offers exactly the server's families (`domain::audit`),
/// in its order, each with a name in both languages: a family added on one side only
/// would be a filter the server refuses, or one the console cannot offer.
#[test]
fn the_audit_families_are_the_servers() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/static/assets/audit-text.js");
    let js = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let open = "const FAMILIES = [";
    let start = js
        .find(open)
        .unwrap_or_else(|| panic!("audit-text.js has no `{open}`"))
        + open.len();
    let end = start + js[start..].find("];").expect("FAMILIES ends with `];`");
    let mut rest = js[start..end].trim_start();
    let mut console = Vec::new();
    while let Some((name, after)) = string_literal(rest) {
        console.push(name);
        rest = after.trim_start().trim_start_matches(',').trim_start();
    }
    assert!(
        rest.is_empty(),
        "FAMILIES holds something other than strings: {rest}"
    );
    let server: Vec<String> = mps_edge::domain::audit::family_names()
        .iter()
        .map(|f| f.to_string())
        .collect();
    assert_eq!(console, server);
    let src = source();
    for name in ["zh", "en"] {
        let keys: BTreeSet<String> = dictionary(&src, name).into_iter().map(|(k, _)| k).collect();
        for f in &server {
            assert!(
                keys.contains(&format!("family_{f}")),
                "{name}: no family_{f}"
            );
        }
    }
}
