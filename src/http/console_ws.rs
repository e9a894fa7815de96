//! `GET /api/v1/console/ws`: the console's live feed. Needs the session cookie (a
//! browser WebSocket cannot send a bearer header) and, from a browser, a same-origin
//! `Origin`. Pushes `{type, data}`: `transaction` and `refund` as they commit, `sync` when
//! the sync status changes and `exception` when new sync exceptions appear (both polled
//! every few seconds). The session is re-checked at each poll; when it ends, the socket
//! closes.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::Response;
use serde_json::{json, Value};
use tokio::sync::broadcast::error::RecvError;

use super::identity::{session_cookie, ConsoleSession};
use crate::domain::Role;
use crate::error::{AppError, AppResult, ErrorCode};
use crate::service::events::Event;
use crate::service::session::{authenticate_session, Csrf};
use crate::service::state::AppState;

const POLL: Duration = Duration::from_secs(3);

/// Browsers always send `Origin` on a WebSocket handshake; it must be this server.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .unwrap_or("");
    !host.is_empty() && origin_host == host
}

#[utoipa::path(get, path = "/console/ws", tag = "console", security(("session_cookie" = [])),
    responses((status = 101, description = "WebSocket: {type: transaction|refund|sync|exception, data}"), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
pub async fn handler(
    State(state): State<AppState>,
    s: ConsoleSession,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> AppResult<Response> {
    if !same_origin(&headers) {
        return Err(AppError::msg(
            ErrorCode::PermissionDenied,
            "The live feed accepts connections from this console only.",
        ));
    }
    let token = session_cookie(&headers).unwrap_or_default();
    let manager = matches!(s.user.role, Role::Owner | Role::Manager);
    Ok(ws.on_upgrade(move |socket| run(socket, state, token, manager)))
}

/// The parts of the sync status worth telling the console about (ages tick every second
/// and are left out of the comparison).
fn sync_key(status: &Value) -> Value {
    json!([
        status["online"],
        status["blocked"],
        status["push"]["state"],
        status["pull"]["state"],
        status["problems"],
        status["queue_depth"],
        status["oldest_pending_at"],
        status["last_push_ok_at"],
        status["last_pull_ok_at"],
        status["last_error"],
        status["open_exceptions"],
    ])
}

async fn send(socket: &mut WebSocket, event: &Event) -> bool {
    match serde_json::to_string(event) {
        Ok(text) => socket.send(Message::Text(text.into())).await.is_ok(),
        Err(_) => true,
    }
}

async fn run(mut socket: WebSocket, state: AppState, token: String, manager: bool) {
    let mut events = state.events.subscribe();
    let mut tick = tokio::time::interval(POLL);
    let mut last_sync: Option<Value> = None;
    let mut last_open: Option<i64> = None;
    loop {
        tokio::select! {
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            event = events.recv() => match event {
                Ok(e) => {
                    if !send(&mut socket, &e).await {
                        break;
                    }
                }
                // A slow client skipped some events; tell it to re-read.
                Err(RecvError::Lagged(_)) => {
                    let e = Event { kind: "sync", data: json!({"resync": true}) };
                    if !send(&mut socket, &e).await {
                        break;
                    }
                }
                Err(RecvError::Closed) => break,
            },
            _ = tick.tick() => {
                if authenticate_session(&state, &token, Csrf::NotNeeded, None).await.is_err() {
                    let _ = socket
                        .send(Message::Close(Some(CloseFrame {
                            code: 4401,
                            reason: Utf8Bytes::from_static("session ended"),
                        })))
                        .await;
                    break;
                }
                if !manager {
                    continue;
                }
                let Ok(status) = crate::service::sync::status(&state).await else {
                    continue;
                };
                let status = serde_json::to_value(&status).unwrap_or(Value::Null);
                let open = status["open_exceptions"].as_i64().unwrap_or(0);
                if let Some(before) = last_open {
                    if open > before {
                        let e = Event {
                            kind: "exception",
                            data: json!({"open_exceptions": open, "new": open - before}),
                        };
                        if !send(&mut socket, &e).await {
                            break;
                        }
                    }
                }
                last_open = Some(open);
                let key = sync_key(&status);
                if last_sync.as_ref() != Some(&key) {
                    last_sync = Some(key);
                    if !send(&mut socket, &Event { kind: "sync", data: status }).await {
                        break;
                    }
                }
            }
        }
    }
}
