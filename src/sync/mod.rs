//! Sync with the central Supabase: a PostgREST client, pure planning (batches, backoff,
//! cursors) and the engine that runs the push and pull loops.

pub mod client;
pub mod engine;
pub mod plan;
pub mod state;

pub use client::{CentralClient, SyncError};
pub use engine::SyncEngine;

/// The version of `sync/central.sql` this edge speaks.
pub const CENTRAL_SQL_VERSION: i64 = 1;

/// Features of `sync/central.sql` this edge relies on (`edge_sync_version().features`).
pub const CENTRAL_FEATURES: &[&str] = &[
    "mq1",
    "settlements",
    "self_test",
    "mq2",
    "settlement_void",
    "card_freeze",
    "recharge",
];
