//! The read side: one file per question, each reading only the `read`
//! schema through the read pool (the primary or a replica).
//!
//! Every answer says how fresh it is ([`freshness::Freshness`]) and, when the
//! client passes a token, waits until the views it reads cover that
//! transaction.

pub mod freshness;
pub mod orders;
pub mod statistics;
pub mod view_catalog;
pub mod views;

use deadpool_postgres::PoolError;

use crate::db::targets::{Failover, ReadFailure};
use crate::db::RowError;

/// What a query answers.
pub type Result<T, E = QueryError> = std::result::Result<T, E>;

/// Why a query could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("{what} {id:?} does not exist")]
    NotFound { what: &'static str, id: String },
    /// A value of the request that the database refused (it does not cast
    /// to the column's type): the client's mistake.
    #[error("{0}")]
    BadParameter(String),
    /// A declared read model's relation is gone or has other columns than
    /// the cached catalog says: read the catalog again.
    #[error("the read model changed while it was read: {0}")]
    CatalogChanged(String),
    /// The views did not cover the token within the wait.
    #[error("the read models {views} have not yet caught up with token {token} after waiting {waited_ms} ms")]
    NotYetFresh {
        views: String,
        token: String,
        waited_ms: u128,
        /// When a retry is likely to succeed: the slowest lagging view's
        /// expected refresh (its last duration; longer while its refreshes
        /// fail), or the replay lag of a standby that is behind.
        retry_after: std::time::Duration,
    },
    /// The token names no transaction this database has had.
    #[error("min_token {0} is not the token of any transaction this database has seen; pass the token a command returned")]
    UnknownToken(String),
    #[error("the read database is unavailable: {0}")]
    Unavailable(String),
    /// A standby cancelled the read because it conflicted with replay: the
    /// standby is fine, the read may succeed elsewhere or again.
    #[error("the read was cancelled by a standby's replay: {0}")]
    ReplayConflict(String),
    /// Every connection of the pool stayed busy for the whole wait: the
    /// database answers, this instance has too much to do.
    #[error("no read connection came free in time: {0}")]
    Overloaded(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<PoolError> for QueryError {
    fn from(e: PoolError) -> Self {
        match e {
            // Every connection of the pool stayed busy for the whole wait.
            e @ PoolError::Timeout(deadpool_postgres::TimeoutType::Wait) => {
                QueryError::Overloaded(e.to_string())
            }
            // Opening a connection failed: refused, unreachable, starting
            // up, too many connections, no such database, bad password.
            other => QueryError::Unavailable(crate::db::pool_error_message(&other)),
        }
    }
}

impl From<deadpool_postgres::tokio_postgres::Error> for QueryError {
    fn from(e: deadpool_postgres::tokio_postgres::Error) -> Self {
        use std::error::Error as _;
        match e.code().map(|c| c.code()) {
            // No answer from the server: the connection closed or broke.
            // (Other errors without a code, such as a column of an
            // unexpected type, are bugs: they stay internal.)
            None if e.is_closed() || e.source().is_some_and(|s| s.is::<std::io::Error>()) => {
                QueryError::Unavailable(e.to_string())
            }
            None => QueryError::Internal(anyhow::Error::new(e)),
            // The server is going away or not accepting work.
            Some(code) if is_server_unavailable(code) => QueryError::Unavailable(e.to_string()),
            // serialization_failure and deadlock_detected are how a
            // standby reports a conflict with replay.
            Some("40001" | "40P01") => QueryError::ReplayConflict(e.to_string()),
            Some(_) => QueryError::Internal(anyhow::Error::new(e)),
        }
    }
}

impl From<RowError> for QueryError {
    fn from(e: RowError) -> Self {
        QueryError::Internal(anyhow::Error::new(e))
    }
}

impl ReadFailure for QueryError {
    fn failover(&self) -> Failover {
        match self {
            QueryError::Unavailable(e) => Failover::SetAside(e.clone()),
            QueryError::ReplayConflict(_) | QueryError::NotYetFresh { .. } => Failover::TryNext,
            _ => Failover::Answer,
        }
    }

    fn no_target() -> Self {
        QueryError::Unavailable("no read target answers".into())
    }
}

impl QueryError {
    /// A wait that ran out says how long the request waited in all (since
    /// `started`), not how long its last attempt did.
    pub fn waited_since(self, started: std::time::Instant) -> Self {
        match self {
            QueryError::NotYetFresh {
                views,
                token,
                retry_after,
                ..
            } => QueryError::NotYetFresh {
                views,
                token,
                waited_ms: started.elapsed().as_millis(),
                retry_after,
            },
            other => other,
        }
    }
}

/// SQLSTATEs that say the server, not the read, is the problem.
fn is_server_unavailable(code: &str) -> bool {
    code.starts_with("08") // connection exception
        || matches!(
            code,
            "57P01" // admin_shutdown
            | "57P02" // crash_shutdown
            | "57P03" // cannot_connect_now
        )
}
