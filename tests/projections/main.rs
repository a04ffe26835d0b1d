//! The read models kept current: the refresher, freshness tokens, edge
//! cases of the projections, extreme values, failed refreshes and service
//! instances in different roles. One binary, one PostgreSQL cluster; every
//! test has its own database and service.

#[path = "../support/mod.rs"]
mod support;

mod declared;
mod extreme_values;
mod freshness;
mod projection_edges;
mod read_side_smoke;
mod refresh_faults;
mod refresher;
mod roles_of_instances;
mod working_tables;
