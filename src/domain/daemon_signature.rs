//! The head-office daemon's request signature (seed 003's ingest signing).
//!
//! A signed request carries `X-Ingest-Ts` (unix seconds, decimal digits) and
//! `X-Ingest-Sign`: the lowercase hex HMAC-SHA256, keyed with the site's shared secret,
//! of `ts + "\n" + METHOD + "\n" + path + "\n" + body` (path without the query string,
//! body as raw bytes, empty for GET). It is accepted when the headers are well-formed,
//! `|now - ts| <= 300`, and the HMAC verifies — checked in that order, so a stale request
//! costs no HMAC. Whether this exact signature was already accepted (a replay) is the
//! caller's to check, after this says the request is genuine: only genuine signatures
//! may take room in a replay cache.
//!
//! Pure: the clock reading and the secret are arguments.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The header holding the timestamp.
pub const TS_HEADER: &str = "x-ingest-ts";
/// The header holding the signature.
pub const SIGN_HEADER: &str = "x-ingest-sign";
/// How far (either way) a request's timestamp may be from this edge's clock.
pub const WINDOW_SECS: i64 = 300;
/// Longest timestamp accepted: unix seconds have 10 digits until the year 2286; this
/// leaves room and keeps any accepted text inside an `i64`.
const MAX_TS_DIGITS: usize = 12;
/// Bytes in an HMAC-SHA256 tag.
pub const TAG_LEN: usize = 32;

/// A request as far as its signature is concerned: the two headers as sent (`None`
/// when absent; not UTF-8 is the caller's to pass as a value that fails the format
/// check, e.g. `Some("")`), the method, the path without the query string, and the raw body.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    pub ts: Option<&'a str>,
    pub sign: Option<&'a str>,
    pub method: &'a str,
    pub path: &'a str,
    pub body: &'a [u8],
}

/// Why a request is refused. `reason` names it in metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// One or both headers absent.
    Missing,
    /// A header present but not in its format (ts not decimal digits, sign not 64
    /// lowercase hex digits).
    Malformed,
    /// The timestamp is more than [`WINDOW_SECS`] from now.
    Stale,
    /// The HMAC does not verify (wrong secret, or anything signed was changed).
    Invalid,
    /// This exact signature was accepted before (decided by the replay cache).
    Replayed,
}

impl Rejection {
    pub fn reason(self) -> &'static str {
        match self {
            Rejection::Missing => "missing",
            Rejection::Malformed => "malformed",
            Rejection::Stale => "stale",
            Rejection::Invalid => "invalid",
            Rejection::Replayed => "replayed",
        }
    }
}

/// A request whose signature verified: its timestamp and tag, the replay cache's key
/// (the tag covers the timestamp, so the pair names this exact signature).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    pub ts: i64,
    pub tag: [u8; TAG_LEN],
}

/// The bytes that are signed: `ts \n METHOD \n path \n body`.
pub fn signing_message(ts: &str, method: &str, path: &str, body: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(ts.len() + method.len() + path.len() + body.len() + 3);
    for part in [ts.as_bytes(), method.as_bytes(), path.as_bytes()] {
        msg.extend_from_slice(part);
        msg.push(b'\n');
    }
    msg.extend_from_slice(body);
    msg
}

fn tag(secret: &[u8], message: &[u8]) -> Option<[u8; TAG_LEN]> {
    // HMAC takes a key of any length; the error case cannot happen.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).ok()?;
    mac.update(message);
    Some(mac.finalize().into_bytes().into())
}

/// The `X-Ingest-Sign` value for a request: what a daemon computes (and tests use).
pub fn sign(secret: &[u8], ts: &str, method: &str, path: &str, body: &[u8]) -> String {
    tag(secret, &signing_message(ts, method, path, body)).map_or_else(String::new, hex::encode)
}

fn parse_ts(text: &str) -> Option<i64> {
    if text.is_empty() || text.len() > MAX_TS_DIGITS || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Exactly 64 lowercase hex digits. Uppercase is refused: one spelling per signature,
/// so "this exact signature" means one thing to the daemon, the logs and the cache.
fn parse_tag(text: &str) -> Option<[u8; TAG_LEN]> {
    if text.len() != 2 * TAG_LEN
        || !text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    let mut out = [0u8; TAG_LEN];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

/// Checks, in order: headers present and well-formed → timestamp within the window of
/// `now` (unix seconds) → HMAC under `secret` (compared in constant time).
pub fn verify(secret: &[u8], req: &SignedRequest<'_>, now: i64) -> Result<Verified, Rejection> {
    let (Some(ts_text), Some(sign_text)) = (req.ts, req.sign) else {
        return Err(Rejection::Missing);
    };
    let ts = parse_ts(ts_text).ok_or(Rejection::Malformed)?;
    let claimed = parse_tag(sign_text).ok_or(Rejection::Malformed)?;
    if now.abs_diff(ts) > WINDOW_SECS.unsigned_abs() {
        return Err(Rejection::Stale);
    }
    let expected = tag(
        secret,
        &signing_message(ts_text, req.method, req.path, req.body),
    )
    .ok_or(Rejection::Invalid)?;
    if bool::from(expected.ct_eq(&claimed)) {
        Ok(Verified { ts, tag: claimed })
    } else {
        Err(Rejection::Invalid)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-site-S001";
    const NOW: i64 = 1_700_000_000;
    const PATH: &str = "/api/v1/daemon/sync";
    const BODY: &[u8] = br#"{"reason":"manual"}"#;

    #[test]
    fn the_message_is_ts_method_path_body_joined_by_newlines() {
        assert_eq!(
            signing_message("1700000000", "POST", PATH, BODY),
            b"1700000000\nPOST\n/api/v1/daemon/sync\n{\"reason\":\"manual\"}".to_vec()
        );
        assert_eq!(
            signing_message("1", "GET", "/p", b""),
            b"1\nGET\n/p\n".to_vec()
        );
    }

    /// A known answer, computed outside this code (Python: `hmac.new(b"key-of-32-characters-for-tests!!",
    /// b"1700000000\nGET\n/api/v1/daemon/status\n", "sha256").hexdigest()`), so the
    /// format cannot drift while `sign` and `verify` drift together.
    #[test]
    fn sign_matches_an_independent_hmac() {
        assert_eq!(
            sign(
                b"key-of-32-characters-for-tests!!",
                "1700000000",
                "GET",
                "/api/v1/daemon/status",
                b""
            ),
            "2a960e6e23ddc4d069de8bf58359e1ca3ebb325a56a537c591918c4e9dff75fa"
        );
    }

    /// One row per way a request can be wrong: what is sent and how it is verified.
    struct Case {
        name: &'static str,
        /// The secret the sender signed with.
        signed_with: &'static [u8],
        /// The ts header sent and the ts that was signed (usually the same).
        ts: Option<String>,
        signed_ts: Option<String>,
        /// What was signed: method, path, body.
        signed: (&'static str, &'static str, &'static [u8]),
        /// What arrives: method, path, body.
        sent: (&'static str, &'static str, &'static [u8]),
        /// Post-processing of the hex signature, and whether to send it at all.
        sign: fn(String) -> Option<String>,
        want: Result<(), Rejection>,
    }

    fn base(name: &'static str) -> Case {
        Case {
            name,
            signed_with: SECRET,
            ts: Some(NOW.to_string()),
            signed_ts: None,
            signed: ("POST", PATH, BODY),
            sent: ("POST", PATH, BODY),
            sign: Some,
            want: Ok(()),
        }
    }

    fn cases() -> Vec<Case> {
        let mut one_byte = BODY.to_vec();
        one_byte[2] ^= 1;
        let one_byte: &'static [u8] = Box::leak(one_byte.into_boxed_slice());
        vec![
            base("valid"),
            Case {
                sent: ("GET", "/api/v1/daemon/status", b""),
                signed: ("GET", "/api/v1/daemon/status", b""),
                ..base("valid GET with an empty body")
            },
            Case {
                ts: Some((NOW - WINDOW_SECS).to_string()),
                ..base("ts at the window's old edge")
            },
            Case {
                ts: Some((NOW + WINDOW_SECS).to_string()),
                ..base("ts at the window's new edge")
            },
            Case {
                signed_with: b"another-site-secret-0123456789abcdef",
                want: Err(Rejection::Invalid),
                ..base("wrong secret")
            },
            Case {
                sent: ("PUT", PATH, BODY),
                want: Err(Rejection::Invalid),
                ..base("wrong method")
            },
            Case {
                sent: ("post", PATH, BODY),
                want: Err(Rejection::Invalid),
                ..base("method case differs")
            },
            Case {
                sent: ("POST", "/api/v1/daemon/status", BODY),
                want: Err(Rejection::Invalid),
                ..base("wrong path")
            },
            Case {
                sent: ("POST", "/api/v1/daemon/sync/", BODY),
                want: Err(Rejection::Invalid),
                ..base("path with a trailing slash")
            },
            Case {
                sent: ("POST", PATH, one_byte),
                want: Err(Rejection::Invalid),
                ..base("body changed by one byte")
            },
            Case {
                sent: ("POST", PATH, &BODY[..BODY.len() - 1]),
                want: Err(Rejection::Invalid),
                ..base("body truncated by one byte")
            },
            Case {
                sent: ("POST", PATH, b""),
                want: Err(Rejection::Invalid),
                ..base("body dropped")
            },
            Case {
                ts: Some((NOW + 1).to_string()),
                signed_ts: Some(NOW.to_string()),
                want: Err(Rejection::Invalid),
                ..base("ts changed after signing")
            },
            Case {
                ts: Some((NOW - WINDOW_SECS - 1).to_string()),
                want: Err(Rejection::Stale),
                ..base("ts 301 s old")
            },
            Case {
                ts: Some((NOW + WINDOW_SECS + 1).to_string()),
                want: Err(Rejection::Stale),
                ..base("ts 301 s ahead")
            },
            Case {
                ts: Some("0".into()),
                want: Err(Rejection::Stale),
                ..base("ts zero")
            },
            Case {
                ts: Some("17e8".into()),
                want: Err(Rejection::Malformed),
                ..base("ts non-numeric")
            },
            Case {
                ts: Some(format!("{NOW}.5")),
                want: Err(Rejection::Malformed),
                ..base("ts fractional")
            },
            Case {
                ts: Some(format!("-{NOW}")),
                want: Err(Rejection::Malformed),
                ..base("ts negative")
            },
            Case {
                ts: Some(format!("+{NOW}")),
                want: Err(Rejection::Malformed),
                ..base("ts with a plus sign")
            },
            Case {
                ts: Some(format!(" {NOW}")),
                want: Err(Rejection::Malformed),
                ..base("ts with a space")
            },
            Case {
                ts: Some(String::new()),
                want: Err(Rejection::Malformed),
                ..base("ts empty")
            },
            Case {
                ts: Some("9".repeat(40)),
                want: Err(Rejection::Malformed),
                ..base("ts too long for an i64")
            },
            Case {
                sign: |s| Some(s.replace(|c: char| c.is_ascii_hexdigit(), "z")),
                want: Err(Rejection::Malformed),
                ..base("sign not hex")
            },
            Case {
                sign: |s| Some(s.to_ascii_uppercase()),
                want: Err(Rejection::Malformed),
                ..base("sign in uppercase hex")
            },
            Case {
                sign: |s| Some(s[..62].to_string()),
                want: Err(Rejection::Malformed),
                ..base("sign one byte short")
            },
            Case {
                sign: |s| Some(format!("{s}00")),
                want: Err(Rejection::Malformed),
                ..base("sign one byte long")
            },
            Case {
                sign: |s| Some(format!("sha256={s}")),
                want: Err(Rejection::Malformed),
                ..base("sign with a prefix")
            },
            Case {
                sign: |s| {
                    let flipped = if s.starts_with('0') { "1" } else { "0" };
                    Some(format!("{flipped}{}", &s[1..]))
                },
                want: Err(Rejection::Invalid),
                ..base("sign with one digit changed")
            },
            Case {
                sign: |_| None,
                want: Err(Rejection::Missing),
                ..base("sign header missing")
            },
            Case {
                ts: None,
                want: Err(Rejection::Missing),
                ..base("ts header missing")
            },
            Case {
                ts: None,
                sign: |_| None,
                want: Err(Rejection::Missing),
                ..base("both headers missing")
            },
            Case {
                ts: Some((NOW - 1000).to_string()),
                signed_with: b"another-site-secret-0123456789abcdef",
                want: Err(Rejection::Stale),
                ..base("stale and wrong secret: the window is checked first")
            },
            Case {
                ts: Some("x".into()),
                sign: |_| None,
                want: Err(Rejection::Missing),
                ..base("missing beats malformed")
            },
        ]
    }

    #[test]
    fn every_case_gets_its_verdict() {
        for case in cases() {
            let signed_ts = case
                .signed_ts
                .clone()
                .or(case.ts.clone())
                .unwrap_or_default();
            let (m, p, b) = case.signed;
            let signature = (case.sign)(sign(case.signed_with, &signed_ts, m, p, b));
            let (method, path, body) = case.sent;
            let req = SignedRequest {
                ts: case.ts.as_deref(),
                sign: signature.as_deref(),
                method,
                path,
                body,
            };
            let got = verify(SECRET, &req, NOW);
            match case.want {
                Ok(()) => {
                    let v = got.unwrap_or_else(|e| panic!("{}: refused as {e:?}", case.name));
                    assert_eq!(Some(v.ts.to_string()), case.ts, "{}", case.name);
                    assert_eq!(
                        Some(hex::encode(v.tag)),
                        signature,
                        "{}: the tag is the one sent",
                        case.name
                    );
                }
                Err(want) => assert_eq!(got, Err(want), "{}", case.name),
            }
        }
    }

    #[test]
    fn reasons_are_distinct_metric_labels() {
        let all = [
            Rejection::Missing,
            Rejection::Malformed,
            Rejection::Stale,
            Rejection::Invalid,
            Rejection::Replayed,
        ];
        let labels: std::collections::HashSet<_> = all.iter().map(|r| r.reason()).collect();
        assert_eq!(labels.len(), all.len());
    }
}
