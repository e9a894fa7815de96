//! Orchestration between HTTP and storage: resolve the QR, then hand the decision and
//! the write to the single writer. No SQL and no money arithmetic here.

pub mod auth;
pub mod console;
pub mod events;
pub mod payments;
pub mod qr;
