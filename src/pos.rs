//! `mps-edge pos …`: a POS command line against a running edge over HTTP (issue 14,
//! item 7; seed 001's CLI), for scripts and support staff. The session (the token pair)
//! is kept in a file only its owner can read (0600); a token that expired is refreshed
//! once and the call retried. Human output by default, `--json` prints the server's
//! answer as it came. The exit code says what kind of failure it was, so scripts can
//! branch without parsing text.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Exit codes by kind of failure.
pub mod exit {
    /// A bug or an answer the client cannot read.
    pub const UNEXPECTED: u8 = 1;
    /// The request was wrong (bad amount, bad argument): 400.
    pub const BAD_INPUT: u8 = 2;
    /// Not signed in, session over, or not allowed: 401, 403.
    pub const AUTH: u8 = 3;
    /// No such transaction, card or shift: 404.
    pub const NOT_FOUND: u8 = 4;
    /// A business rule said no (insufficient balance, refund above what remains,
    /// already closed…): 409, 422.
    pub const REFUSED: u8 = 5;
    /// Too many attempts; try again later: 429.
    pub const TOO_MANY: u8 = 6;
    /// The edge could not be reached or is unavailable: connection errors, 5xx.
    pub const UNAVAILABLE: u8 = 7;
}

#[derive(Subcommand, Debug)]
pub enum PosCommand {
    /// Sign in and keep the session in the session file (0600).
    Login {
        username: String,
        /// The password (else MPS_POS_PASSWORD, else one line read from stdin).
        #[arg(long, env = "MPS_POS_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
    /// End the session at the edge and delete the session file.
    Logout,
    /// Charge a member's QR code.
    Charge {
        /// The QR text the scanner read.
        #[arg(long)]
        qr: String,
        /// The amount before the member discount, e.g. 12.34.
        #[arg(long)]
        amount: String,
        /// Idempotency key: send the same key again to retry safely (default: a new one).
        #[arg(long)]
        key: Option<String>,
        /// The POS's own order number (charged once).
        #[arg(long)]
        order: Option<String>,
    },
    /// Refund (part of) a payment made at this store.
    Refund {
        /// The payment's transaction number.
        tx_no: String,
        #[arg(long)]
        amount: String,
        #[arg(long)]
        reason: Option<String>,
        /// Idempotency key (default: a new one).
        #[arg(long)]
        key: Option<String>,
    },
    /// Top up a member's standard card at the counter (the member pays cash or by wallet).
    Topup {
        /// The card's printed number.
        card_no: String,
        /// The amount loaded onto the card, e.g. 500.00.
        #[arg(allow_negative_numbers = true)]
        amount: String,
        /// How the member paid.
        #[arg(long, default_value = "cash", value_parser = ["cash", "wechat", "alipay"])]
        method: String,
        /// Idempotency key: send the same key again to retry safely (default: a new one,
        /// printed when the edge gave no answer).
        #[arg(long)]
        key: Option<String>,
        /// A manager's or owner's username, when the store asks one to approve a
        /// cashier's top-up (`[approval] cashier_topups = "approval"`).
        #[arg(long, requires = "approve_pin")]
        approve_user: Option<String>,
        /// That person's approval PIN (else MPS_POS_APPROVE_PIN).
        #[arg(long, env = "MPS_POS_APPROVE_PIN", hide_env_values = true)]
        approve_pin: Option<String>,
    },
    /// Check a QR code without charging it: the card, its balance and level.
    Validate {
        #[arg(long)]
        qr: String,
    },
    /// Show a transaction and its refunds.
    Tx { tx_no: String },
    /// Print a transaction's receipt (text for a thermal printer).
    Receipt {
        tx_no: String,
        /// Printer columns: 32 (58 mm) or 48 (80 mm).
        #[arg(long, default_value = "32")]
        width: String,
        /// zh-Hant or en.
        #[arg(long, default_value = "zh-Hant")]
        lang: String,
    },
    /// Shifts: open, current (X report), close (Z report), report.
    Shift {
        #[command(subcommand)]
        command: ShiftCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum ShiftCommand {
    /// Open a shift for the signed-in person.
    Open,
    /// The open shift's X report.
    Current,
    /// Close a shift (default: one's own open shift) and print its Z report.
    Close { id: Option<String> },
    /// A shift's report as text, json or csv.
    Report {
        id: String,
        #[arg(long, default_value = "text", value_parser = ["text", "json", "csv"])]
        format: String,
        #[arg(long, default_value = "32")]
        width: String,
    },
}

/// Where the session is kept: `--session`, else MPS_POS_SESSION, else
/// `$XDG_CONFIG_HOME/mps-edge/pos-session.json` (or `~/.config/…`).
pub fn default_session_path() -> PathBuf {
    if let Some(p) = std::env::var_os("MPS_POS_SESSION") {
        return PathBuf::from(p);
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("mps-edge").join("pos-session.json")
}

/// A failure: the exit code and what to tell the person.
struct Failure {
    code: u8,
    message: String,
    body: Option<Value>,
}

impl Failure {
    fn new(code: u8, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
            body: None,
        }
    }
}

/// The exit code for an HTTP status.
pub fn code_for(status: StatusCode) -> u8 {
    match status.as_u16() {
        400 | 413 | 415 => exit::BAD_INPUT,
        401 | 403 => exit::AUTH,
        404 => exit::NOT_FOUND,
        409 | 422 => exit::REFUSED,
        429 => exit::TOO_MANY,
        500..=599 => exit::UNAVAILABLE,
        _ => exit::UNEXPECTED,
    }
}

fn read_session(path: &Path) -> Result<Value, Failure> {
    let text = std::fs::read_to_string(path).map_err(|_| {
        Failure::new(
            exit::AUTH,
            format!(
                "not signed in (no session at {}); run `mps-edge pos login <username>`",
                path.display()
            ),
        )
    })?;
    serde_json::from_str(&text)
        .map_err(|_| Failure::new(exit::AUTH, "the session file is damaged; sign in again"))
}

/// Writes the session so that only its owner can read it: created 0600, and set to 0600
/// if it already existed with looser rights.
fn write_session(path: &Path, session: &Value) -> Result<(), Failure> {
    let fail = |e: std::io::Error| {
        Failure::new(
            exit::UNEXPECTED,
            format!("cannot write the session file {}: {e}", path.display()),
        )
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        opts.mode(0o600);
        let file = opts.open(path).map_err(fail)?;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(fail)?;
        std::io::Write::write_all(&mut &file, session.to_string().as_bytes()).map_err(fail)?;
    }
    #[cfg(not(unix))]
    {
        let file = opts.open(path).map_err(fail)?;
        std::io::Write::write_all(&mut &file, session.to_string().as_bytes()).map_err(fail)?;
    }
    Ok(())
}

struct Client {
    http: reqwest::Client,
    url: String,
    session_path: PathBuf,
}

impl Client {
    /// One call; Ok((status, body)) for any HTTP answer, Err for no answer at all.
    async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Result<(StatusCode, String), Failure> {
        let mut req = self
            .http
            .request(method, format!("{}/api/v1{path}", self.url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let res = req.send().await.map_err(|e| {
            Failure::new(
                exit::UNAVAILABLE,
                format!("cannot reach the edge at {}: {e}", self.url),
            )
        })?;
        let status = res.status();
        let text = res
            .text()
            .await
            .map_err(|e| Failure::new(exit::UNAVAILABLE, format!("the answer was cut off: {e}")))?;
        Ok((status, text))
    }

    /// A call with the session's token, refreshed once if it expired; the answer's body
    /// as text for 2xx, else a Failure built from the error envelope.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<String, Failure> {
        let mut session = read_session(&self.session_path)?;
        let token = session["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let (mut status, mut text) = self.send(method.clone(), path, Some(&token), body).await?;
        if status == StatusCode::UNAUTHORIZED {
            if let Some(refresh) = session["refresh_token"].as_str().map(str::to_string) {
                let (s, t) = self
                    .send(
                        Method::POST,
                        "/auth/refresh",
                        None,
                        Some(&json!({"refresh_token": refresh})),
                    )
                    .await?;
                if s.is_success() {
                    let pair: Value = serde_json::from_str(&t).unwrap_or(Value::Null);
                    for k in ["access_token", "refresh_token", "expires_at"] {
                        session[k] = pair[k].clone();
                    }
                    write_session(&self.session_path, &session)?;
                    let token = session["access_token"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                    (status, text) = self.send(method, path, Some(&token), body).await?;
                }
            }
        }
        if status.is_success() {
            Ok(text)
        } else {
            Err(failure(status, &text))
        }
    }
}

fn failure(status: StatusCode, text: &str) -> Failure {
    let body: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    let e = &body["error"];
    let message = match (e["code"].as_str(), e["message"].as_str()) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        _ => format!("HTTP {status}"),
    };
    Failure {
        code: code_for(status),
        message,
        body: Some(body),
    }
}

fn new_key() -> String {
    format!("pos-cli-{}", uuid::Uuid::new_v4())
}

/// A call that moves money, sent with `key`. Without an answer (or with a failing edge)
/// it may or may not have been done: the message gives the key, and the same command with
/// `--key` then replays the first answer instead of doing it twice.
async fn keyed(c: &Client, path: &str, body: &Value, key: &str) -> Result<String, Failure> {
    c.call(Method::POST, path, Some(body))
        .await
        .map_err(|mut f| {
            if f.code == exit::UNAVAILABLE {
                f.message.push_str(&format!(
                    "\nit may have gone through: run the same command again with --key {key} \
                 (the same key is never done twice)"
                ));
            }
            f
        })
}

fn amount(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => "—".into(),
    }
}

/// What a person reads for each answer (the `--json` output is the answer itself).
fn human(cmd: &PosCommand, v: &Value, raw: &str) -> String {
    match cmd {
        PosCommand::Charge { .. } => {
            let (t, c) = (&v["transaction"], &v["customer_info"]);
            format!(
                "{} paid {} (price {}, discount {}), card {} balance {}, points +{} = {}{}",
                t["tx_no"].as_str().unwrap_or("?"),
                amount(&t["final_amount"]),
                amount(&t["raw_amount"]),
                amount(&t["discount"]),
                c["card_no"].as_str().unwrap_or("?"),
                amount(&c["balance_after"]),
                t["points_earned"],
                c["points_after"],
                if t["sync_state"] == "pending" {
                    " [pending sync]"
                } else {
                    ""
                },
            )
        }
        PosCommand::Refund { .. } => format!(
            "{} refunded {} from {}, {} still refundable",
            v["refund"]["refund_tx_no"].as_str().unwrap_or("?"),
            amount(&v["refund"]["refunded_amount"]),
            v["refund"]["original_tx_no"].as_str().unwrap_or("?"),
            amount(&v["remaining_refundable"]),
        ),
        PosCommand::Topup { .. } => {
            let (t, c) = (&v["topup"], &v["card"]);
            let tx_no = t["tx_no"].as_str().unwrap_or("?");
            format!(
                "{tx_no} topped up {} ({}) onto card {}, balance {}{}{}\nreceipt: mps-edge pos receipt {tx_no}",
                amount(&t["amount"]),
                t["payment_method"].as_str().unwrap_or("?"),
                c["card_no"].as_str().unwrap_or("?"),
                amount(&c["balance_after"]),
                match t["approved_by"].as_str() {
                    Some(by) => format!(", approved by {by}"),
                    None => String::new(),
                },
                if t["sync_state"] == "pending" {
                    " [pending sync]"
                } else {
                    ""
                },
            )
        }
        PosCommand::Validate { .. } => {
            let c = &v["card_info"];
            let next = &c["level"]["next_level"];
            format!(
                "card {} ({}, {}) balance {}, points {}, level {}{}",
                c["card_no"].as_str().unwrap_or("?"),
                c["card_type"].as_str().unwrap_or("?"),
                c["status"].as_str().unwrap_or("?"),
                amount(&c["balance"]),
                c["points"],
                c["level"]["name"].as_str().unwrap_or("?"),
                if next.is_object() {
                    format!(
                        ", {} points to {}",
                        next["points_needed"],
                        next["name"].as_str().unwrap_or("?")
                    )
                } else {
                    String::new()
                },
            )
        }
        PosCommand::Tx { .. } => {
            let t = &v["transaction"];
            let mut out = format!(
                "{} {} {} {} card {} by {} at {} [{}]",
                t["tx_no"].as_str().unwrap_or("?"),
                t["tx_type"].as_str().unwrap_or("?"),
                t["status"].as_str().unwrap_or("?"),
                amount(&t["final_amount"]),
                t["card_no"].as_str().unwrap_or("?"),
                t["operator"].as_str().unwrap_or("—"),
                t["created_at"].as_str().unwrap_or("?"),
                t["sync_state"].as_str().unwrap_or("?"),
            );
            for r in v["refunds"].as_array().into_iter().flatten() {
                out.push_str(&format!(
                    "\n  refund {} {}",
                    r["tx_no"].as_str().unwrap_or("?"),
                    amount(&r["final_amount"])
                ));
            }
            out
        }
        PosCommand::Shift {
            command: ShiftCommand::Open | ShiftCommand::Current | ShiftCommand::Close { .. },
        } => {
            let f = &v["figures"];
            format!(
                "{} ({}) {}: payments {} × {}, refunds {} × {}, net {}, not yet synced {}",
                v["shift_no"].as_str().unwrap_or("?"),
                v["kind"].as_str().unwrap_or("?"),
                v["cashier"].as_str().unwrap_or("?"),
                f["payments"]["count"],
                amount(&f["payments"]["amount"]),
                f["refunds"]["count"],
                amount(&f["refunds"]["amount"]),
                amount(&f["net_amount"]),
                f["unsynced"]["count"],
            )
        }
        _ => raw.trim_end().to_string(),
    }
}

/// Runs one `pos` command; prints the answer (or the failure, on stderr).
pub fn run(
    url: &str,
    session: Option<PathBuf>,
    json_out: bool,
    cmd: PosCommand,
) -> anyhow::Result<ExitCode> {
    let client = Client {
        http: reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()?,
        url: url.trim_end_matches('/').to_string(),
        session_path: session.unwrap_or_else(default_session_path),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match runtime.block_on(execute(&client, &cmd)) {
        Ok(raw) => {
            if json_out
                || matches!(
                    cmd,
                    PosCommand::Receipt { .. }
                        | PosCommand::Shift {
                            command: ShiftCommand::Report { .. }
                        }
                )
            {
                print!("{raw}");
                if !raw.ends_with('\n') {
                    println!();
                }
            } else {
                let v: Value = serde_json::from_str(&raw).unwrap_or(Value::Null);
                println!("{}", human(&cmd, &v, &raw));
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(f) => {
            if json_out {
                if let Some(body) = &f.body {
                    println!("{body}");
                }
            }
            eprintln!("error: {}", f.message);
            Ok(ExitCode::from(f.code))
        }
    }
}

async fn execute(c: &Client, cmd: &PosCommand) -> Result<String, Failure> {
    let q = |s: &str| s.replace('/', "%2F");
    match cmd {
        PosCommand::Login { username, password } => {
            let password = match password {
                Some(p) => p.clone(),
                None => {
                    let mut line = String::new();
                    std::io::stdin().read_line(&mut line).map_err(|e| {
                        Failure::new(exit::BAD_INPUT, format!("cannot read the password: {e}"))
                    })?;
                    line.trim_end_matches(['\r', '\n']).to_string()
                }
            };
            let (status, text) = c
                .send(
                    Method::POST,
                    "/auth/login",
                    None,
                    Some(&json!({"username": username, "password": password})),
                )
                .await?;
            if !status.is_success() {
                return Err(failure(status, &text));
            }
            let v: Value = serde_json::from_str(&text)
                .map_err(|_| Failure::new(exit::UNEXPECTED, "the edge's answer is not JSON"))?;
            let session = json!({
                "url": c.url, "username": username,
                "access_token": v["access_token"], "refresh_token": v["refresh_token"], "expires_at": v["expires_at"],
            });
            write_session(&c.session_path, &session)?;
            // The tokens stay in the file, never on the screen.
            Ok(json!({"signed_in": username, "role": v["user"]["role"], "session": c.session_path.display().to_string()}).to_string())
        }
        PosCommand::Logout => {
            let r = c.call(Method::POST, "/auth/logout", Some(&json!({}))).await;
            let _ = std::fs::remove_file(&c.session_path);
            r.map(|_| json!({"signed_out": true}).to_string())
        }
        PosCommand::Charge {
            qr,
            amount,
            key,
            order,
        } => {
            let key = key.clone().unwrap_or_else(new_key);
            let mut body = json!({"qr_plain": qr, "amount": amount, "idempotency_key": key});
            if let Some(o) = order {
                body["external_order_id"] = json!(o);
            }
            keyed(c, "/merchant/charge", &body, &key).await
        }
        PosCommand::Refund {
            tx_no,
            amount,
            reason,
            key,
        } => {
            let key = key.clone().unwrap_or_else(new_key);
            let mut body =
                json!({"original_tx_no": tx_no, "refund_amount": amount, "idempotency_key": key});
            if let Some(r) = reason {
                body["reason"] = json!(r);
            }
            keyed(c, "/merchant/refund", &body, &key).await
        }
        PosCommand::Topup {
            card_no,
            amount,
            method,
            key,
            approve_user,
            approve_pin,
        } => {
            let key = key.clone().unwrap_or_else(new_key);
            let mut body = json!({
                "card_no": card_no, "amount": amount, "payment_method": method, "idempotency_key": key,
            });
            // A PIN alone (MPS_POS_APPROVE_PIN kept in the environment) approves nothing.
            if let (Some(user), Some(pin)) = (approve_user, approve_pin) {
                body["approval"] = json!({"username": user, "pin": pin});
            }
            keyed(c, "/merchant/topup", &body, &key).await
        }
        PosCommand::Validate { qr } => {
            c.call(
                Method::POST,
                "/common/qr/validate",
                Some(&json!({"qr_plain": qr})),
            )
            .await
        }
        PosCommand::Tx { tx_no } => {
            c.call(
                Method::GET,
                &format!("/common/transactions/{}", q(tx_no)),
                None,
            )
            .await
        }
        PosCommand::Receipt { tx_no, width, lang } => {
            c.call(
                Method::GET,
                &format!(
                    "/transactions/{}/receipt?format=text&width={}&lang={}",
                    q(tx_no),
                    q(width),
                    q(lang)
                ),
                None,
            )
            .await
        }
        PosCommand::Shift { command } => match command {
            ShiftCommand::Open => c.call(Method::POST, "/shifts/open", Some(&json!({}))).await,
            ShiftCommand::Current => c.call(Method::GET, "/shifts/current", None).await,
            ShiftCommand::Close { id } => {
                let id = match id {
                    Some(id) => id.clone(),
                    None => {
                        let current: Value = serde_json::from_str(
                            &c.call(Method::GET, "/shifts/current", None).await?,
                        )
                        .map_err(|_| {
                            Failure::new(exit::UNEXPECTED, "the edge's answer is not JSON")
                        })?;
                        current["shift_id"].as_str().unwrap_or_default().to_string()
                    }
                };
                c.call(
                    Method::POST,
                    &format!("/shifts/{}/close", q(&id)),
                    Some(&json!({})),
                )
                .await
            }
            ShiftCommand::Report { id, format, width } => {
                c.call(
                    Method::GET,
                    &format!(
                        "/reports/shift/{}?format={}&width={}",
                        q(id),
                        q(format),
                        q(width)
                    ),
                    None,
                )
                .await
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_kind_of_failure() {
        for (status, code) in [
            (400, exit::BAD_INPUT),
            (401, exit::AUTH),
            (403, exit::AUTH),
            (404, exit::NOT_FOUND),
            (409, exit::REFUSED),
            (422, exit::REFUSED),
            (429, exit::TOO_MANY),
            (500, exit::UNAVAILABLE),
            (503, exit::UNAVAILABLE),
            (302, exit::UNEXPECTED),
        ] {
            assert_eq!(
                code_for(StatusCode::from_u16(status).unwrap()),
                code,
                "{status}"
            );
        }
    }

    #[cfg(unix)]
    #[test]
    fn the_session_file_is_the_owners_alone() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested").join("s.json");
        // an existing file with loose rights is tightened
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "{}").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(write_session(&path, &json!({"access_token": "t"})).is_ok());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(read_session(&path).ok().unwrap()["access_token"], "t");
    }
}
