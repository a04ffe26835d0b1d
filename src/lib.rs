//! pgcqrs: single-database CQRS on PostgreSQL.
//!
//! Commands are validated in Rust and write normalized tables in the `write`
//! schema; PostgreSQL materialized views in the `read` schema are the read
//! models, refreshed by a scheduler. Rust validates and routes; the database
//! does the projection.
//!
//! # Layout
//! - [`config`]: every setting and environment variable.
//! - [`db`]: pools, migrations, the embedded local PostgreSQL.
//! - [`domain`]: ids, money, quantities, the order status machine. No I/O.
//! - [`commands`]: the write side, one file per aggregate; touches `write.*` only.
//! - [`http`]: the router, problem+json errors, extractors, handlers.
//! - [`app`]: `App::build` then `run_until_stopped`.

pub mod app;
pub mod commands;
pub mod config;
pub mod db;
pub mod domain;
pub mod http;
pub mod queries;
pub mod read_models;
pub mod seed;
pub mod telemetry;
