//! A PostgREST-compatible front for a PostgreSQL database holding the central
//! MPS stand-in (tests/fixtures/central/upstream.sql + sync/central.sql), for
//! running an edge against a local "Supabase" by hand:
//!
//! ```text
//! cargo run --example central-gateway -- \
//!     --database-url postgres://postgres@127.0.0.1:5432/mps_central \
//!     --listen 127.0.0.1:54321 --jwt-secret "$SECRET"
//! ```
//!
//! Prints a service_role and an anon key signed with the secret, then serves
//! `POST /rest/v1/rpc/<fn>` until Ctrl-C. See tests/support/gateway.rs.

#[path = "../tests/support/gateway.rs"]
mod gateway;

use clap::Parser;

#[derive(Parser, Debug)]
#[command(about = "PostgREST-compatible RPC gateway for the central MPS stand-in")]
struct Args {
    /// PostgreSQL URL of the central database.
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:54321")]
    listen: String,
    /// HS256 secret the API keys are signed with.
    #[arg(long, env = "JWT_SECRET")]
    jwt_secret: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    let gw = gateway::spawn_gateway(&args.database_url, &args.jwt_secret, listener).await?;
    eprintln!(
        "central-gateway: serving {} (database {})",
        gw.url(),
        args.database_url
    );
    eprintln!(
        "service_role key: {}",
        gateway::service_jwt(&args.jwt_secret, "service_role")
    );
    eprintln!(
        "anon key:         {}",
        gateway::service_jwt(&args.jwt_secret, "anon")
    );
    tokio::signal::ctrl_c().await?;
    eprintln!("central-gateway: shutting down");
    gw.shutdown().await;
    Ok(())
}
