//! Orchestration between HTTP and storage: resolve the QR, then hand the decision and
//! the write to the single writer. No SQL and no money arithmetic here.

pub mod approval;
pub mod audit;
pub mod auth;
pub mod cards;
pub mod daemon;
pub mod devices;
pub mod events;
pub mod export;
pub mod passwords;
pub mod payments;
pub mod qr;
pub mod receipts;
pub mod replay;
pub mod session;
pub mod settings;
pub mod settlements;
pub mod shifts;
pub mod staff;
pub mod state;
pub mod sync;
pub mod throttle;
pub mod topups;
pub mod transactions;
