//! The projection machinery: the catalog of read models, change detection,
//! the refresher that runs `REFRESH MATERIALIZED VIEW CONCURRENTLY`, and the
//! cron scheduler that drives it.
//!
//! This is the one part of the program that reads the write schema (to know
//! what changed) and writes the read schema (views and their freshness).

pub mod catalog;
mod refresher;
pub mod requests;
pub mod settings;
pub mod status;

pub use catalog::{Applier, DeltaRun, ReadModel, Strategy};
pub use refresher::{
    vacuum_working_tables, RefreshHook, RefreshOutcome, Refresher, RefresherHandle,
    RefresherSettings, ScheduledModel,
};
pub use requests::RefreshRequests;
