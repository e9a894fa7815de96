//! One table of malformed, hostile or unauthorised requests against the real server.
//! Every row must get its exact status and error code, never a 500, and after the whole
//! table nothing may have been written: no transaction, no outbox row, no pending debit.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use mps_edge::auth::{Claims, JwtKeys};
use support::server::{raw_request, TestServer, API, JWT_SECRET};

#[derive(Clone)]
enum Auth {
    None,
    Owner,
    Cashier,
    /// A raw `Authorization` header value.
    Raw(Vec<u8>),
}

struct Row {
    name: String,
    method: &'static str,
    path: String,
    auth: Auth,
    headers: Vec<(String, Vec<u8>)>,
    body: Option<Vec<u8>>,
    status: u16,
    /// `None` for a success row (status 200 without an error envelope).
    code: Option<&'static str>,
}

impl Row {
    fn new(name: &str, method: &'static str, path: &str, auth: Auth) -> Row {
        Row {
            name: name.to_string(),
            method,
            path: path.to_string(),
            auth,
            headers: Vec::new(),
            body: None,
            status: 0,
            code: None,
        }
    }

    /// A JSON body with `Content-Type: application/json`.
    fn json(mut self, body: impl Into<String>) -> Row {
        self.headers
            .push(("content-type".into(), b"application/json".to_vec()));
        self.body = Some(body.into().into_bytes());
        self
    }

    /// A body without any content type.
    fn raw_body(mut self, body: impl Into<Vec<u8>>) -> Row {
        self.body = Some(body.into());
        self
    }

    fn ct(mut self, value: &str) -> Row {
        self.headers.retain(|(k, _)| k != "content-type");
        self.headers
            .push(("content-type".into(), value.as_bytes().to_vec()));
        self
    }

    fn hdr(mut self, name: &str, value: impl Into<Vec<u8>>) -> Row {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    fn is(mut self, status: u16, code: &'static str) -> Row {
        self.status = status;
        self.code = Some(code);
        self
    }

    fn ok(mut self) -> Row {
        self.status = 200;
        self.code = None;
        self
    }
}

const GET: &str = "GET";
const POST: &str = "POST";

fn post(name: &str, path: &str, auth: Auth, body: impl Into<String>) -> Row {
    Row::new(name, POST, path, auth).json(body)
}

fn get(name: &str, path: &str, auth: Auth) -> Row {
    Row::new(name, GET, path, auth)
}

fn sign(claims: &Claims, secret: &[u8]) -> String {
    JwtKeys::new(secret).sign(claims).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_inputs_are_refused_cleanly_and_write_nothing() {
    let srv = TestServer::start().await;
    let owner = srv.owner_token().await;
    let cashier = srv.cashier_token().await;
    let owner_pair = srv
        .login_pair(&srv.owner.0.clone(), &srv.owner.1.clone())
        .await;
    let owner_refresh = owner_pair["refresh_token"].as_str().unwrap().to_string();

    // Real, live QR tokens, so rows that fail on another field prove nothing was charged.
    let live = srv.qr("STD00000005").await;
    let frozen = srv.qr("STD00000023").await;
    let unknown = format!("{}=", "A".repeat(43)); // 44 chars, 32 bytes of base64, never issued
    assert_eq!(unknown.len(), 44);

    // Forged bearer tokens.
    let owner_id: String = srv
        .read(|c| {
            c.query_row("SELECT id FROM users WHERE username = 'owner'", [], |r| {
                r.get(0)
            })
        })
        .await;
    let now = chrono::Utc::now().timestamp();
    let claims = Claims {
        sub: owner_id.clone(),
        username: "owner".into(),
        role: "owner".into(),
        permissions: vec![],
        iat: now - 3600,
        exp: now - 1800,
        jti: "j".into(),
        fam: "f".into(),
        epoch: 0,
        dev: None,
    };
    let expired = sign(&claims, JWT_SECRET);
    let wrong_secret = sign(
        &Claims {
            exp: now + 600,
            ..claims.clone()
        },
        b"some-other-secret-that-is-also-long-enough",
    );
    let ghost_user = sign(
        &Claims {
            sub: "00000000-0000-0000-0000-000000000000".into(),
            exp: now + 600,
            ..claims.clone()
        },
        JWT_SECRET,
    );
    let old_epoch = sign(
        &Claims {
            epoch: 7,
            exp: now + 600,
            ..claims.clone()
        },
        JWT_SECRET,
    );
    // alg "none": header {"alg":"none","typ":"JWT"} and no signature.
    let unsigned = {
        use base64::Engine;
        let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let payload = serde_json::json!({"sub": owner_id, "username": "owner", "role": "owner",
            "permissions": [], "iat": now, "exp": now + 600, "jti": "j", "fam": "f", "epoch": 0});
        format!(
            "{}.{}.",
            e.encode(br#"{"alg":"none","typ":"JWT"}"#),
            e.encode(payload.to_string())
        )
    };
    let bearer = |t: &str| Auth::Raw(format!("Bearer {t}").into_bytes());

    let charge = format!("{API}/merchant/charge");
    let refund = format!("{API}/merchant/refund");
    let validate = format!("{API}/common/qr/validate");
    let login = format!("{API}/auth/login");
    let users = format!("{API}/console/users");
    let settlements = format!("{API}/merchant/settlements");
    let refresh = format!("{API}/auth/refresh");
    let txs = format!("{API}/merchant/transactions");
    let summary = format!("{API}/merchant/daily-summary");
    let detail = |no: &str| format!("{API}/common/transactions/{no}");
    let c = |amount: &str| format!(r#"{{"qr_plain":"{live}","amount":{amount}}}"#);
    let cu = |amount: &str| format!(r#"{{"qr_plain":"{unknown}","amount":{amount}}}"#);
    let rf = |amount: &str| {
        format!(r#"{{"original_tx_no":"PAY-DEMO-0000000001","refund_amount":{amount}}}"#)
    };
    let big = format!(r#"{{"qr_plain":"{}","amount":"1.00"}}"#, "A".repeat(70_000));
    let under_limit = format!(r#"{{"qr_plain":"{}","amount":"1.00"}}"#, "A".repeat(65_000));
    let deep = format!(
        r#"{{"qr_plain":"{live}","amount":"1.00","tag":{{"a":{}1{}}}}}"#,
        "[".repeat(1000),
        "]".repeat(1000)
    );
    let big_tag = format!(
        r#"{{"qr_plain":"{live}","amount":"1.00","tag":{{"note":"{}"}}}}"#,
        "x".repeat(5000)
    );
    let k129 = "k".repeat(129);
    let k128 = "k".repeat(128);
    let o = || Auth::Owner;

    // One request per line, so the table reads as a table.
    #[rustfmt::skip]
    let rows: Vec<Row> = vec![
        // --- malformed JSON and wrong shapes -------------------------------------------
        post("charge: truncated JSON", &charge, o(), "{").is(400, "INVALID_JSON"),
        post("charge: not JSON", &charge, o(), "amount=1").is(400, "INVALID_JSON"),
        post("charge: empty body", &charge, o(), "").is(400, "INVALID_JSON"),
        post("charge: JSON null", &charge, o(), "null").is(400, "INVALID_JSON"),
        post("charge: JSON array", &charge, o(), "[]").is(400, "INVALID_JSON"),
        post("charge: trailing garbage", &charge, o(), format!("{} x", c("\"1.00\""))).is(400, "INVALID_JSON"),
        post("charge: duplicate field", &charge, o(), format!(r#"{{"qr_plain":"{live}","qr_plain":"{live}","amount":1}}"#)).is(400, "INVALID_JSON"),
        post("charge: unknown field", &charge, o(), format!(r#"{{"qr_plain":"{live}","amount":"1.00","card_no":"STD00000005"}}"#)).is(400, "INVALID_JSON"),
        post("charge: missing amount", &charge, o(), format!(r#"{{"qr_plain":"{live}"}}"#)).is(400, "INVALID_JSON"),
        post("charge: missing qr_plain", &charge, o(), r#"{"amount":"1.00"}"#).is(400, "INVALID_JSON"),
        post("charge: qr_plain is a number", &charge, o(), r#"{"qr_plain":12345,"amount":"1.00"}"#).is(400, "INVALID_JSON"),
        post("charge: idempotency_key is a number", &charge, o(), format!(r#"{{"qr_plain":"{live}","amount":"1.00","idempotency_key":5}}"#)).is(400, "INVALID_JSON"),
        post("charge: external_order_id is a number", &charge, o(), format!(r#"{{"qr_plain":"{live}","amount":"1.00","external_order_id":5}}"#)).is(400, "INVALID_JSON"),
        post("charge: tag nested 1000 deep", &charge, o(), deep).is(400, "INVALID_JSON"),
        Row::new("charge: invalid UTF-8", POST, &charge, o()).json("").raw_body(b"{\"qr_plain\":\"\xff\xfe\",\"amount\":1}".to_vec()).is(400, "INVALID_JSON"),
        // --- media type and size ------------------------------------------------------
        Row::new("charge: no content type", POST, &charge, o()).raw_body(c("\"1.00\"")).is(415, "UNSUPPORTED_MEDIA_TYPE"),
        post("charge: text/plain", &charge, o(), c("\"1.00\"")).ct("text/plain").is(415, "UNSUPPORTED_MEDIA_TYPE"),
        post("charge: form encoded", &charge, o(), c("\"1.00\"")).ct("application/x-www-form-urlencoded").is(415, "UNSUPPORTED_MEDIA_TYPE"),
        post("charge: application/jsonp", &charge, o(), c("\"1.00\"")).ct("application/jsonp").is(415, "UNSUPPORTED_MEDIA_TYPE"),
        Row::new("login: no content type", POST, &login, Auth::None).raw_body(r#"{"username":"owner","password":"x"}"#).is(415, "UNSUPPORTED_MEDIA_TYPE"),
        post("charge: json with charset, unknown token", &charge, o(), cu("\"1.00\"")).ct("application/json; charset=utf-8").is(422, "QR_EXPIRED_OR_INVALID"),
        post("charge: body over 64 KiB", &charge, o(), big.clone()).is(413, "PAYLOAD_TOO_LARGE"),
        post("refund: body over 64 KiB", &refund, o(), big.clone()).is(413, "PAYLOAD_TOO_LARGE"),
        post("login: body over 64 KiB", &login, Auth::None, big.clone()).is(413, "PAYLOAD_TOO_LARGE"),
        post("charge: body just under 64 KiB", &charge, o(), under_limit).is(400, "INVALID_QR"),
        // --- amounts ------------------------------------------------------------------
        post("charge: amount 0", &charge, o(), c("0")).is(400, "INVALID_PRICE"),
        post("charge: amount -1", &charge, o(), c("-1")).is(400, "INVALID_PRICE"),
        post("charge: amount \"0.00\"", &charge, o(), c("\"0.00\"")).is(400, "INVALID_PRICE"),
        post("charge: amount \"-0.01\"", &charge, o(), c("\"-0.01\"")).is(400, "INVALID_PRICE"),
        post("charge: amount 1.234", &charge, o(), c("1.234")).is(400, "INVALID_AMOUNT"),
        post("charge: amount \"1.234\"", &charge, o(), c("\"1.234\"")).is(400, "INVALID_AMOUNT"),
        post("charge: amount \"1e3\"", &charge, o(), c("\"1e3\"")).is(400, "INVALID_AMOUNT"),
        post("charge: amount 1e3 (number)", &charge, o(), c("1e3")).is(400, "INVALID_AMOUNT"),
        post("charge: amount \"abc\"", &charge, o(), c("\"abc\"")).is(400, "INVALID_AMOUNT"),
        post("charge: amount true", &charge, o(), c("true")).is(400, "INVALID_AMOUNT"),
        post("charge: amount null", &charge, o(), c("null")).is(400, "INVALID_AMOUNT"),
        post("charge: amount 10000000000", &charge, o(), c("10000000000")).is(400, "INVALID_AMOUNT"),
        post("charge: amount \"\"", &charge, o(), c("\"\"")).is(400, "INVALID_AMOUNT"),
        post("charge: amount \" 1.00\"", &charge, o(), c("\" 1.00\"")).is(400, "INVALID_AMOUNT"),
        post("charge: amount \"+1\"", &charge, o(), c("\"+1\"")).is(400, "INVALID_AMOUNT"),
        post("charge: amount \".5\"", &charge, o(), c("\".5\"")).is(400, "INVALID_AMOUNT"),
        post("charge: amount \"1.\"", &charge, o(), c("\"1.\"")).is(400, "INVALID_AMOUNT"),
        post("charge: amount \"1,00\"", &charge, o(), c("\"1,00\"")).is(400, "INVALID_AMOUNT"),
        post("charge: amount 1e400", &charge, o(), c("1e400")).is(400, "INVALID_AMOUNT"),
        post("charge: amount [1]", &charge, o(), c("[1]")).is(400, "INVALID_AMOUNT"),
        post("charge: amount {}", &charge, o(), c("{}")).is(400, "INVALID_AMOUNT"),
        post("charge: amount beyond the balance", &charge, o(), c("\"9999999999.99\"")).is(422, "INSUFFICIENT_BALANCE"),
        post("charge: frozen card", &charge, o(), format!(r#"{{"qr_plain":"{frozen}","amount":"1.00"}}"#)).is(422, "CARD_NOT_ACTIVE"),
        post("refund: amount 0", &refund, o(), rf("0")).is(400, "INVALID_REFUND_AMOUNT"),
        post("refund: amount -5", &refund, o(), rf("-5")).is(400, "INVALID_REFUND_AMOUNT"),
        post("refund: amount \"0.00\"", &refund, o(), rf("\"0.00\"")).is(400, "INVALID_REFUND_AMOUNT"),
        post("refund: amount 1.234", &refund, o(), rf("1.234")).is(400, "INVALID_AMOUNT"),
        post("refund: amount \"abc\"", &refund, o(), rf("\"abc\"")).is(400, "INVALID_AMOUNT"),
        post("refund: amount null", &refund, o(), rf("null")).is(400, "INVALID_AMOUNT"),
        // --- QR text ------------------------------------------------------------------
        post("charge: empty QR", &charge, o(), r#"{"qr_plain":"","amount":"1.00"}"#).is(400, "INVALID_QR"),
        post("charge: garbage QR", &charge, o(), r#"{"qr_plain":"hello","amount":"1.00"}"#).is(400, "INVALID_QR"),
        post("charge: 43-char QR", &charge, o(), format!(r#"{{"qr_plain":"{}","amount":"1.00"}}"#, "A".repeat(43))).is(400, "INVALID_QR"),
        post("charge: 44 chars, not base64", &charge, o(), format!(r#"{{"qr_plain":"{}","amount":"1.00"}}"#, "!".repeat(44))).is(400, "INVALID_QR"),
        post("charge: 44 chars of base64, 33 bytes", &charge, o(), format!(r#"{{"qr_plain":"{}","amount":"1.00"}}"#, "A".repeat(44))).is(400, "INVALID_QR"),
        post("charge: live QR with a trailing space", &charge, o(), format!(r#"{{"qr_plain":"{live} ","amount":"1.00"}}"#)).is(400, "INVALID_QR"),
        post("charge: well-formed unknown token", &charge, o(), cu("\"1.00\"")).is(422, "QR_EXPIRED_OR_INVALID"),
        post("charge: mq2 with an upper-case card id", &charge, o(), r#"{"qr_plain":"mq2.BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB.0123456789abcdef.7.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","amount":"1.00"}"#).is(400, "INVALID_QR"),
        post("validate: mq2 with an upper-case card id", &validate, o(), r#"{"qr_plain":"mq2.BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB.0123456789abcdef.7.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#).is(400, "INVALID_QR"),
        post("charge: mq2 with slot 0", &charge, o(), r#"{"qr_plain":"mq2.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.0123456789abcdef.0.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","amount":"1.00"}"#).is(400, "INVALID_QR"),
        post("validate: mq2 with slot 0", &validate, o(), r#"{"qr_plain":"mq2.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.0123456789abcdef.0.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#).is(400, "INVALID_QR"),
        post("charge: mq2 with a leading-zero slot", &charge, o(), r#"{"qr_plain":"mq2.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.0123456789abcdef.07.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","amount":"1.00"}"#).is(400, "INVALID_QR"),
        post("validate: mq2 with a leading-zero slot", &validate, o(), r#"{"qr_plain":"mq2.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.0123456789abcdef.07.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#).is(400, "INVALID_QR"),
        post("charge: mq2 with a 7-digit slot", &charge, o(), r#"{"qr_plain":"mq2.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.0123456789abcdef.1000000.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","amount":"1.00"}"#).is(400, "INVALID_QR"),
        post("validate: mq2 with a 7-digit slot", &validate, o(), r#"{"qr_plain":"mq2.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.0123456789abcdef.1000000.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#).is(400, "INVALID_QR"),
        post("charge: mq2 with a negative slot", &charge, o(), r#"{"qr_plain":"mq2.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.0123456789abcdef.-7.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","amount":"1.00"}"#).is(400, "INVALID_QR"),
        post("validate: mq2 with a negative slot", &validate, o(), r#"{"qr_plain":"mq2.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.0123456789abcdef.-7.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#).is(400, "INVALID_QR"),
        post("charge: mq2 with a short value", &charge, o(), r#"{"qr_plain":"mq2.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.0123456789abcdef.7.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","amount":"1.00"}"#).is(400, "INVALID_QR"),
        post("validate: mq2 with a short value", &validate, o(), r#"{"qr_plain":"mq2.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.0123456789abcdef.7.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#).is(400, "INVALID_QR"),
        post("charge: mq2 with padding", &charge, o(), r#"{"qr_plain":"mq2.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.0123456789abcdef.7.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","amount":"1.00"}"#).is(400, "INVALID_QR"),
        post("validate: mq2 with padding", &validate, o(), r#"{"qr_plain":"mq2.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.0123456789abcdef.7.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}"#).is(400, "INVALID_QR"),
        post("charge: mq2 with a non-canonical value", &charge, o(), r#"{"qr_plain":"mq2.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.0123456789abcdef.7.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB","amount":"1.00"}"#).is(400, "INVALID_QR"),
        post("validate: mq2 with a non-canonical value", &validate, o(), r#"{"qr_plain":"mq2.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.0123456789abcdef.7.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB"}"#).is(400, "INVALID_QR"),
        post("charge: mq2 with a sixth part", &charge, o(), r#"{"qr_plain":"mq2.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.0123456789abcdef.7.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.x","amount":"1.00"}"#).is(400, "INVALID_QR"),
        post("validate: mq2 with a sixth part", &validate, o(), r#"{"qr_plain":"mq2.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.0123456789abcdef.7.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA.x"}"#).is(400, "INVALID_QR"),
        post("charge: mq2 with a 15-digit chain id", &charge, o(), r#"{"qr_plain":"mq2.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.0123456789abcde.7.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","amount":"1.00"}"#).is(400, "INVALID_QR"),
        post("validate: mq2 with a 15-digit chain id", &validate, o(), r#"{"qr_plain":"mq2.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.0123456789abcde.7.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#).is(400, "INVALID_QR"),
        post("charge: mq2 with an upper-case chain id", &charge, o(), r#"{"qr_plain":"mq2.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.0123456789ABCDEF.7.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","amount":"1.00"}"#).is(400, "INVALID_QR"),
        post("validate: mq2 with an upper-case chain id", &validate, o(), r#"{"qr_plain":"mq2.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.0123456789ABCDEF.7.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}"#).is(400, "INVALID_QR"),
        post("validate: empty QR", &validate, o(), r#"{"qr_plain":""}"#).is(400, "INVALID_QR"),
        post("validate: garbage QR", &validate, o(), r#"{"qr_plain":"not a qr code at all"}"#).is(400, "INVALID_QR"),
        post("validate: unknown token", &validate, o(), format!(r#"{{"qr_plain":"{unknown}"}}"#)).is(422, "QR_EXPIRED_OR_INVALID"),
        post("validate: unknown field", &validate, o(), format!(r#"{{"qr_plain":"{live}","amount":1}}"#)).is(400, "INVALID_JSON"),
        post("validate: live token (does not write)", &validate, o(), format!(r#"{{"qr_plain":"{live}"}}"#)).ok(),
        // --- idempotency keys, tags, order ids ------------------------------------------
        post("charge: body key of 129 chars", &charge, o(), format!(r#"{{"qr_plain":"{live}","amount":"1.00","idempotency_key":"{k129}"}}"#)).is(400, "VALIDATION_ERROR"),
        post("charge: header key of 129 chars", &charge, o(), c("\"1.00\"")).hdr("idempotency-key", k129.clone()).is(400, "VALIDATION_ERROR"),
        post("charge: key of 128 chars is fine", &charge, o(), cu("\"1.00\"")).hdr("idempotency-key", k128.clone()).is(422, "QR_EXPIRED_OR_INVALID"),
        post("charge: body key with a space", &charge, o(), format!(r#"{{"qr_plain":"{live}","amount":"1.00","idempotency_key":"a b"}}"#)).is(400, "VALIDATION_ERROR"),
        post("charge: header key with a space", &charge, o(), c("\"1.00\"")).hdr("idempotency-key", "a b").is(400, "VALIDATION_ERROR"),
        post("charge: empty body key", &charge, o(), format!(r#"{{"qr_plain":"{live}","amount":"1.00","idempotency_key":""}}"#)).is(400, "VALIDATION_ERROR"),
        post("charge: non-ASCII body key", &charge, o(), format!(r#"{{"qr_plain":"{live}","amount":"1.00","idempotency_key":"ключ"}}"#)).is(400, "VALIDATION_ERROR"),
        post("charge: non-ASCII header key", &charge, o(), c("\"1.00\"")).hdr("idempotency-key", b"k\xe9y".to_vec()).is(400, "VALIDATION_ERROR"),
        post("charge: header and body keys differ", &charge, o(), format!(r#"{{"qr_plain":"{live}","amount":"1.00","idempotency_key":"key-a"}}"#)).hdr("idempotency-key", "key-b").is(422, "IDEMPOTENCY_KEY_MISMATCH"),
        post("refund: header and body keys differ", &refund, o(), r#"{"original_tx_no":"PAY-DEMO-0000000001","refund_amount":"1.00","idempotency_key":"key-a"}"#).hdr("idempotency-key", "key-b").is(422, "IDEMPOTENCY_KEY_MISMATCH"),
        post("charge: tag is an array", &charge, o(), format!(r#"{{"qr_plain":"{live}","amount":"1.00","tag":[1]}}"#)).is(400, "VALIDATION_ERROR"),
        post("charge: tag is a string", &charge, o(), format!(r#"{{"qr_plain":"{live}","amount":"1.00","tag":"x"}}"#)).is(400, "VALIDATION_ERROR"),
        post("charge: tag is a number", &charge, o(), format!(r#"{{"qr_plain":"{live}","amount":"1.00","tag":5}}"#)).is(400, "VALIDATION_ERROR"),
        post("charge: tag over 4096 bytes", &charge, o(), big_tag).is(400, "VALIDATION_ERROR"),
        post("refund: tag is an array", &refund, o(), r#"{"original_tx_no":"PAY-DEMO-0000000001","refund_amount":"1.00","tag":[]}"#).is(400, "VALIDATION_ERROR"),
        post("charge: empty external_order_id", &charge, o(), format!(r#"{{"qr_plain":"{live}","amount":"1.00","external_order_id":""}}"#)).is(400, "VALIDATION_ERROR"),
        post("charge: external_order_id of 129 chars", &charge, o(), format!(r#"{{"qr_plain":"{live}","amount":"1.00","external_order_id":"{k129}"}}"#)).is(400, "VALIDATION_ERROR"),
        post("charge: external_order_id with a control char", &charge, o(), format!(r#"{{"qr_plain":"{live}","amount":"1.00","external_order_id":"a\u0007b"}}"#)).is(400, "VALIDATION_ERROR"),
        // --- refund fields --------------------------------------------------------------
        post("refund: empty original_tx_no", &refund, o(), r#"{"original_tx_no":"","refund_amount":"1.00"}"#).is(400, "VALIDATION_ERROR"),
        post("refund: original_tx_no with a space", &refund, o(), r#"{"original_tx_no":"PAY DEMO","refund_amount":"1.00"}"#).is(400, "VALIDATION_ERROR"),
        post("refund: original_tx_no of 65 chars", &refund, o(), format!(r#"{{"original_tx_no":"{}","refund_amount":"1.00"}}"#, "P".repeat(65))).is(400, "VALIDATION_ERROR"),
        post("refund: empty reason", &refund, o(), r#"{"original_tx_no":"PAY-DEMO-0000000001","refund_amount":"1.00","reason":""}"#).is(400, "VALIDATION_ERROR"),
        post("refund: reason of 501 chars", &refund, o(), format!(r#"{{"original_tx_no":"PAY-DEMO-0000000001","refund_amount":"1.00","reason":"{}"}}"#, "r".repeat(501))).is(400, "VALIDATION_ERROR"),
        post("refund: reason with a newline", &refund, o(), r#"{"original_tx_no":"PAY-DEMO-0000000001","refund_amount":"1.00","reason":"a\nb"}"#).is(400, "VALIDATION_ERROR"),
        post("refund: missing refund_amount", &refund, o(), r#"{"original_tx_no":"PAY-DEMO-0000000001"}"#).is(400, "INVALID_JSON"),
        post("refund: unknown field", &refund, o(), r#"{"original_tx_no":"PAY-DEMO-0000000001","refund_amount":"1.00","card_no":"x"}"#).is(400, "INVALID_JSON"),
        post("refund: unknown original", &refund, o(), rf("\"1.00\"")).is(404, "ORIGINAL_TX_NOT_FOUND"),
        post("refund: central-format original", &refund, o(), r#"{"original_tx_no":"PAY0000000001","refund_amount":"1.00"}"#).is(404, "ORIGINAL_TX_NOT_FOUND"),
        post("refund: cashier without approval", &refund, Auth::Cashier, rf("\"1.00\"")).is(403, "APPROVAL_REQUIRED"),
        post("refund: approval PIN of 3 digits", &refund, Auth::Cashier, r#"{"original_tx_no":"PAY-DEMO-0000000001","refund_amount":"1.00","approval":{"username":"owner","pin":"123"}}"#).is(400, "VALIDATION_ERROR"),
        post("refund: approval PIN with letters", &refund, Auth::Cashier, r#"{"original_tx_no":"PAY-DEMO-0000000001","refund_amount":"1.00","approval":{"username":"owner","pin":"12a4"}}"#).is(400, "VALIDATION_ERROR"),
        post("refund: approval PIN as a number", &refund, Auth::Cashier, r#"{"original_tx_no":"PAY-DEMO-0000000001","refund_amount":"1.00","approval":{"username":"owner","pin":1234}}"#).is(400, "INVALID_JSON"),
        post("refund: approval without username", &refund, Auth::Cashier, r#"{"original_tx_no":"PAY-DEMO-0000000001","refund_amount":"1.00","approval":{"pin":"1234"}}"#).is(400, "INVALID_JSON"),
        post("refund: approval with an unknown field", &refund, Auth::Cashier, r#"{"original_tx_no":"PAY-DEMO-0000000001","refund_amount":"1.00","approval":{"username":"owner","pin":"1234","role":"owner"}}"#).is(400, "INVALID_JSON"),
        post("refund: approval username empty", &refund, Auth::Cashier, r#"{"original_tx_no":"PAY-DEMO-0000000001","refund_amount":"1.00","approval":{"username":"","pin":"1234"}}"#).is(400, "VALIDATION_ERROR"),
        post("charge: approval PIN of 9 digits", &charge, o(), format!(r#"{{"qr_plain":"{live}","amount":"1.00","approval":{{"username":"owner","pin":"123456789"}}}}"#)).is(400, "VALIDATION_ERROR"),
        // --- sign-in ----------------------------------------------------------------------
        post("login: missing password", &login, Auth::None, r#"{"username":"owner"}"#).is(400, "INVALID_JSON"),
        post("login: unknown field", &login, Auth::None, r#"{"username":"owner","password":"x","remember":true}"#).is(400, "INVALID_JSON"),
        post("login: empty username", &login, Auth::None, r#"{"username":"","password":"x"}"#).is(400, "VALIDATION_ERROR"),
        post("login: username of 65 chars", &login, Auth::None, format!(r#"{{"username":"{}","password":"x"}}"#, "u".repeat(65))).is(400, "VALIDATION_ERROR"),
        post("login: control char in username", &login, Auth::None, r#"{"username":"own\u0000er","password":"x"}"#).is(400, "VALIDATION_ERROR"),
        post("login: empty password", &login, Auth::None, r#"{"username":"owner","password":""}"#).is(400, "VALIDATION_ERROR"),
        post("login: unknown user", &login, Auth::None, r#"{"username":"ghost","password":"whatever-pw"}"#).is(401, "INVALID_CREDENTIALS"),
        post("login: wrong password", &login, Auth::None, r#"{"username":"owner","password":"not-the-password"}"#).is(401, "INVALID_CREDENTIALS"),
        post("login: device_id without its secret", &login, Auth::None, r#"{"username":"owner","password":"whatever-pw","device_id":"d1"}"#).is(422, "INCONSISTENT_FIELDS"),
        post("login: device_secret without its id", &login, Auth::None, r#"{"username":"owner","password":"whatever-pw","device_secret":"s1"}"#).is(422, "INCONSISTENT_FIELDS"),
        // --- staff and settlements (the OpenAPI document states each rule) ------------
        post("new user: password of 7 chars", &users, o(), r#"{"username":"ann","password":"1234567","role":"cashier"}"#).is(400, "VALIDATION_ERROR"),
        post("new user: password with a control char", &users, o(), r#"{"username":"ann","password":"12345678\u0007","role":"cashier"}"#).is(400, "VALIDATION_ERROR"),
        post("new user: password of 257 chars", &users, o(), format!(r#"{{"username":"ann","password":"{}","role":"cashier"}}"#, "密".repeat(257))).is(400, "VALIDATION_ERROR"),
        post("new user: blank username", &users, o(), r#"{"username":"   ","password":"12345678","role":"cashier"}"#).is(400, "VALIDATION_ERROR"),
        post("new user: unknown role", &users, o(), r#"{"username":"ann","password":"12345678","role":"admin"}"#).is(400, "VALIDATION_ERROR"),
        post("settlement: empty period", &settlements, o(), r#"{"mode":"t_plus_1","period_start":"2024-03-01T00:00:00Z","period_end":"2024-03-01T00:00:00Z"}"#).is(422, "PERIOD_INVALID"),
        post("settlement: unknown mode", &settlements, o(), r#"{"mode":"weekly","period_start":"2024-03-01","period_end":"2024-03-02"}"#).is(400, "VALIDATION_ERROR"),
        post("settlement: a future day", &settlements, o(), r#"{"mode":"t_plus_1","period_start":"2999-03-01","period_end":"2999-03-01"}"#).is(422, "PERIOD_NOT_ENDED"),
        post("settlement: ends in the future", &settlements, o(), r#"{"mode":"realtime","period_start":"2024-03-01","period_end":"2999-03-01T00:00:00Z"}"#).is(422, "PERIOD_NOT_ENDED"),
        post("settlement: nothing in the period", &settlements, o(), r#"{"mode":"t_plus_1","period_start":"2001-03-01","period_end":"2001-03-01"}"#).is(422, "SETTLEMENT_EMPTY"),
        post("settlement: period_end missing", &settlements, o(), r#"{"mode":"t_plus_1","period_start":"2001-03-01"}"#).is(400, "INVALID_JSON"),
        post("void: blank reason", &format!("{settlements}/STL-X-1/void"), o(), r#"{"reason":"  "}"#).is(400, "VALIDATION_ERROR"),
        post("void: reason of 501 chars", &format!("{settlements}/STL-X-1/void"), o(), format!(r#"{{"reason":"{}"}}"#, "因".repeat(501))).is(400, "VALIDATION_ERROR"),
        post("void: reason with a newline", &format!("{settlements}/STL-X-1/void"), o(), r#"{"reason":"a\nb"}"#).is(400, "VALIDATION_ERROR"),
        post("void: unknown field", &format!("{settlements}/STL-X-1/void"), o(), r#"{"reason":"ok","force":true}"#).is(400, "INVALID_JSON"),
        post("void: no such settlement", &format!("{settlements}/STL-X-1/void"), o(), r#"{"reason":"typo"}"#).is(404, "NOT_FOUND"),
        // cards at the counter: freeze and unfreeze
        post("freeze: cashier", "/api/v1/merchant/cards/STD00000002/freeze", Auth::Cashier, r#"{"reason":"lost"}"#).is(403, "PERMISSION_DENIED"),
        post("freeze: no session", "/api/v1/merchant/cards/STD00000002/freeze", Auth::None, r#"{"reason":"lost"}"#).is(401, "NOT_AUTHENTICATED"),
        post("freeze: no reason", "/api/v1/merchant/cards/STD00000002/freeze", o(), "{}").is(400, "INVALID_JSON"),
        post("freeze: blank reason", "/api/v1/merchant/cards/STD00000002/freeze", o(), r#"{"reason":" \t "}"#).is(400, "VALIDATION_ERROR"),
        post("freeze: reason of 201 chars", "/api/v1/merchant/cards/STD00000002/freeze", o(), format!(r#"{{"reason":"{}"}}"#, "失".repeat(501))).is(400, "VALIDATION_ERROR"),
        post("freeze: reason with a control character", "/api/v1/merchant/cards/STD00000002/freeze", o(), r#"{"reason":"a\u0000b"}"#).is(400, "VALIDATION_ERROR"),
        post("freeze: reason not text", "/api/v1/merchant/cards/STD00000002/freeze", o(), r#"{"reason":["lost"]}"#).is(400, "INVALID_JSON"),
        post("freeze: unknown field", "/api/v1/merchant/cards/STD00000002/freeze", o(), r#"{"reason":"lost","all":true}"#).is(400, "INVALID_JSON"),
        post("freeze: no such card", "/api/v1/merchant/cards/STD99999999/freeze", o(), r#"{"reason":"lost"}"#).is(404, "CARD_NOT_FOUND"),
        post("freeze: card number too long", &format!("/api/v1/merchant/cards/{}/freeze", "9".repeat(33)), o(), r#"{"reason":"lost"}"#).is(400, "VALIDATION_ERROR"),
        post("freeze: a card head office froze", "/api/v1/merchant/cards/STD00000023/freeze", o(), r#"{"reason":"lost"}"#).is(409, "CARD_ALREADY_FROZEN"),
        post("unfreeze: a card head office froze", "/api/v1/merchant/cards/STD00000023/unfreeze", o(), r#"{"reason":"found"}"#).is(409, "CARD_FROZEN_CENTRALLY"),
        post("unfreeze: a card that is not frozen", "/api/v1/merchant/cards/STD00000002/unfreeze", o(), r#"{"reason":"found"}"#).is(409, "CARD_NOT_FROZEN"),
        post("unfreeze: text/plain", "/api/v1/merchant/cards/STD00000002/unfreeze", o(), r#"{"reason":"found"}"#).ct("text/plain").is(415, "UNSUPPORTED_MEDIA_TYPE"),
        get("card: cashier", "/api/v1/merchant/cards/STD00000002", Auth::Cashier).is(403, "PERMISSION_DENIED"),
        get("card: no such card", "/api/v1/merchant/cards/NOPE", o()).is(404, "CARD_NOT_FOUND"),
        post("topup: no session", "/api/v1/merchant/topup", Auth::None, r#"{"card_no":"STD00000002","amount":"10.00"}"#).is(401, "NOT_AUTHENTICATED"),
        post("topup: no such card", "/api/v1/merchant/topup", o(), r#"{"card_no":"STD99999999","amount":"10.00"}"#).is(404, "CARD_NOT_FOUND"),
        post("topup: a frozen card", "/api/v1/merchant/topup", o(), r#"{"card_no":"STD00000023","amount":"10.00"}"#).is(422, "CARD_NOT_ACTIVE"),
        post("topup: a corporate card", "/api/v1/merchant/topup", o(), r#"{"card_no":"COR00000022","amount":"10.00"}"#).is(422, "UNSUPPORTED_CARD_TYPE_FOR_RECHARGE"),
        post("topup: a voucher", "/api/v1/merchant/topup", Auth::Cashier, r#"{"card_no":"VCH00000024","amount":"10.00"}"#).is(422, "UNSUPPORTED_CARD_TYPE_FOR_RECHARGE"),
        post("topup: zero", "/api/v1/merchant/topup", o(), r#"{"card_no":"STD00000002","amount":"0.00"}"#).is(400, "INVALID_RECHARGE_AMOUNT"),
        post("topup: negative", "/api/v1/merchant/topup", o(), r#"{"card_no":"STD00000002","amount":-1}"#).is(400, "INVALID_RECHARGE_AMOUNT"),
        post("topup: three decimals", "/api/v1/merchant/topup", o(), r#"{"card_no":"STD00000002","amount":"1.005"}"#).is(400, "INVALID_AMOUNT"),
        post("topup: amount as words", "/api/v1/merchant/topup", o(), r#"{"card_no":"STD00000002","amount":"ten"}"#).is(400, "INVALID_AMOUNT"),
        post("topup: amount too large", "/api/v1/merchant/topup", o(), r#"{"card_no":"STD00000002","amount":"99999999999.00"}"#).is(400, "INVALID_AMOUNT"),
        post("topup: above the per top-up limit", "/api/v1/merchant/topup", o(), r#"{"card_no":"STD00000002","amount":"5000.01"}"#).is(422, "OFFLINE_LIMIT_EXCEEDED"),
        post("topup: paid from the balance", "/api/v1/merchant/topup", o(), r#"{"card_no":"STD00000002","amount":"10.00","payment_method":"balance"}"#).is(400, "VALIDATION_ERROR"),
        post("topup: paid by bank", "/api/v1/merchant/topup", o(), r#"{"card_no":"STD00000002","amount":"10.00","payment_method":"bank"}"#).is(400, "VALIDATION_ERROR"),
        post("topup: method not text", "/api/v1/merchant/topup", o(), r#"{"card_no":"STD00000002","amount":"10.00","payment_method":1}"#).is(400, "INVALID_JSON"),
        post("topup: no card", "/api/v1/merchant/topup", o(), r#"{"amount":"10.00"}"#).is(400, "INVALID_JSON"),
        post("topup: no amount", "/api/v1/merchant/topup", o(), r#"{"card_no":"STD00000002"}"#).is(400, "INVALID_JSON"),
        post("topup: blank card", "/api/v1/merchant/topup", o(), r#"{"card_no":"","amount":"10.00"}"#).is(400, "VALIDATION_ERROR"),
        post("topup: tag not an object", "/api/v1/merchant/topup", o(), r#"{"card_no":"STD00000002","amount":"10.00","tag":[1]}"#).is(400, "VALIDATION_ERROR"),
        post("topup: unknown field", "/api/v1/merchant/topup", o(), r#"{"card_no":"STD00000002","amount":"10.00","points":5}"#).is(400, "INVALID_JSON"),
        post("topup: approval with a short PIN", "/api/v1/merchant/topup", Auth::Cashier, r#"{"card_no":"STD00000002","amount":"10.00","approval":{"username":"boss","pin":"12"}}"#).is(400, "VALIDATION_ERROR"),
        post("topup: key too long", "/api/v1/merchant/topup", o(), r#"{"card_no":"STD00000002","amount":"10.00","idempotency_key":"kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"}"#).is(400, "VALIDATION_ERROR"),
        post("topup: card number too long", "/api/v1/merchant/topup", o(), format!(r#"{{"card_no":"{}","amount":"10.00"}}"#, "9".repeat(33))).is(400, "VALIDATION_ERROR"),
        post("topup: text/plain", "/api/v1/merchant/topup", o(), r#"{"card_no":"STD00000002","amount":"10.00"}"#).ct("text/plain").is(415, "UNSUPPORTED_MEDIA_TYPE"),
        post("shift close: no such shift", "/api/v1/shifts/SFT-NOPE-1/close", o(), "{}").is(404, "NOT_FOUND"),
        post("shift close: id too long", &format!("/api/v1/shifts/{}/close", "S".repeat(65)), o(), "{}").is(400, "VALIDATION_ERROR"),
        get("shift report: no such shift", "/api/v1/reports/shift/SFT-NOPE-1", o()).is(404, "NOT_FOUND"),
        get("shift report: xml", "/api/v1/reports/shift/SFT-NOPE-1?format=xml", o()).is(400, "VALIDATION_ERROR"),
        get("shift: none open", "/api/v1/shifts/current", o()).is(404, "NOT_FOUND"),
        get("daily report: cashier", "/api/v1/reports/daily", Auth::Cashier).is(403, "PERMISSION_DENIED"),
        get("daily report: by shop", "/api/v1/reports/daily?by=shop", o()).is(400, "VALIDATION_ERROR"),
        get("daily report: bad date", "/api/v1/reports/daily?date=2026-02-30", o()).is(400, "VALIDATION_ERROR"),
        get("receipt: no such transaction", "/api/v1/transactions/PAY-NOPE-1/receipt", o()).is(404, "TX_NOT_FOUND"),
        get("receipt: no session", "/api/v1/transactions/PAY-NOPE-1/receipt", Auth::None).is(401, "NOT_AUTHENTICATED"),
        get("receipt: pdf", "/api/v1/transactions/PAY-NOPE-1/receipt?format=pdf", o()).is(400, "VALIDATION_ERROR"),
        get("receipt: 40 columns", "/api/v1/transactions/PAY-NOPE-1/receipt?width=40", o()).is(400, "VALIDATION_ERROR"),
        get("receipt: width not a number", "/api/v1/transactions/PAY-NOPE-1/receipt?width=wide", o()).is(400, "VALIDATION_ERROR"),
        get("receipt: French", "/api/v1/transactions/PAY-NOPE-1/receipt?lang=fr", o()).is(400, "VALIDATION_ERROR"),
        get("receipt: unknown parameter", "/api/v1/transactions/PAY-NOPE-1/receipt?copies=2", o()).is(400, "VALIDATION_ERROR"),
        get("receipt: number too long", &format!("/api/v1/transactions/{}/receipt", "P".repeat(65)), o()).is(400, "VALIDATION_ERROR"),
        post("refresh: garbage token", &refresh, Auth::None, r#"{"refresh_token":"garbage"}"#).is(401, "INVALID_TOKEN"),
        post("refresh: empty token", &refresh, Auth::None, r#"{"refresh_token":""}"#).is(400, "VALIDATION_ERROR"),
        post("refresh: token with a space", &refresh, Auth::None, r#"{"refresh_token":"a b"}"#).is(400, "VALIDATION_ERROR"),
        post("refresh: access token instead (too long)", &refresh, Auth::None, format!(r#"{{"refresh_token":"{owner}"}}"#)).is(400, "VALIDATION_ERROR"),
        post("refresh: unknown 43-char token", &refresh, Auth::None, format!(r#"{{"refresh_token":"{}"}}"#, "r".repeat(43))).is(401, "INVALID_TOKEN"),
        post("refresh: missing field", &refresh, Auth::None, "{}").is(400, "INVALID_JSON"),
        // --- bearer tokens ---------------------------------------------------------------
        post("charge: no Authorization", &charge, Auth::None, c("\"1.00\"")).is(401, "NOT_AUTHENTICATED"),
        post("charge: no Authorization beats a bad body", &charge, Auth::None, "{").is(401, "NOT_AUTHENTICATED"),
        post("charge: Basic auth", &charge, Auth::Raw(b"Basic b3duZXI6cHc=".to_vec()), c("\"1.00\"")).is(401, "NOT_AUTHENTICATED"),
        post("charge: empty Bearer", &charge, Auth::Raw(b"Bearer ".to_vec()), c("\"1.00\"")).is(401, "NOT_AUTHENTICATED"),
        post("charge: non-ASCII Authorization", &charge, Auth::Raw(b"Bearer \xff\xfe".to_vec()), c("\"1.00\"")).is(401, "NOT_AUTHENTICATED"),
        post("charge: garbage bearer", &charge, bearer("garbage"), c("\"1.00\"")).is(401, "INVALID_TOKEN"),
        post("charge: three-part garbage bearer", &charge, bearer("a.b.c"), c("\"1.00\"")).is(401, "INVALID_TOKEN"),
        post("charge: expired token", &charge, bearer(&expired), c("\"1.00\"")).is(401, "TOKEN_EXPIRED"),
        post("charge: token signed with another secret", &charge, bearer(&wrong_secret), c("\"1.00\"")).is(401, "INVALID_TOKEN"),
        post("charge: unsigned alg=none token", &charge, bearer(&unsigned), c("\"1.00\"")).is(401, "INVALID_TOKEN"),
        post("charge: token for a user that does not exist", &charge, bearer(&ghost_user), c("\"1.00\"")).is(401, "INVALID_TOKEN"),
        post("charge: token from an old epoch", &charge, bearer(&old_epoch), c("\"1.00\"")).is(401, "INVALID_TOKEN"),
        post("charge: refresh token as bearer", &charge, bearer(&owner_refresh), c("\"1.00\"")).is(401, "INVALID_TOKEN"),
        get("me: expired token", &format!("{API}/auth/me"), bearer(&expired)).is(401, "TOKEN_EXPIRED"),
        get("transactions: no Authorization", &txs, Auth::None).is(401, "NOT_AUTHENTICATED"),
        get("summary: cashier", &summary, Auth::Cashier).is(403, "PERMISSION_DENIED"),
        // --- query strings ----------------------------------------------------------------
        get("transactions: limit=0", &format!("{txs}?limit=0"), o()).is(400, "VALIDATION_ERROR"),
        get("transactions: limit=201", &format!("{txs}?limit=201"), o()).is(400, "VALIDATION_ERROR"),
        get("transactions: limit=abc", &format!("{txs}?limit=abc"), o()).is(400, "VALIDATION_ERROR"),
        get("transactions: limit twice", &format!("{txs}?limit=1&limit=2"), o()).is(400, "VALIDATION_ERROR"),
        get("transactions: offset=-1", &format!("{txs}?offset=-1"), o()).is(400, "VALIDATION_ERROR"),
        get("transactions: type=foo", &format!("{txs}?type=foo"), o()).is(400, "VALIDATION_ERROR"),
        get("transactions: status=processing", &format!("{txs}?status=processing"), o()).is(400, "VALIDATION_ERROR"),
        get("transactions: sync_state=foo", &format!("{txs}?sync_state=foo"), o()).is(400, "VALIDATION_ERROR"),
        get("transactions: start_date=yesterday", &format!("{txs}?start_date=yesterday"), o()).is(400, "VALIDATION_ERROR"),
        get("transactions: end_date=2024-13-01", &format!("{txs}?end_date=2024-13-01"), o()).is(400, "VALIDATION_ERROR"),
        get("transactions: start_date without offset", &format!("{txs}?start_date=2024-01-01T00:00:00"), o()).is(400, "VALIDATION_ERROR"),
        get("transactions: min_amount=abc", &format!("{txs}?min_amount=abc"), o()).is(400, "VALIDATION_ERROR"),
        get("transactions: min_amount=0", &format!("{txs}?min_amount=0"), o()).is(400, "VALIDATION_ERROR"),
        get("transactions: max_amount=1.234", &format!("{txs}?max_amount=1.234"), o()).is(400, "VALIDATION_ERROR"),
        get("transactions: card_no with a space", &format!("{txs}?card_no=STD%2000000001"), o()).is(400, "VALIDATION_ERROR"),
        get("transactions: empty card_no", &format!("{txs}?card_no="), o()).is(400, "VALIDATION_ERROR"),
        get("transactions: unknown param", &format!("{txs}?page=2"), o()).is(400, "VALIDATION_ERROR"),
        get("transactions: empty search", &format!("{txs}?q="), o()).is(400, "VALIDATION_ERROR"),
        get("transactions: search with a space", &format!("{txs}?q=00%2001"), o()).is(400, "VALIDATION_ERROR"),
        get("transactions: search of 33 characters", &format!("{txs}?q={}", "1".repeat(33)), o()).is(400, "VALIDATION_ERROR"),
        get("transactions: search in Chinese", &format!("{txs}?q=%E5%8D%A1"), o()).is(400, "VALIDATION_ERROR"),
        get("transactions: sort=price", &format!("{txs}?sort=price"), o()).is(400, "VALIDATION_ERROR"),
        get("transactions: sort=TIME_DESC", &format!("{txs}?sort=TIME_DESC"), o()).is(400, "VALIDATION_ERROR"),
        get("transactions: end before start", &format!("{txs}?start_date=2024-02-02&end_date=2024-02-01"), o()).is(422, "PERIOD_INVALID"),
        get("transactions: instant end before start", &format!("{txs}?start_date=2024-02-02T00:00:00Z&end_date=2024-02-01T00:00:00Z"), o()).is(422, "PERIOD_INVALID"),
        get("transactions: min above max", &format!("{txs}?min_amount=10.01&max_amount=10"), o()).is(422, "AMOUNT_RANGE_INVALID"),
        get("export: min above max", &format!("{txs}/export.csv?min_amount=2&max_amount=1"), o()).is(422, "AMOUNT_RANGE_INVALID"),
        get("transactions: same day is a range", &format!("{txs}?start_date=2024-02-02&end_date=2024-02-02&min_amount=1&max_amount=1&q=%25_&sort=amount_asc"), o()).ok(),
        get("transactions: valid filters", &format!("{txs}?limit=200&offset=0&type=payment&status=completed&min_amount=0.01&max_amount=9999999999.99&start_date=2020-01-01&end_date=2999-12-31"), o()).ok(),
        get("summary: date=yesterday", &format!("{summary}?date=yesterday"), o()).is(400, "VALIDATION_ERROR"),
        get("summary: date=2024-02-30", &format!("{summary}?date=2024-02-30"), o()).is(400, "VALIDATION_ERROR"),
        get("summary: empty date", &format!("{summary}?date="), o()).is(400, "VALIDATION_ERROR"),
        get("summary: unknown param", &format!("{summary}?day=2024-01-01"), o()).is(400, "VALIDATION_ERROR"),
        get("detail: unknown tx", &detail("PAY-DEMO-0000000001"), o()).is(404, "TX_NOT_FOUND"),
        get("detail: 65-char tx_no", &detail(&"P".repeat(65)), o()).is(400, "VALIDATION_ERROR"),
        get("detail: tx_no with a space", &detail("PAY%20DEMO"), o()).is(400, "VALIDATION_ERROR"),
        post("charge: body is a JSON array of the fields", &charge, o(), format!(r#"["{live}","1.00"]"#)).is(400, "INVALID_JSON"),
        Row::new("health: HEAD", "HEAD", "/health", Auth::None).ok(),
        get("transactions: limit=1e2", &format!("{txs}?limit=1e2"), o()).is(400, "VALIDATION_ERROR"),
        get("transactions: bad percent-encoding", &format!("{txs}?card_no=%FF"), o()).is(400, "VALIDATION_ERROR"),
        get("detail: no Authorization", &detail("PAY-DEMO-0000000001"), Auth::None).is(401, "NOT_AUTHENTICATED"),
        // --- routes and methods ------------------------------------------------------------
        get("charge: GET", &charge, o()).is(405, "METHOD_NOT_ALLOWED"),
        Row::new("refund: PUT", "PUT", &refund, o()).json(rf("\"1.00\"")).is(405, "METHOD_NOT_ALLOWED"),
        Row::new("transactions: DELETE", "DELETE", &txs, o()).is(405, "METHOD_NOT_ALLOWED"),
        post("summary: POST", &summary, o(), "{}").is(405, "METHOD_NOT_ALLOWED"),
        get("login: GET", &login, Auth::None).is(405, "METHOD_NOT_ALLOWED"),
        Row::new("health: PATCH", "PATCH", "/health", Auth::None).is(405, "METHOD_NOT_ALLOWED"),
        get("unknown route", &format!("{API}/merchant/charge/extra"), o()).is(404, "NOT_FOUND"),
        get("unknown root route", "/admin", Auth::None).is(404, "NOT_FOUND"),
    ];

    assert!(rows.len() >= 50, "only {} rows", rows.len());
    let failures = run_rows(&srv, &rows, &owner, &cashier).await;
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );

    // Nothing was written.
    assert_eq!(srv.count("SELECT COUNT(*) FROM transactions").await, 0);
    assert_eq!(srv.count("SELECT COUNT(*) FROM outbox").await, 0);
    assert_eq!(srv.count("SELECT COUNT(*) FROM idempotency_keys").await, 0);
    assert_eq!(
        srv.count("SELECT COUNT(*) FROM cards WHERE pending_debit_cents <> 0 OR pending_credit_cents <> 0 OR pending_points <> 0")
            .await,
        0
    );
    assert_eq!(srv.count("SELECT COUNT(*) FROM cards").await, 24);
    assert_eq!(srv.count("SELECT COUNT(*) FROM card_freezes").await, 0);
    assert_eq!(srv.count("SELECT COUNT(*) FROM shifts").await, 0);
    assert_eq!(
        srv.count("SELECT COUNT(*) FROM cards WHERE status = 'inactive'")
            .await,
        1,
        "only the demo's frozen card"
    );
    let consumed = srv
        .count("SELECT COUNT(*) FROM card_qr_state WHERE consumed_hash IS NOT NULL")
        .await;
    assert_eq!(consumed, 0);
    // The live token still pays afterwards: the table did not use it up.
    let r = srv.charge(&owner, &live, "1.00").await;
    r.assert_ok();
}

/// Sends every row; returns one line per row that did not get its expected answer.
async fn run_rows(srv: &TestServer, rows: &[Row], owner: &str, cashier: &str) -> Vec<String> {
    let mut failures = Vec::new();
    let mut names = std::collections::HashSet::new();
    for row in rows {
        assert!(names.insert(row.name.clone()), "duplicate row {}", row.name);
        let mut headers = row.headers.clone();
        match &row.auth {
            Auth::None => {}
            Auth::Owner => headers.push((
                "authorization".into(),
                format!("Bearer {owner}").into_bytes(),
            )),
            Auth::Cashier => headers.push((
                "authorization".into(),
                format!("Bearer {cashier}").into_bytes(),
            )),
            Auth::Raw(v) => headers.push(("authorization".into(), v.clone())),
        }
        let r = raw_request(srv, row.method, &row.path, &headers, row.body.clone()).await;
        let got_code = r.json["error"]["code"].as_str().map(str::to_string);
        let envelope_ok = match row.code {
            None => true,
            Some(_) => {
                r.json["error"]["message"].is_string() && r.json["error"].get("details").is_some()
            }
        };
        if r.status.as_u16() == 500
            || r.status.as_u16() != row.status
            || got_code.as_deref() != row.code
            || !envelope_ok
        {
            failures.push(format!(
                "{}: expected {} {:?}, got {} {}",
                row.name,
                row.status,
                row.code,
                r.status,
                r.text.chars().take(300).collect::<String>()
            ));
        }
    }
    failures
}

/// Regressions: positional JSON arrays once charged a card, and a bad path once answered
/// outside the error envelope.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn array_bodies_and_bad_paths_are_refused() {
    let srv = TestServer::start().await;
    let owner = srv.owner_token().await;
    let live = srv.qr("STD00000005").await;
    let charge = format!("{API}/merchant/charge");
    let refund = format!("{API}/merchant/refund");
    let login = format!("{API}/auth/login");
    let o = || Auth::Owner;
    #[rustfmt::skip]
    let rows = vec![
        // axum's own `Path` rejection: 400 text/plain "Invalid URL: Invalid UTF-8 in `tx_no`".
        get("detail: invalid UTF-8 in the path", &format!("{API}/common/transactions/PAY%FF"), o()).is(400, "VALIDATION_ERROR"),
        // serde accepts a struct as a positional array: today this one CHARGES the card (200).
        post("charge: body is a JSON array", &charge, o(), format!(r#"["{live}","1.00",null,null,null]"#)).is(400, "INVALID_JSON"),
        post("refund: body is a JSON array", &refund, o(), r#"["PAY-DEMO-0000000001","1.00",null,null,null]"#).is(400, "INVALID_JSON"),
        post("login: body is a JSON array", &login, Auth::None, r#"["owner","not-the-password"]"#).is(400, "INVALID_JSON"),
    ];
    let failures = run_rows(&srv, &rows, &owner, &owner).await;
    let written = srv.count("SELECT COUNT(*) FROM transactions").await;
    assert!(
        failures.is_empty() && written == 0,
        "{} of {} rows failed ({written} transactions written):\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}
