//! A PostgREST-compatible HTTP front for a test PostgreSQL database: it stands
//! in for Supabase's `/rest/v1/rpc/<fn>` in the edge's sync tests.
//!
//! Used as a module from tests (`tests/support/mod.rs`) and from
//! `examples/central-gateway.rs` (through `#[path]`), so it depends only on
//! crates available to both (axum, tokio, tokio-postgres, jsonwebtoken,
//! serde_json, anyhow).
//!
//! Behaviour (see central-contract.md §3.0):
//! * `POST /rest/v1/rpc/{fn}` with a JSON object body (empty body = `{}`);
//! * the `apikey` header must be present and be a JWT signed with the secret,
//!   and `Authorization: Bearer <jwt>` must be an HS256 JWT signed with the
//!   secret (`exp` checked when present) — else 401 with code PGRST301
//!   (`PGRST303` for an expired token);
//! * one transaction per call, as the JWT's `role` claim (`anon` when the
//!   claim is absent), with `request.jwt.claims`, `request.jwt.claim.sub`,
//!   `request.jwt.claim.role`, `request.method`, `request.path` and
//!   `request.headers` (a JSON object of the request headers, names in
//!   lowercase) set locally, `TimeZone=UTC`, `search_path=public, extensions`,
//!   plus the role's own `ALTER ROLE ... SET` settings (e.g.
//!   `statement_timeout`), as PostgREST applies them;
//! * a STABLE or IMMUTABLE function runs in a READ ONLY transaction, as
//!   PostgREST runs them;
//! * after the call, `response.status` (when the function set it) replaces
//!   the HTTP status and `response.headers` (a JSON array of one-key objects)
//!   adds headers; the transaction still commits;
//! * the function is resolved in schema `public` by name and by the exact set
//!   of JSON keys (all arguments without default present, no extra key), else
//!   404 PGRST202 (300 PGRST203 when several overloads match);
//! * the call uses named notation, each value passed as text and cast to the
//!   argument's type (JSON strings unquoted, null → NULL, anything else as
//!   its JSON text);
//! * results: set-returning → JSON array of rows (`[]` when empty); composite
//!   → object; scalar/json/jsonb → the bare value, as PostgreSQL renders it
//!   (numeric scale kept); void → 204;
//! * a PostgreSQL error → `{"code","message","details","hint"}` with
//!   PostgREST's SQLSTATE→HTTP mapping; no database connection → 503 PGRST000;
//! * `GET /rest/v1/` → 200 `{}` (reachability).
//!
//! A call runs to completion even when the HTTP client hangs up, like a real
//! server that has already received the request.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{json, Map, Value};
use tokio::sync::{oneshot, Mutex};
use tokio_postgres::{Client, NoTls};

/// Idle connections kept for reuse; more are opened on demand.
const MAX_IDLE: usize = 8;

/// A running gateway. Dropping it stops the server (in-flight calls finish).
pub struct GatewayHandle {
    addr: SocketAddr,
    inner: Arc<Inner>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl GatewayHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` — what the edge takes as the Supabase URL
    /// (it appends `/rest/v1/rpc/<fn>`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Number of `/rest/v1/rpc/*` requests received so far.
    pub fn rpc_requests(&self) -> u64 {
        self.inner.requests.load(Ordering::SeqCst)
    }

    /// Stops accepting connections and waits for the server task to end.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for GatewayHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

struct Inner {
    pg: tokio_postgres::Config,
    key: DecodingKey,
    pool: Mutex<Vec<Client>>,
    requests: AtomicU64,
}

/// A signed HS256 token with the given `role` claim, `iss: "supabase"` and an
/// `exp` far in the future (year 2100) — a Supabase-style API key.
pub fn service_jwt(secret: &str, role: &str) -> String {
    let claims = json!({ "iss": "supabase", "role": role, "iat": 1_700_000_000u64, "exp": 4_102_444_800u64 });
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap_or_default()
}

/// Serves the gateway on `listener` until the handle is dropped or shut down.
/// The database is connected to lazily, per request, so the gateway can start
/// (and keep running) while the database is down: calls then get 503.
pub async fn spawn_gateway(
    database_url: &str,
    jwt_secret: &str,
    listener: tokio::net::TcpListener,
) -> anyhow::Result<GatewayHandle> {
    let mut pg: tokio_postgres::Config = database_url
        .parse()
        .with_context(|| format!("bad database url {database_url}"))?;
    pg.connect_timeout(Duration::from_secs(5));
    pg.application_name("central-gateway");
    let inner = Arc::new(Inner {
        pg,
        key: DecodingKey::from_secret(jwt_secret.as_bytes()),
        pool: Mutex::new(Vec::new()),
        requests: AtomicU64::new(0),
    });
    let app = Router::new()
        .route("/rest/v1/rpc/{name}", post(rpc))
        .route("/rest/v1/", get(root))
        .route("/rest/v1", get(root))
        .with_state(inner.clone());
    let addr = listener.local_addr().context("gateway listener address")?;
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await;
    });
    Ok(GatewayHandle {
        addr,
        inner,
        shutdown: Some(tx),
        task: Some(task),
    })
}

async fn root() -> Response {
    json_response(StatusCode::OK, "{}".to_string())
}

fn json_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body,
    )
        .into_response()
}

fn error_response(
    status: StatusCode,
    code: &str,
    message: &str,
    details: Option<&str>,
    hint: Option<&str>,
) -> Response {
    let body = json!({ "code": code, "message": message, "details": details, "hint": hint });
    json_response(status, body.to_string())
}

async fn rpc(
    State(inner): State<Arc<Inner>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    inner.requests.fetch_add(1, Ordering::SeqCst);
    // Run detached: the call completes (and commits) even if the client hangs up.
    let task = tokio::spawn(async move { handle_rpc(inner, name, headers, body).await });
    match task.await {
        Ok(r) => r,
        Err(e) => error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "PGRST000",
            "gateway task failed",
            Some(&e.to_string()),
            None,
        ),
    }
}

/// The request headers as PostgREST hands them to SQL: one JSON object, names in
/// lowercase (a repeated header keeps its last value).
fn request_headers(headers: &HeaderMap) -> Value {
    let mut map = Map::new();
    for (name, value) in headers {
        if let Ok(v) = value.to_str() {
            map.insert(
                name.as_str().to_ascii_lowercase(),
                Value::String(v.to_string()),
            );
        }
    }
    Value::Object(map)
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

enum JwtError {
    Invalid(String),
    Expired,
}

fn verify_jwt(key: &DecodingKey, token: &str) -> Result<Map<String, Value>, JwtError> {
    let mut v = Validation::new(Algorithm::HS256);
    v.required_spec_claims.clear();
    v.validate_aud = false;
    v.leeway = 30;
    jsonwebtoken::decode::<Map<String, Value>>(token, key, &v)
        .map(|d| d.claims)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => JwtError::Expired,
            _ => JwtError::Invalid(e.to_string()),
        })
}

fn jwt_error(e: JwtError) -> Response {
    match e {
        JwtError::Expired => error_response(
            StatusCode::UNAUTHORIZED,
            "PGRST303",
            "JWT expired",
            None,
            None,
        ),
        JwtError::Invalid(d) => error_response(
            StatusCode::UNAUTHORIZED,
            "PGRST301",
            "JWT invalid",
            Some(&d),
            None,
        ),
    }
}

async fn handle_rpc(inner: Arc<Inner>, name: String, headers: HeaderMap, body: Bytes) -> Response {
    // --- API key (Supabase's gateway checks it before PostgREST sees the call)
    let Some(apikey) = header_str(&headers, "apikey") else {
        let body = json!({
            "message": "No API key found in request",
            "hint": "No `apikey` request header or url param was found."
        });
        return json_response(StatusCode::UNAUTHORIZED, body.to_string());
    };
    if verify_jwt(&inner.key, apikey).is_err() {
        let body = json!({
            "message": "Invalid API key",
            "hint": "Double check your Supabase `anon` or `service_role` API key."
        });
        return json_response(StatusCode::UNAUTHORIZED, body.to_string());
    }

    // --- the bearer token decides the role
    let token = header_str(&headers, "authorization").and_then(|h| {
        let (scheme, rest) = h.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
    });
    let Some(token) = token else {
        return jwt_error(JwtError::Invalid(
            "missing Authorization: Bearer header".into(),
        ));
    };
    let claims = match verify_jwt(&inner.key, token) {
        Ok(c) => c,
        Err(e) => return jwt_error(e),
    };
    let role = match claims.get("role") {
        None => "anon".to_string(),
        Some(Value::String(r)) => r.clone(),
        Some(_) => return jwt_error(JwtError::Invalid("role claim is not a string".into())),
    };
    if role.is_empty() || !role.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
        return jwt_error(JwtError::Invalid(format!("role {role:?} is not allowed")));
    }

    // --- the body: a JSON object of named arguments
    let args: Map<String, Value> = if body.iter().all(|b| b.is_ascii_whitespace()) {
        Map::new()
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(m)) => m,
            _ => {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    "PGRST102",
                    "Empty or invalid json",
                    None,
                    None,
                )
            }
        }
    };

    let req = Call {
        name,
        role,
        claims: Value::Object(claims),
        headers: request_headers(&headers),
        args,
        raw_body: body,
    };

    // A pooled connection may have died with a server restart; the first
    // statement then fails without a database error: retry once on a fresh one.
    for attempt in 0..2 {
        let mut client = match checkout(&inner, attempt > 0).await {
            Ok(c) => c,
            Err(e) => return unavailable(&e),
        };
        match run_call(&mut client, &req).await {
            Ok(r) => {
                checkin(&inner, client).await;
                return r.into_response();
            }
            Err(CallError::Db(e)) => {
                checkin(&inner, client).await;
                return db_error_response(&e, &req.role);
            }
            Err(CallError::Http(r)) => {
                checkin(&inner, client).await;
                return *r;
            }
            Err(CallError::Connection { started: false, .. }) if attempt == 0 => continue,
            Err(CallError::Connection { error, .. }) => return unavailable(&error),
        }
    }
    unavailable("no database connection")
}

fn unavailable(detail: &str) -> Response {
    error_response(
        StatusCode::SERVICE_UNAVAILABLE,
        "PGRST000",
        "Could not connect with the database. Please check the PostgREST logs and the database.",
        Some(detail),
        None,
    )
}

async fn checkout(inner: &Inner, fresh: bool) -> Result<Client, String> {
    if !fresh {
        let mut pool = inner.pool.lock().await;
        while let Some(c) = pool.pop() {
            if !c.is_closed() {
                return Ok(c);
            }
        }
    }
    let (client, conn) = inner.pg.connect(NoTls).await.map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

async fn checkin(inner: &Inner, client: Client) {
    if client.is_closed() {
        return;
    }
    let mut pool = inner.pool.lock().await;
    if pool.len() < MAX_IDLE {
        pool.push(client);
    }
}

struct Call {
    name: String,
    role: String,
    claims: Value,
    headers: Value,
    args: Map<String, Value>,
    raw_body: Bytes,
}

struct DbErr {
    code: String,
    message: String,
    detail: Option<String>,
    hint: Option<String>,
}

enum CallError {
    /// A PostgreSQL error (the transaction was rolled back).
    Db(DbErr),
    /// A ready-made HTTP response (PGRST202, PGRST203...).
    Http(Box<Response>),
    /// The connection failed; `started` = something may have been executed.
    Connection { error: String, started: bool },
}

fn pg_err(e: tokio_postgres::Error, started: bool) -> CallError {
    match e.as_db_error() {
        Some(db) => CallError::Db(DbErr {
            code: db.code().code().to_string(),
            message: db.message().to_string(),
            detail: db.detail().map(str::to_string),
            hint: db.hint().map(str::to_string),
        }),
        None => CallError::Connection {
            error: e.to_string(),
            started,
        },
    }
}

/// PostgREST's SQLSTATE → HTTP status mapping.
fn status_for(code: &str, role: &str) -> StatusCode {
    let s = match code {
        "23503" | "23505" => 409,
        "25006" => 405,
        "P0001" => 400,
        "42883" | "42P01" => 404,
        "42P17" => 500,
        "42501" => {
            if role == "anon" {
                401
            } else {
                403
            }
        }
        _ if code.starts_with("PT") => code[2..].parse().unwrap_or(500),
        _ => match &code[..code.len().min(2)] {
            "08" | "53" => 503,
            "09" | "25" | "2D" | "38" | "39" | "3B" | "40" | "54" | "55" | "57" | "58" | "F0"
            | "HV" | "P0" | "XX" => 500,
            "0L" | "0P" | "28" => 403,
            _ => 400,
        },
    };
    StatusCode::from_u16(s).unwrap_or(StatusCode::BAD_REQUEST)
}

fn db_error_response(e: &DbErr, role: &str) -> Response {
    error_response(
        status_for(&e.code, role),
        &e.code,
        &e.message,
        e.detail.as_deref(),
        e.hint.as_deref(),
    )
}

/// One input argument of a candidate function.
struct Arg {
    name: String,
    ty: String,
    variadic: bool,
}

struct Candidate {
    inputs: Vec<Arg>,
    n_defaults: usize,
    retset: bool,
    is_void: bool,
    composite: bool,
    /// STABLE or IMMUTABLE: PostgREST calls it in a read-only transaction.
    read_only: bool,
    /// Name of the only OUT/TABLE column, when there is exactly one.
    single_out: Option<String>,
}

impl Candidate {
    fn required(&self) -> &[Arg] {
        &self.inputs[..self.inputs.len().saturating_sub(self.n_defaults)]
    }

    fn matches(&self, keys: &BTreeSet<&str>) -> bool {
        self.required()
            .iter()
            .all(|a| !a.name.is_empty() && keys.contains(a.name.as_str()))
            && keys
                .iter()
                .all(|k| self.inputs.iter().any(|a| a.name == *k))
    }

    /// A single unnamed json/jsonb parameter receives the whole body.
    fn takes_whole_body(&self) -> bool {
        self.inputs.len() == 1
            && self.inputs[0].name.is_empty()
            && matches!(self.inputs[0].ty.as_str(), "json" | "jsonb")
    }
}

const RESOLVE_SQL: &str = "
select p.pronargdefaults::int4,
       p.proretset,
       p.prorettype = 'pg_catalog.void'::pg_catalog.regtype,
       t.typtype = 'c' or p.prorettype = 'pg_catalog.record'::pg_catalog.regtype,
       coalesce(p.proargnames, '{}'::text[]),
       coalesce(p.proargmodes::text[], '{}'::text[]),
       array(select pg_catalog.format_type(u.x, null)
               from unnest(coalesce(p.proallargtypes, p.proargtypes::oid[])) with ordinality u(x, ord)
              order by u.ord),
       p.provolatile <> 'v'
  from pg_catalog.pg_proc p
  join pg_catalog.pg_namespace ns on ns.oid = p.pronamespace
  join pg_catalog.pg_type t on t.oid = p.prorettype
 where ns.nspname = 'public' and p.proname = $1 and p.prokind = 'f'
 order by p.oid";

const ROLE_SETTINGS_SQL: &str = "
select s.cfg
  from pg_catalog.pg_db_role_setting d
  cross join lateral unnest(d.setconfig) s(cfg)
 where d.setrole = (select r.oid from pg_catalog.pg_roles r where r.rolname = $1)
   and d.setdatabase in (0, (select db.oid from pg_catalog.pg_database db where db.datname = current_database()))
 order by d.setdatabase";

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A JSON value as the text PostgREST hands to PostgreSQL.
fn arg_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

struct Reply {
    status: StatusCode,
    body: Option<String>,
    headers: Vec<(String, String)>,
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut res = match self.body {
            Some(b) => json_response(self.status, b),
            None => self.status.into_response(),
        };
        for (k, v) in self.headers {
            if let (Ok(name), Ok(value)) = (
                header::HeaderName::from_bytes(k.as_bytes()),
                header::HeaderValue::from_str(&v),
            ) {
                res.headers_mut().append(name, value);
            }
        }
        res
    }
}

async fn run_call(client: &mut Client, req: &Call) -> Result<Reply, CallError> {
    let tx = client.transaction().await.map_err(|e| pg_err(e, false))?;
    let result = call_in_tx(&tx, req).await;
    match result {
        Ok(reply) => {
            tx.commit().await.map_err(|e| pg_err(e, true))?;
            Ok(reply)
        }
        Err(e) => {
            let _ = tx.rollback().await;
            Err(e)
        }
    }
}

async fn call_in_tx(tx: &tokio_postgres::Transaction<'_>, req: &Call) -> Result<Reply, CallError> {
    let err = |e| pg_err(e, true);

    // the impersonated role's own settings (ALTER ROLE ... SET), as PostgREST does
    let settings = tx
        .query(ROLE_SETTINGS_SQL, &[&req.role])
        .await
        .map_err(err)?;
    for row in settings {
        let cfg: String = row.get(0);
        if let Some((k, v)) = cfg.split_once('=') {
            tx.query("select pg_catalog.set_config($1, $2, true)", &[&k, &v])
                .await
                .map_err(err)?;
        }
    }

    let claims = req.claims.to_string();
    let sub = req.claims.get("sub").and_then(arg_text).unwrap_or_default();
    let path = format!("/rpc/{}", req.name);
    let request_headers = req.headers.to_string();
    tx.query(
        "select pg_catalog.set_config('search_path', 'public, extensions', true),
                pg_catalog.set_config('timezone', 'UTC', true),
                pg_catalog.set_config('request.jwt.claims', $1, true),
                pg_catalog.set_config('request.jwt.claim.sub', $2, true),
                pg_catalog.set_config('request.jwt.claim.role', $3, true),
                pg_catalog.set_config('request.method', 'POST', true),
                pg_catalog.set_config('request.path', $4, true),
                pg_catalog.set_config('request.headers', $5, true),
                pg_catalog.set_config('role', $3, true)",
        &[&claims, &sub, &req.role, &path, &request_headers],
    )
    .await
    .map_err(err)?;

    // --- resolve the function by name and key set
    let rows = tx.query(RESOLVE_SQL, &[&req.name]).await.map_err(err)?;
    let mut candidates = Vec::new();
    for row in rows {
        let n_defaults: i32 = row.get(0);
        let names: Vec<String> = row.get(4);
        let modes: Vec<String> = row.get(5);
        let types: Vec<String> = row.get(6);
        let mut inputs = Vec::new();
        let mut outs = Vec::new();
        for (i, ty) in types.iter().enumerate() {
            let mode = modes.get(i).map(String::as_str).unwrap_or("i");
            let name = names.get(i).cloned().unwrap_or_default();
            match mode {
                "i" | "b" | "v" => inputs.push(Arg {
                    name: name.clone(),
                    ty: ty.clone(),
                    variadic: mode == "v",
                }),
                _ => {}
            }
            if matches!(mode, "o" | "b" | "t") {
                outs.push(name);
            }
        }
        candidates.push(Candidate {
            inputs,
            n_defaults: usize::try_from(n_defaults).unwrap_or(0),
            retset: row.get(1),
            is_void: row.get(2),
            composite: row.get(3),
            read_only: row.get(7),
            single_out: if outs.len() == 1 { outs.pop() } else { None },
        });
    }

    let keys: BTreeSet<&str> = req.args.keys().map(String::as_str).collect();
    let matching: Vec<&Candidate> = candidates.iter().filter(|c| c.matches(&keys)).collect();
    let (cand, whole_body) = match matching.as_slice() {
        [one] => (*one, false),
        [] => match candidates.iter().find(|c| c.takes_whole_body()) {
            Some(c) => (c, true),
            None => return Err(CallError::Http(Box::new(not_found(&req.name, &keys)))),
        },
        many => {
            let list: Vec<String> = many
                .iter()
                .map(|c| {
                    let args: Vec<String> = c
                        .inputs
                        .iter()
                        .map(|a| format!("{} => {}", a.name, a.ty))
                        .collect();
                    format!("public.{}({})", req.name, args.join(", "))
                })
                .collect();
            return Err(CallError::Http(Box::new(error_response(
                StatusCode::MULTIPLE_CHOICES,
                "PGRST203",
                &format!("Could not choose the best candidate function between: {}", list.join(", ")),
                None,
                Some("Try renaming the parameters or the function itself in the database so function overloading can be resolved"),
            ))));
        }
    };

    // --- build the call: named notation, each value as text cast to its type
    let mut params: Vec<Option<String>> = Vec::new();
    let mut call_args = Vec::new();
    if whole_body {
        params.push(Some(String::from_utf8_lossy(&req.raw_body).into_owned()));
        call_args.push(format!("$1::text::{}", cand.inputs[0].ty));
    } else {
        for a in cand
            .inputs
            .iter()
            .filter(|a| keys.contains(a.name.as_str()))
        {
            params.push(req.args.get(&a.name).and_then(arg_text));
            call_args.push(format!(
                "{}{} => ${}::text::{}",
                if a.variadic { "variadic " } else { "" },
                quote_ident(&a.name),
                params.len(),
                a.ty
            ));
        }
    }
    let call = format!(
        "public.{}({})",
        quote_ident(&req.name),
        call_args.join(", ")
    );
    let sql = if cand.is_void {
        format!("select {call}")
    } else if let Some(col) = &cand.single_out {
        // one OUT/TABLE column: rows are still objects
        let obj = format!("json_build_object({}, t)", quote_literal(col));
        if cand.retset {
            format!("select coalesce(json_agg({obj}), '[]')::text from {call} t")
        } else {
            format!("select coalesce((json_agg({obj}) -> 0)::text, 'null') from {call} t")
        }
    } else if cand.retset {
        format!("select coalesce(json_agg(t), '[]')::text from {call} t")
    } else if cand.composite {
        format!("select coalesce((json_agg(t) -> 0)::text, 'null') from {call} t")
    } else {
        format!("select coalesce((json_agg(t.v) -> 0)::text, 'null') from (select {call} as v) t")
    };
    let param_refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
        .iter()
        .map(|p| p as &(dyn tokio_postgres::types::ToSql + Sync))
        .collect();
    if cand.read_only {
        tx.batch_execute("set transaction read only")
            .await
            .map_err(err)?;
    }
    let rows = tx.query(sql.as_str(), &param_refs).await.map_err(err)?;

    // response.status / response.headers, as the function left them
    let guc = tx
        .query_one(
            "select coalesce(pg_catalog.current_setting('response.status', true), ''),
                    coalesce(pg_catalog.current_setting('response.headers', true), '')",
            &[],
        )
        .await
        .map_err(err)?;
    let (status_guc, headers_guc): (String, String) = (guc.get(0), guc.get(1));
    let status_override = status_guc
        .trim()
        .parse::<u16>()
        .ok()
        .and_then(|c| StatusCode::from_u16(c).ok());
    let mut extra_headers = Vec::new();
    if let Ok(Value::Array(items)) = serde_json::from_str::<Value>(&headers_guc) {
        for item in items {
            if let Value::Object(m) = item {
                for (k, v) in m {
                    if let Some(v) = v.as_str() {
                        extra_headers.push((k, v.to_string()));
                    }
                }
            }
        }
    }

    if cand.is_void {
        return Ok(Reply {
            status: status_override.unwrap_or(StatusCode::NO_CONTENT),
            body: None,
            headers: extra_headers,
        });
    }
    let body: String = rows
        .first()
        .map(|r| r.get(0))
        .unwrap_or_else(|| "null".to_string());
    Ok(Reply {
        status: status_override.unwrap_or(StatusCode::OK),
        body: Some(body),
        headers: extra_headers,
    })
}

fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn not_found(name: &str, keys: &BTreeSet<&str>) -> Response {
    let list: Vec<&str> = keys.iter().copied().collect();
    let (message, details) = if list.is_empty() {
        (
            format!("Could not find the function public.{name} without parameters in the schema cache"),
            format!("Searched for the function public.{name} without parameters or with a single unnamed json/jsonb parameter, but no matches were found in the schema cache."),
        )
    } else {
        (
            format!("Could not find the function public.{name}({}) in the schema cache", list.join(", ")),
            format!(
                "Searched for the function public.{name} with parameters {} or with a single unnamed json/jsonb parameter, but no matches were found in the schema cache.",
                list.join(", ")
            ),
        )
    };
    error_response(
        StatusCode::NOT_FOUND,
        "PGRST202",
        &message,
        Some(&details),
        None,
    )
}
