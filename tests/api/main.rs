//! The service seen from outside: commands, queries, errors, roles, the
//! OpenAPI description, the status page and the schema. One binary, one
//! PostgreSQL cluster; every test has its own database and service.

#[path = "../support/mod.rs"]
mod support;

mod auth;
mod commands_concurrency;
mod commands_customers_products;
mod commands_orders;
mod commands_smoke;
mod database_rules;
mod event_log;
mod hostile_input;
mod idempotency_expiry;
mod openapi;
mod queries;
mod query_errors;
mod roles;
mod schema;
mod status_page;
mod views;
