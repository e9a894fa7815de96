//! Live events for the console's WebSocket feed: a broadcast channel in the server state.
//! Publishing never blocks and never fails a request: with nobody listening, or a slow
//! listener, events are simply dropped (the console re-reads the API after a gap).

use serde::Serialize;
use serde_json::Value;
use tokio::sync::broadcast;

/// How many events a slow WebSocket client may lag behind before it skips ahead.
const CAPACITY: usize = 256;

/// `{type, data}` as the console receives it.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub data: Value,
}

#[derive(Clone)]
pub struct Events {
    tx: broadcast::Sender<Event>,
}

impl Default for Events {
    fn default() -> Self {
        let (tx, _) = broadcast::channel(CAPACITY);
        Events { tx }
    }
}

impl Events {
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }

    pub fn has_listeners(&self) -> bool {
        self.tx.receiver_count() > 0
    }

    pub fn publish(&self, kind: &'static str, data: Value) {
        let _ = self.tx.send(Event { kind, data });
    }

    /// Publishes a committed charge or refund from its stored response body.
    pub fn publish_body(&self, kind: &'static str, body: &str) {
        if !self.has_listeners() {
            return;
        }
        if let Ok(data) = serde_json::from_str::<Value>(body) {
            self.publish(kind, data);
        }
    }
}
