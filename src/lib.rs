//! mps-edge: an offline-first edge server for the Member Payment System.
//!
//! Layout: `domain` holds the pure business rules, `db` all storage, `service` the
//! orchestration, `http` the API, `cli` the command line (`pos` its POS client), `config` the settings.

pub mod api_schema;
pub mod auth;
pub mod cli;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod files;
pub mod http;
pub mod metrics;
pub mod model;
pub mod ops;
pub mod pos;
pub mod service;
pub mod settings;
pub mod startup;
pub mod sync;

pub use http::{build_router, serve};
