//! The command line: `serve`, `demo …`, `admin …`.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde_json::json;

use crate::auth::{check_password_policy, hash_password, load_or_create_secret};
use crate::config::{describe_limits, Config, Overrides};
use crate::db::cards::list_cards;
use crate::db::{demo, users};
use crate::domain::money::format_cents;
use crate::domain::Role;
use crate::error::{AppError, ErrorCode};

#[derive(Parser, Debug)]
#[command(
    name = "mps-edge",
    version,
    about = "Offline-first edge server for the Member Payment System"
)]
pub struct Cli {
    /// TOML configuration file (layers: defaults → file → MPS_EDGE_* env → flags).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory holding the database (default ./data).
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Log format: text or json.
    #[arg(long, global = true, value_parser = ["text", "json"])]
    pub log_format: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server (zero config: standalone demo mode on 127.0.0.1:8080).
    Serve {
        /// Address to listen on, e.g. 0.0.0.0:8080 for the store LAN.
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
        /// Serve HTTPS with this PEM certificate chain (see `init --tls`).
        #[arg(long, value_name = "FILE", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The PEM private key for --tls-cert.
        #[arg(long, value_name = "FILE", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
    },
    /// Prepare an installation: data directory, and with --tls a self-signed certificate.
    Init {
        /// Generate a self-signed TLS certificate for the store's host names.
        #[arg(long)]
        tls: bool,
        /// Host names and IP addresses the certificate covers (repeatable).
        #[arg(long = "host", value_name = "NAME", default_values_t = [String::from("localhost"), String::from("127.0.0.1")])]
        hosts: Vec<String>,
        /// Replace an existing certificate.
        #[arg(long)]
        force: bool,
    },
    /// Make a consistent, verified copy of the database while the server runs.
    Backup {
        #[arg(long, value_name = "FILE")]
        to: PathBuf,
    },
    /// Replace the database with a backup (refused while a server runs; keeps the old file).
    Restore {
        #[arg(long, value_name = "FILE")]
        from: PathBuf,
    },
    /// Demo-mode helpers (only when no central is configured).
    Demo {
        #[command(subcommand)]
        command: DemoCommand,
    },
    /// Sync with central: status and a manual cycle.
    Sync {
        #[command(subcommand)]
        command: crate::ops::SyncCommand,
    },
    /// Check this installation and its link to central; one line per problem.
    Doctor,
    /// Operator commands.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// A POS client against a running edge over HTTP: login, charge, refund, topup,
    /// validate, tx, receipt, shift. Exit codes: 0 ok, 2 bad input, 3 not signed in or not allowed,
    /// 4 not found, 5 refused by a business rule, 6 too many attempts, 7 edge unreachable.
    Pos {
        /// The edge's address.
        #[arg(long, env = "MPS_POS_URL", default_value = "http://127.0.0.1:8080")]
        url: String,
        /// The session file (default MPS_POS_SESSION, else ~/.config/mps-edge/pos-session.json).
        #[arg(long, value_name = "FILE")]
        session: Option<PathBuf>,
        /// Print the edge's JSON answer instead of a sentence.
        #[arg(long)]
        json: bool,
        #[command(subcommand)]
        command: crate::pos::PosCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum DemoCommand {
    /// Issue a live payment QR token for a demo card, exactly as central would.
    Qr {
        /// Card number (default: the first active standard demo card).
        #[arg(long, value_name = "CARD_NO")]
        card: Option<String>,
        /// Lifetime in seconds (at least 60, like central).
        #[arg(long, default_value_t = 900, value_name = "SECONDS")]
        ttl: i64,
        /// Issue the fast `mq1` format (central's edge_issue_qr) instead of the legacy one.
        #[arg(long, conflicts_with = "offline")]
        fast: bool,
        /// Make an offline payment code (mq2) as a member's phone would with no network
        /// (the first use enrols a 7-day chain for the card; --ttl does not apply).
        #[arg(long)]
        offline: bool,
        #[arg(long)]
        json: bool,
    },
    /// List the demo cards.
    Cards {
        #[arg(long)]
        json: bool,
    },
    /// Perform a test charge through the running server's HTTP API.
    Charge {
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        server: String,
        #[arg(long, default_value = "owner")]
        username: String,
        #[arg(long)]
        password: String,
        #[arg(long, default_value = "12.34")]
        amount: String,
        #[arg(long, value_name = "CARD_NO")]
        card: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Create a staff account (or, with --reset, reset an existing one).
    CreateUser {
        #[arg(long)]
        username: String,
        #[arg(long, value_parser = ["owner", "manager", "cashier"])]
        role: String,
        /// The password (prefer --password-stdin: arguments are visible to other users).
        #[arg(long, conflicts_with = "password_stdin")]
        password: Option<String>,
        /// Read the password from standard input.
        #[arg(long)]
        password_stdin: bool,
        /// Reset the password and role if the user exists (ends their sessions).
        #[arg(long)]
        reset: bool,
    },
    /// Lift a sign-in lock: forget every failed sign-in of a username, from every
    /// address (works while the server runs).
    UnlockUser {
        #[arg(long)]
        username: String,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn init_tracing(cfg: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&cfg.log.level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Colour only for a person at a terminal: under systemd, a pipe or a log file
        // the escape codes would land in the log as text.
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if cfg.log.format == "json" {
        let _ = builder.json().try_init();
    } else {
        let _ = builder.try_init();
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let (listen, tls_cert, tls_key) = match &cli.command {
        Command::Serve {
            listen,
            tls_cert,
            tls_key,
        } => (listen.clone(), tls_cert.clone(), tls_key.clone()),
        _ => (None, None, None),
    };
    let overrides = Overrides {
        data_dir: cli.data_dir.clone(),
        listen,
        log_format: cli.log_format.clone(),
        tls_cert,
        tls_key,
    };
    let cfg = Config::load(cli.config.as_deref(), &overrides)?;
    match cli.command {
        Command::Serve { .. } => serve(cfg),
        Command::Demo { command } => demo_command(cfg, command),
        Command::Admin { command } => admin_command(cfg, command),
        Command::Sync { command } => crate::ops::sync_command(cfg, command),
        Command::Doctor => crate::ops::doctor(cfg),
        Command::Init { tls, hosts, force } => crate::ops::init(cfg, tls, &hosts, force),
        Command::Backup { to } => crate::ops::backup(cfg, &to),
        Command::Restore { from } => crate::ops::restore(cfg, &from),
        // A client of a running edge: the configuration loaded above is not used.
        Command::Pos {
            url,
            session,
            json,
            command,
        } => crate::pos::run(&url, session, json, command),
    }
}

fn serve(cfg: Config) -> anyhow::Result<ExitCode> {
    init_tracing(&cfg);
    let lock = crate::ops::ServerLock::acquire(&cfg)?;
    let opened = crate::startup::open(&cfg, true)?;
    let secret = load_or_create_secret(&cfg)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&cfg.server.listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", cfg.server.listen))?;
        let addr = listener.local_addr()?;
        let tls = cfg.server.tls_cert.clone().zip(cfg.server.tls_key.clone());
        // Take over SIGTERM before announcing the server: a stop asked for as soon as the
        // banner shows (systemd, tests) must be a clean one, not the signal's default
        // kill while the router is still being built.
        let stop = StopSignal::install()?;
        print_banner(&cfg, &opened, addr);
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let state = crate::startup::build_state(cfg, opened.db, &secret, stop_rx)?;
        let shutdown = async move {
            stop.recv().await;
            let _ = stop_tx.send(true);
        };
        match tls {
            Some((cert, key)) => {
                crate::http::serve_tls(listener, state, &cert, &key, shutdown).await?
            }
            None => crate::http::serve(listener, state, shutdown).await?,
        }
        tracing::info!("stopped cleanly");
        Ok::<_, anyhow::Error>(())
    })?;
    drop(lock);
    Ok(ExitCode::SUCCESS)
}

/// SIGTERM and Ctrl-C, listened for from `install` on (registering at the first poll
/// would leave the default action, an unclean kill, in force until then).
struct StopSignal {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
}

impl StopSignal {
    fn install() -> std::io::Result<StopSignal> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(StopSignal {
                term: signal(SignalKind::terminate())?,
                interrupt: signal(SignalKind::interrupt())?,
            })
        }
        #[cfg(not(unix))]
        Ok(StopSignal {})
    }

    async fn recv(mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.term.recv() => {},
            _ = self.interrupt.recv() => {},
        }
        #[cfg(not(unix))]
        {
            let _ = &mut self;
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("shutdown signal received; finishing in-flight requests");
    }
}

fn shell_quote(s: &str) -> String {
    if s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/._-:".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn print_banner(cfg: &Config, opened: &crate::startup::Opened, addr: std::net::SocketAddr) {
    let scheme = if cfg.server.tls_cert.is_some() {
        "https"
    } else {
        "http"
    };
    let url = format!("{scheme}://{addr}");
    println!("mps-edge {} listening on {url}", env!("CARGO_PKG_VERSION"));
    println!("  data: {}", cfg.db_path().display());
    if opened.demo {
        println!("  mode: STANDALONE DEMO — no central is configured; all cards and balances are DEMO DATA");
        println!("  offline limits: {}", describe_limits(&cfg.limits()));
        match &opened.new_owner {
            Some((user, password)) => {
                println!("  owner account (shown only now): username {user}  password {password}");
                let exe = std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_else(|_| "mps-edge".into());
                let data_dir = std::fs::canonicalize(&cfg.data_dir).unwrap_or_else(|_| cfg.data_dir.clone());
                println!("  test charge (paste into another terminal):");
                println!(
                    "    {} --data-dir {} demo charge --server {url} --username {user} --password {} --amount 12.34",
                    shell_quote(&exe),
                    shell_quote(&data_dir.display().to_string()),
                    shell_quote(password)
                );
            }
            None => println!(
                "  owner account exists; to reset its password: mps-edge admin create-user --username owner --role owner --reset --password-stdin"
            ),
        }
    } else if cfg.standalone() {
        println!(
            "  mode: STANDALONE PRODUCTION — no central and no demo data: not ready to sell until [central] is configured"
        );
    } else {
        println!(
            "  mode: central ({}; merchant {})",
            cfg.central.url, cfg.central.merchant_code
        );
    }
}

fn app_err(e: AppError) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

fn require_demo(cfg: &Config, opened: &crate::startup::Opened) -> anyhow::Result<()> {
    if !cfg.demo_allowed() || !opened.demo {
        return Err(app_err(AppError::msg(
            ErrorCode::DemoModeOnly,
            "demo commands work only in standalone demo mode (no central configured)",
        )));
    }
    Ok(())
}

fn demo_command(cfg: Config, command: DemoCommand) -> anyhow::Result<ExitCode> {
    let opened = crate::startup::open(&cfg, true)?;
    require_demo(&cfg, &opened)?;
    match command {
        DemoCommand::Qr {
            card,
            ttl,
            fast,
            offline,
            json,
        } => {
            let q = if offline {
                demo::issue_offline(&opened.db, card.as_deref(), cfg.qr.offline_skew_slots)?
            } else {
                demo::issue_qr_kind(&opened.db, card.as_deref(), ttl, fast)?
            };
            if json {
                println!(
                    "{}",
                    json!({"card_no": q.card_no, "card_id": q.card_id, "qr_plain": q.qr_plain, "expires_at": q.expires_at})
                );
            } else {
                eprintln!("QR for {} valid until {}:", q.card_no, q.expires_at);
                println!("{}", q.qr_plain);
            }
        }
        DemoCommand::Cards { json } => {
            let cards = opened
                .db
                .read_blocking(|c| list_cards(c, true))
                .map_err(app_err)?;
            if json {
                let list: Vec<_> = cards
                    .iter()
                    .map(|c| {
                        json!({
                            "card_no": c.card_no, "card_id": c.id, "type": c.card_type.as_str(),
                            "status": c.state.status, "balance": format_cents(c.state.available_cents()),
                            "points": c.state.points, "level": c.level,
                        })
                    })
                    .collect();
                println!("{}", serde_json::Value::Array(list));
            } else {
                println!(
                    "{:<13} {:<36} {:<10} {:<9} {:>12} {:>7}",
                    "CARD_NO", "CARD_ID", "TYPE", "STATUS", "BALANCE", "POINTS"
                );
                for c in cards {
                    println!(
                        "{:<13} {:<36} {:<10} {:<9} {:>12} {:>7}",
                        c.card_no,
                        c.id,
                        c.card_type.as_str(),
                        c.state.status,
                        format_cents(c.state.available_cents()),
                        c.state.points
                    );
                }
            }
        }
        DemoCommand::Charge {
            server,
            username,
            password,
            amount,
            card,
        } => {
            let q = demo::issue_qr(&opened.db, card.as_deref(), 300)?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let out = runtime.block_on(demo_charge(
                &server,
                &username,
                &password,
                &amount,
                &q.qr_plain,
            ))?;
            println!("{out}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn demo_charge(
    server: &str,
    username: &str,
    password: &str,
    amount: &str,
    qr: &str,
) -> anyhow::Result<String> {
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(15))
        .build()?;
    let base = server.trim_end_matches('/');
    let login: serde_json::Value = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await?
        .json()
        .await?;
    let token = login["access_token"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("sign-in failed: {login}"))?;
    let res = client
        .post(format!("{base}/api/v1/merchant/charge"))
        .bearer_auth(token)
        .header("Idempotency-Key", uuid::Uuid::now_v7().to_string())
        .json(&json!({"qr_plain": qr, "amount": amount}))
        .send()
        .await?;
    let status = res.status();
    let body: serde_json::Value = res.json().await?;
    let pretty = serde_json::to_string_pretty(&body)?;
    if !status.is_success() {
        anyhow::bail!("charge failed ({status}): {pretty}");
    }
    Ok(pretty)
}

fn admin_command(cfg: Config, command: AdminCommand) -> anyhow::Result<ExitCode> {
    match command {
        AdminCommand::UnlockUser { username } => {
            let opened = crate::startup::open(&cfg, false)?;
            let name = username.clone();
            let (exists, had_failures) = opened
                .db
                .write_blocking(move |c| {
                    let user = users::find_by_username(c, &name)?;
                    let had = crate::db::signin::unlock(c, &name)?;
                    users::audit(
                        c,
                        &users::Actor::system("cli"),
                        "user.unlock",
                        user.as_ref().map(|u| ("user", u.id.as_str())),
                        json!({"username": name, "had_failures": had}),
                    )?;
                    Ok((user.is_some(), had))
                })
                .map_err(app_err)?;
            opened.db.shutdown();
            if !exists {
                anyhow::bail!(
                    "no user {username} (any failures counted for that name were cleared)"
                );
            }
            println!(
                "{}",
                json!({"username": username, "unlocked": true, "had_failures": had_failures})
            );
        }
        AdminCommand::CreateUser {
            username,
            role,
            password,
            password_stdin,
            reset,
        } => {
            let password = match (password, password_stdin) {
                (Some(p), false) => p,
                (None, true) => {
                    let mut s = String::new();
                    std::io::stdin().read_to_string(&mut s)?;
                    s.trim_end_matches(['\n', '\r']).to_string()
                }
                _ => anyhow::bail!("give the password with --password-stdin (or --password)"),
            };
            if username.trim().is_empty()
                || username.chars().count() > 64
                || username.chars().any(char::is_control)
            {
                anyhow::bail!("--username must be 1-64 characters");
            }
            check_password_policy(&password).map_err(|e| anyhow::anyhow!(e))?;
            let role = Role::parse(&role)
                .ok_or_else(|| anyhow::anyhow!("--role must be owner, manager or cashier"))?;
            let opened = crate::startup::open(&cfg, false)?;
            let hash = hash_password(&password)?;
            let name = username.clone();
            let id = opened
                .db
                .write_blocking(move |c| {
                    users::upsert_user(c, &name, &hash, role, reset, &users::Actor::system("cli"))
                })
                .map_err(|e| match e.code() {
                    ErrorCode::UsernameTaken => {
                        anyhow::anyhow!("user {username} exists; add --reset to reset it")
                    }
                    _ => app_err(e),
                })?;
            opened.db.shutdown();
            println!(
                "{}",
                json!({"id": id, "username": username, "role": role.as_str()})
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
